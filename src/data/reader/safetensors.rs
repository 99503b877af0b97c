//! safetensors tables: one 2-D data tensor, and optionally a 1-D labels tensor.

use super::{format_label, Batch, Source, TableReader};
use anyhow::{bail, Context, Result};

impl TableReader {
    pub(super) fn open_safetensors(
        &mut self,
        label: Option<&str>,
        tensor: Option<&str>,
    ) -> Result<()> {
        use candle_core::{DType, Device};
        let bytes = std::fs::read(&self.path)
            .with_context(|| format!("cannot read table file {}", self.path.display()))?;
        let tensors = candle_core::safetensors::load_buffer(&bytes, &Device::Cpu)
            .with_context(|| format!("{} is not a safetensors file", self.path.display()))?;
        let mut names: Vec<&String> = tensors.keys().collect();
        names.sort();
        let listing = || {
            names
                .iter()
                .map(|n| format!("{n} {:?}", tensors[*n].dims()))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let data_name = match tensor {
            Some(t) => t.to_string(),
            None => {
                let two_d: Vec<&&String> =
                    names.iter().filter(|n| tensors[**n].rank() == 2).collect();
                match two_d[..] {
                    [one] => (*one).clone(),
                    _ => bail!(
                        "{}: expected exactly one 2-D tensor (or name it with --tensor); found {}",
                        self.path.display(),
                        listing()
                    ),
                }
            }
        };
        let t = tensors.get(&data_name).with_context(|| {
            format!(
                "{}: no tensor `{data_name}` (found {})",
                self.path.display(),
                listing()
            )
        })?;
        let (n, d) = t.dims2().with_context(|| {
            format!(
                "{}: tensor `{data_name}` must be 2-D (N x D), found {:?}",
                self.path.display(),
                t.dims()
            )
        })?;
        let y: Vec<f32> = t.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?;
        for (i, v) in y.iter().enumerate() {
            if !v.is_finite() {
                bail!(
                    "{}: tensor `{data_name}` row {} column {} is {v} (impute or drop the row)",
                    self.path.display(),
                    i / d,
                    i % d
                );
            }
        }
        let labels = match label {
            None => None,
            Some(l) => {
                let lt = tensors.get(l).with_context(|| {
                    format!(
                        "{}: no labels tensor `{l}` (found {})",
                        self.path.display(),
                        listing()
                    )
                })?;
                let lv: Vec<f64> = lt.to_dtype(DType::F64)?.flatten_all()?.to_vec1()?;
                if lt.rank() != 1 || lv.len() != n {
                    bail!(
                        "{}: labels tensor `{l}` must be 1-D with {n} entries, found {:?}",
                        self.path.display(),
                        lt.dims()
                    );
                }
                self.label_idx = Some(usize::MAX);
                Some(lv.iter().map(|v| format_label(*v)).collect())
            }
        };
        self.d = d;
        self.bytes_read = self.file_len;
        self.source = Source::Memory {
            batch: Batch { y, labels, rows: n },
            at: 0,
        };
        Ok(())
    }
}
