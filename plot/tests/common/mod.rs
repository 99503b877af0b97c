//! Helpers shared by the integration tests: run the plot binaries, decode and judge PNGs.
#![allow(dead_code)] // each test crate uses its own subset

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn bin(name: &str) -> PathBuf {
    match name {
        "plot_latent" => env!("CARGO_BIN_EXE_plot_latent").into(),
        "plot_recon" => env!("CARGO_BIN_EXE_plot_recon").into(),
        "plot_curves" => env!("CARGO_BIN_EXE_plot_curves").into(),
        "plot_usage" => env!("CARGO_BIN_EXE_plot_usage").into(),
        "plot_all" => env!("CARGO_BIN_EXE_plot_all").into(),
        "plot_samples" => env!("CARGO_BIN_EXE_plot_samples").into(),
        "plot_serket" => env!("CARGO_BIN_EXE_plot_serket").into(),
        "serket_report" => env!("CARGO_BIN_EXE_serket_report").into(),
        _ => unreachable!(),
    }
}

pub fn run(name: &str, args: &[&str]) -> Output {
    Command::new(bin(name)).args(args).output().unwrap()
}

/// Decoded RGB(A) image: (width, height, pixels as RGB triples).
pub fn decode(path: &Path) -> (u32, u32, Vec<[u8; 3]>) {
    let dec = png::Decoder::new(std::fs::File::open(path).unwrap());
    let mut reader = dec.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    let px = match info.color_type {
        png::ColorType::Rgb => buf[..info.buffer_size()]
            .chunks(3)
            .map(|c| [c[0], c[1], c[2]])
            .collect(),
        png::ColorType::Grayscale => buf[..info.buffer_size()]
            .iter()
            .map(|&g| [g, g, g])
            .collect(),
        other => panic!("unexpected colour type {other:?}"),
    };
    (info.width, info.height, px)
}

/// Asserts the picture has the size, is mostly not blank and carries colour where expected.
pub fn check_png(path: &Path, size: Option<(u32, u32)>, min_colors: usize, min_chroma_px: usize) {
    let (w, h, px) = decode(path);
    if let Some(s) = size {
        assert_eq!((w, h), s, "{}", path.display());
    }
    let mut colors: Vec<[u8; 3]> = px.clone();
    colors.sort_unstable();
    colors.dedup();
    assert!(
        colors.len() >= min_colors,
        "{}: only {} colours",
        path.display(),
        colors.len()
    );
    let ink = px.iter().filter(|p| **p != [255, 255, 255]).count();
    assert!(
        ink * 50 > px.len(),
        "{}: almost blank ({ink} of {} pixels)",
        path.display(),
        px.len()
    );
    let chroma = px
        .iter()
        .filter(|p| p.iter().max().unwrap() - p.iter().min().unwrap() > 60)
        .count();
    assert!(
        chroma >= min_chroma_px,
        "{}: {chroma} coloured pixels",
        path.display()
    );
}

/// Count of pixels within `tol` of `rgb`, over the whole picture.
pub fn count_near(path: &Path, rgb: [u8; 3], tol: i32) -> usize {
    decode(path)
        .2
        .iter()
        .filter(|p| {
            p.iter()
                .zip(rgb)
                .all(|(&a, b)| (a as i32 - b as i32).abs() <= tol)
        })
        .count()
}
