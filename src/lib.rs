//! gmvae: deep unsupervised clustering with Gaussian-mixture variational autoencoders
//! (Dilokthanakul et al. 2016, arXiv:1611.02648) on candle, with Serket's modular baselines.

pub mod device;
pub mod metrics;
pub mod optim;
pub mod rng;
pub mod atomic;
pub mod dump;
pub mod visual;
pub mod serket;
pub mod objective;
pub mod data;
pub mod checkpoint;
pub mod options;
pub mod train;
pub mod cli;
