//! Image grids for humans: upstream's `samples.png` (visualGen, gmvae-upstream.md §6), written by
//! the trainer with `--visual-gen N`, and the PNG encoder the plot binaries share.

use anyhow::{bail, Context, Result};
use std::path::Path;

/// Encodes 8-bit pixels (`channels` = 1 grey, 3 RGB, interleaved, row-major) as PNG bytes.
pub fn encode_png(width: usize, height: usize, channels: usize, pixels: &[u8]) -> Result<Vec<u8>> {
    let color = match channels {
        1 => png::ColorType::Grayscale,
        3 => png::ColorType::Rgb,
        c => bail!("cannot encode a PNG with {c} channels (need 1 or 3)"),
    };
    if pixels.len() != width * height * channels {
        bail!(
            "{} pixel bytes do not fill a {width}x{height}x{channels} image",
            pixels.len()
        );
    }
    let (w, h) = (u32::try_from(width)?, u32::try_from(height)?);
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, w, h);
        enc.set_color(color);
        enc.set_depth(png::BitDepth::Eight);
        // Plots are mostly flat colour: adaptive filtering makes them several times smaller.
        enc.set_compression(png::Compression::Best);
        enc.set_adaptive_filter(png::AdaptiveFilterType::Adaptive);
        let mut writer = enc.write_header().context("cannot write the PNG header")?;
        writer
            .write_image_data(pixels)
            .context("cannot encode the PNG")?;
    }
    Ok(out)
}

/// Writes `rows * cols` images as one grid PNG, atomically (a viewer left open beside training
/// never sees half a file).
///
/// `images` is row-major over the grid; each image is `C*H*W` values in [0, 1] in CHW order
/// (`image_shape` = `[C, H, W]`, C = 1 or 3). The grid is `rows*H` by `cols*W` pixels with no
/// border, as upstream's `samples.png`. Values outside [0, 1] are clamped and NaN is drawn black.
pub fn write_samples_grid(
    path: &Path,
    images: &[f32],
    rows: usize,
    cols: usize,
    image_shape: [usize; 3],
) -> Result<()> {
    let [c, h, w] = image_shape;
    if c != 1 && c != 3 {
        bail!("samples grid: images need 1 or 3 channels, got {c}");
    }
    let per = c * h * w;
    if rows == 0 || cols == 0 || per == 0 {
        bail!("samples grid: empty grid ({rows}x{cols} images of {c}x{h}x{w})");
    }
    if images.len() != rows * cols * per {
        bail!(
            "samples grid: {} values do not make {rows}x{cols} images of {c}x{h}x{w}",
            images.len()
        );
    }
    let (gw, gh) = (cols * w, rows * h);
    let mut pixels = vec![0u8; gw * gh * c];
    for (idx, img) in images.chunks_exact(per).enumerate() {
        let (r, col) = (idx / cols, idx % cols);
        for ch in 0..c {
            for y in 0..h {
                for x in 0..w {
                    let v = img[ch * h * w + y * w + x];
                    let byte = if v.is_nan() {
                        0
                    } else {
                        (v.clamp(0.0, 1.0) * 255.0).round() as u8
                    };
                    let (gy, gx) = (r * h + y, col * w + x);
                    pixels[(gy * gw + gx) * c + ch] = byte;
                }
            }
        }
    }
    let bytes = encode_png(gw, gh, c, &pixels)?;
    crate::atomic::write(path, &bytes)
        .with_context(|| format!("cannot write the samples grid {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(path: &Path) -> (png::OutputInfo, Vec<u8>) {
        let dec = png::Decoder::new(std::fs::File::open(path).unwrap());
        let mut reader = dec.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut buf).unwrap();
        buf.truncate(info.buffer_size());
        (info, buf)
    }

    #[test]
    fn grey_grid_places_each_image_in_its_cell() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("samples.png");
        let (rows, cols, h, w) = (3, 4, 5, 6);
        // Image i is a flat grey of level i/11, with its top-left pixel white.
        let mut images = Vec::new();
        for i in 0..rows * cols {
            let mut img = vec![i as f32 / 11.0; h * w];
            img[0] = 1.0;
            images.extend(img);
        }
        write_samples_grid(&path, &images, rows, cols, [1, h, w]).unwrap();
        let (info, buf) = decode(&path);
        assert_eq!(
            (info.width, info.height),
            ((cols * w) as u32, (rows * h) as u32)
        );
        assert_eq!(info.color_type, png::ColorType::Grayscale);
        for i in 0..rows * cols {
            let (y0, x0) = ((i / cols) * h, (i % cols) * w);
            let px = |y: usize, x: usize| buf[y * cols * w + x];
            assert_eq!(px(y0, x0), 255, "image {i} top-left");
            assert_eq!(
                px(y0 + h - 1, x0 + w - 1),
                (i as f32 / 11.0 * 255.0).round() as u8
            );
        }
    }

    #[test]
    fn rgb_grid_uses_chw_order_and_clamps() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rgb.png");
        // One 1x2 image: channel planes R = [2, 0], G = [0, NaN], B = [0, -1].
        let img = [2.0, 0.0, 0.0, f32::NAN, 0.0, -1.0];
        write_samples_grid(&path, &img, 1, 1, [3, 1, 2]).unwrap();
        let (info, buf) = decode(&path);
        assert_eq!((info.width, info.height), (2, 1));
        assert_eq!(buf, vec![255, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn wrong_lengths_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.png");
        assert!(write_samples_grid(&path, &[0.0; 10], 2, 2, [1, 2, 2]).is_err());
        assert!(write_samples_grid(&path, &[0.0; 8], 1, 1, [2, 2, 2]).is_err());
        assert!(!path.exists());
    }
}
