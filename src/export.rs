//! The weights-only model of a run: `model.safetensors` (every network variable, BatchNorm
//! running statistics included, no optimiser state) and `config.json` (network, sizes, K,
//! likelihood, input scaling). Written at the end of training and by `gmvae export RUN`; this is
//! what `gmvae predict` and the README's Python snippet load.

use crate::data::scale::Scaler;
use crate::objective::ObjectiveKind;
use crate::options::{DataSet, Options};
use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};
use gmvae_models::{Gmvae, GmvaeConfig};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// File names inside a run directory.
pub const MODEL_FILE: &str = "model.safetensors";
pub const CONFIG_FILE: &str = "config.json";
const FORMAT: &str = "gmvae-model-1";

/// `config.json`: everything needed to rebuild the networks and prepare an input row. The network
/// sizes are the model's own [`GmvaeConfig`], flattened into the file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    pub format: String,
    pub preset: String,
    pub data_set: DataSet,
    /// v1: clusters from the q(z|y) head; v2: from p(z | mean x, mean w).
    pub objective: ObjectiveKind,
    /// The networks: family, Dy, image shape, Dx, Dw, K, H, F and the likelihood p(y|x).
    #[serde(flatten)]
    pub net: GmvaeConfig,
    /// BatchNorm's epsilon (eval mode: (h - running_mean) / sqrt(running_var + eps)).
    pub batchnorm_eps: f64,
    /// Applied to each input row: (y - shift) / scale. Identity for images (pixels are / 255).
    pub scaling: Scaler,
    /// Feature column names of a table with a header.
    pub columns: Option<Vec<String>>,
    /// The training table's label column (left out of the features).
    pub label_column: Option<String>,
    /// Epochs the weights were trained for.
    pub epoch: usize,
}

impl ModelConfig {
    /// The config of a run trained with `opts` (a table's `opts` carries its fitted scaling).
    pub fn new(opts: &Options, config: &GmvaeConfig, epoch: usize) -> Result<Self> {
        let (scaling, columns, label_column) = match opts.data_set {
            DataSet::Table => {
                let t = opts.table.as_ref().context("table options missing")?;
                let f = t
                    .fitted
                    .as_ref()
                    .context("opts.json has no fitted scaling (was the run trained?)")?;
                (f.scaler.clone(), f.columns.clone(), t.label_column.clone())
            }
            _ => (Scaler::identity(config.dy), None, None),
        };
        Ok(Self {
            format: FORMAT.into(),
            preset: opts.preset.clone(),
            data_set: opts.data_set,
            objective: opts.objective,
            net: config.clone(),
            batchnorm_eps: candle_nn::BatchNormConfig::default().eps,
            scaling,
            columns,
            label_column,
            epoch,
        })
    }

    /// Reads `config.json` of `run_dir`.
    pub fn load(run_dir: &Path) -> Result<Self> {
        let path = run_dir.join(CONFIG_FILE);
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!(
                "cannot read {} (train the run to the end, or run `gmvae export {}`)",
                path.display(),
                run_dir.display()
            )
        })?;
        Self::parse(&text, &path)
    }

    /// Parses and checks the text of a `config.json` (`path` names it in messages).
    pub fn parse(text: &str, path: &Path) -> Result<Self> {
        let mut c: Self = serde_json::from_str(text)
            .with_context(|| format!("{} is not a gmvae config.json", path.display()))?;
        c.net.qz_head = c.objective == ObjectiveKind::V1;
        if c.format != FORMAT {
            bail!(
                "{}: unknown format `{}` (expected {FORMAT})",
                path.display(),
                c.format
            );
        }
        let dy = c.net.dy;
        if c.scaling.shift.len() != dy || c.scaling.scale.len() != dy {
            bail!(
                "{}: scaling has {} values for {} input columns",
                path.display(),
                c.scaling.shift.len(),
                dy
            );
        }
        Ok(c)
    }
}

/// Writes `model.safetensors` and `config.json` into `dir`, each atomically.
pub fn write(
    dir: &Path,
    opts: &Options,
    config: &GmvaeConfig,
    vars: &[(String, Var)],
    epoch: usize,
) -> Result<()> {
    let tensors: Vec<(String, Tensor)> = vars
        .iter()
        .map(|(n, v)| Ok((n.clone(), v.as_tensor().to_device(&Device::Cpu)?)))
        .collect::<Result<_>>()?;
    write_tensors(dir, &ModelConfig::new(opts, config, epoch)?, &tensors)
}

fn write_tensors(dir: &Path, config: &ModelConfig, tensors: &[(String, Tensor)]) -> Result<()> {
    let meta = HashMap::from([("format".to_string(), FORMAT.to_string())]);
    let bytes =
        safetensors::tensor::serialize(tensors.iter().map(|(n, t)| (n.as_str(), t)), Some(meta))?;
    crate::atomic::write(&dir.join(MODEL_FILE), &bytes)?;
    crate::atomic::write_str(
        &dir.join(CONFIG_FILE),
        &serde_json::to_string_pretty(config)?,
    )
}

/// Loads the exported model of `run_dir` on `device`, in BatchNorm eval use.
pub fn load_model(run_dir: &Path, device: &Device) -> Result<(ModelConfig, Gmvae)> {
    let config = ModelConfig::load(run_dir)?;
    let path = run_dir.join(MODEL_FILE);
    let bytes = std::fs::read(&path).with_context(|| {
        format!(
            "cannot read {} (run `gmvae export {}`)",
            path.display(),
            run_dir.display()
        )
    })?;
    let net = model_from_bytes(&config, bytes, &path, device)?;
    Ok((config, net))
}

/// The networks of `config` with the weights of a `model.safetensors` file's bytes (`path` names
/// them in messages), in BatchNorm eval use.
pub fn model_from_bytes(
    config: &ModelConfig,
    bytes: Vec<u8>,
    path: &Path,
    device: &Device,
) -> Result<Gmvae> {
    let vb = VarBuilder::from_buffered_safetensors(bytes, DType::F32, device)
        .with_context(|| format!("{} is not a safetensors file", path.display()))?;
    Gmvae::new(config.net.clone(), vb).with_context(|| {
        format!(
            "{} does not match {} (missing or misshapen weights)",
            path.display(),
            CONFIG_FILE
        )
    })
}

/// `gmvae export RUN`: the weights-only model from the run's last checkpoint.
pub fn export_run(run_dir: &Path) -> Result<PathBuf> {
    let opts = Options::load(run_dir)?;
    let ckpt = run_dir.join(crate::checkpoint::FILE);
    let (epoch, all) = crate::checkpoint::read(&ckpt)?;
    // Dy is not in opts.json: the first layer's width says it (images: the preset's shape).
    let image_shape = match (opts.network, opts.data_set) {
        (crate::options::NetworkKind::Fc, _) => None,
        (_, DataSet::Svhn) => Some([3, 32, 32]),
        _ => Some([1, 28, 28]),
    };
    let dy = match image_shape {
        Some(s) => s.iter().product(),
        None => all
            .get("model.recognition.fc1.linear.weight")
            .with_context(|| format!("{} is not a gmvae checkpoint", ckpt.display()))?
            .dim(1)?,
    };
    let shape = crate::data::DataShape { dy, image_shape };
    let config = crate::model::config(&opts, &shape)?;
    // The variables the model expects, by name and shape, must all be in the checkpoint.
    let varmap = VarMap::new();
    Gmvae::new(
        config.clone(),
        VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu),
    )?;
    let vars = crate::model::sorted_vars(&varmap);
    crate::checkpoint::check_model(&ckpt, &all, &vars, "opts.json implies other settings?")?;
    let tensors: Vec<(String, Tensor)> = vars
        .iter()
        .map(|(n, _)| (n.clone(), all[&format!("model.{n}")].clone()))
        .collect();
    write_tensors(run_dir, &ModelConfig::new(&opts, &config, epoch)?, &tensors)?;
    Ok(run_dir.join(MODEL_FILE))
}

/// `gmvae export` flags.
#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// The run directory (holding opts.json and checkpoint.safetensors).
    #[arg(value_name = "RUN_DIR")]
    pub run: PathBuf,
}

/// `gmvae export`: `export` is [`export_run`], or for a run of restarts (`--n-init`) the
/// caller's, which exports the kept restart.
pub fn run(args: &ExportArgs, export: impl Fn(&Path) -> Result<PathBuf>) -> Result<()> {
    let path = export(&args.run)?;
    println!(
        "wrote {} and {}",
        path.display(),
        args.run.join(CONFIG_FILE).display()
    );
    Ok(())
}
