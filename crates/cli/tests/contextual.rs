//! `saelab eval` and `saelab features` on contextual dictionaries: carry and temporal
//! folders are read by their cfg.json's architecture, evaluated beside a per-position one,
//! and their results carry the context share and persistence; their feature database
//! records the codes that are on, and the browser says so; settings that do not apply are
//! refused clearly.

mod common;

use std::path::Path;
use std::process::Output;

use common::{saelab, stderr, tiny_llama, TINY_D_MODEL, TINY_HOOK};

use saelab_sae::contextual::carry::CarrySae;
use saelab_sae::contextual::temporal_train::{TemporalConfig, TemporalTrainer};
use saelab_sae::SaeWeights;

fn carry(hook: Option<&str>) -> CarrySae {
    let w = SaeWeights::init_tied(TINY_D_MODEL, 128, 1.0, 4);
    let mut c = CarrySae::new(w, 3, vec![0.9; 128], 1e-3).unwrap();
    c.metadata.hook_name = hook.map(str::to_string);
    c
}

fn save_carry(dir: &Path, hook: Option<&str>) -> String {
    carry(hook).save(dir).unwrap();
    dir.display().to_string()
}

fn save_temporal(dir: &Path) -> String {
    let mut d = TemporalTrainer::new(TemporalConfig::new(TINY_D_MODEL, 128, Some(4)))
        .unwrap()
        .dictionary();
    d.metadata.hook_name = Some(TINY_HOOK.to_string());
    d.save(dir).unwrap();
    dir.display().to_string()
}

fn eval(sae: &[String], extra: &[&str], json: &Path) -> Output {
    let mut c = saelab();
    c.args(["eval", "--model", &tiny_llama(), "--corpus", "wiki"]);
    c.args(["--tokens", "320", "--ctx", "32"]);
    for s in sae {
        c.args(["--sae", s]);
    }
    c.args(extra).arg("--json").arg(json).output().unwrap()
}

fn num(v: &serde_json::Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

#[test]
fn carry_and_temporal_folders_are_evaluated_with_their_context_numbers() {
    let tmp = tempfile::tempdir().unwrap();
    let c = save_carry(&tmp.path().join("carry"), Some(TINY_HOOK));
    let t = save_temporal(&tmp.path().join("temporal"));
    let p = common::save_random_dictionary(
        saelab_sae::Activation::TopK { k: 4 },
        TINY_D_MODEL,
        64,
        3,
        &tmp.path().join("topk"),
    );
    let json = tmp.path().join("eval.json");
    let o = eval(&[c, t, p], &[], &json);
    assert!(o.status.success(), "{}", stderr(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("carry: context share"), "{stdout}");
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let dicts = r["dictionaries"].as_array().unwrap();
    assert_eq!(dicts.len(), 3);
    for (d, architecture) in dicts[..2].iter().zip(["carry", "temporal"]) {
        assert_eq!(d["architecture"], architecture);
        let ctx = &d["contextual"];
        let share = num(&ctx["context_share"]);
        assert!(share > 0.0 && share < 1.0, "{architecture}: {share}");
        assert!(num(&ctx["l0_on"]) >= num(&d["sparsity"]["l0"]));
        let p = &ctx["persistence"];
        assert!(num(&p["latents"]) > 0.0, "{architecture}: {p}");
        let stay = num(&p["p_stay_median"]);
        assert!((0.0..=1.0).contains(&stay), "{architecture}: {stay}");
        assert!(num(&p["mean_run_median"]) >= 1.0);
        assert_eq!(p["min_fires"], 5);
        // A lossy dictionary spliced in changes the model's predictions.
        assert!(num(&d["downstream"]["kl"]) > 0.0);
        assert_eq!(d["latents"]["decoder_norm"].as_array().unwrap().len(), 128);
    }
    // TopK pays for k codes at every position; the carry dictionary for its onsets only.
    assert_eq!(num(&dicts[0]["sparsity"]["l0"]), 3.0);
    assert!(dicts[2].get("contextual").is_none());
    let report = std::fs::read_to_string(tmp.path().join("report.html")).unwrap();
    assert!(
        report.contains("context share"),
        "the report shows the context rows"
    );
}

#[test]
fn what_does_not_apply_to_a_contextual_dictionary_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let c = save_carry(&tmp.path().join("carry"), Some(TINY_HOOK));
    let json = tmp.path().join("eval.json");
    let o = eval(std::slice::from_ref(&c), &["--prune-densest", "4"], &json);
    let err = stderr(&o);
    assert!(!o.status.success());
    assert!(
        err.contains("--prune-densest") && err.contains("carry") && err.contains(&c),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");

    // No hook named, and none given.
    let bare = save_carry(&tmp.path().join("bare"), None);
    let o = eval(std::slice::from_ref(&bare), &[], &json);
    let err = stderr(&o);
    assert!(!o.status.success());
    assert!(err.contains("--hook") && err.contains(&bare), "{err}");
    // --hook places it.
    let o = eval(&[bare], &["--hook", TINY_HOOK], &json);
    assert!(o.status.success(), "{}", stderr(&o));

    // A carry folder whose cfg.json is wrong names the file and the field.
    let broken = tmp.path().join("broken");
    save_carry(&broken, Some(TINY_HOOK));
    let cfg_path = broken.join("cfg.json");
    let mut cfg: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&cfg_path).unwrap()).unwrap();
    cfg["k"] = serde_json::json!(1000);
    std::fs::write(&cfg_path, cfg.to_string()).unwrap();
    let o = eval(&[broken.display().to_string()], &[], &json);
    let err = stderr(&o);
    assert!(!o.status.success());
    assert!(err.contains("cfg.json") && err.contains('k'), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn a_carry_folder_builds_a_feature_database_the_browser_reads() {
    let tmp = tempfile::tempdir().unwrap();
    let c = save_carry(&tmp.path().join("carry"), Some(TINY_HOOK));
    let corpus = tmp.path().join("corpus.txt");
    let text: String = (0..30)
        .map(|i| format!("{i}. The river runs to the sea, and the road follows the river.\n\n"))
        .collect();
    std::fs::write(&corpus, text).unwrap();
    let db = tmp.path().join("features.db");
    let o = saelab()
        .args(["features", "--model", &tiny_llama(), "--corpus"])
        .arg(&corpus)
        .args(["--ctx", "16", "--tokens", "200", "--ablate-top", "1"])
        .args(["--sae", &format!("carry={c}"), "--db"])
        .arg(&db)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let conn = rusqlite::Connection::open(&db).unwrap();
    let (architecture, l0): (String, f64) = conn
        .query_row(
            "SELECT architecture, l0 FROM dictionaries WHERE name = 'carry'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(architecture, "carry");
    // Codes on, carried ones included: more than the 3 onsets paid for per position.
    assert!(l0 > 3.0, "l0 {l0}");
    let feature: i64 = conn
        .query_row(
            "SELECT feature FROM examples WHERE kind = 'top' ORDER BY value DESC LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap();

    let mut options = saelab_serve::Options::new(&db);
    options.port = 0;
    let server = saelab_serve::Server::bind(&options).expect("the server starts");
    let addr = server.local_addr().unwrap();
    std::thread::spawn(move || server.run());
    let page = saelab_serve::client::get(addr, &format!("/d/carry/f/{feature}")).unwrap();
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains("A contextual (carry) dictionary"),
        "{}",
        page.body
    );
}
