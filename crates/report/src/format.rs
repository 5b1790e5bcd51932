//! Numbers as people read them: a few significant digits, separators in counts.

pub const NOT_AVAILABLE: &str = "n/a";

/// Four significant digits, scientific notation for very large or small magnitudes, "n/a" for
/// NaN and ∞ signs for infinities.
pub fn number(v: f64) -> String {
    significant(v, 4)
}

/// Three significant digits, for labels inside plots.
pub fn short(v: f64) -> String {
    significant(v, 3)
}

fn significant(v: f64, digits: i32) -> String {
    if v.is_nan() {
        return NOT_AVAILABLE.to_string();
    }
    if v.is_infinite() {
        return if v > 0.0 { "∞" } else { "−∞" }.to_string();
    }
    if v == 0.0 {
        return "0".to_string();
    }
    let magnitude = v.abs().log10().floor() as i32;
    if !(-3..6).contains(&magnitude) {
        let text = format!("{:.*e}", (digits - 1) as usize, v);
        return tidy_exponent(&text);
    }
    let decimals = (digits - 1 - magnitude).max(0) as usize;
    trim_zeros(format!("{v:.decimals$}"))
}

/// "1.500e-4" → "1.5e-4".
fn tidy_exponent(text: &str) -> String {
    match text.split_once('e') {
        Some((mantissa, exp)) => format!("{}e{exp}", trim_zeros(mantissa.to_string())),
        None => text.to_string(),
    }
}

fn trim_zeros(text: String) -> String {
    if !text.contains('.') {
        return text;
    }
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// 1234567 → "1,234,567".
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

/// Token counts and the like on axes: 1500 → "1.5k", 2e6 → "2M".
pub fn si(v: f64) -> String {
    if !v.is_finite() {
        return number(v);
    }
    let a = v.abs();
    let (scaled, suffix) = if a >= 1e9 {
        (v / 1e9, "G")
    } else if a >= 1e6 {
        (v / 1e6, "M")
    } else if a >= 1e3 {
        (v / 1e3, "k")
    } else {
        (v, "")
    };
    format!("{}{suffix}", significant(scaled, 3))
}

/// A percentage of a fraction: 0.0123 → "1.23%".
pub fn percent(fraction: f64) -> String {
    if !fraction.is_finite() {
        return number(fraction);
    }
    format!("{}%", significant(fraction * 100.0, 3))
}

/// 2 → "2nd", 11 → "11th", 23 → "23rd".
pub fn ordinal(n: usize) -> String {
    let suffix = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

/// 10 raised to an integer power, written with superscripts: -3 → "10⁻³".
pub fn power_of_ten(exponent: i32) -> String {
    const DIGITS: [char; 10] = ['⁰', '¹', '²', '³', '⁴', '⁵', '⁶', '⁷', '⁸', '⁹'];
    let mut out = String::from("10");
    if exponent < 0 {
        out.push('⁻');
    }
    for c in exponent.unsigned_abs().to_string().chars() {
        out.push(DIGITS[c as usize - '0' as usize]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_well() {
        assert_eq!(number(0.09), "0.09");
        assert_eq!(number(2.8134), "2.813");
        assert_eq!(number(57.6), "57.6");
        assert_eq!(number(16384.0), "16384");
        assert_eq!(number(1.5e-4), "1.5e-4");
        assert_eq!(number(2.5e7), "2.5e7");
        assert_eq!(number(f64::NAN), "n/a");
        assert_eq!(number(f64::NEG_INFINITY), "−∞");
        assert_eq!(count(1_234_567), "1,234,567");
        assert_eq!(count(999), "999");
        assert_eq!(si(1_500.0), "1.5k");
        assert_eq!(si(2_000_000.0), "2M");
        assert_eq!(percent(0.0123), "1.23%");
        assert_eq!(power_of_ten(-12), "10⁻¹²");
        assert_eq!(power_of_ten(0), "10⁰");
        assert_eq!(ordinal(2), "2nd");
        assert_eq!(ordinal(12), "12th");
        assert_eq!(ordinal(23), "23rd");
    }
}
