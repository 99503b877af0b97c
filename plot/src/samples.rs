//! Samples grid from a run's checkpoint (upstream `visualGen`): K rows of decodes of
//! x ~ N(mu_k(0), sigma_k(0)). The trainer writes `samples.png` itself with `--visual-gen N`;
//! this redraws one for any run that has a checkpoint, e.g. one trained without the flag.

use crate::{plot_err, render_png, style};
use anyhow::{bail, Result};
use gmvae::optim::Adam;
use gmvae::options::{DataSet, Options};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::Path;

/// Random stream of the plot tool's own draws, apart from the trainer's streams.
const STREAM: u64 = 0x5A;

/// Decoded samples: `k * cols` images in row-major grid order, the image shape, and the epoch
/// of the checkpoint they come from.
pub struct Samples {
    pub images: Vec<f32>,
    pub k: usize,
    pub image_shape: [usize; 3],
    pub epoch: usize,
}

pub fn checkpoint_path(run_dir: &Path) -> std::path::PathBuf {
    run_dir.join(gmvae::checkpoint::FILE)
}

/// Rebuilds the run's model from `opts.json` and `checkpoint.safetensors` and decodes `cols`
/// samples of every component at w = 0 (BatchNorm in eval mode, as upstream's evaluate()).
pub fn from_checkpoint(run_dir: &Path, cols: usize, seed: Option<u64>) -> Result<Samples> {
    let opts = Options::load(run_dir)?;
    let image_shape = match opts.data_set {
        DataSet::Mnist => [1, 28, 28],
        DataSet::Svhn => [3, 32, 32],
        DataSet::Spiral => {
            bail!("the samples grid is for image data; this run trained on the spiral")
        }
        DataSet::Table => {
            bail!("the samples grid is for image data; this run trained on a table of points")
        }
    };
    gmvae::limits::count("--cols", cols, gmvae::limits::MAX_GRID_COLS)?;
    let [c, h, w] = image_shape;
    gmvae::limits::product(
        "--cols: the samples grid (K x cols images)",
        &[opts.k, cols, c, h, w],
        gmvae::limits::MAX_PICTURE_PIXELS,
    )?;
    // The model only needs the data's shape, not the data: no need for the data set's files.
    let shape = gmvae::data::DataShape::image(image_shape);
    let device = candle_core::Device::Cpu;
    let model = gmvae::model::Model::new(&opts, &shape, &device)?;
    let mut adam = Adam::new(model.trainable(), opts.adam_config())?;
    let epoch = gmvae::checkpoint::load(&checkpoint_path(run_dir), &model.vars, &mut adam)?;
    let mut rng = gmvae::rng::rng(seed.unwrap_or(opts.seed), STREAM);
    let images = gmvae::model::component_samples(&model, &opts, cols, &mut rng, &device)?;
    Ok(Samples {
        images,
        k: opts.k,
        image_shape,
        epoch,
    })
}

/// Where [`render_samples`] put the grid: its top-left pixel and the size of one cell (an image
/// plus the gap after it).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GridLayout {
    pub left: u32,
    pub top: u32,
    pub cell: (u32, u32),
}

/// Draws `s` as a labelled grid: row k holds component k's samples (labelled `z = k` on the
/// left), column j sample j (numbered on top).
pub fn render_samples(s: &Samples, cols: usize, out: &Path) -> Result<GridLayout> {
    let [c, h, w] = s.image_shape;
    let dy = c * h * w;
    if s.images.len() != s.k * cols * dy {
        bail!(
            "internal: {} sample values, expected K {} x {cols} x {dy}",
            s.images.len(),
            s.k
        );
    }
    // Small images (MNIST's 28 px) are scaled up so the grid is readable.
    let scale = (56 / h.max(w)).max(1);
    let gap = 4usize;
    let (cw, ch) = (w * scale + gap, h * scale + gap);
    let (left, top, margin) = (70usize, 74usize, 16usize);
    let title = format!("Samples of each component z at w = 0 (epoch {})", s.epoch);
    // Room for the title too (about 9 px a character in the bold 16 px heading font).
    let width = (left + cols * cw + margin).max(32 + 9 * title.len());
    let height = top + s.k * ch + margin;
    let layout = GridLayout {
        left: left as u32,
        top: top as u32,
        cell: (cw as u32, ch as u32),
    };
    render_png(out, (width as u32, height as u32), |root| {
        root.draw(&Text::new(title.clone(), (16, 12), style::heading_font()))
            .map_err(plot_err)?;
        let centre = |anchor_h| style::small_font().pos(Pos::new(anchor_h, VPos::Center));
        root.draw(&Text::new(
            "sample".to_string(),
            (left as i32, top as i32 - 36),
            centre(HPos::Left),
        ))
        .map_err(plot_err)?;
        for j in 0..cols {
            let x = (left + j * cw + w * scale / 2) as i32;
            root.draw(&Text::new(
                (j + 1).to_string(),
                (x, top as i32 - 14),
                centre(HPos::Center),
            ))
            .map_err(plot_err)?;
        }
        for k in 0..s.k {
            let y = top + k * ch;
            root.draw(&Text::new(
                format!("z = {k}"),
                (left as i32 - 10, (y + h * scale / 2) as i32),
                centre(HPos::Right),
            ))
            .map_err(plot_err)?;
            for j in 0..cols {
                let i = k * cols + j;
                let img = &s.images[i * dy..(i + 1) * dy];
                let pos = ((left + j * cw) as i32, y as i32);
                let size = ((w * scale) as u32, (h * scale) as u32);
                let rgb = crate::recon::image_rgb(img, s.image_shape, scale);
                let bitmap: BitMapElement<'_, _> = BitMapElement::with_owned_buffer(pos, size, rgb)
                    .ok_or_else(|| anyhow::anyhow!("internal: bitmap buffer size"))?;
                root.draw(&bitmap).map_err(plot_err)?;
            }
        }
        Ok(())
    })?;
    Ok(layout)
}
