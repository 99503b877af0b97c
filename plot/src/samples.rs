//! Samples grid from a run's checkpoint (upstream `visualGen`): K rows of decodes of
//! x ~ N(mu_k(0), sigma_k(0)). The trainer writes `samples.png` itself with `--visual-gen N`;
//! this redraws one for any run that has a checkpoint, e.g. one trained without the flag.

use anyhow::{bail, Result};
use gmvae::data::{Dataset, Split};
use gmvae::optim::Adam;
use gmvae::options::{DataSet, Options};
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
    let (dy, image_shape) = match opts.data_set {
        DataSet::Mnist => (784, [1, 28, 28]),
        DataSet::Svhn => (3072, [3, 32, 32]),
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
    let shape_only = Dataset {
        name: format!("{:?}", opts.data_set).to_lowercase(),
        dy,
        image_shape: Some(image_shape),
        train: Split::new(Vec::new(), None, dy)?,
        test: None,
    };
    let device = candle_core::Device::Cpu;
    let model = gmvae::train::Model::new(&opts, &shape_only, &device)?;
    let mut adam = Adam::new(model.trainable(), opts.adam_config())?;
    let epoch = gmvae::checkpoint::load(&checkpoint_path(run_dir), &model.vars, &mut adam)?;
    let mut rng = gmvae::rng::rng(seed.unwrap_or(opts.seed), STREAM);
    let images = gmvae::train::component_samples(&model, &opts, cols, &mut rng, &device)?;
    Ok(Samples {
        images,
        k: opts.k,
        image_shape,
        epoch,
    })
}
