//! `saelab features --proxies`: after a scan, and alone on an existing database, stdout is
//! one JSON array with each dictionary's token-concentration proxies, checked against the
//! database's own top examples.

mod common;

use common::{saelab, stderr, TinyFeatures};
use rusqlite::Connection;
use serde_json::Value;

#[test]
fn proxies_are_json_on_stdout_and_match_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("f.db");
    let build = TinyFeatures::new(dir.path(), 300, 0);
    let o = saelab()
        .args(build.args(&db))
        .arg("--proxies")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let after_scan: Value = serde_json::from_slice(&o.stdout).expect("stdout is JSON alone");
    let o = saelab()
        .args(["features", "--proxies", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let alone: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(after_scan, alone);
    let entries = alone.as_array().unwrap();
    assert_eq!(entries.len(), 2);

    // Recount dictionary `a` from its top examples.
    let conn = Connection::open(&db).unwrap();
    let mut q = conn
        .prepare(
            "SELECT e.feature, e.token FROM examples e JOIN dictionaries d ON d.id = e.dict \
             WHERE d.name = 'a' AND e.kind = 'top'",
        )
        .unwrap();
    let pairs: Vec<(i64, i64)> = q
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let mut by: std::collections::BTreeMap<i64, Vec<i64>> = Default::default();
    for (f, t) in pairs {
        by.entry(f).or_default().push(t);
    }
    let shares: Vec<f64> = by
        .values()
        .filter(|t| t.len() >= 5)
        .map(|t| {
            let top = t
                .iter()
                .map(|x| t.iter().filter(|y| *y == x).count())
                .max()
                .unwrap();
            top as f64 / t.len() as f64
        })
        .collect();
    let a = &entries[0];
    assert_eq!(a["dictionary"], "a");
    assert_eq!(
        a["features_measured"].as_u64().unwrap() as usize,
        shares.len()
    );
    assert!(!shares.is_empty(), "the test would prove nothing");
    let mean = shares.iter().sum::<f64>() / shares.len() as f64;
    assert!((a["mean_top_token_share"].as_f64().unwrap() - mean).abs() < 1e-12);
}

#[test]
fn proxies_of_a_missing_database_name_it() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("none.db");
    let o = saelab()
        .args(["features", "--proxies", "--db"])
        .arg(&missing)
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(stderr(&o).contains("none.db"), "{}", stderr(&o));
}
