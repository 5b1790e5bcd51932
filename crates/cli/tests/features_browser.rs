//! `saelab features` then `saelab serve`, as a user runs them: a feature database built from
//! a small corpus (markup included) for two dictionaries on the tiny model, checked against
//! its own invariants; bad input refused through the CLI; then the server as a subprocess,
//! its pages opened in headless Chromium and read back against the database, each saved as
//! a screenshot under `target/features-browser/`. Chromium is required: without it this
//! test fails (it never skips).

mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{
    partial_files, saelab, save_random_dictionary, stderr, tiny_llama, TINY_D_MODEL, TINY_HOOK,
};
use rusqlite::{Connection, OpenFlags};
use saelab_sae::Activation;

const HOOK: &str = TINY_HOOK;
/// The tiny model's residual width.
const D_MODEL: usize = TINY_D_MODEL;
const SCRIPT: &str = "<script>alert(1)</script>";
const IMG: &str = "<img src=x onerror=alert(1)>";
/// What of each fits in an example's 16-token window.
const SCRIPT_TAG: &str = "<script>";
const IMG_TAG: &str = "<img ";
const TOKENS: i64 = 300;
const CHROMIUM_TIMEOUT: Duration = Duration::from_secs(120);
const SERVER_START_TIMEOUT: Duration = Duration::from_secs(120);

const CORPUS: &str = "\
A <script>alert(1)</script> tag in a document is only text, and the page must show it as text.

An image <img src=x onerror=alert(1)> is also text: that is the point of the test.

The model reads the text and the model learns the order of the words in it.

The cat sat on the mat, and the dog sat in the sun for the rest of the day.

In the morning the model is trained; in the evening the model is read, and that is all.

Features fire on tokens, and the browser shades each token by how strongly its feature fires.

There is a river in the valley, and a road that follows the river to the sea.

For the last time: the order of the words is what the model learns to read.
";

fn features(args: &[&str]) -> Output {
    saelab().arg("features").args(args).output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn read_only(db: &Path) -> Connection {
    Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap()
}

fn f32s(blob: &[u8]) -> Vec<f32> {
    blob.chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

fn u32s(blob: &[u8]) -> Vec<u32> {
    blob.chunks_exact(4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

fn meta(conn: &Connection, key: &str) -> String {
    conn.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
        .unwrap_or_else(|e| panic!("meta `{key}`: {e}"))
}

fn one<T: rusqlite::types::FromSql>(conn: &Connection, sql: &str) -> T {
    conn.query_row(sql, [], |r| r.get(0))
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// An example row with its shown tokens' ids and texts, as the database holds them.
#[derive(Debug)]
struct Example {
    id: i64,
    feature: u32,
    rank: u32,
    pos: u32,
    start: u32,
    token: u32,
    value: f64,
    acts: Vec<f32>,
    texts: Vec<String>,
}

fn examples(conn: &Connection, dict: &str, filter: &str) -> Vec<Example> {
    let sql = format!(
        "SELECT e.id, e.feature, e.rank, e.pos, e.start, e.token, e.value, e.acts, w.ids \
         FROM examples e JOIN windows w ON w.id = e.window \
         JOIN dictionaries d ON d.id = e.dict WHERE d.name = ?1 AND {filter} ORDER BY e.id"
    );
    let mut stmt = conn.prepare(&sql).unwrap();
    let rows: Vec<(Example, Vec<u32>)> = stmt
        .query_map([dict], |r| {
            let acts = f32s(&r.get::<_, Vec<u8>>(7)?);
            let start: u32 = r.get(4)?;
            let window = u32s(&r.get::<_, Vec<u8>>(8)?);
            let ids = window[start as usize..start as usize + acts.len()].to_vec();
            let e = Example {
                id: r.get(0)?,
                feature: r.get(1)?,
                rank: r.get(2)?,
                pos: r.get(3)?,
                start,
                token: r.get(5)?,
                value: r.get(6)?,
                acts,
                texts: Vec::new(),
            };
            Ok((e, ids))
        })
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    rows.into_iter()
        .map(|(mut e, ids)| {
            e.texts = ids.iter().map(|&id| token_text(conn, id)).collect();
            e
        })
        .collect()
}

fn token_text(conn: &Connection, id: u32) -> String {
    conn.query_row("SELECT text FROM tokens WHERE id = ?1", [id], |r| r.get(0))
        .unwrap()
}

// ---------------------------------------------------------------------------------------
// The server, as a subprocess.

/// `saelab serve`, killed when dropped (also when an assertion fails).
struct ServerProcess {
    child: Child,
    url: String,
    addr: SocketAddr,
}

impl ServerProcess {
    fn start(db: &Path) -> ServerProcess {
        let mut child = saelab()
            .arg("serve")
            .arg(db)
            .args(["--port", "0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting saelab serve");
        let out = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut server = ServerProcess {
            child,
            url: String::new(),
            addr: SocketAddr::from(([0, 0, 0, 0], 0)),
        };
        let deadline = Instant::now() + SERVER_START_TIMEOUT;
        let mut seen = Vec::new();
        while server.url.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(Ok(line)) => {
                    if let Some(url) = line.strip_prefix("saelab serve: ") {
                        server.url = url.trim().to_string();
                    }
                    seen.push(line);
                }
                Ok(Err(e)) => panic!("reading the server's output: {e}"),
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = server.child.wait().unwrap();
                    panic!("saelab serve exited ({status}) before printing its URL: {seen:?}");
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    panic!("saelab serve printed no URL within {SERVER_START_TIMEOUT:?}: {seen:?}")
                }
            }
        }
        let authority = server
            .url
            .strip_prefix("http://")
            .and_then(|u| u.strip_suffix('/'))
            .unwrap_or_else(|| panic!("not an http URL: {}", server.url));
        server.addr = authority
            .parse()
            .unwrap_or_else(|e| panic!("`{authority}` is not host:port: {e}"));
        server
    }

    /// GET over plain HTTP; must answer 200.
    fn page(&self, target: &str) -> String {
        let r = saelab_serve::client::get(self.addr, target)
            .unwrap_or_else(|e| panic!("GET {target}: {e}"));
        assert_eq!(r.status, 200, "GET {target}: {}", r.body);
        r.body
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------------------
// Headless Chromium.

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
    // Read both pipes on threads so a large DOM cannot fill one and stall the browser.
    let mut out = child.stdout.take().unwrap();
    let out_reader = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut out, &mut s).map(|_| s)
    });
    let mut err = child.stderr.take().unwrap();
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut err, &mut s);
        s
    });
    let began = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if began.elapsed() > CHROMIUM_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish within {CHROMIUM_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = out_reader.join().unwrap().expect("reading chromium output");
    let err = err_reader.join().unwrap();
    assert!(status.success(), "chromium failed ({status}): {err}");
    out
}

/// Screenshots land in `target/features-browser/`, to be looked at.
fn screenshot_dir() -> PathBuf {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let dir = tmp.parent().unwrap_or(tmp).join("features-browser");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

struct Browser {
    profile: tempfile::TempDir,
    base: String,
    out: PathBuf,
}

impl Browser {
    fn url(&self, target: &str) -> String {
        format!("{}{}", self.base.trim_end_matches('/'), target)
    }

    /// The DOM after Chromium has parsed and laid out the page.
    fn dom(&self, target: &str) -> String {
        let dom = run_chromium(
            &["--dump-dom".into(), self.url(target)],
            self.profile.path(),
        );
        assert!(
            dom.contains("saelab features"),
            "{target} did not render: {dom}"
        );
        dom
    }

    fn screenshot(&self, target: &str, name: &str) {
        let png = self.out.join(format!("{name}.png"));
        let _ = std::fs::remove_file(&png);
        run_chromium(
            &[
                format!("--screenshot={}", png.display()),
                "--window-size=1280,2000".into(),
                self.url(target),
            ],
            self.profile.path(),
        );
        let size = std::fs::metadata(&png).map(|m| m.len()).unwrap_or(0);
        assert!(size > 10_000, "{name}.png is {size} bytes");
    }
}

// ---------------------------------------------------------------------------------------
// Reading the DOM.

/// Percent-encodes all but RFC 3986's unreserved characters, for a query value.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Undoes the escapes a serialized DOM uses in text and attribute values.
fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&nbsp;", "\u{a0}")
        .replace("&amp;", "&")
}

/// The text of serialized markup as shown: its tags dropped, its escapes undone.
fn without_tags(markup: &str) -> String {
    let mut text = String::new();
    let mut rest = markup;
    while let Some(open) = rest.find('<') {
        text.push_str(&rest[..open]);
        rest = &rest[open + rest[open..].find('>').unwrap() + 1..];
    }
    text.push_str(rest);
    unescape(&text)
}

/// The value of `attr="..."` in the opening tag that `tag` starts with.
fn attribute<'a>(tag: &'a str, attr: &str) -> Option<&'a str> {
    let key = format!("{attr}=\"");
    let end_of_tag = tag.find('>')?;
    let at = tag[..end_of_tag].find(&key)? + key.len();
    Some(&tag[at..at + tag[at..].find('"')?])
}

/// The token spans (`<span class="tok...">TEXT</span>`) of a block: (opening tag, text).
fn token_spans(block: &str) -> Vec<(&str, String)> {
    block
        .match_indices("<span class=\"tok")
        .map(|(i, _)| {
            let span = &block[i..];
            let open = span.find('>').unwrap() + 1;
            let close = span.find("</span>").unwrap();
            (&span[..open], unescape(&span[open..close]))
        })
        .collect()
}

/// The example with this id, from its `data-example` marker to the end of its highlighted
/// text.
fn example_block(dom: &str, example: i64) -> &str {
    let marker = format!("data-example=\"{example}\"");
    let at = dom
        .find(&marker)
        .unwrap_or_else(|| panic!("no example {example} in the page"));
    let block = &dom[at..];
    let ctx = block.find("class=\"ctx\"").unwrap();
    let end = ctx + block[ctx..].find("</div>").unwrap();
    &block[..end]
}

/// The highlighted tokens of an example: (text, data-value) per span.
fn example_spans(dom: &str, example: i64) -> Vec<(String, f32)> {
    token_spans(example_block(dom, example))
        .into_iter()
        .map(|(tag, text)| {
            let v = attribute(tag, "data-value").expect("a data-value");
            (text, v.parse().unwrap())
        })
        .collect()
}

/// Feature ids of every link to `/d/{dict}/f/N` (not its sub-pages), in order.
fn feature_links(dom: &str, dict: &str) -> Vec<u32> {
    let prefix = format!("href=\"/d/{dict}/f/");
    dom.match_indices(&prefix)
        .filter_map(|(i, m)| {
            let rest = &dom[i + m.len()..];
            let id = &rest[..rest.find('"').unwrap()];
            id.parse().ok()
        })
        .collect()
}

/// No element a corpus or a query could inject: the pages themselves use neither.
fn assert_no_injected_elements(dom: &str, page: &str) {
    assert!(
        !dom.contains("<script"),
        "{page}: markup became a <script> element"
    );
    assert!(
        !dom.contains("<img"),
        "{page}: markup became an <img> element"
    );
}

/// The generated token ids of a steering page's column (`unsteered` or `steered`).
fn continuation(dom: &str, side: &str) -> Vec<u32> {
    let marker = format!("class=\"{side}\"");
    let at = dom
        .find(&marker)
        .unwrap_or_else(|| panic!("no {side} column"));
    let block = &dom[at..];
    let block = &block[..block.find("</div>").unwrap()];
    block
        .match_indices("data-token=\"")
        .map(|(i, m)| {
            let rest = &block[i + m.len()..];
            rest[..rest.find('"').unwrap()].parse().unwrap()
        })
        .collect()
}

// ---------------------------------------------------------------------------------------

#[test]
fn features_then_serve_as_a_user_runs_them() {
    let began = Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let corpus = tmp.path().join("corpus.txt");
    std::fs::write(&corpus, CORPUS).unwrap();
    let corpus = corpus.display().to_string();
    let model = tiny_llama();
    let dict_a = save_random_dictionary(
        Activation::TopK { k: 4 },
        D_MODEL,
        64,
        3,
        &tmp.path().join("topk"),
    );
    let dict_b = save_random_dictionary(Activation::Relu, D_MODEL, 48, 5, &tmp.path().join("relu"));
    let db = tmp.path().join("features.db");
    let db_arg = db.display().to_string();
    let sae_a = format!("a={dict_a}");
    let sae_b = format!("b={dict_b}");
    let tokens = TOKENS.to_string();
    let build_args = [
        "--model",
        &model,
        "--corpus",
        &corpus,
        "--ctx",
        "16",
        "--sae",
        &sae_a,
        "--sae",
        &sae_b,
        "--tokens",
        &tokens,
        "--ablate-top",
        "1",
    ];

    // The build.
    let o = features(&[&build_args[..], &["--db", &db_arg]].concat());
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with(&format!("{TOKENS} tokens in ")),
        "{out}"
    );
    assert_eq!(
        lines.last(),
        Some(&format!("browse it: saelab serve {db_arg}").as_str())
    );
    assert!(
        lines.contains(&format!("database: {db_arg}").as_str()),
        "{out}"
    );
    eprintln!("features built in {:.1} s", began.elapsed().as_secs_f64());

    let conn = read_only(&db);
    check_database(
        &conn,
        &lines,
        &[(dict_a.as_str(), 64), (dict_b.as_str(), 48)],
    );

    refusals(tmp.path(), &db, &build_args, &model, &corpus, &sae_a);
    eprintln!("refusals checked at {:.1} s", began.elapsed().as_secs_f64());

    // The server, as a subprocess, and its pages in Chromium.
    let server = ServerProcess::start(&db);
    assert!(
        server.url.starts_with("http://127.0.0.1:"),
        "the server must bind loopback by default: {}",
        server.url
    );
    eprintln!("server up at {:.1} s", began.elapsed().as_secs_f64());
    let browser = Browser {
        profile: tempfile::tempdir().unwrap(),
        base: server.url.clone(),
        out: screenshot_dir(),
    };
    browse(&browser, &server, &conn);
    eprintln!(
        "pages checked in {:.1} s; screenshots in {}",
        began.elapsed().as_secs_f64(),
        browser.out.display()
    );
}

/// The database's invariants: every dictionary present and counted as stdout says, examples
/// that agree with their own activations, nearest features both ways, and ablations stored
/// for exactly the top example of every feature that fired.
fn check_database(conn: &Connection, stdout_lines: &[&str], dicts: &[(&str, u32)]) {
    assert_eq!(meta(conn, "format"), "saelab-features");
    assert_eq!(meta(conn, "tokens"), TOKENS.to_string());
    assert_eq!(meta(conn, "ctx"), "16");
    let names: Vec<String> = conn
        .prepare("SELECT name FROM dictionaries ORDER BY id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    assert_eq!(names, ["a", "b"]);

    for (name, (path, d_sae)) in names.iter().zip(dicts) {
        let (stored_path, hook, d_in, stored_d_sae, positions, l0): (
            String,
            String,
            u32,
            u32,
            i64,
            f64,
        ) = conn
            .query_row(
                "SELECT path, hook, d_in, d_sae, positions, l0 FROM dictionaries WHERE name = ?1",
                [name],
                |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                    ))
                },
            )
            .unwrap();
        assert_eq!(stored_path, *path);
        assert_eq!(hook, HOOK);
        assert_eq!((d_in, stored_d_sae), (D_MODEL as u32, *d_sae));
        // Every window starts with a start token, which is not counted.
        assert!(positions > 0 && positions < TOKENS, "{name}: {positions}");
        assert!(
            stdout_lines
                .contains(&format!("{name}: {positions} positions counted, L0 {l0:.1}").as_str()),
            "{name}: {stdout_lines:?}"
        );
        if name == "a" {
            assert!(l0 > 0.0 && l0 <= 4.0, "TopK 4 has L0 {l0}");
        }

        let rows: u32 = conn
            .query_row(
                "SELECT count(*) FROM features f JOIN dictionaries d ON d.id = f.dict \
                 WHERE d.name = ?1",
                [name],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(rows, *d_sae, "{name}: one row per feature");
        let firing: Vec<(u32, i64, f64, f64)> = conn
            .prepare(
                "SELECT f.feature, f.count, f.density, f.max_act FROM features f \
                 JOIN dictionaries d ON d.id = f.dict WHERE d.name = ?1 AND f.count > 0 \
                 ORDER BY f.feature",
            )
            .unwrap()
            .query_map([name], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert!(
            firing.len() > 4,
            "{name}: only {} features fired",
            firing.len()
        );

        let tops = examples(conn, name, "e.kind = 'top'");
        assert!(!tops.is_empty(), "{name}: no top examples");
        for &(feature, count, density, max_act) in &firing {
            assert_eq!(
                density,
                count as f64 / positions as f64,
                "{name} #{feature}"
            );
            let mine: Vec<&Example> = tops.iter().filter(|e| e.feature == feature).collect();
            let ranks: Vec<u32> = mine.iter().map(|e| e.rank).collect();
            let expected = count.min(20) as u32;
            assert_eq!(
                ranks,
                (0..expected).collect::<Vec<_>>(),
                "{name} #{feature}"
            );
            assert_eq!(mine[0].value as f32, max_act as f32, "{name} #{feature}");
            for pair in mine.windows(2) {
                assert!(pair[0].value >= pair[1].value, "{name} #{feature}");
            }
        }
        for e in &tops {
            let at = (e.pos - e.start) as usize;
            assert_eq!(e.acts[at], e.value as f32, "example {}: acts at pos", e.id);
            assert_eq!(e.texts.len(), e.acts.len());
        }

        // --ablate-top 1: the strongest example of each firing feature, and no other.
        let ablated: Vec<(i64, Vec<u8>)> = conn
            .prepare(
                "SELECT a.example, a.deltas FROM ablations a JOIN examples e ON e.id = a.example \
                 JOIN dictionaries d ON d.id = e.dict WHERE d.name = ?1 ORDER BY a.example",
            )
            .unwrap()
            .query_map([name], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        let strongest: Vec<&Example> = tops.iter().filter(|e| e.rank == 0).collect();
        assert_eq!(strongest.len(), firing.len());
        assert_eq!(
            ablated.iter().map(|a| a.0).collect::<Vec<_>>(),
            strongest.iter().map(|e| e.id).collect::<Vec<_>>(),
            "{name}: ablations"
        );
        for ((_, deltas), e) in ablated.iter().zip(&strongest) {
            assert_eq!(f32s(deltas).len(), (e.pos - e.start) as usize);
        }

        // Nearest features: every feature, in the other dictionary, highest cosine first.
        let nearest: Vec<(u32, u32, f64)> = conn
            .prepare(
                "SELECT n.feature, n.rank, n.cosine FROM nearest n \
                 JOIN dictionaries d ON d.id = n.dict WHERE d.name = ?1 \
                 ORDER BY n.feature, n.rank",
            )
            .unwrap()
            .query_map([name], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(nearest.len(), *d_sae as usize * 5, "{name}: nearest");
        for group in nearest.chunks(5) {
            assert!(group.windows(2).all(|p| p[0].2 >= p[1].2), "{group:?}");
            assert!(group.iter().all(|n| n.2.abs() <= 1.0 + 1e-6));
        }
    }
    let lens: i64 = one(conn, "SELECT count(*) FROM lens");
    assert!(lens > 0, "no logit lens rows");
}

/// Bad input through the CLI: an existing database kept without --force and replaced with
/// it; a dictionary of another width and `--tokens 0` refused with nothing left behind.
fn refusals(dir: &Path, db: &Path, build_args: &[&str], model: &str, corpus: &str, sae_a: &str) {
    let db_arg = db.display().to_string();
    let before = std::fs::read(db).unwrap();
    let o = features(&[build_args, &["--db", &db_arg]].concat());
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(err.contains(&db_arg) && err.contains("--force"), "{err}");
    assert!(
        std::fs::read(db).unwrap() == before,
        "a refused run changed the database"
    );

    // --force replaces: a copy rebuilt from fewer tokens and one dictionary.
    let copy = dir.join("copy.db");
    std::fs::copy(db, &copy).unwrap();
    let copy_arg = copy.display().to_string();
    let o = features(&[
        "--model", model, "--corpus", corpus, "--ctx", "16", "--sae", sae_a, "--tokens", "40",
        "--db", &copy_arg, "--force",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let replaced = read_only(&copy);
    assert_eq!(meta(&replaced, "tokens"), "40");
    assert_eq!(
        one::<u32>(&replaced, "SELECT count(*) FROM dictionaries"),
        1
    );
    assert_eq!(one::<u32>(&replaced, "SELECT count(*) FROM ablations"), 0);
    drop(replaced);
    assert_eq!(partial_files(dir), Vec::<String>::new());

    // Another width: refused naming the folder, before anything is written.
    let bad = dir.join("bad");
    std::fs::create_dir_all(&bad).unwrap();
    let narrow = save_random_dictionary(Activation::TopK { k: 2 }, 7, 16, 9, &dir.join("narrow"));
    let narrow_spec = format!("narrow={narrow}");
    let bad_db = bad.join("narrow.db");
    let bad_arg = bad_db.display().to_string();
    let o = features(&[
        "--model",
        model,
        "--corpus",
        corpus,
        "--ctx",
        "16",
        "--sae",
        sae_a,
        "--sae",
        &narrow_spec,
        "--tokens",
        "40",
        "--db",
        &bad_arg,
    ]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(err.contains(&narrow) && err.contains('7'), "{err}");
    assert!(!bad_db.exists(), "a refused build left {bad_arg}");
    assert_eq!(partial_files(&bad), Vec::<String>::new());

    let o = features(&[
        "--model", model, "--corpus", corpus, "--sae", sae_a, "--tokens", "0", "--db", &bad_arg,
    ]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("--tokens"), "{}", stderr(&o));
    assert!(!bad_db.exists());
    assert_eq!(partial_files(&bad), Vec::<String>::new());
}

/// The pages in Chromium, each read back against the database and saved as a screenshot.
fn browse(browser: &Browser, server: &ServerProcess, conn: &Connection) {
    // A dictionary's overview: every feature listed, the dead ones counted.
    let overview = browser.dom("/d/a");
    assert!(
        overview.contains("class=\"plot density\""),
        "no density plot"
    );
    let bars = |html: &str| html.matches("<rect class=\"bar\"").count();
    assert!(bars(&overview) > 0, "an empty density plot");
    assert_eq!(
        bars(&overview),
        bars(&server.page("/d/a")),
        "bars lost in parsing"
    );
    let listed: BTreeSet<u32> = feature_links(&overview, "a").into_iter().collect();
    assert_eq!(listed, (0..64).collect::<BTreeSet<u32>>());
    let dead: i64 = one(
        conn,
        "SELECT count(*) FROM features f JOIN dictionaries d ON d.id = f.dict \
         WHERE d.name = 'a' AND f.count = 0",
    );
    assert!(
        overview.contains(&format!("<b>{dead}</b><span>dead (never fired)</span>")),
        "dead count {dead} not shown"
    );
    browser.screenshot("/d/a", "overview");

    // Token search for a word token one of the top examples fires on: exactly the features
    // whose top examples or lens hold a token reading the same.
    let tops = examples(conn, "a", "e.kind = 'top'");
    let needle = tops
        .iter()
        .map(|e| token_text(conn, e.token).trim().to_lowercase())
        .find(|t| t.len() >= 2 && t.chars().all(|c| c.is_ascii_alphabetic()))
        .expect("a top example on a word token");
    let matching: Vec<u32> = conn
        .prepare("SELECT id, text FROM tokens")
        .unwrap()
        .query_map([], |r| Ok((r.get::<_, u32>(0)?, r.get::<_, String>(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .filter(|(_, t)| t.trim().to_lowercase() == needle)
        .map(|(id, _)| id)
        .collect();
    let mut expected: BTreeSet<u32> = tops
        .iter()
        .filter(|e| matching.contains(&e.token))
        .map(|e| e.feature)
        .collect();
    let mut lens = conn
        .prepare("SELECT l.feature, l.token FROM lens l JOIN dictionaries d ON d.id = l.dict WHERE d.name = 'a'")
        .unwrap();
    for row in lens
        .query_map([], |r| Ok((r.get::<_, u32>(0)?, r.get::<_, u32>(1)?)))
        .unwrap()
    {
        let (feature, token) = row.unwrap();
        if matching.contains(&token) {
            expected.insert(feature);
        }
    }
    let search = format!("/d/a/search?token={}", encode(&needle));
    let dom = browser.dom(&search);
    assert!(dom.contains("why it matched"), "{search}");
    let found: BTreeSet<u32> = feature_links(&dom, "a").into_iter().collect();
    assert_eq!(found, expected, "{search}");
    browser.screenshot(&search, "search");

    // A feature whose top examples show both tags (a 16-token window holds one tag, not a
    // whole document), so escaping is on screen: every top example's tokens and values
    // exactly as the database holds them.
    let shows = |e: &Example, tag: &str| e.texts.concat().contains(tag);
    let showing = |tag: &str| -> BTreeSet<u32> {
        tops.iter()
            .filter(|e| shows(e, tag))
            .map(|e| e.feature)
            .collect()
    };
    let feature = *showing(SCRIPT_TAG)
        .intersection(&showing(IMG_TAG))
        .next()
        .expect("a feature whose top examples show both tags");
    let target = format!("/d/a/f/{feature}");
    let page = browser.dom(&target);
    let mine: Vec<&Example> = tops.iter().filter(|e| e.feature == feature).collect();
    for e in &mine {
        let spans = example_spans(&page, e.id);
        let texts: Vec<&str> = spans.iter().map(|s| s.0.as_str()).collect();
        let values: Vec<f32> = spans.iter().map(|s| s.1).collect();
        assert_eq!(texts, e.texts, "example {} (rank {})", e.id, e.rank);
        assert_eq!(values, e.acts, "example {} (rank {})", e.id, e.rank);
    }
    for tag in [SCRIPT_TAG, IMG_TAG] {
        let e = mine.iter().find(|e| shows(e, tag)).unwrap();
        let shown: String = example_spans(&page, e.id)
            .into_iter()
            .map(|s| s.0)
            .collect();
        assert!(shown.contains(tag), "`{tag}` is not shown as text: {shown}");
    }
    assert!(page.contains("&lt;"), "no escaped `<` in the page");
    assert_no_injected_elements(&page, &target);
    // Its nearest features in b, in the database's order.
    let nearest: Vec<u32> = conn
        .prepare(
            "SELECT n.other_feature FROM nearest n JOIN dictionaries d ON d.id = n.dict \
             WHERE d.name = 'a' AND n.feature = ?1 ORDER BY n.rank",
        )
        .unwrap()
        .query_map([feature], |r| r.get(0))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    assert_eq!(feature_links(&page, "b"), nearest, "nearest features");
    browser.screenshot(&target, "feature");

    // The stored ablation of its strongest example, linked from the page.
    let strongest = mine.iter().find(|e| e.rank == 0).unwrap();
    let ablation = format!("{target}/ablation/{}", strongest.id);
    assert!(
        page.contains(&format!("href=\"{ablation}\">ablation</a>")),
        "no link to the stored ablation"
    );
    let deltas: Vec<u8> = conn
        .query_row(
            "SELECT deltas FROM ablations WHERE example = ?1",
            [strongest.id],
            |r| r.get(0),
        )
        .unwrap();
    let deltas = f32s(&deltas);
    let dom = browser.dom(&ablation);
    assert!(
        dom.contains("Read from the database."),
        "{ablation} was recomputed"
    );
    let spans = token_spans(&dom[dom.find("class=\"example ablated\"").unwrap()..]);
    assert_eq!(spans.len(), strongest.texts.len());
    for (i, (tag, text)) in spans.iter().enumerate() {
        assert_eq!(*text, strongest.texts[i], "ablation token {i}");
        let shown = attribute(tag, "data-delta");
        match deltas.get(i) {
            Some(d) if d.is_nan() => assert_eq!(shown, Some("kept"), "token {i}"),
            Some(d) => assert_eq!(shown.map(|s| s.parse::<f32>().unwrap()), Some(*d)),
            None => assert_eq!(shown, None, "token {i} is after the ablated range"),
        }
    }
    browser.screenshot(&ablation, "ablation");

    // What fires here, on markup: per token, both dictionaries' strongest features.
    let text = format!("The model reads {SCRIPT} and {IMG} as text.");
    let fires = format!("/fires?text={}", encode(&text));
    let dom = browser.dom(&fires);
    assert_no_injected_elements(&dom, "/fires");
    assert!(
        dom.contains("<th>a</th><th>b</th>"),
        "one column per dictionary"
    );
    let rows: Vec<&str> = dom.split("<tr>").skip(2).collect();
    let shown: String = rows
        .iter()
        .map(|row| {
            let at = row.find("class=\"tokname\"").unwrap();
            let chip = &row[at..];
            without_tags(&chip[chip.find('>').unwrap() + 1..chip.find("</code>").unwrap()])
        })
        .collect();
    // Each token shown alone draws its edge spaces as `·` marks; read back as spaces, the
    // tokens are the text.
    assert!(shown.contains('·'), "no space is marked in `{shown}`");
    assert!(
        shown.replace('·', " ").contains(&text),
        "the tokens read `{shown}`"
    );
    let links_a = feature_links(&dom, "a");
    let links_b = feature_links(&dom, "b");
    assert!(!links_a.is_empty() && !links_b.is_empty());
    assert!(links_a.iter().all(|&f| f < 64) && links_b.iter().all(|&f| f < 48));
    for row in &rows {
        for cell in row.split("<td>").skip(2) {
            let values: Vec<f32> = cell
                .match_indices("data-value=\"")
                .map(|(i, m)| {
                    let rest = &cell[i + m.len()..];
                    rest[..rest.find('"').unwrap()].parse().unwrap()
                })
                .collect();
            assert!(values.len() <= 5, "{cell}");
            assert!(
                values.windows(2).all(|p| p[0] >= p[1]),
                "strongest first: {cell}"
            );
        }
    }
    browser.screenshot(&fires, "fires");

    // Steering: with coefficient 0 nothing changes; a large one changes the continuation.
    let steer = |coef: &str| {
        format!(
            "/steer?dict=a&feature={feature}&mode=add&coef={coef}&prompt={}&tokens=8",
            encode("The model reads the")
        )
    };
    let zero = server.page(&steer("0"));
    let unsteered = continuation(&zero, "unsteered");
    assert_eq!(unsteered.len(), 8, "{zero}");
    assert_eq!(continuation(&zero, "steered"), unsteered);
    let target = steer("60");
    let dom = browser.dom(&target);
    assert!(dom.contains("Unsteered") && dom.contains("Steered"));
    assert_eq!(continuation(&dom, "unsteered"), unsteered);
    let steered = continuation(&dom, "steered");
    assert_eq!(steered.len(), 8);
    assert_ne!(steered, unsteered, "coefficient 60 changed nothing");
    browser.screenshot(&target, "steer");
}

/// The longest stretch of consecutive nonzero values.
fn longest_run(values: impl IntoIterator<Item = f32>) -> usize {
    let (mut best, mut run) = (0, 0);
    for v in values {
        run = if v != 0.0 { run + 1 } else { 0 };
        best = best.max(run);
    }
    best
}

/// A carry dictionary whose latents hold (λ = 1) until an onset ends them, scanned and served:
/// its top example shows the feature on through a stretch of consecutive tokens, in the
/// database and in the page Chromium renders (saved as `carry_feature.png`), and the page
/// says the values are the codes on and how likely the feature is to stay on.
#[test]
fn a_carry_dictionary_shows_held_features_on_through_their_region() {
    use saelab_sae::contextual::carry::CarrySae;
    let tmp = tempfile::tempdir().unwrap();
    let corpus = tmp.path().join("corpus.txt");
    std::fs::write(&corpus, CORPUS).unwrap();
    let width = 16;
    let weights = saelab_sae::SaeWeights::init_tied(D_MODEL, width, 1.0, 11);
    let mut carry = CarrySae::new(weights, 2, vec![1.0; width], 0.01).unwrap();
    carry.metadata.hook_name = Some(HOOK.to_string());
    let dir = tmp.path().join("carry");
    carry.save(&dir).unwrap();
    let db = tmp.path().join("carry.db");
    let o = features(&[
        "--model",
        &tiny_llama(),
        "--corpus",
        &corpus.display().to_string(),
        "--ctx",
        "16",
        "--sae",
        &format!("c={}", dir.display()),
        "--tokens",
        &TOKENS.to_string(),
        "--db",
        &db.display().to_string(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let conn = read_only(&db);
    let feature: u32 = one(
        &conn,
        "SELECT f.feature FROM features f JOIN dictionaries d ON d.id = f.dict \
         WHERE d.name = 'c' ORDER BY f.count DESC, f.feature LIMIT 1",
    );
    let top = examples(
        &conn,
        "c",
        &format!("e.feature = {feature} AND e.kind = 'top'"),
    );
    let held = top.first().expect("the busiest feature has a top example");
    assert!(
        longest_run(held.acts.iter().copied()) >= 3,
        "a held feature is on through a stretch: {:?}",
        held.acts
    );

    let server = ServerProcess::start(&db);
    let browser = Browser {
        profile: tempfile::tempdir().unwrap(),
        base: server.url.clone(),
        out: screenshot_dir(),
    };
    let target = format!("/d/c/f/{feature}");
    let dom = browser.dom(&target);
    assert!(
        dom.contains("codes on"),
        "the page says what its values are"
    );
    let spans = example_spans(&dom, held.id);
    assert!(
        longest_run(spans.iter().map(|s| s.1)) >= 3,
        "the page shades the held stretch: {spans:?}"
    );
    // Its persistence, as stored, on the page; a held feature stays on more often than not.
    let p_stay: f64 = one(
        &conn,
        &format!(
            "SELECT f.p_stay FROM features f JOIN dictionaries d ON d.id = f.dict \
             WHERE d.name = 'c' AND f.feature = {feature}"
        ),
    );
    assert!(p_stay > 0.5, "P(stay) {p_stay}");
    assert!(
        dom.contains(&format!(
            "<b>{p_stay:.2}</b><span>P(stays on at the next token)</span>"
        )),
        "the page shows P(stay) {p_stay:.2}"
    );
    browser.screenshot(&target, "carry_feature");
}
