//! Durations in the contract's notation (`500ms`, `15m`, `24h`, `1h30m`, `1.5h`), the same
//! grammar as Go's `time.ParseDuration` so that configuration written for the reference parses.

use std::time::Duration;

/// A parsed duration that may be negative (the rotation interval treats negative as "always").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignedDuration {
    /// A leading `-` was given.
    pub negative: bool,
    /// The absolute value.
    pub magnitude: Duration,
}

/// Parses `[-+]?(<number><unit>)+` or a bare `0`. Units: ns, us, µs, ms, s, m, h.
pub fn parse(input: &str) -> Result<SignedDuration, String> {
    let s = input.trim();
    let (negative, mut rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Ok(SignedDuration { negative, magnitude: Duration::ZERO });
    }
    if rest.is_empty() {
        return Err(format!("invalid duration {input:?}"));
    }
    let mut total_nanos: u128 = 0;
    while !rest.is_empty() {
        let num_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let number = &rest[..num_len];
        if number.is_empty() || number == "." || number.matches('.').count() > 1 {
            return Err(format!("invalid duration {input:?}"));
        }
        rest = &rest[num_len..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let scale: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60 * 1_000_000_000,
            "h" => 3_600 * 1_000_000_000,
            "" => {
                return Err(format!("missing unit in duration {input:?} (use ms, s, m or h)"));
            }
            other => return Err(format!("unknown unit {other:?} in duration {input:?}")),
        };
        let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
        let whole: u128 =
            if whole.is_empty() { 0 } else { whole.parse().map_err(|_| format!("invalid duration {input:?}"))? };
        let mut nanos = whole.checked_mul(scale).ok_or_else(|| format!("duration {input:?} is too large"))?;
        let mut place = scale;
        for digit in frac.bytes().take(18) {
            place /= 10;
            nanos += u128::from(digit - b'0') * place;
        }
        total_nanos = total_nanos.checked_add(nanos).ok_or_else(|| format!("duration {input:?} is too large"))?;
    }
    let nanos = u64::try_from(total_nanos).map_err(|_| format!("duration {input:?} is too large"))?;
    Ok(SignedDuration { negative, magnitude: Duration::from_nanos(nanos) })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> Duration {
        let d = parse(s).unwrap();
        assert!(!d.negative);
        d.magnitude
    }

    #[test]
    fn parses_the_contract_forms() {
        assert_eq!(ok("15m"), Duration::from_secs(900));
        assert_eq!(ok("24h"), Duration::from_secs(86_400));
        assert_eq!(ok("720h"), Duration::from_secs(2_592_000));
        assert_eq!(ok("500ms"), Duration::from_millis(500));
        assert_eq!(ok("1h30m"), Duration::from_secs(5_400));
        assert_eq!(ok("1.5h"), Duration::from_secs(5_400));
        assert_eq!(ok("0"), Duration::ZERO);
        assert!(parse("-1s").unwrap().negative);
    }

    #[test]
    fn rejects_what_go_rejects() {
        for bad in ["", "15", "m", "1x", "1..5s", "abc", "1h-", "-"] {
            assert!(parse(bad).is_err(), "{bad:?} should not parse");
        }
    }
}
