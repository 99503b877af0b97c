//! The one seeded random source. candle's CPU RNG cannot be seeded, so weight init, data
//! shuffling, generated data and reparameterisation noise all draw from a `StdRng` made here
//! (ChaCha12: the same stream on every platform).

use candle_core::{Device, Result, Shape, Tensor};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;

pub use rand::rngs::StdRng;

/// A generator for `seed`; `stream` separates independent uses of one seed (init, data, noise)
/// so that adding draws to one does not shift the others.
pub fn rng(seed: u64, stream: u64) -> StdRng {
    StdRng::seed_from_u64(seed ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// Streams of [`rng`].
pub mod stream {
    pub const INIT: u64 = 1;
    pub const DATA: u64 = 2;
    pub const SHUFFLE: u64 = 3;
    pub const NOISE: u64 = 4;
    pub const VISUAL: u64 = 5;
    pub const BINARIZE: u64 = 6;
    /// `--pretrain-epochs`: the autoencoder's shuffles and binarisation, the mixture fit and the
    /// q(z|y) fit.
    pub const PRETRAIN: u64 = 7;
    pub const PRETRAIN_BINARIZE: u64 = 8;
    pub const PRETRAIN_GMM: u64 = 9;
    pub const PRETRAIN_QZ: u64 = 10;
    /// `--n-init`: the seeds of the restarts after the first.
    pub const RESTARTS: u64 = 11;
    /// `--augment-weight`: the transforms T of the training images.
    pub const AUGMENT: u64 = 12;
}

/// A tensor of i.i.d. N(0, 1) draws.
pub fn randn<S: Into<Shape>>(rng: &mut StdRng, shape: S, device: &Device) -> Result<Tensor> {
    let shape = shape.into();
    let v: Vec<f32> = (0..shape.elem_count())
        .map(|_| rng.sample(StandardNormal))
        .collect();
    Tensor::from_vec(v, shape, device)
}

/// A tensor of i.i.d. U(lo, hi) draws.
pub fn uniform<S: Into<Shape>>(
    rng: &mut StdRng,
    lo: f32,
    hi: f32,
    shape: S,
    device: &Device,
) -> Result<Tensor> {
    let shape = shape.into();
    let v: Vec<f32> = (0..shape.elem_count())
        .map(|_| rng.random_range(lo..=hi))
        .collect();
    Tensor::from_vec(v, shape, device)
}

/// A random permutation of `0..n`.
pub fn permutation(rng: &mut StdRng, n: usize) -> Vec<usize> {
    let mut p: Vec<usize> = (0..n).collect();
    p.shuffle(rng);
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_numbers_streams_differ() {
        let a = randn(&mut rng(7, stream::NOISE), 5, &Device::Cpu)
            .unwrap()
            .to_vec1::<f32>();
        let b = randn(&mut rng(7, stream::NOISE), 5, &Device::Cpu)
            .unwrap()
            .to_vec1::<f32>();
        let c = randn(&mut rng(7, stream::INIT), 5, &Device::Cpu)
            .unwrap()
            .to_vec1::<f32>();
        assert_eq!(a.as_ref().unwrap(), b.as_ref().unwrap());
        assert_ne!(a.unwrap(), c.unwrap());
        let p = permutation(&mut rng(1, stream::SHUFFLE), 10);
        let mut s = p.clone();
        s.sort();
        assert_eq!(s, (0..10).collect::<Vec<_>>());
    }
}
