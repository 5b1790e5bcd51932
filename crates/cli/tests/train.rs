//! `saelab train` end to end on a cache of the tiny llama fixture: a run killed with SIGKILL
//! and resumed ends with the same bytes as one never interrupted; bad configs are errors
//! naming the field.

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{saelab, stderr, tiny_cache, tiny_llama, train_tiny, KillPoints};

/// A cache of the tiny model's activations over part of the wiki corpus.
fn cache(dir: &Path) {
    let o = saelab()
        .args([
            "harvest",
            "--model",
            &tiny_llama(),
            "--hook",
            "blocks.1.hook_resid_post",
        ])
        .args([
            "--corpus", "wiki", "--tokens", "65536", "--ctx", "64", "--dtype", "f32",
        ])
        .arg("--out")
        .arg(dir)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
}

fn train_args(cache: &Path, out: &Path) -> Vec<String> {
    let mut v: Vec<String> = [
        "train",
        "--hook",
        "blocks.1.hook_resid_post",
        "--sae",
        "topk:k=8,width=1024,lr=2e-3",
        "--sae",
        "relu:l1=1,width=512",
        "--sae",
        "jumprelu:l0=0.2,width=512",
        "--sae",
        "gated:l1=1,width=512",
        "--batch",
        "128",
        "--buffer-mib",
        "4",
        "--checkpoint-every",
        "40",
        "--holdout-windows",
        "16",
        "--pca",
        "8",
        "--ica",
        "8",
        "--cache",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.push(cache.display().to_string());
    v.push("--out".into());
    v.push(out.display().to_string());
    v
}

/// The dictionaries of `train_args`'s run.
const NAMES: [&str; 4] = [
    "0-topk-1024-k8",
    "1-relu-512-l1_1",
    "2-jumprelu-512-l0_0.2",
    "3-gated-512-l1_1",
];

/// A cache under `dir` and an uninterrupted run on it, `dir/whole`.
fn uninterrupted_run(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let cache_dir = dir.join("cache");
    cache(&cache_dir);
    let whole = dir.join("whole");
    let o = saelab()
        .args(train_args(&cache_dir, &whole))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    (cache_dir, whole)
}

/// Dictionary `name` of runs `a` and `b` holds the same bytes in every file.
fn same_files(a: &Path, b: &Path, name: &str, when: &str) {
    for file in [
        "sae_weights.safetensors",
        "cfg.json",
        "sparsity.safetensors",
    ] {
        let x = std::fs::read(a.join("final").join(name).join(file)).unwrap();
        let y = std::fs::read(b.join("final").join(name).join(file)).unwrap();
        assert!(x == y, "{name}/{file} differs {when}");
    }
}

#[test]
fn a_run_killed_and_resumed_ends_with_the_same_dictionaries() {
    let tmp = tempfile::tempdir().unwrap();
    let (cache_dir, whole) = uninterrupted_run(tmp.path());
    let killed = tmp.path().join("killed");
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(whole.join("summary.json")).unwrap()).unwrap();
    let steps = summary["steps"].as_u64().unwrap();
    assert!(steps > 200, "{steps} steps");
    assert!(
        summary["holdout"]["dictionaries"][0]["fvu"]
            .as_f64()
            .unwrap()
            < 1.0
    );

    let mut child = saelab()
        .args(train_args(&cache_dir, &killed))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !killed.join("checkpoints/step_80").exists() {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "no checkpoint appeared"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(
        !killed.join("final").exists(),
        "killed before the end of the run"
    );

    // As if the kill had come after steps logged past the checkpoint, in the middle of a
    // line: the resume must cut both away.
    let past = std::fs::read_to_string(whole.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .find(|l| l.contains("\"step\":199,"))
        .unwrap()
        .to_string();
    let mut log = std::fs::OpenOptions::new()
        .append(true)
        .open(killed.join("metrics.jsonl"))
        .unwrap();
    use std::io::Write;
    write!(log, "{past}\n{{\"name\":\"0-top").unwrap();
    drop(log);

    let o = saelab()
        .args(["train", "--resume", "--out"])
        .arg(&killed)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("resuming from"), "{}", stderr(&o));
    let names = NAMES;
    for (name, architecture) in names.iter().zip(["topk", "standard", "jumprelu", "gated"]) {
        let cfg: serde_json::Value = serde_json::from_slice(
            &std::fs::read(whole.join("final").join(name).join("cfg.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(cfg["architecture"], architecture, "{name}");
    }
    for name in names {
        same_files(&whole, &killed, name, "after the resume");
    }
    // The library, given the run's settings as the command wrote them, trains the same
    // dictionaries byte for byte: the command is the library behind flags.
    let library = tmp.path().join("library");
    let file: serde_json::Value =
        serde_json::from_slice(&std::fs::read(whole.join("config.json")).unwrap()).unwrap();
    let run: saelab_train::RunConfig = serde_json::from_value(file["run"].clone()).unwrap();
    let stop = std::sync::atomic::AtomicBool::new(false);
    let start = saelab_train::Start::Fresh(Box::new(run));
    let outcome = saelab_train::train(&library, start, &mut saelab_train::Quiet, &stop).unwrap();
    let saelab_train::Outcome::Finished(finished) = outcome else {
        panic!("the library's run was not finished");
    };
    assert_eq!(finished.summary["steps"].as_u64(), Some(steps));
    for name in names {
        same_files(&whole, &library, name, "when trained through the library");
    }
    assert_eq!(metrics(&whole), metrics(&library));
    // Density snapshots: the same after a resume, the last at the run's end, and their
    // counts add up to each trainer's firing counts over the whole run.
    for (spec, trainer) in finished.set.specs().iter().zip(finished.set.trainers()) {
        let name = spec.name.as_str();
        let snaps = saelab_train::snapshots::read_all(&whole, name).unwrap();
        assert_eq!(
            snaps,
            saelab_train::snapshots::read_all(&killed, name).unwrap()
        );
        assert_eq!(
            snaps,
            saelab_train::snapshots::read_all(&library, name).unwrap()
        );
        assert!(
            (16..=33).contains(&snaps.len()),
            "{} snapshots",
            snaps.len()
        );
        assert_eq!(snaps.last().map(|s| s.step), Some(steps));
        let total = trainer.total_firing();
        let mut summed = vec![0i64; total.counts.len()];
        for s in &snaps {
            summed.iter_mut().zip(&s.counts).for_each(|(a, b)| *a += b);
        }
        let want: Vec<i64> = total.counts.iter().map(|&c| c as i64).collect();
        assert_eq!(summed, want, "{name}");
        let tokens: u64 = snaps.iter().map(|s| s.interval_tokens).sum();
        assert_eq!((tokens, total.tokens), (steps * 128, steps * 128));
    }
    // PCA is fitted on the replayed batches too: the same baseline as uninterrupted.
    let pca = |run: &Path| {
        let s: serde_json::Value =
            serde_json::from_slice(&std::fs::read(run.join("summary.json")).unwrap()).unwrap();
        s["holdout"]["pca"].clone()
    };
    assert!(pca(&whole)["fvu"].as_f64().is_some(), "{}", pca(&whole));
    assert_eq!(pca(&whole), pca(&killed));
    // ICA is fitted on the run's first rows, replayed or not: the same files after a resume,
    // and (spanning the same subspace as a PCA of as many components) the PCA's fvu.
    let holdout = |run: &Path| -> serde_json::Value {
        serde_json::from_slice::<serde_json::Value>(
            &std::fs::read(run.join("summary.json")).unwrap(),
        )
        .unwrap()["holdout"]
            .clone()
    };
    let (ica, pca_fvu) = (
        holdout(&whole)["ica"].clone(),
        pca(&whole)["fvu"].as_f64().unwrap(),
    );
    let ica_fvu = ica["fvu"].as_f64().unwrap();
    assert!(
        (ica_fvu - pca_fvu).abs() <= 1e-4 * pca_fvu,
        "ica {ica} vs pca {pca_fvu}"
    );
    assert_eq!(ica, holdout(&killed)["ica"]);
    for baseline in ["pca-8", "ica-8"] {
        for file in ["cfg.json", "sae_weights.safetensors"] {
            let path = |run: &Path| run.join("baselines").join(baseline).join(file);
            assert_eq!(
                std::fs::read(path(&whole)).unwrap(),
                std::fs::read(path(&killed)).unwrap(),
                "{baseline}/{file}"
            );
        }
    }
    // `saelab eval` scores the baselines as dictionaries: the same spliced loss (the same
    // reconstruction), and a code of at most 8 nonzero coordinates.
    let json = tmp.path().join("baselines.json");
    let o = saelab()
        .args([
            "eval",
            "--model",
            &tiny_llama(),
            "--corpus",
            "wiki",
            "--tokens",
            "256",
            "--ctx",
            "32",
        ])
        .arg("--sae")
        .arg(whole.join("baselines/pca-8"))
        .arg("--sae")
        .arg(whole.join("baselines/ica-8"))
        .arg("--json")
        .arg(&json)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let eval: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let (p, i) = (&eval["dictionaries"][0], &eval["dictionaries"][1]);
    assert_eq!(
        (p["d_sae"].as_u64(), i["d_sae"].as_u64()),
        (Some(16), Some(16))
    );
    let ce = |d: &serde_json::Value| d["downstream"]["ce_spliced"].as_f64().unwrap();
    assert!((ce(p) - ce(i)).abs() < 1e-3, "{} vs {}", ce(p), ce(i));
    assert!(
        i["sparsity"]["l0"].as_f64().unwrap() <= 8.0,
        "{}",
        i["sparsity"]
    );
    // The resumed log holds each step once, as the uninterrupted one does (the killed run
    // had logged past its checkpoint); only the speed differs.
    assert_eq!(metrics(&whole), metrics(&killed));
    // Checkpoints are pruned to the newest two.
    for run in [&whole, &killed] {
        let mut left: Vec<String> = std::fs::read_dir(run.join("checkpoints"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        let last = format!("step_{steps}");
        assert_eq!(left.len(), 2, "{left:?}");
        assert!(left.contains(&last), "{left:?}");
    }
}

/// SIGKILL again and again, at points drawn at random after each new checkpoint (mid-step,
/// mid-checkpoint-write, mid-evaluation or mid-report), each time resumed, until the run
/// finishes: the dictionaries and the log end as an uninterrupted run's.
#[test]
fn a_run_killed_again_and_again_ends_with_the_same_dictionaries() {
    let tmp = tempfile::tempdir().unwrap();
    let (cache_dir, whole) = uninterrupted_run(tmp.path());
    let killed = tmp.path().join("killed");

    let latest = |run: &Path| -> u64 {
        std::fs::read_dir(run.join("checkpoints"))
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok())
                    .filter_map(|e| {
                        let name = e.file_name().to_string_lossy().into_owned();
                        name.strip_prefix("step_")?.parse::<u64>().ok()
                    })
                    .max()
                    .unwrap_or(0)
            })
            .unwrap_or(0)
    };
    // A fixed draw of delays, so that a failure repeats.
    let mut points = KillPoints(0x2545_f491_4f6c_dd1d);
    let mut kills = 0;
    let mut resumed = false;
    loop {
        let mut command = saelab();
        match resumed {
            false => command.args(train_args(&cache_dir, &killed)),
            true => command.args(["train", "--resume", "--out"]).arg(&killed),
        };
        let mut child = command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let before = latest(&killed);
        let start = Instant::now();
        let finished = loop {
            if let Some(status) = child.try_wait().unwrap() {
                assert!(status.success(), "a resumed run failed after {kills} kills");
                break true;
            }
            if latest(&killed) > before {
                break false;
            }
            assert!(start.elapsed() < Duration::from_secs(120), "no progress");
            std::thread::sleep(Duration::from_millis(1));
        };
        if finished {
            break;
        }
        std::thread::sleep(Duration::from_millis(points.below(400)));
        child.kill().unwrap(); // SIGKILL (or a no-op if it has just exited)
        let status = child.wait().unwrap();
        if status.success() {
            break;
        }
        kills += 1;
        resumed = true;
    }
    eprintln!("{kills} kills");
    assert!(
        kills >= 3,
        "only {kills} kills: the run was too short to test"
    );
    for name in NAMES {
        same_files(&whole, &killed, name, &format!("after {kills} kills"));
    }
    assert_eq!(metrics(&whole), metrics(&killed), "after {kills} kills");
}

/// metrics.jsonl's records without their speed.
fn metrics(run: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            v.as_object_mut().unwrap().remove("tokens_per_s");
            v
        })
        .collect()
}

fn train_fails(args: &[&str]) -> String {
    let o = saelab().args(args).output().unwrap();
    assert!(!o.status.success());
    stderr(&o)
}

#[test]
fn bad_configs_are_errors_naming_the_field() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run").display().to_string();
    let toml = tmp.path().join("run.toml");
    std::fs::write(
        &toml,
        "tokens = 1000\nbatchsize = 64\n[[sae]]\nkind = \"topk\"\nwidth = 64\nk = 8\n",
    )
    .unwrap();
    let err = train_fails(&["train", "--out", &out, "--config", toml.to_str().unwrap()]);
    assert!(
        err.contains("run.toml") && err.contains("batchsize"),
        "{err}"
    );
    // A run flag beside --config or --resume would be ignored: it is refused, naming both.
    let toml_path = toml.to_str().unwrap();
    for (args, flag) in [
        (vec!["--config", toml_path, "--batch", "128"], "--batch"),
        (vec!["--config", toml_path, "--corpus", "wiki"], "--corpus"),
        (vec!["--resume", "--tokens", "5"], "--tokens"),
        (vec!["--resume", "--sae", "topk:k=1,width=2"], "--sae"),
    ] {
        let mut all = vec!["train", "--out", &out];
        all.extend(args);
        let err = train_fails(&all);
        assert!(
            err.contains("cannot be used with") && err.contains(flag),
            "{err}"
        );
    }
    assert!(!Path::new(&out).exists(), "a refused run leaves no folder");

    // `train` live on the tiny model with these extra flags; its error.
    let model = tiny_llama();
    let live = |extra: &[&str]| {
        let mut args = vec![
            "train", "--out", &out, "--tokens", "1000", "--model", &model,
        ];
        args.extend(["--hook", "blocks.1.hook_resid_post"]);
        args.extend(extra);
        train_fails(&args)
    };
    let err = live(&["--sae", "topk:k=80,width=64"]);
    assert!(err.contains("`k`") && err.contains("64"), "{err}");
    let err = live(&["--sae", "topk:k=8,width=64,lr=-1"]);
    assert!(err.contains("`lr`"), "{err}");
    let err = train_fails(&[
        "train",
        "--out",
        &out,
        "--tokens",
        "1000",
        "--sae",
        "topk:k=8,widht=64",
    ]);
    assert!(err.contains("unknown key `widht`"), "{err}");
    let err = train_fails(&[
        "train",
        "--out",
        &out,
        "--tokens",
        "1000",
        "--sae",
        "topk:k=8,width=64,l0=2",
    ]);
    assert!(
        err.contains("`l0` does not apply to topk") && err.contains("jumprelu"),
        "{err}"
    );
    let err = train_fails(&["train", "--out", &out, "--sae", "topk:k=8,width=64"]);
    assert!(err.contains("--tokens"), "{err}");
    // An impossible PCA baseline is refused before any training, not after it.
    for (flag, k, words) in [
        ("--pca", "0", "`pca` = 0"),
        ("--pca", "100000", "`pca` = 100000"),
        ("--ica", "0", "`ica` = 0"),
        ("--ica", "100000", "`ica` = 100000"),
    ] {
        let err = live(&["--sae", "topk:k=8,width=64", flag, k]);
        assert!(err.contains(words), "{err}");
        assert!(!Path::new(&out).join("metrics.jsonl").exists(), "{err}");
    }
}

#[test]
fn a_resume_with_an_edited_config_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let cache_dir = tmp.path().join("cache");
    cache(&cache_dir);
    let out = tmp.path().join("run");
    let mut args = train_args(&cache_dir, &out);
    args.extend(["--tokens".into(), "20000".into()]);
    let o = saelab().args(&args).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        out.join("report.html").exists(),
        "a finished run writes its report"
    );
    // A fresh run into the same folder would mix two runs' checkpoints: refused.
    let o = saelab().args(&args).output().unwrap();
    assert!(!o.status.success());
    assert!(stderr(&o).contains("already holds a run"), "{}", stderr(&o));
    let path = out.join("config.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut config: serde_json::Value = serde_json::from_str(&text).unwrap();
    config["run"]["sae"][0]["lr"] = serde_json::json!(0.5);
    std::fs::write(&path, serde_json::to_string(&config).unwrap()).unwrap();
    let o = saelab()
        .args(["train", "--resume", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("trainer.json") && err.contains("`lr`") && err.contains("another run"),
        "{err}"
    );
}

/// A skip transcoder from the MLP's input to its output, trained live on the tiny model,
/// then evaluated: `saelab eval` reads its input hook and splices it at its output hook.
#[test]
fn a_transcoder_trains_live_and_is_evaluated_at_its_output_hook() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let model = tiny_llama();
    let o = saelab()
        .args(["train", "--model", &model, "--corpus", "wiki"])
        .args(["--hook", "blocks.1.ln2.hook_normalized"])
        .args(["--hook", "blocks.1.hook_mlp_out"])
        .args([
            "--tokens",
            "8192",
            "--batch",
            "128",
            "--buffer-mib",
            "4",
            "--ctx",
            "64",
        ])
        .args([
            "--sae",
            "topk:k=4,width=128,out_hook=blocks.1.hook_mlp_out,skip=true,lr=3e-3",
        ])
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let dict = out.join("final/0-topk-128-k4-skip-transcoder");
    let cfg: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dict.join("cfg.json")).unwrap()).unwrap();
    assert_eq!(
        cfg["transcode"], true,
        "a TopK transcoder is saved as sparsify saves one"
    );
    assert_eq!(cfg["skip_connection"], true);
    assert_eq!(cfg["metadata"]["hook_name_out"], "blocks.1.hook_mlp_out");
    let metrics = metrics(&out);
    let first = metrics.first().unwrap()["fvu"].as_f64().unwrap();
    let last = metrics.last().unwrap()["fvu"].as_f64().unwrap();
    assert!(last < first, "training fvu should fall: {first} → {last}");

    let json = tmp.path().join("e.json");
    let o = saelab()
        .args([
            "eval", "--model", &model, "--corpus", "wiki", "--tokens", "512", "--ctx", "64",
        ])
        .arg("--sae")
        .arg(&dict)
        .arg("--json")
        .arg(&json)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let e: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let d = &e["dictionaries"][0];
    assert_eq!(d["hook"], "blocks.1.hook_mlp_out");
    assert_eq!(d["input_hook"], "blocks.1.ln2.hook_normalized");
    assert_eq!(d["architecture"], "topk_skip_transcoder");
    let fvu = d["reconstruction"]["fvu"].as_f64().unwrap();
    assert!(fvu.is_finite() && fvu < 1.0, "held-out fvu {fvu}");
    assert!(d["downstream"]["ce_spliced"].as_f64().unwrap().is_finite());

    // A transcoder's hooks are its own: --hook is refused, naming why.
    let o = saelab()
        .args([
            "eval", "--model", &model, "--corpus", "wiki", "--tokens", "64", "--ctx", "64",
        ])
        .args(["--hook", "blocks.1.hook_mlp_out", "--sae"])
        .arg(&dict)
        .arg("--json")
        .arg(tmp.path().join("e2.json"))
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("--hook does not apply"),
        "{}",
        stderr(&o)
    );
    let err = train_fails(&[
        "train",
        "--out",
        tmp.path().join("x").to_str().unwrap(),
        "--tokens",
        "1000",
        "--sae",
        "gated:width=64,out_hook=blocks.1.hook_mlp_out",
    ]);
    assert!(err.contains("`out_hook`") && err.contains("gated"), "{err}");
}

/// A corpus that ends before `--tokens`: a run with some steps finishes with a warning and a
/// summary that says it stopped early; a run with none is an error and writes no dictionary.
#[test]
fn a_corpus_shorter_than_tokens_is_said_loudly() {
    let tmp = tempfile::tempdir().unwrap();
    let corpus = tmp.path().join("small.txt");
    let doc = "The quick brown fox jumps over the lazy dog near the river bank today. ";
    let text: Vec<String> = (0..60).map(|i| format!("{i} {}", doc.repeat(3))).collect();
    std::fs::write(&corpus, text.join("\n\n")).unwrap();
    let model = tiny_llama();
    let run = |out: &Path, batch: &str| {
        saelab()
            .args([
                "train",
                "--model",
                &model,
                "--hook",
                "blocks.1.hook_resid_post",
            ])
            .args(["--tokens", "100000", "--ctx", "64", "--buffer-mib", "16"])
            .args(["--batch", batch, "--sae", "topk:k=4,width=64"])
            .arg("--corpus")
            .arg(&corpus)
            .arg("--out")
            .arg(out)
            .output()
            .unwrap()
    };
    let short = tmp.path().join("short");
    let o = run(&short, "256");
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("warning: the data ended after"), "{err}");
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(short.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["stopped_early"], true);
    assert!(summary["steps"].as_u64().unwrap() < summary["planned_steps"].as_u64().unwrap());
    let report = std::fs::read_to_string(short.join("report.html")).unwrap();
    assert!(report.contains("STOPPED EARLY"), "the report says so too");

    let none = tmp.path().join("none");
    let o = run(&none, "65536");
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(err.contains("nothing was trained"), "{err}");
    assert!(
        !none.join("final").exists(),
        "no untrained dictionary is written"
    );
}

/// Without `--hook`, a cache's one hook is trained on; a cache of two needs `--hook`.
#[test]
fn without_hook_a_cache_names_its_own() {
    let tmp = tempfile::tempdir().unwrap();
    let two = tmp.path().join("two");
    tiny_cache(
        &two,
        &["blocks.0.hook_resid_post", "blocks.1.hook_mlp_out"],
        512,
    );
    let o = train_tiny(&two, &tmp.path().join("refused"), &[]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("--hook") && err.contains("blocks.0.hook_resid_post, blocks.1.hook_mlp_out"),
        "{err}"
    );

    let one = tmp.path().join("one");
    tiny_cache(&one, &["blocks.1.hook_mlp_out"], 512);
    let o = train_tiny(&one, &tmp.path().join("run"), &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let cfg: serde_json::Value = serde_json::from_slice(
        &std::fs::read(tmp.path().join("run/final/0-topk-64-k4/cfg.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(cfg["metadata"]["hook_name"], "blocks.1.hook_mlp_out");
}
