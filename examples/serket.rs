//! Runs the Serket pipelines until `gmvae serket …` is wired in `src/main.rs`:
//! `cargo run --release --example serket -- vae-gmm --seed 0`.

use clap::Parser;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: gmvae::serket::cli::SerketArgs,
}

fn main() -> anyhow::Result<()> {
    gmvae::serket::cli::run(&Cli::parse().args)
}
