//! Serket baselines on the tutorial data (gated, `#[ignore]`d by default; run with `--ignored` and
//! `GMVAE_SHARED_DATA` pointing at the shared data directory (the one holding `serket/VAE+GMM+MLDA/data.zip`). Reduced epochs,
//! rounds and sweeps keep it to about a minute on two cores.

use gmvae::serket::cli::{vae_gmm_mlda, Inputs, PipelineArgs};
use gmvae::serket::data::{load_images, load_images_speech, read_labels};

mod harness;
use harness::shared_data as shared;

#[test]
#[ignore = "real-data tier: set GMVAE_SHARED_DATA=../shared/data and pass --ignored"]
fn tutorial_data_and_reduced_vae_gmm_mlda() {
    let root = shared();
    let zip = root.join("serket/VAE+GMM+MLDA/data.zip");
    let (images, speech, labels) = load_images_speech(&zip).unwrap();
    assert_eq!((images.rows, images.cols), (3000, 784));
    assert_eq!((speech.rows, speech.cols), (3000, 2400));
    assert!(images.data.iter().all(|&v| (0.0..=1.0).contains(&v)));
    assert!(speech.data.iter().all(|&v| v >= 0.0 && v.fract() == 0.0));
    // Cyclic labels, the same as VAE+GMM/category.txt (LF there, CRLF in the zip).
    assert!(labels.iter().enumerate().all(|(i, &l)| l == i % 10));
    assert_eq!(
        read_labels(&root.join("serket/VAE+GMM/category.txt")).unwrap(),
        labels
    );
    let (img2, _) = load_images(&zip).unwrap();
    assert_eq!(img2, images);

    let out = tempfile::tempdir().unwrap();
    let args = PipelineArgs {
        data: zip,
        out: out.path().to_path_buf(),
        rounds: 2,
        epochs: 15,
        gmm_iters: 30,
        mlda_iters: 30,
        no_reconstructions: true,
        ..Default::default()
    };
    let s = vae_gmm_mlda(Inputs::load(&args, true).unwrap(), &args).unwrap();
    for f in [
        "module002_vae/z_learn.txt",
        "module003_gmm/001/acc_learn.txt",
        "module004_mlda/001/Pdz_learn.txt",
    ] {
        assert!(out.path().join(f).is_file(), "{f}");
    }
    let gmm = s.gmm_history.last().unwrap().scores.unwrap();
    let mlda = s.mlda_history.last().unwrap().scores.unwrap();
    eprintln!("reduced run: gmm {gmm:?}\nmlda {mlda:?}");
    // Chance is about 0.1. The speech modality alone separates digits far better than that; the
    // briefly trained VAE+GMM less so (its GMM may merge classes), so its bound is looser.
    assert!(mlda.hungarian > 0.4, "mlda {mlda:?}");
    assert!(gmm.hungarian > 0.15, "gmm {gmm:?}");
    assert!(gmm.greedy <= gmm.hungarian + 1e-12 && mlda.greedy <= mlda.hungarian + 1e-12);
}
