//! Divergence: a non-finite loss, parameter or Adam moment stops training with a message that
//! says where (epoch, step), at which learning rate, and what to try, before anything of the
//! broken epoch is written; the last good checkpoint stays as it was.

use crate::optim::Adam;
use anyhow::{bail, Result};
use candle_core::{Tensor, Var};

/// The name of the first tensor holding a NaN or an infinity.
pub fn first_non_finite<'a>(
    tensors: impl IntoIterator<Item = (&'a str, &'a Tensor)>,
) -> Result<Option<&'a str>> {
    for (name, t) in tensors {
        // x - x is 0 for every finite x and NaN for NaN and ±inf; a sum of squares could
        // overflow on large but finite values instead.
        let s = t.sub(t)?.sum_all()?.to_dtype(candle_core::DType::F64)?;
        if !s.to_scalar::<f64>()?.is_finite() {
            return Ok(Some(name));
        }
    }
    Ok(None)
}

fn advice(epoch: usize, lr: f64) -> String {
    let smaller = format!("a smaller --learning-rate than {lr} (e.g. {:e})", lr / 10.0);
    match epoch {
        0 | 1 => format!(
            "training diverged before its first checkpoint; start again with {smaller} (the same \
             --id may be reused)"
        ),
        e => format!(
            "training diverged; the checkpoint of epoch {} is intact. Start a new run (another \
             --id) with {smaller}",
            e - 1
        ),
    }
}

/// Errors when the loss summed up to `step` (1-based) of `epoch` is not finite (training checks
/// every few steps, so the first bad step is at or before `step`).
pub fn check_loss(loss: f64, epoch: usize, step: usize, lr: f64) -> Result<()> {
    if !loss.is_finite() {
        bail!(
            "the loss became {loss} in epoch {epoch}, by step {step} (learning rate {lr}): {}",
            advice(epoch, lr)
        );
    }
    Ok(())
}

/// Errors when a model variable or an Adam moment is not finite after the `steps` steps of
/// `epoch`; called before the epoch's outputs and checkpoint are written.
pub fn check_state(
    vars: &[(String, Var)],
    adam: &Adam,
    epoch: usize,
    steps: usize,
    lr: f64,
) -> Result<()> {
    let state = adam.state_tensors()?;
    let all = vars
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_tensor()))
        .chain(state.iter().map(|(n, t)| (n.as_str(), t)));
    if let Some(name) = first_non_finite(all)? {
        bail!(
            "`{name}` became NaN or infinite during epoch {epoch} (found when checked after its \
             step {steps}; learning rate {lr}): {}",
            advice(epoch, lr)
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn finds_nan_and_inf_but_not_large_values() {
        let d = Device::Cpu;
        let ok = Tensor::new(&[1e38f32, -3e38, 0.0], &d).unwrap();
        let nan = Tensor::new(&[1.0f32, f32::NAN], &d).unwrap();
        let inf = Tensor::new(&[f64::NEG_INFINITY], &d).unwrap();
        assert_eq!(first_non_finite([("ok", &ok)]).unwrap(), None);
        assert_eq!(
            first_non_finite([("ok", &ok), ("nan", &nan)]).unwrap(),
            Some("nan")
        );
        assert_eq!(first_non_finite([("inf", &inf)]).unwrap(), Some("inf"));
        let e = check_loss(f64::NAN, 3, 7, 1.0).unwrap_err().to_string();
        assert!(
            e.contains("epoch 3, by step 7") && e.contains("epoch 2 is intact"),
            "{e}"
        );
    }
}
