//! Renders every picture from synthetic run directories through the real binaries, and checks
//! the PNGs decode, have the expected size and actually show something.

use gmvae::dump::LatentDump;
mod common;

use common::*;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const HEADER: &str = "epoch,lower_bound,rec,cond_prior,w_prior,z_prior,cv,train_acc,test_acc,test_acc_hungarian,test_acc_majority,test_nmi,test_ari,seconds";

/// A 2-D data set like the spiral preset: K = 3 arms, Dx = 2, no labels.
fn spiral_dump() -> LatentDump {
    let (n, k) = (300usize, 3usize);
    let mut d = LatentDump {
        epoch: 7,
        dataset: "spiral".into(),
        image_shape: None,
        n,
        dx: 2,
        dw: 2,
        dy: 2,
        k,
        x_mean: vec![],
        w_mean: vec![0.0; n * 2],
        q_z: vec![],
        cluster: vec![],
        label: None,
        data: vec![],
        recon: vec![],
        prior_mean: vec![],
        prior_var: vec![],
    };
    for c in 0..k {
        let a = c as f32 * 2.1;
        d.prior_mean.extend([2.0 * a.cos(), 2.0 * a.sin()]);
        d.prior_var.extend([0.2, 0.05 + 0.1 * c as f32]);
    }
    for i in 0..n {
        let c = i % k;
        let t = (i / k) as f32 / (n / k) as f32;
        let a = c as f32 * 2.1 + 2.0 * t;
        let (x, y) = ((1.0 + 4.0 * t) * a.cos(), (1.0 + 4.0 * t) * a.sin());
        d.data.extend([x, y]);
        d.recon.extend([x * 0.95 + 0.1, y * 0.95]);
        let j = (i * 7919 % 100) as f32 / 100.0 - 0.5;
        d.x_mean.extend([
            d.prior_mean[2 * c] + 0.4 * j,
            d.prior_mean[2 * c + 1] - 0.3 * j,
        ]);
        let mut q = vec![0.05f32; k];
        q[c] = 1.0 - 0.05 * (k - 1) as f32;
        d.q_z.extend(q);
        d.cluster.push(c as u32);
    }
    d
}

/// An image data set: 1x8x8 images, Dx = 6 (so the latent plot needs its PCA), K = 4, labelled.
fn image_dump(channels: usize) -> LatentDump {
    let (n, k, dx, side) = (60usize, 4usize, 6usize, 8usize);
    let dy = channels * side * side;
    let mut d = LatentDump {
        epoch: 3,
        dataset: "mnist".into(),
        image_shape: Some([channels, side, side]),
        n,
        dx,
        dw: 3,
        dy,
        k,
        x_mean: vec![],
        w_mean: vec![0.0; n * 3],
        q_z: vec![],
        cluster: vec![],
        label: Some((0..n).map(|i| (i % 5) as u32).collect()),
        data: vec![],
        recon: vec![],
        prior_mean: (0..k * dx)
            .map(|j| ((j * 37 % 11) as f32 - 5.0) / 2.0)
            .collect(),
        prior_var: (0..k * dx).map(|j| 0.1 + (j % 3) as f32 * 0.1).collect(),
    };
    for i in 0..n {
        let c = i % k;
        for j in 0..dx {
            let noise = ((i * 31 + j * 17) % 13) as f32 / 13.0 - 0.5;
            d.x_mean.push(d.prior_mean[c * dx + j] + 0.5 * noise);
        }
        // A bar whose position depends on the example, over a dim gradient.
        for ch in 0..channels {
            for y in 0..side {
                for x in 0..side {
                    let on = if (x + ch) % side == i % side {
                        1.0
                    } else {
                        y as f32 / 20.0
                    };
                    d.data.push(on);
                    d.recon.push(on * 0.8 + 0.05);
                }
            }
        }
        let mut q = vec![0.1f32; k];
        q[c] = 0.7;
        d.q_z.extend(q);
        d.cluster.push(c as u32);
    }
    d
}

fn write_metrics(dir: &Path, labelled: bool) {
    let mut s = format!("{HEADER}\n");
    for e in 1..=5 {
        let lb = -10.0 + e as f64;
        let cv = 1.0 / e as f64;
        // Six score columns, each its own curve (or all empty for unlabelled data).
        let accs: Vec<String> = (0..6)
            .map(|j| match labelled {
                true => format!("{:.3}", 0.3 + 0.05 * j as f64 + 0.08 * e as f64),
                false => String::new(),
            })
            .collect();
        s += &format!("{e},{lb},1.0,0.5,0.1,0.2,{cv},{},1.5\n", accs.join(","));
    }
    gmvae::atomic::write_str(&dir.join("metrics.csv"), &s).unwrap();
}

fn run_dir(dump: &LatentDump, labelled_metrics: bool) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    dump.save(&dir.path().join(gmvae::dump::FILE)).unwrap();
    write_metrics(dir.path(), labelled_metrics);
    dir
}

#[test]
fn spiral_run_renders_every_plot() {
    let dir = run_dir(&spiral_dump(), false);
    let d = dir.path().to_str().unwrap();
    for name in ["plot_latent", "plot_recon", "plot_curves", "plot_usage"] {
        let o = run(name, &[d]);
        assert!(
            o.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    let p = dir.path();
    check_png(&p.join("latent.png"), Some((1000, 800)), 50, 2000);
    check_png(&p.join("recon.png"), Some((1000, 800)), 50, 2000);
    check_png(&p.join("curves.png"), Some((1500, 500)), 20, 300);
    check_png(&p.join("usage.png"), Some((1000, 600)), 10, 5000);
    // The title is drawn with the embedded font: dark pixels in the band above the chart.
    let (w, _, px) = decode(&p.join("latent.png"));
    let title_ink = px[..40 * w as usize]
        .iter()
        .filter(|c| c.iter().all(|&v| v < 100))
        .count();
    assert!(title_ink > 300, "no title text ({title_ink} dark pixels)");
    // Each cluster's colour shows up among the points (palette 0..3, drawn at 60% on white).
    for rgb in [[31, 119, 180], [255, 127, 14], [44, 160, 44]] {
        let blended = rgb.map(|c| (0.6 * c as f64 + 0.4 * 255.0) as u8);
        assert!(
            count_near(&p.join("latent.png"), blended, 12) > 30,
            "cluster colour {rgb:?} missing"
        );
    }
    // No labels in this dump: --by-label is a clear error, not a panic.
    let o = run(
        "plot_latent",
        &[d, "--by-label", "-o", p.join("x.png").to_str().unwrap()],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("no true labels") && !err.contains("panicked"),
        "{err}"
    );
}

#[test]
fn image_run_renders_every_plot() {
    let dir = run_dir(&image_dump(1), true);
    let d = dir.path().to_str().unwrap();
    let p = dir.path();
    let by_label = p.join("latent_by_label.png");
    for (name, extra) in [
        ("plot_latent", vec![]),
        (
            "plot_latent",
            vec!["--by-label", "-o", by_label.to_str().unwrap()],
        ),
        ("plot_recon", vec!["--count", "30", "--cols", "10"]),
        ("plot_curves", vec![]),
        ("plot_usage", vec![]),
    ] {
        let mut args = vec![d];
        args.extend(extra);
        let o = run(name, &args);
        assert!(
            o.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    check_png(&p.join("latent.png"), Some((1000, 800)), 50, 1000);
    check_png(&by_label, Some((1000, 800)), 50, 1000);
    check_png(&p.join("curves.png"), Some((1500, 500)), 20, 1000);
    check_png(&p.join("usage.png"), Some((1000, 600)), 10, 5000);
    // 8x8 images scale 7x to 56 px, plus a 2 px gap: 10 columns of 58 px per panel, 3 rows.
    let (w, h, _) = decode(&p.join("recon.png"));
    assert_eq!((w, h), (2 * 580 + 60, 50 + 28 + 3 * 58 + 20));
    check_png(&p.join("recon.png"), None, 10, 0);
    // Bright bars of originals (255) and reconstructions (0.85 -> 217) are both there.
    assert!(count_near(&p.join("recon.png"), [255, 255, 255], 0) > 30 * 49);
    assert!(count_near(&p.join("recon.png"), [217, 217, 217], 1) > 30 * 7 * 7);
}

#[test]
fn plot_all_draws_the_four_pictures_and_reports_what_is_missing() {
    let dir = run_dir(&image_dump(1), true);
    let out = tempfile::tempdir().unwrap();
    let (d, o) = (dir.path().to_str().unwrap(), out.path().to_str().unwrap());
    let r = run("plot_all", &[d, "--out-dir", o, "--by-label"]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    for (name, size) in [
        ("latent.png", Some((1000, 800))),
        ("recon.png", None),
        ("curves.png", Some((1500, 500))),
        ("usage.png", Some((1000, 600))),
    ] {
        check_png(&out.path().join(name), size, 10, 0);
    }
    // Without metrics.csv the dump's pictures are still drawn, and the error names the file.
    std::fs::remove_file(dir.path().join("metrics.csv")).unwrap();
    let out2 = tempfile::tempdir().unwrap();
    let r = run("plot_all", &[d, "-o", out2.path().to_str().unwrap()]);
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(
        !r.status.success() && err.contains("metrics.csv") && !err.contains("panicked"),
        "{err}"
    );
    assert!(out2.path().join("latent.png").exists() && !out2.path().join("curves.png").exists());
}

#[test]
fn rgb_images_render() {
    let dir = run_dir(&image_dump(3), true);
    let o = run("plot_recon", &[dir.path().to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    check_png(&dir.path().join("recon.png"), None, 10, 100);
}

#[test]
fn missing_or_broken_inputs_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    for name in ["plot_latent", "plot_recon", "plot_usage"] {
        let o = run(name, &[d]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            !o.status.success(),
            "{name} succeeded on an empty directory"
        );
        assert!(
            err.contains("latent.safetensors") && !err.contains("panicked"),
            "{name}: {err}"
        );
    }
    let o = run("plot_curves", &[d]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("metrics.csv") && !err.contains("panicked"),
        "{err}"
    );

    // A half-written dump and a header-only metrics file.
    let mut bytes = Vec::new();
    let full = dir.path().join("full.safetensors");
    spiral_dump().save(&full).unwrap();
    bytes.extend_from_slice(&std::fs::read(&full).unwrap()[..500]);
    std::fs::write(dir.path().join(gmvae::dump::FILE), &bytes).unwrap();
    std::fs::write(dir.path().join("metrics.csv"), format!("{HEADER}\n")).unwrap();
    for name in ["plot_latent", "plot_recon", "plot_usage", "plot_curves"] {
        let o = run(name, &[d]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            !o.status.success() && !err.contains("panicked"),
            "{name}: {err}"
        );
        assert!(err.contains("not a valid"), "{name}: {err}");
    }
    assert!(!dir.path().join("latent.png").exists());
}

#[test]
fn watch_waits_for_the_dump_and_redraws_when_it_changes() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("live.png");
    let mut child = Command::new(bin("plot_latent"))
        .args([
            dir.path().to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--watch",
            "--interval-ms",
            "50",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let wait_for = |cond: &dyn Fn() -> bool| {
        let t = Instant::now();
        while !cond() {
            assert!(
                t.elapsed() < Duration::from_secs(30),
                "watch mode did not draw in time"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    std::thread::sleep(Duration::from_millis(300));
    // Half a file first (as a non-atomic writer would leave it): the watcher must keep going.
    // (Serialised elsewhere first, so the watcher never sees the whole file before the half.)
    let path = dir.path().join(gmvae::dump::FILE);
    let mut dump = spiral_dump();
    let staging = tempfile::tempdir().unwrap();
    let whole = staging.path().join(gmvae::dump::FILE);
    dump.save(&whole).unwrap();
    let bytes = std::fs::read(&whole).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        child.try_wait().unwrap().is_none(),
        "watcher exited on a half-written dump"
    );
    assert!(!out.exists());
    dump.save(&path).unwrap();
    wait_for(&|| out.exists());
    let first = std::fs::read(&out).unwrap();
    // The next epoch's dump is drawn again.
    dump.epoch = 8;
    dump.x_mean.iter_mut().for_each(|v| *v *= 0.5);
    dump.save(&path).unwrap();
    wait_for(&|| std::fs::read(&out).map(|b| b != first).unwrap_or(false));
    check_png(&out, Some((1000, 800)), 50, 2000);
    child.kill().unwrap();
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("waiting:") && !err.contains("panicked"),
        "{err}"
    );
}
