//! `saelab steer` end to end on the tiny Llama fixture: the α = 0 row is the model's own
//! greedy continuation, a feature and the same values given as a file steer alike, the
//! JSON document and the page are written, and bad inputs are refused by their flag.

mod common;

use std::path::Path;
use std::process::Output;

use common::{saelab, save_random_dictionary, stderr, tiny_llama, TINY_D_MODEL, TINY_HOOK};
use saelab_sae::Activation;
use serde_json::Value;

const PROMPT: &str = "The cat sat on";
const NEUTRAL: &str = "The river runs to the sea, and the road follows the river.";

fn steer(dir: &Path, extra: &[&str]) -> Output {
    let neutral = dir.join("neutral.txt");
    std::fs::write(&neutral, NEUTRAL).unwrap();
    saelab()
        .args(["steer", "--model", &tiny_llama(), "--prompt", PROMPT])
        .args(["--max-tokens", "8", "--neutral"])
        .arg(&neutral)
        .args(extra)
        .output()
        .unwrap()
}

fn dictionary(dir: &Path) -> String {
    save_random_dictionary(
        Activation::TopK { k: 4 },
        TINY_D_MODEL,
        64,
        3,
        &dir.join("dict"),
    )
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

#[test]
fn a_feature_sweep_writes_its_document_and_page() {
    let tmp = tempfile::tempdir().unwrap();
    let dict = dictionary(tmp.path());
    let (json, html) = (tmp.path().join("s.json"), tmp.path().join("s.html"));
    let o = steer(
        tmp.path(),
        &[
            "--sae",
            &dict,
            "--feature",
            "3",
            "--alpha",
            "-40,0,40",
            "--targets",
            " the, a",
            "--json",
            json.to_str().unwrap(),
            "--report",
            html.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let doc = read_json(&json);
    assert_eq!(doc["format"], "saelab-steer");
    assert_eq!(doc["version"], 1);
    assert_eq!(doc["hook"], TINY_HOOK);
    assert_eq!(doc["direction"]["source"], "feature");
    assert_eq!(doc["direction"]["feature"], 3);
    assert!(doc["direction"]["norm"].as_f64().unwrap() > 0.0);
    assert!(doc["activation_norm"].as_f64().unwrap() > 0.0);
    let rows = doc["rows"].as_array().unwrap();
    let alphas: Vec<f64> = rows.iter().map(|r| r["alpha"].as_f64().unwrap()).collect();
    assert_eq!(alphas, [-40.0, 0.0, 40.0]);

    // `saelab generate` encodes the prompt without the corpus windows' start token, and
    // steer reads it as the scan does (start token first), so the α = 0 row is compared
    // with the model's greedy decoding of that context.
    let m = saelab_model::load::load_hf_dir(Path::new(&tiny_llama()), "llama").unwrap();
    let context = saelab_interp::fires::context_ids(&m.tokenizer, PROMPT).unwrap();
    let plain = m
        .model
        .generate_greedy(&context, 8, m.tokenizer.eos_id())
        .unwrap();
    let zero = &rows[1];
    let ids: Vec<u32> = serde_json::from_value(zero["ids"].clone()).unwrap();
    assert_eq!(ids, plain);
    assert_eq!(zero["continuation"], m.tokenizer.decode(&plain).unwrap());
    assert_eq!(zero["neutral_ce_delta"], 0.0);
    assert_eq!(zero["target_logprob_shift"], 0.0);
    assert_eq!(zero["neutral_ce"], doc["neutral"]["ce"]);
    assert_ne!(rows[2]["ids"], zero["ids"]);
    assert_eq!(doc["targets"]["tokens"].as_array().unwrap().len(), 2);

    // One table row per α, in the given order.
    let stdout = String::from_utf8_lossy(&o.stdout);
    let lines: Vec<&str> = stdout
        .lines()
        .filter(|l| {
            let first = l.split_whitespace().next().unwrap_or("");
            ["-40", "0", "40"].contains(&first)
        })
        .collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    assert!(lines[0].trim_start().starts_with("-40") && lines[2].trim_start().starts_with("40"));

    let page = std::fs::read_to_string(&html).unwrap();
    assert_eq!(page.matches("<svg class=\"plot\"").count(), 2);
}

#[test]
fn a_direction_file_steers_as_the_same_feature_does() {
    let tmp = tempfile::tempdir().unwrap();
    let dict = dictionary(tmp.path());
    let sae = saelab_sae::format::load_any(Path::new(&dict)).unwrap();
    let values = saelab_interp::steer::decoder_direction(&sae, 5);
    let file = tmp.path().join("d.json");
    std::fs::write(&file, serde_json::to_string(&values).unwrap()).unwrap();
    let run = |source: &[&str], out: &str| {
        let json = tmp.path().join(out);
        let o = steer(
            tmp.path(),
            &[
                source,
                &["--alpha=-30,30", "--json", json.to_str().unwrap()],
            ]
            .concat(),
        );
        assert!(o.status.success(), "{}", stderr(&o));
        read_json(&json)
    };
    let by_feature = run(&["--sae", &dict, "--feature", "5"], "f.json");
    let by_file = run(
        &["--hook", TINY_HOOK, "--direction", file.to_str().unwrap()],
        "by-file.json",
    );
    assert_eq!(by_file["direction"]["source"], "file");
    assert_eq!(by_file["rows"], by_feature["rows"]);
    assert_eq!(
        by_file["direction"]["norm"],
        by_feature["direction"]["norm"]
    );
}

#[test]
fn bad_inputs_are_refused_by_their_flag() {
    let tmp = tempfile::tempdir().unwrap();
    let dict = dictionary(tmp.path());
    let refused = |extra: &[&str], flag: &str| {
        let o = steer(tmp.path(), extra);
        assert!(!o.status.success(), "{extra:?} was accepted");
        let err = stderr(&o);
        assert!(err.contains(flag), "{extra:?}: {err}");
    };
    let feature = ["--sae", dict.as_str(), "--feature", "1"];
    refused(&[&feature[..], &["--alpha", "nan"]].concat(), "--alpha");
    refused(&[&feature[..], &["--alpha", "1,inf"]].concat(), "--alpha");
    refused(&["--sae", &dict, "--feature", "64"], "--feature");
    let short = tmp.path().join("short.json");
    std::fs::write(&short, serde_json::to_string(&vec![0.5f32; 31]).unwrap()).unwrap();
    let short = short.to_str().unwrap();
    refused(&["--hook", TINY_HOOK, "--direction", short], "--direction");
    refused(&["--direction", short], "--hook");
    refused(&[&feature[..], &["--targets", ","]].concat(), "--targets");
    refused(
        &[&feature[..], &["--max-tokens", "100"]].concat(),
        "--max-tokens",
    );
    // Neither source, or both.
    refused(&[], "--feature");
    refused(
        &[&feature[..], &["--direction", short]].concat(),
        "--direction",
    );
}

/// Mean-difference directions: the direction is the labelled side's mean activation minus
/// the other's, written in the document, and bad labels or a dictionary at another hook than
/// --hook are refused by name.
#[test]
fn a_mean_difference_steers_and_bad_requests_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    let corpus = tmp.path().join("c.jsonl");
    let lines: String = (0..12)
        .map(|i| {
            let (text, kind) = if i % 2 == 0 {
                (format!("Cats and cats {i}."), "cat")
            } else {
                (format!("{i} plus {i} is {}.", 2 * i), "sum")
            };
            format!("{}\n", serde_json::json!({"text": text, "kind": kind}))
        })
        .collect();
    std::fs::write(&corpus, lines).unwrap();
    let json = tmp.path().join("m.json");
    let base = [
        "--mean-diff",
        "kind=cat",
        "--corpus",
        corpus.to_str().unwrap(),
        "--hook",
        TINY_HOOK,
        "--ctx",
        "16",
        "--alpha",
        "0,3",
    ];
    let mut args = base.to_vec();
    args.extend(["--json", json.to_str().unwrap()]);
    let o = steer(tmp.path(), &args);
    assert!(o.status.success(), "{}", stderr(&o));
    let v = read_json(&json);
    assert_eq!(v["direction"]["source"], "mean_difference");
    assert_eq!(v["direction"]["documents"], serde_json::json!([6, 6]));
    assert!(v["direction"]["norm"].as_f64().unwrap() > 0.0);
    assert_eq!(v["rows"][0]["neutral_ce_delta"], 0.0);

    let fails = |args: &[&str], needle: &str| {
        let o = steer(tmp.path(), args);
        assert!(!o.status.success(), "{args:?} succeeded");
        assert!(stderr(&o).contains(needle), "{args:?}: {}", stderr(&o));
    };
    let mut multi = base.to_vec();
    multi[1] = "kind";
    fails(&multi, "the label must be binary");
    let mut one_class = base.to_vec();
    one_class[1] = "kind=cat|sum";
    fails(&one_class, "one class only");
    let dict = dictionary(tmp.path());
    fails(
        &[
            "--sae",
            &dict,
            "--feature",
            "1",
            "--hook",
            "blocks.1.hook_resid_post",
        ],
        "the dictionary reads blocks.0.hook_resid_post, not --hook blocks.1.hook_resid_post",
    );
}
