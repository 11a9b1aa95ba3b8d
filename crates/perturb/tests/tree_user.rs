//! A new user's programs, written from the docs alone: a model as a user struct with
//! `#[derive(Tree)]`, trained with `grad` and a hand-written SGD step, and every tree transform
//! on it, each against an independent reference (finite differences, the flat computation
//! regrouped, or a fit whose answer is known).

use std::collections::BTreeMap;

use perturb::prelude::*;
use perturb::tensor::{
    check_grads, grad, grad_with_aux, hessian, hvp, jacfwd, jacrev, jvp, ravel, unravel,
    value_and_grad, CheckOptions, TensorFn,
};

/// A dense layer `x W + b`, the bias optional; `name` is not a parameter.
#[derive(Tree, Clone, Debug)]
struct Linear<A> {
    weight: A,
    bias: Option<A>,
    #[tree(skip)]
    name: String,
}

/// A per-output scale after the layers, in a struct of its own (a nested derive).
#[derive(Tree, Clone, Debug)]
struct Head<A> {
    scale: A,
}

#[derive(Tree, Clone, Debug)]
struct Mlp<A> {
    layers: Vec<Linear<A>>,
    head: Head<A>,
}

impl<A: ArrayOps<Elem = f64>> Linear<A> {
    fn forward(&self, x: &A) -> A {
        let y = x.matmul(&self.weight);
        match &self.bias {
            Some(b) => y + b,
            None => y,
        }
    }
}

impl<A: ArrayOps<Elem = f64>> Mlp<A> {
    fn forward(&self, x: &A) -> A {
        let mut h = x.clone();
        for (i, layer) in self.layers.iter().enumerate() {
            h = layer.forward(&h);
            if i + 1 < self.layers.len() {
                h = h.tanh();
            }
        }
        h * &self.head.scale
    }

    /// The mean squared error on `(x, y)`, plain tensors made constants of the model's type.
    fn loss(&self, x: &Tensor<f64>, y: &Tensor<f64>) -> A {
        let w = &self.head.scale;
        (self.forward(&w.constant_like(x)) - w.constant_like(y))
            .square()
            .mean_all()
    }
}

fn tensor(values: &[f64], shape: &[usize]) -> Tensor<f64> {
    Tensor::from_vec(values.to_vec(), shape).unwrap()
}

/// A two-layer model, 2 -> 3 -> 1, the second layer without bias.
fn mlp() -> Mlp<Tensor<f64>> {
    Mlp {
        layers: vec![
            Linear {
                weight: tensor(&[0.3, -0.5, 0.8, 0.1, 0.4, -0.2], &[2, 3]),
                bias: Some(Tensor::vector(&[0.05, -0.1, 0.2])),
                name: "hidden".into(),
            },
            Linear {
                weight: tensor(&[0.7, -0.3, 0.5], &[3, 1]),
                bias: None,
                name: "out".into(),
            },
        ],
        head: Head {
            scale: Tensor::vector(&[1.5]),
        },
    }
}

fn data() -> (Tensor<f64>, Tensor<f64>) {
    let x = tensor(&[0.5, -1.0, 1.0, 0.2, -0.3, 0.8, 0.9, 0.4], &[4, 2]);
    let y = tensor(&[0.3, -0.2, 0.1, 0.6], &[4, 1]);
    (x, y)
}

/// `f(t + h d) - f(t - h d)) / 2h` for trees `t`, `d`: the directional derivative by central
/// differences, computed on plain tensors only.
fn central<X: Tree<Tensor<f64>, With<Tensor<f64>> = X>>(
    f: impl Fn(&X) -> f64,
    t: &X,
    d: &X,
) -> f64 {
    let h = 1e-6;
    let plus = t.zip_map(d, |a, b| a.clone() + b.clone() * h).unwrap();
    let minus = t.zip_map(d, |a, b| a.clone() - b.clone() * h).unwrap();
    (f(&plus) - f(&minus)) / (2.0 * h)
}

/// A direction tree: the model's structure, leaves filled from a fixed sequence.
fn direction(model: &Mlp<Tensor<f64>>, salt: f64) -> Mlp<Tensor<f64>> {
    let mut k = salt;
    model.map(|t| {
        let values = (0..t.len())
            .map(|_| {
                k += 1.0;
                (k * 0.37).sin()
            })
            .collect();
        Tensor::from_vec(values, t.shape()).unwrap()
    })
}

fn dot<X: Tree<Tensor<f64>>>(a: &X, b: &X) -> f64 {
    a.leaves()
        .iter()
        .zip(b.leaves())
        .map(|(x, y)| (*x * y).sum_all().to_vec()[0])
        .sum()
}

#[test]
fn paths_name_every_parameter_and_skip_the_name() {
    assert_eq!(
        mlp().paths(),
        [
            "layers.0.weight",
            "layers.0.bias",
            "layers.1.weight",
            "head.scale"
        ]
    );
}

#[test]
fn the_gradient_of_a_struct_model_is_a_model_matching_differences() {
    let (x, y) = data();
    let model = mlp();
    let g = grad(|m| Ok(m.loss(&x, &y)), &model).unwrap();
    // The gradient is a model: the same structure, the skipped name carried along.
    assert_eq!(g.paths(), model.paths());
    assert_eq!(g.layers[1].name, "out");
    assert!(g.layers[1].bias.is_none());
    for salt in [0.0, 10.0] {
        let d = direction(&model, salt);
        let fd = central(|m| m.loss(&x, &y).to_vec()[0], &model, &d);
        let ad = dot(&g, &d);
        assert!((ad - fd).abs() < 1e-8, "ad {ad} fd {fd}");
    }
}

#[test]
fn sgd_by_zip_map_fits_a_linear_model_to_known_weights() {
    // y = 2 x0 - x1 + 0.5 exactly; one linear layer with bias and a fixed head of 1 must reach
    // weight [2, -1], bias 0.5 (the least-squares solution, unique: the inputs span R^2).
    let x = tensor(
        &[0.0, 0.0, 1.0, 0.0, 0.0, 1.0, 1.0, 1.0, -1.0, 0.5],
        &[5, 2],
    );
    let y_values: Vec<f64> = x
        .to_vec()
        .chunks(2)
        .map(|r| 2.0 * r[0] - r[1] + 0.5)
        .collect();
    let y = tensor(&y_values, &[5, 1]);
    let mut model = Mlp {
        layers: vec![Linear {
            weight: Tensor::zeros(&[2, 1]),
            bias: Some(Tensor::zeros(&[1])),
            name: "only".into(),
        }],
        head: Head {
            scale: Tensor::vector(&[1.0]),
        },
    };
    let mut first = None;
    for _ in 0..2000 {
        let (loss, g) = value_and_grad(|m| Ok(m.loss(&x, &y)), &model).unwrap();
        first.get_or_insert(loss.to_vec()[0]);
        // SGD on the layer only: the head's gradient is zeroed by hand.
        let mut g = g;
        g.head.scale = Tensor::zeros(&[1]);
        model = model
            .zip_map(&g, |p, g| p.clone() - g.clone() * 0.2)
            .unwrap();
    }
    let layer = &model.layers[0];
    assert!(first.unwrap() > 1.0);
    assert!(layer.weight.all_close(&tensor(&[2.0, -1.0], &[2, 1]), 1e-9));
    assert!(layer
        .bias
        .as_ref()
        .unwrap()
        .all_close(&Tensor::vector(&[0.5]), 1e-9));
    assert_eq!(layer.name, "only");
}

/// Two parameter groups: `w` a vector, `b` a scalar.
#[derive(Tree, Clone, Debug)]
struct Affine<A> {
    w: A,
    b: A,
}

/// `sum(tanh(x w + b)^2)` with the data of `data()`, generic over the array type and written
/// with operators.
fn affine_loss<A: ArrayOps<Elem = f64>>(m: &Affine<A>) -> A {
    let (x, _) = data();
    (m.w.constant_like(&x).matmul(&m.w) + &m.b)
        .tanh()
        .square()
        .sum_all()
}

fn affine() -> Affine<Tensor<f64>> {
    Affine {
        w: Tensor::vector(&[0.4, -0.3]),
        b: Tensor::scalar(0.2),
    }
}

#[test]
fn hessian_of_two_groups_is_the_flat_hessian_regrouped() {
    let m = affine();
    let h = hessian(|m| Ok(affine_loss(m)), &m).unwrap();
    // The flat reference: the same loss of one vector [w0, w1, b], cut apart by unravel.
    let flat = hessian(|v| Ok(affine_loss(&unravel(&m, v)?)), &ravel(&m).unwrap())
        .unwrap()
        .to_vec();
    let at = |i: usize, j: usize| flat[3 * i + j];
    assert_eq!(h.w.w.shape(), &[2, 2]);
    assert_eq!(h.w.b.shape(), &[2]);
    assert_eq!(h.b.w.shape(), &[2]);
    assert_eq!(h.b.b.shape(), &[] as &[usize]);
    let close = |a: &Tensor<f64>, b: Vec<f64>| {
        a.all_close(&Tensor::vector(&b).reshape(a.shape()).unwrap(), 1e-12)
    };
    assert!(close(&h.w.w, vec![at(0, 0), at(0, 1), at(1, 0), at(1, 1)]));
    assert!(close(&h.w.b, vec![at(0, 2), at(1, 2)]));
    assert!(close(&h.b.w, vec![at(2, 0), at(2, 1)]));
    assert!(close(&h.b.b, vec![at(2, 2)]));
    // hvp of the same function agrees with the blocks times a direction tree.
    let v = Affine {
        w: Tensor::vector(&[1.0, -2.0]),
        b: Tensor::scalar(0.5),
    };
    let hv = hvp(|m| Ok(affine_loss(m)), &m, &v).unwrap();
    let hw = h.w.w.matmul(&v.w) + h.w.b.clone() * &v.b;
    let hb = (h.b.w.clone() * &v.w).sum_all() + h.b.b.clone() * &v.b;
    assert!(hv.w.all_close(&hw, 1e-12) && hv.b.all_close(&hb.reshape(&[]).unwrap(), 1e-12));
}

#[test]
fn jvp_with_a_tangent_tree_matches_differences_and_the_gradient() {
    let (x, y) = data();
    let model = mlp();
    let d = direction(&model, 3.0);
    let (value, slope) = jvp(|m| Ok(m.loss(&x, &y)), &model, &d).unwrap();
    let fd = central(|m| m.loss(&x, &y).to_vec()[0], &model, &d);
    assert!((slope.to_vec()[0] - fd).abs() < 1e-8);
    assert_eq!(value.to_vec(), model.loss(&x, &y).to_vec());
    let g = grad(|m| Ok(m.loss(&x, &y)), &model).unwrap();
    assert!((slope.to_vec()[0] - dot(&g, &d)).abs() < 1e-12);
}

#[test]
fn has_aux_returns_the_predictions_beside_the_gradient() {
    let (x, y) = data();
    let model = mlp();
    let (g, predictions) = grad_with_aux(
        |m| {
            let p = m.forward(&m.head.scale.constant_like(&x));
            let loss = (p.clone() - m.head.scale.constant_like(&y))
                .square()
                .mean_all();
            Ok((loss, p.value().clone()))
        },
        &model,
    )
    .unwrap();
    assert!(predictions.all_close(&model.forward(&x), 0.0));
    let plain = grad(|m| Ok(m.loss(&x, &y)), &model).unwrap();
    for (a, b) in g.leaves().iter().zip(plain.leaves()) {
        assert!(a.all_close(b, 0.0));
    }
}

/// The model's loss on fixed data, as a `TensorFn` of the tree, for `check_grads`.
struct MlpLoss {
    x: Tensor<f64>,
    y: Tensor<f64>,
}

impl TensorFn<f64, Mlp<Tensor<f64>>> for MlpLoss {
    fn call<A: Array<Elem = f64>>(&self, m: &Mlp<A>) -> Result<A, Error> {
        // The body is bounded by `Array` only (the trait fixes it): the methods, not operators.
        let w = &m.head.scale;
        let mut h = w.constant_like(&self.x);
        for (i, layer) in m.layers.iter().enumerate() {
            h = h.try_matmul(&layer.weight)?;
            if let Some(b) = &layer.bias {
                h = h.try_add(b)?;
            }
            if i + 1 < m.layers.len() {
                h = h.tanh();
            }
        }
        Ok(h.try_mul(w)?
            .try_sub(&w.constant_like(&self.y))?
            .square()
            .mean_all())
    }
}

#[test]
fn check_grads_on_a_struct_model_passes_and_names_each_leaf() {
    let (x, y) = data();
    let report = check_grads(&MlpLoss { x, y }, &mlp(), &CheckOptions::default()).unwrap();
    assert!(report.passes(1e-6), "{report}");
    for path in [
        "layers.0.weight",
        "layers.0.bias",
        "layers.1.weight",
        "head.scale",
    ] {
        let label = format!("leaf '{path}'");
        assert!(
            report.comparisons.iter().any(|c| c.what.contains(&label)),
            "{report}"
        );
    }
}

#[test]
fn one_generic_function_runs_under_every_transform() {
    let m = affine();
    let g = grad(|m| Ok(affine_loss(m)), &m).unwrap();
    // jacfwd of a scalar function is its gradient (the output's shape [] then the leaf's).
    let j = jacfwd(|m| Ok(affine_loss(m)), &m).unwrap();
    let r = jacrev(|m| Ok(affine_loss(m)), &m).unwrap();
    for (a, b) in [(&g.w, &j.w), (&g.b, &j.b), (&g.w, &r.w), (&g.b, &r.b)] {
        assert!(a.all_close(b, 1e-12));
    }
    let d = Affine {
        w: Tensor::vector(&[0.3, 0.9]),
        b: Tensor::scalar(-0.4),
    };
    let fd = central(|m| affine_loss(m).to_vec()[0], &m, &d);
    assert!((dot(&g, &d) - fd).abs() < 1e-8);
    // hvp against differences of the gradient along d.
    let hv = hvp(|m| Ok(affine_loss(m)), &m, &d).unwrap();
    let gd = |s: f64| {
        let shifted = m.zip_map(&d, |a, b| a.clone() + b.clone() * s).unwrap();
        grad(|m| Ok(affine_loss(m)), &shifted).unwrap()
    };
    let (plus, minus) = (gd(1e-6), gd(-1e-6));
    let fd_hv = plus
        .zip_map(&minus, |a, b| (a.clone() - b.clone()) / 2e-6)
        .unwrap();
    assert!(hv.w.all_close(&fd_hv.w, 1e-6) && hv.b.all_close(&fd_hv.b, 1e-6));
}

#[test]
fn grad_inside_grad_over_trees_is_the_hessian_times_the_inner_direction() {
    // Outer: d/dm sum(grad_m L(m) * d), a gradient of a gradient, both over trees; it equals
    // H d, the Hessian-vector product.
    let m = affine();
    let d = Affine {
        w: Tensor::vector(&[0.5, -1.0]),
        b: Tensor::scalar(2.0),
    };
    let outer = grad(
        |m| {
            // The inner gradient runs at the outer tape's variables, the tree `m` itself.
            let inner = grad(|n| Ok(affine_loss(n)), m)?;
            let (dw, db) = (m.w.constant_like(&d.w), m.b.constant_like(&d.b));
            Ok((inner.w * dw).sum_all() + inner.b * db)
        },
        &m,
    )
    .unwrap();
    let hv = hvp(|m| Ok(affine_loss(m)), &m, &d).unwrap();
    assert!(outer.w.all_close(&hv.w, 1e-12), "{:?} {:?}", outer.w, hv.w);
    assert!(outer.b.all_close(&hv.b, 1e-12));
}

#[test]
fn a_map_of_named_groups_is_a_model_too() {
    let mut params = BTreeMap::new();
    params.insert("w".to_string(), Tensor::vector(&[0.4, -0.3]));
    params.insert("b".to_string(), Tensor::scalar(0.2));
    let g = grad(
        |p| {
            let as_struct = Affine {
                w: p["w"].clone(),
                b: p["b"].clone(),
            };
            Ok(affine_loss(&as_struct))
        },
        &params,
    )
    .unwrap();
    let reference = grad(|m| Ok(affine_loss(m)), &affine()).unwrap();
    assert!(g["w"].all_close(&reference.w, 0.0) && g["b"].all_close(&reference.b, 0.0));
}
