//! Which flags a run actually reads. A flag that does nothing for a preset (or for the options
//! the other flags chose) is refused with the reason, and the preset's `--help` says so in place
//! of a default: one rule serves both.

use crate::objective::ObjectiveKind;
use crate::options::{DataSet, NetworkKind, Opt, Options};
use anyhow::{bail, Result};

/// Why the flag of `opt` does nothing for a run with options `o`; `None` when the run reads it. Values that are harmless to restate (the data's own channels,
/// `--continuous 0` on a Bernoulli-only decoder) count as read.
pub fn unused(opt: Opt, o: &Options) -> Option<String> {
    let preset = &o.preset;
    let fc = o.network == NetworkKind::Fc;
    let why = match opt {
        Opt::spiral_points if o.data_set != DataSet::Spiral => {
            "only the spiral preset generates points".to_string()
        }
        Opt::spiral_points if o.data.is_some() => "--data gives the points".to_string(),
        Opt::svhn_extra if o.data_set != DataSet::Svhn => {
            "only svhn has extra_32x32.mat".to_string()
        }
        Opt::data_dir if matches!(o.data_set, DataSet::Spiral | DataSet::Table) => {
            format!("the {preset} preset reads no directory (use --data)")
        }
        Opt::data_dir if o.data.is_some() => "--data is read instead".to_string(),
        Opt::n_filters | Opt::n_channels if fc => "the fc network has no conv layers".to_string(),
        Opt::n_channels if o.n_channels != data_channels(o.data_set) => format!(
            "the data fixes the input channels at {}",
            data_channels(o.data_set)
        ),
        Opt::input_dimension if o.data_set == DataSet::Table => {
            "a table is always flat input".to_string()
        }
        Opt::input_dimension if fc && o.input_dimension != 1 => {
            "the fc network takes flat input (1)".to_string()
        }
        Opt::continuous if o.data_set == DataSet::Table => {
            "the table preset chooses its likelihood with --likelihood".to_string()
        }
        Opt::visual_gen if o.data_set == DataSet::Table && o.visual_gen > 0 => {
            "a table has no images to draw".to_string()
        }
        Opt::augment_weight if !o.has_images() => crate::options::NO_IMAGES_TO_AUGMENT.to_string(),
        Opt::lambda if o.objective == ObjectiveKind::V1 => {
            "it is the v2 objective's free-bits threshold (--objective v2)".to_string()
        }
        Opt::z_prior_weight if o.objective == ObjectiveKind::V2 => {
            "the v2 objective weights its z-prior by --cv-weight".to_string()
        }
        _ => return None,
    };
    Some(why)
}

fn data_channels(d: DataSet) -> usize {
    match d {
        DataSet::Svhn => 3,
        _ => 1,
    }
}

/// Refuses the first of the flags `given` that does nothing for `o`.
pub fn check(given: &[Opt], o: &Options) -> Result<()> {
    for &opt in given {
        if let Some(why) = unused(opt, o) {
            bail!(
                "{} does nothing for the {} preset: {why}",
                opt.long(),
                o.preset
            );
        }
    }
    Ok(())
}
