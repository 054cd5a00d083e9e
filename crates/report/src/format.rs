//! Number formatting for the report: one place decides how a count, a
//! latency or a ratio is spelled, so every table and sentence agrees.
//!
//! Counts get thousands separators; measured quantities get three
//! significant digits (the runs are not more precise than that); latencies
//! are always shown in milliseconds so that columns compare at a glance.

/// A count with thousands separators: `12345` → `12,345`.
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A measured quantity with three significant digits; at 1,000 and above,
/// a rounded count with separators. Not-a-number and infinities show as `—`.
pub fn sig(x: f64) -> String {
    if !x.is_finite() {
        return "—".to_owned();
    }
    if x.abs() >= 999.5 {
        let rounded = x.abs().round();
        // Lossless for any count a run can produce (< 2^53).
        let s = count(rounded as u64);
        return if x < 0.0 { format!("-{s}") } else { s };
    }
    if x == 0.0 {
        return "0".to_owned();
    }
    // Digits after the point for 3 significant digits: 123 → 0, 12.3 → 1,
    // 0.0123 → 4.
    let magnitude = x.abs().log10().floor() as i32;
    let decimals = usize::try_from((2 - magnitude).max(0)).unwrap_or(0);
    let s = format!("{x:.decimals$}");
    // A value that rounds up to the next magnitude (9.996 → "10.00") has
    // one digit too many: show one decimal less.
    let significant = s.replace(['-', '.'], "");
    if significant.trim_start_matches('0').len() > 3 && decimals > 0 {
        let decimals = decimals - 1;
        return format!("{x:.decimals$}");
    }
    s
}

/// A rate or other float that reads best as a plain number: `100.0` →
/// `100`, `0.5` → `0.5`, a whole number with thousands separators: `2000.0`
/// → `2,000`.
pub fn plain(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        // Whole and below 2^53: the conversion is exact.
        let digits = count(x.abs() as u64);
        if x < 0.0 {
            format!("-{digits}")
        } else {
            digits
        }
    } else {
        format!("{x}")
    }
}

/// A fraction as a percentage with three significant digits: `0.0123` →
/// `1.23%`.
pub fn percent(fraction: f64) -> String {
    format!("{}%", sig(fraction * 100.0))
}

/// Text made safe for one markdown table cell: no pipes, no line breaks,
/// at most `max` characters.
pub fn cell_text(text: &str, max: usize) -> String {
    let flat: String = text
        .chars()
        .map(|c| if c == '\n' || c == '\r' { ' ' } else { c })
        .collect();
    let mut out: String = flat.chars().take(max).collect();
    if flat.chars().count() > max {
        out.push('…');
    }
    out.replace('|', "\\|")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_get_separators() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1000), "1,000");
        assert_eq!(count(1_234_567), "1,234,567");
    }

    #[test]
    fn three_significant_digits() {
        assert_eq!(sig(0.0), "0");
        assert_eq!(sig(0.012_34), "0.0123");
        assert_eq!(sig(1.234), "1.23");
        assert_eq!(sig(12.34), "12.3");
        assert_eq!(sig(123.4), "123");
        assert_eq!(sig(84_210.4), "84,210");
        assert_eq!(sig(9.996), "10.0");
        assert_eq!(sig(0.099_96), "0.100");
        assert_eq!(sig(-2.5), "-2.50");
        assert_eq!(sig(f64::NAN), "—");
    }

    #[test]
    fn plain_numbers_and_percentages() {
        assert_eq!(plain(100.0), "100");
        assert_eq!(plain(0.5), "0.5");
        assert_eq!(plain(2000.0), "2,000");
        assert_eq!(plain(-3.0), "-3");
        assert_eq!(percent(0.0123), "1.23%");
    }

    #[test]
    fn cells_are_flattened_and_escaped() {
        assert_eq!(cell_text("a|b\nc", 100), "a\\|b c");
        assert_eq!(cell_text("abcdef", 3), "abc…");
    }
}
