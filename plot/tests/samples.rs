//! The samples grid labels each row with its component and each column with its sample number.

use gmvae_plot::samples::{render_samples, Samples};

mod common;

#[test]
fn samples_grid_labels_rows_and_columns() {
    let (k, cols) = (3usize, 4usize);
    // Mid-grey images: text (dark) and images (grey) tell apart.
    let s = Samples {
        images: vec![0.5; k * cols * 784],
        k,
        image_shape: [1, 28, 28],
        epoch: 7,
    };
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("s.png");
    let g = render_samples(&s, cols, &out).unwrap();
    let (w, h, px) = common::decode(&out);
    let dark = |xs: std::ops::Range<u32>, ys: std::ops::Range<u32>| {
        ys.flat_map(|y| xs.clone().map(move |x| (x, y)))
            .filter(|&(x, y)| px[(y * w + x) as usize][0] < 80)
            .count()
    };
    let (cw, ch) = g.cell;
    assert_eq!(h, g.top + k as u32 * ch + 16);
    // Every image is drawn where the layout says.
    for r in 0..k as u32 {
        for c in 0..cols as u32 {
            let p = px[((g.top + r * ch + 10) * w + g.left + c * cw + 10) as usize];
            assert!((120..=136).contains(&p[0]), "cell ({r}, {c}) is {p:?}");
        }
    }
    // A label left of every row, a number above every column, none left of the gaps between rows.
    for r in 0..k as u32 {
        let band = g.top + r * ch;
        let n = dark(0..g.left, band..band + ch - 4);
        assert!(n > 15, "row {r} has no label ({n} dark px)");
    }
    for c in 0..cols as u32 {
        let x = g.left + c * cw;
        let n = dark(x..x + cw - 4, g.top - 24..g.top - 4);
        assert!(n > 5, "column {c} has no number ({n} dark px)");
    }
    // The labels differ (z = 0, z = 1, ...): rows' label pixels are not all alike.
    let label = |r: u32| -> Vec<bool> {
        let band = g.top + r * ch;
        (band..band + ch - 4)
            .flat_map(|y| (0..g.left).map(move |x| (x, y)))
            .map(|(x, y)| px[(y * w + x) as usize][0] < 80)
            .collect()
    };
    assert_ne!(label(0), label(1));
}
