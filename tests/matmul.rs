//! The patched CPU matmul of `vendor/candle-core` (see `vendor/README.md`, change 4): gemm writes
//! the product into an unfilled buffer, so every element must come out written, for plain,
//! transposed, batched and batch-invariant operands. (An empty inner dimension never reaches the
//! kernel: `Tensor::matmul` answers it with zeros.) Single-threaded here; `tests/two_threads.rs`
//! covers the split path.

use candle_core::{Device, Tensor};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn rand_vec(rng: &mut StdRng, n: usize) -> Vec<f32> {
    (0..n).map(|_| rng.random_range(-1.0..1.0)).collect()
}

/// C = A·B in f64 from row-major slices, one `[m, n]` block per batch (`b_batched`: each batch
/// has its own B, else all share one).
fn naive(
    a: &[f32],
    b: &[f32],
    (bs, m, k, n): (usize, usize, usize, usize),
    b_batched: bool,
) -> Vec<f32> {
    let mut c = vec![0f32; bs * m * n];
    for s in 0..bs {
        let bo = if b_batched { s * k * n } else { 0 };
        for i in 0..m {
            for j in 0..n {
                let sum: f64 = (0..k)
                    .map(|p| a[s * m * k + i * k + p] as f64 * b[bo + p * n + j] as f64)
                    .sum();
                c[s * m * n + i * n + j] = sum as f32;
            }
        }
    }
    c
}

fn assert_close(got: &Tensor, want: &[f32], what: &str) {
    let got: Vec<f32> = got.flatten_all().unwrap().to_vec1().unwrap();
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        // Written elements are finite and close; an unwritten one would hold whatever the
        // allocator left there.
        assert!(
            (g - w).abs() <= 1e-5 * (1.0 + w.abs()),
            "{what}[{i}]: {g} vs {w}"
        );
    }
}

#[test]
fn every_product_element_is_written() {
    let dev = Device::Cpu;
    let mut rng = StdRng::seed_from_u64(5);
    for &(bs, m, k, n) in &[
        (1, 7, 5, 3),
        (1, 64, 33, 129),
        (3, 4, 6, 5),
        (2, 50, 10, 100),
    ] {
        let a = rand_vec(&mut rng, bs * m * k);
        let b = rand_vec(&mut rng, bs * k * n);
        let at = Tensor::from_vec(a.clone(), (bs, m, k), &dev).unwrap();
        let bt = Tensor::from_vec(b.clone(), (bs, k, n), &dev).unwrap();
        let want = naive(&a, &b, (bs, m, k, n), true);
        assert_close(&at.matmul(&bt).unwrap(), &want, "batched");
        // The same operands stored transposed (a Linear layer's weight, a gradient's xᵀ).
        let at_t = at.transpose(1, 2).unwrap().contiguous().unwrap();
        let bt_t = bt.transpose(1, 2).unwrap().contiguous().unwrap();
        let got = at_t
            .transpose(1, 2)
            .unwrap()
            .matmul(&bt_t.transpose(1, 2).unwrap())
            .unwrap();
        assert_close(&got, &want, "transposed operands");
        // One B for every batch: the batches of A stack into one gemm of b*m rows.
        let b0 = Tensor::from_vec(b[..k * n].to_vec(), (k, n), &dev).unwrap();
        let got = at.broadcast_matmul(&b0).unwrap();
        assert_close(
            &got,
            &naive(&a, &b, (bs, m, k, n), false),
            "batch-invariant B",
        );
    }
}
