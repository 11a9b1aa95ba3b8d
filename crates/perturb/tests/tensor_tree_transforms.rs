//! Every transform on a model of two parameter groups (a struct with a hand-written `Tree`
//! impl, as `#[derive(Tree)]` writes it) against three independent references: the same
//! function of one flat vector, transformed by the single-array path and regrouped into the
//! leaves by hand; central finite differences in random directions; and the other mode
//! (forward against reverse).

// `grad(|m| loss(m), ..)` cannot be `grad(loss, ..)`: the transform runs its function for every
// tape lifetime, and a generic function item fixes its type parameter (here the leaf type,
// which names one lifetime) once. Clippy does not see that.
#![allow(clippy::redundant_closure)]

use std::collections::BTreeMap;

use perturb::tensor::{
    check_grads, grad, grad_with_aux, hessian, hvp, jacfwd, jacrev, jvp, value_and_grad,
    value_and_grad_with_aux, vjp, Array, CheckOptions, Element, Op, Tensor, TensorFn,
};
use perturb::tree::{Path, Tree};
use perturb::Error;

/// One layer `tanh(W x + b)`: two parameter groups, `weight` [2, 3] and `bias` [2].
#[derive(Clone, Debug)]
struct Layer<A> {
    weight: A,
    bias: A,
    /// Not a parameter: carried along by `map`.
    name: &'static str,
}

impl<A: Array> Tree<A> for Layer<A> {
    type With<M> = Layer<M>;

    fn visit<'a>(&'a self, path: &mut Path, f: &mut dyn FnMut(&Path, &'a A)) {
        path.with("weight", |p| self.weight.visit(p, f));
        path.with("bias", |p| self.bias.visit(p, f));
    }

    fn visit_mut(&mut self, path: &mut Path, f: &mut dyn FnMut(&Path, &mut A)) {
        path.with("weight", |p| self.weight.visit_mut(p, f));
        path.with("bias", |p| self.bias.visit_mut(p, f));
    }

    fn map_with_path<M>(&self, path: &mut Path, f: &mut dyn FnMut(&Path, &A) -> M) -> Layer<M> {
        Layer {
            weight: path.with("weight", |p| Tree::map_with_path(&self.weight, p, f)),
            bias: path.with("bias", |p| Tree::map_with_path(&self.bias, p, f)),
            name: self.name,
        }
    }
}

const W: [usize; 2] = [2, 3];
const B: [usize; 1] = [2];
const N: usize = 8;

fn model() -> Layer<Tensor<f64>> {
    Layer {
        weight: Tensor::from_vec(vec![0.3, -0.7, 0.5, 0.2, 0.9, -0.4], &W).unwrap(),
        bias: Tensor::vector(&[0.1, -0.6]),
        name: "layer",
    }
}

fn input() -> Tensor<f64> {
    Tensor::vector(&[0.5, -1.0, 2.0])
}

/// The layer's outputs `tanh(W x + b)`, shape [2].
fn outputs<A: Array<Elem = f64>>(m: &Layer<A>) -> Result<A, Error> {
    let x = m.weight.constant_like(&input());
    Ok(m.weight.try_matmul(&x)?.try_add(&m.bias)?.tanh())
}

/// A loss with curvature in both groups and across them:
/// `sum(outputs * c) + 0.1 |W|^2 + sum(b^3)`.
fn loss<A: Array<Elem = f64>>(m: &Layer<A>) -> Result<A, Error> {
    let c = m.bias.constant_like(&Tensor::vector(&[1.5, -2.0]));
    let fit = outputs(m)?.try_mul(&c)?.sum_all();
    let decay = m.weight.square().sum_all().scale(A::elem(0.1));
    fit.try_add(&decay)?
        .try_add(&m.bias.pow_scalar(A::elem(3.0)).sum_all())
}

/// The model as the function sees it from one vector of its N = 6 + 2 elements, cut by hand
/// (not by the library's `unravel`), so the flat path is an independent reference.
fn from_flat<A: Array>(v: &A) -> Result<Layer<A>, Error> {
    Ok(Layer {
        weight: v.try_narrow(0, 0, 6)?.try_reshape(&W)?,
        bias: v.try_narrow(0, 6, 2)?,
        name: "layer",
    })
}

fn flat(m: &Layer<Tensor<f64>>) -> Tensor<f64> {
    let mut v = m.weight.to_vec();
    v.extend(m.bias.to_vec());
    Tensor::vector(&v)
}

/// Columns `[start, start + len)` of the last axis of a matrix `[rows, N]`.
fn columns(m: &Tensor<f64>, start: usize, len: usize) -> Tensor<f64> {
    m.try_narrow(m.shape().len() - 1, start, len).unwrap()
}

fn close(a: &Tensor<f64>, b: &Tensor<f64>, tol: f64) {
    assert_eq!(a.shape(), b.shape());
    assert!(
        a.all_close(b, tol),
        "{:?}\n vs {:?}",
        a.to_vec(),
        b.to_vec()
    );
}

fn dot(a: &Tensor<f64>, b: &Tensor<f64>) -> f64 {
    a.to_vec().iter().zip(b.to_vec()).map(|(x, y)| x * y).sum()
}

fn random_like(m: &Layer<Tensor<f64>>, seed: u64) -> Layer<Tensor<f64>> {
    Layer {
        weight: Tensor::randn(&W, 0.0, 1.0, seed),
        bias: Tensor::randn(&B, 0.0, 1.0, seed + 1),
        name: m.name,
    }
}

fn add_scaled(m: &Layer<Tensor<f64>>, v: &Layer<Tensor<f64>>, h: f64) -> Layer<Tensor<f64>> {
    m.zip_map(v, |a, b| a.add(&b.scale(h))).unwrap()
}

#[test]
fn grad_of_a_model_is_the_flat_gradient_regrouped() {
    let m = model();
    let (value, g) = value_and_grad(|m| loss(m), &m).unwrap();
    assert_eq!(g.name, "layer");
    let (flat_value, flat_g) = value_and_grad(|v| loss(&from_flat(v)?), &flat(&m)).unwrap();
    assert_eq!(value.to_vec(), flat_value.to_vec());
    close(
        &g.weight,
        &flat_g.try_narrow(0, 0, 6).unwrap().try_reshape(&W).unwrap(),
        1e-15,
    );
    close(&g.bias, &flat_g.try_narrow(0, 6, 2).unwrap(), 1e-15);
    assert_eq!(grad(|m| loss(m), &m).unwrap().paths(), ["weight", "bias"]);
}

#[test]
fn grad_of_a_model_matches_central_differences_in_random_directions() {
    let m = model();
    let g = grad(|m| loss(m), &m).unwrap();
    let h = 1e-5;
    for seed in [1, 7, 42] {
        let v = random_like(&m, seed);
        let ad = dot(&g.weight, &v.weight) + dot(&g.bias, &v.bias);
        let plus = loss(&add_scaled(&m, &v, h)).unwrap().to_vec()[0];
        let minus = loss(&add_scaled(&m, &v, -h)).unwrap().to_vec()[0];
        let fd = (plus - minus) / (2.0 * h);
        assert!((ad - fd).abs() < 1e-8, "seed {seed}: ad {ad}, fd {fd}");
    }
}

#[test]
fn jvp_and_vjp_of_a_model_agree_with_each_other_the_flat_path_and_differences() {
    let m = model();
    let h = 1e-5;
    for seed in [3, 11] {
        let v = random_like(&m, seed);
        let u = Tensor::randn(&[2], 0.0, 1.0, seed + 100);
        let (y, jv) = jvp(|m| outputs(m), &m, &v).unwrap();
        let (y2, vj) = vjp(|m| outputs(m), &m, &u).unwrap();
        close(&y, &y2, 0.0);
        close(&y, &outputs(&m).unwrap(), 0.0);
        // Forward against reverse: <u, J v> both ways.
        let reverse = dot(&vj.weight, &v.weight) + dot(&vj.bias, &v.bias);
        assert!((dot(&u, &jv) - reverse).abs() < 1e-14);
        // Against the flat path.
        let (_, flat_jv) = jvp(|p| outputs(&from_flat(p)?), &flat(&m), &flat(&v)).unwrap();
        close(&jv, &flat_jv, 1e-15);
        let (_, flat_vj) = vjp(|p| outputs(&from_flat(p)?), &flat(&m), &u).unwrap();
        close(&flat(&vj), &flat_vj, 1e-15);
        // Against central differences.
        let plus = outputs(&add_scaled(&m, &v, h)).unwrap();
        let minus = outputs(&add_scaled(&m, &v, -h)).unwrap();
        close(&jv, &plus.sub(&minus).scale(0.5 / h), 1e-8);
    }
}

#[test]
fn jacobians_of_a_model_are_the_flat_jacobian_regrouped_in_both_modes() {
    let m = model();
    let fwd = jacfwd(|m| outputs(m), &m).unwrap();
    let rev = jacrev(|m| outputs(m), &m).unwrap();
    let flat_j = jacfwd(|p| outputs(&from_flat(p)?), &flat(&m)).unwrap();
    assert_eq!(flat_j.shape(), &[2, N]);
    // d outputs / d weight: [2] ++ [2, 3]; d outputs / d bias: [2] ++ [2].
    let weight = columns(&flat_j, 0, 6).try_reshape(&[2, 2, 3]).unwrap();
    let bias = columns(&flat_j, 6, 2);
    for j in [&fwd, &rev] {
        close(&j.weight, &weight, 1e-15);
        close(&j.bias, &bias, 1e-15);
    }
    // d tanh(z)_i / d b_k = (1 - y_i^2) delta_ik: diagonal.
    let y = outputs(&m).unwrap().to_vec();
    let expected = Tensor::from_vec(
        vec![1.0 - y[0] * y[0], 0.0, 0.0, 1.0 - y[1] * y[1]],
        &[2, 2],
    );
    close(&fwd.bias, &expected.unwrap(), 1e-15);
}

#[test]
fn hessian_of_a_model_is_the_flat_hessian_regrouped() {
    let m = model();
    let h = hessian(|m| loss(m), &m).unwrap();
    let flat_h = hessian(|p| loss(&from_flat(p)?), &flat(&m)).unwrap();
    assert_eq!(flat_h.shape(), &[N, N]);
    let rows = |start, len| flat_h.try_narrow(0, start, len).unwrap();
    // H[i][j] has shape leaf i ++ leaf j; the outer level is the first derivative's leaf.
    close(
        &h.weight.weight,
        &columns(&rows(0, 6), 0, 6)
            .try_reshape(&[2, 3, 2, 3])
            .unwrap(),
        1e-14,
    );
    close(
        &h.weight.bias,
        &columns(&rows(0, 6), 6, 2).try_reshape(&[2, 3, 2]).unwrap(),
        1e-14,
    );
    close(
        &h.bias.weight,
        &columns(&rows(6, 2), 0, 6).try_reshape(&[2, 2, 3]).unwrap(),
        1e-14,
    );
    close(&h.bias.bias, &columns(&rows(6, 2), 6, 2), 1e-14);
    assert_eq!((h.name, h.weight.name), ("layer", "layer"));
    // The flat Hessian is symmetric, so the off-diagonal blocks are each other's transposes.
    close(
        &h.weight.bias.try_reshape(&[6, 2]).unwrap(),
        &h.bias.weight.try_reshape(&[2, 6]).unwrap().transpose(),
        1e-14,
    );
    // And it is the Jacobian of the gradient, by central differences of the gradient.
    let step = 1e-5;
    let v = random_like(&m, 5);
    let g = |m: &Layer<Tensor<f64>>| flat(&grad(|m| loss(m), m).unwrap());
    let fd = g(&add_scaled(&m, &v, step))
        .sub(&g(&add_scaled(&m, &v, -step)))
        .scale(0.5 / step);
    close(&flat_h.matmul(&flat(&v)), &fd, 1e-8);
}

#[test]
fn hvp_of_a_model_is_the_hessian_blocks_times_the_direction() {
    let m = model();
    let v = random_like(&m, 9);
    let hv = hvp(|m| loss(m), &m, &v).unwrap();
    assert_eq!(hv.paths(), ["weight", "bias"]);
    let flat_h = hessian(|p| loss(&from_flat(p)?), &flat(&m)).unwrap();
    close(&flat(&hv), &flat_h.matmul(&flat(&v)), 1e-14);
    // The tree's own blocks: (H v)_i = sum_j H[i][j] v_j.
    let h = hessian(|m| loss(m), &m).unwrap();
    let bias = h
        .bias
        .weight
        .try_reshape(&[2, 6])
        .unwrap()
        .matmul(&v.weight.try_reshape(&[6]).unwrap());
    let bias = bias.add(&h.bias.bias.matmul(&v.bias));
    close(&hv.bias, &bias, 1e-14);
}

#[test]
fn transforms_of_trees_nest() {
    // d/dm <grad loss(m), v> = H v: a gradient of a tree inside a gradient of a tree.
    let m = model();
    let v = random_like(&m, 13);
    let outer = grad(
        |m| {
            let g = grad(|n| loss(n), m)?;
            let vw = g.weight.constant_like(&v.weight);
            let vb = g.bias.constant_like(&v.bias);
            g.weight
                .try_mul(&vw)?
                .sum_all()
                .try_add(&g.bias.try_mul(&vb)?.sum_all())
        },
        &m,
    )
    .unwrap();
    let hv = hvp(|m| loss(m), &m, &v).unwrap();
    close(&outer.weight, &hv.weight, 1e-14);
    close(&outer.bias, &hv.bias, 1e-14);
}

#[test]
fn has_aux_returns_the_logits_beside_the_gradient() {
    let m = model();
    let ((value, logits), g) = value_and_grad_with_aux(
        |m| {
            let logits = outputs(m)?;
            let loss = logits.square().sum_all();
            Ok((loss, logits.value().clone()))
        },
        &m,
    )
    .unwrap();
    let expected = outputs(&m).unwrap();
    close(&logits, &expected, 0.0);
    close(&value, &expected.square().sum_all(), 0.0);
    let plain = grad(|m| Ok(outputs(m)?.square().sum_all()), &m).unwrap();
    close(&g.weight, &plain.weight, 0.0);
    close(&g.bias, &plain.bias, 0.0);
    // grad_with_aux: (gradient, aux), and any aux type.
    let (g2, count) = grad_with_aux(|m| Ok((loss(m)?, m.weight.shape().len())), &m).unwrap();
    assert_eq!(count, 2);
    close(&g2.bias, &grad(|m| loss(m), &m).unwrap().bias, 0.0);
}

#[test]
fn mismatched_tangent_trees_are_refused_with_the_path() {
    let m = model();
    let mut v = random_like(&m, 1);
    v.bias = Tensor::zeros(&[3]);
    let err = jvp(|m| outputs(m), &m, &v).unwrap_err().to_string();
    assert!(
        err.contains("jvp") && err.contains("'bias'") && err.contains("[3]"),
        "{err}"
    );
    let err = hvp(|m| loss(m), &m, &v).unwrap_err().to_string();
    assert!(err.contains("hvp") && err.contains("'bias'"), "{err}");

    // Another structure: a Vec of another length, a map with another key.
    let p = vec![Tensor::vector(&[1.0_f64]), Tensor::vector(&[2.0])];
    let err = jvp(|p| Ok(p[0].clone()), &p, &vec![Tensor::vector(&[1.0])])
        .unwrap_err()
        .to_string();
    assert!(err.contains("jvp") && err.contains("'1'"), "{err}");
    let map = |key: &str| BTreeMap::from([(key.to_string(), Tensor::vector(&[1.0_f64]))]);
    let err = hvp(|p| Ok(p["a"].sum_all()), &map("a"), &map("b"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("'a'") && err.contains("'b'"), "{err}");

    // A cotangent of the wrong shape, and a loss that is not a scalar.
    assert!(vjp(|m| outputs(m), &m, &Tensor::zeros(&[3])).is_err());
    let err = grad(|m| outputs(m), &m).unwrap_err().to_string();
    assert!(err.contains("grad"), "{err}");
}

fn as_layer<A: Clone>((w, b): &(A, Vec<A>)) -> Layer<A> {
    Layer {
        weight: w.clone(),
        bias: b[0].clone(),
        name: "",
    }
}

fn of_map<A: Clone>(p: &BTreeMap<String, A>) -> Layer<A> {
    Layer {
        weight: p["weight"].clone(),
        bias: p["bias"].clone(),
        name: "",
    }
}

#[test]
fn tuples_vecs_and_maps_are_trees_for_every_transform() {
    // (weight, [bias]) and {"bias", "weight"}: the same function, other containers.
    let m = model();
    let pair = (m.weight.clone(), vec![m.bias.clone()]);
    let g = grad(|p| loss(&as_layer(p)), &pair).unwrap();
    let reference = grad(|m| loss(m), &m).unwrap();
    close(&g.0, &reference.weight, 0.0);
    close(&g.1[0], &reference.bias, 0.0);

    let map = BTreeMap::from([
        ("bias".to_string(), m.bias.clone()),
        ("weight".to_string(), m.weight.clone()),
    ]);
    let h = hessian(|p| loss(&of_map(p)), &map).unwrap();
    let reference = hessian(|m| loss(m), &m).unwrap();
    close(&h["weight"]["bias"], &reference.weight.bias, 0.0);
    close(&h["bias"]["bias"], &reference.bias.bias, 0.0);
    let j = jacrev(|p| outputs(&of_map(p)), &map).unwrap();
    close(
        &j["weight"],
        &jacfwd(|m| outputs(m), &m).unwrap().weight,
        1e-15,
    );

    // An empty tree: no leaves, no derivatives.
    let none: Vec<Tensor<f64>> = Vec::new();
    let c = Tensor::scalar(2.0_f64);
    assert!(grad(
        |_| Ok(perturb::tensor::TensorVar::constant(c.clone())),
        &none
    )
    .unwrap()
    .is_empty());
    assert!(jacfwd(
        |_| Ok(perturb::tensor::DualTensor::constant(
            perturb::tensor::Batched::single(c.clone())
        )),
        &none
    )
    .unwrap()
    .is_empty());
}

#[test]
fn a_single_array_is_still_an_array_for_every_transform() {
    // The tree of one leaf: results are plain tensors, as before trees.
    let x = flat(&model());
    let g: Tensor<f64> = grad(|v| loss(&from_flat(v)?), &x).unwrap();
    let h: Tensor<f64> = hessian(|v| loss(&from_flat(v)?), &x).unwrap();
    let hv: Tensor<f64> = hvp(|v| loss(&from_flat(v)?), &x, &g).unwrap();
    close(&hv, &h.matmul(&g), 1e-14);
}

/// `loss` of the model, for every array type: what `check_grads` takes.
struct Loss;
impl TensorFn<f64, Layer<Tensor<f64>>> for Loss {
    fn call<A: Array<Elem = f64>>(&self, m: &Layer<A>) -> Result<A, Error> {
        loss(m)
    }
}

/// A custom op with a wrong JVP (and so VJP): d/dx x^3 is 3 x^2, not 2 x^2.
#[derive(Clone, Debug)]
struct BadCube;
impl Op for BadCube {
    fn name(&self) -> &'static str {
        "bad_cube"
    }
    fn eval<T: Element>(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>, Error> {
        Ok(x[0].map(|v| v * v * v))
    }
    fn jvp<A: Array>(&self, x: &[&A], _: &A, t: &[Option<&A>]) -> Result<Option<A>, Error> {
        let Some(t) = t[0] else { return Ok(None) };
        Ok(Some(t.try_mul(&x[0].square().scale(A::elem(2.0)))?))
    }
}

/// `loss` with the bias cubed by the wrong rule.
struct WrongInBias;
impl TensorFn<f64, Layer<Tensor<f64>>> for WrongInBias {
    fn call<A: Array<Elem = f64>>(&self, m: &Layer<A>) -> Result<A, Error> {
        let cubed = m.bias.apply_op(&BadCube)?.sum_all();
        outputs(m)?.sum_all().try_add(&cubed)
    }
}

#[test]
fn check_grads_of_a_model_passes_and_names_the_leaf_of_a_wrong_rule() {
    let options = CheckOptions::default();
    let report = check_grads(&Loss, &model(), &options).unwrap();
    assert!(report.passes(1e-6), "{report}");
    let labels: Vec<&str> = report.comparisons.iter().map(|c| c.what.as_str()).collect();
    assert!(
        labels.contains(&"order 1, reverse, leaf 'bias'"),
        "{labels:?}"
    );

    let report = check_grads(&WrongInBias, &model(), &options).unwrap();
    assert!(!report.passes(1e-6));
    assert_eq!(report.worst_op().unwrap().op, "bad_cube");
    for c in &report.comparisons {
        if c.what.contains("leaf 'weight'") {
            assert!(c.error < 1e-6, "{report}");
        }
        if c.what.contains("leaf 'bias'") {
            assert!(c.error > 1e-3, "{report}");
        }
    }
}

#[test]
fn jacrev_of_a_tree_keeps_one_rows_singularity_to_itself() {
    // f(a, b) = [sqrt(a), 2 b] at a = 0: d sqrt(a)/da is infinite. In the stacked sweep the
    // other row's zero cotangent times that slope is NaN; the rows swept one by one give 0.
    let p = (Tensor::vector(&[0.0_f64]), Tensor::vector(&[1.0_f64]));
    let (ja, jb) = jacrev(
        |(a, b)| Array::try_concat(&[&a.sqrt(), &b.scale(2.0)], 0),
        &p,
    )
    .unwrap();
    assert_eq!(ja.shape(), &[2, 1]);
    assert_eq!((ja.to_vec()[0], ja.to_vec()[1]), (f64::INFINITY, 0.0));
    assert_eq!(jb.to_vec(), [0.0, 2.0]);
}

#[test]
fn empty_and_zero_element_leaves_are_handled() {
    // A leaf with no elements gets derivatives with no elements.
    let p = (Tensor::vector(&[1.0_f64, 2.0]), Tensor::<f64>::zeros(&[0]));
    let (g0, g1) = grad(|(a, e)| a.square().sum_all().try_add(&e.sum_all()), &p).unwrap();
    assert_eq!((g0.to_vec(), g1.shape()), (vec![2.0, 4.0], &[0][..]));
    let h = hessian(|(a, e)| a.square().sum_all().try_add(&e.sum_all()), &p).unwrap();
    assert_eq!(
        (h.0 .0.to_vec(), h.0 .1.shape(), h.1 .1.shape()),
        (vec![2.0, 0.0, 0.0, 2.0], &[2, 0][..], &[0, 0][..])
    );
    let v = (Tensor::vector(&[1.0_f64, 0.0]), Tensor::<f64>::zeros(&[0]));
    let hv = hvp(|(a, e)| a.square().sum_all().try_add(&e.sum_all()), &p, &v).unwrap();
    assert_eq!((hv.0.to_vec(), hv.1.shape()), (vec![2.0, 0.0], &[0][..]));
    // An empty tree: nothing to differentiate.
    let none: Vec<Tensor<f64>> = Vec::new();
    assert!(hvp(
        |_| Ok(perturb::tensor::TensorVar::constant(
            perturb::tensor::Deferred::new(Tensor::scalar(1.0))
        )),
        &none,
        &none
    )
    .unwrap()
    .is_empty());
}
