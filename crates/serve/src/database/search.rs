//! Token search: the features whose logit lens or top examples involve a token.

use std::collections::BTreeMap;

use rusqlite::Connection;
use serde::Serialize;

/// Vocabulary matches beyond this many are not searched (a needle like "a" can match a few
/// casings and spacings; thousands would mean the needle is not a token).
pub const MAX_TOKENS: usize = 64;
/// Features shown per search.
pub const MAX_RESULTS: usize = 200;

#[derive(Debug, Default, Serialize)]
pub struct SearchHit {
    pub feature: u32,
    /// Lens entries naming a matched token: (side, rank, token, logit).
    pub lens: Vec<(i8, u32, u32, f64)>,
    /// Top examples whose own token is a matched one: (token, how many, highest value).
    pub examples: Vec<(u32, u64, f64)>,
}

impl SearchHit {
    fn example_count(&self) -> u64 {
        self.examples.iter().map(|e| e.1).sum()
    }

    fn best_lens_rank(&self) -> u32 {
        self.lens
            .iter()
            .filter(|l| l.0 > 0)
            .map(|l| l.1)
            .min()
            .unwrap_or(u32::MAX)
    }
}

/// Features matching any of `tokens`, most matching top examples first, then best lens rank.
pub fn search(conn: &Connection, dict: i64, tokens: &[u32]) -> rusqlite::Result<Vec<SearchHit>> {
    let tokens = &tokens[..tokens.len().min(MAX_TOKENS)];
    if tokens.is_empty() {
        return Ok(Vec::new());
    }
    // Placeholders only; every value is bound.
    let marks = vec!["?"; tokens.len()].join(",");
    let mut params: Vec<i64> = vec![dict];
    params.extend(tokens.iter().map(|&t| i64::from(t)));
    let mut hits: BTreeMap<u32, SearchHit> = BTreeMap::new();

    let sql = format!(
        "SELECT feature, side, rank, token, value FROM lens WHERE dict = ?1 AND token IN ({marks})"
    );
    let mut stmt = conn.prepare(&sql)?;
    let mut rows = stmt.query(rusqlite::params_from_iter(&params))?;
    while let Some(r) = rows.next()? {
        let feature: u32 = r.get(0)?;
        let side: i64 = r.get(1)?;
        let entry = (side.signum() as i8, r.get(2)?, r.get(3)?, r.get(4)?);
        hits.entry(feature).or_default().lens.push(entry);
    }

    let sql = format!(
        "SELECT feature, token, count(*), max(value) FROM examples \
         WHERE dict = ?1 AND token IN ({marks}) AND kind = 'top' GROUP BY feature, token"
    );
    let mut stmt = conn.prepare(&sql)?;
    let mut rows = stmt.query(rusqlite::params_from_iter(&params))?;
    while let Some(r) = rows.next()? {
        let feature: u32 = r.get(0)?;
        let entry = (r.get(1)?, super::get_u64(r, 2)?, r.get(3)?);
        hits.entry(feature).or_default().examples.push(entry);
    }

    let mut hits: Vec<SearchHit> = hits
        .into_iter()
        .map(|(feature, mut h)| {
            h.feature = feature;
            h.lens.sort_by_key(|l| (-l.0, l.1));
            h
        })
        .collect();
    hits.sort_by(|a, b| {
        b.example_count()
            .cmp(&a.example_count())
            .then(a.best_lens_rank().cmp(&b.best_lens_rank()))
            .then(a.feature.cmp(&b.feature))
    });
    hits.truncate(MAX_RESULTS);
    Ok(hits)
}
