//! `gmvae serket <pipeline>`.

use anyhow::{bail, Result};

/// Arguments of `gmvae serket`.
#[derive(Debug, clap::Args)]
pub struct SerketArgs {
    #[command(subcommand)]
    pub pipeline: Pipeline,
}

/// The two tutorial pipelines.
#[derive(Debug, clap::Subcommand)]
pub enum Pipeline {
    /// VAE + GMM on the 3000 MNIST images.
    VaeGmm,
    /// VAE + GMM + MLDA on the images and the paired speech features.
    VaeGmmMlda,
}

/// Runs a pipeline.
pub fn run(args: &SerketArgs) -> Result<()> {
    bail!("serket pipeline {:?} is not implemented yet", args.pipeline)
}
