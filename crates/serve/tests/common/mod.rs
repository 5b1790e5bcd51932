#![allow(dead_code)]

pub mod fixture;

use std::net::SocketAddr;
use std::path::Path;

use rusqlite::Connection;
use saelab_serve::client::{self, Response};
use saelab_serve::{Options, Server};

/// A server on any free loopback port, serving in a background thread.
pub struct Running {
    pub addr: SocketAddr,
    pub url: String,
}

pub fn start(db: &Path) -> Running {
    let mut options = Options::new(db);
    options.port = 0;
    let server = Server::bind(&options).expect("the server starts");
    let addr = server.local_addr().unwrap();
    let url = server.url().unwrap();
    std::thread::spawn(move || server.run());
    Running { addr, url }
}

impl Running {
    pub fn get(&self, target: &str) -> Response {
        client::get(self.addr, target).unwrap_or_else(|e| panic!("GET {target}: {e}"))
    }

    /// GET that must answer 200 with HTML.
    pub fn page(&self, target: &str) -> String {
        let r = self.get(target);
        assert_eq!(r.status, 200, "GET {target}: {}", r.body);
        r.body
    }
}

pub fn read_only(db: &Path) -> Connection {
    Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap()
}

pub fn f32s(blob: &[u8]) -> Vec<f32> {
    blob.chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

pub fn u32s(blob: &[u8]) -> Vec<u32> {
    blob.chunks_exact(4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

/// An example row as the database holds it.
#[derive(Debug)]
pub struct ExampleRow {
    pub id: i64,
    pub feature: u32,
    pub window: i64,
    pub pos: u32,
    pub start: u32,
    pub value: f64,
    pub acts: Vec<f32>,
    /// Token ids of the shown context.
    pub ids: Vec<u32>,
    /// Their display texts.
    pub texts: Vec<String>,
}

pub fn examples(conn: &Connection, sql_filter: &str) -> Vec<ExampleRow> {
    let sql = format!(
        "SELECT e.id, e.feature, e.window, e.pos, e.start, e.value, e.acts, w.ids FROM examples e \
         JOIN windows w ON w.id = e.window WHERE {sql_filter} ORDER BY e.id"
    );
    let mut stmt = conn.prepare(&sql).unwrap();
    let rows: Vec<ExampleRow> = stmt
        .query_map([], |r| {
            let acts = f32s(&r.get::<_, Vec<u8>>(6)?);
            let all = u32s(&r.get::<_, Vec<u8>>(7)?);
            let start: u32 = r.get(4)?;
            let ids = all[start as usize..start as usize + acts.len()].to_vec();
            Ok(ExampleRow {
                id: r.get(0)?,
                feature: r.get(1)?,
                window: r.get(2)?,
                pos: r.get(3)?,
                start,
                value: r.get(5)?,
                acts,
                ids,
                texts: Vec::new(),
            })
        })
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    rows.into_iter()
        .map(|mut e| {
            e.texts = e
                .ids
                .iter()
                .map(|id| {
                    conn.query_row("SELECT text FROM tokens WHERE id = ?1", [id], |r| r.get(0))
                        .unwrap()
                })
                .collect();
            e
        })
        .collect()
}

/// Every `data-value` attribute of a page, in order.
pub fn data_values(html: &str) -> Vec<f32> {
    html.match_indices("data-value=\"")
        .map(|(i, m)| {
            let rest = &html[i + m.len()..];
            rest[..rest.find('"').unwrap()].parse::<f32>().unwrap()
        })
        .collect()
}

/// Undoes HTML's escapes of text and attribute values.
pub fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&nbsp;", "\u{a0}")
        .replace("&amp;", "&")
}

/// The highlighted tokens of the example with this id: (text, data-value) per span.
pub fn example_spans(html: &str, example: i64) -> Vec<(String, f32)> {
    let marker = format!("data-example=\"{example}\"");
    let at = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no example {example} in the page"));
    let block = &html[at..];
    let ctx = block.find("class=\"ctx\"").unwrap();
    let block = &block[ctx..];
    let end = block.find("</div>").unwrap();
    let block = &block[..end];
    block
        .match_indices("<span class=\"tok")
        .map(|(i, _)| {
            let span = &block[i..];
            let dv = span.find("data-value=\"").unwrap() + "data-value=\"".len();
            let value: f32 = span[dv..dv + span[dv..].find('"').unwrap()]
                .parse()
                .unwrap();
            let open = span.find('>').unwrap() + 1;
            let close = span.find("</span>").unwrap();
            (unescape(&span[open..close]), value)
        })
        .collect()
}
