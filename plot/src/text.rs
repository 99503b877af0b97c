//! Text with correct letter spacing. plotters 0.3.7 draws ab_glyph text with each glyph's ink
//! starting at the pen position, dropping its left side bearing: the gap after a letter becomes
//! its own two side bearings instead of its right bearing plus the next letter's left one, so
//! wide-bearing letters stand apart ("m ean"). [`Typeset`] wraps the bitmap backend and draws
//! text itself, with the same layout box (so anchors and plotters' size estimates still agree);
//! every other primitive passes straight through.

use ab_glyph::{Font, FontRef, ScaleFont};
use plotters::prelude::BitMapBackend;
use plotters_backend::text_anchor::{HPos, VPos};
use plotters_backend::{
    BackendColor, BackendCoord, BackendStyle, BackendTextStyle, DrawingBackend, DrawingErrorKind,
    FontStyle,
};
use std::sync::OnceLock;

/// The embedded DejaVu Sans face of a style (the one `style::register_fonts` gives plotters).
pub fn face(style: FontStyle) -> &'static FontRef<'static> {
    static REGULAR: OnceLock<FontRef<'static>> = OnceLock::new();
    static BOLD: OnceLock<FontRef<'static>> = OnceLock::new();
    let (cell, bytes) = match style {
        FontStyle::Bold => (&BOLD, dejavu::sans::bold()),
        _ => (&REGULAR, dejavu::sans::regular()),
    };
    // A known-good TTF compiled into the binary: failure is a build bug.
    cell.get_or_init(|| FontRef::try_from_slice(bytes).expect("embedded DejaVu Sans"))
}

/// Coverage of every inked pixel of `text` at `size` px: (x, y, coverage), x from the pen's
/// start, y as plotters places it (so the layout box is unchanged).
pub fn rasterize(text: &str, size: f64, style: FontStyle) -> Vec<(i32, i32, f32)> {
    let font = face(style).as_scaled(size as f32);
    let mut pen = 0f32;
    let mut prev = None;
    let mut out = Vec::new();
    for c in text.chars() {
        let id = font.glyph_id(c);
        if let Some(p) = prev {
            pen += font.kern(p, id);
        }
        let glyph = id.with_scale_and_position(font.scale(), ab_glyph::point(pen, 0.0));
        if let Some(q) = font.outline_glyph(glyph) {
            let r = q.px_bounds();
            // plotters' vertical placement: half the size above the glyph's top.
            let y0 = (size as f32 / 2.0 + r.min.y) as i32;
            q.draw(|x, y, cov| out.push((r.min.x as i32 + x as i32, y0 + y as i32, cov)));
        }
        pen += font.h_advance(id);
        prev = Some(id);
    }
    out
}

/// A bitmap backend whose text keeps each glyph's side bearings.
pub struct Typeset<'a>(pub BitMapBackend<'a>);

type Res<'a> = Result<(), DrawingErrorKind<<BitMapBackend<'a> as DrawingBackend>::ErrorType>>;

impl<'a> DrawingBackend for Typeset<'a> {
    type ErrorType = <BitMapBackend<'a> as DrawingBackend>::ErrorType;

    fn get_size(&self) -> (u32, u32) {
        self.0.get_size()
    }
    fn ensure_prepared(&mut self) -> Res<'a> {
        self.0.ensure_prepared()
    }
    fn present(&mut self) -> Res<'a> {
        self.0.present()
    }
    fn draw_pixel(&mut self, p: BackendCoord, c: BackendColor) -> Res<'a> {
        self.0.draw_pixel(p, c)
    }
    fn draw_line<S: BackendStyle>(&mut self, a: BackendCoord, b: BackendCoord, s: &S) -> Res<'a> {
        self.0.draw_line(a, b, s)
    }
    fn draw_rect<S: BackendStyle>(
        &mut self,
        a: BackendCoord,
        b: BackendCoord,
        s: &S,
        fill: bool,
    ) -> Res<'a> {
        self.0.draw_rect(a, b, s, fill)
    }
    fn draw_path<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        path: I,
        s: &S,
    ) -> Res<'a> {
        self.0.draw_path(path, s)
    }
    fn draw_circle<S: BackendStyle>(
        &mut self,
        c: BackendCoord,
        r: u32,
        s: &S,
        fill: bool,
    ) -> Res<'a> {
        self.0.draw_circle(c, r, s, fill)
    }
    fn fill_polygon<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        vert: I,
        s: &S,
    ) -> Res<'a> {
        self.0.fill_polygon(vert, s)
    }
    fn blit_bitmap(&mut self, pos: BackendCoord, size: (u32, u32), src: &[u8]) -> Res<'a> {
        self.0.blit_bitmap(pos, size, src)
    }

    /// plotters' own `draw_text` (anchor, transform, clipping), with [`rasterize`]'s glyphs.
    fn draw_text<T: BackendTextStyle>(
        &mut self,
        text: &str,
        style: &T,
        pos: BackendCoord,
    ) -> Res<'a> {
        let color = style.color();
        if color.alpha == 0.0 {
            return Ok(());
        }
        let ((min_x, min_y), (max_x, max_y)) = style
            .layout_box(text)
            .map_err(|e| DrawingErrorKind::FontError(Box::new(e)))?;
        let (width, height) = (max_x - min_x, max_y - min_y);
        let dx = match style.anchor().h_pos {
            HPos::Left => 0,
            HPos::Right => -width,
            HPos::Center => -width / 2,
        };
        let dy = match style.anchor().v_pos {
            VPos::Top => 0,
            VPos::Center => -height / 2,
            VPos::Bottom => -height,
        };
        let trans = style.transform();
        let (w, h) = self.get_size();
        for (x, y, cov) in rasterize(text, style.size(), style.style()) {
            let (x, y) = trans.transform(x + dx - min_x, y + dy - min_y);
            let (x, y) = (pos.0 + x, pos.1 + y);
            if x >= 0 && x < w as i32 && y >= 0 && y < h as i32 {
                self.0.draw_pixel((x, y), color.mix(cov as f64))?;
            }
        }
        Ok(())
    }
}
