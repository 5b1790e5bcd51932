//! Databases the browser refuses, each with a message naming the file, and a dictionary
//! that no longer matches its row (browsing works, its live pages explain).

mod common;

use std::path::Path;

use common::fixture::{build, Spec};
use rusqlite::Connection;
use saelab_serve::{Options, Server};

fn refusal(db: &Path) -> String {
    let mut options = Options::new(db);
    options.port = 0;
    match Server::bind(&options) {
        Ok(_) => panic!("{} was accepted", db.display()),
        Err(e) => e.to_string(),
    }
}

fn fixture() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let db = build(dir.path(), &Spec::small()).db;
    (dir, db)
}

fn set(db: &Path, sql: &str) {
    Connection::open(db).unwrap().execute_batch(sql).unwrap();
}

#[test]
fn another_format_or_schema_version_is_refused_with_both_versions() {
    let (_dir, db) = fixture();
    // A database from before persistence was stored (version 1), and one from a later saelab.
    for older_or_newer in ["1", "3"] {
        set(
            &db,
            &format!("UPDATE meta SET value = '{older_or_newer}' WHERE key = 'schema_version'"),
        );
        let e = refusal(&db);
        assert!(e.contains(&db.display().to_string()), "{e}");
        assert!(
            e.contains(&format!("schema version `{older_or_newer}`"))
                && e.contains("schema version 2"),
            "{e}"
        );
    }

    set(
        &db,
        "UPDATE meta SET value = 'other-tool' WHERE key = 'format'",
    );
    let e = refusal(&db);
    assert!(e.contains(&db.display().to_string()), "{e}");
    assert!(
        e.contains("`other-tool`") && e.contains("`saelab-features`"),
        "{e}"
    );
}

#[test]
fn a_database_of_another_model_is_refused() {
    let (_dir, db) = fixture();
    set(
        &db,
        r#"UPDATE meta SET value = '{"d_model":576,"n_layers":30,"vocab_size":49152}' WHERE key = 'model_config'"#,
    );
    let e = refusal(&db);
    assert!(e.contains(&db.display().to_string()), "{e}");
    assert!(e.contains("d_model 576") && e.contains("d_model 32"), "{e}");
}

#[test]
fn truncated_and_foreign_files_are_refused() {
    let (dir, db) = fixture();
    let bytes = std::fs::read(&db).unwrap();
    let truncated = dir.path().join("truncated.sqlite");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let e = refusal(&truncated);
    assert!(e.contains(&truncated.display().to_string()), "{e}");
    assert!(
        e.contains("damaged") || e.contains("not a SQLite database"),
        "{e}"
    );

    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "these are notes, not a database\n".repeat(200)).unwrap();
    let e = refusal(&text);
    assert!(
        e.contains(&text.display().to_string()) && e.contains("not a SQLite database"),
        "{e}"
    );

    let missing = dir.path().join("missing.sqlite");
    let e = refusal(&missing);
    assert!(
        e.contains(&missing.display().to_string()) && e.contains("no such file"),
        "{e}"
    );

    let empty_sqlite = dir.path().join("empty.sqlite");
    Connection::open(&empty_sqlite)
        .unwrap()
        .execute_batch("CREATE TABLE t (x)")
        .unwrap();
    let e = refusal(&empty_sqlite);
    assert!(e.contains("not a saelab feature database"), "{e}");
}

#[test]
fn a_locked_database_is_refused() {
    let (_dir, db) = fixture();
    let holder = Connection::open(&db).unwrap();
    holder
        .execute_batch("BEGIN EXCLUSIVE; UPDATE meta SET value = value;")
        .unwrap();
    let e = refusal(&db);
    assert!(
        e.contains(&db.display().to_string()) && e.contains("locked"),
        "{e}"
    );
    holder.execute_batch("ROLLBACK").unwrap();
}

#[test]
fn a_dictionary_that_no_longer_matches_keeps_browsing_and_explains_live_pages() {
    let (_dir, db) = fixture();
    set(
        &db,
        "UPDATE dictionaries SET d_sae = 49 WHERE name = 'resid0-topk'",
    );
    let server = common::start(&db);
    let list: serde_json::Value = serde_json::from_str(&server.page("/api/dictionaries")).unwrap();
    let why = list[0]["unavailable"].as_str().unwrap();
    assert!(
        why.contains("d_sae 48") && why.contains("d_sae 49"),
        "{why}"
    );
    assert!(list[1]["unavailable"].is_null());
    let page = server.page("/d/resid0-topk");
    assert!(page.contains("Live pages (ablation, what fires here, steering) are unavailable"));
    server.page("/d/resid0-topk/f/3");
    let r = server.get("/steer?dict=resid0-topk&feature=1&coef=1&prompt=Hi&tokens=4");
    assert_eq!(r.status, 503);
    assert!(r.body.contains("d_sae 49"), "{}", r.body);
    let fires = server.page("/fires?text=Hello");
    assert!(fires.contains("resid0-topk is left out"));
    assert!(fires.contains("href=\"/d/resid1-topk/f/"));
}
