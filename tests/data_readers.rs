//! Readers on tiny files the tests write: IDX (raw, gz, truncated, wrong magic, missing), the
//! torch7 spiral file and its CSV.

use gmvae::data::{mnist, spiral};
use std::path::Path;

fn write_mnist(dir: &Path, n_train: usize, n_test: usize, gz: bool) {
    let img = |n: usize| (0..n * 784).map(|i| (i % 256) as u8).collect::<Vec<u8>>();
    let lab = |n: usize| (0..n).map(|i| (i % 10) as u8).collect::<Vec<u8>>();
    mnist::write_idx(dir, "train", &img(n_train), 28, 28, &lab(n_train), gz).unwrap();
    mnist::write_idx(dir, "t10k", &img(n_test), 28, 28, &lab(n_test), gz).unwrap();
}

#[test]
fn idx_raw_and_gz_read_the_same() {
    for gz in [false, true] {
        let d = tempfile::tempdir().unwrap();
        write_mnist(d.path(), 6, 4, gz);
        let ds = mnist::load_dir(d.path()).unwrap();
        assert_eq!(
            (ds.train.n, ds.test.as_ref().unwrap().n, ds.dy),
            (6, 4, 784)
        );
        assert_eq!(ds.train.labels.as_ref().unwrap()[..4], [0, 1, 2, 3]);
        // pixels / 255, no binarisation
        assert_eq!(ds.train.y[1], 1.0 / 255.0);
        assert_eq!(ds.train.y[255], 1.0);
        assert_eq!(ds.image_shape, Some([1, 28, 28]));
    }
}

#[test]
fn idx_errors_name_the_file_and_the_problem() {
    let d = tempfile::tempdir().unwrap();
    write_mnist(d.path(), 3, 2, false);
    let images = d.path().join("train-images-idx3-ubyte");
    let bytes = std::fs::read(&images).unwrap();

    std::fs::write(&images, &bytes[..bytes.len() - 10]).unwrap();
    let e = format!("{:#}", mnist::load_dir(d.path()).unwrap_err());
    assert!(
        e.contains("train-images-idx3-ubyte") && e.contains("truncated"),
        "{e}"
    );

    let mut wrong = bytes.clone();
    wrong[3] = 0x01; // label magic in an image file
    std::fs::write(&images, &wrong).unwrap();
    let e = format!("{:#}", mnist::load_dir(d.path()).unwrap_err());
    assert!(e.contains("wrong magic") && e.contains("0x00000803"), "{e}");

    std::fs::remove_file(&images).unwrap();
    let e = format!("{:#}", mnist::load_dir(d.path()).unwrap_err());
    assert!(e.contains("not found") && e.contains("--data-dir"), "{e}");

    let e = format!("{:#}", mnist::load_dir(&d.path().join("nope")).unwrap_err());
    assert!(e.contains("does not exist"), "{e}");
}

#[test]
fn idx_corrupt_gzip_and_label_count_mismatch() {
    let d = tempfile::tempdir().unwrap();
    write_mnist(d.path(), 3, 2, true);
    let gz = d.path().join("t10k-labels-idx1-ubyte.gz");
    let bytes = std::fs::read(&gz).unwrap();
    std::fs::write(&gz, &bytes[..bytes.len() / 2]).unwrap();
    let e = format!("{:#}", mnist::load_dir(d.path()).unwrap_err());
    assert!(
        e.contains("t10k-labels-idx1-ubyte.gz") && e.contains("gzip"),
        "{e}"
    );

    // A well-formed label file with 2 labels beside a well-formed image file with 3 images.
    let d = tempfile::tempdir().unwrap();
    write_mnist(d.path(), 3, 2, false);
    let mut labels = Vec::new();
    for v in [0x0000_0801u32, 2] {
        labels.extend(v.to_be_bytes());
    }
    labels.extend([1u8, 2]);
    std::fs::write(d.path().join("train-labels-idx1-ubyte"), labels).unwrap();
    let e = format!("{:#}", mnist::load_dir(d.path()).unwrap_err());
    assert!(
        e.contains("has 3 images") && e.contains("train-labels-idx1-ubyte has 2 labels"),
        "{e}"
    );
}

#[test]
fn t7_round_trip_and_errors() {
    let values: Vec<f64> = (0..10).map(|i| i as f64 * 0.5 - 1.0).collect();
    let bytes = spiral::write_t7_matrix(&values, 5, 2);
    let got = spiral::read_t7_matrix(&bytes, 2).unwrap();
    assert_eq!(got, values.iter().map(|&v| v as f32).collect::<Vec<_>>());

    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("spiral.t7");
    std::fs::write(&p, &bytes).unwrap();
    let ds = spiral::load_file(&p).unwrap();
    assert_eq!((ds.train.n, ds.dy), (5, 2));
    assert!(ds.train.labels.is_none());

    let e = format!(
        "{:#}",
        spiral::read_t7_matrix(&bytes[..bytes.len() - 3], 2).unwrap_err()
    );
    assert!(e.contains("truncated"), "{e}");
    let e = format!("{:#}", spiral::read_t7_matrix(&bytes, 3).unwrap_err());
    assert!(e.contains("N x 3"), "{e}");
    let e = format!(
        "{:#}",
        spiral::read_t7_matrix(b"not a torch file at all", 2).unwrap_err()
    );
    assert!(e.contains("torch7"), "{e}");
}

#[test]
fn csv_with_header_labels_and_bad_rows() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("s.csv");
    std::fs::write(&p, "y1,y2\n0.5,-0.25\n1e-1,2\n").unwrap();
    let ds = spiral::load_file(&p).unwrap();
    assert_eq!(ds.train.y, vec![0.5, -0.25, 0.1, 2.0]);
    assert!(ds.train.labels.is_none());

    std::fs::write(&p, "0.5,-0.25,3\n0.1,0.2,1\n").unwrap();
    assert_eq!(
        spiral::load_file(&p).unwrap().train.labels,
        Some(vec![3, 1])
    );

    std::fs::write(&p, "y1,y2\n0.5,-0.25\n0.1,abc\n").unwrap();
    let e = format!("{:#}", spiral::load_file(&p).unwrap_err());
    assert!(e.contains("s.csv:3") && e.contains("abc"), "{e}");

    std::fs::write(&p, "0.5,-0.25\n0.1,0.2,0.3,0.4\n").unwrap();
    let e = format!("{:#}", spiral::load_file(&p).unwrap_err());
    assert!(e.contains("s.csv:2") && e.contains("columns"), "{e}");
}

#[test]
fn spiral_generator_matches_the_fitted_geometry() {
    let mut r = gmvae::rng::rng(3, gmvae::rng::stream::DATA);
    let ds = spiral::generate(5000, &mut r).unwrap();
    let labels = ds.train.labels.as_ref().unwrap();
    assert_eq!(ds.train.n, 5000);
    for arm in 0..5 {
        assert_eq!(labels.iter().filter(|&&l| l == arm).count(), 1000);
    }
    // Every point lies near its arm's circle: centre 0.6 (cos phi, sin phi), radius 0.4.
    let mut radius_sum = 0.0;
    for (p, &l) in ds.train.y.chunks(2).zip(labels) {
        let phi = 2.0 * std::f64::consts::PI * l as f64 / 5.0;
        let (cx, cy) = (0.6 * phi.cos(), 0.6 * phi.sin());
        let d = ((p[0] as f64 - cx).powi(2) + (p[1] as f64 - cy).powi(2)).sqrt();
        assert!(
            (d - 0.4).abs() < 0.2,
            "point {p:?} of arm {l} is {d} from its centre"
        );
        radius_sum += (p[0] as f64).hypot(p[1] as f64);
    }
    // The original file's mean radius is 0.70 (gmvae-upstream.md §4).
    let mean_radius = radius_sum / 5000.0;
    assert!(
        (mean_radius - 0.70).abs() < 0.03,
        "mean radius {mean_radius}"
    );
    // The same seed gives the same data.
    let again = spiral::generate(5000, &mut gmvae::rng::rng(3, gmvae::rng::stream::DATA)).unwrap();
    assert_eq!(again, ds);
}
