//! `gmvae._gmvae`: the Rust core behind the Python estimator `gmvae.GMVAE` (python/gmvae). It
//! wraps the library: training is `gmvae::restarts::train_with` (one run, or `n_init` restarts)
//! on the caller's rows (table preset), the model is the run directory's `model.safetensors` + `config.json`, and
//! predictions are `gmvae::predict`'s. Training and prediction run with the GIL released.

use gmvae::export::{self, ModelConfig};
use gmvae::hooks::{Hooks, Interrupted, Log, Rows};
use gmvae::options::Options;
use numpy::{IntoPyArray, PyArray2, PyArrayMethods, PyReadonlyArray2, PyUntypedArrayMethods};
use pyo3::exceptions::{PyKeyboardInterrupt, PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};
use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

/// Models here run on the CPU (a `cuda` build of the package is future work).
const CPU: candle_core::Device = candle_core::Device::Cpu;

/// How messages name the caller's rows (scikit-learn's name for them).
const ROWS: &str = "X";

/// How often the caller's thread runs Python's signal handlers while training runs.
const SIGNAL_POLL: Duration = Duration::from_millis(50);

/// A library error as a Python exception: a bad value the caller gave is a `ValueError`, an
/// interrupt a `KeyboardInterrupt`, anything else (I/O, a broken run directory) a
/// `RuntimeError`; each with the message the CLI prints.
fn to_py(e: anyhow::Error, value_error: bool) -> PyErr {
    if e.downcast_ref::<Interrupted>().is_some() {
        return PyKeyboardInterrupt::new_err("training interrupted");
    }
    let msg = format!("{e:#}");
    if value_error {
        PyValueError::new_err(msg)
    } else {
        PyRuntimeError::new_err(msg)
    }
}

/// The rows of a 2-D float32/float64 numpy array as f32, row-major: borrowed when the array is
/// C-contiguous float32, converted otherwise. A float64 value too large for f32 is an error
/// naming its row and column (training would see inf).
struct Floats<'py> {
    f32: Option<PyReadonlyArray2<'py, f32>>,
    owned: Option<Vec<f32>>,
    d: usize,
}

impl<'py> Floats<'py> {
    fn new(x: &Bound<'py, PyAny>, name: &str) -> PyResult<Self> {
        if let Ok(a) = x.cast::<PyArray2<f32>>() {
            let a = a.readonly();
            let d = a.shape()[1];
            if a.is_c_contiguous() {
                return Ok(Self {
                    f32: Some(a),
                    owned: None,
                    d,
                });
            }
            let owned = a.as_array().iter().copied().collect();
            return Ok(Self {
                f32: None,
                owned: Some(owned),
                d,
            });
        }
        if let Ok(a) = x.cast::<PyArray2<f64>>() {
            let a = a.readonly();
            let [n, d] = [a.shape()[0], a.shape()[1]];
            let mut owned = Vec::with_capacity(n * d);
            for (i, &v) in a.as_array().iter().enumerate() {
                let f = v as f32;
                if v.is_finite() && !f.is_finite() {
                    return Err(PyValueError::new_err(format!(
                        "{name}: row {}, column {} is {v:e}, too large for 32-bit floats \
                         (rescale the column)",
                        i / d.max(1),
                        i % d.max(1)
                    )));
                }
                owned.push(f);
            }
            return Ok(Self {
                f32: None,
                owned: Some(owned),
                d,
            });
        }
        Err(PyValueError::new_err(format!(
            "{name}: expected a 2-D float32 or float64 numpy array"
        )))
    }

    fn slice(&self) -> PyResult<Cow<'_, [f32]>> {
        match (&self.owned, &self.f32) {
            (Some(v), _) => Ok(Cow::Borrowed(v.as_slice())),
            (None, Some(a)) => Ok(Cow::Borrowed(
                a.as_slice()
                    .map_err(|e| PyValueError::new_err(e.to_string()))?,
            )),
            (None, None) => unreachable!("one of the two is set"),
        }
    }
}

/// candle's CPU kernels run on one thread pool per process, sized at the first tensor operation;
/// the count this process settled on.
static THREADS: OnceLock<usize> = OnceLock::new();

/// Settles the kernel threads of this process on the first call: `requested`, else candle's
/// default (the cores). Returns the count in use, which a later, different request cannot
/// change (the Python side warns).
fn kernel_threads(requested: Option<usize>) -> PyResult<usize> {
    if let Some(n) = requested {
        gmvae::limits::count("n_threads", n, gmvae::limits::MAX_THREADS)
            .map_err(|e| to_py(e, true))?;
    }
    Ok(*THREADS.get_or_init(|| match requested {
        Some(n) => {
            // Before candle's first tensor operation in this process (guarded by THREADS).
            std::env::set_var("RAYON_NUM_THREADS", n.to_string());
            std::env::set_var("CANDLE_NUM_THREADS", n.to_string());
            n
        }
        None => candle_core::utils::get_num_threads(),
    }))
}

/// The kernel threads this process uses, settling them (`n_threads`, else the cores) if no
/// model has run yet.
#[pyfunction]
#[pyo3(signature = (n_threads=None))]
fn threads(n_threads: Option<usize>) -> PyResult<usize> {
    kernel_threads(n_threads)
}

/// The epochs and the last training lower bound in a run directory's `metrics.csv`, or None
/// without one (an exported model on its own).
#[pyfunction]
fn final_lower_bound(run_dir: PathBuf) -> Option<(usize, f64)> {
    gmvae::record::final_lower_bound(&run_dir).ok()
}

/// The table preset's options as `opts.json` writes them: the starting point the estimator
/// overrides with its parameters.
#[pyfunction]
fn default_options() -> PyResult<String> {
    let o = Options::preset("table").map_err(|e| to_py(e, false))?;
    serde_json::to_string(&o).map_err(|e| PyRuntimeError::new_err(e.to_string()))
}

/// The words each word-valued option takes, by opts.json field (`table.scale`, ...).
#[pyfunction]
fn word_choices() -> Vec<(&'static str, Vec<String>)> {
    gmvae::options::word_choices()
}

/// Trains on the rows of `x` with the options of `options_json` (opts.json's fields; the run
/// directory is `out_dir/id`). `log` receives each line of the run's log (None: silent). Ctrl-C
/// stops training with `KeyboardInterrupt`. Returns the run directory, the last epoch's
/// training lower bound and the epochs trained.
#[pyfunction]
#[pyo3(signature = (x, options_json, log=None, n_threads=None))]
fn fit<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    options_json: &str,
    log: Option<Py<PyAny>>,
    n_threads: Option<usize>,
) -> PyResult<Bound<'py, PyDict>> {
    let mut opts: Options = serde_json::from_str(options_json)
        .map_err(|e| PyValueError::new_err(format!("options: {e}")))?;
    // The rows come from memory (the hooks below); opts.json names them as messages do.
    opts.data = Some(PathBuf::from(ROWS));
    let opts = opts.validated().map_err(|e| to_py(e, true))?;
    kernel_threads(n_threads)?;
    // Restarts up to one per core; `restarts` runs them one at a time unless the kernels run one
    // thread each.
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let rows = Floats::new(x, ROWS)?;
    let y = rows.slice()?;
    let d = rows.d;
    // Training runs on its own thread, without the GIL; this thread, the
    // caller's, waits for it and runs Python's signal handlers meanwhile (they run only on the
    // main thread): Ctrl-C's KeyboardInterrupt, or a handler's own exception, sets `stop`,
    // which training reads before every step, and is raised once training has stopped.
    let stop = AtomicBool::new(false);
    let interrupt = || stop.load(Ordering::Relaxed);
    let print_line = |line: &str| {
        if let Some(f) = &log {
            Python::attach(|py| {
                // A failing log function must not stop training.
                let _ = f.call1(py, (line,));
            })
        }
    };
    let mut raised: Option<PyErr> = None;
    let result = std::thread::scope(|scope| {
        let training = scope.spawn(|| {
            let hooks = Hooks {
                rows: Some(Rows {
                    name: ROWS,
                    y: &y,
                    d,
                }),
                log: Log::To(&print_line),
                interrupt: Some(&interrupt),
                ..Hooks::default()
            };
            gmvae::restarts::train_with(&opts, false, workers, hooks)
        });
        while !training.is_finished() {
            py.detach(|| std::thread::sleep(SIGNAL_POLL));
            if raised.is_none() {
                if let Err(e) = py.check_signals() {
                    raised = Some(e);
                    stop.store(true, Ordering::Relaxed);
                }
            }
        }
        py.detach(|| training.join())
    });
    let result = match result {
        Ok(r) => r.map(|o| o.summary),
        Err(panic) => std::panic::resume_unwind(panic),
    };
    if let Some(e) = raised {
        return Err(e);
    }
    // A failure to read or write files is the machine's (RuntimeError); any other is about
    // the rows or the parameters given (ValueError).
    let summary = result.map_err(|e| {
        let io = e
            .chain()
            .any(|c| c.downcast_ref::<std::io::Error>().is_some());
        to_py(e, !io)
    })?;
    let out = PyDict::new(py);
    out.set_item("run_dir", summary.run_dir.to_string_lossy().into_owned())?;
    let (lb, epochs) = match &summary.last {
        Some(r) => (r.lower_bound(), r.epoch),
        None => (f64::NAN, 0),
    };
    out.set_item("lower_bound", lb)?;
    out.set_item("n_iter", epochs)?;
    out.set_item("parameters", summary.parameters)?;
    Ok(out)
}

/// An f32 matrix handed to Python.
type Array<'py> = Bound<'py, PyArray2<f32>>;
/// What `__reduce__` returns: the function that rebuilds a model, and its arguments.
type Reduced<'py> = (Bound<'py, PyAny>, (Bound<'py, PyBytes>, String));

/// A trained model: the networks of a run directory's `config.json` and `model.safetensors`.
#[pyclass(module = "gmvae._gmvae", frozen)]
struct Model {
    config: ModelConfig,
    net: gmvae_models::Gmvae,
    /// The safetensors bytes and config.json text it was built from (pickling, `save`).
    bytes: Vec<u8>,
    config_json: String,
}

impl Model {
    fn build(bytes: Vec<u8>, config_json: String, source: &Path) -> anyhow::Result<Self> {
        let config = ModelConfig::parse(&config_json, &source.join(export::CONFIG_FILE))?;
        let net = export::model_from_bytes(
            &config,
            bytes.clone(),
            &source.join(export::MODEL_FILE),
            &CPU,
        )?;
        Ok(Self {
            config,
            net,
            bytes,
            config_json,
        })
    }

    /// `f` on the rows of `x` (checked: the model's width, finite values), with the GIL
    /// released.
    fn on_rows<'py, T: Send>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
        threads: Option<usize>,
        f: impl Fn(&[f32]) -> anyhow::Result<T> + Send + Sync,
    ) -> PyResult<T> {
        kernel_threads(threads)?;
        let rows = self.rows(x)?;
        let y = rows.slice()?;
        py.detach(|| {
            gmvae::data::table::check_finite(&y, rows.d, ROWS)?;
            f(&y)
        })
        .map_err(|e| to_py(e, true))
    }

    /// The rows of `x`, checked against the model's input width.
    fn rows<'py>(&self, x: &Bound<'py, PyAny>) -> PyResult<Floats<'py>> {
        let rows = Floats::new(x, ROWS)?;
        if rows.d != self.config.net.dy {
            return Err(PyValueError::new_err(format!(
                "X has {} features, but the model was trained on {}",
                rows.d, self.config.net.dy
            )));
        }
        Ok(rows)
    }
}

#[pymethods]
impl Model {
    /// The model of a run directory (`gmvae table` / `gmvae export` output, or `GMVAE.save`).
    #[staticmethod]
    fn load(run_dir: PathBuf) -> PyResult<Self> {
        let read = || -> anyhow::Result<Self> {
            // Checked (with the CLI's messages) before its text is kept.
            ModelConfig::load(&run_dir)?;
            let text = std::fs::read_to_string(run_dir.join(export::CONFIG_FILE))?;
            let model = run_dir.join(export::MODEL_FILE);
            let bytes = std::fs::read(&model).map_err(|e| {
                anyhow::anyhow!(
                    "cannot read {} ({e}; run `gmvae export {}`)",
                    model.display(),
                    run_dir.display()
                )
            })?;
            Self::build(bytes, text, &run_dir)
        };
        read().map_err(|e| to_py(e, true))
    }

    /// The model from `model.safetensors` bytes and `config.json` text (unpickling).
    #[staticmethod]
    fn from_bytes(safetensors: Vec<u8>, config_json: String) -> PyResult<Self> {
        Self::build(safetensors, config_json, Path::new("<pickle>")).map_err(|e| to_py(e, true))
    }

    /// The `model.safetensors` bytes and the `config.json` text.
    fn to_bytes<'py>(&self, py: Python<'py>) -> (Bound<'py, PyBytes>, String) {
        (PyBytes::new(py, &self.bytes), self.config_json.clone())
    }

    /// Pickling: rebuilt by `Model.from_bytes` from the weights and the config.
    fn __reduce__<'py>(&self, py: Python<'py>) -> PyResult<Reduced<'py>> {
        let rebuild = py.get_type::<Model>().getattr("from_bytes")?;
        Ok((rebuild, self.to_bytes(py)))
    }

    /// Writes `model.safetensors` and `config.json` into `run_dir` (created if missing), each
    /// atomically: a run directory that `gmvae predict --run` reads.
    fn save(&self, run_dir: PathBuf) -> PyResult<()> {
        let write = || -> anyhow::Result<()> {
            std::fs::create_dir_all(&run_dir)
                .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", run_dir.display()))?;
            gmvae::atomic::write(&run_dir.join(export::MODEL_FILE), &self.bytes)?;
            gmvae::atomic::write_str(&run_dir.join(export::CONFIG_FILE), &self.config_json)
        };
        write().map_err(|e| to_py(e, false))
    }

    /// Per row of `x`: the cluster posterior `[N, K]` (v1: q(z|y); v2: p(z | mean x, mean w))
    /// and the q(x|y) mean `[N, Dx]`.
    #[pyo3(signature = (x, batch_size=1000, n_threads=None))]
    fn posterior<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
        batch_size: usize,
        n_threads: Option<usize>,
    ) -> PyResult<(Array<'py>, Array<'py>)> {
        let (k, dx) = (self.config.net.k, self.config.net.dx);
        let (q, mx) = self.on_rows(py, x, n_threads, |y| {
            gmvae::predict::posterior_of_rows(&self.net, &self.config, y, batch_size, &CPU)
        })?;
        let n = q.len() / k;
        Ok((
            q.into_pyarray(py).reshape([n, k])?,
            mx.into_pyarray(py).reshape([n, dx])?,
        ))
    }

    /// The mean evidence lower bound per row of `x` (one Monte-Carlo sample per row, drawn
    /// from `seed`).
    #[pyo3(signature = (x, seed=1, batch_size=1000, n_threads=None))]
    fn lower_bound<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
        seed: u64,
        batch_size: usize,
        n_threads: Option<usize>,
    ) -> PyResult<f64> {
        self.on_rows(py, x, n_threads, |y| {
            gmvae::predict::lower_bound_of_rows(&self.net, &self.config, y, batch_size, seed, &CPU)
        })
    }

    /// K, the number of components.
    #[getter]
    fn n_components(&self) -> usize {
        self.config.net.k
    }

    /// Dy, the input width.
    #[getter]
    fn n_features(&self) -> usize {
        self.config.net.dy
    }

    /// The epochs the weights were trained for.
    #[getter]
    fn epoch(&self) -> usize {
        self.config.epoch
    }

    /// `config.json` as text.
    #[getter]
    fn config_json(&self) -> String {
        self.config_json.clone()
    }
}

#[pymodule]
fn _gmvae(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(default_options, m)?)?;
    m.add_function(wrap_pyfunction!(word_choices, m)?)?;
    m.add_function(wrap_pyfunction!(fit, m)?)?;
    m.add_function(wrap_pyfunction!(threads, m)?)?;
    m.add_function(wrap_pyfunction!(final_lower_bound, m)?)?;
    m.add_class::<Model>()?;
    Ok(())
}
