use candle_core::{Result, Tensor, Var};
use rand::rngs::StdRng;
use rand::Rng;

/// Torch7's default initialisation (gmvae-upstream.md §1.2), drawn from a seeded generator in
/// sorted name order so that one seed always gives the same weights:
/// Linear and (transposed) convolution weights and biases ~ U(±1/sqrt(fan_in)) with fan_in =
/// inputs x kernel area (for a transposed conv: its input planes); BatchNorm gamma ~ U(0, 1),
/// beta = 0, running mean 0 and variance 1.
///
/// Relies on the naming of this crate: BatchNorm layers live under a path segment starting with
/// `bn`, transposed convolutions under one starting with `deconv`.
pub fn torch7_init(vars: &[(String, Var)], rng: &mut StdRng) -> Result<()> {
    let mut sorted: Vec<&(String, Var)> = vars.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let fan_in_of = |prefix: &str| -> Option<usize> {
        let w = vars
            .iter()
            .find(|(n, _)| n == &format!("{prefix}.weight"))?;
        let d = w.1.dims();
        let layer = prefix.rsplit('.').next().unwrap_or("");
        Some(match d.len() {
            2 => d[1],
            4 if layer.starts_with("deconv") => d[0] * d[2] * d[3],
            4 => d[1] * d[2] * d[3],
            _ => d.iter().skip(1).product(),
        })
    };
    for (name, var) in sorted {
        let (prefix, leaf) = name.rsplit_once('.').unwrap_or(("", name));
        let layer = prefix.rsplit('.').next().unwrap_or("");
        let n = var.elem_count();
        let values: Vec<f32> = if layer.starts_with("bn") {
            match leaf {
                "weight" => (0..n).map(|_| rng.random_range(0.0..1.0)).collect(),
                "running_var" => vec![1.0; n],
                _ => vec![0.0; n],
            }
        } else {
            let fan_in = fan_in_of(prefix).unwrap_or(n);
            let b = 1.0 / (fan_in as f32).sqrt();
            (0..n).map(|_| rng.random_range(-b..b)).collect()
        };
        var.set(&Tensor::from_vec(values, var.shape(), var.device())?)?;
    }
    Ok(())
}
