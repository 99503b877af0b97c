//! Serket baselines (naka-lab/Serket): modular VAE, GMM and MLDA exchanging messages.

pub mod cli;
