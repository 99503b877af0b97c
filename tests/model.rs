//! Network structure: upstream's parameter counts, conv shapes, seeded initialisation.

use candle_core::{DType, Device, Tensor};
use gmvae::data::DataShape;
use gmvae::model::Model;
use gmvae::options::Options;

fn dataset(dy: usize, image_shape: Option<[usize; 3]>) -> DataShape {
    DataShape { dy, image_shape }
}

fn count(opts: &Options, dy: usize, shape: Option<[usize; 3]>) -> usize {
    Model::new(opts, &dataset(dy, shape), &Device::Cpu)
        .unwrap()
        .parameter_count()
}

fn params(preset: &str, dy: usize, shape: Option<[usize; 3]>) -> usize {
    count(&Options::upstream(preset).unwrap(), dy, shape)
}

#[test]
fn parameter_counts_match_upstream() {
    assert_eq!(params("spiral", 2, None), 26_752);
    assert_eq!(params("mnist_fc", 784, None), 10_248_098);
    assert_eq!(params("mnist", 784, Some([1, 28, 28])), 8_630_039);
    // The presets train upstream's networks, except mnist_fc's recipe: Dx = 10 and no q(z|y)
    // head (the v2 objective).
    for (preset, dy, shape) in [("spiral", 2, None), ("mnist", 784, Some([1, 28, 28]))] {
        assert_eq!(
            count(&Options::preset(preset).unwrap(), dy, shape),
            params(preset, dy, shape)
        );
    }
    // mnist_fc as the preset trains it (Dx = 10, v2): upstream's count less the q(z|y) head
    // (H x K weights + K biases) and less 190 of the 200 dimensions of x, each of which has
    // q(x|y)'s two heads (2 x (H + 1)), the decoder's first layer (H) and the K prior heads'
    // mean and log-variance (2 x K x (H + 1)).
    let (h, k) = (1000, 14);
    let per_dim = 2 * (h + 1) + h + 2 * k * (h + 1);
    let fc = count(&Options::preset("mnist_fc").unwrap(), 784, None);
    assert_eq!(fc, 10_248_098 - (h * k + k) - 190 * per_dim);
    assert_eq!(fc, 4_338_384);
}

#[test]
fn svhn_parameter_count_matches_upstream() {
    // The svhn branch has no q(z|y) head: the preset uses the v2 objective, as that branch.
    let opts = Options::preset("svhn").unwrap();
    assert_eq!(opts.objective, gmvae::objective::ObjectiveKind::V2);
    assert_eq!(opts.lambda, 0.0, "the svhn branch has no free bits");
    let m = Model::new(&opts, &dataset(3072, Some([3, 32, 32])), &Device::Cpu).unwrap();
    assert_eq!(m.parameter_count(), 7_948_755);
}

#[test]
fn conv_networks_map_images_back_to_images() {
    for (preset, dy, shape) in [("mnist", 784, [1, 28, 28]), ("svhn", 3072, [3, 32, 32])] {
        let mut opts = Options::preset(preset).unwrap();
        (
            opts.hidden_size,
            opts.n_filters,
            opts.x_size,
            opts.w_size,
            opts.k,
        ) = (8, 2, 3, 2, 4);
        // With the q(z|y) head, to check its shape too.
        opts.objective = gmvae::objective::ObjectiveKind::V1;
        let m = Model::new(&opts, &dataset(dy, Some(shape)), &Device::Cpu).unwrap();
        let y = Tensor::rand(0f32, 1f32, (3, dy), &Device::Cpu).unwrap();
        let post = m.net.recognition.forward_t(&y, true).unwrap();
        assert_eq!(post.mean_x.dims(), [3, 3]);
        assert_eq!(post.qz_logits.unwrap().dims(), [3, 4]);
        let recon = m.net.decode(&post.mean_x, true).unwrap().mean().unwrap();
        assert_eq!(recon.dims(), [3, dy]);
    }
}

#[test]
fn same_seed_same_weights_and_torch7_init_ranges() {
    let opts = Options::preset("spiral").unwrap();
    let a = Model::new(&opts, &dataset(2, None), &Device::Cpu).unwrap();
    let b = Model::new(&opts, &dataset(2, None), &Device::Cpu).unwrap();
    let mut other = opts.clone();
    other.seed = 2;
    let c = Model::new(&other, &dataset(2, None), &Device::Cpu).unwrap();
    let flat = |m: &Model, name: &str| -> Vec<f32> {
        let v = &m.vars.iter().find(|(n, _)| n == name).unwrap().1;
        v.as_tensor()
            .flatten_all()
            .unwrap()
            .to_dtype(DType::F32)
            .unwrap()
            .to_vec1()
            .unwrap()
    };
    for (name, _) in &a.vars {
        assert_eq!(flat(&a, name), flat(&b, name), "{name}");
    }
    let w = "recognition.fc2.linear.weight";
    assert_ne!(flat(&a, w), flat(&c, w));
    // Linear(H=100, H): U(-0.1, 0.1); BN gamma U(0, 1); BN beta 0; running var 1.
    assert!(flat(&a, w).iter().all(|v| v.abs() <= 0.1));
    let gamma = flat(&a, "recognition.fc1.bn.weight");
    assert!(gamma.iter().all(|&g| (0.0..1.0).contains(&g)) && gamma.iter().any(|&g| g < 0.5));
    assert!(flat(&a, "recognition.fc1.bn.bias")
        .iter()
        .all(|&v| v == 0.0));
    assert!(flat(&a, "recognition.fc1.bn.running_var")
        .iter()
        .all(|&v| v == 1.0));
}
