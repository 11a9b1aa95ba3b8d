//! Optimisers over parameter trees: a tree update is the slice update of the flattened leaves,
//! bit for bit; the state is keyed by leaf path, taken out and put back exactly; errors name
//! the leaf and leave everything unchanged.

use std::collections::BTreeMap;

use perturb::tensor::Tensor;
use perturb::Tree;
use perturb_nn::optim::{Adam, GradientDescent, Optimizer, OptimizerState, Sgd};
use rand::{Rng, SeedableRng};

/// A layer as a user writes it.
#[derive(Tree, Clone, Debug)]
struct Linear<A> {
    weight: A,
    bias: Option<A>,
    #[tree(skip)]
    inputs: usize,
}

/// A model of two layers and a map of extra parameters.
type Model = (Vec<Linear<Tensor<f64>>>, BTreeMap<String, Tensor<f64>>);

fn random(rng: &mut rand::rngs::StdRng, shape: &[usize]) -> Tensor<f64> {
    let n = shape.iter().product();
    let data = (0..n).map(|_| rng.random_range(-2.0..2.0)).collect();
    Tensor::from_vec(data, shape).unwrap()
}

/// A model with random leaves (the same structure for every seed).
fn model(seed: u64) -> Model {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let layers = vec![
        Linear {
            weight: random(&mut rng, &[3, 4]),
            bias: Some(random(&mut rng, &[4])),
            inputs: 3,
        },
        Linear {
            weight: random(&mut rng, &[4, 2]),
            bias: None,
            inputs: 4,
        },
    ];
    let mut extra = BTreeMap::new();
    extra.insert("scale".to_string(), random(&mut rng, &[]));
    extra.insert("shift".to_string(), random(&mut rng, &[2]));
    (layers, extra)
}

fn bits(t: &Tensor<f64>) -> Vec<u64> {
    t.as_slice().iter().map(|x| x.to_bits()).collect()
}

/// Every optimiser, with momentum, Nesterov, L2 and decoupled weight decay.
fn optimisers() -> Vec<(&'static str, Box<dyn Optimizer<f64>>)> {
    vec![
        ("gd", Box::new(GradientDescent::new(0.1))),
        ("sgd", Box::new(Sgd::new(0.05, 0.9, false))),
        ("nesterov", Box::new(Sgd::new(0.05, 0.8, true))),
        ("adam", Box::new(Adam::new(0.01))),
        (
            "adam-l2",
            Box::new(Adam::new(0.01).with_weight_decay(0.1, false)),
        ),
        (
            "adamw",
            Box::new(
                Adam::new(0.01)
                    .with_betas(0.8, 0.99)
                    .with_weight_decay(0.1, true),
            ),
        ),
    ]
}

#[test]
fn a_tree_update_is_the_slice_update_of_its_leaves_bit_for_bit() {
    for ((name, mut on_tree), (_, mut on_slice)) in optimisers().into_iter().zip(optimisers()) {
        let mut tree = model(1);
        let mut flat = tree.flatten();
        assert_eq!(flat.len(), 5);
        for step in 0..5 {
            let grads = model(100 + step);
            on_tree.update(&mut tree, &grads).unwrap();
            on_slice.step(&mut flat, &grads.flatten()).unwrap();
            for (path, (a, b)) in tree.paths().iter().zip(tree.leaves().iter().zip(&flat)) {
                assert_eq!(bits(a), bits(b), "{name}, step {step}, {path}");
            }
        }
        // The updates moved the weights: the comparison above is not of unchanged leaves.
        let start = model(1).flatten();
        assert_ne!(bits(&flat[0]), bits(&start[0]), "{name}");
        // The skipped field is kept.
        assert_eq!(tree.0[1].inputs, 4);
    }
}

#[test]
fn adamw_decays_the_weights_apart_from_the_gradient() {
    let (lr, wd, eps) = (0.01, 0.1, 1e-8);
    let w = Tensor::vector(&[2.0_f64, -3.0, 0.5]);
    // A zero gradient: m = v = 0, so Adam's step is 0 / (0 + eps) = 0 and AdamW's only change
    // is the decay W <- W - lr wd W, exactly.
    let mut p = vec![w.clone()];
    let mut adamw = Adam::new(lr).with_weight_decay(wd, true);
    adamw.update(&mut p, &vec![Tensor::zeros(&[3])]).unwrap();
    let decayed: Vec<f64> = w.to_vec().iter().map(|x| x - lr * wd * x).collect();
    assert_eq!(p[0].to_vec(), decayed);
    // With L2 in the gradient instead, g = wd W, and the first step (m^ = g, v^ = g^2) moves
    // each weight by lr g / (|g| + eps): about lr, towards 0.
    let mut p = vec![w.clone()];
    let mut l2 = Adam::new(lr).with_weight_decay(wd, false);
    l2.update(&mut p, &vec![Tensor::zeros(&[3])]).unwrap();
    for (got, x) in p[0].to_vec().iter().zip(w.to_vec()) {
        let g = wd * x;
        assert!(
            (got - (x - lr * g / (g.abs() + eps))).abs() < 1e-12,
            "{got}"
        );
    }
    // A gradient too: W(1 - lr wd) - lr g / (|g| + eps) on the first step.
    let g = Tensor::vector(&[0.3, -5.0, 1e-3]);
    let mut p = vec![w.clone()];
    let mut adamw = Adam::new(lr).with_weight_decay(wd, true);
    adamw.update(&mut p, &vec![g.clone()]).unwrap();
    let expected = w
        .to_vec()
        .into_iter()
        .zip(g.to_vec())
        .map(|(x, g)| x - lr * wd * x - lr * g / (g.abs() + eps));
    for (got, want) in p[0].to_vec().iter().zip(expected) {
        assert!((got - want).abs() < 1e-12, "{got} vs {want}");
    }
}

#[test]
fn a_tree_of_another_structure_or_shape_is_refused_and_nothing_changes() {
    for (name, mut opt) in optimisers() {
        let mut tree = model(1);
        let before: Vec<Vec<u64>> = tree.leaves().into_iter().map(bits).collect();
        let unchanged = |tree: &Model| {
            let now: Vec<Vec<u64>> = tree.leaves().into_iter().map(bits).collect();
            assert_eq!(now, before, "{name}");
        };
        // A gradient tree without a bias.
        let mut grads = model(2);
        grads.0[0].bias = None;
        let err = opt.update(&mut tree, &grads).unwrap_err().to_string();
        assert!(
            err.contains("Optimizer::update") && err.contains("0.0.bias"),
            "{name}: {err}"
        );
        unchanged(&tree);
        // A gradient of another shape, named by its path.
        let mut grads = model(2);
        grads.1.insert("shift".into(), Tensor::zeros(&[3]));
        let err = opt.update(&mut tree, &grads).unwrap_err().to_string();
        assert!(
            err.contains("grads[1.shift] has shape [3], but params[1.shift] has shape [2]"),
            "{name}: {err}"
        );
        unchanged(&tree);
        // A bad hyperparameter.
        opt.set_lr(f64::NAN);
        assert!(opt.update(&mut tree, &model(2)).is_err(), "{name}");
        unchanged(&tree);
    }
}

#[test]
fn the_state_is_keyed_by_path_so_another_tree_is_an_error() {
    let leaf = |x: f64| Tensor::vector(&[x, x]);
    let tree = |keys: &[&str]| -> BTreeMap<String, Tensor<f64>> {
        keys.iter().map(|k| (k.to_string(), leaf(1.0))).collect()
    };
    let mut opt = Adam::new(0.1);
    let mut ab = tree(&["a", "b"]);
    opt.update(&mut ab, &tree(&["a", "b"])).unwrap();
    // Same count and shapes, another name: the position would match, the path does not.
    let mut ac = tree(&["a", "c"]);
    let err = opt
        .update(&mut ac, &tree(&["a", "c"]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("params[c]") && err.contains("'b'"), "{err}");
    // A leaf fewer: the one the state has and the parameters lack is named.
    let mut a = tree(&["a"]);
    let err = opt.update(&mut a, &tree(&["a"])).unwrap_err().to_string();
    assert!(err.contains("'b'") && err.contains("lack"), "{err}");
    assert_eq!(a["a"].to_vec(), [1.0, 1.0]);
    // The slice form names its leaves 0, 1, ...: the same state as a Vec's tree update.
    let mut slice_opt = Sgd::new(0.1, 0.9, false);
    let mut vec_opt = Sgd::new(0.1, 0.9, false);
    let (mut p, mut q) = (vec![leaf(1.0), leaf(2.0)], vec![leaf(1.0), leaf(2.0)]);
    let g = vec![leaf(0.5), leaf(-1.0)];
    slice_opt.step(&mut p, &g).unwrap();
    slice_opt.step(&mut p, &g).unwrap();
    vec_opt.step(&mut q, &g).unwrap();
    vec_opt.update(&mut q, &g).unwrap();
    assert_eq!(bits(&p[1]), bits(&q[1]));
    assert_eq!(vec_opt.steps(), 2);
}

#[test]
fn a_state_put_back_continues_bit_for_bit() {
    for ((name, mut first), (_, mut second)) in optimisers().into_iter().zip(optimisers()) {
        let mut tree = model(1);
        for step in 0..3 {
            first.update(&mut tree, &model(100 + step)).unwrap();
        }
        let state = first.state();
        if name != "gd" {
            // One buffer per leaf and slot, at SLOT.PATH.
            let slots: Vec<&String> = state.slots.keys().collect();
            let expected: &[&str] = if name.starts_with("adam") {
                &["m", "v"]
            } else {
                &["velocity"]
            };
            assert_eq!(slots, expected, "{name}");
            assert_eq!(state.steps, 3, "{name}");
            let mut paths = tree.paths();
            paths.sort();
            for column in state.slots.values() {
                assert_eq!(column.keys().cloned().collect::<Vec<_>>(), paths);
            }
        }
        second.load_state(state).unwrap();
        let mut copy = tree.clone();
        for step in 3..6 {
            first.update(&mut tree, &model(100 + step)).unwrap();
            second.update(&mut copy, &model(100 + step)).unwrap();
        }
        for (a, b) in tree.leaves().into_iter().zip(copy.leaves()) {
            assert_eq!(bits(a), bits(b), "{name}");
        }
    }
}

#[test]
fn a_state_that_does_not_fit_is_refused_and_the_optimiser_is_unchanged() {
    let mut opt = Adam::new(0.01);
    let mut tree = model(1);
    opt.update(&mut tree, &model(2)).unwrap();
    let good = opt.state();
    let edited = |edit: &dyn Fn(&mut OptimizerState<f64>)| {
        let mut s = good.clone();
        edit(&mut s);
        s
    };
    let cases: Vec<(OptimizerState<f64>, &str)> = vec![
        (
            Sgd::<f64>::new(0.1, 0.9, false).state(),
            "the optimiser 'Sgd', not 'Adam'",
        ),
        (edited(&|s| drop(s.slots.remove("v"))), "lacks the slot 'v'"),
        (
            edited(&|s| {
                let m = s.slots["m"].clone();
                s.slots.insert("velocity".into(), m);
            }),
            "slot 'velocity' this optimiser does not keep",
        ),
        (
            edited(&|s| drop(s.slots.get_mut("v").unwrap().remove("1.shift"))),
            "disagree on the leaf '1.shift'",
        ),
        (
            edited(&|s| {
                s.slots
                    .get_mut("v")
                    .unwrap()
                    .insert("1.scale".into(), Tensor::zeros(&[2]));
            }),
            "'v' of the leaf '1.scale' has shape [2], 'm' has []",
        ),
    ];
    for (state, expected) in cases {
        let err = opt.load_state(state).unwrap_err().to_string();
        assert!(
            err.contains("Adam::load_state") && err.contains(expected),
            "{err}"
        );
        // Still the good state: the next update equals one from a fresh copy of it.
        let mut fresh = Adam::new(0.01);
        fresh.load_state(good.clone()).unwrap();
        let (mut a, mut b) = (tree.clone(), tree.clone());
        opt.clone().update(&mut a, &model(3)).unwrap();
        fresh.update(&mut b, &model(3)).unwrap();
        assert_eq!(bits(&a.0[0].weight), bits(&b.0[0].weight));
    }
    // A state for other leaves loads (the leaves are compared at the next update).
    let mut other = Adam::new(0.01);
    other.load_state(good.clone()).unwrap();
    let mut wrong = vec![Tensor::<f64>::zeros(&[2])];
    let zeros = wrong.clone();
    let err = other.step(&mut wrong, &zeros).unwrap_err().to_string();
    assert!(err.contains("params[0] is not among"), "{err}");
    // Gradient descent keeps nothing and takes only its own (empty) state.
    let mut gd = GradientDescent::new(0.1);
    let nothing = Optimizer::<f64>::state(&gd);
    Optimizer::<f64>::load_state(&mut gd, nothing).unwrap();
    assert!(Optimizer::<f64>::load_state(&mut gd, good).is_err());
}

#[test]
fn f32_trees_update_too() {
    let mut p = (
        Tensor::vector(&[1.0_f32, -1.0]),
        vec![Tensor::scalar(0.5_f32)],
    );
    let g = (
        Tensor::vector(&[1.0_f32, 1.0]),
        vec![Tensor::scalar(-2.0_f32)],
    );
    let mut opt = Sgd::new(0.5, 0.0, false);
    opt.update(&mut p, &g).unwrap();
    assert_eq!(p.0.to_vec(), [0.5, -1.5]);
    assert_eq!(p.1[0].to_vec(), [1.5]);
    assert_eq!(opt.state().slots["velocity"]["1.0"].to_vec(), [-2.0]);
}
