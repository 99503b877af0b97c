//! What a run trains on: the data set its options name (or the rows a library caller holds),
//! read and checked before the run directory is created, so that bad data leaves nothing behind.

use crate::data::{self, Dataset, Split};
use crate::epoch::{self, Tail};
use crate::hooks::{Hooks, Log};
use crate::options::{DataSet, Options};
use crate::rng::{self, stream};
use anyhow::{bail, Result};
use std::path::Path;

/// Loads the data set `opts` names.
pub fn load_dataset(opts: &Options) -> Result<Dataset> {
    load_data(opts, Hooks::default()).map(|(d, _)| d)
}

/// The data set `opts` names (or the table rows `hooks` holds) and, for a table, what loading it
/// settled (its scaling and `auto` likelihood), which the run records in opts.json and
/// config.json.
pub(crate) fn load_data(
    opts: &Options,
    hooks: Hooks,
) -> Result<(Dataset, Option<data::table::Fitted>)> {
    let quiet = |_: &str| {};
    let hooks = match hooks.data_said {
        true => Hooks {
            log: Log::To(&quiet),
            ..hooks
        },
        false => hooks,
    };
    if let (DataSet::Table, Some(rows)) = (opts.data_set, hooks.rows) {
        let path = Path::new(rows.name);
        return data::table::load_rows(&opts.table_spec_at(path)?, rows, hooks.log)
            .map(|(d, f)| (d, Some(f)));
    }
    let mut dataset = match opts.data_set {
        DataSet::Spiral => match &opts.data {
            Some(path) => data::spiral::load_file(path),
            None => {
                let mut r = rng::rng(opts.seed_of_data(), stream::DATA);
                data::spiral::generate(opts.spiral_points, &mut r)
            }
        },
        // The Serket tutorials' 3000 images, to compare GMVAE with the modular baselines.
        DataSet::Mnist => match &opts.data {
            Some(zip) => serket_images(zip),
            None => data::mnist::load_dir(&opts.data_dir),
        },
        DataSet::Svhn => data::svhn::load_dir(&opts.data_dir, opts.svhn_extra),
        // Applies --train-size itself (before fitting the scaling).
        DataSet::Table => {
            return data::table::load(&opts.table_spec()?, hooks.log).map(|(d, f)| (d, Some(f)))
        }
    }?;
    if let Some(n) = opts.train_size {
        dataset.train = dataset.train.head(n, dataset.dy);
    }
    Ok((dataset, None))
}

/// Reads and checks the data `opts` names, as a run does before it creates its directory
/// (restarts check once before any of them starts, and say here what they read). Returns `opts`
/// with what loading settled (a table's fitted scaling and likelihood), as the run records them.
pub fn check_data(opts: &Options, hooks: Hooks) -> Result<Options> {
    let (dataset, fitted) = load_data(opts, hooks)?;
    let settled = match fitted {
        Some(f) => opts.with_fitted(f)?,
        None => opts.clone(),
    };
    check_rows(&settled, &dataset)?;
    Ok(settled)
}

/// The training rows must fill one batch and give each of the K components one row. Returns the
/// steps of an epoch.
pub(crate) fn check_rows(opts: &Options, dataset: &Dataset) -> Result<usize> {
    let (n, b, k) = (dataset.train.n, opts.batch_size, opts.k);
    let source = match &opts.data {
        Some(p) => p.display().to_string(),
        None => dataset.name.clone(),
    };
    if n < b {
        // One short batch per epoch would train, but not with the batch the flags ask for.
        bail!(
            "{source}: the training set has {n} points, fewer than one batch of {b} \
             (--batch-size; give {} or less)",
            n.max(2)
        );
    }
    if n < k {
        bail!("{source}: the training set has {n} points, fewer than the K = {k} components (-K)");
    }
    Ok(epoch::steps(n, b, Tail::DropSingle))
}

/// The 3000 MNIST images of the Serket tutorials (`data.zip`), trained and scored on the same
/// set as Serket does.
fn serket_images(zip: &Path) -> Result<Dataset> {
    let (images, labels) = crate::serket::data::load_images(zip)?;
    if images.cols != 784 {
        bail!(
            "{}: images have {} columns, expected 784",
            zip.display(),
            images.cols
        );
    }
    Ok(Dataset {
        name: "serket-mnist".into(),
        dy: 784,
        image_shape: Some([1, 28, 28]),
        train: Split::new(images.to_f32(), Some(labels), 784)?,
        test: None,
    })
}
