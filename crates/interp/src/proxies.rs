//! Cheap interpretability proxies read from a feature database, to compare dictionaries
//! without reading their features one by one: how often a feature's top examples all sit
//! on the same token. A feature whose top examples share a token is easy to name but may be
//! little more than a token detector; a dictionary where few do has more contextual features
//! (or more noise). Neither is "better" alone: the proxy is for comparing like with like.

use std::collections::BTreeMap;
use std::path::Path;

use rusqlite::Connection;
use serde::Serialize;

use crate::db::open::explain;
use crate::error::Result;

/// Features with fewer top examples than this are left out (too rare to say).
pub const MIN_EXAMPLES: usize = 5;
/// A feature counts as single-token when at least this share of its top examples sit on
/// its most common token.
pub const SINGLE_TOKEN_SHARE: f64 = 0.5;

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TokenConcentration {
    pub dictionary: String,
    pub hook: String,
    pub d_sae: usize,
    /// Features with at least `MIN_EXAMPLES` top examples.
    pub features_measured: usize,
    /// Mean over those features of the share of top examples on the most common token.
    pub mean_top_token_share: f64,
    /// Share of those features whose top examples sit on one token at least half the time.
    pub single_token_features: f64,
    /// Mean number of distinct tokens among a feature's top examples.
    pub mean_distinct_tokens: f64,
}

/// The proxies of every dictionary in the database at `path`, in its order.
pub fn token_concentration(conn: &Connection, path: &Path) -> Result<Vec<TokenConcentration>> {
    let mut dicts = conn
        .prepare("SELECT id, name, hook, d_sae FROM dictionaries ORDER BY id")
        .map_err(|e| explain(path, e))?;
    let rows: Vec<(i64, String, String, i64)> = dicts
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .and_then(|rows| rows.collect())
        .map_err(|e| explain(path, e))?;
    let mut examples = conn
        .prepare("SELECT feature, token FROM examples WHERE dict = ?1 AND kind = 'top'")
        .map_err(|e| explain(path, e))?;
    let mut out = Vec::new();
    for (id, name, hook, d_sae) in rows {
        let pairs: Vec<(i64, i64)> = examples
            .query_map([id], |r| Ok((r.get(0)?, r.get(1)?)))
            .and_then(|rows| rows.collect())
            .map_err(|e| explain(path, e))?;
        out.push(summarise(name, hook, d_sae as usize, &pairs));
    }
    Ok(out)
}

/// The proxies from (feature, token) of every top example of one dictionary.
fn summarise(
    dictionary: String,
    hook: String,
    d_sae: usize,
    pairs: &[(i64, i64)],
) -> TokenConcentration {
    // Ordered maps: the sums run in the same order on every call.
    let mut by_feature: BTreeMap<i64, BTreeMap<i64, usize>> = BTreeMap::new();
    for &(feature, token) in pairs {
        *by_feature
            .entry(feature)
            .or_default()
            .entry(token)
            .or_default() += 1;
    }
    let (mut n, mut share_sum, mut single, mut distinct_sum) = (0usize, 0.0, 0usize, 0usize);
    for tokens in by_feature.values() {
        let total: usize = tokens.values().sum();
        if total < MIN_EXAMPLES {
            continue;
        }
        let top = *tokens.values().max().unwrap_or(&0);
        let share = top as f64 / total as f64;
        n += 1;
        share_sum += share;
        single += usize::from(share >= SINGLE_TOKEN_SHARE);
        distinct_sum += tokens.len();
    }
    let mean = |sum: f64| if n == 0 { f64::NAN } else { sum / n as f64 };
    TokenConcentration {
        dictionary,
        hook,
        d_sae,
        features_measured: n,
        mean_top_token_share: mean(share_sum),
        single_token_features: mean(single as f64),
        mean_distinct_tokens: mean(distinct_sum as f64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_are_counted_per_feature() {
        // Feature 0: 6 examples, 4 on token 9 (share 2/3, single-token, 3 distinct).
        // Feature 1: 5 examples on 5 tokens (share 1/5). Feature 2: 3 examples (left out).
        let mut pairs = vec![(0, 9), (0, 9), (0, 9), (0, 9), (0, 1), (0, 2)];
        pairs.extend((0..5).map(|t| (1, t)));
        pairs.extend([(2, 7), (2, 7), (2, 7)]);
        let s = summarise("a".into(), "h".into(), 8, &pairs);
        assert_eq!(s.features_measured, 2);
        assert!((s.mean_top_token_share - (4.0 / 6.0 + 0.2) / 2.0).abs() < 1e-12);
        assert_eq!(s.single_token_features, 0.5);
        assert_eq!(s.mean_distinct_tokens, 4.0);
    }
}
