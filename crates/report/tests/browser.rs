//! Renders reports from realistic synthetic inputs and opens them in headless Chromium: every
//! plot must have a size on screen and visible marks, measured by the page's own render
//! check. Chromium is required: without it this test fails (it never skips).

mod common;

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const CHROMIUM_TIMEOUT: Duration = Duration::from_secs(120);

/// The browser: `SAELAB_CHROMIUM`, else `chromium` / `chromium-browser` on the PATH.
fn chromium() -> PathBuf {
    if let Some(p) = std::env::var_os("SAELAB_CHROMIUM") {
        let p = PathBuf::from(p);
        assert!(p.is_file(), "SAELAB_CHROMIUM={} is not a file", p.display());
        return p;
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path).chain([PathBuf::from("/usr/bin")]) {
        for name in ["chromium", "chromium-browser"] {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    panic!(
        "headless Chromium is required for the report's browser test and was not found: \
         install it with `apt-get install chromium` (scripts/test.sh does), or point \
         SAELAB_CHROMIUM at the binary"
    );
}

/// Runs headless Chromium with its own profile folder and returns its stdout.
fn run_chromium(args: &[String], profile: &Path) -> String {
    let mut cmd = Command::new(chromium());
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--hide-scrollbars",
    ])
    .arg(format!("--user-data-dir={}", profile.display()))
    .args(args)
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("starting chromium");
    // Read stdout on a thread so a large DOM cannot fill the pipe and stall the browser.
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut s).map(|_| s)
    });
    let mut stderr = child.stderr.take().unwrap();
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut s);
        s
    });
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > CHROMIUM_TIMEOUT {
            let _ = child.kill();
            panic!("chromium did not finish within {CHROMIUM_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = reader.join().unwrap().expect("reading chromium output");
    let err = err_reader.join().unwrap();
    assert!(status.success(), "chromium failed ({status}): {err}");
    out
}

fn file_url(path: &Path) -> String {
    format!("file://{}", path.canonicalize().unwrap().display())
}

/// The page's render check, read back from the DOM after its script ran.
fn render_check(html: &Path, profile: &Path) -> Vec<Value> {
    let dom = run_chromium(&["--dump-dom".into(), file_url(html)], profile);
    let start = dom
        .find("id=\"render-check\"")
        .expect("the dumped DOM has no render-check element");
    let body = &dom[start..];
    let open = body.find('>').unwrap() + 1;
    let close = body.find("</pre>").unwrap();
    let text = body[open..close]
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&nbsp;", "\u{a0}")
        .replace("&amp;", "&");
    assert!(
        !text.trim().is_empty(),
        "the page's script did not fill the render check"
    );
    serde_json::from_str::<Vec<Value>>(&text).expect("render check is JSON")
}

/// Asserts every plot has a size and visible marks; returns (plots, total visible marks) by kind.
fn check_plots(plots: &[Value]) -> BTreeMap<String, (usize, u64)> {
    let mut by_kind: BTreeMap<String, (usize, u64)> = BTreeMap::new();
    for p in plots {
        let kind = p["kind"].as_str().unwrap_or("?").to_string();
        let what = format!("{kind} {}", p["dictionary"]);
        assert!(p["width"].as_f64().unwrap() > 0.0, "{what}: zero width");
        assert!(p["height"].as_f64().unwrap() > 0.0, "{what}: zero height");
        let visible = p["visible_marks"].as_u64().unwrap();
        assert!(visible > 0, "{what}: no visible marks ({p})");
        let e = by_kind.entry(kind).or_default();
        e.0 += 1;
        e.1 += visible;
    }
    by_kind
}

/// No resource may come from elsewhere: no http(s) URLs, no src/href attributes, no CSS url().
fn assert_self_contained(html: &str) {
    for needle in [
        "http://", "https://", " src=", " href=", "url(", "@import", "<link", "<iframe",
    ] {
        assert!(!html.contains(needle), "the page contains {needle:?}");
    }
}

/// Where to keep the pages and screenshots: SAELAB_REPORT_SAMPLES if set, else a temp dir.
fn output_dir(tmp: &Path) -> PathBuf {
    match std::env::var_os("SAELAB_REPORT_SAMPLES") {
        Some(d) => {
            std::fs::create_dir_all(&d).unwrap();
            PathBuf::from(d)
        }
        None => tmp.to_path_buf(),
    }
}

fn screenshot(html: &Path, png: &Path, profile: &Path) {
    run_chromium(
        &[
            format!("--screenshot={}", png.display()),
            "--window-size=1400,2400".into(),
            file_url(html),
        ],
        profile,
    );
    let size = std::fs::metadata(png).expect("no screenshot written").len();
    assert!(
        size > 20_000,
        "screenshot is suspiciously small: {size} bytes"
    );
}

#[test]
fn eval_report_renders_every_plot_in_chromium() {
    let tmp = tempfile::tempdir().unwrap();
    let out = output_dir(tmp.path());
    let eval_path = tmp.path().join("eval.json");
    std::fs::write(&eval_path, common::eval_json().to_string()).unwrap();
    let html_path = out.join("eval_report.html");
    saelab_report::write_eval_report(&eval_path, &html_path).unwrap();
    let html = std::fs::read_to_string(&html_path).unwrap();
    assert_self_contained(&html);

    let by_kind = check_plots(&render_check(&html_path, &tmp.path().join("profile")));
    let expected = [
        ("density-histogram", 3),
        ("l0-histogram", 3),
        ("de-projection", 3),
        ("ce-bars", 1),
        ("frontier-fvu", 1),
        ("frontier-ce-delta", 1),
        ("mcs-histogram", 2),
    ];
    for (kind, n) in expected {
        let got = by_kind.get(kind).map_or(0, |e| e.0);
        assert_eq!(
            got, n,
            "{kind}: {got} plots rendered, expected {n}; all: {by_kind:?}"
        );
    }
    assert_eq!(
        by_kind.len(),
        expected.len(),
        "unexpected plot kinds: {by_kind:?}"
    );
    // 16k + 4k + 4k latents, thinned to at most 4000 each: every 5th, 2nd and 2nd.
    assert_eq!(
        by_kind["de-projection"].1,
        3277 + 2048 + 2048,
        "scatter points visible"
    );
    assert_eq!(by_kind["ce-bars"].1, 15, "five CE bars per dictionary");
    assert_eq!(
        by_kind["frontier-fvu"].1, 3,
        "one frontier point per dictionary"
    );

    screenshot(
        &html_path,
        &out.join("eval_report.png"),
        &tmp.path().join("profile-shot"),
    );
}

#[test]
fn run_report_renders_curves_and_its_eval_in_chromium() {
    let tmp = tempfile::tempdir().unwrap();
    let run = output_dir(tmp.path()).join("run");
    std::fs::create_dir_all(&run).unwrap();
    common::write_run(&run);
    let html_path = saelab_report::write_run_report(&run).unwrap();
    assert_eq!(html_path, run.join("report.html"));
    let html = std::fs::read_to_string(&html_path).unwrap();
    assert_self_contained(&html);
    assert!(html.contains("1 line(s) of metrics.jsonl could not be read"));

    let by_kind = check_plots(&render_check(&html_path, &tmp.path().join("profile")));
    for kind in [
        "training-fvu",
        "training-l0",
        "training-dead-fraction",
        "training-lr",
    ] {
        assert_eq!(
            by_kind.get(kind).map(|e| e.0),
            Some(1),
            "{kind}: {by_kind:?}"
        );
        // One line per dictionary.
        assert_eq!(by_kind[kind].1, 2, "{kind}: lines");
    }
    for kind in [
        "density-histogram",
        "de-projection",
        "ce-bars",
        "frontier-fvu",
    ] {
        assert!(by_kind.contains_key(kind), "eval section missing {kind}");
    }
    screenshot(
        &html_path,
        &run.join("report.png"),
        &tmp.path().join("profile-shot"),
    );
}
