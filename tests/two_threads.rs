//! The multi-threaded CPU paths (CI and the other tests run with one thread): matmuls split by
//! columns over candle's thread pool, our convolutions' im2col/col2im, the fused Adam and the
//! Serket VAE's fused loss chunked over the same pool, each against a reference that does not
//! use them.
//!
//! One test in its own binary: the pool's size is fixed when it first starts, so the thread
//! count is set before any candle op runs.

use candle_core::{Device, Tensor, Var};
use gmvae::optim::{Adam, AdamConfig};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn rand_vec(rng: &mut StdRng, n: usize) -> Vec<f32> {
    (0..n).map(|_| rng.random_range(-1.0..1.0)).collect()
}

/// A tensor's values in row-major order.
trait Flat {
    fn flat<T: candle_core::WithDType>(&self) -> Vec<T>;
}

impl Flat for Tensor {
    fn flat<T: candle_core::WithDType>(&self) -> Vec<T> {
        self.flatten_all().unwrap().to_vec1().unwrap()
    }
}

fn max_rel_diff(a: &Tensor, b: &Tensor) -> f32 {
    let a: Vec<f32> = a.flatten_all().unwrap().to_vec1().unwrap();
    let b: Vec<f32> = b.flatten_all().unwrap().to_vec1().unwrap();
    assert_eq!(a.len(), b.len());
    let scale = b.iter().fold(1e-6f32, |m, v| m.max(v.abs()));
    a.iter()
        .zip(&b)
        .fold(0f32, |m, (x, y)| m.max((x - y).abs()))
        / scale
}

/// C = A·B in f64 from row-major slices.
fn naive_matmul(a: &[f32], b: &[f32], m: usize, k: usize, n: usize) -> Vec<f32> {
    let mut c = vec![0f32; m * n];
    for i in 0..m {
        for j in 0..n {
            let s: f64 = (0..k)
                .map(|p| a[i * k + p] as f64 * b[p * n + j] as f64)
                .sum();
            c[i * n + j] = s as f32;
        }
    }
    c
}

#[test]
fn two_thread_kernels_match_their_references() {
    // SAFETY of the order: nothing in this process has touched candle yet.
    std::env::set_var("RAYON_NUM_THREADS", "2");
    std::env::set_var("CANDLE_NUM_THREADS", "2");
    assert_eq!(
        candle_core::utils::barrier_pool().n_workers(),
        1,
        "two threads in the pool"
    );
    let dev = Device::Cpu;
    let mut rng = StdRng::seed_from_u64(7);

    // Plain, transposed-rhs (a Linear layer) and batched products, all large enough to split.
    for &(m, k, n) in &[(50, 784, 1000), (1000, 50, 784), (64, 300, 130)] {
        let (a, b) = (rand_vec(&mut rng, m * k), rand_vec(&mut rng, k * n));
        let want = Tensor::from_vec(naive_matmul(&a, &b, m, k, n), (m, n), &dev).unwrap();
        let at = Tensor::from_vec(a, (m, k), &dev).unwrap();
        let bt = Tensor::from_vec(b, (k, n), &dev).unwrap();
        let got = at.matmul(&bt).unwrap();
        assert!(max_rel_diff(&got, &want) < 1e-5, "{m}x{k}x{n}");
        // The same product with B stored transposed.
        let b_stored_t = bt.t().unwrap().contiguous().unwrap();
        let got = at.matmul(&b_stored_t.t().unwrap()).unwrap();
        assert!(
            max_rel_diff(&got, &want) < 1e-5,
            "{m}x{k}x{n}, rhs transposed"
        );
    }
    let (bsz, m, k, n) = (3, 40, 200, 300);
    let a = rand_vec(&mut rng, bsz * m * k);
    let b = rand_vec(&mut rng, bsz * k * n);
    let mut want = Vec::new();
    for i in 0..bsz {
        want.extend(naive_matmul(
            &a[i * m * k..(i + 1) * m * k],
            &b[i * k * n..(i + 1) * k * n],
            m,
            k,
            n,
        ));
    }
    let want = Tensor::from_vec(want, (bsz, m, n), &dev).unwrap();
    let got = Tensor::from_vec(a, (bsz, m, k), &dev)
        .unwrap()
        .matmul(&Tensor::from_vec(b, (bsz, k, n), &dev).unwrap())
        .unwrap();
    assert!(max_rel_diff(&got, &want) < 1e-5, "batched");

    // Our convolutions (im2col/col2im on the pool + split matmul) against candle's kernels,
    // forward and gradients.
    let x = Var::from_vec(rand_vec(&mut rng, 8 * 3 * 12 * 12), (8, 3, 12, 12), &dev).unwrap();
    let kern = Var::from_vec(rand_vec(&mut rng, 16 * 3 * 3 * 3), (16, 3, 3, 3), &dev).unwrap();
    let ours = gmvae_models::conv::conv2d(x.as_tensor(), kern.as_tensor(), 2, 1).unwrap();
    let reference = x.as_tensor().conv2d(kern.as_tensor(), 1, 2, 1, 1).unwrap();
    assert!(max_rel_diff(&ours, &reference) < 1e-5, "conv2d forward");
    let w = Tensor::from_vec(rand_vec(&mut rng, ours.elem_count()), ours.shape(), &dev).unwrap();
    let g_ours = (ours * &w).unwrap().sum_all().unwrap().backward().unwrap();
    let g_ref = (reference * &w)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    for (v, what) in [(&x, "dx"), (&kern, "dkernel")] {
        let (a, b) = (
            g_ours.get(v.as_tensor()).unwrap(),
            g_ref.get(v.as_tensor()).unwrap(),
        );
        assert!(max_rel_diff(a, b) < 1e-4, "conv2d {what}");
    }
    let kt = Var::from_vec(rand_vec(&mut rng, 16 * 4 * 4 * 4), (16, 4, 4, 4), &dev).unwrap();
    let y = Tensor::from_vec(rand_vec(&mut rng, 8 * 16 * 7 * 7), (8, 16, 7, 7), &dev).unwrap();
    let ours = gmvae_models::conv::conv_transpose2d(&y, kt.as_tensor(), 2, 1).unwrap();
    let reference = y.conv_transpose2d(kt.as_tensor(), 1, 0, 2, 1).unwrap();
    assert!(
        max_rel_diff(&ours, &reference) < 1e-5,
        "conv_transpose2d forward"
    );

    // Grids large enough for the fused per-image products (>= 64 output positions): conv2d,
    // and conv_transpose2d (forward and gradients) against candle's kernels.
    let x = Var::from_vec(rand_vec(&mut rng, 6 * 3 * 14 * 14), (6, 3, 14, 14), &dev).unwrap();
    let kern = Var::from_vec(rand_vec(&mut rng, 8 * 3 * 4 * 4), (8, 3, 4, 4), &dev).unwrap();
    let kt = Var::from_vec(rand_vec(&mut rng, 3 * 5 * 4 * 4), (3, 5, 4, 4), &dev).unwrap();
    type Conv = fn(&Tensor, &Tensor) -> Tensor;
    let cases: [(&str, &Var, Conv, Conv); 2] = [
        (
            "fused conv2d",
            &kern,
            |x, k| gmvae_models::conv::conv2d(x, k, 1, 1).unwrap(),
            |x, k| x.conv2d(k, 1, 1, 1, 1).unwrap(),
        ),
        (
            "fused conv_transpose2d",
            &kt,
            |x, k| gmvae_models::conv::conv_transpose2d(x, k, 2, 1).unwrap(),
            |x, k| x.conv_transpose2d(k, 1, 0, 2, 1).unwrap(),
        ),
    ];
    for (what, k, ours, theirs) in cases {
        let (o, r) = (ours(x.as_tensor(), k), theirs(x.as_tensor(), k));
        assert!(max_rel_diff(&o, &r) < 1e-5, "{what} forward");
        let w = Tensor::from_vec(rand_vec(&mut rng, o.elem_count()), o.shape(), &dev).unwrap();
        let go = (o * &w).unwrap().sum_all().unwrap().backward().unwrap();
        let gr = (r * &w).unwrap().sum_all().unwrap().backward().unwrap();
        for v in [&x, k] {
            let (a, b) = (
                go.get(v.as_tensor()).unwrap(),
                gr.get(v.as_tensor()).unwrap(),
            );
            assert!(max_rel_diff(a, b) < 1e-4, "{what} gradient");
        }
    }

    // The patched elementwise kernels on the pool (large enough to split): strided sources
    // (a transposed copy, a broadcast operand squared), comparisons, ReLU's gradient, and sums
    // over trailing dims and over (N, H, W); each against a plain loop.
    let (c, rest) = (16, 50 * 23 * 23);
    let v = rand_vec(&mut rng, c * rest);
    let t = Tensor::from_vec(v.clone(), (c, rest), &dev).unwrap();
    let copied: Vec<f32> = t.t().unwrap().contiguous().unwrap().flat();
    let want: Vec<f32> = (0..rest * c).map(|i| v[(i % c) * rest + i / c]).collect();
    assert_eq!(copied, want, "transposed copy");
    let col = Tensor::from_vec(v[..c].to_vec(), (c, 1), &dev).unwrap();
    let sq: Vec<f32> = col.broadcast_as((c, rest)).unwrap().sqr().unwrap().flat();
    assert!(
        sq.iter()
            .enumerate()
            .all(|(i, s)| *s == v[i / rest] * v[i / rest]),
        "broadcast sqr"
    );
    let ge: Vec<u8> = t.ge(0.25).unwrap().flat();
    assert!(
        ge.iter().zip(&v).all(|(g, x)| *g == u8::from(*x >= 0.25)),
        "cmp"
    );
    let xr = Var::from_vec(v.clone(), (c, rest), &dev).unwrap();
    let gw = rand_vec(&mut rng, c * rest);
    let gwt = Tensor::from_vec(gw.clone(), (c, rest), &dev).unwrap();
    let g = (xr.as_tensor().relu().unwrap() * &gwt)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    let got: Vec<f32> = g.get(xr.as_tensor()).unwrap().flat();
    let want: Vec<f32> = gw
        .iter()
        .zip(&v)
        .map(|(g, x)| g * if *x >= 0. { 1. } else { 0. })
        .collect();
    assert_eq!(got, want, "relu gradient");
    let rows = t.sum_keepdim(1).unwrap();
    let want: Vec<f32> = (0..c)
        .map(|i| {
            v[i * rest..(i + 1) * rest]
                .iter()
                .map(|&x| x as f64)
                .sum::<f64>() as f32
        })
        .collect();
    let want = Tensor::from_vec(want, (c, 1), &dev).unwrap();
    assert!(max_rel_diff(&rows, &want) < 1e-4, "row sums");
    let t4 = t.reshape((2, 8, 50, 529)).unwrap();
    let chan = t4.sum_keepdim((0, 2, 3)).unwrap();
    let want: Vec<f32> = (0..8)
        .map(|ch| {
            (0..2)
                .flat_map(|a| v[(a * 8 + ch) * rest..][..rest].iter())
                .map(|&x| x as f64)
                .sum::<f64>() as f32
        })
        .collect();
    let want = Tensor::from_vec(want, (1, 8, 1, 1), &dev).unwrap();
    assert!(max_rel_diff(&chan, &want) < 1e-4, "channel sums");

    // The fused in-place Adam (chunked over the pool) against the tensor-op Adam, five steps on
    // a tensor of several chunks.
    let n = 300_000;
    let init = rand_vec(&mut rng, n);
    let fused = Var::from_vec(init.clone(), n, &dev).unwrap();
    let plain = Var::from_vec(init, n, &dev).unwrap();
    let cfg = AdamConfig {
        lr: 1e-2,
        ..AdamConfig::default()
    };
    let mut a1 = Adam::new(vec![("p".into(), fused.clone())], cfg).unwrap();
    let mut a2 = Adam::new_with_tensor_moments(vec![("p".into(), plain.clone())], cfg).unwrap();
    let target = Tensor::from_vec(rand_vec(&mut rng, n), n, &dev).unwrap();
    for _ in 0..5 {
        for (var, adam) in [(&fused, &mut a1), (&plain, &mut a2)] {
            let loss = (var.as_tensor() - &target)
                .unwrap()
                .sqr()
                .unwrap()
                .sum_all()
                .unwrap();
            adam.step(&loss.backward().unwrap()).unwrap();
        }
    }
    assert!(
        max_rel_diff(fused.as_tensor(), plain.as_tensor()) < 1e-5,
        "fused Adam on two threads"
    );

    // The Serket VAE's fused loss: row sums and the logits' gradient, with rows spread over the
    // pool's tasks, against the formula in f64.
    let (rows, d) = (500, 784);
    let l: Vec<f32> = rand_vec(&mut rng, rows * d)
        .iter()
        .map(|v| v * 20.0)
        .collect();
    let x: Vec<f32> = rand_vec(&mut rng, rows * d)
        .iter()
        .map(|v| (v + 1.0) / 2.0)
        .collect();
    let lv = Var::from_vec(l.clone(), (rows, d), &dev).unwrap();
    let xt = Tensor::from_vec(x.clone(), (rows, d), &dev).unwrap();
    let sums = gmvae::serket::bce::bce_with_logits_rows(lv.as_tensor(), &xt).unwrap();
    let grads = sums.sum_all().unwrap().backward().unwrap();
    let (mut want_sum, mut want_grad) = (vec![0f32; rows], vec![0f32; rows * d]);
    for (i, (&l, &x)) in l.iter().zip(&x).enumerate() {
        let (l, x) = (l as f64, x as f64);
        want_sum[i / d] += (l.max(0.0) - x * l + (-l.abs()).exp().ln_1p()) as f32;
        want_grad[i] = (1.0 / (1.0 + (-l).exp()) - x) as f32;
    }
    let want_sum = Tensor::from_vec(want_sum, rows, &dev).unwrap();
    let want_grad = Tensor::from_vec(want_grad, (rows, d), &dev).unwrap();
    assert!(max_rel_diff(&sums, &want_sum) < 1e-5, "bce row sums");
    let got = grads.get(lv.as_tensor()).unwrap();
    assert!(max_rel_diff(got, &want_grad) < 1e-5, "bce gradient");
}
