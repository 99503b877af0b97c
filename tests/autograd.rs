//! The patched autograd of `vendor/candle-core` (see `vendor/README.md`): gradients through the
//! changed paths — first contributions stored without a zero buffer, repeated contributions
//! summed, subtraction, and matmul operands stored transposed — against gradients worked out by
//! hand.

use candle_core::{DType, Device, Tensor, Var};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn rand_tensor(rng: &mut StdRng, shape: &[usize]) -> Tensor {
    let n: usize = shape.iter().product();
    let v: Vec<f64> = (0..n).map(|_| rng.random_range(-1.0..1.0)).collect();
    Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
}

fn assert_close(got: &Tensor, want: &Tensor, what: &str) {
    assert_eq!(got.dims(), want.dims(), "{what}: shape");
    let diff = (got - want)
        .unwrap()
        .abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar::<f64>()
        .unwrap();
    assert!(diff < 1e-12, "{what}: max |difference| {diff}");
}

#[test]
fn linear_layer_gradients_match_the_hand_derived_ones() {
    // y = x Wᵀ + b, loss = sum(y ⊙ c): dW = cᵀ x, db = sum_n c, dx = c W.
    let mut rng = StdRng::seed_from_u64(1);
    let (n, i, o) = (5, 7, 4);
    let x = Var::from_tensor(&rand_tensor(&mut rng, &[n, i])).unwrap();
    let w = Var::from_tensor(&rand_tensor(&mut rng, &[o, i])).unwrap();
    let b = Var::from_tensor(&rand_tensor(&mut rng, &[o])).unwrap();
    let c = rand_tensor(&mut rng, &[n, o]);
    let y = x
        .as_tensor()
        .matmul(&w.as_tensor().t().unwrap())
        .unwrap()
        .broadcast_add(b.as_tensor())
        .unwrap();
    let grads = (y * &c).unwrap().sum_all().unwrap().backward().unwrap();

    let dw = grads.get(w.as_tensor()).unwrap();
    assert!(
        dw.is_contiguous(),
        "the weight's gradient is handed over contiguous"
    );
    assert_close(dw, &c.t().unwrap().matmul(x.as_tensor()).unwrap(), "dW");
    assert_close(grads.get(b.as_tensor()).unwrap(), &c.sum(0).unwrap(), "db");
    assert_close(
        grads.get(x.as_tensor()).unwrap(),
        &c.matmul(w.as_tensor()).unwrap(),
        "dx",
    );
}

#[test]
fn transposed_left_operand_and_batched_matmul() {
    let mut rng = StdRng::seed_from_u64(2);
    // loss = sum((Aᵀ B) ⊙ C) with A [I, N]: dA = B Cᵀ, dB = A C.
    let a = Var::from_tensor(&rand_tensor(&mut rng, &[3, 6])).unwrap();
    let bm = Var::from_tensor(&rand_tensor(&mut rng, &[3, 2])).unwrap();
    let cm = rand_tensor(&mut rng, &[6, 2]);
    let y = a.as_tensor().t().unwrap().matmul(bm.as_tensor()).unwrap();
    let grads = (y * &cm).unwrap().sum_all().unwrap().backward().unwrap();
    let want_da = bm.as_tensor().matmul(&cm.t().unwrap()).unwrap();
    assert_close(grads.get(a.as_tensor()).unwrap(), &want_da, "dA");
    let want_db = a.as_tensor().matmul(&cm).unwrap();
    assert_close(grads.get(bm.as_tensor()).unwrap(), &want_db, "dB");

    // Batched: y_b = x_b W_bᵀ, dW_b = c_bᵀ x_b.
    let x = rand_tensor(&mut rng, &[2, 5, 4]);
    let w = Var::from_tensor(&rand_tensor(&mut rng, &[2, 3, 4])).unwrap();
    let c = rand_tensor(&mut rng, &[2, 5, 3]);
    let y = x.matmul(&w.as_tensor().transpose(1, 2).unwrap()).unwrap();
    let grads = (y * &c).unwrap().sum_all().unwrap().backward().unwrap();
    let want = c.transpose(1, 2).unwrap().matmul(&x).unwrap();
    assert_close(grads.get(w.as_tensor()).unwrap(), &want, "batched dW");
}

#[test]
fn repeated_uses_subtraction_and_activations_accumulate() {
    let mut rng = StdRng::seed_from_u64(3);
    let a = Var::from_tensor(&rand_tensor(&mut rng, &[4, 3])).unwrap();
    let b = Var::from_tensor(&rand_tensor(&mut rng, &[4, 3])).unwrap();
    let (at, bt) = (a.as_tensor(), b.as_tensor());
    // loss = sum(a⊙a + a - b + tanh(a) + relu(b)):
    // d/da = 2a + 1 + (1 - tanh²a), d/db = -1 + [b >= 0].
    let loss = ((at * at).unwrap() + at).unwrap();
    let loss = (loss - bt).unwrap();
    let loss = (loss + at.tanh().unwrap()).unwrap();
    let loss = (loss + bt.relu().unwrap()).unwrap();
    let grads = loss.sum_all().unwrap().backward().unwrap();
    let th = at.tanh().unwrap();
    let want_a = ((at * 2.0).unwrap() + 1.0).unwrap();
    let want_a = (want_a + (1.0 - (&th * &th).unwrap()).unwrap()).unwrap();
    assert_close(grads.get(at).unwrap(), &want_a, "d/da");
    let step = bt.ge(0.0).unwrap().to_dtype(DType::F64).unwrap();
    assert_close(grads.get(bt).unwrap(), &(step - 1.0).unwrap(), "d/db");

    // A broadcast parameter receives the sum of its copies' gradients, stored contiguous.
    let v = Var::from_tensor(&rand_tensor(&mut rng, &[3])).unwrap();
    let m = rand_tensor(&mut rng, &[4, 3]);
    let grads = m
        .broadcast_mul(v.as_tensor())
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    let dv = grads.get(v.as_tensor()).unwrap();
    assert!(dv.is_contiguous());
    assert_close(dv, &m.sum(0).unwrap(), "broadcast dv");

    // where_cond routes the gradient to the chosen branch only.
    let mask = m.ge(0.0).unwrap();
    let y = mask.where_cond(at, &(bt * 3.0).unwrap()).unwrap();
    let grads = y.sum_all().unwrap().backward().unwrap();
    let f = mask.to_dtype(DType::F64).unwrap();
    assert_close(grads.get(at).unwrap(), &f, "where_cond true branch");
    let want_b = ((1.0 - &f).unwrap() * 3.0).unwrap();
    assert_close(grads.get(bt).unwrap(), &want_b, "where_cond false branch");
}

/// The reference sum: every source element in row-major order, added to the output with its
/// reduced coordinates set to zero (the order of candle's general loop).
fn reference_sum(src: &[f32], dims: &[usize], reduce: &[usize]) -> Vec<f32> {
    let out_dims: Vec<usize> = dims
        .iter()
        .enumerate()
        .map(|(d, &s)| if reduce.contains(&d) { 1 } else { s })
        .collect();
    let mut out = vec![0f32; out_dims.iter().product()];
    for (i, &x) in src.iter().enumerate() {
        let (mut rest, mut o, mut stride) = (i, 0, 1);
        for d in (0..dims.len()).rev() {
            let c = rest % dims[d];
            rest /= dims[d];
            if !reduce.contains(&d) {
                o += c * stride;
                stride *= out_dims[d];
            }
        }
        out[o] += x;
    }
    out
}

#[test]
fn sums_over_leading_and_middle_dims_match_the_element_order_reference() {
    // The patched ReduceSum walks contiguous blocks; the results must be bitwise those of the
    // element-by-element loop for every pattern of reduced dims, size-1 dims included.
    let mut rng = StdRng::seed_from_u64(4);
    let cases: &[(&[usize], &[usize])] = &[
        (&[3, 4, 5, 6], &[0]),
        (&[3, 4, 5, 6], &[1]),
        (&[3, 4, 5, 6], &[0, 2]),
        (&[3, 4, 5, 6], &[1, 3]),
        (&[3, 4, 5, 6], &[0, 2, 3]),
        (&[3, 4, 5, 6], &[0, 1, 3]),
        (&[3, 4, 5, 6], &[2]),
        (&[2, 1, 3, 1, 4], &[0, 3]),
        (&[2, 1, 3, 1, 4], &[1, 2]),
        (&[50, 16, 14, 14], &[0, 2, 3]),
    ];
    for &(dims, reduce) in cases {
        let n: usize = dims.iter().product();
        let v: Vec<f32> = (0..n).map(|_| rng.random_range(-1.0..1.0)).collect();
        let t = Tensor::from_vec(v.clone(), dims, &Device::Cpu).unwrap();
        let got = t
            .sum_keepdim(reduce)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        assert_eq!(
            got,
            reference_sum(&v, dims, reduce),
            "{dims:?} over {reduce:?}"
        );
    }
}

#[test]
fn relu_and_broadcast_division_gradients_are_the_composed_forms_bits() {
    // ReLU's one-pass gradient and a broadcast divisor squared before its broadcast: the same
    // bits as the composed tensor ops they replace (f32, as the models train).
    let mut rng = StdRng::seed_from_u64(9);
    let f32t =
        |rng: &mut StdRng, shape: &[usize]| rand_tensor(rng, shape).to_dtype(DType::F32).unwrap();
    let bits = |t: &Tensor| -> Vec<u32> {
        let v: Vec<f32> = t.flatten_all().unwrap().to_vec1().unwrap();
        v.iter().map(|x| x.to_bits()).collect()
    };
    let x = Var::from_tensor(&f32t(&mut rng, &[6, 5])).unwrap();
    let w = f32t(&mut rng, &[6, 5]);
    let grads = (x.as_tensor().relu().unwrap() * &w)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    let step = x
        .ge(&x.zeros_like().unwrap())
        .unwrap()
        .to_dtype(DType::F32)
        .unwrap();
    let want = (&w * step).unwrap();
    assert_eq!(bits(grads.get(x.as_tensor()).unwrap()), bits(&want), "relu");

    // y = a / s (s broadcast over rows): d/ds = -sum_rows(g * a / s²).
    let a = f32t(&mut rng, &[6, 5]);
    let s = Var::from_tensor(&(f32t(&mut rng, &[1, 5]).abs().unwrap() + 0.5).unwrap()).unwrap();
    let g = f32t(&mut rng, &[6, 5]);
    let grads = (a.broadcast_div(s.as_tensor()).unwrap() * &g)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    let s_full = s.as_tensor().broadcast_as((6, 5)).unwrap();
    let s_sqr = s_full.sqr().unwrap();
    let want = (&g * &a).unwrap().div(&s_sqr).unwrap().neg().unwrap();
    let want = want.sum_keepdim(0).unwrap();
    assert_eq!(
        bits(grads.get(s.as_tensor()).unwrap()),
        bits(&want),
        "broadcast divisor"
    );
}
