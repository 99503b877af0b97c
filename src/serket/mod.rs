//! Serket baselines (naka-lab/Serket): separate generative modules — a VAE, a GMM and a
//! multimodal LDA — that exchange forward and backward messages, as in the "VAE+GMM" and
//! "VAE+GMM+MLDA" tutorials (`../shared/reference/serket-upstream.md`).

pub mod accuracy;
pub mod cli;
pub mod data;
pub mod framework;
pub mod gmm;
pub mod mlda;
pub mod vae;

pub use framework::{Module, Node, Observation, Serket};
