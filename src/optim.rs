//! Adam, fused into one in-place pass per parameter tensor on the CPU.
//!
//! candle-nn's `AdamW` issues about a dozen tensor ops per parameter per step and costs more than
//! forward + backward on our MLPs (`../shared/reference/performance-notes.md`). On the CPU this
//! optimiser updates each variable's storage in place (a candle `InplaceOp2`, no copies of the
//! weights, no allocation per step), chunked over candle's CPU thread pool
//! (`gmvae_models::par`), with moments kept in host vectors. On other devices it uses tensor
//! ops on *detached* gradients (see [`Adam::step`]). Its state (t, m, v) is saved with
//! checkpoints so a resumed run continues exactly.
//!
//! Two update rules:
//! - persistent (default): Kingma & Ba / PyTorch, `theta -= lr * m_hat / (sqrt(v_hat) + eps)`;
//! - `reset_every_step` (upstream, gmvae-upstream.md §2.4): torch7's `optim.adam` handed a fresh
//!   state every step, so t = 1, m = (1-b1) g, v = (1-b2) g^2 and torch7's
//!   `theta -= lr*sqrt(1-b2)/(1-b1) * m / (sqrt(v) + eps)` reduces to
//!   `theta -= lr * g / (|g| + eps / sqrt(1-b2))` = `lr * g / (|g| + 3.16e-7)`.

use anyhow::{bail, Context, Result};
use candle_core::backprop::GradStore;
use candle_core::{CpuStorage, Device, InplaceOp2, Layout, Tensor, Var};
use gmvae_models::par::{self, SharedMut};
use std::collections::HashMap;
use std::sync::Mutex;

/// Adam hyper-parameters (Kingma & Ba); torch/optim's defaults.
#[derive(Debug, Clone, Copy)]
pub struct AdamConfig {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    /// Upstream quirk (gmvae-upstream.md §2.4): a fresh config table every step re-initialises
    /// t, m and v, so each update is essentially sign-SGD with step `lr`.
    pub reset_every_step: bool,
}

impl Default for AdamConfig {
    fn default() -> Self {
        Self {
            lr: 1e-4,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            reset_every_step: false,
        }
    }
}

/// The per-element coefficients of one step, in f32 for the fused loop.
#[derive(Debug, Clone, Copy)]
struct StepCoefficients {
    b1: f32,
    b2: f32,
    /// lr * bias correction of m.
    lr_c1: f32,
    /// Bias correction of v.
    c2: f32,
    eps: f32,
}

impl StepCoefficients {
    fn persistent(cfg: &AdamConfig, t: u64) -> Self {
        let t = t.min(i32::MAX as u64) as i32;
        Self {
            b1: cfg.beta1 as f32,
            b2: cfg.beta2 as f32,
            lr_c1: (cfg.lr / (1.0 - cfg.beta1.powi(t))) as f32,
            c2: (1.0 / (1.0 - cfg.beta2.powi(t))) as f32,
            eps: cfg.eps as f32,
        }
    }

    /// Kingma's update on one chunk: m, v and theta in place.
    #[inline]
    fn update(&self, theta: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32]) {
        let Self {
            b1,
            b2,
            lr_c1,
            c2,
            eps,
        } = *self;
        // Equal-length zips with no bounds checks: the compiler vectorises this loop.
        for (((th, &g), m), v) in theta.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
            *m = b1 * *m + (1.0 - b1) * g;
            *v = b2 * *v + (1.0 - b2) * g * g;
            *th -= lr_c1 * *m / ((*v * c2).sqrt() + eps);
        }
    }
}

/// torch7's Adam from a fresh state (upstream's every-step reset): `lr * g / (|g| + eps')`.
#[derive(Debug, Clone, Copy)]
struct ResetCoefficients {
    lr: f32,
    /// eps / sqrt(1 - beta2).
    eps: f32,
}

impl ResetCoefficients {
    fn new(cfg: &AdamConfig) -> Self {
        Self {
            lr: cfg.lr as f32,
            eps: (cfg.eps / (1.0 - cfg.beta2).sqrt()) as f32,
        }
    }

    #[inline]
    fn update(&self, theta: &mut [f32], g: &[f32]) {
        let Self { lr, eps } = *self;
        for (th, &g) in theta.iter_mut().zip(g) {
            *th -= lr * g / (g.abs() + eps);
        }
    }
}

/// Elements per task: large enough that scheduling is noise, small enough to use both
/// cores on the 10^5-10^6-element weight matrices.
const CHUNK: usize = 1 << 15;

/// The fused update of one variable, applied in place to its storage.
struct FusedStep<'a> {
    rule: Rule<'a>,
}

enum Rule<'a> {
    /// Kingma's rule with the variable's moments (m, v), updated in the same pass.
    Persistent(StepCoefficients, Mutex<(&'a mut [f32], &'a mut [f32])>),
    Reset(ResetCoefficients),
}

impl InplaceOp2 for FusedStep<'_> {
    fn name(&self) -> &'static str {
        "gmvae-adam"
    }

    fn cpu_fwd(
        &self,
        s1: &mut CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<()> {
        let (CpuStorage::F32(theta), CpuStorage::F32(g)) = (s1, s2) else {
            candle_core::bail!("gmvae-adam: parameters and gradients must be f32");
        };
        let (Some((a1, b1)), Some((a2, b2))) = (l1.contiguous_offsets(), l2.contiguous_offsets())
        else {
            candle_core::bail!("gmvae-adam: parameters and gradients must be contiguous");
        };
        let (theta, g) = (&mut theta[a1..b1], &g[a2..b2]);
        if theta.len() != g.len() {
            candle_core::bail!(
                "gmvae-adam: {} parameters, {} gradients",
                theta.len(),
                g.len()
            );
        }
        match &self.rule {
            Rule::Persistent(c, moments) => {
                let mut guard = moments
                    .lock()
                    .map_err(|_| candle_core::Error::Msg("gmvae-adam: poisoned moments".into()))?;
                let (m, v) = &mut *guard;
                if m.len() != g.len() || v.len() != g.len() {
                    candle_core::bail!("gmvae-adam: {} gradients, {} moments", g.len(), m.len());
                }
                let (th, m, v) = (SharedMut::new(theta), SharedMut::new(m), SharedMut::new(v));
                par::for_each_chunk(g.len(), CHUNK, |a, len| {
                    // SAFETY: this task is the only one touching elements a..a+len.
                    let (th, m, v) =
                        unsafe { (th.slice(a, len), m.slice(a, len), v.slice(a, len)) };
                    c.update(th, &g[a..a + len], m, v);
                });
            }
            Rule::Reset(c) => {
                let th = SharedMut::new(theta);
                par::for_each_chunk(g.len(), CHUNK, |a, len| {
                    // SAFETY: this task is the only one touching elements a..a+len.
                    c.update(unsafe { th.slice(a, len) }, &g[a..a + len]);
                });
            }
        }
        Ok(())
    }
}

/// `g` itself when contiguous (the usual case), else a contiguous copy.
fn contiguous(g: &Tensor) -> Result<Tensor> {
    Ok(if g.is_contiguous() {
        g.clone()
    } else {
        g.contiguous()?
    })
}

enum Moments {
    /// Host copies, updated in place by the fused loop.
    Host { m: Vec<f32>, v: Vec<f32> },
    /// Device tensors, updated with tensor ops.
    Device { m: Tensor, v: Tensor },
}

struct Slot {
    name: String,
    var: Var,
    moments: Moments,
}

/// Adam over a named set of variables.
pub struct Adam {
    cfg: AdamConfig,
    t: u64,
    slots: Vec<Slot>,
}

impl Adam {
    /// `vars` are (name, var) pairs; the names key the saved state.
    pub fn new(vars: Vec<(String, Var)>, cfg: AdamConfig) -> Result<Self> {
        let slots = vars
            .into_iter()
            .map(|(name, var)| {
                let moments = Self::zero_moments(&var)?;
                Ok(Slot { name, var, moments })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { cfg, t: 0, slots })
    }

    /// As [`Adam::new`], but with the tensor-op path that non-CPU devices use, on any device:
    /// lets the CPU tests check the maths and the graph hygiene of the CUDA path.
    #[doc(hidden)]
    pub fn new_with_tensor_moments(vars: Vec<(String, Var)>, cfg: AdamConfig) -> Result<Self> {
        let slots = vars
            .into_iter()
            .map(|(name, var)| {
                let moments = Moments::Device {
                    m: var.zeros_like()?,
                    v: var.zeros_like()?,
                };
                Ok(Slot { name, var, moments })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { cfg, t: 0, slots })
    }

    fn zero_moments(var: &Var) -> Result<Moments> {
        Ok(match var.device() {
            Device::Cpu => {
                let n = var.elem_count();
                Moments::Host {
                    m: vec![0.0; n],
                    v: vec![0.0; n],
                }
            }
            _ => Moments::Device {
                m: var.zeros_like()?,
                v: var.zeros_like()?,
            },
        })
    }

    /// Number of steps taken so far.
    pub fn steps(&self) -> u64 {
        self.t
    }

    pub fn learning_rate(&self) -> f64 {
        self.cfg.lr
    }

    /// One Adam update from the gradients in `grads`; variables without a gradient are left alone.
    pub fn step(&mut self, grads: &GradStore) -> Result<()> {
        if self.cfg.reset_every_step {
            // Upstream's state never survives a step (§2.4): nothing to remember.
            self.t = 1;
            for s in &self.slots {
                let Some(g) = grads.get(&s.var) else { continue };
                let on_host = matches!(s.moments, Moments::Host { .. });
                Self::reset_step(&self.cfg, &s.var, g, on_host)?;
            }
            return Ok(());
        }
        self.t += 1;
        let c = StepCoefficients::persistent(&self.cfg, self.t);
        for s in &mut self.slots {
            let Some(g) = grads.get(&s.var) else { continue };
            match &mut s.moments {
                Moments::Host { m, v } => {
                    let g = contiguous(g)?;
                    let op = FusedStep {
                        rule: Rule::Persistent(c, Mutex::new((m.as_mut_slice(), v.as_mut_slice()))),
                    };
                    s.var.inplace_op2(&g, &op)?;
                }
                Moments::Device { m, v } => {
                    // A variable's gradient is not detached by candle's backward when the
                    // variable is a direct argument of the op (conv kernels): it still holds the
                    // step's whole forward graph. Moments built from it would chain every step's
                    // graph to the next, keeping all activations alive (the CUDA out-of-memory).
                    let g = g.detach();
                    let (b1, b2) = (self.cfg.beta1, self.cfg.beta2);
                    *m = ((m.detach() * b1)? + (&g * (1.0 - b1))?)?;
                    *v = ((v.detach() * b2)? + (g.sqr()? * (1.0 - b2))?)?;
                    let denom = ((&*v * c.c2 as f64)?.sqrt()? + self.cfg.eps)?;
                    let delta = (m.div(&denom)? * (c.lr_c1 as f64))?;
                    s.var.set(&(s.var.as_tensor().detach() - delta)?)?;
                }
            }
        }
        Ok(())
    }

    fn reset_step(cfg: &AdamConfig, var: &Var, g: &Tensor, on_host: bool) -> Result<()> {
        let c = ResetCoefficients::new(cfg);
        match on_host {
            true => {
                let op = FusedStep {
                    rule: Rule::Reset(c),
                };
                var.inplace_op2(&contiguous(g)?, &op)?;
            }
            false => {
                let g = g.detach();
                let delta = (g.div(&(g.abs()? + c.eps as f64)?)? * c.lr as f64)?;
                var.set(&(var.as_tensor().detach() - delta)?)?;
            }
        }
        Ok(())
    }

    /// The state as named tensors (`adam.m.<name>`, `adam.v.<name>`, `adam.t`), for checkpoints.
    pub fn state_tensors(&self) -> Result<Vec<(String, Tensor)>> {
        let mut out = Vec::with_capacity(2 * self.slots.len() + 1);
        for s in &self.slots {
            let (m, v) = match &s.moments {
                Moments::Host { m, v } => (
                    Tensor::from_slice(m, s.var.shape(), &Device::Cpu)?,
                    Tensor::from_slice(v, s.var.shape(), &Device::Cpu)?,
                ),
                Moments::Device { m, v } => (m.clone(), v.clone()),
            };
            out.push((format!("adam.m.{}", s.name), m));
            out.push((format!("adam.v.{}", s.name), v));
        }
        // Steps as f64 keep exact integers far beyond any run length.
        out.push((
            "adam.t".to_string(),
            Tensor::new(&[self.t as f64], &Device::Cpu)?,
        ));
        Ok(out)
    }

    /// Restores the state written by [`Adam::state_tensors`].
    pub fn load_state(&mut self, tensors: &HashMap<String, Tensor>) -> Result<()> {
        let t = tensors
            .get("adam.t")
            .context("checkpoint has no optimiser step count `adam.t`")?;
        self.t = t.to_vec1::<f64>()?[0] as u64;
        for s in &mut self.slots {
            let get = |kind: &str| -> Result<Tensor> {
                let key = format!("adam.{kind}.{}", s.name);
                let t = tensors
                    .get(&key)
                    .with_context(|| format!("checkpoint has no optimiser state `{key}`"))?;
                if t.dims() != s.var.dims() {
                    bail!(
                        "optimiser state `{key}` has shape {:?}, the model expects {:?}",
                        t.dims(),
                        s.var.dims()
                    );
                }
                Ok(t.clone())
            };
            let (m, v) = (get("m")?, get("v")?);
            s.moments = match s.var.device() {
                Device::Cpu => Moments::Host {
                    m: m.flatten_all()?.to_vec1::<f32>()?,
                    v: v.flatten_all()?.to_vec1::<f32>()?,
                },
                dev => Moments::Device {
                    m: m.to_device(dev)?,
                    v: v.to_device(dev)?,
                },
            };
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_nn::Optimizer;

    fn quadratic_run(fused: bool, steps: usize) -> Vec<f32> {
        let x0 = [0.5f32, -1.5, 2.0, 0.25];
        let var = Var::from_slice(&x0, 4, &Device::Cpu).unwrap();
        let target = Tensor::new(&[1.0f32, 0.0, -1.0, 3.0], &Device::Cpu).unwrap();
        let mut ours = Adam::new(
            vec![("x".into(), var.clone())],
            AdamConfig {
                lr: 0.05,
                ..Default::default()
            },
        )
        .unwrap();
        let params = candle_nn::ParamsAdamW {
            lr: 0.05,
            weight_decay: 0.0,
            ..Default::default()
        };
        let mut stock = candle_nn::AdamW::new(vec![var.clone()], params).unwrap();
        for _ in 0..steps {
            let loss = (var.as_tensor() - &target)
                .unwrap()
                .sqr()
                .unwrap()
                .sum_all()
                .unwrap();
            let grads = loss.backward().unwrap();
            if fused {
                ours.step(&grads).unwrap()
            } else {
                stock.step(&grads).unwrap()
            }
        }
        var.as_tensor().to_vec1().unwrap()
    }

    #[test]
    fn matches_candle_adamw_without_decay() {
        let a = quadratic_run(true, 25);
        let b = quadratic_run(false, 25);
        for (x, y) in a.iter().zip(&b) {
            assert!((x - y).abs() < 1e-5, "{a:?} vs {b:?}");
        }
        // and it actually moved towards the target
        assert!((a[0] - 0.5).abs() > 0.5);
    }

    #[test]
    fn reset_every_step_is_sign_sgd() {
        let var = Var::from_slice(&[1.0f32, -2.0], 2, &Device::Cpu).unwrap();
        let cfg = AdamConfig {
            lr: 0.1,
            reset_every_step: true,
            ..Default::default()
        };
        let mut opt = Adam::new(vec![("x".into(), var.clone())], cfg).unwrap();
        for _ in 0..3 {
            // gradient of sum(x^3 * 7) is 21 x^2 > 0: every step moves by ~ -lr
            let loss = (var.as_tensor().powf(3.0).unwrap() * 7.0)
                .unwrap()
                .sum_all()
                .unwrap();
            opt.step(&loss.backward().unwrap()).unwrap();
        }
        let x = var.as_tensor().to_vec1::<f32>().unwrap();
        assert!(
            (x[0] - 0.7).abs() < 1e-4 && (x[1] + 2.3).abs() < 1e-4,
            "{x:?}"
        );
        assert_eq!(opt.steps(), 1);
    }

    #[test]
    fn state_round_trips() {
        let var = Var::from_slice(&[1.0f32, 2.0, 3.0], 3, &Device::Cpu).unwrap();
        let mut a = Adam::new(vec![("p".into(), var.clone())], AdamConfig::default()).unwrap();
        let loss = var.as_tensor().sqr().unwrap().sum_all().unwrap();
        a.step(&loss.backward().unwrap()).unwrap();
        let state: HashMap<_, _> = a.state_tensors().unwrap().into_iter().collect();
        let mut b = Adam::new(vec![("p".into(), var.clone())], AdamConfig::default()).unwrap();
        b.load_state(&state).unwrap();
        assert_eq!(b.steps(), 1);
        let again: HashMap<_, _> = b.state_tensors().unwrap().into_iter().collect();
        let m1 = state["adam.m.p"].to_vec1::<f32>().unwrap();
        let m2 = again["adam.m.p"].to_vec1::<f32>().unwrap();
        assert_eq!(m1, m2);
        let mut missing = state.clone();
        missing.remove("adam.v.p");
        assert!(b
            .load_state(&missing)
            .unwrap_err()
            .to_string()
            .contains("adam.v.p"));
    }
}

#[cfg(test)]
mod fused_tests {
    use super::*;

    /// Runs `steps` steps of minimising sum((x - target)^2) on a 70,000-element tensor (more than
    /// two chunks) with either path and returns the parameters.
    fn run(tensor_path: bool, reset: bool, steps: usize) -> Vec<f32> {
        let n = 70_000;
        let x0: Vec<f32> = (0..n)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / 25.0)
            .collect();
        let var = Var::from_vec(x0, n, &Device::Cpu).unwrap();
        let target = Tensor::ones(n, candle_core::DType::F32, &Device::Cpu).unwrap();
        let cfg = AdamConfig {
            lr: 0.01,
            reset_every_step: reset,
            ..Default::default()
        };
        let vars = vec![("x".to_string(), var.clone())];
        let mut opt = if tensor_path {
            Adam::new_with_tensor_moments(vars, cfg).unwrap()
        } else {
            Adam::new(vars, cfg).unwrap()
        };
        for _ in 0..steps {
            let loss = (var.as_tensor() - &target)
                .unwrap()
                .sqr()
                .unwrap()
                .sum_all()
                .unwrap();
            opt.step(&loss.backward().unwrap()).unwrap();
        }
        var.as_tensor().to_vec1().unwrap()
    }

    #[test]
    fn fused_host_pass_matches_the_tensor_path() {
        for reset in [false, true] {
            let a = run(false, reset, 7);
            let b = run(true, reset, 7);
            let worst = a
                .iter()
                .zip(&b)
                .map(|(x, y)| (x - y).abs())
                .fold(0f32, f32::max);
            assert!(worst < 1e-5, "reset={reset}: paths differ by {worst}");
            // Both moved: 7 steps of ~lr each for the elements far from the target.
            assert!((a[0] - run(false, reset, 0)[0]).abs() > 0.05);
        }
    }

    #[test]
    fn reset_rule_puts_eps_where_torch7_does() {
        // A gradient of 1e-7 (loss 1e-7 * x): torch7 from a fresh state moves by
        // lr * 1e-7 / (1e-7 + 1e-8 / sqrt(0.001)) = 0.2403 lr; Kingma's rule at t = 1 would move
        // by lr * 1e-7 / (1e-7 + 1e-8) = 0.909 lr.
        for tensor_path in [false, true] {
            let var = Var::from_slice(&[0.0f32], 1, &Device::Cpu).unwrap();
            let cfg = AdamConfig {
                lr: 1.0,
                reset_every_step: true,
                ..Default::default()
            };
            let vars = vec![("x".to_string(), var.clone())];
            let mut opt = if tensor_path {
                Adam::new_with_tensor_moments(vars, cfg).unwrap()
            } else {
                Adam::new(vars, cfg).unwrap()
            };
            let loss = (var.as_tensor() * 1e-7).unwrap().sum_all().unwrap();
            opt.step(&loss.backward().unwrap()).unwrap();
            let x = var.as_tensor().to_vec1::<f32>().unwrap()[0];
            let expect = -1e-7 / (1e-7 + 1e-8 / 0.001f64.sqrt());
            assert!((x as f64 - expect).abs() < 1e-4, "{x} vs {expect}");
        }
    }

    #[test]
    fn tensor_moments_do_not_keep_the_step_graph_alive() {
        // A conv kernel is a direct argument of the conv op, so candle leaves its gradient
        // attached to the forward graph; the moments must not inherit that graph, or every
        // step's activations stay alive (the CUDA out-of-memory of conv training).
        let dev = Device::Cpu;
        let kernel = Var::from_vec(vec![0.1f32; 2 * 3 * 3], (2, 1, 3, 3), &dev).unwrap();
        let scale = Var::from_slice(&[2.0f32], 1, &dev).unwrap();
        let image = Tensor::ones((1, 1, 5, 5), candle_core::DType::F32, &dev).unwrap();
        let mut opt = Adam::new_with_tensor_moments(
            vec![("k".into(), kernel.clone()), ("s".into(), scale.clone())],
            AdamConfig::default(),
        )
        .unwrap();
        for _ in 0..2 {
            let input = image.broadcast_mul(scale.as_tensor()).unwrap();
            let loss = input
                .conv2d(&kernel, 0, 1, 1, 1)
                .unwrap()
                .sum_all()
                .unwrap();
            let grads = loss.backward().unwrap();
            assert!(
                grads.get(&kernel).unwrap().track_op(),
                "candle changed: kernel grads detached"
            );
            opt.step(&grads).unwrap();
        }
        for s in &opt.slots {
            let Moments::Device { m, v } = &s.moments else {
                panic!("tensor path expected")
            };
            assert!(
                !m.track_op() && !v.track_op(),
                "moments of {} hold a graph",
                s.name
            );
        }
    }
}
