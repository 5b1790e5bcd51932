//! Feature death over training (`crate::death`): density trajectories per final density
//! group, b_enc against density coloured by D/E projection at chosen snapshots (the view
//! shared/seeds/004 describes), and a time-to-death histogram, each for the control set
//! (never resampled) next to the other latents.

use super::histogram::{APART_BAND, APART_WIDTH, APART_X};
use super::{jitter, per_latent_caption, stride_for, Figure};
use crate::death::{Group, History, LatentSet, Trajectory, View, DEAD_WINDOW_SNAPSHOTS};
use crate::format;
use crate::svg::chart::{px, Margin};
use crate::svg::colour::{viridis, NEUTRAL};
use crate::svg::legend::{colour_bar, legend_chart};
use crate::svg::scale::{linear_ticks, nice_extent, Scale};
use crate::svg::{escape, series_colour, Anchor, Chart, ColourScale, TickFormat};

const WIDTH: f64 = 520.0;
const HEIGHT: f64 = 290.0;
/// Points per b_enc view: more make the page heavy and the plot no clearer.
pub const MAX_POINTS: usize = 3000;
/// Snapshots per run beyond which the time-to-death bins merge neighbouring intervals.
const MAX_BINS: usize = 40;
/// The D/E projection colour range: 1 is a faithful latent; seed 004's dying latents spread
/// around 0. Values beyond take the end colours.
pub const DE_RANGE: (f64, f64) = (-0.5, 1.5);
/// Lines this short also get a dot per point.
const DOTS_UP_TO: usize = 40;

pub fn group_colour(g: Group) -> String {
    match g {
        Group::Never => NEUTRAL.to_string(),
        Group::Died => "#d62728".to_string(),
        // Rare to dense: viridis, stopping short of its pale yellow end.
        _ => viridis((g.index() - 2) as f64 / 4.0 * 0.85),
    }
}

/// The colours of the two sets where they share a plot.
pub fn set_colour(set: LatentSet) -> &'static str {
    match set {
        LatentSet::Control => series_colour(1),
        LatentSet::Others => series_colour(0),
    }
}

/// The log10-density axis of the trajectory plots, shared by both sets' panels: zero (no
/// firing in an interval) is drawn at `floor`, a little below the smallest density drawn
/// (a group's mean can lie below the one firing per interval a single latent can show).
#[derive(Clone, Copy, Debug)]
pub struct DensityAxis {
    pub floor: f64,
    pub top: f64,
    /// log10 of one firing in the longest interval.
    pub resolution: f64,
}

impl DensityAxis {
    pub fn new(h: &History) -> Self {
        let resolution = h.resolution().log10();
        let values: Vec<f64> = [LatentSet::Control, LatentSet::Others]
            .iter()
            .flat_map(|&set| h.trajectories(set))
            .flat_map(|t| t.points)
            .flat_map(|p| [p.q25, p.median, p.q75, p.mean])
            .filter(|d| *d > 0.0)
            .collect();
        let lowest = values
            .iter()
            .copied()
            .fold(10f64.powf(resolution), f64::min);
        let floor = lowest.log10() - 0.6;
        let highest = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let top = match highest.is_finite() {
            true => highest.log10().ceil().min(0.0),
            false => resolution.ceil() + 1.0,
        };
        DensityAxis {
            floor,
            top: top.max(resolution.ceil()),
            resolution,
        }
    }

    fn value(&self, density: f64) -> f64 {
        match density > 0.0 {
            true => density.log10().max(self.floor),
            false => self.floor,
        }
    }

    /// Gridlines and labels: whole decades, and "0" at the floor.
    fn draw(&self, chart: &mut Chart, y: &Scale, title: &str) {
        let mut ticks: Vec<(f64, String)> = linear_ticks(self.floor + 0.3, self.top, 6)
            .into_iter()
            .filter(|v| v.fract() == 0.0)
            .map(|v| (v, format::power_of_ten(v as i32)))
            .collect();
        ticks.push((self.floor, "0".to_string()));
        for (v, label) in ticks {
            let py = y.map(v);
            chart.raw(&format!(
                r#"<line class="grid" x1="{}" y1="{y}" x2="{}" y2="{y}"/>"#,
                px(chart.left()),
                px(chart.right()),
                y = px(py)
            ));
            chart.text(chart.left() - 6.0, py + 3.5, &label, Anchor::End, "tick");
        }
        let (x, cy) = (14.0, (chart.top() + chart.bottom()) / 2.0);
        chart.raw(&format!(
            r#"<text class="title" text-anchor="middle" transform="translate({},{}) rotate(-90)">{}</text>"#,
            px(x),
            px(cy),
            escape(title)
        ));
        chart.raw(&format!(
            r#"<line class="axis" x1="{l}" y1="{}" x2="{l}" y2="{}"/>"#,
            px(chart.top()),
            px(chart.bottom()),
            l = px(chart.left())
        ));
    }
}

fn tokens_axis(chart: &Chart, h: &History) -> Scale {
    let last = h.tokens.last().copied().unwrap_or(1).max(1) as f64;
    chart.x_linear(0.0, last)
}

/// Which final groups a trajectory panel shows: two panels per set keep the lines apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Panel {
    /// Never fired, died, or below 10⁻⁴ at the end.
    DeadOrRare,
    /// 10⁻⁴ or denser at the end.
    Dense,
}

impl Panel {
    pub const BOTH: [Panel; 2] = [Panel::DeadOrRare, Panel::Dense];

    fn holds(self, g: Group) -> bool {
        (g < Group::From1e4) == (self == Panel::DeadOrRare)
    }

    fn label(self) -> &'static str {
        match self {
            Panel::DeadOrRare => "dead or below 10⁻⁴ at the end",
            Panel::Dense => "10⁻⁴ or denser at the end",
        }
    }
}

/// One panel of density trajectories: a line per final density group of `set` in `panel`
/// (its median density per interval) in its interquartile band, and its mean dotted. None
/// when no latent of `set` ends in the panel's groups.
pub fn trajectories(
    h: &History,
    dictionary: &str,
    set: LatentSet,
    panel: Panel,
    axis: DensityAxis,
) -> Option<Figure> {
    let lines: Vec<Trajectory> = h
        .trajectories(set)
        .into_iter()
        .filter(|t| panel.holds(t.group))
        .collect();
    if lines.is_empty() {
        return None;
    }
    let entries: Vec<(String, String)> = lines
        .iter()
        .map(|t| {
            (
                group_colour(t.group),
                format!("{} · {}", t.group.label(), format::count(t.latents as u64)),
            )
        })
        .collect();
    let mut chart = legend_chart("death-trajectories", WIDTH, HEIGHT, 18.0, &entries)
        .data("dictionary", dictionary)
        .data("set", set.label())
        .data("panel", panel.label())
        .describe(&format!(
            "Density over training, {}, {}",
            set.label(),
            panel.label()
        ));
    let x = tokens_axis(&chart, h);
    let y = chart.y_linear(axis.floor - 0.15, axis.top);
    axis.draw(&mut chart, &y, "firing density in the interval (log scale)");
    chart.x_axis(&x, "training tokens", TickFormat::Si, 6);
    chart.h_guide(y.map(axis.resolution), "1 firing per interval", "#999");
    for t in &lines {
        let colour = group_colour(t.group);
        let at = |p: &crate::death::TrajectoryPoint, d: f64| {
            (x.map(p.tokens as f64), y.map(axis.value(d)))
        };
        let upper: Vec<(f64, f64)> = t.points.iter().map(|p| at(p, p.q75)).collect();
        let lower: Vec<(f64, f64)> = t.points.iter().rev().map(|p| at(p, p.q25)).collect();
        let band: Vec<String> = upper
            .iter()
            .chain(&lower)
            .enumerate()
            .map(|(i, (a, b))| format!("{}{},{}", if i == 0 { 'M' } else { 'L' }, px(*a), px(*b)))
            .collect();
        chart.raw(&format!(
            r#"<path class="band" d="{}Z" fill="{colour}" fill-opacity="0.1" stroke="none"/>"#,
            band.join("")
        ));
        let mean: Vec<(f64, f64)> = t.points.iter().map(|p| at(p, p.mean)).collect();
        chart.raw(&format!(
            r#"<path class="mean" d="{}" fill="none" stroke="{colour}" stroke-width="1.2" stroke-dasharray="3 2"/>"#,
            mean.iter()
                .enumerate()
                .map(|(i, (a, b))| format!("{}{},{}", if i == 0 { 'M' } else { 'L' }, px(*a), px(*b)))
                .collect::<String>()
        ));
        let median: Vec<(f64, f64)> = t.points.iter().map(|p| at(p, p.median)).collect();
        let tip = format!(
            "{}: {} latents (their group at the end)",
            t.group.label(),
            format::count(t.latents as u64)
        );
        chart.line(&median, &colour, Some(&tip));
        if median.len() <= DOTS_UP_TO {
            for (p, &(cx, cy)) in t.points.iter().zip(&median) {
                let tip = format!(
                    "{} at {} tokens: median {}, quartiles {} to {}, mean {}",
                    t.group.label(),
                    format::si(p.tokens as f64),
                    format::number(p.median),
                    format::number(p.q25),
                    format::number(p.q75),
                    format::number(p.mean)
                );
                chart.circle(cx, cy, 2.2, &colour, Some(&tip));
            }
        }
    }
    let window = window_tokens(h);
    let interval = h.interval_tokens.iter().copied().max().unwrap_or(0);
    let mut caption = format!(
        "Latents of the {} whose density over the last {DEAD_WINDOW_SNAPSHOTS} snapshots ({} \
         tokens) puts them {}, by group ({}); the legend gives each group's size. Solid: the group's median firing density per interval between \
         snapshots (firings ÷ the interval's {} tokens), at the interval's end; band: 25th to \
         75th percentile; dotted: the group's mean (its firings ÷ its latents × tokens). No \
         firing counts as 0, drawn at the bottom; the grey dashed line is one firing per \
         interval, the least one latent can show.",
        set.label(),
        format::count(window),
        panel.label(),
        match panel {
            Panel::DeadOrRare => "\"never fired\" in any interval, \"died\": fired before but \
                not in that window, or the decade of that density",
            Panel::Dense => "the decade of that density",
        },
        format::count(interval)
    );
    if let Some(joined) = h
        .trajectory_intervals()
        .iter()
        .find(|r| r.start() != r.end())
    {
        caption.push_str(&format!(
            " The short interval ending at {} tokens is joined to the one before.",
            format::si(h.tokens[*joined.end()] as f64)
        ));
    }
    caption.push_str(match set {
        LatentSet::Control => " The control set is never resampled: its latents die undisturbed.",
        LatentSet::Others => {
            " These latents may have been resampled (re-initialised) on the \
             way, so a line can mix a latent's lives."
        }
    });
    let latents: usize = lines.iter().map(|t| t.latents).sum();
    Some(Figure {
        title: format!(
            "Density over training: {}, {} ({} latents)",
            set.label(),
            panel.label(),
            format::count(latents as u64)
        ),
        svg: chart.finish(),
        caption,
    })
}

/// Tokens in the window of the last snapshots that judges death.
fn window_tokens(h: &History) -> u64 {
    match h.snapshots() {
        0 => 0,
        n => h.window(n - 1).map(|s| h.interval_tokens[s]).sum(),
    }
}

/// The axes the b_enc views share, so that the snapshots compare at a glance.
#[derive(Clone, Copy, Debug)]
pub struct ViewAxes {
    /// log10 density.
    pub x: (f64, f64),
    pub b_enc: (f64, f64),
}

impl ViewAxes {
    pub fn new(h: &History) -> Self {
        let mut b: Vec<f64> = h
            .views
            .iter()
            .flat_map(|v| v.b_enc.iter().map(|&x| x as f64))
            .filter(|x| x.is_finite())
            .collect();
        b.sort_by(f64::total_cmp);
        let b_enc = match b.len() {
            0 => (0.0, 1.0),
            n => {
                let at = |q: f64| b[((n - 1) as f64 * q).round() as usize];
                let (lo, hi) = (at(0.005), at(0.995));
                let pad = ((hi - lo) * 0.05).max(1e-6);
                nice_extent(lo - pad, hi + pad, 5)
            }
        };
        // The smallest density a window can show, rounded down to a decade.
        let shortest = h
            .views
            .iter()
            .map(|v| {
                h.window(v.snapshot)
                    .map(|s| h.interval_tokens[s])
                    .sum::<u64>()
            })
            .filter(|&t| t > 0)
            .max()
            .unwrap_or(1);
        ViewAxes {
            x: (-(shortest as f64).log10().ceil(), 0.0),
            b_enc,
        }
    }
}

/// b_enc against density at one view snapshot, coloured by D/E projection; the control set
/// outlined.
pub fn view(h: &History, dictionary: &str, v: &View, axes: ViewAxes) -> Figure {
    let density = h.window_density(v.snapshot);
    let colours = ColourScale {
        lo: DE_RANGE.0,
        hi: DE_RANGE.1,
    };
    // Narrow enough for the three views to sit in one row of a 1300 px window.
    let mut chart = Chart::new("death-view", 380.0, 300.0)
        .with_margin(Margin {
            left: 58.0,
            right: 58.0,
            top: 26.0,
            bottom: 44.0,
        })
        .data("dictionary", dictionary)
        .data("snapshot", &h.steps[v.snapshot].to_string())
        .describe(&format!(
            "b_enc against density at step {}",
            h.steps[v.snapshot]
        ));
    let band_x = chart.left() + APART_X;
    let x = Scale::linear(axes.x.0, axes.x.1, chart.left() + APART_BAND, chart.right());
    let y = chart.y_linear(axes.b_enc.0, axes.b_enc.1);
    chart.y_axis(&y, "b_enc", TickFormat::Plain, 5);
    chart.x_axis(
        &x,
        "firing density over the window (log scale)",
        TickFormat::Exponent,
        6,
    );
    chart.x_tick(band_x + APART_WIDTH / 2.0, "dead");
    let have = v.b_enc.len() == h.latents && v.de_projection.len() == h.latents;
    if !have {
        chart.note("no b_enc or D/E values at this snapshot");
    }
    let stride = stride_for(h.latents, MAX_POINTS);
    let (mut shown, mut clipped, mut outside_colours) = (0usize, 0usize, 0usize);
    let mut de_extent = (f64::INFINITY, f64::NEG_INFINITY);
    // The others first, then the control set on top so that its outlines stay visible.
    for set in [LatentSet::Others, LatentSet::Control] {
        let control = set == LatentSet::Control;
        for i in h.members(set).filter(|i| i % stride == 0 && have) {
            let (b, de, d) = (v.b_enc[i] as f64, v.de_projection[i] as f64, density[i]);
            if !(b.is_finite() && de.is_finite() && d.is_finite()) {
                continue;
            }
            let cx = match d > 0.0 {
                true => x.map_clamped(d.log10()),
                false => band_x + 2.0 + jitter(i) * (APART_WIDTH - 4.0),
            };
            clipped += usize::from(!y.contains(b));
            outside_colours += usize::from(!(DE_RANGE.0..=DE_RANGE.1).contains(&de));
            de_extent = (de_extent.0.min(de), de_extent.1.max(de));
            let tip = format!(
                "latent {i}{}: density {}, b_enc {}, D/E {}",
                if control { " (control)" } else { "" },
                format::number(d),
                format::number(b),
                format::number(de)
            );
            let outline = match control {
                true => r##" r="2.4" stroke="#000" stroke-width="0.8""##,
                false => r#" r="1.8" fill-opacity="0.75""#,
            };
            chart.raw(&format!(
                r#"<circle class="mark" cx="{}" cy="{}"{outline} fill="{}" data-tip="{}"/>"#,
                px(cx),
                px(y.map_clamped(b)),
                colours.colour(de),
                escape(&tip)
            ));
            shown += 1;
        }
    }
    let bar_x = chart.right() + 14.0;
    colour_bar(&mut chart, &colours, bar_x, "D/E");

    let step = h.steps[v.snapshot];
    let tokens = h.tokens[v.snapshot];
    let window: u64 = h.window(v.snapshot).map(|s| h.interval_tokens[s]).sum();
    let mut caption = per_latent_caption(stride, shown, h.latents);
    caption.push_str(&format!(
        ". x: its firing density over the {} tokens up to this snapshot (dead band at the left: \
         no firing there). y: b_enc. Colour: D/E projection in METRICS.md's units (1: the \
         latent writes back what it reads), clamped to [{}, {}]",
        format::count(window),
        format::number(DE_RANGE.0),
        format::number(DE_RANGE.1),
    ));
    if outside_colours > 0 {
        caption.push_str(&format!(
            " ({} drawn points lie beyond, from {} to {}, and take the end colours)",
            format::count(outside_colours as u64),
            format::number(de_extent.0),
            format::number(de_extent.1)
        ));
    }
    caption.push_str(". Black outline: the control set (never resampled). All views share axes.");
    if clipped > 0 {
        caption.push_str(&format!(
            " {} drawn points have b_enc beyond the y range and sit on its edge.",
            format::count(clipped as u64)
        ));
    }
    if v.snapshot + 1 == h.snapshots() {
        caption.insert_str(0, "The last snapshot. ");
    }
    Figure {
        title: format!(
            "b_enc vs density at step {} ({} tokens)",
            format::count(step),
            format::si(tokens as f64)
        ),
        svg: chart.finish(),
        caption,
    }
}

/// When the latents dead at the end last fired: each set's share of the latents that died
/// (fired, then stopped) per interval, in bins of whole snapshots, side by side.
pub fn time_to_death(h: &History, dictionary: &str) -> Figure {
    let hist: Vec<_> = [LatentSet::Control, LatentSet::Others]
        .into_iter()
        .filter(|&s| h.members(s).next().is_some())
        .map(|s| (s, h.time_to_death(s, MAX_BINS)))
        .collect();
    let entries: Vec<(String, String)> = hist
        .iter()
        .map(|(s, t)| {
            (
                set_colour(*s).to_string(),
                format!(
                    "{} · {} died ({} never fired)",
                    s.label(),
                    format::count(t.died() as u64),
                    format::count(t.never as u64)
                ),
            )
        })
        .collect();
    let mut chart = legend_chart("death-time", WIDTH, HEIGHT, 18.0, &entries)
        .data("dictionary", dictionary)
        .describe(&format!(
            "When the latents of {dictionary} that died last fired"
        ));
    let share = |n: usize, total: usize| n as f64 / total.max(1) as f64;
    let max = hist
        .iter()
        .flat_map(|(_, t)| t.bins.iter().map(|b| share(b.latents, t.died())))
        .fold(0.0f64, f64::max);
    let (_, y_hi) = nice_extent(0.0, max.max(0.01), 4);
    let y = chart.y_linear(0.0, y_hi);
    let x = tokens_axis(&chart, h);
    chart.y_axis(
        &y,
        "share of the set's latents that died",
        TickFormat::Percent,
        4,
    );
    chart.x_axis(
        &x,
        "training tokens (the interval of the last firing)",
        TickFormat::Si,
        6,
    );
    if hist.iter().all(|(_, t)| t.died() == 0) {
        chart.note("no latent fired and then died");
    }
    let parts = hist.len().max(1) as f64;
    for (k, (set, t)) in hist.iter().enumerate() {
        let colour = set_colour(*set);
        for b in &t.bins {
            let (x0, x1) = (x.map(b.from_tokens as f64), x.map(b.to_tokens as f64));
            let inset = if x1 - x0 > 4.0 { 0.5 } else { 0.0 };
            let w = (x1 - x0 - 2.0 * inset) / parts;
            let s = share(b.latents, t.died());
            let tip = format!(
                "{}: {} latents ({}) last fired between {} and {} tokens",
                set.label(),
                format::count(b.latents as u64),
                format::percent(s),
                format::si(b.from_tokens as f64),
                format::si(b.to_tokens as f64)
            );
            let (left, top) = (x0 + inset + k as f64 * w, y.map(s));
            chart.rect(left, top, w.max(1.0), y.map(0.0) - top, colour, Some(&tip));
        }
    }
    let per_bin = h.snapshots().div_ceil(MAX_BINS).max(1);
    let mut caption = format!(
        "Latents that fired at some point and are dead at the end (no firing in the last \
         {DEAD_WINDOW_SNAPSHOTS} snapshots, {} tokens), by the interval in which they last \
         fired",
        format::count(window_tokens(h))
    );
    if per_bin > 1 {
        caption.push_str(&format!(" ({per_bin} intervals per bar)"));
    }
    caption.push_str(
        ", as a share of each set's such latents so that the small control set compares with \
         the rest; hover for counts. Latents that never fired in any interval are only counted \
         in the legend. The control set is never resampled; another latent's last firing may \
         follow its re-initialisation. The last window's bars are empty by definition.",
    );
    Figure {
        title: "Time to death".to_string(),
        svg: chart.finish(),
        caption,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::death::tests::{synthetic, LATENTS};

    fn history() -> History {
        History::from_snapshots(synthetic(10, &LATENTS)).unwrap()
    }

    #[test]
    fn trajectories_draw_a_line_per_group_and_zero_at_the_floor() {
        let h = history();
        let axis = DensityAxis::new(&h);
        assert_eq!(axis.resolution, -3.0);
        assert!(axis.floor < -3.0 && axis.top == -1.0);
        let f = trajectories(&h, "d", LatentSet::Others, Panel::Dense, axis).unwrap();
        // Two groups (≥ 10⁻² and 10⁻⁴–10⁻³): two lines, dots on their ten points.
        assert_eq!(f.svg.matches("mark line").count(), 2);
        assert_eq!(f.svg.matches("<circle").count(), 20);
        assert!(f.svg.contains(">0<") && f.svg.contains("10⁻²"));
        assert!(f.title.contains("(2 latents)"));
        // No other latent is dead or rare; the control set's three are.
        assert!(trajectories(&h, "d", LatentSet::Others, Panel::DeadOrRare, axis).is_none());
        let f = trajectories(&h, "d", LatentSet::Control, Panel::DeadOrRare, axis).unwrap();
        assert!(f.svg.contains("never fired · 1") && f.svg.contains("died · 2"));
    }

    #[test]
    fn views_mark_the_control_set_and_clamp_colours() {
        let h = history();
        let axes = ViewAxes::new(&h);
        let last = h.last_view().unwrap();
        let f = view(&h, "d", last, axes);
        assert_eq!(f.svg.matches("<circle class=\"mark\"").count(), 5);
        assert_eq!(f.svg.matches("stroke=\"#000\"").count(), 3);
        // D/E = i / 10 lies inside the range for all five.
        assert!(!f.caption.contains("end colours)"));
        assert!(f.caption.starts_with("The last snapshot."), "{}", f.caption);
    }

    #[test]
    fn time_to_death_bars_follow_the_counts() {
        let f = time_to_death(&history(), "d");
        // Control: bins 3 and 6 (latent 2 never fired); the others have no dead latent.
        assert_eq!(f.svg.matches("class=\"mark\"").count(), 2);
        assert!(f.svg.contains("control set · 2 died (1 never fired)"));
        assert!(f.svg.contains("other latents · 0 died (0 never fired)"));
    }
}
