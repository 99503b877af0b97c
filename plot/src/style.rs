//! Fonts, colours and markers shared by every picture, so a cluster has the same colour everywhere.

use plotters::prelude::*;
use plotters::style::FontStyle;
use std::sync::Once;

/// Registers the embedded DejaVu Sans as "sans-serif": with ab_glyph plotters has no font until
/// one is registered, and the machine may have no system fonts at all.
pub fn register_fonts() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The bytes are a known-good TTF compiled into the binary, so failure is a build bug.
        plotters::style::register_font("sans-serif", FontStyle::Normal, dejavu::sans::regular())
            .map_err(|_| "DejaVu Sans regular")
            .and_then(|_| {
                plotters::style::register_font("sans-serif", FontStyle::Bold, dejavu::sans::bold())
                    .map_err(|_| "DejaVu Sans bold")
            })
            .unwrap_or_else(|f| panic!("embedded font {f} failed to load"));
    });
}

/// Tableau 10 then its light companions: qualitative and colour-blind tolerant. Upstream drew
/// random colours seeded 11; a fixed palette is deterministic and readable.
const PALETTE: [(u8, u8, u8); 20] = [
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
    (188, 189, 34),
    (23, 190, 207),
    (174, 199, 232),
    (255, 187, 120),
    (152, 223, 138),
    (255, 152, 150),
    (197, 176, 213),
    (196, 156, 148),
    (247, 182, 210),
    (199, 199, 199),
    (219, 219, 141),
    (158, 218, 229),
];

/// Colour of cluster (or label) `i`; past the palette, hues step by the golden angle.
pub fn color(i: usize) -> RGBColor {
    match PALETTE.get(i) {
        Some(&(r, g, b)) => RGBColor(r, g, b),
        None => {
            let hue = (i as f64 * 0.618_033_988_75).fract();
            let (r, g, b) = hsl_to_rgb(hue, 0.65, 0.45);
            RGBColor(r, g, b)
        }
    }
}

fn hsl_to_rgb(h: f64, s: f64, l: f64) -> (u8, u8, u8) {
    let c = (1.0 - (2.0 * l - 1.0).abs()) * s;
    let hp = h * 6.0;
    let x = c * (1.0 - (hp % 2.0 - 1.0).abs());
    let (r, g, b) = match hp as u32 {
        0 => (c, x, 0.0),
        1 => (x, c, 0.0),
        2 => (0.0, c, x),
        3 => (0.0, x, c),
        4 => (x, 0.0, c),
        _ => (c, 0.0, x),
    };
    let m = l - c / 2.0;
    let to = |v: f64| ((v + m) * 255.0).round().clamp(0.0, 255.0) as u8;
    (to(r), to(g), to(b))
}

pub fn title_font() -> TextStyle<'static> {
    ("sans-serif", 22).into_font().style(FontStyle::Bold).into()
}

pub fn label_font() -> TextStyle<'static> {
    ("sans-serif", 16).into_font().color(&BLACK)
}

pub fn heading_font() -> TextStyle<'static> {
    ("sans-serif", 16).into_font().style(FontStyle::Bold).into()
}

pub fn small_font() -> TextStyle<'static> {
    ("sans-serif", 13).into_font().color(&BLACK)
}

/// Vertices of a five-pointed star of outer radius `r` pixels, centred on the origin.
pub fn star(r: f64) -> Vec<(i32, i32)> {
    (0..10)
        .map(|i| {
            let rad = if i % 2 == 0 { r } else { r * 0.42 };
            let a = std::f64::consts::PI * (i as f64 / 5.0 - 0.5);
            (
                (rad * a.cos()).round() as i32,
                (rad * a.sin()).round() as i32,
            )
        })
        .collect()
}

/// One legend entry.
pub enum Marker {
    Dot(RGBColor),
    Star,
    Line(RGBColor),
    Bar(RGBColor),
}

/// Draws a legend as its own panel (beside the chart rather than over it, so it never hides
/// points); entries shrink to fit when there are many clusters.
pub fn draw_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    heading: &str,
    entries: &[(Marker, String)],
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let (_, h) = area.dim_in_pixel();
    area.draw(&Text::new(heading.to_string(), (8, 10), heading_font()))?;
    let top = 38i32;
    let avail = (h as i32 - top - 10).max(1);
    let step = (avail / entries.len().max(1) as i32).clamp(6, 22);
    let font_px = (step - 4).clamp(7, 15) as u32;
    let font = ("sans-serif", font_px).into_font().color(&BLACK);
    for (i, (marker, text)) in entries.iter().enumerate() {
        let y = top + i as i32 * step;
        if y + step / 2 > h as i32 {
            area.draw(&Text::new("...".to_string(), (30, y), font.clone()))?;
            break;
        }
        let cy = y + step / 2 - 1;
        match marker {
            Marker::Dot(c) => area.draw(&Circle::new((18, cy), 5, c.filled()))?,
            Marker::Star => {
                let pts = star(8.0)
                    .into_iter()
                    .map(|(x, y)| (x + 18, y + cy))
                    .collect::<Vec<_>>();
                area.draw(&Polygon::new(pts, BLACK.filled()))?
            }
            Marker::Line(c) => area.draw(&PathElement::new(
                vec![(8, cy), (28, cy)],
                c.stroke_width(2),
            ))?,
            Marker::Bar(c) => {
                area.draw(&Rectangle::new([(10, cy - 5), (26, cy + 5)], c.filled()))?
            }
        }
        area.draw(&Text::new(
            text.clone(),
            (34, cy - font_px as i32 / 2),
            font.clone(),
        ))?;
    }
    Ok(())
}
