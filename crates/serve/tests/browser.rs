//! The browser's pages in headless Chromium: overview, token search, a feature page (its
//! highlighted tokens and values read back from the rendered DOM against the database),
//! "what fires here" and steering, each saved as a screenshot. Chromium is required: without
//! it this test fails (it never skips).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::fixture::{build, Spec};
use common::{example_spans, examples, read_only, start};

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
        "headless Chromium is required for the feature browser's test and was not found: \
         install it with `apt-get install chromium` (scripts/test.sh does), or point \
         SAELAB_CHROMIUM at the binary"
    );
}

fn run_chromium(args: &[String], profile: &Path) -> String {
    let mut child = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting chromium");
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
    let began = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if began.elapsed() > CHROMIUM_TIMEOUT {
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

/// Screenshots land in `target/tmp/serve-browser/` to be looked at.
fn output_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("serve-browser");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

struct Browser {
    profile: tempfile::TempDir,
    base: String,
    out: PathBuf,
}

impl Browser {
    fn dom(&self, target: &str) -> String {
        let url = format!("{}{}", self.base.trim_end_matches('/'), target);
        let dom = run_chromium(&["--dump-dom".into(), url], self.profile.path());
        assert!(
            dom.contains("saelab features"),
            "{target} did not render: {dom}"
        );
        dom
    }

    fn screenshot(&self, target: &str, name: &str, height: u32) {
        let png = self.out.join(format!("{name}.png"));
        let _ = std::fs::remove_file(&png);
        let url = format!("{}{}", self.base.trim_end_matches('/'), target);
        run_chromium(
            &[
                format!("--screenshot={}", png.display()),
                format!("--window-size=1280,{height}"),
                url,
            ],
            self.profile.path(),
        );
        let size = std::fs::metadata(&png).map(|m| m.len()).unwrap_or(0);
        assert!(size > 10_000, "{name}.png is {size} bytes");
    }
}

#[test]
fn the_pages_render_in_chromium_with_the_databases_values() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = build(dir.path(), &Spec::small());
    let server = start(&fixture.db);
    let browser = Browser {
        profile: tempfile::tempdir().unwrap(),
        base: server.url.clone(),
        out: output_dir(),
    };
    let conn = read_only(&fixture.db);

    let overview = browser.dom("/d/resid0-topk");
    assert!(overview.contains("class=\"plot density\""));
    assert_eq!(overview.matches("<rect class=\"bar\"").count(), {
        let html = server.page("/d/resid0-topk");
        html.matches("<rect class=\"bar\"").count()
    });
    browser.screenshot("/d/resid0-topk", "overview", 1400);

    let search = browser.dom("/d/resid0-topk/search?token=the");
    assert!(search.contains("why it matched"));
    assert!(search.contains("href=\"/d/resid0-topk/f/"));
    browser.screenshot("/d/resid0-topk/search?token=the", "search", 1100);

    // The feature whose top example holds the markup window, so escaping shows on screen.
    let tops = examples(&conn, "e.dict = 0 AND e.kind = 'top'");
    let feature = tops
        .iter()
        .find(|e| e.texts.iter().any(|t| t.starts_with("<script")))
        .map_or(tops[0].feature, |e| e.feature);
    let target = format!("/d/resid0-topk/f/{feature}");
    let page = browser.dom(&target);
    let mine: Vec<_> = tops.iter().filter(|e| e.feature == feature).collect();
    assert!(!mine.is_empty());
    for e in &mine {
        let spans = example_spans(&page, e.id);
        let texts: Vec<&str> = spans.iter().map(|s| s.0.as_str()).collect();
        let values: Vec<f32> = spans.iter().map(|s| s.1).collect();
        assert_eq!(
            texts,
            e.texts.iter().map(String::as_str).collect::<Vec<_>>(),
            "example {}",
            e.id
        );
        assert_eq!(values, e.acts, "example {}", e.id);
        let at = (e.pos - e.start) as usize;
        assert_eq!(values[at] as f64, e.value as f32 as f64);
    }
    assert!(
        !page.contains("<script"),
        "markup from the corpus became a tag"
    );
    browser.screenshot(&target, "feature", 2000);

    let longest = mine.iter().max_by_key(|e| e.pos - e.start).unwrap();
    let ablation = format!("{target}/ablation/{}", longest.id);
    let dom = browser.dom(&ablation);
    assert!(dom.contains("data-delta"));
    browser.screenshot(&ablation, "ablation", 900);

    let fires = "/fires?text=Paris%20is%20the%20capital%20of%20France.";
    let dom = browser.dom(fires);
    assert!(dom.contains("class=\"fire\""));
    browser.screenshot(fires, "fires", 1100);

    let steer =
        "/steer?dict=resid0-topk&feature=3&mode=add&coef=40&prompt=The%20cat%20sat&tokens=16";
    let dom = browser.dom(steer);
    assert!(dom.contains("Unsteered") && dom.contains("data-token"));
    browser.screenshot(steer, "steer", 900);
}
