//! The run page's "Feature death over training" sections: one per dictionary with density
//! snapshots (`snapshots/<name>/`), with the trajectories, b_enc views and time-to-death
//! plots of `plots::death` and two tables.

use crate::death::{EndSummary, Group, History, LatentSet, Quartiles, DEAD_WINDOW_SNAPSHOTS};
use crate::format;
use crate::html::Page;
use crate::lenient::Num;
use crate::plots::death::{self, DensityAxis, Panel, ViewAxes};
use crate::snapshot_files::{self, FOLDER};
use crate::svg::escape;
use crate::table::{Better, Cell, Row, Table};
use std::path::Path;

/// Appends a section per dictionary with snapshots, in `order` (the run's dictionaries as
/// its metrics list them) and then by name. Nothing when the run has no snapshots.
pub fn sections(page: &mut Page, run_dir: &Path, order: &[String]) {
    let mut names = match snapshot_files::dictionaries(run_dir) {
        Ok(names) => names,
        Err(e) => {
            page.notice(&format!("Density snapshots could not be listed: {e}"));
            return;
        }
    };
    names.sort_by_key(|n| order.iter().position(|o| o == n).unwrap_or(usize::MAX));
    for name in names {
        match History::read(run_dir, &name) {
            Ok(h) if h.snapshots() > 0 => section(page, &name, &h),
            Ok(_) => {}
            Err(e) => page.notice(&format!(
                "Density snapshots of {name} could not be read: {e}"
            )),
        }
    }
}

fn section(page: &mut Page, name: &str, h: &History) {
    let n = h.snapshots();
    let control = h.control_size();
    let interval = h.interval_tokens.iter().copied().max().unwrap_or(0);
    let mut intro = format!(
        "{} snapshots in {FOLDER}/{name}/, every {} tokens up to step {} ({} tokens). ",
        n,
        format::count(interval),
        format::count(h.steps[n - 1]),
        format::si(h.tokens[n - 1] as f64)
    );
    intro.push_str(&match control {
        0 => "No control set: any latent may have been resampled.".to_string(),
        c => format!(
            "Control set: {} of {} latents ({}), never resampled, so that dying can be watched \
             undisturbed next to the others.",
            format::count(c as u64),
            format::count(h.latents as u64),
            format::percent(c as f64 / h.latents.max(1) as f64)
        ),
    });
    page.section(
        &format!("death-{name}"),
        &format!("Feature death over training: {name}"),
        Some(&intro),
    );
    let sets: Vec<LatentSet> = [LatentSet::Control, LatentSet::Others]
        .into_iter()
        .filter(|&s| h.members(s).next().is_some())
        .collect();
    let axis = DensityAxis::new(h);
    // Side by side, the two sets' panels of the same groups.
    page.figures(
        &Panel::BOTH
            .iter()
            .flat_map(|&p| sets.iter().map(move |&s| (s, p)))
            .filter_map(|(s, p)| death::trajectories(h, name, s, p, axis))
            .collect::<Vec<_>>(),
    );
    let axes = ViewAxes::new(h);
    page.figures(
        &h.views
            .iter()
            .map(|v| death::view(h, name, v, axes))
            .collect::<Vec<_>>(),
    );
    // A histogram of nothing would be a blank plot: a line says so instead.
    match sets.iter().map(|&s| h.deaths(s).len()).sum::<usize>() {
        0 => page.subtitle(&format!(
            "No latent is dead at the end (every latent fired in the last \
             {DEAD_WINDOW_SNAPSHOTS} snapshots): no time-to-death histogram."
        )),
        _ => page.figures(&[death::time_to_death(h, name)]),
    }
    page.markup(&format!(
        "<h3 class=\"table-title\">{}</h3>",
        escape(&format!(
            "Dead and alive at the end (dead: no firing in the last {DEAD_WINDOW_SNAPSHOTS} \
             snapshots); b_enc and D/E projection at the last snapshot as median (25th to 75th \
             percentile)"
        ))
    ));
    page.markup(&end_table(h, &sets));
    if let Some(from) = h.views.iter().rev().nth(1).map(|v| v.snapshot) {
        page.markup(&format!(
            "<h3 class=\"table-title\">{}</h3>",
            escape(&format!(
                "Where the latents went: density group at step {} (rows) and at the end \
                 (columns), each over {DEAD_WINDOW_SNAPSHOTS} snapshots",
                format::count(h.steps[from])
            ))
        ));
        page.markup(&moves_table(h, &sets, from));
    }
}

fn count(n: usize) -> Cell {
    Cell::count(Num(Some(n as f64)))
}

/// "median (25th to 75th percentile)", "n/a" over no latents.
fn spread(q: Quartiles) -> Cell {
    match q.median.is_finite() {
        true => Cell::Text(format!(
            "{} ({} to {})",
            format::number(q.median),
            format::number(q.q25),
            format::number(q.q75)
        )),
        false => Cell::num(Num(None)),
    }
}

fn end_table(h: &History, sets: &[LatentSet]) -> String {
    let mut head = vec![String::new()];
    head.extend(sets.iter().map(|s| escape(s.label())));
    let mut t = Table::new("numbers", head);
    let summaries: Vec<_> = sets.iter().map(|&s| h.end_summary(s)).collect();
    type Pick = fn(&EndSummary) -> Cell;
    let rows: [(&str, &str, Pick); 10] = [
        ("latents", "latents", |s| count(s.latents)),
        ("never fired (in any interval)", "never", |s| {
            count(s.never.latents)
        }),
        ("died (fired, then not in the last window)", "died", |s| {
            count(s.died.latents)
        }),
        ("dead share (never fired + died)", "dead_share", |s| {
            let dead = s.never.latents + s.died.latents;
            Cell::Text(format::percent(dead as f64 / s.latents.max(1) as f64))
        }),
        ("b_enc, never fired", "b_enc", |s| spread(s.never.b_enc)),
        ("b_enc, died", "b_enc", |s| spread(s.died.b_enc)),
        ("b_enc, alive", "b_enc", |s| spread(s.alive.b_enc)),
        ("D/E projection, never fired", "de_projection", |s| {
            spread(s.never.de_projection)
        }),
        ("D/E projection, died", "de_projection", |s| {
            spread(s.died.de_projection)
        }),
        ("D/E projection, alive", "de_projection", |s| {
            spread(s.alive.de_projection)
        }),
    ];
    for (label, key, pick) in rows {
        t.row(Row {
            label: label.to_string(),
            key: key.to_string(),
            better: Better::Neither,
            cells: summaries.iter().map(pick).collect(),
        });
    }
    t.to_html()
}

fn moves_table(h: &History, sets: &[LatentSet], from: usize) -> String {
    let mut head = vec![escape(&format!(
        "step {} ↓, end →",
        format::count(h.steps[from])
    ))];
    head.extend(Group::ALL.iter().map(|g| escape(g.label())));
    head.push("total".to_string());
    let mut t = Table::new("numbers", head);
    for &set in sets {
        let moves = h.group_moves(set, from);
        t.group(set.label());
        for g in Group::ALL {
            let row = moves[g.index()];
            let total: usize = row.iter().sum();
            if total == 0 {
                continue;
            }
            let mut cells: Vec<Cell> = row.iter().map(|&n| count(n)).collect();
            cells.push(count(total));
            t.row(Row {
                label: g.label().to_string(),
                key: "group".into(),
                better: Better::Neither,
                cells,
            });
        }
    }
    t.to_html()
}

#[cfg(test)]
mod tests {
    use crate::death::tests::{synthetic, LATENTS};
    use crate::snapshot_files::tests::write;

    /// Checks that the page's elements nest (script and style bodies skipped, void elements
    /// and `/>` closing themselves) and returns how many there are.
    fn elements(html: &str) -> usize {
        const VOID: [&str; 4] = ["meta", "br", "hr", "img"];
        let mut open: Vec<String> = Vec::new();
        let mut rest = html;
        let mut seen = 0;
        while let Some(at) = rest.find('<') {
            rest = &rest[at + 1..];
            let end = rest.find('>').expect("an unclosed tag");
            let tag = &rest[..end];
            rest = &rest[end + 1..];
            if tag.starts_with('!') {
                continue;
            }
            let name: String = tag
                .trim_start_matches('/')
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric())
                .collect();
            if let Some(closing) = tag.strip_prefix('/') {
                assert_eq!(open.pop().as_deref(), Some(closing.trim()), "at <{tag}>");
            } else if !tag.ends_with('/') && !VOID.contains(&name.as_str()) {
                seen += 1;
                if name == "script" || name == "style" {
                    let close = format!("</{name}>");
                    rest = &rest[rest.find(&close).expect("closed") + close.len()..];
                } else {
                    open.push(name);
                }
            } else {
                seen += 1;
            }
        }
        assert!(open.is_empty(), "left open: {open:?}");
        seen
    }

    fn plots(html: &str, kind: &str) -> usize {
        html.matches(&format!("data-plot=\"{kind}\"")).count()
    }

    fn run_folder() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let metrics = r#"{"name":"d","step":100,"tokens":10000,"fvu":0.5,"l0":3}"#;
        std::fs::write(dir.path().join("metrics.jsonl"), metrics).unwrap();
        dir
    }

    #[test]
    fn a_run_with_snapshots_gets_the_death_section() {
        let dir = run_folder();
        for f in synthetic(10, &LATENTS) {
            write(dir.path(), "d", &f);
        }
        let html = crate::render_run(dir.path()).unwrap();
        assert!(elements(&html) > 100);
        assert!(html.contains("id=\"death-d\""));
        // The control set's dead and the others' dense latents: two of the four panels.
        assert_eq!(plots(&html, "death-trajectories"), 2);
        assert_eq!(plots(&html, "death-view"), 3);
        assert_eq!(plots(&html, "death-time"), 1);
        // The summary table: of the 3 control latents one never fired and two died; the 2
        // others are alive.
        assert!(
            html.contains(r#"died (fired, then not in the last window)</td><td>2</td><td>0</td>"#),
            "{html}"
        );
        assert!(html.contains(r#"never fired (in any interval)</td><td>1</td><td>0</td>"#));
        // A broken snapshot becomes a notice naming it; the page stays.
        let bad = dir.path().join("snapshots/d/step_00000050.safetensors");
        std::fs::write(&bad, b"x").unwrap();
        let html = crate::render_run(dir.path()).unwrap();
        assert!(html.contains("step_00000050.safetensors") && html.contains("notice"));
        assert_eq!(plots(&html, "death-view"), 0);
        elements(&html);
    }

    #[test]
    fn a_run_without_snapshots_renders_as_before() {
        let dir = run_folder();
        let before = crate::render_run(dir.path()).unwrap();
        assert!(!before.contains("death"));
        elements(&before);
        // An empty snapshot folder (a run that has not taken one yet) changes nothing.
        std::fs::create_dir_all(dir.path().join("snapshots/d")).unwrap();
        assert_eq!(crate::render_run(dir.path()).unwrap(), before);
    }

    #[test]
    fn no_dead_latent_means_no_empty_histogram() {
        let dir = run_folder();
        let always: [fn(usize) -> i64; 2] = [|_| 5, |_| 1];
        for f in synthetic(6, &always) {
            write(dir.path(), "d", &f);
        }
        let html = crate::render_run(dir.path()).unwrap();
        assert_eq!(plots(&html, "death-time"), 0);
        assert!(html.contains("No latent is dead at the end"));
    }
}
