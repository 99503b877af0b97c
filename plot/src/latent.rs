//! `plot_latent`: upstream's `plot_latent.py`. The q(x|y) means coloured by predicted cluster (or
//! true label), each mixture component's 2-sigma ellipse of p(x|w=0,z=k) and a star at its mean.
//! With Dx > 2 points and components go through one PCA so they stay comparable.

use crate::linalg::{ellipse, Projection};
use crate::style::{self, Marker};
use crate::{plot_err, render_png, run_caption};
use anyhow::{bail, Result};
use gmvae::dump::LatentDump;
use plotters::prelude::*;
use std::path::Path;

pub const SIZE: (u32, u32) = (1000, 800);

/// A component seen in the plane: its projected mean and its 2-sigma ellipse.
type Component = ((f64, f64), Vec<(f64, f64)>);

/// How to colour the points.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColorBy {
    Cluster,
    Label,
}

/// Range covering `vals` with a margin; never empty, so a single point still gets a frame.
pub fn padded_range(vals: impl Iterator<Item = f64>) -> std::ops::Range<f64> {
    let (lo, hi) = vals
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| {
            (l.min(v), h.max(v))
        });
    if !lo.is_finite() {
        return -1.0..1.0;
    }
    let pad = ((hi - lo) * 0.05)
        .max(1e-3 * lo.abs().max(hi.abs()))
        .max(1e-6);
    (lo - pad)..(hi + pad)
}

pub fn render_latent(dump: &LatentDump, color_by: ColorBy, out: &Path) -> Result<()> {
    let labels = match (color_by, &dump.label) {
        (ColorBy::Label, None) => bail!(
            "the dump of `{}` has no true labels; drop --by-label to colour by cluster",
            dump.dataset
        ),
        (ColorBy::Label, Some(l)) => l,
        (ColorBy::Cluster, _) => &dump.cluster,
    };
    let proj = Projection::fit(&dump.x_mean, dump.dx)?;
    let points: Vec<((f64, f64), u32)> = dump
        .x_mean
        .chunks_exact(dump.dx)
        .zip(labels)
        .filter(|(x, _)| x.iter().all(|v| v.is_finite()))
        .map(|(x, &c)| (proj.apply(x), c))
        .collect();
    if points.is_empty() {
        bail!("x_mean has no finite rows to plot");
    }
    let comps: Vec<Component> = (0..dump.k)
        .map(|k| {
            let mean = &dump.prior_mean[k * dump.dx..(k + 1) * dump.dx];
            let var = &dump.prior_var[k * dump.dx..(k + 1) * dump.dx];
            let c = proj.apply(mean);
            (c, ellipse(c, proj.project_diag_cov(var), 2.0, 96))
        })
        .filter(|(c, e)| {
            c.0.is_finite()
                && c.1.is_finite()
                && e.iter().all(|p| p.0.is_finite() && p.1.is_finite())
        })
        .collect();
    let all = || {
        points
            .iter()
            .map(|p| p.0)
            .chain(comps.iter().flat_map(|c| c.1.iter().copied()))
    };
    let xr = padded_range(all().map(|p| p.0));
    let yr = padded_range(all().map(|p| p.1));
    let (xl, yl) = match proj.explained {
        Some([a, b]) => (
            format!("PC1 of x ({:.0}% of variance)", 100.0 * a),
            format!("PC2 of x ({:.0}% of variance)", 100.0 * b),
        ),
        None if dump.dx == 1 => ("x[0]".to_string(), "(Dx = 1)".to_string()),
        None => ("x[0]".to_string(), "x[1]".to_string()),
    };
    let what = match color_by {
        ColorBy::Cluster => "coloured by predicted cluster",
        ColorBy::Label => "coloured by true label",
    };
    let title = format!("Latent q(x|y) means, {what} ({})", run_caption(dump));
    // Legend rows with counts; in cluster mode every component is listed, also empty ones,
    // because each has an ellipse of its colour.
    let mut counts = std::collections::BTreeMap::<u32, usize>::new();
    if color_by == ColorBy::Cluster {
        counts.extend((0..dump.k as u32).map(|k| (k, 0)));
    }
    for p in &points {
        *counts.entry(p.1).or_default() += 1;
    }
    render_png(out, SIZE, |root| {
        let (chart_area, legend_area) = style::split_legend(root, style::LEGEND_WIDTH);
        let mut chart = style::scatter_chart(
            &chart_area,
            &title,
            style::title_font(),
            (xr.clone(), &xl),
            (yr.clone(), &yl),
        )
        .map_err(plot_err)?;
        // In label mode component k has no colour of its own among the points: draw it grey.
        let ring_color = |k: usize| match color_by {
            ColorBy::Cluster => style::color(k),
            ColorBy::Label => RGBColor(90, 90, 90),
        };
        // Fills first so they tint the background without veiling the points.
        chart
            .draw_series(
                comps.iter().enumerate().map(|(k, (_, ring))| {
                    Polygon::new(ring.clone(), ring_color(k).mix(0.10).filled())
                }),
            )
            .map_err(plot_err)?;
        // Small translucent dots: MNIST dumps hold thousands of overlapping points.
        let r = if points.len() > 2000 { 2 } else { 3 };
        chart
            .draw_series(
                points
                    .iter()
                    .map(|&(p, c)| Circle::new(p, r, style::color(c as usize).mix(0.6).filled())),
            )
            .map_err(plot_err)?;
        chart
            .draw_series(comps.iter().enumerate().map(|(k, (_, ring))| {
                PathElement::new(ring.clone(), ring_color(k).stroke_width(2))
            }))
            .map_err(plot_err)?;
        for (k, (center, _)) in comps.iter().enumerate() {
            let star = EmptyElement::at(*center)
                + Polygon::new(style::star(11.0), BLACK.filled())
                + Text::new(format!("{k}"), (9, -20), style::small_font());
            chart.draw_series(std::iter::once(star)).map_err(plot_err)?;
        }
        let mut entries: Vec<(Marker, String)> = counts
            .iter()
            .map(|(&c, &n)| {
                let name = match color_by {
                    ColorBy::Cluster => format!("cluster {c} ({n})"),
                    ColorBy::Label => format!("label {c} ({n})"),
                };
                (Marker::Dot(style::color(c as usize)), name)
            })
            .collect();
        entries.push((Marker::Star, "component mean".to_string()));
        let ring_col = match color_by {
            ColorBy::Cluster => style::color(0),
            ColorBy::Label => RGBColor(90, 90, 90),
        };
        entries.push((Marker::Line(ring_col), "2-sigma, w = 0".to_string()));
        let heading = match color_by {
            ColorBy::Cluster => "Cluster (points)",
            ColorBy::Label => "Label (points)",
        };
        style::draw_legend(&legend_area, heading, &entries).map_err(plot_err)?;
        Ok(())
    })
}
