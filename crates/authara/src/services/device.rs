//! People-readable device names from user agents, for the account page.

/// "Firefox on Linux", "Safari on iPhone"... from a user agent, for people, not for policy.
pub fn describe_device(ua: &str) -> (String, &'static str) {
    let browser = if ua.contains("Edg/") {
        "Edge"
    } else if ua.contains("OPR/") || ua.contains("Opera") {
        "Opera"
    } else if ua.contains("Firefox/") || ua.contains("FxiOS") {
        "Firefox"
    } else if ua.contains("Chrome/") || ua.contains("CriOS") || ua.contains("Chromium") {
        "Chrome"
    } else if ua.contains("Safari/") {
        "Safari"
    } else if ua.is_empty() {
        "Unknown browser"
    } else if ua.starts_with("curl/") {
        "curl"
    } else {
        "Other browser"
    };
    let (os, kind) = if ua.contains("iPhone") {
        ("iPhone", "phone")
    } else if ua.contains("iPad") {
        ("iPad", "tablet")
    } else if ua.contains("Android") {
        ("Android", if ua.contains("Mobile") { "phone" } else { "tablet" })
    } else if ua.contains("Windows") {
        ("Windows", "computer")
    } else if ua.contains("Mac OS X") || ua.contains("Macintosh") {
        ("macOS", "computer")
    } else if ua.contains("CrOS") {
        ("ChromeOS", "computer")
    } else if ua.contains("Linux") {
        ("Linux", "computer")
    } else {
        ("an unknown system", "device")
    };
    (format!("{browser} on {os}"), kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices() {
        let chrome_linux = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/156.0.0.0 Safari/537.36";
        assert_eq!(describe_device(chrome_linux).0, "Chrome on Linux");
        let iphone = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1";
        assert_eq!(describe_device(iphone), ("Safari on iPhone".to_owned(), "phone"));
        let firefox = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0";
        assert_eq!(describe_device(firefox).0, "Firefox on Windows");
        assert_eq!(describe_device("").0, "Unknown browser on an unknown system");
    }
}
