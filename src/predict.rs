//! `gmvae predict`: clusters rows with a run's exported model. Per row: the predicted component,
//! the cluster posterior (v1: q(z|y); v2: p(z | mean x, mean w)) and the q(x|y) mean (the
//! embedding), as CSV or `.npy`. Rows are read, scaled as in training, and written in batches, so
//! a text or `.npy` file larger than memory streams through.

use crate::data::npy;
use crate::data::reader::TableReader;
use crate::data::table::label_indices;
use crate::export::{load_model, ModelConfig};
use crate::metrics;
use crate::objective::ObjectiveKind;
use anyhow::{bail, Context, Result};
use candle_core::{Device, Tensor};
use gmvae_models::Gmvae;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

/// `gmvae predict` flags.
#[derive(Debug, clap::Args)]
pub struct PredictArgs {
    /// Run directory holding model.safetensors and config.json (written at the end of training,
    /// or by `gmvae export RUN_DIR`).
    #[arg(long, value_name = "RUN_DIR")]
    pub run: PathBuf,
    /// Rows to cluster: a table with the training columns (CSV/TSV, whitespace text, .npy,
    /// .safetensors), or an MNIST IDX images file (raw or .gz) for an MNIST run.
    #[arg(long, value_name = "FILE")]
    pub data: PathBuf,
    /// Output file, `.csv` or `.npy` by extension [default: CSV on stdout]. Columns: component,
    /// q_z_0..q_z_{K-1}, x_mean_0..x_mean_{Dx-1} (CSV adds the label column when --data has one).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Label column of --data, copied to the CSV and scored [default: the training run's label
    /// column, when --data has it].
    #[arg(long, value_name = "NAME|INDEX")]
    pub label_column: Option<String>,
    /// Safetensors input: the 2-D data tensor (default: the only 2-D tensor).
    #[arg(long)]
    pub tensor: Option<String>,
    #[command(flatten)]
    pub text: crate::options::table::TextFlags,
    /// Rows per forward pass (and per read from the file).
    #[arg(long, default_value_t = 1000)]
    pub batch_size: usize,
    /// 0: CPU; 1: CUDA (needs a build with --features cuda).
    #[arg(long, default_value_t = 0)]
    pub gpu: u8,
    /// CUDA device index, 0-based.
    #[arg(long, default_value_t = 0)]
    pub gpu_id: usize,
}

/// Whether `path` looks like an IDX images file (by name, or by its magic number).
fn is_idx_images(path: &Path) -> bool {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    if name.contains("idx3") {
        return true;
    }
    let mut head = [0u8; 4];
    std::fs::File::open(path)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut head))
        .is_ok()
        && u32::from_be_bytes(head) == 2051
}

/// Opens `--data` as rows of the model's input.
fn open_input(args: &PredictArgs, config: &ModelConfig) -> Result<TableReader> {
    let path = &args.data;
    crate::limits::regular_file(path).context("--data")?;
    if is_idx_images(path) {
        let bytes = crate::data::mnist::read_maybe_gz(path)?;
        let (n, rows, cols, px) = crate::data::mnist::parse_images(&bytes, path)?;
        if rows * cols != config.net.dy {
            bail!(
                "{}: images of {rows}x{cols} pixels, the model takes {} values per row",
                path.display(),
                config.net.dy
            );
        }
        let y = px.iter().map(|&p| p as f32 / 255.0).collect();
        eprintln!("predict: {} holds {n} images", path.display());
        return TableReader::from_rows(path, y, config.net.dy);
    }
    let (tensor, rules) = (args.tensor.as_deref(), &args.text.rules());
    let mut reader = match (&args.label_column, &config.label_column) {
        // The training file's label column, when this file has it too.
        (None, Some(l)) => match TableReader::open(path, Some(l), tensor, rules) {
            Ok(r) if r.d == config.net.dy => r,
            _ => TableReader::open(path, None, tensor, rules)?,
        },
        (given, _) => TableReader::open(path, given.as_deref(), tensor, rules)?,
    };
    for note in reader.notes() {
        eprintln!("predict: {note}");
    }
    if let (Some(trained), Some(_)) = (&config.columns, &reader.columns) {
        if reader.match_columns(trained)? {
            eprintln!("predict: columns matched to training by name (reordered)");
        }
    }
    if reader.d != config.net.dy {
        bail!(
            "{}: {} feature columns{}, but the model was trained on {}{}",
            path.display(),
            reader.d,
            if reader.has_labels() {
                " besides the label column"
            } else {
                ""
            },
            config.net.dy,
            config
                .columns
                .as_ref()
                .map(|c| format!(" ({})", c.join(", ")))
                .unwrap_or_default()
                + if reader.d == config.net.dy + 1 && !reader.has_labels() {
                    "; name its label column with --label-column NAME|INDEX"
                } else {
                    ""
                }
        );
    }
    Ok(reader)
}

/// Cluster posteriors and q(x|y) means of scaled rows `y` `[B, Dy]`, in BatchNorm eval mode.
pub fn posterior(net: &Gmvae, objective: ObjectiveKind, y: &Tensor) -> Result<(Tensor, Tensor)> {
    let post = net.recognition.forward_t(y, false)?;
    let q = crate::model::cluster_posterior(net, objective, &post)?;
    Ok((q, post.mean_x))
}

/// The scaled rows `start..start + rows` of row-major `y` (raw, as the caller holds them) as a
/// `[rows, Dy]` tensor: the model's input.
fn scaled_chunk(
    config: &ModelConfig,
    y: &[f32],
    (start, rows): (usize, usize),
    device: &Device,
) -> Result<Tensor> {
    let dy = config.net.dy;
    let mut chunk = y[start * dy..(start + rows) * dy].to_vec();
    config.scaling.apply(&mut chunk);
    Ok(Tensor::from_vec(chunk, (rows, dy), device)?)
}

/// What a trained model says of rows held in memory, raw as the caller holds them (the Python
/// binding's `predict_proba` and `transform`): the cluster posteriors `[N, K]` (v1: q(z|y);
/// v2: p(z | mean x, mean w)) and the q(x|y) means `[N, Dx]`, row-major, scaled and batched as
/// `gmvae predict` does.
pub fn posterior_of_rows(
    net: &Gmvae,
    config: &ModelConfig,
    y: &[f32],
    batch_size: usize,
    device: &Device,
) -> Result<(Vec<f32>, Vec<f32>)> {
    let n = y.len() / config.net.dy.max(1);
    let (mut q_all, mut x_all) = (
        Vec::with_capacity(n * config.net.k),
        Vec::with_capacity(n * config.net.dx),
    );
    for start in (0..n).step_by(batch_size.max(1)) {
        let rows = batch_size.max(1).min(n - start);
        let chunk = scaled_chunk(config, y, (start, rows), device)?;
        let (q, mx) = posterior(net, config.objective, &chunk)?;
        q_all.extend(q.flatten_all()?.to_vec1::<f32>()?);
        x_all.extend(mx.flatten_all()?.to_vec1::<f32>()?);
    }
    Ok((q_all, x_all))
}

/// The mean evidence lower bound per row of rows held in memory (raw, as the caller holds them):
/// the paper's bound (reconstruction, conditional prior, w-prior and z-prior with eta = 1), one
/// Monte-Carlo sample of (x, w) per row drawn from `seed`, BatchNorm in eval mode.
pub fn lower_bound_of_rows(
    net: &Gmvae,
    config: &ModelConfig,
    y: &[f32],
    batch_size: usize,
    seed: u64,
    device: &Device,
) -> Result<f64> {
    use crate::objective::{self, ObjectiveConfig, ZPriorMode};
    let cfg = ObjectiveConfig {
        kind: config.objective,
        n_mc: 1,
        z_prior_weight: 1.0,
        cv_weight: 0.0,
        free_bits: 0.0,
        z_prior_mode: ZPriorMode::Sample,
        cond_weight: 1.0,
        augment_weight: 0.0,
    };
    let n = y.len() / config.net.dy.max(1);
    if n == 0 {
        bail!("no rows to score");
    }
    let mut noise = crate::rng::rng(seed, crate::rng::stream::NOISE);
    let mut loss = 0.0;
    for start in (0..n).step_by(batch_size.max(1)) {
        let rows = batch_size.max(1).min(n - start);
        let chunk = scaled_chunk(config, y, (start, rows), device)?;
        let (dx, dw) = (config.net.dx, config.net.dw);
        let (eps_x, eps_w) = objective::draw_noise(&mut noise, 1, rows, dx, dw, device)?;
        let out = objective::evaluate(net, &cfg, &chunk, None, &eps_x, &eps_w, false)?;
        loss += out.terms.read()?.loss;
    }
    Ok(-loss / n as f64)
}

/// Where rows go.
enum Sink<'a, W: Write + std::io::Seek> {
    Csv(&'a mut dyn Write),
    Npy(npy::Writer<W>),
}

/// Labels seen, and the online state of the AAE rule (each cluster's most confident row).
#[derive(Default)]
struct Scoring {
    assign: Vec<usize>,
    labels: Vec<String>,
    best: Vec<(f32, usize)>,
}

impl Scoring {
    /// The scores of the rows seen against their labels (none without labels).
    fn scores(&self) -> Result<Option<metrics::ClusterScores>> {
        if self.labels.is_empty() {
            return Ok(None);
        }
        let (labels, _) = label_indices(&self.labels);
        let cluster_label: Vec<usize> = self.best.iter().map(|&(_, i)| labels[i]).collect();
        let hits = self
            .assign
            .iter()
            .zip(&labels)
            .filter(|(&a, &t)| cluster_label[a] == t)
            .count();
        Ok(Some(metrics::ClusterScores {
            aae: hits as f64 / labels.len() as f64,
            hungarian: metrics::hungarian_accuracy(&self.assign, &labels)?,
            majority: metrics::majority_accuracy(&self.assign, &labels)?,
            nmi: metrics::nmi(&self.assign, &labels)?,
            ari: metrics::ari(&self.assign, &labels)?,
        }))
    }
}

impl<W: Write + std::io::Seek> Sink<'_, W> {
    /// Writes rows `out` (`width` values each: component, q(z|y), q(x|y) mean) with the
    /// components `comp` and, in a CSV, the rows' labels.
    fn write(
        &mut self,
        out: &[f32],
        comp: &[usize],
        labels: Option<&[String]>,
        width: usize,
    ) -> Result<()> {
        match self {
            Sink::Csv(w) => {
                for (i, row) in out.chunks(width).enumerate() {
                    let mut line = format!("{}", comp[i]);
                    for v in &row[1..] {
                        line.push(',');
                        line.push_str(&v.to_string());
                    }
                    if let Some(l) = labels {
                        line.push(',');
                        line.push_str(&csv_field(&l[i]));
                    }
                    writeln!(w, "{line}")?;
                }
            }
            Sink::Npy(w) => w.write_rows(out)?,
        }
        Ok(())
    }
}

/// A progress bar over the rows (or, for text, the bytes) of `reader`, on a terminal.
fn progress_bar(reader: &TableReader) -> Option<indicatif::ProgressBar> {
    std::io::stderr().is_terminal().then(|| {
        let (len, unit) = match (reader.total_rows(), reader.file_len) {
            (Some(n), _) => (n as u64, "{pos}/{len} rows"),
            (None, b) => (b, "{bytes}/{total_bytes}"),
        };
        let b = indicatif::ProgressBar::new(len);
        b.set_style(
            indicatif::ProgressStyle::with_template(&format!(
                "predict [{{bar:30}}] {unit} eta {{eta}}"
            ))
            .expect("valid template")
            .progress_chars("=> "),
        );
        b
    })
}

/// What a prediction pass did.
pub struct Report {
    pub rows: usize,
    pub sizes: Vec<usize>,
    pub scores: Option<metrics::ClusterScores>,
}

fn predict_into<W: Write + std::io::Seek>(
    reader: &mut TableReader,
    net: &Gmvae,
    config: &ModelConfig,
    device: &Device,
    batch_size: usize,
    mut sink: Sink<W>,
) -> Result<(Report, Option<W>)> {
    let (k, dx) = (config.net.k, config.net.dx);
    if let Sink::Csv(w) = &mut sink {
        let mut head: Vec<String> = vec!["component".into()];
        head.extend((0..k).map(|j| format!("q_z_{j}")));
        head.extend((0..dx).map(|j| format!("x_mean_{j}")));
        if reader.has_labels() {
            head.push("label".into());
        }
        writeln!(w, "{}", head.join(","))?;
    }
    let bar = progress_bar(reader);
    let mut report = Report {
        rows: 0,
        sizes: vec![0; k],
        scores: None,
    };
    let mut scoring = Scoring {
        best: vec![(f32::NEG_INFINITY, 0); k],
        ..Default::default()
    };
    while let Some(mut batch) = reader.next_batch(batch_size)? {
        config.scaling.apply(&mut batch.y);
        let y = Tensor::from_vec(batch.y, (batch.rows, config.net.dy), device)?;
        let (q, mx) = posterior(net, config.objective, &y)?;
        let q: Vec<f32> = q.flatten_all()?.to_vec1()?;
        let mx: Vec<f32> = mx.flatten_all()?.to_vec1()?;
        let comp = metrics::argmax_rows(&q, k, batch.rows)?;
        let mut out = Vec::with_capacity(batch.rows * (1 + k + dx));
        for (i, &c) in comp.iter().enumerate() {
            report.sizes[c] += 1;
            for (j, &v) in q[i * k..(i + 1) * k].iter().enumerate() {
                if v > scoring.best[j].0 {
                    scoring.best[j] = (v, report.rows + i);
                }
            }
            out.push(c as f32);
            out.extend_from_slice(&q[i * k..(i + 1) * k]);
            out.extend_from_slice(&mx[i * dx..(i + 1) * dx]);
        }
        sink.write(&out, &comp, batch.labels.as_deref(), 1 + k + dx)?;
        if let Some(l) = batch.labels {
            scoring.assign.extend(&comp);
            scoring.labels.extend(l);
        }
        report.rows += batch.rows;
        if let Some(b) = &bar {
            b.set_position(match reader.total_rows() {
                Some(_) => report.rows as u64,
                None => reader.bytes_read(),
            });
        }
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    if report.rows == 0 {
        bail!("no rows to predict");
    }
    report.scores = scoring.scores()?;
    let inner = match sink {
        Sink::Csv(w) => {
            w.flush()?;
            None
        }
        Sink::Npy(w) => Some(w.finish()?),
    };
    Ok((report, inner))
}

/// Quotes a CSV field when it needs it.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// `--out` must name a new or replaceable file, never `--data` itself (by any spelling, link
/// or hard link): the predictions would overwrite their input.
fn check_out(out: &Path, data: &Path) -> Result<()> {
    if !matches!(out_extension(out).as_str(), "csv" | "npy") {
        bail!("--out {}: expected a .csv or .npy file name", out.display());
    }
    if out.is_dir() {
        bail!(
            "--out {} is a directory; give a file name ending in .csv or .npy",
            out.display()
        );
    }
    let same = match (std::fs::metadata(out), std::fs::metadata(data)) {
        (Ok(a), Ok(b)) => same_file(&a, &b),
        _ => false,
    };
    let canonical = |p: &Path| std::fs::canonicalize(p).ok();
    if same || canonical(out).is_some_and(|o| Some(o) == canonical(data)) {
        bail!(
            "--out {} is the --data file {}: the predictions would overwrite their input; \
             choose another --out",
            out.display(),
            data.display()
        );
    }
    Ok(())
}

/// The extension of `--out`, lower case (it picks the format).
fn out_extension(out: &Path) -> String {
    out.extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default()
}

#[cfg(unix)]
fn same_file(a: &std::fs::Metadata, b: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    (a.dev(), a.ino()) == (b.dev(), b.ino())
}

#[cfg(not(unix))]
fn same_file(_: &std::fs::Metadata, _: &std::fs::Metadata) -> bool {
    false // the canonical paths are compared instead
}

/// Runs `gmvae predict`.
pub fn run(args: &PredictArgs) -> Result<Report> {
    if args.batch_size == 0 {
        bail!("--batch-size must be at least 1");
    }
    if let Some(out) = &args.out {
        check_out(out, &args.data)?;
    }
    let device = crate::device::select(args.gpu, args.gpu_id)?;
    let (config, net) = load_model(&args.run, &device)?;
    let mut reader = open_input(args, &config)?;
    let (report, dest) = match &args.out {
        None => {
            let stdout = std::io::stdout();
            let mut lock = stdout.lock();
            let sink: Sink<std::io::Cursor<Vec<u8>>> = Sink::Csv(&mut lock);
            let (r, _) = predict_into(&mut reader, &net, &config, &device, args.batch_size, sink)?;
            (r, "stdout".to_string())
        }
        Some(out) => {
            let r = crate::atomic::write_with(out, |w| match out_extension(out).as_str() {
                "csv" => {
                    let sink: Sink<std::io::Cursor<Vec<u8>>> = Sink::Csv(w);
                    predict_into(&mut reader, &net, &config, &device, args.batch_size, sink)
                        .map(|(r, _)| r)
                }
                "npy" => {
                    let sink = Sink::Npy(npy::Writer::new(w, 1 + config.net.k + config.net.dx)?);
                    predict_into(&mut reader, &net, &config, &device, args.batch_size, sink)
                        .map(|(r, _)| r)
                }
                _ => bail!("--out {}: expected a .csv or .npy file name", out.display()),
            })?;
            (r, out.display().to_string())
        }
    };
    let mut msg = format!(
        "predicted {} rows with {} (K={}, epoch {}) -> {dest}; rows per component: {}",
        report.rows,
        args.run.display(),
        config.net.k,
        config.epoch,
        report
            .sizes
            .iter()
            .enumerate()
            .filter(|(_, &n)| n > 0)
            .map(|(c, n)| format!("{c}:{n}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    if let Some(s) = report.scores {
        msg += &format!(
            "\nagainst the labels: acc {:.4} (AAE rule), hungarian {:.4}, majority {:.4}, NMI {:.4}, ARI {:.4}",
            s.aae, s.hungarian, s.majority, s.nmi, s.ari
        );
    }
    // Keep stdout clean when it carries the CSV.
    if args.out.is_none() {
        eprintln!("{msg}");
    } else {
        println!("{msg}");
    }
    Ok(report)
}
