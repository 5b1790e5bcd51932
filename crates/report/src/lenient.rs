//! Field types that accept whatever an eval or metrics file holds, so that one odd value
//! shows as "n/a" in the report instead of refusing the whole page.

use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// A number that may be missing, null, written as a string ("NaN", "inf"), or of the wrong
/// type; anything unreadable becomes `None`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Num(pub Option<f64>);

impl Num {
    /// The value when it is a finite number: what plots may draw.
    pub fn finite(self) -> Option<f64> {
        self.0.filter(|v| v.is_finite())
    }

    /// The value formatted for a table cell ("n/a" when absent).
    pub fn show(self) -> String {
        match self.0 {
            Some(v) => crate::format::number(v),
            None => crate::format::NOT_AVAILABLE.to_string(),
        }
    }

    /// A non-negative whole count formatted with separators, else `show`.
    pub fn show_count(self) -> String {
        match self.finite() {
            Some(v) if v >= 0.0 && v.fract() == 0.0 => crate::format::count(v as u64),
            _ => self.show(),
        }
    }
}

impl<'de> Deserialize<'de> for Num {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Num(match Value::deserialize(d)? {
            Value::Number(n) => n.as_f64(),
            // Rust's float parser reads "NaN", "inf" and "infinity" in any case.
            Value::String(s) => s.trim().parse::<f64>().ok(),
            _ => None,
        }))
    }
}

/// A piece of text that may be missing, null, or a number where a string was expected.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Text(pub Option<String>);

impl Text {
    pub fn or<'a>(&'a self, fallback: &'a str) -> &'a str {
        self.0.as_deref().unwrap_or(fallback)
    }
}

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Text(match Value::deserialize(d)? {
            Value::Null => None,
            Value::String(s) => Some(s),
            other => Some(other.to_string()),
        }))
    }
}

/// For `deserialize_with`: a null list or object reads as its default (empty).
pub fn nullable<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// A plain rendering of any JSON value for the page: strings without quotes, the rest as JSON.
pub fn plain(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => crate::format::NOT_AVAILABLE.to_string(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn odd_numbers_read_as_absent_or_non_finite() {
        let v: Vec<Num> =
            serde_json::from_str(r#"[1.5, null, "NaN", "inf", "x", true, [1], 3]"#).unwrap();
        assert_eq!(v[0].finite(), Some(1.5));
        assert_eq!(v[1], Num(None));
        assert!(v[2].0.unwrap().is_nan() && v[2].finite().is_none());
        assert_eq!(v[3].0, Some(f64::INFINITY));
        assert_eq!(v[4], Num(None));
        assert_eq!(v[5], Num(None));
        assert_eq!(v[6], Num(None));
        assert_eq!(v[7].show_count(), "3");
        assert_eq!(v[1].show(), "n/a");
        assert_eq!(v[2].show(), "n/a");
    }
}
