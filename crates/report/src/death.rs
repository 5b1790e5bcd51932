//! Feature death over training, from one dictionary's density snapshots
//! (`snapshot_files`): per snapshot, each latent's firing count over the interval since the
//! previous one, and at a few chosen snapshots (`view_snapshots`) its `b_enc` and D/E
//! projection. The run page draws these numbers (`plots::death`).
//!
//! A latent counts as **dead at the end** when it did not fire in the last
//! [`DEAD_WINDOW_SNAPSHOTS`] snapshots: it either **never fired** in any interval (dead from
//! its initialisation, so never trained) or **died** on the way. The others are grouped by
//! their density over that same window ([`Group`]). The **control set** is never resampled, so its latents die (or not)
//! undisturbed; the other latents may have been re-initialised on the way.

use crate::snapshot_files::{self, SnapshotError, SnapshotFile};
use std::path::Path;

/// Snapshots in the window that judges density at a snapshot (and death at the end).
pub const DEAD_WINDOW_SNAPSHOTS: usize = 3;

/// Density groups at a snapshot: no firing up to it, no firing in its window (but earlier),
/// then decades of firing density over the window.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Group {
    Never,
    Died,
    Below1e5,
    From1e5,
    From1e4,
    From1e3,
    From1e2,
}

impl Group {
    pub const ALL: [Group; 7] = [
        Group::Never,
        Group::Died,
        Group::Below1e5,
        Group::From1e5,
        Group::From1e4,
        Group::From1e3,
        Group::From1e2,
    ];

    /// The group of a latent that has fired before, by its density over the window (a
    /// fraction of tokens; 0 is dead).
    pub fn of(density: f64) -> Group {
        match density {
            d if d.is_nan() || d <= 0.0 => Group::Died,
            d if d < 1e-5 => Group::Below1e5,
            d if d < 1e-4 => Group::From1e5,
            d if d < 1e-3 => Group::From1e4,
            d if d < 1e-2 => Group::From1e3,
            _ => Group::From1e2,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Group::Never => "never fired",
            Group::Died => "died",
            Group::Below1e5 => "< 10⁻⁵",
            Group::From1e5 => "10⁻⁵–10⁻⁴",
            Group::From1e4 => "10⁻⁴–10⁻³",
            Group::From1e3 => "10⁻³–10⁻²",
            Group::From1e2 => "≥ 10⁻²",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }

    pub fn is_dead(self) -> bool {
        matches!(self, Group::Never | Group::Died)
    }
}

/// Which latents a statistic is over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LatentSet {
    /// Latents never resampled.
    Control,
    /// All the others.
    Others,
}

impl LatentSet {
    pub fn label(self) -> &'static str {
        match self {
            LatentSet::Control => "control set",
            LatentSet::Others => "other latents",
        }
    }

    fn holds(self, control: bool) -> bool {
        control == (self == LatentSet::Control)
    }
}

/// `b_enc` and D/E projection of every latent at one snapshot.
#[derive(Clone, Debug)]
pub struct View {
    /// Index into the snapshots.
    pub snapshot: usize,
    pub b_enc: Vec<f32>,
    pub de_projection: Vec<f32>,
}

/// One dictionary's snapshots, reduced to what the death plots need.
#[derive(Clone, Debug)]
pub struct History {
    pub latents: usize,
    pub steps: Vec<u64>,
    /// Training tokens at each snapshot (the end of its interval).
    pub tokens: Vec<u64>,
    /// Tokens each snapshot's counts were counted over.
    pub interval_tokens: Vec<u64>,
    /// `counts[snapshot][latent]`: firings in that interval.
    pub counts: Vec<Vec<u32>>,
    /// The control set (as the last snapshot gives it).
    pub control: Vec<bool>,
    /// At `view_snapshots(n)`, in order; the last snapshot is always one.
    pub views: Vec<View>,
}

/// The snapshots worth a look at b_enc and D/E: a quarter through, half way, and the last.
pub fn view_snapshots(n: usize) -> Vec<usize> {
    let mut at: Vec<usize> = [0.25, 0.5, 1.0]
        .iter()
        .filter(|_| n > 0)
        .map(|q| ((n as f64 * q).ceil() as usize).clamp(1, n) - 1)
        .collect();
    at.dedup();
    at
}

impl History {
    /// Reads the snapshots of dictionary `name` one file at a time, keeping b_enc and D/E
    /// only at the view snapshots (a long run's snapshots would not fit otherwise).
    pub fn read(run_dir: &Path, name: &str) -> Result<History, SnapshotError> {
        let paths = snapshot_files::paths(run_dir, name)?;
        let mut history = History::empty(paths.len());
        for path in &paths {
            let file = snapshot_files::read(path)?;
            history
                .push(file)
                .map_err(|reason| SnapshotError::Invalid {
                    path: path.clone(),
                    reason,
                })?;
        }
        Ok(history)
    }

    /// From snapshots in step order. Err names what does not fit (latent counts that differ
    /// between snapshots, or no snapshot at all).
    pub fn from_snapshots(files: Vec<SnapshotFile>) -> Result<History, String> {
        let mut history = History::empty(files.len());
        for file in files {
            history.push(file)?;
        }
        if history.tokens.is_empty() {
            return Err("no snapshots".into());
        }
        Ok(history)
    }

    fn empty(snapshots: usize) -> History {
        History {
            latents: 0,
            steps: Vec::with_capacity(snapshots),
            tokens: Vec::with_capacity(snapshots),
            interval_tokens: Vec::with_capacity(snapshots),
            counts: Vec::with_capacity(snapshots),
            control: Vec::new(),
            views: view_snapshots(snapshots)
                .into_iter()
                .map(|snapshot| View {
                    snapshot,
                    b_enc: Vec::new(),
                    de_projection: Vec::new(),
                })
                .collect(),
        }
    }

    fn push(&mut self, file: SnapshotFile) -> Result<(), String> {
        let index = self.tokens.len();
        if index == 0 {
            self.latents = file.counts.len();
        } else if file.counts.len() != self.latents {
            return Err(format!(
                "{} latents where the earlier snapshots have {}",
                file.counts.len(),
                self.latents
            ));
        }
        self.steps.push(file.step);
        self.tokens.push(file.tokens);
        self.interval_tokens.push(file.interval_tokens);
        self.counts.push(
            file.counts
                .iter()
                .map(|&c| c.clamp(0, u32::MAX as i64) as u32)
                .collect(),
        );
        self.control = file.control;
        if let Some(view) = self.views.iter_mut().find(|v| v.snapshot == index) {
            view.b_enc = file.b_enc;
            view.de_projection = file.de_projection;
        }
        Ok(())
    }

    pub fn snapshots(&self) -> usize {
        self.tokens.len()
    }

    /// Latents of the control set.
    pub fn control_size(&self) -> usize {
        self.control.iter().filter(|&&c| c).count()
    }

    /// The latents of `set`.
    pub fn members(&self, set: LatentSet) -> impl Iterator<Item = usize> + '_ {
        (0..self.latents).filter(move |&i| set.holds(self.control.get(i) == Some(&true)))
    }

    /// The snapshots of the window ending at `end` (fewer at the start of the run).
    pub fn window(&self, end: usize) -> std::ops::RangeInclusive<usize> {
        (end + 1).saturating_sub(DEAD_WINDOW_SNAPSHOTS)..=end
    }

    /// Each latent's firing density over the window ending at snapshot `end`: firings over
    /// tokens (NaN when the window counted no tokens).
    pub fn window_density(&self, end: usize) -> Vec<f64> {
        let window = self.window(end);
        let tokens: u64 = self.interval_tokens[window.clone()].iter().sum();
        let mut fired = vec![0u64; self.latents];
        for s in window {
            for (f, &c) in fired.iter_mut().zip(&self.counts[s]) {
                *f += c as u64;
            }
        }
        fired
            .into_iter()
            .map(|f| match tokens {
                0 => f64::NAN,
                t => f as f64 / t as f64,
            })
            .collect()
    }

    /// Each latent's group at the end of the run.
    pub fn final_groups(&self) -> Vec<Group> {
        match self.snapshots() {
            0 => Vec::new(),
            n => self.groups_at(n - 1),
        }
    }

    /// Each latent's group at snapshot `end`: never fired up to it, else by its density over
    /// the window ending there.
    pub fn groups_at(&self, end: usize) -> Vec<Group> {
        let mut fired = vec![false; self.latents];
        for counts in &self.counts[..=end] {
            for (f, &c) in fired.iter_mut().zip(counts) {
                *f |= c > 0;
            }
        }
        self.window_density(end)
            .into_iter()
            .zip(fired)
            .map(|(d, fired)| match fired {
                true => Group::of(d),
                false => Group::Never,
            })
            .collect()
    }

    /// The smallest density one interval can show (one firing in the longest interval).
    pub fn resolution(&self) -> f64 {
        1.0 / self
            .interval_tokens
            .iter()
            .copied()
            .max()
            .unwrap_or(1)
            .max(1) as f64
    }

    /// The intervals the trajectories are drawn over: one per snapshot that counted tokens,
    /// except that an interval shorter than half the longest (the run's last, cut short)
    /// joins the one before, so that its coarser resolution does not read as a drop.
    pub fn trajectory_intervals(&self) -> Vec<std::ops::RangeInclusive<usize>> {
        let longest = self.interval_tokens.iter().copied().max().unwrap_or(0);
        let mut out: Vec<std::ops::RangeInclusive<usize>> = Vec::new();
        for s in (0..self.snapshots()).filter(|&s| self.interval_tokens[s] > 0) {
            match out.last_mut() {
                Some(last) if self.interval_tokens[s] * 2 < longest => *last = *last.start()..=s,
                _ => out.push(s..=s),
            }
        }
        out
    }

    /// For each final group of `set` with members: its size and, per trajectory interval,
    /// the 25th, 50th and 75th percentiles of the members' firing density in it (0 where
    /// they did not fire) and their mean density (all their firings over members × tokens).
    pub fn trajectories(&self, set: LatentSet) -> Vec<Trajectory> {
        let groups = self.final_groups();
        let intervals = self.trajectory_intervals();
        Group::ALL
            .iter()
            .filter_map(|&group| {
                let members: Vec<usize> =
                    self.members(set).filter(|&i| groups[i] == group).collect();
                if members.is_empty() {
                    return None;
                }
                let points = intervals
                    .iter()
                    .map(|range| {
                        let t: u64 = self.interval_tokens[range.clone()].iter().sum();
                        let mut d: Vec<f64> = members
                            .iter()
                            .map(|&i| {
                                let fired: u64 =
                                    range.clone().map(|s| self.counts[s][i] as u64).sum();
                                fired as f64 / t as f64
                            })
                            .collect();
                        let mean = d.iter().sum::<f64>() / d.len() as f64;
                        d.sort_by(f64::total_cmp);
                        TrajectoryPoint {
                            tokens: self.tokens[*range.end()],
                            q25: quantile(&d, 0.25),
                            median: quantile(&d, 0.5),
                            q75: quantile(&d, 0.75),
                            mean,
                        }
                    })
                    .collect();
                Some(Trajectory {
                    group,
                    latents: members.len(),
                    points,
                })
            })
            .collect()
    }

    /// The latents of `set` dead at the end, each with the last snapshot whose interval
    /// saw it fire (None: it never fired in any snapshot).
    pub fn deaths(&self, set: LatentSet) -> Vec<Death> {
        let groups = self.final_groups();
        self.members(set)
            .filter(|&i| groups[i].is_dead())
            .map(|latent| Death {
                latent,
                last_fired: (0..self.snapshots())
                    .rev()
                    .find(|&s| self.counts[s][latent] > 0),
            })
            .collect()
    }

    /// The time-to-death histogram of `set`: its dead latents counted by the interval in
    /// which they last fired, in bins of whole snapshots (at most `max_bins` bins).
    pub fn time_to_death(&self, set: LatentSet, max_bins: usize) -> TimeToDeath {
        let n = self.snapshots();
        let per_bin = n.div_ceil(max_bins.max(1)).max(1);
        let mut bins: Vec<DeathBin> = (0..n)
            .step_by(per_bin)
            .map(|first| {
                let last = (first + per_bin).min(n) - 1;
                DeathBin {
                    from_tokens: self.tokens[first].saturating_sub(self.interval_tokens[first]),
                    to_tokens: self.tokens[last],
                    latents: 0,
                }
            })
            .collect();
        let mut never = 0;
        for d in self.deaths(set) {
            match d.last_fired {
                Some(s) => bins[s / per_bin].latents += 1,
                None => never += 1,
            }
        }
        TimeToDeath { bins, never }
    }

    /// The view at the last snapshot.
    pub fn last_view(&self) -> Option<&View> {
        self.views
            .last()
            .filter(|v| v.snapshot + 1 == self.snapshots() && v.b_enc.len() == self.latents)
    }

    /// The latents of `set` at the end by fate (never fired, died, alive), with the
    /// quartiles of their b_enc and D/E projection at the last snapshot.
    pub fn end_summary(&self, set: LatentSet) -> EndSummary {
        let groups = self.final_groups();
        let view = self.last_view();
        let fate = |g: Group| match g {
            Group::Never => Fate::Never,
            Group::Died => Fate::Died,
            _ => Fate::Alive,
        };
        let quartiles = |f: Fate, values: Option<&Vec<f32>>| {
            let mut v: Vec<f64> = self
                .members(set)
                .filter(|&i| fate(groups[i]) == f)
                .filter_map(|i| values.and_then(|v| v.get(i)).map(|&x| x as f64))
                .filter(|x| x.is_finite())
                .collect();
            v.sort_by(f64::total_cmp);
            Quartiles {
                q25: quantile(&v, 0.25),
                median: quantile(&v, 0.5),
                q75: quantile(&v, 0.75),
            }
        };
        let of_fate = |f: Fate| FateSummary {
            latents: self.members(set).filter(|&i| fate(groups[i]) == f).count(),
            b_enc: quartiles(f, view.map(|v| &v.b_enc)),
            de_projection: quartiles(f, view.map(|v| &v.de_projection)),
        };
        EndSummary {
            latents: self.members(set).count(),
            never: of_fate(Fate::Never),
            died: of_fate(Fate::Died),
            alive: of_fate(Fate::Alive),
        }
    }

    /// How the latents of `set` moved between groups from snapshot `from` to the end:
    /// `moves[a][b]` latents were in group a at `from` and are in group b at the end.
    pub fn group_moves(&self, set: LatentSet, from: usize) -> [[usize; 7]; 7] {
        let (before, after) = (self.groups_at(from), self.final_groups());
        let mut moves = [[0; 7]; 7];
        for i in self.members(set) {
            moves[before[i].index()][after[i].index()] += 1;
        }
        moves
    }
}

/// The `q` quantile of sorted values, interpolated between neighbours; NaN for none.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let at = (sorted.len() - 1) as f64 * q;
    let (lo, hi) = (at.floor() as usize, at.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (at - lo as f64)
}

#[derive(Clone, Debug)]
pub struct Trajectory {
    pub group: Group,
    pub latents: usize,
    pub points: Vec<TrajectoryPoint>,
}

/// Densities (fractions of the interval's tokens) of a group's latents over one interval,
/// at the interval's end.
#[derive(Clone, Debug)]
pub struct TrajectoryPoint {
    pub tokens: u64,
    pub q25: f64,
    pub median: f64,
    pub q75: f64,
    pub mean: f64,
}

#[derive(Clone, Debug)]
pub struct Death {
    pub latent: usize,
    pub last_fired: Option<usize>,
}

#[derive(Clone, Debug)]
pub struct DeathBin {
    /// Tokens at the start of the bin's first interval and the end of its last.
    pub from_tokens: u64,
    pub to_tokens: u64,
    pub latents: usize,
}

#[derive(Clone, Debug)]
pub struct TimeToDeath {
    pub bins: Vec<DeathBin>,
    /// Dead latents that never fired in any snapshot.
    pub never: usize,
}

impl TimeToDeath {
    /// Dead latents that fired at some point.
    pub fn died(&self) -> usize {
        self.bins.iter().map(|b| b.latents).sum()
    }

    /// All dead latents.
    pub fn total(&self) -> usize {
        self.never + self.died()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fate {
    Never,
    Died,
    Alive,
}

#[derive(Clone, Debug)]
pub struct EndSummary {
    pub latents: usize,
    pub never: FateSummary,
    pub died: FateSummary,
    pub alive: FateSummary,
}

/// Latents of one fate and their values at the last snapshot.
#[derive(Clone, Debug)]
pub struct FateSummary {
    pub latents: usize,
    pub b_enc: Quartiles,
    pub de_projection: Quartiles,
}

/// 25th, 50th and 75th percentiles (NaN over no values).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Quartiles {
    pub q25: f64,
    pub median: f64,
    pub q75: f64,
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Snapshots of `latents.len()` latents over `n` intervals of 1000 tokens: latent i
    /// fires `latents[i](s)` times in interval s; latents with an even index are control.
    pub(crate) fn synthetic(n: usize, latents: &[fn(usize) -> i64]) -> Vec<SnapshotFile> {
        (0..n)
            .map(|s| SnapshotFile {
                step: (s as u64 + 1) * 10,
                tokens: (s as u64 + 1) * 1000,
                interval_tokens: 1000,
                counts: latents.iter().map(|f| f(s)).collect(),
                b_enc: (0..latents.len()).map(|i| -(i as f32) - s as f32).collect(),
                de_projection: (0..latents.len()).map(|i| i as f32 / 10.0).collect(),
                de_projection_raw: vec![0.0; latents.len()],
                control: (0..latents.len()).map(|i| i % 2 == 0).collect(),
            })
            .collect()
    }

    pub(crate) const LATENTS: [fn(usize) -> i64; 5] = [
        |s| if s < 4 { 3 } else { 0 }, // control, stops firing after interval 3
        |_| 50,                        // fires throughout (5e-2)
        |_| 0,                         // control, never fires
        |s| i64::from(s % 2 == 0),     // rare: about 5e-4
        |s| if s < 7 { 2 } else { 0 }, // control, stops after interval 6
    ];

    #[test]
    fn a_latent_that_stopped_firing_is_dead_and_the_rest_are_grouped_by_density() {
        let h = History::from_snapshots(synthetic(10, &LATENTS)).unwrap();
        assert_eq!(
            h.final_groups(),
            vec![
                Group::Died,
                Group::From1e2,
                Group::Never,
                Group::From1e4,
                Group::Died
            ]
        );
        // Half way, latent 4 was still firing and latent 2 had never fired.
        assert_eq!(
            h.groups_at(4)[2..],
            [Group::Never, Group::From1e4, Group::From1e3]
        );
        // Latent 4 last fired in interval 6, three snapshots before the end: still dead.
        let deaths = h.deaths(LatentSet::Control);
        let last: Vec<(usize, Option<usize>)> =
            deaths.iter().map(|d| (d.latent, d.last_fired)).collect();
        assert_eq!(last, vec![(0, Some(3)), (2, None), (4, Some(6))]);
        assert!(h.deaths(LatentSet::Others).is_empty());
        // The control set's groups: latent 2 never fired; latents 0 and 4 died. Their median
        // lies between their densities (3 and 2 of 1000 tokens) until latent 0 stops, then
        // between 0 and 2 until latent 4 stops.
        let t = h.trajectories(LatentSet::Control);
        let groups: Vec<(Group, usize)> = t.iter().map(|t| (t.group, t.latents)).collect();
        assert_eq!(groups, vec![(Group::Never, 1), (Group::Died, 2)]);
        let medians: Vec<f64> = t[1].points.iter().map(|p| p.median).collect();
        let want = [
            2.5e-3, 2.5e-3, 2.5e-3, 2.5e-3, 1e-3, 1e-3, 1e-3, 0.0, 0.0, 0.0,
        ];
        assert!(
            medians.iter().zip(want).all(|(m, w)| (m - w).abs() < 1e-12),
            "{medians:?}"
        );
        assert!((t[1].points[0].q75 - 2.75e-3).abs() < 1e-12);
        assert!(t[0].points.iter().all(|p| p.q75 == 0.0));
    }

    #[test]
    fn the_histogram_counts_every_dead_latent_once() {
        let h = History::from_snapshots(synthetic(10, &LATENTS)).unwrap();
        for bins in [1, 3, 4, 10, 50] {
            let ttd = h.time_to_death(LatentSet::Control, bins);
            assert_eq!(ttd.total(), h.deaths(LatentSet::Control).len(), "{bins}");
            assert_eq!(ttd.never, 1);
            assert!(ttd.bins.len() <= bins);
            assert_eq!(ttd.bins.first().map(|b| b.from_tokens), Some(0));
            assert_eq!(ttd.bins.last().map(|b| b.to_tokens), Some(10_000));
        }
        let ttd = h.time_to_death(LatentSet::Control, 10);
        assert_eq!((ttd.bins[3].latents, ttd.bins[6].latents), (1, 1));
        assert_eq!(h.time_to_death(LatentSet::Others, 10).total(), 0);
    }

    #[test]
    fn only_the_view_snapshots_keep_weights_and_the_summary_uses_the_last() {
        assert_eq!(view_snapshots(10), vec![2, 4, 9]);
        assert_eq!(view_snapshots(2), vec![0, 1]);
        assert_eq!(view_snapshots(1), vec![0]);
        assert!(view_snapshots(0).is_empty());
        let h = History::from_snapshots(synthetic(10, &LATENTS)).unwrap();
        assert_eq!(h.views.len(), 3);
        assert!(h.views.iter().all(|v| v.b_enc.len() == 5));
        assert_eq!(h.last_view().map(|v| v.b_enc[1]), Some(-10.0));
        let s = h.end_summary(LatentSet::Control);
        assert_eq!(s.latents, 3);
        assert_eq!(
            (s.never.latents, s.died.latents, s.alive.latents),
            (1, 2, 0)
        );
        // b_enc at the last snapshot is -i - 9: latents 0 and 4 died, latent 2 never fired.
        assert_eq!((s.died.b_enc.median, s.never.b_enc.median), (-11.0, -11.0));
        assert_eq!((s.died.b_enc.q25, s.died.b_enc.q75), (-12.0, -10.0));
        assert!(s.alive.b_enc.median.is_nan());
        assert!((s.died.de_projection.median - 0.2).abs() < 1e-6);
        let moves = h.group_moves(LatentSet::Control, 4);
        assert_eq!(moves[Group::From1e3.index()][Group::Died.index()], 2);
        assert_eq!(moves[Group::Never.index()][Group::Never.index()], 1);
    }

    #[test]
    fn a_short_last_interval_joins_the_one_before() {
        let mut files = synthetic(4, &LATENTS);
        let h = History::from_snapshots(files.clone()).unwrap();
        assert_eq!(h.trajectory_intervals(), vec![0..=0, 1..=1, 2..=2, 3..=3]);
        files[3].interval_tokens = 400;
        files[3].tokens = 3400;
        files[3].counts[1] = 30;
        let h = History::from_snapshots(files).unwrap();
        assert_eq!(h.trajectory_intervals(), vec![0..=0, 1..=1, 2..=3]);
        let dense = &h.trajectories(LatentSet::Others)[1];
        assert_eq!(dense.group, Group::From1e2);
        let last = dense.points.last().unwrap();
        // Latent 1: 50 + 30 firings over 1000 + 400 tokens.
        assert_eq!((last.tokens, last.median), (3400, 80.0 / 1400.0));
        assert_eq!(last.mean, last.median);
    }

    #[test]
    fn snapshots_of_different_widths_are_refused() {
        let mut files = synthetic(3, &LATENTS);
        files[2].counts.pop();
        assert!(History::from_snapshots(files)
            .unwrap_err()
            .contains("4 latents"));
        assert!(History::from_snapshots(Vec::new()).is_err());
    }
}
