//! Device selection for `--gpu` / `--gpu-id`.

use anyhow::{bail, Result};
use candle_core::Device;

/// The CPU for `gpu == 0`; CUDA device `gpu_id` for `gpu == 1`.
pub fn select(gpu: u8, gpu_id: usize) -> Result<Device> {
    match gpu {
        0 => Ok(Device::Cpu),
        1 if !candle_core::utils::cuda_is_available() => bail!(
            "--gpu 1 was requested, but this binary was built without CUDA support. \
             Rebuild with `cargo build --release --features cuda` (needs nvcc; see README \
             \"GPU\"), or run on the CPU with --gpu 0"
        ),
        1 => Device::new_cuda(gpu_id).map_err(|e| {
            anyhow::anyhow!("cannot open CUDA device {gpu_id} (--gpu-id {gpu_id}): {e}")
        }),
        other => bail!("--gpu takes 0 (CPU) or 1 (CUDA), found {other}"),
    }
}
