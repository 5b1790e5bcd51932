//! HTML tables of numbers: a header row, groups of rows, and the best value of a row in bold
//! where lower or higher is known to be better.

use crate::lenient::Num;
use crate::svg::escape;

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Better {
    Lower,
    Higher,
    Neither,
}

pub enum Cell {
    /// A number and how to show it.
    Number(Num, fn(Num) -> String),
    Text(String),
}

impl Cell {
    pub fn num(v: Num) -> Self {
        Cell::Number(v, Num::show)
    }
    pub fn count(v: Num) -> Self {
        Cell::Number(v, Num::show_count)
    }
}

pub struct Row {
    pub label: String,
    /// The key in the file, shown on hover.
    pub key: String,
    pub better: Better,
    pub cells: Vec<Cell>,
}

enum Line {
    Group(String),
    Row(Row),
}

pub struct Table {
    class: &'static str,
    /// Header cells, already HTML (the first is the row-label column).
    head: Vec<String>,
    lines: Vec<Line>,
}

impl Table {
    pub fn new(class: &'static str, head: Vec<String>) -> Self {
        Table {
            class,
            head,
            lines: Vec::new(),
        }
    }

    pub fn group(&mut self, title: &str) {
        self.lines.push(Line::Group(title.to_string()));
    }

    pub fn row(&mut self, row: Row) {
        self.lines.push(Line::Row(row));
    }

    pub fn to_html(&self) -> String {
        let mut out = format!("<table class=\"{}\">\n<thead><tr>", self.class);
        for h in &self.head {
            out.push_str(&format!("<th>{h}</th>"));
        }
        out.push_str("</tr></thead>\n<tbody>\n");
        for line in &self.lines {
            match line {
                Line::Group(t) => out.push_str(&format!(
                    "<tr class=\"group\"><th colspan=\"{}\">{}</th></tr>\n",
                    self.head.len(),
                    escape(t)
                )),
                Line::Row(r) => out.push_str(&row_html(r)),
            }
        }
        out.push_str("</tbody></table>");
        out
    }
}

/// Which cells hold the best value, when there are two or more numbers to compare. Ties
/// (judged on the shown digits) are all best; a row where all are equal has none.
fn best(row: &Row) -> Vec<bool> {
    let none = vec![false; row.cells.len()];
    let values: Vec<(f64, String)> = row
        .cells
        .iter()
        .filter_map(|c| match c {
            Cell::Number(v, show) => v.finite().map(|f| (f, show(*v))),
            Cell::Text(_) => None,
        })
        .collect();
    if values.len() < 2 {
        return none;
    }
    let pick = match row.better {
        Better::Lower => values.iter().min_by(|a, b| a.0.total_cmp(&b.0)),
        Better::Higher => values.iter().max_by(|a, b| a.0.total_cmp(&b.0)),
        Better::Neither => None,
    };
    let Some((_, shown)) = pick else {
        return none;
    };
    if values.iter().all(|(_, s)| s == shown) {
        return none;
    }
    row.cells
        .iter()
        .map(|c| matches!(c, Cell::Number(v, show) if v.finite().is_some() && show(*v) == *shown))
        .collect()
}

fn row_html(r: &Row) -> String {
    let best = best(r);
    let mut out = format!(
        "<tr><td title=\"{}\">{}</td>",
        escape(&r.key),
        escape(&r.label)
    );
    for (i, c) in r.cells.iter().enumerate() {
        let (text, missing) = match c {
            Cell::Number(v, show) => (show(*v), v.finite().is_none()),
            Cell::Text(t) => (t.clone(), false),
        };
        let class = match (best[i], missing) {
            (true, _) => " class=\"best\"",
            (_, true) => " class=\"na\"",
            _ => "",
        };
        out.push_str(&format!("<td{class}>{}</td>", escape(&text)));
    }
    out.push_str("</tr>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn best_value_is_bold_and_missing_values_are_muted() {
        let mut t = Table::new("numbers", vec!["metric".into(), "a".into(), "b".into()]);
        t.group("reconstruction");
        t.row(Row {
            label: "FVU".into(),
            key: "fvu".into(),
            better: Better::Lower,
            cells: vec![Cell::num(Num(Some(0.2))), Cell::num(Num(Some(0.1)))],
        });
        t.row(Row {
            label: "<L0>".into(),
            key: "l0".into(),
            better: Better::Neither,
            cells: vec![Cell::num(Num(None)), Cell::num(Num(Some(f64::NAN)))],
        });
        let html = t.to_html();
        assert!(html.contains("<td>0.2</td><td class=\"best\">0.1</td>"));
        assert!(html.contains("&lt;L0&gt;"));
        assert_eq!(html.matches("<td class=\"na\">n/a</td>").count(), 2);
        // Ties are all best; a row of equal values has none.
        let mut t = Table::new("numbers", vec![String::new(); 4]);
        let row = |values: [f64; 3]| Row {
            label: "x".into(),
            key: "x".into(),
            better: Better::Higher,
            cells: values
                .map(|v| Cell::num(Num(Some(v))))
                .into_iter()
                .collect(),
        };
        t.row(row([0.9, 0.95, 0.95000001]));
        t.row(row([0.5, 0.5, 0.5]));
        let html = t.to_html();
        assert_eq!(html.matches("class=\"best\"").count(), 2);
    }
}
