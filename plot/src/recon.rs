//! `plot_recon`: upstream's `plot_recon.py` for 2-D data (the data in grey, reconstructions
//! coloured by cluster); for images, a grid of originals beside the same grid of reconstructions.

use crate::latent::padded_range;
use crate::linalg::Projection;
use crate::style::{self, Marker};
use crate::{plot_err, render_png, run_caption};
use anyhow::{bail, Result};
use gmvae::dump::LatentDump;
use plotters::prelude::*;
use std::path::Path;

pub const SCATTER_SIZE: (u32, u32) = (1000, 800);

/// Grid layout for image data.
#[derive(Debug, Clone, Copy)]
pub struct ImageGrid {
    /// How many examples to show (the first ones of the dump).
    pub count: usize,
    /// Examples per row in each of the two panels.
    pub cols: usize,
}

impl Default for ImageGrid {
    fn default() -> Self {
        Self {
            count: 50,
            cols: 10,
        }
    }
}

/// `image_shape`: how to draw a row as a picture (see `resolve_image_shape`); None draws points.
pub fn render_recon(
    dump: &LatentDump,
    image_shape: Option<[usize; 3]>,
    grid: ImageGrid,
    out: &Path,
) -> Result<()> {
    match image_shape {
        Some(shape) => render_images(dump, shape, grid, out),
        None => render_points(dump, out),
    }
}

fn render_points(dump: &LatentDump, out: &Path) -> Result<()> {
    // Fit on the data so data and reconstructions share axes (identity when Dy = 2).
    let proj = Projection::fit(&dump.data, dump.dy)?;
    let finite = |r: &&[f32]| r.iter().all(|v| v.is_finite());
    let data: Vec<(f64, f64)> = dump
        .data
        .chunks_exact(dump.dy)
        .filter(finite)
        .map(|r| proj.apply(r))
        .collect();
    let recon: Vec<((f64, f64), u32)> = dump
        .recon
        .chunks_exact(dump.dy)
        .zip(&dump.cluster)
        .filter(|(r, _)| finite(r))
        .map(|(r, &c)| (proj.apply(r), c))
        .collect();
    if data.is_empty() && recon.is_empty() {
        bail!("neither data nor recon has finite rows to plot");
    }
    let all = || data.iter().copied().chain(recon.iter().map(|p| p.0));
    let xr = padded_range(all().map(|p| p.0));
    let yr = padded_range(all().map(|p| p.1));
    let (xl, yl) = match proj.explained {
        Some(_) => ("PC1 of y", "PC2 of y"),
        None => ("y[0]", "y[1]"),
    };
    let title = format!("Data and reconstructions ({})", run_caption(dump));
    let mut classes: Vec<u32> = recon.iter().map(|p| p.1).collect();
    classes.sort_unstable();
    classes.dedup();
    render_png(out, SCATTER_SIZE, |root| {
        let (chart_area, legend_area) = style::split_legend(root, style::LEGEND_WIDTH);
        let mut chart = style::scatter_chart(
            &chart_area,
            &title,
            style::title_font(),
            (xr.clone(), xl),
            (yr.clone(), yl),
        )
        .map_err(plot_err)?;
        let grey = RGBColor(150, 150, 150);
        chart
            .draw_series(
                data.iter()
                    .map(|&p| Circle::new(p, 3, grey.mix(0.5).filled())),
            )
            .map_err(plot_err)?;
        chart
            .draw_series(
                recon
                    .iter()
                    .map(|&(p, c)| Circle::new(p, 2, style::color(c as usize).mix(0.85).filled())),
            )
            .map_err(plot_err)?;
        let mut entries = vec![(Marker::Dot(grey), "data".to_string())];
        entries.extend(classes.iter().map(|&c| {
            (
                Marker::Dot(style::color(c as usize)),
                format!("recon, cluster {c}"),
            )
        }));
        style::draw_legend(&legend_area, "Points", &entries).map_err(plot_err)?;
        Ok(())
    })
}

/// RGB bytes of image `i` of `flat` (CHW, values in [0, 1]) scaled up `s` times.
pub(crate) fn image_rgb(flat: &[f32], [c, h, w]: [usize; 3], s: usize) -> Vec<u8> {
    let mut out = vec![0u8; h * s * w * s * 3];
    for y in 0..h * s {
        for x in 0..w * s {
            for ch in 0..3 {
                // Grey images repeat their one channel.
                let src = if c == 1 { 0 } else { ch };
                let v = flat[src * h * w + (y / s) * w + x / s];
                let byte = if v.is_nan() {
                    0
                } else {
                    (v.clamp(0.0, 1.0) * 255.0).round() as u8
                };
                out[(y * w * s + x) * 3 + ch] = byte;
            }
        }
    }
    out
}

fn render_images(dump: &LatentDump, shape: [usize; 3], grid: ImageGrid, out: &Path) -> Result<()> {
    let [c, h, w] = shape;
    if c * h * w != dump.dy {
        bail!(
            "image shape {c}x{h}x{w} does not match the dump's {} values per row",
            dump.dy
        );
    }
    if c != 1 && c != 3 {
        bail!("cannot draw images with {c} channels (need 1 or 3)");
    }
    gmvae::limits::at_most("--count", grid.count, gmvae::limits::MAX_GRID_COUNT)?;
    gmvae::limits::count("--cols", grid.cols, gmvae::limits::MAX_GRID_COLS)?;
    let n = grid.count.min(dump.n);
    if n == 0 || grid.cols == 0 {
        bail!(
            "nothing to draw: the dump has {} examples, asked for {}",
            dump.n,
            grid.count
        );
    }
    let cols = grid.cols.min(n);
    let rows = n.div_ceil(cols);
    // Small images (MNIST's 28 px) are scaled up so a few dozen fill a readable picture.
    let s = (56 / h.max(w)).max(1);
    let gap = 2usize;
    let (cw, ch) = (w * s + gap, h * s + gap);
    let (panel_w, panel_h) = (cols * cw, rows * ch);
    let (margin, top, caption) = (20usize, 50usize, 28usize);
    let width = (2 * panel_w + 3 * margin).max(520);
    let height = top + caption + panel_h + margin;
    let title = format!("Originals and reconstructions ({})", run_caption(dump));
    let left0 = (width - (2 * panel_w + margin)) / 2;
    render_png(out, (width as u32, height as u32), |root| {
        root.draw(&Text::new(
            title.clone(),
            (margin as i32, 14),
            style::title_font(),
        ))
        .map_err(plot_err)?;
        for (panel, (name, src)) in [("original", &dump.data), ("reconstruction", &dump.recon)]
            .iter()
            .enumerate()
        {
            let x0 = left0 + panel * (panel_w + margin);
            let y0 = top + caption;
            root.draw(&Text::new(
                name.to_string(),
                (x0 as i32, top as i32),
                style::label_font(),
            ))
            .map_err(plot_err)?;
            // A light backdrop marks the panel even where images are black.
            root.draw(&Rectangle::new(
                [
                    (x0 as i32 - 1, y0 as i32 - 1),
                    ((x0 + panel_w) as i32 - 1, (y0 + panel_h) as i32 - 1),
                ],
                RGBColor(220, 220, 220).filled(),
            ))
            .map_err(plot_err)?;
            for i in 0..n {
                let img = &src[i * dump.dy..(i + 1) * dump.dy];
                let pos = ((x0 + (i % cols) * cw) as i32, (y0 + (i / cols) * ch) as i32);
                let size = ((w * s) as u32, (h * s) as u32);
                let bitmap: BitMapElement<'_, _> =
                    BitMapElement::with_owned_buffer(pos, size, image_rgb(img, shape, s))
                        .ok_or_else(|| anyhow::anyhow!("internal: bitmap buffer size"))?;
                root.draw(&bitmap).map_err(plot_err)?;
            }
        }
        Ok(())
    })
}
