//! Fonts, colours, markers and the chart frame shared by every picture, so a cluster has the same
//! colour everywhere and the scatter and bar pictures line up.

use plotters::chart::MeshStyle;
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::coord::Shift;
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

/// Width of the legend panel at the right of the scatter pictures.
pub const LEGEND_WIDTH: u32 = 190;

/// Splits `area` into the chart's area and, `legend_width` pixels wide at its right, the legend's.
pub fn split_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    legend_width: u32,
) -> (DrawingArea<DB, Shift>, DrawingArea<DB, Shift>) {
    area.split_horizontally(area.dim_in_pixel().0 - legend_width)
}

/// A 2-D chart with axes over the ranges `X` and `Y`.
pub type Chart<'a, DB, X, Y> = ChartContext<
    'a,
    DB,
    Cartesian2d<<X as AsRangedCoord>::CoordDescType, <Y as AsRangedCoord>::CoordDescType>,
>;

/// A chart filling `area` in the frame the scatter and bar pictures share: `caption` above it, the
/// same margin and axis-label areas, axes over `x` and `y`.
pub fn chart<'a, DB: DrawingBackend, X: AsRangedCoord, Y: AsRangedCoord>(
    area: &'a DrawingArea<DB, Shift>,
    caption: &str,
    caption_font: TextStyle<'static>,
    x: X,
    y: Y,
) -> Result<Chart<'a, DB, X, Y>, DrawingAreaErrorKind<DB::ErrorType>> {
    ChartBuilder::on(area)
        .caption(caption, caption_font)
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d(x, y)
}

/// The chart's axes, described `x_desc` and `y_desc`, in the pictures' fonts; the caller adds its
/// own options and draws it.
pub fn mesh<'a, 'b, DB: DrawingBackend, X, Y>(
    chart: &'b mut ChartContext<'a, DB, Cartesian2d<X, Y>>,
    x_desc: &str,
    y_desc: &str,
) -> MeshStyle<'a, 'b, X, Y, DB>
where
    X: Ranged + ValueFormatter<X::ValueType>,
    Y: Ranged + ValueFormatter<Y::ValueType>,
{
    let mut mesh = chart.configure_mesh();
    mesh.x_desc(x_desc)
        .y_desc(y_desc)
        .axis_desc_style(label_font())
        .label_style(small_font());
    mesh
}

/// A scatter chart: `chart`'s frame with axes over `x` and `y`, each with its description, drawn
/// without the light grid lines, which would clutter the points.
pub fn scatter_chart<'a, DB: DrawingBackend, X: AsRangedCoord, Y: AsRangedCoord>(
    area: &'a DrawingArea<DB, Shift>,
    caption: &str,
    caption_font: TextStyle<'static>,
    (x, x_desc): (X, &str),
    (y, y_desc): (Y, &str),
) -> Result<Chart<'a, DB, X, Y>, DrawingAreaErrorKind<DB::ErrorType>>
where
    X::CoordDescType: ValueFormatter<<X::CoordDescType as Ranged>::ValueType>,
    Y::CoordDescType: ValueFormatter<<Y::CoordDescType as Ranged>::ValueType>,
{
    let mut chart = self::chart(area, caption, caption_font, x, y)?;
    mesh(&mut chart, x_desc, y_desc)
        .light_line_style(WHITE.mix(0.0))
        .draw()?;
    Ok(chart)
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

/// Draws a legend in its own panel `area` (beside the chart rather than over it, so it never
/// hides points), inset from the panel's edges; entries shrink to fit when there are many
/// clusters.
pub fn draw_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    heading: &str,
    entries: &[(Marker, String)],
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    // Below the chart's caption, clear of its right edge.
    let area = area.margin(50, 10, 0, 5);
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
