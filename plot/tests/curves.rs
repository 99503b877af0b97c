//! The curves panel: equal curves stay visible (train accuracy under test accuracy) and the legend
//! sits beside the data, not over it.

use gmvae_plot::curves::{panel, Curve, PanelLayout};
use gmvae_plot::style::color;

mod common;

/// Draws one 500 x 450 panel of `curves` and returns its layout and pixels.
fn draw(curves: &[Curve], out: &std::path::Path) -> (PanelLayout, Vec<[u8; 3]>) {
    let mut layout = None;
    gmvae_plot::render_png(out, (500, 450), |root| {
        let l = panel(root, "Scores", "epoch", "score", curves, 0.0..21.0, "none")
            .map_err(gmvae_plot::plot_err)?;
        layout = Some(l);
        Ok(())
    })
    .unwrap();
    let (w, _, px) = common::decode(out);
    assert_eq!(w, 500);
    (layout.unwrap(), px)
}

/// Pixels of colour `c` inside `(xs, ys)`.
fn count(px: &[[u8; 3]], c: plotters::style::RGBColor, (xs, ys): &Rect) -> usize {
    (ys.clone())
        .flat_map(|y| xs.clone().map(move |x| (x, y)))
        .filter(|&(x, y)| {
            let p = px[(y * 500 + x) as usize];
            p.iter()
                .zip([c.0, c.1, c.2])
                .all(|(&a, b)| (a as i32 - b as i32).abs() <= 30)
        })
        .count()
}
type Rect = (std::ops::Range<i32>, std::ops::Range<i32>);

#[test]
fn equal_curves_both_show_and_the_legend_is_off_the_data() {
    let d = tempfile::tempdir().unwrap();
    // Train and test accuracy equal at every epoch (the spiral scores on its training points),
    // high at the end: where an upper-right legend would sit.
    let acc: Vec<(f64, f64)> = (1..=20)
        .map(|e| (e as f64, 0.3 + 0.035 * e as f64))
        .collect();
    let nmi: Vec<(f64, f64)> = acc.iter().map(|&(e, a)| (e, a - 0.1)).collect();
    let curves: Vec<Curve> = vec![
        ("train ACC".into(), color(2), acc.clone()),
        ("test ACC".into(), color(3), acc.clone()),
        ("test NMI".into(), color(6), nmi),
    ];
    let (layout, px) = draw(&curves, &d.path().join("p.png"));
    let legend = layout.legend.clone().expect("three curves have a legend");
    let (plot_x, plot_y) = layout.plot.clone();
    assert!(
        legend.1.start >= plot_y.end,
        "legend rows {:?} overlap the plotting area's {:?}",
        legend.1,
        plot_y
    );
    // Both equal curves are visible in the plotting area, not just in the legend.
    let plot = (plot_x, plot_y);
    let (train, test) = (count(&px, color(2), &plot), count(&px, color(3), &plot));
    assert!(
        train > 200 && test > 200,
        "train {train} px, test {test} px"
    );
    // The legend shows each curve.
    for i in [2, 3, 6] {
        assert!(
            count(&px, color(i), &legend) > 20,
            "legend lacks colour {i}"
        );
    }
    // One curve needs no legend: the chart takes the whole panel.
    let (single, _) = draw(&curves[..1], &d.path().join("q.png"));
    assert!(single.legend.is_none());
    assert!(single.plot.1.end > layout.plot.1.end);
}
