//! The eval report: header, headline table, then one section per kind of plot, and finally
//! how the numbers were computed.

use crate::error::{ReportError, Result};
use crate::eval_file::EvalFile;
use crate::eval_tables::{headline_table, hooks_table, params_table};
use crate::format;
use crate::html::{chip, Page};
use crate::plots::{ce_bars, de_projection, density, frontier, l0, mcs, pruning_paths, Figure};
use crate::svg::series_colour;
use serde::Deserialize;
use serde_json::Value;

/// Reads the eval JSON into typed form, refusing only a file that says it is something else.
pub fn parse(eval: &Value) -> Result<EvalFile> {
    // Every field may be absent but `format`: without it any JSON (`{}`, a config) would
    // read as an eval of nothing and give an empty page.
    let format = match eval {
        Value::Object(map) => map.get("format"),
        _ => return Err(ReportError::NotAnEval("a JSON object".into())),
    };
    match format {
        Some(Value::String(f)) if f == "saelab-eval" => {}
        Some(other) => {
            return Err(ReportError::NotAnEval(format!(
                "its format is {other}, expected \"saelab-eval\""
            )))
        }
        None => {
            return Err(ReportError::NotAnEval(
                "it has no \"format\": \"saelab-eval\"".into(),
            ))
        }
    }
    EvalFile::deserialize(eval).map_err(ReportError::Schema)
}

pub fn render(eval: &EvalFile) -> String {
    let title = format!("SAE evaluation: {}", eval.model.or("unknown model"));
    let mut page = Page::new(&title);
    page.heading(&title);
    page.subtitle(&header_line(eval));
    sections(&mut page, eval);
    page.finish()
}

fn header_line(eval: &EvalFile) -> String {
    let mut parts = vec![format!("corpus {}", eval.corpus.or("n/a"))];
    if let Some(n) = eval
        .params
        .get("positions_evaluated")
        .and_then(Value::as_u64)
    {
        parts.push(format!("{} positions evaluated", format::count(n)));
    }
    parts.push(format!(
        "{} dictionar{}",
        eval.dictionaries.len(),
        if eval.dictionaries.len() == 1 {
            "y"
        } else {
            "ies"
        }
    ));
    parts.push(format!(
        "file format {} v{}",
        eval.format.or("saelab-eval"),
        eval.version.show()
    ));
    parts.join(" · ")
}

/// Every eval section, for the eval page and for a run page that has an eval.json.
pub fn sections(page: &mut Page, eval: &EvalFile) {
    let dicts = &eval.dictionaries;
    let chips: Vec<String> = dicts
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let note = format!(
                "{} · {} latents · {}",
                d.architecture.or("?"),
                d.d_sae.show_count(),
                d.hook.or("?")
            );
            chip(series_colour(i), d.label(), &note)
        })
        .collect();
    page.markup(&format!("<div class=\"chips\">{}</div>", chips.join("")));
    if dicts.is_empty() {
        page.notice("This eval file holds no dictionaries.");
    }

    page.section(
        "numbers",
        "Headline numbers",
        Some(
            "Definitions as in METRICS.md. Bold: the best value of a row where lower or higher is \
            better; hover a row name for its key in the file.",
        ),
    );
    page.markup(&headline_table(eval));

    if !dicts.is_empty() {
        page.section(
            "downstream",
            "Downstream: the dictionary spliced into the model",
            None,
        );
        let mut figures = vec![ce_bars::figure(eval)];
        figures.extend(frontier::figures(dicts));
        figures.extend(pruning_paths::figures(dicts));
        page.figures(&figures);

        page.section(
            "density",
            "Feature density",
            Some(
                "How often each latent fires. Very rare and dead latents are capacity the \
                dictionary does not use; very dense ones are seldom interpretable.",
            ),
        );
        let domain = density::shared_domain(dicts);
        page.figures(&per_dictionary(eval, |d, c| density::figure(d, c, domain)));

        page.section("l0", "L0 per token", None);
        page.figures(&per_dictionary(eval, l0::figure));

        page.section(
            "geometry",
            "Encoder–decoder geometry",
            Some(
                "Latents whose D/E projection strays from the crowd, or with odd encoder biases, \
                are worth a look.",
            ),
        );
        let domain = density::shared_domain(dicts);
        page.figures(&per_dictionary(eval, |d, c| {
            de_projection::figure(d, c, domain)
        }));
    }

    if !eval.mcs.is_empty() {
        page.section(
            "mcs",
            "Shared features between dictionaries (max cosine similarity)",
            None,
        );
        let figures: Vec<Figure> = eval
            .mcs
            .iter()
            .map(|pair| {
                let i = dicts.iter().position(|d| d.name == pair.a).unwrap_or(0);
                mcs::figure(pair, series_colour(i))
            })
            .collect();
        page.figures(&figures);
    }

    page.section(
        "params",
        "How these numbers were computed",
        Some(
            "The eval file's params block, as written: token counts, which positions count, the \
            dead-latent window.",
        ),
    );
    if eval.params.is_empty() {
        page.notice("The eval file has no params block.");
    } else {
        page.markup(&params_table(&eval.params));
    }
    if !eval.hooks.is_empty() {
        page.markup("<h3 class=\"table-title\">The model at each hook, without a dictionary</h3>");
        page.markup(&hooks_table(eval));
    }
}

fn per_dictionary(
    eval: &EvalFile,
    figure: impl Fn(&crate::eval_file::DictionaryEval, &str) -> Figure,
) -> Vec<Figure> {
    eval.dictionaries
        .iter()
        .enumerate()
        .map(|(i, d)| figure(d, series_colour(i)))
        .collect()
}
