//! Serket baselines (naka-lab/Serket): separate generative modules — a VAE, a GMM and a
//! multimodal LDA — that exchange forward and backward messages, as in the "VAE+GMM" and
//! "VAE+GMM+MLDA" tutorials (`../shared/reference/serket-upstream.md`).
//!
//! The API follows the tutorial scripts:
//!
//! ```no_run
//! use gmvae::serket::{data, gmm::Gmm, mlda::Mlda, vae::{Vae, VaeConfig, VaePreset}};
//! use gmvae::serket::{Module, Observation, Serket};
//! # fn main() -> anyhow::Result<()> {
//! let (images, speech, category) =
//!     data::load_images_speech("../shared/data/serket/VAE+GMM+MLDA/data.zip".as_ref())?;
//! let srk = Serket::new("runs/serket", 0); // output root, seed
//! let obs1 = Observation::new(&srk, images); // module000_obs
//! let obs2 = Observation::new(&srk, speech); // module001_obs
//! let mut vae1 = Vae::new(&srk, 18, VaeConfig::preset(VaePreset::Upstream)); // 200 epochs, batch 500
//! let mut gmm1 = Gmm::new(&srk, 10, Some(category.clone()));
//! let mut mlda1 = Mlda::new(&srk, 10, Some(vec![200.0, 200.0]), Some(category));
//! vae1.connect(&[&obs1]);
//! gmm1.connect(&[&vae1]);
//! mlda1.connect(&[&obs2, &gmm1]);
//! for _ in 0..5 {
//!     vae1.update()?;
//!     gmm1.update()?;
//!     mlda1.update()?;
//! }
//! # Ok(())
//! # }
//! ```

pub mod accuracy;
pub mod bce;
pub mod cli;
pub mod data;
pub mod framework;
pub mod gmm;
pub mod mlda;
pub mod progress;
pub mod vae;

pub use framework::{Module, Node, Observation, Serket};
