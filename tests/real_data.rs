//! Gated tier on the real data in `../shared/data`: `#[ignore]`d by default (cargo test lists them
//! as ignored); `GMVAE_SHARED_DATA=../shared/data cargo test --release --test real_data --
//! --ignored` runs them, as CI does.

use gmvae::data::{mnist, spiral};
use gmvae::options::Options;

mod harness;
use harness::shared_data as shared;

#[test]
#[ignore = "real-data tier: set GMVAE_SHARED_DATA=../shared/data and pass --ignored"]
fn real_mnist_loads_as_upstream() {
    let root = shared();
    let ds = mnist::load_dir(&root.join("mnist")).unwrap();
    let test = ds.test.as_ref().unwrap();
    assert_eq!((ds.train.n, test.n, ds.dy), (60_000, 10_000, 784));
    let max = ds.train.y.iter().cloned().fold(0f32, f32::max);
    let min = ds.train.y.iter().cloned().fold(1f32, f32::min);
    assert_eq!((min, max), (0.0, 1.0));
    // Grey levels are kept, not binarised.
    assert!(ds.train.y.iter().any(|&v| v > 0.0 && v < 1.0));
    let mut counts = [0usize; 10];
    for &l in test.labels.as_ref().unwrap() {
        counts[l] += 1;
    }
    // The MNIST test set's digit counts.
    assert_eq!(
        counts,
        [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    );
}

#[test]
#[ignore = "real-data tier: set GMVAE_SHARED_DATA=../shared/data and pass --ignored"]
fn real_mnist_fc_trains_on_a_subset() {
    let root = shared();
    let d = tempfile::tempdir().unwrap();
    let mut o = Options::preset("mnist_fc").unwrap();
    (o.data_dir, o.out_dir, o.id) = (root.join("mnist"), d.path().to_path_buf(), "mnist".into());
    (o.epoch, o.train_size, o.dump_size) = (1, Some(500), 200);
    let s = gmvae::train::train(&o.clone().validated().unwrap(), false).unwrap();
    // The preset's network: Dx = 10, no q(z|y) head (tests/model.rs derives the count).
    assert_eq!(s.parameters, 4_338_384);
    let r = s.last.unwrap();
    let t = r.test.unwrap();
    assert!(r.lower_bound().is_finite() && r.terms.rec > 0.0);
    // Scored on the full 10k test set; accuracies are proper fractions.
    for v in [t.aae, t.hungarian, t.majority, t.nmi] {
        assert!((0.0..=1.0).contains(&v), "{t:?}");
    }
    let dump = gmvae::dump::LatentDump::load(&s.run_dir.join(gmvae::dump::FILE)).unwrap();
    assert_eq!((dump.n, dump.dy, dump.dx, dump.k), (200, 784, 10, 14));
}

#[test]
#[ignore = "real-data tier: set GMVAE_SHARED_DATA=../shared/data and pass --ignored"]
fn original_spiral_files_agree_and_train_without_labels() {
    let root = shared();
    let t7 = spiral::load_file(&root.join("gmvae_spiral.t7")).unwrap();
    let csv = spiral::load_file(&root.join("gmvae_spiral.csv")).unwrap();
    assert_eq!(t7.train.n, 5000);
    assert_eq!(csv.train.n, 5000);
    for (a, b) in t7.train.y.iter().zip(&csv.train.y) {
        assert!((a - b).abs() < 1e-6);
    }
    let d = tempfile::tempdir().unwrap();
    let mut o = Options::preset("spiral").unwrap();
    (o.out_dir, o.id, o.epoch) = (d.path().to_path_buf(), "file".into(), 1);
    o.data = Some(root.join("gmvae_spiral.t7"));
    let s = gmvae::train::train(&o.clone().validated().unwrap(), false).unwrap();
    let r = s.last.unwrap();
    assert!(
        r.test.is_none() && r.train_acc.is_none(),
        "no labels, no accuracy"
    );
    let row = std::fs::read_to_string(s.run_dir.join("metrics.csv")).unwrap();
    let fields: Vec<&str> = row.lines().nth(1).unwrap().split(',').collect();
    assert_eq!(&fields[7..13], &["", "", "", "", "", ""]);
}

#[test]
#[ignore = "real-data tier: set GMVAE_SHARED_DATA=../shared/data and pass --ignored"]
fn gmvae_trains_on_the_serket_images() {
    let root = shared();
    let d = tempfile::tempdir().unwrap();
    let mut o = Options::preset("mnist_fc").unwrap();
    (o.out_dir, o.id, o.epoch, o.k) = (d.path().to_path_buf(), "srk".into(), 1, 10);
    o.data = Some(root.join("serket/VAE+GMM+MLDA/data.zip"));
    (o.train_size, o.dump_size, o.hidden_size) = (Some(300), 300, 64);
    let s = gmvae::train::train(&o.clone().validated().unwrap(), false).unwrap();
    let r = s.last.unwrap();
    // Scored on the same 300 images it trained on, like Serket: the scores in metrics.csv are
    // those of the cluster posterior rows (p(z|x,w) under the preset's v2 objective) dumped for
    // all 300 training images.
    let t = r.test.unwrap();
    let dump = gmvae::dump::LatentDump::load(&s.run_dir.join(gmvae::dump::FILE)).unwrap();
    assert_eq!(
        (dump.n, dump.k, dump.image_shape),
        (300, 10, Some([1, 28, 28]))
    );
    let dumped: Vec<usize> = dump
        .label
        .clone()
        .unwrap()
        .iter()
        .map(|&l| l as usize)
        .collect();
    let again = gmvae::metrics::ClusterScores::from_q(&dump.q_z, 10, &dumped).unwrap();
    assert_eq!(again, t);
    // The tutorial's labels are cyclic 0..9: row i has label i mod 10.
    let labels = dump.label.unwrap();
    assert!(labels
        .iter()
        .enumerate()
        .all(|(i, &l)| l as usize == i % 10));
}
