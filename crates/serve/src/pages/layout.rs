//! The page shell (header, navigation, one inline stylesheet) and URLs to pages.

use maud::{html, Markup, PreEscaped, DOCTYPE};

const CSS: &str = r#"
:root { --ink: #1d2330; --muted: #667085; --line: #e4e7ec; --accent: #2453b3; --bg: #fafbfc; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--ink); background: var(--bg); }
header.top { display: flex; gap: 24px; align-items: baseline; padding: 10px 24px; background: #1d2330; }
header.top a { color: #e8ecf3; text-decoration: none; }
header.top a.brand { font-weight: 600; font-size: 15px; }
main { max-width: 1180px; margin: 0 auto; padding: 16px 24px 48px; }
h1 { font-size: 22px; margin: 8px 0 4px; }
h2 { font-size: 17px; margin: 28px 0 8px; padding-bottom: 4px; border-bottom: 1px solid var(--line); }
h3 { font-size: 14px; margin: 16px 0 6px; }
a { color: var(--accent); }
p.note, .muted { color: var(--muted); }
table { border-collapse: collapse; background: #fff; }
th, td { padding: 4px 10px; border-bottom: 1px solid var(--line); text-align: left; vertical-align: top; }
th { font-weight: 600; color: #344054; background: #f2f4f7; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
code, .tokname { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 12.5px; white-space: pre; background: #f2f4f7; padding: 0 3px; border-radius: 3px; }
.tokname .mark { color: #7a8499; font-weight: 700; }
.tokname .code { color: #475467; font-size: 11px; }
.hit { white-space: nowrap; }
.stats { display: flex; flex-wrap: wrap; gap: 10px; margin: 10px 0; }
.stat { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 6px 12px; min-width: 110px; }
.stat b { display: block; font-size: 16px; font-variant-numeric: tabular-nums; }
.stat span { color: var(--muted); font-size: 12px; }
.row { display: flex; flex-wrap: wrap; gap: 28px; align-items: flex-start; }
.examples { display: flex; flex-direction: column; gap: 6px; }
.example { display: flex; gap: 10px; align-items: baseline; background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 6px 10px; }
.example .meta { flex: 0 0 150px; color: var(--muted); font-size: 12px; font-variant-numeric: tabular-nums; }
.ctx { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 12.5px; white-space: pre-wrap; word-break: break-word; line-height: 1.7; }
.tok { border-radius: 2px; }
.tok.at { outline: 2px solid #1d2330; outline-offset: 0; font-weight: 700; }
form.inline { display: flex; gap: 8px; align-items: center; flex-wrap: wrap; margin: 6px 0; }
input[type=text], input[type=number], textarea, select { font: inherit; padding: 4px 6px; border: 1px solid #cfd4dc; border-radius: 4px; background: #fff; }
textarea { width: 100%; min-height: 70px; font-family: ui-monospace, monospace; }
button { font: inherit; padding: 4px 12px; border: 1px solid var(--accent); background: var(--accent); color: #fff; border-radius: 4px; cursor: pointer; }
svg.plot { background: #fff; border: 1px solid var(--line); border-radius: 6px; }
svg.plot text { font: 11px system-ui, sans-serif; fill: #475467; }
.pager { display: flex; gap: 12px; align-items: center; margin: 8px 0; }
.warn { background: #fff6e5; border: 1px solid #f5c26b; border-radius: 6px; padding: 8px 12px; }
.side { display: grid; grid-template-columns: 1fr 1fr; gap: 16px; }
.side > div { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 8px 12px; }
form .row { gap: 16px; align-items: center; margin-bottom: 8px; }
input[type=number] { width: 100px; }
.row > .lens-block { flex: 1 1 380px; }
.legend span { padding: 0 6px; border-radius: 2px; margin-right: 6px; }
"#;

pub fn page(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · saelab" }
                style { (PreEscaped(CSS)) }
            }
            body {
                header.top {
                    a.brand href="/" { "saelab features" }
                    a href="/fires" { "what fires here" }
                    a href="/steer" { "steer" }
                }
                main { (body) }
            }
        }
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters, for a path segment or
/// a query value.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub fn dictionary_url(name: &str) -> String {
    format!("/d/{}", encode(name))
}

pub fn feature_url(name: &str, feature: u32) -> String {
    format!("/d/{}/f/{feature}", encode(name))
}
