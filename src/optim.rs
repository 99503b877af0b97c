//! Adam with persistent state, fused into one pass per parameter on the CPU.
//!
//! candle-nn's `AdamW` issues about a dozen tensor ops per parameter per step and costs more than
//! forward + backward on our MLPs (`../shared/reference/performance-notes.md`). This optimiser
//! does the same maths (bias-corrected moments, no weight decay) in one loop over host slices on
//! the CPU, and with tensor ops on other devices. Its state (t, m, v) is saved with checkpoints so
//! a resumed run continues exactly.

use anyhow::{bail, Context, Result};
use candle_core::backprop::GradStore;
use candle_core::{Device, Tensor, Var};
use std::collections::HashMap;

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
            self.t = 0;
            for s in &mut self.slots {
                s.moments = Self::zero_moments(&s.var)?;
            }
        }
        self.t += 1;
        let AdamConfig {
            lr,
            beta1: b1,
            beta2: b2,
            eps,
            ..
        } = self.cfg;
        let c1 = 1.0 / (1.0 - b1.powi(self.t as i32));
        let c2 = 1.0 / (1.0 - b2.powi(self.t as i32));
        for s in &mut self.slots {
            let Some(g) = grads.get(&s.var) else { continue };
            match &mut s.moments {
                Moments::Host { m, v } => {
                    let g = g.flatten_all()?.to_vec1::<f32>()?;
                    let mut th = s.var.as_tensor().flatten_all()?.to_vec1::<f32>()?;
                    let (b1, b2, lr, eps, c1, c2) = (
                        b1 as f32, b2 as f32, lr as f32, eps as f32, c1 as f32, c2 as f32,
                    );
                    for i in 0..th.len() {
                        m[i] = b1 * m[i] + (1.0 - b1) * g[i];
                        v[i] = b2 * v[i] + (1.0 - b2) * g[i] * g[i];
                        th[i] -= lr * (m[i] * c1) / ((v[i] * c2).sqrt() + eps);
                    }
                    s.var
                        .set(&Tensor::from_vec(th, s.var.shape(), &Device::Cpu)?)?;
                }
                Moments::Device { m, v } => {
                    *m = ((&*m * b1)? + (g * (1.0 - b1))?)?;
                    *v = ((&*v * b2)? + (g.sqr()? * (1.0 - b2))?)?;
                    let mhat = (&*m * c1)?;
                    let vhat = ((&*v * c2)?.sqrt()? + eps)?;
                    let next = (s.var.as_tensor() - (mhat.div(&vhat)? * lr)?)?;
                    s.var.set(&next)?;
                }
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
