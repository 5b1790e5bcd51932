//! Where the verbs write: never outside their output folder, never over other data, one
//! writer per folder, outputs checked before the work; and an interrupted run is not a
//! success.

mod common;

use std::fs::File;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{saelab, stderr, tiny_llama};
use saelab_sae::{Dictionary, Metadata, Sae};

const HOOK: &str = "blocks.1.hook_resid_post";

/// A short live training run on the tiny model into `out`, with one dictionary `sae`.
fn train(out: &Path, sae: &str, extra: &[&str]) -> Command {
    let mut c = saelab();
    c.args(["train", "--model", &tiny_llama(), "--corpus", "wiki"])
        .args([
            "--hook",
            HOOK,
            "--ctx",
            "64",
            "--batch",
            "128",
            "--buffer-mib",
            "1",
        ])
        .args(["--sae", sae])
        .args(extra)
        .arg("--out")
        .arg(out);
    c
}

fn fails(o: &Output) -> String {
    assert!(!o.status.success(), "succeeded: {}", stderr(o));
    stderr(o)
}

#[test]
fn dictionary_names_that_are_paths_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("a/b/run");
    let absolute = tmp.path().join("abs");
    for name in ["../../x", absolute.to_str().unwrap(), "a/b", "..", ".", ""] {
        let sae = format!("topk:k=4,width=64,name={name}");
        let o = train(&out, &sae, &["--tokens", "1024"]).output().unwrap();
        let err = fails(&o);
        assert!(
            err.contains("`name`") && err.contains("plain name"),
            "{name}: {err}"
        );
    }
    assert!(!tmp.path().join("a/x").exists() && !absolute.exists());

    // The same in a TOML run config.
    let toml = tmp.path().join("run.toml");
    std::fs::write(
        &toml,
        "tokens = 1024\n[[sae]]\nkind = \"topk\"\nwidth = 64\nk = 4\nname = \"../up\"\n",
    )
    .unwrap();
    let o = saelab()
        .args(["train", "--config", toml.to_str().unwrap(), "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(fails(&o).contains("plain name"), "{}", stderr(&o));

    // And `NAME=DIR` in eval's --sae.
    let dict = tmp.path().join("dict");
    let mut sae = Sae::identity(32).unwrap();
    sae.metadata = Metadata {
        hook_name: Some(HOOK.into()),
        ..Metadata::default()
    };
    sae.save(&dict).unwrap();
    let o = saelab()
        .args(["eval", "--model", &tiny_llama(), "--corpus", "wiki"])
        .args(["--tokens", "64", "--ctx", "64", "--sae"])
        .arg(format!("../x={}", dict.display()))
        .arg("--json")
        .arg(tmp.path().join("e.json"))
        .output()
        .unwrap();
    assert!(fails(&o).contains("plain name"), "{}", stderr(&o));
}

#[test]
fn train_refuses_a_folder_holding_other_files() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("photos");
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("holiday.jpg"), b"not a run").unwrap();
    let o = train(&out, "topk:k=4,width=64", &["--tokens", "1024"])
        .output()
        .unwrap();
    let err = fails(&o);
    assert!(
        err.contains("holiday.jpg") && err.contains("something else"),
        "{err}"
    );
    let names: Vec<_> = std::fs::read_dir(&out).unwrap().collect();
    assert_eq!(names.len(), 1, "nothing written beside the user's file");
}

#[test]
fn refused_settings_leave_no_run_folder() {
    let tmp = tempfile::tempdir().unwrap();
    for flag in ["--checkpoint-every", "--log-every"] {
        let out = tmp.path().join(flag.trim_start_matches('-'));
        let o = train(&out, "topk:k=4,width=64", &["--tokens", "1024", flag, "0"])
            .output()
            .unwrap();
        let err = fails(&o);
        assert!(err.contains("must be positive"), "{flag}: {err}");
        assert!(
            !out.exists(),
            "{flag}: the refused run created {}",
            out.display()
        );
    }
}

#[test]
fn a_second_writer_is_refused_while_the_folder_is_locked() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    std::fs::create_dir(&run).unwrap();
    let lock = File::open(&run).unwrap();
    lock.try_lock().unwrap();
    let o = train(&run, "topk:k=4,width=64", &["--tokens", "1024"])
        .output()
        .unwrap();
    assert_refused_as_in_use(&o, &run);

    let cache = tmp.path().join("cache");
    std::fs::create_dir(&cache).unwrap();
    let cache_lock = File::open(&cache).unwrap();
    cache_lock.try_lock().unwrap();
    let o = saelab()
        .args(["harvest", "--model", &tiny_llama(), "--hook", HOOK])
        .args([
            "--corpus", "wiki", "--tokens", "1024", "--ctx", "64", "--out",
        ])
        .arg(&cache)
        .output()
        .unwrap();
    assert_refused_as_in_use(&o, &cache);

    // Released, the folder is usable; the run holds the lock only while it runs.
    drop(lock);
    let o = train(&run, "topk:k=4,width=64", &["--tokens", "1024"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    File::open(&run).unwrap().try_lock().unwrap();
}

#[test]
fn eval_outputs_are_checked_before_the_work() {
    let tmp = tempfile::tempdir().unwrap();
    let dict = tmp.path().join("dict");
    let mut sae = Sae::identity(32).unwrap();
    sae.metadata = Metadata {
        hook_name: Some(HOOK.into()),
        ..Metadata::default()
    };
    sae.save(&dict).unwrap();
    let eval = |outputs: &[&Path]| {
        let mut c = saelab();
        c.args(["eval", "--model", &tiny_llama(), "--corpus", "wiki"])
            .args(["--tokens", "64", "--ctx", "64", "--sae"])
            .arg(&dict)
            .arg("--json")
            .arg(outputs[0]);
        if let Some(report) = outputs.get(1) {
            c.arg("--report").arg(report);
        }
        c.output().unwrap()
    };
    let x = tmp.path().join("x.json");
    let err = fails(&eval(&[&x, &x]));
    assert!(err.contains("same file"), "{err}");
    assert!(!x.exists());
    let other_spelling = tmp.path().join("dict/../x.json");
    let err = fails(&eval(&[&x, &other_spelling]));
    assert!(err.contains("same file"), "{err}");
    // The default page, report.html beside --json, is --json itself.
    let page = tmp.path().join("report.html");
    let err = fails(&eval(&[&page]));
    assert!(err.contains("same file"), "{err}");

    let folder = tmp.path().join("folder");
    std::fs::create_dir(&folder).unwrap();
    let err = fails(&eval(&[&folder]));
    assert!(
        err.contains("--json") && err.contains("is a folder"),
        "{err}"
    );
    let err = fails(&eval(&[&x, &folder]));
    assert!(
        err.contains("--report") && err.contains("is a folder"),
        "{err}"
    );
    assert!(!x.exists());

    let o = eval(&[&x, &tmp.path().join("page.html")]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(x.exists() && tmp.path().join("page.html").exists());
}

#[test]
fn report_refuses_json_that_is_not_an_eval_and_honours_out() {
    let tmp = tempfile::tempdir().unwrap();
    for (file, text) in [
        ("empty.json", "{}"),
        ("list.json", "[]"),
        (
            "config.json",
            r#"{"run": {"batch": 4096}, "total_steps": 3}"#,
        ),
    ] {
        let path = tmp.path().join(file);
        std::fs::write(&path, text).unwrap();
        let o = saelab().arg("report").arg(&path).output().unwrap();
        let err = fails(&o);
        assert!(
            err.contains(file) && err.contains("not a saelab eval file"),
            "{err}"
        );
        assert!(!tmp.path().join("report.html").exists());
    }

    let run = tmp.path().join("run");
    std::fs::create_dir(&run).unwrap();
    std::fs::write(
        run.join("metrics.jsonl"),
        "{\"name\": \"a\", \"step\": 1, \"tokens\": 128, \"fvu\": 0.5}\n",
    )
    .unwrap();
    let page = tmp.path().join("elsewhere/page.html");
    std::fs::create_dir(page.parent().unwrap()).unwrap();
    let o = saelab()
        .arg("report")
        .arg(&run)
        .arg("--out")
        .arg(&page)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(page.exists(), "--out is honoured");
    assert!(!run.join("report.html").exists());
}

#[test]
fn ctrl_c_during_train_checkpoints_and_exits_130() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let log = tmp.path().join("stderr.txt");
    let mut child = train(
        &out,
        "topk:k=4,width=64",
        &["--tokens", "100000000", "--checkpoint-every", "2"],
    )
    .stdout(Stdio::null())
    .stderr(File::create(&log).unwrap())
    .spawn()
    .unwrap();
    // The first checkpoint means the loop, and its Ctrl-C handler, are running.
    let start = Instant::now();
    while !out.join("checkpoints/step_2").exists() {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "no checkpoint appeared"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = child.wait().unwrap();
    let err = std::fs::read_to_string(&log).unwrap();
    assert_eq!(status.code(), Some(130), "{err}");
    assert!(
        err.contains("interrupted at step") && err.contains("--resume"),
        "{err}"
    );
    assert!(!out.join("final").exists());
    let step: u64 = err
        .split("interrupted at step ")
        .nth(1)
        .and_then(|s| s.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{err}"));
    assert!(
        out.join(format!("checkpoints/step_{step}")).is_dir(),
        "the checkpoint of the interrupted step is written"
    );
}

/// `o` failed because the folder was locked, and wrote nothing into it.
fn assert_refused_as_in_use(o: &std::process::Output, folder: &std::path::Path) {
    assert!(
        fails(o).contains("in use by another saelab process"),
        "{}",
        stderr(o)
    );
    assert_eq!(std::fs::read_dir(folder).unwrap().count(), 0);
}

/// `--out` naming a file said only "File exists (os error 17)"; it says the path is a file.
#[test]
fn an_output_folder_that_is_a_file_is_named_as_such() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("taken");
    std::fs::write(&file, b"a file").unwrap();
    let o = train(&file, "topk:k=4,width=64", &["--tokens", "256"])
        .output()
        .unwrap();
    let err = fails(&o);
    assert!(err.contains("is a file; give a folder"), "{err}");
    let o = saelab()
        .args(["harvest", "--model", &tiny_llama(), "--hook", HOOK])
        .args([
            "--corpus", "wiki", "--tokens", "256", "--ctx", "64", "--out",
        ])
        .arg(&file)
        .output()
        .unwrap();
    let err = fails(&o);
    assert!(err.contains("is a file; give a folder"), "{err}");
    assert_eq!(
        std::fs::read(&file).unwrap(),
        b"a file",
        "the file is untouched"
    );
}

/// A cause was printed twice ("…: No such file or directory (os error 2): No such file or
/// directory (os error 2)"); and `--db` naming a folder was reported as an existing file.
#[test]
fn causes_are_printed_once_and_a_db_folder_is_named_as_such() {
    let tmp = tempfile::tempdir().unwrap();
    let o = saelab().arg("report").arg(tmp.path()).output().unwrap();
    let err = fails(&o);
    assert!(err.contains("metrics.jsonl"), "{err}");
    assert_eq!(err.matches("No such file or directory").count(), 1, "{err}");
    let o = saelab()
        .args(["features", "--tokens", "10", "--sae", "unused", "--db"])
        .arg(tmp.path())
        .output()
        .unwrap();
    let err = fails(&o);
    assert!(err.contains("is a folder, not a database file"), "{err}");
}
