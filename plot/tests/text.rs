//! Letter spacing of rendered text: the ink gap between two letters is the first one's right side
//! bearing plus the kerning plus the second one's left side bearing, as the font says (plotters'
//! own ab_glyph drawing drops the left bearing and gets "m ean").

use ab_glyph::{Font, ScaleFont};
use plotters::prelude::*;
use plotters_backend::FontStyle;

mod common;

/// Ink runs along the text direction (x, or upwards for rotated text): [start, end) pixels.
fn ink_runs(px: &[[u8; 3]], w: u32, rotated: bool) -> Vec<(i64, i64)> {
    let mut runs = Vec::new();
    let mut start = None;
    for i in 0..w {
        let ink = (0..w).any(|j| {
            let (x, y) = if rotated { (j, w - 1 - i) } else { (i, j) };
            px[(y * w + x) as usize][0] < 200
        });
        match (ink, start) {
            (true, None) => start = Some(i as i64),
            (false, Some(s)) => {
                runs.push((s, i as i64));
                start = None
            }
            _ => {}
        }
    }
    runs
}

#[test]
fn letters_are_spaced_by_their_side_bearings() {
    let (text, size) = ("mean entropy", 30.0);
    let face = gmvae_plot::text::face(FontStyle::Normal);
    let font = face.as_scaled(size as f32);
    let k = font.h_scale_factor();
    let ink = |c: char| {
        let b = face.outline(font.glyph_id(c)).unwrap().bounds;
        (b.min.x * k, b.max.x * k)
    };
    // The font's gap between consecutive letters (a space adds its advance).
    let letters: Vec<char> = text.chars().filter(|c| *c != ' ').collect();
    let ideal: Vec<f32> = letters
        .windows(2)
        .map(|p| {
            let (a, b) = (font.glyph_id(p[0]), font.glyph_id(p[1]));
            let joined = text.contains(&format!("{}{}", p[0], p[1]));
            let space = if joined {
                0.0
            } else {
                font.h_advance(font.glyph_id(' '))
            };
            font.h_advance(a) - ink(p[0]).1 + font.kern(a, b) + space + ink(p[1]).0
        })
        .collect();
    let d = tempfile::tempdir().unwrap();
    for rotated in [false, true] {
        let out = d.path().join(format!("t{rotated}.png"));
        let w = 400u32;
        gmvae_plot::render_png(&out, (w, w), |root| {
            let mut font = ("sans-serif", size).into_font().color(&BLACK);
            if rotated {
                font = font.transform(FontTransform::Rotate270);
            }
            root.draw(&Text::new(text.to_string(), (20, 350), font))
                .map_err(gmvae_plot::plot_err)?;
            Ok(())
        })
        .unwrap();
        let (_, _, px) = common::decode(&out);
        let runs = ink_runs(&px, w, rotated);
        assert_eq!(runs.len(), letters.len(), "letters touch: {runs:?}");
        for (i, (r, want)) in runs.windows(2).zip(&ideal).enumerate() {
            let gap = (r[1].0 - r[0].1) as f32;
            // Anti-aliased edges count as ink, so a gap may read up to a pixel and a half short.
            assert!(
                (-1.5..=0.5).contains(&(gap - want)),
                "rotated {rotated}: gap {gap} px between {:?} and {:?}, the font says {want:.1}",
                letters[i],
                letters[i + 1]
            );
        }
    }
}
