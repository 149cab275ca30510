//! Kubernetes resource quantities (`250m`, `1`, `0.5`, `512Mi`, `1Gi`, `1e3`) as millicores
//! and MiB.

/// Parses a quantity into its value in base units (cores, bytes).
pub fn parse(text: &str) -> Option<f64> {
    let text = text.trim();
    let split = text
        .find(|c: char| c.is_ascii_alphabetic() && c != 'e' && c != 'E')
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let factor = match suffix {
        "" => 1.0,
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "Ki" => 1024.0,
        "Mi" => 1024.0 * 1024.0,
        "Gi" => 1024.0 * 1024.0 * 1024.0,
        "Ti" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        "Pi" => 1024.0 * 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    let value = number * factor;
    (value.is_finite() && value >= 0.0).then_some(value)
}

/// A CPU quantity in millicores, rounded up.
pub fn cpu_millis(text: &str) -> Option<u32> {
    parse(text).map(|cores| saturate((cores * 1000.0).ceil()))
}

/// A memory quantity in MiB, rounded up.
pub fn memory_mib(text: &str) -> Option<u32> {
    parse(text).map(|bytes| saturate((bytes / (1024.0 * 1024.0)).ceil()))
}

fn saturate(value: f64) -> u32 {
    if value >= f64::from(u32::MAX) {
        u32::MAX
    } else {
        value as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_quantities_become_millicores() {
        assert_eq!(cpu_millis("250m"), Some(250));
        assert_eq!(cpu_millis("1"), Some(1000));
        assert_eq!(cpu_millis("0.5"), Some(500));
        assert_eq!(cpu_millis("1.5"), Some(1500));
        assert_eq!(cpu_millis("100u"), Some(1));
    }

    #[test]
    fn memory_quantities_become_mebibytes() {
        assert_eq!(memory_mib("512Mi"), Some(512));
        assert_eq!(memory_mib("1Gi"), Some(1024));
        assert_eq!(memory_mib("128M"), Some(123));
        assert_eq!(memory_mib("1e9"), Some(954));
        assert_eq!(memory_mib("1048576"), Some(1));
    }

    #[test]
    fn nonsense_is_not_a_quantity() {
        assert_eq!(parse("lots"), None);
        assert_eq!(parse("12Xi"), None);
        assert_eq!(parse("-1"), None);
        assert_eq!(parse(""), None);
    }
}
