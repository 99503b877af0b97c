//! Clustering-quality regression test (issue 13): a synthetic MNIST-format problem that needs real
//! clustering — 10 random binary "digit" prototypes in 784 pixels, each image its prototype with
//! a fifth of its pixels resampled — trained with the `mnist_fc` preset's recipe (optimiser,
//! objective, weights, start) on a small network with K = 16. The recipe must find the
//! clusters, with at least 9 of the 10 prototypes on components of their own; the collapsed
//! behaviour (a few components take every image) fails it.

use gmvae::data::mnist;
use gmvae::options::Options;
use rand::{Rng, SeedableRng};

const CLASSES: usize = 10;

/// Writes train/test IDX files of the synthetic mixture into `dir`.
fn write_mixture(dir: &std::path::Path, n_train: usize, n_test: usize, seed: u64) {
    let mut r = rand::rngs::StdRng::seed_from_u64(seed);
    let prototypes: Vec<Vec<u8>> = (0..CLASSES)
        .map(|_| {
            (0..784)
                .map(|_| if r.random_bool(0.3) { 255 } else { 0 })
                .collect()
        })
        .collect();
    let mut draw = |n: usize| {
        let labels: Vec<u8> = (0..n).map(|_| r.random_range(0..CLASSES) as u8).collect();
        let mut images = Vec::with_capacity(n * 784);
        for &l in &labels {
            for &p in &prototypes[l as usize] {
                images.push(if r.random_bool(0.2) {
                    r.random_range(0..=255)
                } else {
                    p
                });
            }
        }
        (images, labels)
    };
    let (im, lb) = draw(n_train);
    mnist::write_idx(dir, "train", &im, 28, 28, &lb, false).unwrap();
    let (im, lb) = draw(n_test);
    mnist::write_idx(dir, "t10k", &im, 28, 28, &lb, false).unwrap();
}

/// `base`: the options before the test's sizes, e.g. `Options::preset`.
fn train(
    base: fn(&str) -> anyhow::Result<Options>,
    k: usize,
    seed: u64,
    tweak: impl Fn(&mut Options),
) -> gmvae::train::EpochRecord {
    let d = tempfile::tempdir().unwrap();
    write_mixture(d.path(), 2000, 1000, 100 + seed);
    let mut o = base("mnist_fc").unwrap();
    (o.data_dir, o.out_dir, o.id) = (d.path().into(), d.path().into(), "run".into());
    (o.hidden_size, o.x_size, o.w_size, o.k) = (128, 16, 8, k);
    (o.epoch, o.seed, o.visual_gen, o.dump_size) = (20, seed, 0, 10);
    tweak(&mut o);
    gmvae::train::train(&o.clone().validated().unwrap(), false)
        .unwrap()
        .last
        .unwrap()
}

/// Trains K = 16 components on the 10 prototypes and checks the clusters: the partition matches
/// the prototypes (NMI >= 0.95) and at least 9 components are in use. Measured when written:
/// the marginal z-prior recipe gave NMI 0.967 / 9 components (seed 1) and 1.000 / 10 (seed 2);
/// upstream's per-point z-prior with persistent Adam 0.803 / 5 and 0.920 / 8; with the mixture
/// start (`--pretrain-epochs 3`) 0.997 / 12 and 0.990 / 12. The preset's recipe since session
/// 8 (v2, 20 autoencoder epochs) gives 0.975 / 12 and 0.980 / 12, from a random start 0.967 / 9
/// and 1.000 / 10; upstream's preset and recipe (`Options::upstream`) 0.847 / 8 on seed 1.
fn check(
    base: fn(&str) -> anyhow::Result<Options>,
    tweak: impl Fn(&mut Options) + Copy,
) -> Result<(), String> {
    for seed in [1, 2] {
        let r = train(base, 16, seed, tweak);
        let s = r.test.unwrap();
        let line = format!(
            "seed {seed}: test_acc {:.3} majority {:.3} nmi {:.3} clusters {}/16",
            s.aae, s.majority, s.nmi, r.usage.clusters_used
        );
        eprintln!("{line}");
        if s.nmi < 0.95 || r.usage.clusters_used < 9 {
            return Err(line);
        }
    }
    Ok(())
}

#[test]
fn default_recipe_clusters_a_synthetic_mixture_with_most_components() {
    if let Err(e) = check(Options::preset, |_| {}) {
        panic!("the mnist_fc recipe does not cluster the mixture: {e}");
    }
}

#[test]
#[ignore = "shows the regression test's power: upstream's recipe merges clusters"]
fn upstream_recipe_fails_the_clustering_test() {
    let r = check(Options::upstream, |_| {});
    assert!(r.is_err(), "expected upstream's recipe to fail");
}

/// `--pretrain-epochs`: after the autoencoder phase and the mixture fit, p(x|w,z=k) is the
/// fitted k-th component at every w, q(z|y) follows the mixture's assignment, and the mixture
/// separates the prototypes; the same seed gives the same start.
#[test]
fn pretraining_starts_the_prior_at_the_codes_mixture() {
    let d = tempfile::tempdir().unwrap();
    write_mixture(d.path(), 2000, 500, 7);
    let mut o = Options::preset("mnist_fc").unwrap();
    (o.data_dir, o.out_dir, o.id) = (d.path().into(), d.path().into(), "run".into());
    (o.hidden_size, o.x_size, o.w_size, o.k) = (128, 8, 4, 12);
    o.pretrain_epochs = 3;
    // With v1's q(z|y) head, to check its fit too (v2 has no head; its posterior is the prior's).
    o.objective = gmvae::objective::ObjectiveKind::V1;
    let dev = candle_core::Device::Cpu;
    let data = gmvae::train::load_dataset(&o).unwrap();
    let start = || {
        let model = gmvae::model::Model::new(&o, &data.shape(), &dev).unwrap();
        let r =
            gmvae::pretrain::pretrain(&model, &o, &data.train, &dev, Default::default()).unwrap();
        (model, r)
    };
    let (model, r) = start();
    assert_eq!(r.rec.len(), 3);
    assert!(
        r.rec[2] < r.rec[0],
        "the autoencoder did not learn: {:?}",
        r.rec
    );
    assert!(
        r.train_acc.unwrap() > 0.95,
        "mixture accuracy {:?}",
        r.train_acc
    );
    assert!(
        r.qz_agreement.unwrap() > 0.9,
        "q(z|y) agreement {:?}",
        r.qz_agreement
    );
    let w = candle_core::Tensor::new(&[[0.0f32; 4], [3.0, -2.0, 1.0, 0.5]], &dev).unwrap();
    let p = model.net.prior.forward(&w).unwrap();
    let (mean, logvar) = (
        p.mean.to_vec3::<f32>().unwrap(),
        p.logvar.to_vec3::<f32>().unwrap(),
    );
    for b in 0..2 {
        for k in 0..12 {
            for j in 0..8 {
                let (m, v) = (r.gmm.means[k * 8 + j], r.gmm.vars[k * 8 + j]);
                assert!((mean[b][k][j] as f64 - m).abs() <= 1e-5 * m.abs().max(1.0));
                assert!((logvar[b][k][j] as f64 - v.ln()).abs() <= 1e-5 * v.ln().abs().max(1.0));
            }
        }
    }
    // q(x|y)'s variance starts at a tenth of the components' mean variance, for every y.
    let y = candle_core::Tensor::new(&data.train.y[..2 * 784], &dev)
        .unwrap()
        .reshape((2, 784))
        .unwrap();
    let lv = model.net.recognition.forward_t(&y, false).unwrap().logvar_x;
    for row in lv.to_vec2::<f32>().unwrap() {
        for (j, v) in row.iter().enumerate() {
            let mean_var = (0..12).map(|k| r.gmm.vars[k * 8 + j]).sum::<f64>() / 12.0;
            assert!(
                (*v as f64 - (mean_var / 10.0).ln()).abs() < 1e-5,
                "{v} vs {mean_var}"
            );
        }
    }
    let (_, again) = start();
    assert_eq!((r.gmm.means, r.rec), (again.gmm.means, again.rec));
}

/// The recipe from a random start (`--pretrain-epochs 0`, as the conv preset trains).
#[test]
fn random_start_recipe_clusters_a_synthetic_mixture_with_most_components() {
    if let Err(e) = check(Options::preset, |o| o.pretrain_epochs = 0) {
        panic!("the mnist_fc recipe from a random start does not cluster the mixture: {e}");
    }
}
