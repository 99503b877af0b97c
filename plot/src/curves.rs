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

/// One chart of `curves` against a whole-number x (`x_desc`: epoch, round), or `empty_note` in
/// its middle when no curve has a point.
pub fn panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    title: &str,
    x_desc: &str,
    y_desc: &str,
    curves: &[Curve],
    x_range: std::ops::Range<f64>,
    empty_note: &str,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let mut y_range = padded_range(curves.iter().flat_map(|c| c.2.iter().map(|p| p.1)));
    if curves.len() > 1 {
        // Headroom for the legend, so it never hides a curve.
        y_range.end += 0.12 * curves.len() as f64 * (y_range.end - y_range.start);
    }
    let mut chart = ChartBuilder::on(area)
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
    if curves.iter().all(|c| c.2.is_empty()) {
        let (w, h) = area.dim_in_pixel();
        let font = style::label_font().pos(Pos::new(HPos::Center, VPos::Center));
        area.draw(&Text::new(
            empty_note.to_string(),
            (w as i32 / 2 + 30, h as i32 / 2),
            font,
        ))?;
        return Ok(());
    }
    for (name, col, pts) in curves {
        let col = *col;
        chart
            .draw_series(LineSeries::new(pts.iter().copied(), col.stroke_width(2)))?
            .label(name.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], col.stroke_width(2)));
        // Dots too, so a short run (even one epoch) shows its values; long runs get a clean line.
        if pts.len() <= 60 {
            chart.draw_series(pts.iter().map(|&p| Circle::new(p, 3, col.filled())))?;
        }
    }
    if curves.len() > 1 {
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font(style::small_font())
            .draw()?;
    }
    Ok(())
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
        panel(
            &panels[0],
            "Lower bound",
            "epoch",
            "lower bound per point (nats)",
            &lb,
            x_range.clone(),
            "no values",
        )
        .map_err(plot_err)?;
        panel(
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
        panel(
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
