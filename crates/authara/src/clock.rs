//! Time comes from an injected clock so expiry and rotation are testable without sleeping.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

/// Milliseconds since the Unix epoch.
pub trait Clock: Send + Sync + 'static {
    fn now_ms(&self) -> i64;
}

pub type SharedClock = Arc<dyn Clock>;

impl std::fmt::Debug for dyn Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Clock({})", self.now_ms())
    }
}

/// The wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[expect(clippy::disallowed_methods, reason = "the one place that reads the wall clock")]
    fn now_ms(&self) -> i64 {
        let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
    }
}

/// A clock tests move by hand.
#[derive(Debug)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    pub fn new(start_ms: i64) -> Arc<Self> {
        Arc::new(Self(AtomicI64::new(start_ms)))
    }

    pub fn advance(&self, by: Duration) {
        let ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// A duration in whole milliseconds, saturating.
pub fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn split(ms: i64) -> (i64, u32, u32, i64, i64, i64, i64) {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, mo, d) = civil_from_days(days);
    (y, mo, d, rem / 3600, rem % 3600 / 60, rem % 60, days)
}

/// RFC 3339 in UTC with second precision, e.g. `2026-11-23T18:33:04Z`.
pub fn rfc3339(ms: i64) -> String {
    let (y, mo, d, h, mi, s, _) = split(ms);
    let Some(y) = u16::try_from(y).ok().filter(|y| *y <= 9999) else {
        return format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z");
    };
    // Digits placed by hand: a member list formats two times per member, and `format!` was a
    // tenth of a 10,000-member list's time.
    let mut b = *b"0000-00-00T00:00:00Z";
    let mut put = |at: usize, v: u64, width: usize| {
        let mut v = v;
        for i in (at..at + width).rev() {
            b[i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(0, u64::from(y), 4);
    put(5, u64::from(mo), 2);
    put(8, u64::from(d), 2);
    put(11, h.unsigned_abs(), 2);
    put(14, mi.unsigned_abs(), 2);
    put(17, s.unsigned_abs(), 2);
    // Only ASCII digits and separators: never lossy.
    String::from_utf8_lossy(&b).into_owned()
}

/// For people: `2026-11-23 18:33:04 UTC` (pages and emails).
pub fn human(ms: i64) -> String {
    let (y, mo, d, h, mi, s, _) = split(ms);
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02} UTC")
}

/// RFC 3339 in UTC with milliseconds, e.g. `2026-11-23T18:33:04.120Z` (webhook envelopes).
pub fn rfc3339_millis(ms: i64) -> String {
    let (y, mo, d, h, mi, s, _) = split(ms);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{:03}Z", ms.rem_euclid(1000))
}

/// An HTTP date (RFC 7231 IMF-fixdate), e.g. `Mon, 23 Nov 2026 18:33:04 GMT`.
pub fn http_date(ms: i64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let (y, mo, d, h, mi, s, days) = split(ms);
    let wd = DAYS[days.rem_euclid(7) as usize];
    let mon = MONTHS[(mo - 1) as usize];
    format!("{wd}, {d:02} {mon} {y:04} {h:02}:{mi:02}:{s:02} GMT")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        // 2026-11-23T18:33:04Z was a Monday.
        assert_eq!(rfc3339(1_795_458_784_000), "2026-11-23T18:33:04Z");
        assert_eq!(http_date(1_795_458_784_000), "Mon, 23 Nov 2026 18:33:04 GMT");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn rfc3339_writes_what_format_writes() {
        let formatted = |ms: i64| {
            let (y, mo, d, h, mi, s, _) = split(ms);
            format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
        };
        let mut ms: i64 = -62_135_596_800_000; // 0001-01-01
        while ms < 253_402_300_800_000 {
            // to 9999-12-31, in steps that visit every field's values
            assert_eq!(rfc3339(ms), formatted(ms), "{ms}");
            ms += 7_777_777_777;
        }
        for ms in [-1, 0, 999, 1_000, 86_399_999, 253_402_300_799_999, 253_402_300_800_000, i64::MAX / 2, i64::MIN / 2]
        {
            assert_eq!(rfc3339(ms), formatted(ms), "{ms}");
        }
    }
}
