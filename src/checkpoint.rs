//! Checkpoints: model variables, optimiser state and the epoch, in one safetensors file written
//! atomically after every epoch, so a killed run loses at most the epoch in progress. A
//! checkpoint is checked whole on load (format, epoch, shapes, finite values) before any
//! variable is touched, and never written with a non-finite value.

use crate::optim::Adam;
use anyhow::{bail, Context, Result};
use candle_core::{Device, Tensor, Var};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// File name inside a run directory.
pub const FILE: &str = "checkpoint.safetensors";
const FORMAT: &str = "gmvae-checkpoint-1";

/// safetensors bytes of `tensors` with `meta`, byte-identical for identical inputs: the
/// library writes its metadata map in hash order, so the map is rewritten with sorted keys.
pub fn serialize(tensors: &[(String, Tensor)], meta: BTreeMap<String, String>) -> Result<Vec<u8>> {
    let hashed: HashMap<String, String> = meta.clone().into_iter().collect();
    let mut bytes =
        safetensors::tensor::serialize(tensors.iter().map(|(n, t)| (n.as_str(), t)), Some(hashed))?;
    const PREFIX: &str = "{\"__metadata__\":";
    let n = u64::from_le_bytes(bytes[..8].try_into()?) as usize;
    let header = std::str::from_utf8(&bytes[8..8 + n])?.to_string();
    let rest = header
        .strip_prefix(PREFIX)
        .context("safetensors header does not start with its metadata")?;
    let mut stream =
        serde_json::Deserializer::from_str(rest).into_iter::<BTreeMap<String, String>>();
    let parsed = stream.next().context("safetensors metadata missing")??;
    if parsed != meta {
        bail!("safetensors metadata did not round-trip");
    }
    let tail = &rest[stream.byte_offset()..];
    let sorted = format!("{PREFIX}{}{tail}", serde_json::to_string(&meta)?);
    if sorted.len() != header.len() {
        bail!("sorted safetensors header changed length");
    }
    bytes[8..8 + n].copy_from_slice(sorted.as_bytes());
    Ok(bytes)
}

/// Writes weights (`model.<name>`), optimiser state and `epoch` to `path`; refuses (and leaves
/// the previous checkpoint in place) when any value is NaN or infinite.
pub fn save(path: &Path, vars: &[(String, Var)], adam: &Adam, epoch: usize) -> Result<()> {
    let mut tensors: Vec<(String, Tensor)> = vars
        .iter()
        .map(|(n, v)| Ok((format!("model.{n}"), v.as_tensor().to_device(&Device::Cpu)?)))
        .collect::<Result<_>>()?;
    for (n, t) in adam.state_tensors()? {
        tensors.push((n, t.to_device(&Device::Cpu)?));
    }
    if let Some(name) =
        crate::guard::first_non_finite(tensors.iter().map(|(n, t)| (n.as_str(), t)))?
    {
        bail!(
            "not writing checkpoint {} for epoch {epoch}: `{name}` is not finite (training diverged)",
            path.display()
        );
    }
    let meta = BTreeMap::from([
        ("format".to_string(), FORMAT.to_string()),
        ("epoch".to_string(), epoch.to_string()),
    ]);
    crate::atomic::write(path, &serialize(&tensors, meta)?)
}

/// Restores weights and optimiser state from `path`; returns the epoch it was written after.
/// Everything is checked first (format, an epoch in 1..=MAX_EPOCHS, every tensor present with
/// the model's shape, every value finite), so a bad file leaves the model untouched.
pub fn load(path: &Path, vars: &[(String, Var)], adam: &mut Adam) -> Result<usize> {
    let (epoch, tensors) = read(path)?;
    let mut expected = model_shapes(vars);
    expected.extend(
        adam.state_tensors()?
            .into_iter()
            .map(|(n, t)| (n, t.dims().to_vec())),
    );
    check(path, &tensors, &expected, "different model settings?")?;
    let t = tensors["adam.t"].flatten_all()?.to_vec1::<f64>()?;
    if !t
        .first()
        .is_some_and(|&t| t >= 0.0 && t.fract() == 0.0 && t < 2f64.powi(53))
    {
        bail!(
            "{}: optimiser step count {t:?} is not a whole number",
            path.display()
        );
    }
    set_model(vars, &tensors)?;
    adam.load_state(&tensors)
        .with_context(|| format!("restoring the optimiser from {}", path.display()))?;
    Ok(epoch)
}

/// Restores the network variables alone from `path` (a run that starts from another run's
/// weights: `--init-from`), with the checks of [`load`]; returns the checkpoint's epoch.
pub fn load_weights(path: &Path, vars: &[(String, Var)]) -> Result<usize> {
    let (epoch, tensors) = read(path)?;
    check_model(path, &tensors, vars, "a network of other settings?")?;
    set_model(vars, &tensors)?;
    Ok(epoch)
}

/// Every network variable of `vars` is in the checkpoint's `tensors` (as read by [`read`]) with
/// its shape, and finite; `hint` closes the message about a missing or misshapen one.
pub(crate) fn check_model(
    path: &Path,
    tensors: &HashMap<String, Tensor>,
    vars: &[(String, Var)],
    hint: &str,
) -> Result<()> {
    check(path, tensors, &model_shapes(vars), hint)
}

/// A checkpoint's epoch and tensors (network variables named `model.<name>`), once its format and
/// epoch are known to be good.
pub(crate) fn read(path: &Path) -> Result<(usize, HashMap<String, Tensor>)> {
    let bytes = crate::limits::read_file(path)
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
    let epoch_text = meta.get("epoch").with_context(bad)?;
    let epoch = epoch_text
        .parse::<usize>()
        .ok()
        .filter(|e| (1..=crate::limits::MAX_EPOCHS).contains(e))
        .with_context(|| {
            format!(
                "{}: epoch `{epoch_text}` is not in 1..={}",
                path.display(),
                crate::limits::MAX_EPOCHS
            )
        })?;
    let tensors = candle_core::safetensors::load_buffer(&bytes, &Device::Cpu).with_context(bad)?;
    Ok((epoch, tensors))
}

/// The checkpoint names and shapes of the model's variables.
fn model_shapes(vars: &[(String, Var)]) -> Vec<(String, Vec<usize>)> {
    vars.iter()
        .map(|(n, v)| (format!("model.{n}"), v.dims().to_vec()))
        .collect()
}

/// Every `expected` tensor is in `tensors` with its shape, and finite; `hint` closes the
/// message about a missing or misshapen one.
fn check(
    path: &Path,
    tensors: &HashMap<String, Tensor>,
    expected: &[(String, Vec<usize>)],
    hint: &str,
) -> Result<()> {
    for (name, dims) in expected {
        let t = tensors
            .get(name)
            .with_context(|| format!("{}: missing `{name}` ({hint})", path.display()))?;
        if t.dims() != dims.as_slice() {
            bail!(
                "{}: `{name}` has shape {:?}, the model expects {dims:?} ({hint})",
                path.display(),
                t.dims(),
            );
        }
    }
    let checked = expected
        .iter()
        .filter_map(|(n, _)| tensors.get(n).map(|t| (n.as_str(), t)));
    if let Some(name) = crate::guard::first_non_finite(checked)? {
        bail!("{}: `{name}` holds NaN or infinite values", path.display());
    }
    Ok(())
}

fn set_model(vars: &[(String, Var)], tensors: &HashMap<String, Tensor>) -> Result<()> {
    for (n, v) in vars {
        v.set(&tensors[&format!("model.{n}")].to_device(v.device())?)?;
    }
    Ok(())
}
