//! `plot_curves`: the per-epoch curves upstream saved as `lowerbound.png`, `CV.png` and
//! `Scores.png`, as three panels of one picture drawn from `metrics.csv`.

use crate::latent::padded_range;
use crate::metrics_csv::Metrics;
use crate::style;
use crate::{plot_err, render_png};
use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::Path;

pub const SIZE: (u32, u32) = (1500, 500);

/// The accuracy-like columns, with their legend names, drawn in the third panel when present.
pub const SCORES: [(&str, &str); 6] = [
    ("train_acc", "train ACC"),
    ("test_acc", "test ACC"),
    ("test_acc_hungarian", "test ACC (Hungarian)"),
    ("test_acc_majority", "test ACC (majority)"),
    ("test_nmi", "test NMI"),
    ("test_ari", "test ARI"),
];

/// One line of a panel: legend name, colour, (x, y) points.
pub type Curve = (String, RGBColor, Vec<(f64, f64)>);

/// Where a panel put its parts, in the picture's pixels: x and y ranges of the plotting area and,
/// with more than one curve, of the legend strip beneath the chart.
#[derive(Debug, Clone, PartialEq)]
pub struct PanelLayout {
    pub plot: (std::ops::Range<i32>, std::ops::Range<i32>),
    pub legend: Option<(std::ops::Range<i32>, std::ops::Range<i32>)>,
}

/// Height of one legend row, in pixels.
const LEGEND_ROW: u32 = 18;

/// Curve `i`'s line: the first solid, later ones dashed with growing gaps, so a curve equal to
/// an earlier one (train and test accuracy on the same points) still shows the earlier one
/// between its dashes.
fn draw_line<DB: DrawingBackend, C: plotters::coord::CoordTranslate>(
    area: &DrawingArea<DB, C>,
    i: usize,
    col: RGBColor,
    pts: &[C::From],
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>>
where
    C::From: Clone,
{
    let line = col.stroke_width(2);
    if i == 0 {
        return area.draw(&PathElement::new(pts.to_vec(), line));
    }
    let dash = 4 + 2 * i as i32;
    for e in DashedLineSeries::new(pts.iter().cloned(), dash, dash, line) {
        area.draw(&e)?;
    }
    Ok(())
}

/// Curve `i`'s marker: circle, triangle, cross or square, smaller for later curves so that an
/// earlier one stays visible around a later one at the same point.
fn draw_marker<DB: DrawingBackend, C: plotters::coord::CoordTranslate>(
    area: &DrawingArea<DB, C>,
    i: usize,
    col: RGBColor,
    p: C::From,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let r = 5 - (i as i32).min(2);
    match i % 4 {
        0 => area.draw(&Circle::new(p, r, col.filled())),
        1 => area.draw(&TriangleMarker::new(p, r + 1, col.filled())),
        2 => area.draw(&Cross::new(p, r, col.stroke_width(2))),
        _ => area.draw(
            &(EmptyElement::at(p)
                + Rectangle::new([(-r + 1, -r + 1), (r - 1, r - 1)], col.filled())),
        ),
    }
}

/// One chart of `curves` against a whole-number x (`x_desc`: epoch, round), or `empty_note` in
/// its middle when no curve has a point. With several curves their legend is a strip beneath
/// the chart, never over the data.
pub fn panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    title: &str,
    x_desc: &str,
    y_desc: &str,
    curves: &[Curve],
    x_range: std::ops::Range<f64>,
    empty_note: &str,
) -> Result<PanelLayout, DrawingAreaErrorKind<DB::ErrorType>> {
    let y_range = padded_range(curves.iter().flat_map(|c| c.2.iter().map(|p| p.1)));
    let (w, h) = area.dim_in_pixel();
    let cols = if curves.len() <= 2 { curves.len() } else { 2 };
    let legend_h = match curves.len() {
        0 | 1 => 0,
        n => (n.div_ceil(cols) as u32) * LEGEND_ROW + 6,
    };
    let (chart_area, legend_area) = area.split_vertically(h.saturating_sub(legend_h));
    let mut chart = ChartBuilder::on(&chart_area)
        .caption(title, style::title_font())
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d(x_range, y_range)?;
    chart
        .configure_mesh()
        .x_desc(x_desc)
        // Epochs are whole numbers; hide the fractional ticks plotters picks for short runs.
        .x_label_formatter(&|v| {
            if (v - v.round()).abs() < 1e-9 {
                format!("{v:.0}")
            } else {
                String::new()
            }
        })
        .y_desc(y_desc)
        .axis_desc_style(style::label_font())
        .label_style(style::small_font())
        .light_line_style(WHITE.mix(0.0))
        .draw()?;
    let plotting = chart.plotting_area();
    let (px, py) = plotting.get_pixel_range();
    let mut layout = PanelLayout {
        plot: (px, py),
        legend: None,
    };
    if curves.iter().all(|c| c.2.is_empty()) {
        let font = style::label_font().pos(Pos::new(HPos::Center, VPos::Center));
        area.draw(&Text::new(
            empty_note.to_string(),
            (w as i32 / 2 + 30, h as i32 / 2),
            font,
        ))?;
        return Ok(layout);
    }
    for (i, (_, col, pts)) in curves.iter().enumerate() {
        draw_line(plotting, i, *col, pts)?;
        // Markers too, so a short run (even one epoch) shows its values; long runs get a clean
        // line.
        if pts.len() <= 60 {
            for &p in pts {
                draw_marker(plotting, i, *col, p)?;
            }
        }
    }
    if legend_h > 0 {
        let col_w = (w as i32 - 40) / cols as i32;
        for (i, (name, col, _)) in curves.iter().enumerate() {
            let x = 40 + (i % cols) as i32 * col_w;
            let y = (i / cols) as i32 * LEGEND_ROW as i32 + LEGEND_ROW as i32 / 2;
            draw_line(&legend_area, i, *col, &[(x, y), (x + 30, y)])?;
            draw_marker(&legend_area, i, *col, (x + 15, y))?;
            legend_area.draw(&Text::new(
                name.clone(),
                (x + 38, y - 7),
                style::small_font(),
            ))?;
        }
        let (lx, ly) = legend_area.get_pixel_range();
        layout.legend = Some((lx, ly));
    }
    Ok(layout)
}

pub fn render_curves(metrics: &Metrics, run_name: &str, out: &Path) -> Result<()> {
    let get = |name: &str| metrics.series(name).unwrap_or_default();
    let lb = vec![(
        "lower bound".to_string(),
        style::color(0),
        get("lower_bound"),
    )];
    let cv = vec![("CV".to_string(), style::color(1), get("cv"))];
    let scores: Vec<Curve> = SCORES
        .iter()
        .enumerate()
        .map(|(i, (col, name))| (name.to_string(), style::color(i + 2), get(col)))
        .filter(|c| !c.2.is_empty())
        .collect();
    let epochs: Vec<f64> = get("epoch").iter().map(|p| p.0).collect();
    let mut x_range = padded_range(epochs.iter().copied());
    if epochs.len() < 2 {
        let e = epochs.first().copied().unwrap_or(1.0);
        x_range = (e - 1.0)..(e + 1.0);
    }
    let last = epochs.last().copied().unwrap_or(0.0);
    render_png(out, SIZE, |root| {
        let (head, body) = root.split_vertically(40);
        head.draw(&Text::new(
            format!(
                "Training curves: {run_name}, {} epochs (last {last})",
                metrics.rows.len()
            ),
            (16, 10),
            style::heading_font(),
        ))
        .map_err(plot_err)?;
        let panels = body.split_evenly((1, 3));
        let _ = panel(
            &panels[0],
            "Lower bound",
            "epoch",
            "lower bound per point (nats)",
            &lb,
            x_range.clone(),
            "no values",
        )
        .map_err(plot_err)?;
        let _ = panel(
            &panels[1],
            "Consistency violation",
            "epoch",
            "mean entropy of p(z|x,w) (nats)",
            &cv,
            x_range.clone(),
            "no values",
        )
        .map_err(plot_err)?;
        let note = "no labels: no accuracies";
        let _ = panel(
            &panels[2],
            "Clustering scores",
            "epoch",
            "score",
            &scores,
            x_range.clone(),
            note,
        )
        .map_err(plot_err)?;
        Ok(())
    })
}
