//! The SVHN `.mat` reader on small files the tests write, and a tiny conv training on them.

use gmvae::data::svhn;
use std::path::Path;
use std::process::Command;

/// X(i, j, c, n) = (i + 2j + 5c + 7n) mod 256, so every pixel's position is recoverable.
fn pixels(n: usize) -> Vec<u8> {
    let mut x = vec![0u8; 3072 * n];
    for img in 0..n {
        for c in 0..3 {
            for j in 0..32 {
                for i in 0..32 {
                    x[i + 32 * j + 1024 * c + 3072 * img] =
                        ((i + 2 * j + 5 * c + 7 * img) % 256) as u8;
                }
            }
        }
    }
    x
}

fn write(dir: &Path, name: &str, n: usize, compress: bool) {
    let labels: Vec<f64> = (0..n).map(|i| (i % 10 + 1) as f64).collect();
    std::fs::write(
        dir.join(name),
        svhn::write_mat(&[32, 32, 3, n], &pixels(n), &labels, compress),
    )
    .unwrap();
}

#[test]
fn reads_plain_and_compressed_files_into_chw_rows() {
    for compress in [false, true] {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), "train_32x32.mat", 12, compress);
        write(d.path(), "test_32x32.mat", 4, compress);
        let ds = svhn::load_dir(d.path(), false).unwrap();
        assert_eq!(
            (ds.train.n, ds.test.as_ref().unwrap().n, ds.dy),
            (12, 4, 3072)
        );
        assert_eq!(ds.image_shape, Some([3, 32, 32]));
        // Label 10 is the digit 0.
        assert_eq!(
            ds.train.labels.as_ref().unwrap()[..10],
            [1, 2, 3, 4, 5, 6, 7, 8, 9, 0]
        );
        // Row 3, channel 2, pixel (row i = 4, column j = 9).
        let (img, c, i, j) = (3, 2, 4, 9);
        let v = ds.train.y[img * 3072 + c * 1024 + i * 32 + j];
        assert_eq!(v, ((i + 2 * j + 5 * c + 7 * img) % 256) as f32 / 255.0);
    }
}

#[test]
fn extra_is_appended_to_training() {
    let d = tempfile::tempdir().unwrap();
    write(d.path(), "train_32x32.mat", 3, true);
    write(d.path(), "test_32x32.mat", 2, true);
    write(d.path(), "extra_32x32.mat", 5, false);
    let ds = svhn::load_dir(d.path(), true).unwrap();
    assert_eq!(ds.train.n, 8);
    assert_eq!(ds.train.labels.as_ref().unwrap().len(), 8);
}

#[test]
fn bad_files_are_named_and_explained() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("train_32x32.mat");
    let good = svhn::write_mat(&[32, 32, 3, 2], &pixels(2), &[1.0, 2.0], false);

    let mut v73 = good.clone();
    v73[..19].copy_from_slice(b"MATLAB 7.3 MAT-file");
    std::fs::write(&p, &v73).unwrap();
    let e = format!("{:#}", svhn::load_file(&p).unwrap_err());
    assert!(e.contains("train_32x32.mat") && e.contains("v7.3"), "{e}");

    std::fs::write(&p, &good[..good.len() - 100]).unwrap();
    let e = format!("{:#}", svhn::load_file(&p).unwrap_err());
    assert!(e.contains("truncated"), "{e}");

    let wrong = svhn::write_mat(&[28, 28, 1, 2], &vec![0; 28 * 28 * 2], &[1.0, 2.0], false);
    std::fs::write(&p, &wrong).unwrap();
    let e = format!("{:#}", svhn::load_file(&p).unwrap_err());
    assert!(
        e.contains("32 x 32 x 3 x N") && e.contains("[28, 28, 1, 2]"),
        "{e}"
    );

    let bad_label = svhn::write_mat(&[32, 32, 3, 2], &pixels(2), &[1.0, 11.0], true);
    std::fs::write(&p, &bad_label).unwrap();
    let e = format!("{:#}", svhn::load_file(&p).unwrap_err());
    assert!(e.contains("label 11"), "{e}");

    std::fs::write(&p, b"hello").unwrap();
    assert!(format!("{:#}", svhn::load_file(&p).unwrap_err()).contains("header"));

    let e = format!(
        "{:#}",
        svhn::load_dir(&d.path().join("none"), false).unwrap_err()
    );
    assert!(
        e.contains("does not exist") && e.contains("--data-dir"),
        "{e}"
    );
}

#[test]
fn tiny_conv_training_on_svhn_files() {
    let d = tempfile::tempdir().unwrap();
    write(d.path(), "train_32x32.mat", 8, true);
    write(d.path(), "test_32x32.mat", 4, true);
    let out = Command::new(env!("CARGO_BIN_EXE_gmvae"))
        .args([
            "svhn",
            "--data-dir",
            d.path().to_str().unwrap(),
            "--out-dir",
            d.path().to_str().unwrap(),
        ])
        .args([
            "--id",
            "s",
            "--epoch",
            "1",
            "--hidden-size",
            "8",
            "--n-filters",
            "2",
            "--k",
            "3",
        ])
        .args(["--x-size", "2", "--w-size", "2", "--batch-size", "4"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("test_acc"), "{stdout}");
    // The svhn preset has visualGen 1: a K x 10 grid of 3x32x32 samples after every epoch.
    let png = std::fs::File::open(d.path().join("s").join("samples.png")).unwrap();
    let info = png::Decoder::new(png).read_info().unwrap().info().clone();
    assert_eq!((info.width, info.height), (10 * 32, 3 * 32));
    assert_eq!(info.color_type, png::ColorType::Rgb);
}
