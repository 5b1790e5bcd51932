//! Query parameters with messages that name the parameter and say what was wrong.

use std::collections::HashMap;
use std::str::FromStr;

use crate::http_error::{HttpError, HttpResult};

pub struct Params(pub HashMap<String, String>);

impl Params {
    /// The value, or None when absent or blank.
    pub fn text(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.trim().is_empty())
    }

    pub fn required_text(&self, name: &str) -> HttpResult<&str> {
        self.text(name)
            .ok_or_else(|| HttpError::bad_request(format!("missing parameter `{name}`")))
    }

    pub fn number<T: FromStr>(&self, name: &str, what: &str) -> HttpResult<Option<T>> {
        match self.text(name) {
            None => Ok(None),
            Some(v) => v.trim().parse::<T>().map(Some).map_err(|_| {
                HttpError::bad_request(format!("parameter `{name}`: `{v}` is not {what}"))
            }),
        }
    }

    pub fn required_number<T: FromStr>(&self, name: &str, what: &str) -> HttpResult<T> {
        self.number(name, what)?
            .ok_or_else(|| HttpError::bad_request(format!("missing parameter `{name}`")))
    }

    /// A finite float (`inf` and `NaN` parse but mean nothing here).
    pub fn finite(&self, name: &str) -> HttpResult<Option<f32>> {
        match self.number::<f32>(name, "a number")? {
            Some(v) if !v.is_finite() => Err(HttpError::bad_request(format!(
                "parameter `{name}`: must be a finite number"
            ))),
            other => Ok(other),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.values().all(|v| v.trim().is_empty())
    }
}

/// A feature index from a path segment.
pub fn feature_index(segment: &str, d_sae: u32) -> HttpResult<u32> {
    let feature: u32 = segment.parse().map_err(|_| {
        HttpError::bad_request(format!(
            "`{segment}` is not a feature index (a whole number from 0 to {})",
            d_sae.saturating_sub(1)
        ))
    })?;
    if feature >= d_sae {
        return Err(HttpError::not_found(format!(
            "feature {feature} is outside this dictionary's {d_sae} features"
        )));
    }
    Ok(feature)
}
