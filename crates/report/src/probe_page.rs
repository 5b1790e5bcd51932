//! The page of a probe study ("saelab-probe"): the labels, the probe table with sparse
//! probing plotted against k, or the XOR table.

use serde_json::Value;

use crate::html::Page;
use crate::plots::probe_k::{self, KSeries};
use crate::plots::Figure;
use crate::svg::colour::series_colour;
use crate::svg::escape;
use crate::{ReportError, Result};

pub const FORMAT: &str = "saelab-probe";

fn num(v: &Value, key: &str) -> Option<f64> {
    v.get(key).and_then(Value::as_f64)
}

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("?")
}

fn pct(v: Option<f64>) -> String {
    v.map_or("n/a".to_string(), |a| format!("{:.1}%", a * 100.0))
}

fn array<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

pub fn render(study: &Value) -> Result<String> {
    if study.get("format").and_then(Value::as_str) != Some(FORMAT) {
        return Err(ReportError::WrongFormat {
            format: FORMAT,
            reason: format!("it has no \"format\": \"{FORMAT}\""),
        });
    }
    let title = format!("Probes: {}", text(study, "model"));
    let mut page = Page::new(&title);
    page.heading(&title);
    page.subtitle(&format!(
        "corpus {} · {} documents · {} rows ({} for validation) · {} · first {} tokens · C = {} on \
         standardised columns · seed {}",
        text(study, "corpus"),
        num(study, "documents").unwrap_or(0.0),
        num(study, "rows").unwrap_or(0.0),
        num(study, "validation_rows").unwrap_or(0.0),
        text(study, "positions_text"),
        num(study, "ctx").unwrap_or(0.0),
        num(study, "c").unwrap_or(f64::NAN),
        num(study, "seed").unwrap_or(0.0),
    ));
    page.section(
        "labels",
        "Labels",
        Some("Documents per class after balancing."),
    );
    for l in array(study, "labels") {
        let counts: Vec<String> = array(l, "classes")
            .iter()
            .zip(array(l, "documents"))
            .map(|(c, n)| format!("{} {}", c.as_str().unwrap_or("?"), n))
            .collect();
        page.markup(&format!(
            "<p><b>{}</b>: {}</p>",
            escape(text(l, "spec")),
            escape(&counts.join(" · "))
        ));
    }
    let probes = array(study, "probes");
    if !probes.is_empty() {
        probe_sections(&mut page, study, probes);
    }
    let xor = array(study, "xor");
    if !xor.is_empty() {
        xor_section(&mut page, study, xor);
    }
    Ok(page.finish())
}

fn probe_sections(page: &mut Page, study: &Value, probes: &[Value]) {
    let majority = study.get("majority").and_then(|m| num(m, "accuracy"));
    let mut names: Vec<&str> = Vec::new();
    for p in probes {
        let name = text(p, "representation");
        if !names.contains(&name) {
            names.push(name);
        }
    }
    let mut series = Vec::new();
    let mut ks: Vec<f64> = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let colour = series_colour(i).to_string();
        let of = |setting: &str| -> Vec<(f64, f64)> {
            probes
                .iter()
                .filter(|p| text(p, "representation") == *name && text(p, "setting") == setting)
                .filter_map(|p| Some((num(p, "k").unwrap_or(f64::NAN), num(p, "accuracy")?)))
                .collect()
        };
        let top = of("top_k");
        ks.extend(top.iter().map(|p| p.0));
        series.push(KSeries {
            name: format!("{name}: top k"),
            colour: colour.clone(),
            points: top,
            flat: false,
        });
        let random = of("random_k");
        if !random.is_empty() {
            series.push(KSeries {
                name: format!("{name}: k random directions"),
                colour: "#bab0ac".to_string(),
                points: random,
                flat: false,
            });
        }
        series.push(KSeries {
            name: format!("{name}: all dimensions"),
            colour: format!("{colour}99"),
            points: of("all"),
            flat: true,
        });
    }
    ks.sort_by(f64::total_cmp);
    ks.dedup();
    page.section(
        "sparse",
        "Sparse probing",
        Some(
            "A logistic-regression probe on the k latents (or activation dimensions) whose class \
             means differ most on the training documents, against k random directions of the \
             activations and the probe on every dimension. Validation documents were never seen \
             by the probe or the ranking.",
        ),
    );
    page.figures(&[Figure {
        title: "Validation accuracy against k".to_string(),
        svg: probe_k::draw(&series, &ks, majority),
        caption: format!(
            "Flat lines: every dimension of the representation; grey: k random Gaussian \
             directions of the activations; guide: the majority class ({}).",
            pct(majority)
        ),
    }]);
    page.section("table", "All probes", None);
    let mut table = String::from(
        "<table class=\"numbers\"><thead><tr><th>representation</th><th>setting</th><th>k</th>\
         <th>accuracy</th><th>macro F1</th><th>train accuracy</th></tr></thead><tbody>",
    );
    for p in probes {
        let k = num(p, "k").map_or("all".to_string(), |k| format!("{k}"));
        let converged = p.get("converged").and_then(Value::as_bool).unwrap_or(true);
        table.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}{}</td></tr>",
            escape(text(p, "representation")),
            escape(text(p, "setting")),
            escape(&k),
            pct(num(p, "accuracy")),
            num(p, "macro_f1").map_or("n/a".into(), |f| format!("{f:.3}")),
            pct(num(p, "train_accuracy")),
            if converged { "" } else { " (not converged)" },
        ));
    }
    table.push_str(&format!(
        "<tr><td>majority class</td><td></td><td></td><td>{}</td><td></td><td></td></tr>",
        pct(majority)
    ));
    table.push_str("</tbody></table>");
    page.markup(&table);
}

fn xor_section(page: &mut Page, study: &Value, xor: &[Value]) {
    let labels = array(study, "labels");
    let spec = |i: usize| labels.get(i).map_or("?", |l| text(l, "spec"));
    let cells = study
        .get("xor_cells")
        .map(|c| c.to_string())
        .unwrap_or_default();
    page.section(
        "xor",
        "XOR",
        Some(&format!(
            "a = {}, b = {}; documents per cell [[(0,0), (0,1)], [(1,0), (1,1)]]: {cells}. The \
             control keeps each dimension's least-squares fit on (a, b) and replaces the rest \
             with another row's residual, so a and b stay decodable but a XOR b can only be \
             read as far as a sum of a and b allows (at most 75% with balanced cells, and \
             near 50% for logistic regression, whose optimum there is a flat guess).",
            spec(0),
            spec(1)
        )),
    );
    let mut table = String::from(
        "<table class=\"numbers\"><thead><tr><th>representation</th><th>a</th><th>b</th>\
         <th>a XOR b</th><th>control: a</th><th>control: b</th><th>control: a XOR b</th>\
         </tr></thead><tbody>",
    );
    for x in xor {
        let acc = |side: &str, which: &str| {
            pct(x
                .get(side)
                .and_then(|s| s.get(which))
                .and_then(|s| num(s, "accuracy")))
        };
        table.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td><b>{}</b></td><td>{}</td><td>{}</td>\
             <td><b>{}</b></td></tr>",
            escape(text(x, "representation")),
            acc("real", "a"),
            acc("real", "b"),
            acc("real", "xor"),
            acc("control", "a"),
            acc("control", "b"),
            acc("control", "xor"),
        ));
    }
    table.push_str("</tbody></table>");
    page.markup(&table);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_study_renders_its_numbers_and_refuses_other_files() {
        let study = serde_json::json!({
            "format": "saelab-probe", "model": "m", "corpus": "wiki", "documents": 10,
            "rows": 10, "validation_rows": 3, "positions_text": "mean", "ctx": 64, "c": 1.0,
            "seed": 0,
            "labels": [{"spec": "topic", "classes": ["A", "B<"], "documents": [5, 5]}],
            "majority": {"accuracy": 0.5},
            "probes": [
                {"representation": "h", "setting": "all", "k": null, "accuracy": 0.9,
                 "macro_f1": 0.9, "train_accuracy": 1.0, "converged": true},
                {"representation": "h", "setting": "top_k", "k": 1, "accuracy": 0.7,
                 "macro_f1": 0.7, "train_accuracy": 0.8, "converged": false}
            ]
        });
        let html = render(&study).unwrap();
        assert!(html.contains("90.0%") && html.contains("(not converged)"));
        assert!(html.contains("B&lt;") && !html.contains("B<"));
        assert!(render(&serde_json::json!({"format": "saelab-eval"})).is_err());
    }
}
