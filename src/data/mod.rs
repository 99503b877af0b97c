//! Data sets: the spiral (built-in generator, the original `spiral.t7`, its CSV), MNIST (IDX) and
//! SVHN (`.mat`), and your own tables (`table`). Everything is loaded into host memory as f32 rows y of length Dy.

pub mod mnist;
pub mod npy;
pub mod reader;
pub mod scale;
pub mod spiral;
pub mod svhn;
pub mod table;

use anyhow::{bail, Result};

/// One split: N observations y (row-major `[N, Dy]`) and, when known, their labels.
#[derive(Debug, Clone, PartialEq)]
pub struct Split {
    pub y: Vec<f32>,
    pub labels: Option<Vec<usize>>,
    pub n: usize,
}

impl Split {
    pub fn new(y: Vec<f32>, labels: Option<Vec<usize>>, dy: usize) -> Result<Self> {
        if dy == 0 || !y.len().is_multiple_of(dy) {
            bail!("{} values do not make rows of {dy}", y.len());
        }
        let n = y.len() / dy;
        if let Some(l) = &labels {
            if l.len() != n {
                bail!("{n} observations but {} labels", l.len());
            }
        }
        Ok(Self { y, labels, n })
    }

    /// The first `n` observations.
    pub fn head(&self, n: usize, dy: usize) -> Self {
        let n = n.min(self.n);
        Self {
            y: self.y[..n * dy].to_vec(),
            labels: self.labels.as_ref().map(|l| l[..n].to_vec()),
            n,
        }
    }
}

/// A data set ready for training.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    pub name: String,
    pub dy: usize,
    /// (C, H, W) for images.
    pub image_shape: Option<[usize; 3]>,
    pub train: Split,
    /// The held-out split; `None` means "evaluate on the training data" (the spiral).
    pub test: Option<Split>,
}

/// What the networks need to know of a data set: Dy and, for images, (C, H, W).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataShape {
    pub dy: usize,
    pub image_shape: Option<[usize; 3]>,
}

impl DataShape {
    /// Flat rows of `dy` values.
    pub fn flat(dy: usize) -> Self {
        Self {
            dy,
            image_shape: None,
        }
    }

    /// Images of (C, H, W).
    pub fn image(shape: [usize; 3]) -> Self {
        Self {
            dy: shape.iter().product(),
            image_shape: Some(shape),
        }
    }
}

impl Dataset {
    /// The shape of one observation.
    pub fn shape(&self) -> DataShape {
        DataShape {
            dy: self.dy,
            image_shape: self.image_shape,
        }
    }

    /// The split used for test scores and dumps.
    pub fn eval_split(&self) -> &Split {
        self.test.as_ref().unwrap_or(&self.train)
    }
}
