//! Checkpoints: model variables, optimiser state and the epoch, in one safetensors file written
//! atomically after every epoch, so a killed run loses at most the epoch in progress.

use crate::optim::Adam;
use anyhow::{bail, Context, Result};
use candle_core::{Device, Tensor, Var};
use std::collections::HashMap;
use std::path::Path;

/// File name inside a run directory.
pub const FILE: &str = "checkpoint.safetensors";
const FORMAT: &str = "gmvae-checkpoint-1";

/// Writes weights (`model.<name>`), optimiser state and `epoch` to `path`.
pub fn save(path: &Path, vars: &[(String, Var)], adam: &Adam, epoch: usize) -> Result<()> {
    let mut tensors: Vec<(String, Tensor)> = vars
        .iter()
        .map(|(n, v)| Ok((format!("model.{n}"), v.as_tensor().to_device(&Device::Cpu)?)))
        .collect::<Result<_>>()?;
    for (n, t) in adam.state_tensors()? {
        tensors.push((n, t.to_device(&Device::Cpu)?));
    }
    let meta = HashMap::from([
        ("format".to_string(), FORMAT.to_string()),
        ("epoch".to_string(), epoch.to_string()),
    ]);
    let bytes =
        safetensors::tensor::serialize(tensors.iter().map(|(n, t)| (n.as_str(), t)), Some(meta))?;
    crate::atomic::write(path, &bytes)
}

/// Restores weights and optimiser state from `path`; returns the epoch it was written after.
pub fn load(path: &Path, vars: &[(String, Var)], adam: &mut Adam) -> Result<usize> {
    let bytes = std::fs::read(path)
        .with_context(|| format!("cannot read checkpoint {}", path.display()))?;
    let bad = || format!("{} is not a gmvae checkpoint", path.display());
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).with_context(bad)?;
    let meta = header.metadata().clone().unwrap_or_default();
    if meta.get("format").map(String::as_str) != Some(FORMAT) {
        bail!(
            "{}: unknown checkpoint format {:?} (expected {FORMAT})",
            path.display(),
            meta.get("format")
        );
    }
    let epoch: usize = meta
        .get("epoch")
        .and_then(|e| e.parse().ok())
        .with_context(bad)?;
    let tensors: HashMap<String, Tensor> =
        candle_core::safetensors::load_buffer(&bytes, &Device::Cpu).with_context(bad)?;
    // Check everything before touching any variable, so a bad file leaves the model intact.
    for (n, v) in vars {
        let t = tensors.get(&format!("model.{n}")).with_context(|| {
            format!(
                "{}: missing weights `{n}` (different model settings?)",
                path.display()
            )
        })?;
        if t.dims() != v.dims() {
            bail!(
                "{}: `{n}` has shape {:?}, the model expects {:?} (different model settings?)",
                path.display(),
                t.dims(),
                v.dims()
            );
        }
    }
    for (n, v) in vars {
        v.set(&tensors[&format!("model.{n}")].to_device(v.device())?)?;
    }
    adam.load_state(&tensors)
        .with_context(|| format!("restoring the optimiser from {}", path.display()))?;
    Ok(epoch)
}
