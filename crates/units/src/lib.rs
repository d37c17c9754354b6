//! `ld-units`: the one duration syntax of every file an admin edits (`acdd.toml` and the
//! dialplan), so `"1min30s"` means the same everywhere. Each caller applies its own bounds
//! (the dialplan refuses zero pauses, the ACD config accepts a zero wrap-up).
#![forbid(unsafe_code)]

use std::time::Duration;

/// What the error says when the syntax is wrong.
pub const EXPECTED: &str = "expected a whole number followed by ms, s, min or h (\"15s\")";

/// `"500ms"`, `"15s"`, `"10min"` (or `"10m"`), `"1h"`, or a sum written together
/// (`"1min30s"`). Surrounding blanks are ignored; nothing else is.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(EXPECTED.into());
    }
    let mut total = Duration::ZERO;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(EXPECTED.into());
        }
        let value: u64 = rest[..digits].parse().map_err(|_| "too long".to_string())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit_ms: u64 = match &rest[..unit_len] {
            "ms" => 1,
            "s" => 1_000,
            "min" | "m" => 60_000,
            "h" => 3_600_000,
            _ => return Err(EXPECTED.into()),
        };
        rest = &rest[unit_len..];
        let ms = value
            .checked_mul(unit_ms)
            .ok_or_else(|| "too long".to_string())?;
        total = total.saturating_add(Duration::from_millis(ms));
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_and_sums() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration(" 15s "), Ok(Duration::from_secs(15)));
        assert_eq!(parse_duration("10min"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("1min30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
    }

    #[test]
    fn wrong_syntax_is_refused_with_the_expected_form() {
        for bad in [
            "", " ", "15", "s", "1.5s", "15 s", "-1s", "15sec", "1h 30min", "abc",
        ] {
            assert_eq!(parse_duration(bad), Err(EXPECTED.to_string()), "{bad:?}");
        }
        assert_eq!(
            parse_duration("99999999999999999999s"),
            Err("too long".into())
        );
        assert_eq!(
            parse_duration("18446744073709551615h"),
            Err("too long".into())
        );
    }
}
