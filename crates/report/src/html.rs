//! The page: one HTML document with its CSS and script inline, built from sections of
//! figures, tables and text. Nothing on it is fetched from anywhere.

use crate::plots::Figure;
use crate::svg::escape;

const CSS: &str = include_str!("page.css");
const SCRIPT: &str = include_str!("page.js");

pub struct Page {
    title: String,
    body: String,
}

impl Page {
    pub fn new(title: &str) -> Self {
        Page {
            title: title.to_string(),
            body: String::new(),
        }
    }

    pub fn heading(&mut self, text: &str) {
        self.body.push_str(&format!("<h1>{}</h1>\n", escape(text)));
    }

    /// A muted line of plain text under a heading.
    pub fn subtitle(&mut self, text: &str) {
        self.body
            .push_str(&format!("<p class=\"sub\">{}</p>\n", escape(text)));
    }

    /// Starts a section: a heading and an optional line saying how to read it.
    pub fn section(&mut self, id: &str, heading: &str, intro: Option<&str>) {
        self.body.push_str(&format!(
            "<h2 id=\"{}\">{}</h2>\n",
            escape(id),
            escape(heading)
        ));
        if let Some(text) = intro {
            self.body
                .push_str(&format!("<p class=\"intro\">{}</p>\n", escape(text)));
        }
    }

    pub fn notice(&mut self, text: &str) {
        self.body
            .push_str(&format!("<p class=\"notice\">{}</p>\n", escape(text)));
    }

    /// Figures side by side, wrapping.
    pub fn figures(&mut self, figures: &[Figure]) {
        self.body.push_str("<div class=\"grid\">\n");
        for f in figures {
            self.body.push_str(&format!(
                "<figure><h3>{}</h3>{}<figcaption>{}</figcaption></figure>\n",
                escape(&f.title),
                f.svg,
                escape(&f.caption)
            ));
        }
        self.body.push_str("</div>\n");
    }

    /// Markup built by this crate's table and chip helpers (which escape their text).
    pub fn markup(&mut self, html: &str) {
        self.body.push_str(html);
        self.body.push('\n');
    }

    /// Preformatted text, folded away under a summary line.
    pub fn folded(&mut self, summary: &str, text: &str) {
        self.body.push_str(&format!(
            "<details><summary>{}</summary><pre>{}</pre></details>\n",
            escape(summary),
            escape(text)
        ));
    }

    pub fn finish(self) -> String {
        format!(
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
             <title>{title}</title>\n<style>\n{CSS}</style>\n</head>\n<body>\n<main>\n{body}\
             </main>\n<div id=\"tip\" hidden></div>\n<pre id=\"render-check\" hidden></pre>\n\
             <script>\n{SCRIPT}</script>\n</body>\n</html>\n",
            title = escape(&self.title),
            body = self.body
        )
    }
}

/// A colour chip and a name, with a muted note after it.
pub fn chip(colour: &str, name: &str, note: &str) -> String {
    format!(
        "<span class=\"chip\"><i style=\"background:{}\"></i>{} <small>{}</small></span>",
        escape(colour),
        escape(name),
        escape(note)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_text_is_escaped_and_nothing_is_fetched() {
        let mut p = Page::new("<t>");
        p.heading("a & b");
        p.figures(&[Figure {
            title: "<x>".into(),
            svg: "<svg class=\"plot\"></svg>".into(),
            caption: "\"c\"".into(),
        }]);
        let html = p.finish();
        assert!(html.contains("<title>&lt;t&gt;</title>") && html.contains("a &amp; b"));
        assert!(html.contains("&lt;x&gt;") && html.contains("&quot;c&quot;"));
        assert!(!html.contains("http") && !html.contains(" src=") && !html.contains("href="));
    }
}
