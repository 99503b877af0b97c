//! gmvae: deep unsupervised clustering with Gaussian-mixture variational autoencoders
//! (Dilokthanakul et al. 2016, arXiv:1611.02648) on candle, with Serket's modular baselines.

pub mod alloc;
pub mod atomic;
pub mod augment;
pub mod checkpoint;
pub mod cli;
pub mod data;
pub mod device;
pub mod dump;
pub mod epoch;
pub mod evaluate;
pub mod export;
pub mod flag_use;
pub mod guard;
pub mod hooks;
pub mod limits;
pub mod metrics;
pub mod model;
pub mod objective;
pub mod optim;
pub mod options;
pub mod perf;
pub mod predict;
pub mod pretrain;
pub mod record;
pub mod restarts;
pub mod rng;
pub mod run_data;
pub mod run_lock;
pub mod serket;
pub mod train;
pub mod visual;
