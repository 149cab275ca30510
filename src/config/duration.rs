//! Human durations such as `12h`, `90m`, `1h30m`, `2d` or `45s`.

use chrono::Duration;

/// What can be wrong with a duration string.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// Not of the form `<number><unit>...` with units d, h, m, s.
    #[error("bad duration '{0}': expected a number and unit such as 90m, 3h, 1h30m or 2d")]
    Malformed(String),
    /// A zero duration where a positive one is needed.
    #[error("duration '{0}' must be greater than zero")]
    Zero(String),
}

/// Parses a positive duration made of `<number><unit>` parts (units `d`, `h`, `m`, `s`).
pub fn parse(text: &str) -> Result<Duration, Error> {
    let malformed = || Error::Malformed(text.to_string());
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(malformed());
    }
    let mut total = Duration::zero();
    let mut number = String::new();
    for ch in trimmed.chars() {
        if ch.is_ascii_digit() {
            number.push(ch);
            continue;
        }
        let value: i64 = number.parse().map_err(|_| malformed())?;
        number.clear();
        let part = match ch {
            'd' => Duration::try_days(value),
            'h' => Duration::try_hours(value),
            'm' => Duration::try_minutes(value),
            's' => Duration::try_seconds(value),
            _ => None,
        }
        .ok_or_else(malformed)?;
        total = total.checked_add(&part).ok_or_else(malformed)?;
    }
    if !number.is_empty() {
        return Err(malformed());
    }
    if total <= Duration::zero() {
        return Err(Error::Zero(text.to_string()));
    }
    Ok(total)
}

/// Formats a duration the way [`parse`] reads it, largest units first (`1h30m`).
pub fn format(duration: Duration) -> String {
    let mut seconds = duration.num_seconds().max(0);
    let mut out = String::new();
    for (unit, size) in [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)] {
        if seconds >= size {
            out.push_str(&format!("{}{unit}", seconds / size));
            seconds %= size;
        }
    }
    if out.is_empty() {
        out.push_str("0s");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compound_durations_add_up() {
        assert_eq!(parse("1h30m"), Ok(Duration::minutes(90)));
        assert_eq!(parse("2d"), Ok(Duration::hours(48)));
        assert_eq!(parse("45s"), Ok(Duration::seconds(45)));
    }

    #[test]
    fn malformed_and_zero_durations_are_errors() {
        assert!(matches!(parse("12"), Err(Error::Malformed(_))));
        assert!(matches!(parse("h"), Err(Error::Malformed(_))));
        assert!(matches!(parse("3 hours"), Err(Error::Malformed(_))));
        assert!(matches!(parse("0m"), Err(Error::Zero(_))));
    }

    #[test]
    fn format_round_trips() {
        for text in ["1h30m", "2d", "45s", "1d2h3m4s"] {
            assert_eq!(format(parse(text).unwrap()), text);
        }
    }
}
