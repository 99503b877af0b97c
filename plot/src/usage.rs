//! Cluster usage (upstream's `labels_stats.png`): the share of the data each cluster takes, as
//! the mean of q(z|y) over the dump's rows, with the share of hard (argmax) assignments beside it.

use crate::style::{self, Marker};
use crate::{plot_err, render_png, run_caption};
use anyhow::{bail, Result};
use gmvae::dump::LatentDump;
use plotters::prelude::*;
use std::path::Path;

pub const SIZE: (u32, u32) = (1000, 600);

/// Mean of q(z|y) per cluster and the share of rows whose argmax is each cluster.
pub fn usage(dump: &LatentDump) -> Result<(Vec<f64>, Vec<f64>)> {
    if dump.n == 0 || dump.k == 0 {
        bail!("the dump has no rows or no clusters");
    }
    let mut soft = vec![0.0; dump.k];
    for row in dump.q_z.chunks_exact(dump.k) {
        for (s, &q) in soft.iter_mut().zip(row) {
            if q.is_finite() {
                *s += q as f64 / dump.n as f64;
            }
        }
    }
    let mut hard = vec![0.0; dump.k];
    for &c in &dump.cluster {
        if let Some(h) = hard.get_mut(c as usize) {
            *h += 1.0 / dump.n as f64;
        }
    }
    Ok((soft, hard))
}

pub fn render_usage(dump: &LatentDump, out: &Path) -> Result<()> {
    let (soft, hard) = usage(dump)?;
    let k = dump.k;
    let top = soft
        .iter()
        .chain(&hard)
        .copied()
        .fold(1.0 / k as f64, f64::max);
    let title = format!("Cluster usage ({}, {} points)", run_caption(dump), dump.n);
    render_png(out, SIZE, |root| {
        // Wider than the scatters' legend: its entries are phrases, not cluster numbers.
        let (chart_area, legend_area) = style::split_legend(root, 210);
        let mut chart = style::chart(
            &chart_area,
            &title,
            style::title_font(),
            -0.5f64..(k as f64 - 0.5),
            0f64..top * 1.1,
        )
        .map_err(plot_err)?;
        style::mesh(&mut chart, "cluster", "share of the data")
            .disable_x_mesh()
            .x_labels(k.min(30))
            .x_label_formatter(&|v| format!("{}", v.round() as i64))
            .draw()
            .map_err(plot_err)?;
        chart
            .draw_series(soft.iter().enumerate().map(|(i, &s)| {
                let x = i as f64;
                Rectangle::new([(x - 0.4, 0.0), (x + 0.4, s)], style::color(i).filled())
            }))
            .map_err(plot_err)?;
        chart
            .draw_series(hard.iter().enumerate().map(|(i, &h)| {
                EmptyElement::at((i as f64, h))
                    + Rectangle::new([(-10, -1), (10, 1)], BLACK.filled())
            }))
            .map_err(plot_err)?;
        let uniform = 1.0 / k as f64;
        chart
            .draw_series(DashedLineSeries::new(
                vec![(-0.5, uniform), (k as f64 - 0.5, uniform)],
                6,
                4,
                RGBColor(80, 80, 80).stroke_width(1),
            ))
            .map_err(plot_err)?;
        let entries = vec![
            (
                Marker::Bar(RGBColor(150, 150, 150)),
                "mean q(z|y)".to_string(),
            ),
            (Marker::Line(BLACK), "argmax share".to_string()),
            (Marker::Line(RGBColor(80, 80, 80)), format!("uniform 1/{k}")),
        ];
        style::draw_legend(&legend_area, "Bars", &entries).map_err(plot_err)?;
        Ok(())
    })
}
