//! The page of a steering sweep (`saelab steer --report`, a "saelab-steer" document): what
//! was steered, the cost and the effect against α, and the continuations.
//!
//! Fields are read leniently, as the eval page reads its file: a missing or odd value shows
//! as "n/a" rather than refusing the page.

use serde_json::{Map, Value};

use crate::format::{number, NOT_AVAILABLE};
use crate::html::Page;
use crate::lenient::plain;
use crate::plots::lines::{draw, LinePlot, Series};
use crate::plots::Figure;
use crate::svg::{escape, series_colour, TickFormat};

/// One row of the sweep, as the page reads it.
struct Row {
    alpha: Option<f64>,
    continuation: String,
    stop: String,
    neutral_ce: Option<f64>,
    neutral_ce_delta: Option<f64>,
    target_logprob_shift: Option<f64>,
}

impl Row {
    fn read(v: &Value) -> Self {
        let text = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        Row {
            alpha: num(v, "alpha"),
            continuation: text("continuation"),
            stop: text("stop"),
            neutral_ce: num(v, "neutral_ce"),
            neutral_ce_delta: num(v, "neutral_ce_delta"),
            target_logprob_shift: num(v, "target_logprob_shift"),
        }
    }
}

fn num(v: &Value, key: &str) -> Option<f64> {
    v.get(key).and_then(Value::as_f64)
}

/// A JSON value for a table cell: whole numbers as they are, other numbers to four
/// significant digits, the rest as `plain` writes them.
fn show_value(v: &Value) -> String {
    match v {
        Value::Number(n) if n.as_u64().is_none() && n.as_i64().is_none() => show(n.as_f64()),
        other => plain(other),
    }
}

fn show(v: Option<f64>) -> String {
    v.map_or_else(|| NOT_AVAILABLE.to_string(), number)
}

/// A difference, signed.
fn show_delta(v: Option<f64>) -> String {
    match v {
        Some(d) if d > 0.0 => format!("+{}", number(d)),
        other => show(other),
    }
}

pub fn render(doc: &Value) -> String {
    let empty = Map::new();
    let direction = doc
        .get("direction")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let hook = doc.get("hook").and_then(Value::as_str).unwrap_or("?");
    let what = describe_direction(direction);
    let title = format!("Steering: {what} at {hook}");
    let mut page = Page::new(&title);
    page.heading(&title);
    let model = doc.get("model").and_then(Value::as_str).unwrap_or("");
    let model = if model.is_empty() {
        "the default model"
    } else {
        model
    };
    let format = match doc.get("format").and_then(Value::as_str) {
        Some(f) => f.to_string(),
        None => "no format".to_string(),
    };
    let version = doc.get("version").map(plain).unwrap_or_default();
    page.subtitle(&format!("{model} · file format {format} v{version}"));
    if format != "saelab-steer" {
        page.notice(
            "This document does not say it is a saelab-steer sweep; fields may be missing.",
        );
    }

    let rows: Vec<Row> = doc
        .get("rows")
        .and_then(Value::as_array)
        .map(|rows| rows.iter().map(Row::read).collect())
        .unwrap_or_default();
    let d_norm = num(&Value::Object(direction.clone()), "norm");
    let x_norm = num(doc, "activation_norm");
    // α·‖d‖ / mean ‖x‖: how large the push is beside the activation it is added to.
    let relative = match (d_norm, x_norm) {
        (Some(d), Some(x)) if x > 0.0 => Some(d / x),
        _ => None,
    };

    page.section("setup", "What was steered", None);
    page.markup(&setup_table(doc, direction, d_norm, x_norm, relative));

    let neutral = doc.get("neutral").cloned().unwrap_or(Value::Null);
    let targets = doc.get("targets").filter(|t| !t.is_null());
    page.section(
        "sweep",
        "Cost and effect against α",
        Some(
            "α·d is added to the hook's value at every position of every forward, the prompt's \
             included. Both measures are differences from α = 0, computed whether or not the \
             sweep lists it.",
        ),
    );
    let mut figures = vec![figure(
        "steer-neutral-ce",
        "Cost: neutral cross-entropy change",
        "Δ CE (nats)",
        &rows,
        |r| r.neutral_ce_delta,
        format!(
            "Mean next-token cross-entropy of the neutral text ({} predictions) with α·d added, \
             minus its value at α = 0 ({} nats). Higher: the push costs more of the model's \
             ordinary predictions.",
            neutral.get("predicted").map(plain).unwrap_or_default(),
            show(num(&neutral, "ce"))
        ),
    )];
    if let Some(t) = targets {
        let texts: Vec<String> = t
            .get("tokens")
            .and_then(Value::as_array)
            .map(|ts| {
                ts.iter()
                    .map(|tt| format!("{:?}", tt.get("text").map(plain).unwrap_or_default()))
                    .collect()
            })
            .unwrap_or_default();
        figures.push(figure(
            "steer-target-logprob",
            "Effect: log P(targets) shift",
            "Δ log P (nats)",
            &rows,
            |r| r.target_logprob_shift,
            format!(
                "log of the summed probability of the first tokens of {} for the first generated \
                 token, minus its value at α = 0 ({}). Higher: the push makes the targets more \
                 likely.",
                texts.join(", "),
                show(num(t, "logprob"))
            ),
        ));
    }
    page.figures(&figures);

    page.section(
        "continuations",
        "Continuations",
        Some("The greedy continuation of the prompt at each α, in the sweep's order."),
    );
    page.markup(&continuations_table(&rows, relative, targets.is_some()));
    page.finish()
}

fn describe_direction(direction: &Map<String, Value>) -> String {
    let field = |k: &str| direction.get(k).map(plain).unwrap_or_default();
    match direction.get("source").and_then(Value::as_str) {
        Some("feature") => format!("feature {} of {}", field("feature"), field("dictionary")),
        Some("file") => format!("the direction in {}", field("path")),
        Some(other) => format!("a direction ({other})"),
        None => "a direction".to_string(),
    }
}

fn setup_table(
    doc: &Value,
    direction: &Map<String, Value>,
    d_norm: Option<f64>,
    x_norm: Option<f64>,
    relative: Option<f64>,
) -> String {
    let mut lines: Vec<(String, String)> = vec![
        (
            "prompt".into(),
            doc.get("prompt").map(plain).unwrap_or_default(),
        ),
        (
            "hook".into(),
            doc.get("hook").map(plain).unwrap_or_default(),
        ),
    ];
    for (k, v) in direction {
        if k != "norm" {
            lines.push((format!("direction {k}"), show_value(v)));
        }
    }
    lines.push(("‖d‖".into(), show(d_norm)));
    lines.push(("mean ‖x‖ on the neutral text (α = 0)".into(), show(x_norm)));
    lines.push(("‖d‖ / mean ‖x‖ (the push of α = 1)".into(), show(relative)));
    if let Some(n) = doc.get("neutral").and_then(Value::as_object) {
        for (k, v) in n {
            lines.push((format!("neutral {k}"), show_value(v)));
        }
    }
    if let Some(t) = doc.get("targets").filter(|t| !t.is_null()) {
        let tokens: Vec<String> = t
            .get("tokens")
            .and_then(Value::as_array)
            .map(|ts| {
                ts.iter()
                    .map(|tt| {
                        format!(
                            "{:?} → token {} {:?}",
                            tt.get("text").map(plain).unwrap_or_default(),
                            tt.get("id").map(plain).unwrap_or_default(),
                            tt.get("token").map(plain).unwrap_or_default()
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        lines.push(("targets".into(), tokens.join("; ")));
        lines.push(("log P(targets) at α = 0".into(), show(num(t, "logprob"))));
    }
    if let Some(m) = doc.get("max_tokens") {
        lines.push(("max new tokens".into(), plain(m)));
    }
    let mut out = String::from("<table class=\"params\"><tbody>\n");
    for (k, v) in lines {
        out.push_str(&format!(
            "<tr><td>{}</td><td>{}</td></tr>\n",
            escape(&k),
            escape(&v)
        ));
    }
    out.push_str("</tbody></table>");
    out
}

fn figure(
    kind: &str,
    title: &str,
    y_title: &str,
    rows: &[Row],
    value: impl Fn(&Row) -> Option<f64>,
    caption: String,
) -> Figure {
    let mut points: Vec<(f64, f64)> = rows
        .iter()
        .filter_map(|r| Some((r.alpha?, value(r)?)))
        .collect();
    // Both measures are 0 at α = 0 by definition, listed or not.
    if !points.is_empty() && !points.iter().any(|p| p.0 == 0.0) {
        points.push((0.0, 0.0));
    }
    points.sort_by(|a, b| a.0.total_cmp(&b.0));
    let series = [Series {
        name: y_title.to_string(),
        colour: series_colour(0).to_string(),
        points,
    }];
    Figure {
        title: title.to_string(),
        svg: draw(&LinePlot {
            kind,
            series: &series,
            x_title: "α",
            y_title,
            y_format: TickFormat::Plain,
            y_from_zero: false,
        }),
        caption,
    }
}

fn continuations_table(rows: &[Row], relative: Option<f64>, with_targets: bool) -> String {
    let mut head = vec!["α", "α·‖d‖ / ‖x‖", "neutral CE", "Δ CE"];
    if with_targets {
        head.push("Δ log P(targets)");
    }
    head.extend(["stop", "continuation"]);
    let mut out = String::from("<table class=\"steer\">\n<thead><tr>");
    for h in head {
        let align = if h == "continuation" {
            " style=\"text-align:left\""
        } else {
            ""
        };
        out.push_str(&format!("<th{align}>{}</th>", escape(h)));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for r in rows {
        let push = r.alpha.zip(relative).map(|(a, rel)| a * rel);
        let mut cells = vec![
            show(r.alpha),
            show(push),
            show(r.neutral_ce),
            show_delta(r.neutral_ce_delta),
        ];
        if with_targets {
            cells.push(show_delta(r.target_logprob_shift));
        }
        cells.push(r.stop.clone());
        out.push_str("<tr>");
        for c in cells {
            out.push_str(&format!("<td>{}</td>", escape(&c)));
        }
        // Newlines and spacing of the text kept as generated.
        out.push_str(&format!(
            "<td style=\"text-align:left;white-space:pre-wrap;min-width:28em\">{}</td></tr>\n",
            escape(&r.continuation)
        ));
    }
    out.push_str("</tbody></table>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc() -> Value {
        json!({
            "format": "saelab-steer", "version": 1, "model": "tiny",
            "hook": "blocks.0.hook_resid_post",
            "direction": {"source": "feature", "dictionary": "a", "feature": 7, "norm": 2.0},
            "activation_norm": 10.0,
            "neutral": {"source": "built-in", "tokens": 40, "predicted": 38, "ce": 3.5},
            "prompt": "The <cat>",
            "targets": {"tokens": [{"text": " love", "id": 5, "token": " love", "tokens": 1}],
                        "ids": [5], "logprob": -4.0},
            "rows": [
                {"alpha": 4.0, "continuation": "a\n<b>", "stop": "length", "neutral_ce": 3.7,
                 "neutral_ce_delta": 0.2, "target_logprob": -3.0, "target_logprob_shift": 1.0},
                {"alpha": -4.0, "continuation": "c", "stop": "end-of-sequence",
                 "neutral_ce": 3.6, "neutral_ce_delta": 0.1, "target_logprob": -5.0,
                 "target_logprob_shift": -1.0}
            ]
        })
    }

    #[test]
    fn a_sweep_gives_two_plots_and_a_row_per_alpha_in_order() {
        let html = render(&doc());
        assert_eq!(html.matches("<svg class=\"plot\"").count(), 2);
        assert!(html.contains("data-plot=\"steer-neutral-ce\""));
        assert!(html.contains("data-plot=\"steer-target-logprob\""));
        // Text is escaped; rows keep the sweep's order (4 before −4).
        assert!(html.contains("a\n&lt;b&gt;") && html.contains("The &lt;cat&gt;"));
        let table = &html[html.find("<table class=\"steer\">").unwrap()..];
        let (plus, minus) = (
            table.find("<td>4</td>").unwrap(),
            table.find("<td>-4</td>").unwrap(),
        );
        assert!(plus < minus);
        // α·‖d‖/‖x‖ = 4·2/10.
        assert!(html.contains("<td>0.8</td>"));
    }

    #[test]
    fn without_targets_there_is_one_plot_and_odd_values_show_as_na() {
        let mut d = doc();
        d["targets"] = Value::Null;
        d["rows"][0]["neutral_ce"] = json!("x");
        let html = render(&d);
        assert_eq!(html.matches("<svg class=\"plot\"").count(), 1);
        assert!(!html.contains("Δ log P(targets)"));
        assert!(html.contains("<td>n/a</td>"));
        assert!(!render(&json!({})).is_empty());
    }
}
