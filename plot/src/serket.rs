//! `plot_serket`: the Serket tutorials' "Result" figures from a `gmvae serket` output folder.
//! The VAE's latent z of two rounds (first and last by default) through ONE PCA fitted on both,
//! so the panels are comparable: classes dispersed before the message exchange, gathered after;
//! coloured by true class, by the GMM's classes and (VAE+GMM+MLDA) by the MLDA's. And the
//! modules' scores per round from `summary.json`.
//!
//! Layout read (as `gmvae serket` writes it, src/serket/framework.rs): `<run>/module%03d_vae/
//! %03d/z_learn.txt` (N x latent), `<run>/module%03d_{gmm,mlda}/%03d/class_learn.txt` (one
//! class per line, already matched to the labels by Serket's greedy rule when labels were given),
//! `<run>/category.txt` (true labels) and `<run>/summary.json`.

use crate::curves::{panel, Curve};
use crate::latent::padded_range;
use crate::linalg::Projection;
use crate::style::{self, Marker};
use crate::{plot_err, render_png};
use anyhow::{bail, Context, Result};
use gmvae::serket::data::{read_labels, read_matrix, Matrix};
use plotters::prelude::*;
use std::path::{Path, PathBuf};

pub const SCATTER_SIZE: (u32, u32) = (1600, 760);
pub const ACCURACY_SIZE: (u32, u32) = (1300, 500);
pub const Z_FILE: &str = "z_learn.txt";
pub const CLASS_FILE: &str = "class_learn.txt";
pub const SUMMARY_FILE: &str = "summary.json";

/// The module folders and rounds of one `gmvae serket` output folder.
#[derive(Debug, Clone)]
pub struct SerketRun {
    pub dir: PathBuf,
    pub vae: PathBuf,
    pub gmm: Option<PathBuf>,
    pub mlda: Option<PathBuf>,
    /// Rounds whose `z_learn.txt` exists, ascending.
    pub rounds: Vec<usize>,
}

/// Three decimal digits: Serket's `%03d`.
fn three_digits(s: &str) -> Option<usize> {
    (s.len() == 3 && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

fn sorted_entries(dir: &Path) -> Result<Vec<String>> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read the folder {}", dir.display()))?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    Ok(names)
}

/// The first `module%03d_<kind>` folder of `dir`.
fn find_module(dir: &Path, kind: &str) -> Result<Option<PathBuf>> {
    let suffix = format!("_{kind}");
    Ok(sorted_entries(dir)?
        .into_iter()
        .find(|n| {
            n.strip_prefix("module")
                .and_then(|r| r.strip_suffix(&suffix))
                .and_then(three_digits)
                .is_some()
        })
        .map(|n| dir.join(n)))
}

/// `<module>/%03d/<file>`.
pub fn round_file(module: &Path, round: usize, file: &str) -> PathBuf {
    module.join(format!("{round:03}")).join(file)
}

impl SerketRun {
    /// Finds the modules and the rounds the VAE has written.
    pub fn open(dir: &Path) -> Result<Self> {
        if !dir.is_dir() {
            bail!(
                "{} is not a folder (expected the --out folder of `gmvae serket`)",
                dir.display()
            );
        }
        let vae = find_module(dir, "vae")?.with_context(|| {
            format!(
                "{} has no module%03d_vae folder: not a `gmvae serket` output folder",
                dir.display()
            )
        })?;
        let rounds: Vec<usize> = sorted_entries(&vae)?
            .iter()
            .filter_map(|n| three_digits(n))
            .filter(|&r| round_file(&vae, r, Z_FILE).is_file())
            .collect();
        if rounds.is_empty() {
            bail!(
                "{} has no rounds: expected folders 000, 001, ... each holding {Z_FILE} \
                 (has the run finished its first round?)",
                vae.display()
            );
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            gmm: find_module(dir, "gmm")?,
            mlda: find_module(dir, "mlda")?,
            vae,
            rounds,
        })
    }

    /// The rounds to compare: `chosen`, or the first and the last.
    pub fn pick_rounds(&self, chosen: Option<[usize; 2]>) -> Result<[usize; 2]> {
        let pair = chosen.unwrap_or([self.rounds[0], *self.rounds.last().unwrap()]);
        for r in pair {
            if !self.rounds.contains(&r) {
                bail!(
                    "round {r} is missing: {} does not exist (rounds present: {})",
                    round_file(&self.vae, r, Z_FILE).display(),
                    list(&self.rounds)
                );
            }
        }
        Ok(pair)
    }

    /// z of round `r` (N x latent).
    pub fn z(&self, r: usize) -> Result<Matrix> {
        read_matrix(&round_file(&self.vae, r, Z_FILE))
    }

    /// A module's classes of round `r`, checked to have `n` rows.
    pub fn classes(&self, module: &Path, r: usize, n: usize) -> Result<Vec<usize>> {
        let path = round_file(module, r, CLASS_FILE);
        if !path.is_file() {
            bail!(
                "{} does not exist (expected round {r}'s classes of {})",
                path.display(),
                module.display()
            );
        }
        let c = read_labels(&path)?;
        check_len(&path, c.len(), n, r)?;
        Ok(c)
    }
}

fn list(rounds: &[usize]) -> String {
    rounds
        .iter()
        .map(|r| r.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// `what` (a file) must have one row per point of round `r`'s z.
pub fn check_len(what: &Path, len: usize, n: usize, r: usize) -> Result<()> {
    if len != n {
        bail!(
            "{} has {len} rows, but {Z_FILE} of round {r} has {n}: expected one row per point",
            what.display()
        );
    }
    Ok(())
}

/// One PCA basis for both rounds: fitted on the union of their rows, so a point that did not
/// move between the rounds lands on the same spot in both panels.
pub fn shared_projection(a: &Matrix, b: &Matrix) -> Result<Projection> {
    if a.cols != b.cols {
        bail!(
            "the two rounds' z have {} and {} columns: expected the same latent size",
            a.cols,
            b.cols
        );
    }
    let rows: Vec<f32> = a.to_f32().into_iter().chain(b.to_f32()).collect();
    Projection::fit(&rows, a.cols)
}

/// Share of z's total variance (all dimensions) that lies within the true classes: 1 when the
/// classes' means coincide, 0 when every class is a single point. It falls as the classes
/// gather, which the 2-D picture can only hint at when two PCs explain little of z.
pub fn within_class_share(z: &Matrix, labels: &[usize]) -> f64 {
    let k = labels.iter().max().map_or(0, |&m| m + 1);
    let d = z.cols;
    let mut mean = vec![0.0; d];
    let mut class_sum = vec![0.0; k * d];
    let mut class_n = vec![0usize; k];
    for (i, &c) in labels.iter().enumerate().take(z.rows) {
        for (j, &v) in z.row(i).iter().enumerate() {
            mean[j] += v / z.rows as f64;
            class_sum[c * d + j] += v;
        }
        class_n[c] += 1;
    }
    let (mut total, mut within) = (0.0, 0.0);
    for (i, &c) in labels.iter().enumerate().take(z.rows) {
        for (j, &v) in z.row(i).iter().enumerate() {
            total += (v - mean[j]).powi(2);
            within += (v - class_sum[c * d + j] / class_n[c] as f64).powi(2);
        }
    }
    if total > 0.0 {
        within / total
    } else {
        f64::NAN
    }
}

/// Both rounds' z in the plane of their shared basis.
#[derive(Debug, Clone)]
pub struct BeforeAfter {
    pub rounds: [usize; 2],
    pub proj: Projection,
    /// Per round, one point per row of z (non-finite rows project to NaN and are not drawn).
    pub points: [Vec<(f64, f64)>; 2],
    /// The rounds' z themselves.
    pub z: [Matrix; 2],
}

impl BeforeAfter {
    pub fn from_z(rounds: [usize; 2], a: &Matrix, b: &Matrix) -> Result<Self> {
        if a.rows != b.rows {
            bail!(
                "{Z_FILE} has {} rows in round {} but {} in round {}: expected the same points",
                a.rows,
                rounds[0],
                b.rows,
                rounds[1]
            );
        }
        let proj = shared_projection(a, b)?;
        let project = |m: &Matrix| -> Vec<(f64, f64)> {
            m.to_f32()
                .chunks_exact(m.cols)
                .map(|r| proj.apply(r))
                .collect()
        };
        let points = [project(a), project(b)];
        Ok(Self {
            rounds,
            proj,
            points,
            z: [a.clone(), b.clone()],
        })
    }

    pub fn load(run: &SerketRun, rounds: [usize; 2]) -> Result<Self> {
        Self::from_z(rounds, &run.z(rounds[0])?, &run.z(rounds[1])?)
    }

    pub fn n(&self) -> usize {
        self.points[0].len()
    }
}

/// What colours the points of a scatter figure, per panel.
pub struct Colouring<'a> {
    /// Figure title's "coloured by ..." phrase.
    pub by: &'a str,
    /// Legend heading and entry prefix ("digit", "class").
    pub heading: &'a str,
    pub prefix: &'a str,
    pub classes: [&'a [usize]; 2],
    /// Appended to each panel's caption.
    pub notes: [String; 2],
}

/// The before/after scatter: two panels on the same axes, legend at the right.
pub fn render_scatter(
    ba: &BeforeAfter,
    c: &Colouring,
    run_name: &str,
    size: (u32, u32),
    out: &Path,
) -> Result<()> {
    if size.0 < 700 || size.1 < 400 {
        bail!(
            "a {}x{} canvas is too small for two panels and a legend: expected at least 700x400",
            size.0,
            size.1
        );
    }
    let finite = |p: &&(f64, f64)| p.0.is_finite() && p.1.is_finite();
    let all = || ba.points.iter().flatten().filter(finite);
    let xr = padded_range(all().map(|p| p.0));
    let yr = padded_range(all().map(|p| p.1));
    let (xl, yl) = match ba.proj.explained {
        Some([a, b]) => (
            format!("PC1 of z ({:.0}% of variance)", 100.0 * a),
            format!("PC2 of z ({:.0}% of variance)", 100.0 * b),
        ),
        None => ("z[0]".to_string(), "z[1]".to_string()),
    };
    let mut values: Vec<usize> = c.classes.iter().flat_map(|v| v.iter().copied()).collect();
    values.sort_unstable();
    values.dedup();
    let count = |i: usize, v: usize| c.classes[i].iter().filter(|&&x| x == v).count();
    let entries: Vec<(Marker, String)> = values
        .iter()
        .map(|&v| {
            let (na, nb) = (count(0, v), count(1, v));
            let text = if na == nb {
                format!("{} {v} ({na})", c.prefix)
            } else {
                format!("{} {v} ({na} / {nb})", c.prefix)
            };
            (Marker::Dot(style::color(v)), text)
        })
        .collect();
    let [ra, rb] = ba.rounds;
    let title = format!(
        "VAE latent z, rounds {ra} and {rb} on one PCA basis, coloured by {} ({run_name})",
        c.by
    );
    let r = if ba.n() > 1500 { 2 } else { 3 };
    render_png(out, size, |root| {
        let (head, body) = root.split_vertically(40);
        head.draw(&Text::new(title.clone(), (16, 10), style::heading_font()))
            .map_err(plot_err)?;
        let (charts, legend) = style::split_legend(&body, style::LEGEND_WIDTH);
        let halves = charts.split_evenly((1, 2));
        let captions = [
            format!("before: round {ra}{}", c.notes[0]),
            format!("after: round {rb}{}", c.notes[1]),
        ];
        for (i, area) in halves.iter().enumerate() {
            let mut chart = style::scatter_chart(
                area,
                &captions[i],
                style::heading_font(),
                (xr.clone(), &xl),
                (yr.clone(), &yl),
            )
            .map_err(plot_err)?;
            chart
                .draw_series(
                    ba.points[i]
                        .iter()
                        .zip(c.classes[i])
                        .filter(|(p, _)| finite(p))
                        .map(|(&p, &k)| Circle::new(p, r, style::color(k).mix(0.6).filled())),
                )
                .map_err(plot_err)?;
        }
        style::draw_legend(&legend, c.heading, &entries).map_err(plot_err)?;
        Ok(())
    })
}

/// One module's scores of one round (`Scores` in src/serket/accuracy.rs).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RoundScores {
    pub round: usize,
    /// Serket's greedy label-swap accuracy.
    pub greedy: f64,
    pub hungarian: f64,
    pub nmi: f64,
    pub ari: f64,
    pub used_classes: usize,
    /// Seconds of that module's update.
    pub seconds: f64,
}

/// One module's scores per round, from `summary.json`.
#[derive(Debug, Clone, PartialEq)]
pub struct ModuleScores {
    /// "GMM", "MLDA".
    pub module: String,
    /// Rounds without scores (a run without labels) are absent.
    pub rounds: Vec<RoundScores>,
}

/// What the figures and the report need from `summary.json`.
#[derive(Debug, Clone)]
pub struct Summary {
    pub pipeline: String,
    pub seed: u64,
    /// The VAE preset ("upstream", "tutorial").
    pub preset: String,
    pub rounds: usize,
    pub wall_seconds: f64,
    /// The VAE's loss on all data after each round (nats per image).
    pub vae_loss: Vec<f64>,
    pub vae_seconds: f64,
    pub modules: Vec<ModuleScores>,
}

impl Summary {
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let v: serde_json::Value = serde_json::from_str(&text)
            .with_context(|| format!("{} is not valid JSON", path.display()))?;
        let at = |what: &str| format!("{}: {what}", path.display());
        let list = |key: &str| -> Result<&Vec<serde_json::Value>> {
            v.get(key)
                .and_then(|h| h.as_array())
                .with_context(|| at(&format!("expected a list `{key}` (per-round records)")))
        };
        let num = |rec: &serde_json::Value, key: &str, k: &str| -> Result<f64> {
            rec.get(k)
                .and_then(|x| x.as_f64())
                .with_context(|| at(&format!("{key} has no number `{k}`")))
        };
        let mut modules = Vec::new();
        for (key, name) in [("gmm_history", "GMM"), ("mlda_history", "MLDA")] {
            let hist = list(key)?;
            if hist.is_empty() {
                continue;
            }
            let mut rounds = Vec::new();
            for (i, rec) in hist.iter().enumerate() {
                let here = format!("{key}[{i}]");
                let round = num(rec, &here, "round")? as usize;
                let seconds = num(rec, &here, "seconds")?;
                let Some(s) = rec.get("scores").filter(|s| !s.is_null()) else {
                    continue; // the run had no labels
                };
                let here = format!("{here}.scores");
                rounds.push(RoundScores {
                    round,
                    greedy: num(s, &here, "greedy")?,
                    hungarian: num(s, &here, "hungarian")?,
                    nmi: num(s, &here, "nmi")?,
                    ari: num(s, &here, "ari")?,
                    used_classes: num(s, &here, "used_classes")? as usize,
                    seconds,
                });
            }
            modules.push(ModuleScores {
                module: name.to_string(),
                rounds,
            });
        }
        let vae = list("vae_history")?;
        let vae_loss = vae
            .iter()
            .enumerate()
            .map(|(i, r)| num(r, &format!("vae_history[{i}]"), "final_loss"))
            .collect::<Result<Vec<_>>>()?;
        let vae_seconds = vae
            .iter()
            .enumerate()
            .map(|(i, r)| num(r, &format!("vae_history[{i}]"), "seconds"))
            .sum::<Result<f64>>()?;
        Ok(Self {
            pipeline: v
                .get("pipeline")
                .and_then(|p| p.as_str())
                .with_context(|| at("expected a string `pipeline`"))?
                .to_string(),
            seed: num(&v, "the summary", "seed")? as u64,
            preset: v
                .pointer("/vae/preset")
                .and_then(|p| p.as_str())
                .unwrap_or("?")
                .to_lowercase(),
            rounds: num(&v, "the summary", "rounds")? as usize,
            wall_seconds: num(&v, "the summary", "wall_seconds")?,
            vae_loss,
            vae_seconds,
            modules,
        })
    }
}

/// Greedy accuracy, Hungarian accuracy and NMI per round, one panel per scored module.
pub fn render_accuracy(s: &Summary, run_name: &str, out: &Path) -> Result<()> {
    if s.modules.is_empty() {
        bail!("the summary has no GMM or MLDA rounds: nothing to draw");
    }
    let xs: Vec<f64> = s
        .modules
        .iter()
        .flat_map(|m| m.rounds.iter().map(|r| r.round as f64))
        .collect();
    let mut x_range = padded_range(xs.iter().copied());
    if xs.iter().all(|&x| x == xs[0]) {
        let x = xs.first().copied().unwrap_or(0.0);
        x_range = (x - 1.0)..(x + 1.0);
    }
    render_png(out, ACCURACY_SIZE, |root| {
        let (head, body) = root.split_vertically(40);
        head.draw(&Text::new(
            format!(
                "Serket {} scores per round: {run_name} ({:.0} s)",
                s.pipeline, s.wall_seconds
            ),
            (16, 10),
            style::heading_font(),
        ))
        .map_err(plot_err)?;
        let panels = body.split_evenly((1, s.modules.len()));
        for (m, area) in s.modules.iter().zip(&panels) {
            let series = |name: &str, i: usize, get: fn(&RoundScores) -> f64| -> Curve {
                (
                    name.to_string(),
                    style::color(i),
                    m.rounds.iter().map(|r| (r.round as f64, get(r))).collect(),
                )
            };
            // Serket's greedy rule often finds the optimal map; one line then, not two on top
            // of each other with one hidden.
            let same = m
                .rounds
                .iter()
                .all(|r| (r.greedy - r.hungarian).abs() < 1e-9);
            let curves = if same {
                vec![
                    series("accuracy (greedy = Hungarian)", 0, |r| r.greedy),
                    series("NMI", 2, |r| r.nmi),
                ]
            } else {
                vec![
                    series("accuracy (Serket greedy)", 0, |r| r.greedy),
                    series("accuracy (Hungarian)", 1, |r| r.hungarian),
                    series("NMI", 2, |r| r.nmi),
                ]
            };
            let _ = panel(
                area,
                &m.module,
                "round",
                "score",
                &curves,
                x_range.clone(),
                "no labels: no scores",
            )
            .map_err(plot_err)?;
        }
        Ok(())
    })
}

/// What `plot_serket` draws from.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The two rounds to compare [default: first and last].
    pub rounds: Option<[usize; 2]>,
    /// True labels: a text file or the tutorial's data.zip [default: `<run>/category.txt`].
    pub category: Option<PathBuf>,
    /// Pixel size of the scatter figures [default: SCATTER_SIZE].
    pub size: Option<(u32, u32)>,
}

/// The output names, in `out_dir`.
pub const BY_LABEL_PNG: &str = "serket_z_label.png";
pub const BY_GMM_PNG: &str = "serket_z_gmm.png";
pub const BY_MLDA_PNG: &str = "serket_z_mlda.png";
pub const ACCURACY_PNG: &str = "serket_accuracy.png";

/// Draws every figure the run allows into `out_dir` and returns their paths. What cannot be
/// drawn for want of an optional input (no labels, no MLDA, no summary yet) is said on stderr.
pub fn render_run(run_dir: &Path, out_dir: &Path, opts: &Options) -> Result<Vec<PathBuf>> {
    let run = SerketRun::open(run_dir)?;
    let rounds = run.pick_rounds(opts.rounds)?;
    let size = opts.size.unwrap_or(SCATTER_SIZE);
    let ba = BeforeAfter::load(&run, rounds)?;
    let n = ba.n();
    let name = crate::run_name(run_dir);
    let mut written = Vec::new();
    let default_category = run_dir.join(gmvae::serket::cli::CATEGORY_FILE);
    let source = match &opts.category {
        Some(p) => Some(gmvae::serket::data::Source::from_path(
            p,
            gmvae::serket::data::ZIP_CATEGORY,
        )),
        None if default_category.is_file() => {
            Some(gmvae::serket::data::Source::Text(default_category.clone()))
        }
        None => None,
    };
    match source {
        Some(src) => {
            let labels = src.read_labels()?;
            check_len(Path::new(&src.to_string()), labels.len(), n, rounds[0])?;
            let out = out_dir.join(BY_LABEL_PNG);
            let c = Colouring {
                by: "true class",
                heading: "True class",
                prefix: "digit",
                classes: [&labels, &labels],
                notes: ba.z.clone().map(|z| {
                    format!(
                        " ({:.0}% of z's variance within classes)",
                        100.0 * within_class_share(&z, &labels)
                    )
                }),
            };
            render_scatter(&ba, &c, &name, size, &out)?;
            written.push(out);
        }
        None => eprintln!(
            "note: no {} and no --category: the figure by true class is not drawn",
            default_category.display()
        ),
    }
    for (module, by, file) in [
        (&run.gmm, "the GMM's class", BY_GMM_PNG),
        (&run.mlda, "the MLDA's class", BY_MLDA_PNG),
    ] {
        let Some(module) = module else { continue };
        let a = run.classes(module, rounds[0], n)?;
        let b = run.classes(module, rounds[1], n)?;
        let out = out_dir.join(file);
        let c = Colouring {
            by,
            heading: "Class (points)",
            prefix: "class",
            classes: [&a, &b],
            notes: Default::default(),
        };
        render_scatter(&ba, &c, &name, size, &out)?;
        written.push(out);
    }
    let summary = run_dir.join(SUMMARY_FILE);
    if summary.is_file() {
        let out = out_dir.join(ACCURACY_PNG);
        render_accuracy(&Summary::load(&summary)?, &name, &out)?;
        written.push(out);
    } else {
        eprintln!(
            "note: no {} (written when the run finishes): the accuracy curve is not drawn",
            summary.display()
        );
    }
    Ok(written)
}

/// Parses `WxH` for `--size`.
pub fn parse_size(s: &str) -> std::result::Result<(u32, u32), String> {
    let bad = || format!("expected WIDTHxHEIGHT in pixels, e.g. 1600x760; got `{s}`");
    let (w, h) = s.split_once('x').ok_or_else(bad)?;
    match (w.trim().parse(), h.trim().parse()) {
        (Ok(w), Ok(h)) => Ok((w, h)),
        _ => Err(bad()),
    }
}

/// Parses `A,B` for `--rounds`.
pub fn parse_rounds(s: &str) -> std::result::Result<[usize; 2], String> {
    let v: Vec<usize> = s
        .split(',')
        .map(|p| {
            p.trim()
                .parse::<usize>()
                .map_err(|_| format!("`{p}` is not a round number"))
        })
        .collect::<std::result::Result<_, _>>()?;
    match v[..] {
        [a, b] => Ok([a, b]),
        _ => Err(format!("expected two rounds A,B, e.g. 0,4; got `{s}`")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn within_class_share_is_zero_for_point_classes_and_one_for_shared_means() {
        let labels = [0, 0, 1, 1];
        // Each class a single point: no variance within classes.
        let z = Matrix::new(4, 2, vec![1.0, 0.0, 1.0, 0.0, -1.0, 2.0, -1.0, 2.0]).unwrap();
        assert_eq!(within_class_share(&z, &labels), 0.0);
        // Both classes centred on the origin: all variance within classes.
        let z = Matrix::new(4, 2, vec![1.0, 0.0, -1.0, 0.0, 0.0, 3.0, 0.0, -3.0]).unwrap();
        assert!((within_class_share(&z, &labels) - 1.0).abs() < 1e-12);
        // Halfway: within = 2 * 1^2 = 2 per class pair, between = 4 * 1^2 = 4, total 6.
        let z = Matrix::new(4, 1, vec![2.0, 0.0, -2.0, 0.0]).unwrap();
        assert!((within_class_share(&z, &labels) - 0.5).abs() < 1e-12);
    }

    #[test]
    fn rounds_flag_parses() {
        assert_eq!(parse_rounds("0,4"), Ok([0, 4]));
        assert_eq!(parse_rounds(" 2 , 1"), Ok([2, 1]));
        assert!(parse_rounds("1").is_err());
        assert!(parse_rounds("1,2,3").is_err());
        assert!(parse_rounds("a,1").is_err());
        assert_eq!(parse_size("1200x600"), Ok((1200, 600)));
        assert!(parse_size("1200").is_err() && parse_size("ax2").is_err());
    }
}
