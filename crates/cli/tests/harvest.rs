//! `saelab harvest` end to end: a run killed with SIGKILL and restarted (once, or again and
//! again at random points) writes the same shards as one never interrupted; a full disk and
//! bad corpora are clear errors that leave no shard looking valid.

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::{saelab, spawn_quietly, stderr, tiny_llama, KillPoints};

fn run(args: &[&str]) -> Output {
    saelab().args(args).output().expect("saelab runs")
}

fn manifest(dir: &Path) -> Option<serde_json::Value> {
    let text = std::fs::read_to_string(dir.join("manifest.json")).ok()?;
    serde_json::from_str(&text).ok()
}

fn harvest_args(out: &Path) -> Vec<String> {
    [
        "harvest",
        "--hook",
        "blocks.6.hook_resid_post",
        "--corpus",
        "wiki",
        "--tokens",
        "8192",
        "--ctx",
        "64",
        "--batch",
        "8",
        "--shard-tokens",
        "512",
        "--out",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([out.display().to_string()])
    .collect()
}

#[test]
fn a_harvest_killed_mid_shard_resumes_to_the_same_shards() {
    let tmp = tempfile::tempdir().unwrap();
    let (whole, killed) = (tmp.path().join("whole"), tmp.path().join("killed"));
    let o = saelab().args(harvest_args(&whole)).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let reference = manifest(&whole).unwrap();
    let shards = reference["shards"].as_array().unwrap().len();
    assert_eq!(shards, 16);

    let mut child = spawn_quietly(&harvest_args(&killed));
    let start = Instant::now();
    loop {
        let listed = manifest(&killed).map_or(0, |m| m["shards"].as_array().unwrap().len());
        if listed >= 3 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "harvest made no progress"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap(); // SIGKILL
    let status = child.wait().unwrap();
    assert!(
        !status.success(),
        "the harvest was killed before it finished"
    );
    let partial = manifest(&killed).unwrap();
    assert_eq!(partial["complete"], false);
    assert!(partial["shards"].as_array().unwrap().len() < shards);

    let o = saelab().args(harvest_args(&killed)).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("resuming"), "{}", stderr(&o));
    same_cache(&whole, &killed, "after one kill");
}

/// The same shards, manifest and no temporary files in `killed` as in `whole`.
fn same_cache(whole: &Path, killed: &Path, what: &str) {
    let (reference, resumed) = (manifest(whole).unwrap(), manifest(killed).unwrap());
    assert_eq!(resumed["complete"], true, "{what}");
    assert_eq!(resumed["shards"], reference["shards"], "{what}");
    assert_eq!(resumed["stats"], reference["stats"], "{what}");
    for i in 0..reference["shards"].as_array().unwrap().len() {
        let name = format!("shard_{i:05}.safetensors");
        assert_eq!(
            std::fs::read(whole.join(&name)).unwrap(),
            std::fs::read(killed.join(&name)).unwrap(),
            "{name} {what}"
        );
    }
    let leftovers: Vec<String> = std::fs::read_dir(killed)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?} {what}");
}

#[test]
fn a_harvest_killed_again_and_again_resumes_to_the_same_shards() {
    let tmp = tempfile::tempdir().unwrap();
    let (whole, killed) = (tmp.path().join("whole"), tmp.path().join("killed"));
    let o = saelab().args(harvest_args(&whole)).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));

    let listed = |dir: &Path| manifest(dir).map_or(0, |m| m["shards"].as_array().unwrap().len());
    // Every third run is killed soon after it starts (loading the model, opening the cache); the
    // others once they have listed a new shard, a random moment into the next one.
    let mut points = KillPoints(0x9e37_79b9_7f4a_7c15);
    let mut kills = 0;
    for attempt in 0.. {
        assert!(attempt < 100, "the harvest never finished");
        let before = listed(&killed);
        let mut child = spawn_quietly(&harvest_args(&killed));
        let delay = Duration::from_millis(points.below(150));
        if attempt % 3 != 0 {
            let start = Instant::now();
            while listed(&killed) <= before && child.try_wait().unwrap().is_none() {
                assert!(start.elapsed() < Duration::from_secs(120), "no progress");
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        std::thread::sleep(delay);
        child.kill().unwrap(); // SIGKILL (or a no-op if it has just exited)
        if child.wait().unwrap().success() {
            break;
        }
        kills += 1;
    }
    eprintln!("{kills} kills");
    assert!(
        kills >= 3,
        "only {kills} kills: the run was too short to test"
    );
    same_cache(&whole, &killed, &format!("after {kills} kills"));
}

#[test]
fn a_full_disk_is_a_clear_error_and_leaves_only_listed_shards() {
    // A 1 MiB tmpfs in a private mount namespace holds a few shards, then fills.
    let tmp = tempfile::tempdir().unwrap();
    let mount = tmp.path().display().to_string();
    let script = format!(
        "mount -t tmpfs -o size=1m tmpfs {mount} || exit 99
         {bin} harvest --model {model} --hook blocks.1.hook_resid_post --corpus wiki \
           --tokens 100000 --ctx 64 --batch 8 --shard-tokens 2048 --dtype f32 --out {mount}/cache
         echo \"exit=$?\"
         ls -A {mount}/cache
         echo ---
         cat {mount}/cache/manifest.json",
        bin = env!("CARGO_BIN_EXE_saelab"),
        model = tiny_llama(),
    );
    let o = Command::new("unshare")
        .args(["-rm", "sh", "-c", &script])
        .output()
        .expect("unshare runs");
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    let err = stderr(&o);
    assert!(
        !out.is_empty() && !out.contains("exit=99"),
        "could not mount a tmpfs: {err}"
    );
    assert!(out.contains("exit=1"), "{out}\n{err}");
    assert!(err.contains("No space left on device"), "{err}");
    let (files, manifest_text) = out.split_once("---").unwrap();
    let manifest: serde_json::Value = serde_json::from_str(manifest_text.trim()).unwrap();
    assert_eq!(manifest["complete"], false);
    let listed: Vec<&str> = manifest["shards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["file"].as_str().unwrap())
        .collect();
    assert!(!listed.is_empty(), "some shards fit before the disk filled");
    let mut present: Vec<&str> = files
        .lines()
        .skip_while(|l| l.starts_with("exit="))
        .filter(|l| !l.is_empty() && *l != "manifest.json")
        .collect();
    present.sort();
    assert_eq!(present, listed, "only whole, listed shards remain: {err}");
}

#[test]
fn bad_corpora_are_errors_naming_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let model = tiny_llama();
    let harvest = |corpus: &Path, extra: &[&str]| {
        let out = tmp.path().join(format!(
            "out-{}",
            corpus.file_name().unwrap().to_string_lossy()
        ));
        let mut args = vec![
            "harvest",
            "--model",
            &model,
            "--hook",
            "blocks.0.hook_resid_post",
            "--ctx",
            "16",
        ];
        let corpus = corpus.display().to_string();
        let out = out.display().to_string();
        args.extend(["--corpus", &corpus, "--out", &out]);
        args.extend(extra);
        let o = run(&args);
        assert!(!o.status.success());
        stderr(&o)
    };
    let bad_utf8 = tmp.path().join("latin1.txt");
    std::fs::write(&bad_utf8, b"caf\xe9 au lait\n").unwrap();
    let err = harvest(&bad_utf8, &[]);
    assert!(
        err.contains("latin1.txt") && err.contains("invalid UTF-8"),
        "{err}"
    );

    let no_field = tmp.path().join("docs.jsonl");
    std::fs::write(
        &no_field,
        "{\"text\": \"fine\"}\n{\"body\": \"no text here\"}\n",
    )
    .unwrap();
    let err = harvest(&no_field, &[]);
    assert!(
        err.contains("docs.jsonl") && err.contains("line 2"),
        "{err}"
    );

    let empty = tmp.path().join("empty.txt");
    std::fs::write(&empty, "\n\n").unwrap();
    let err = harvest(&empty, &[]);
    assert!(
        err.contains("empty.txt") && err.contains("no documents"),
        "{err}"
    );

    let err = harvest(&empty, &["--dtype", "f8"]);
    assert!(err.contains("--dtype"), "{err}");
}
