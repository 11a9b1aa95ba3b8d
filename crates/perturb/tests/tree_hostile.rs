//! Hostile inputs for parameter trees and the tree transforms: paths that collide, zero-element
//! leaves, very many leaves, mismatched tangents, wrong-length vectors, recursive types, empty
//! trees.

use std::collections::BTreeMap;

use perturb::prelude::*;
use perturb::tensor::{
    check_grads, grad, hessian, hvp, jacfwd, jacrev, jvp, ravel, unravel, CheckOptions, TensorFn,
};
use perturb::tree::same_structure;

fn v(x: f64) -> Tensor<f64> {
    Tensor::vector(&[x])
}

/// The message of an expected error.
fn error_of<T>(result: Result<T, Error>) -> String {
    result.map(|_| ()).unwrap_err().to_string()
}

type Nested = BTreeMap<String, BTreeMap<String, Tensor<f64>>>;

fn nested(outer: &str, inner: &str, x: f64) -> Nested {
    let mut i = BTreeMap::new();
    i.insert(inner.to_string(), v(x));
    let mut o = BTreeMap::new();
    o.insert(outer.to_string(), i);
    o
}

#[test]
fn keys_with_dots_do_not_make_two_structures_equal() {
    // {"a": {"b.c": x}} and {"a.b": {"c": y}} both print their leaf as "a.b.c", but they are
    // different trees: zipping them must fail, not pair the leaves.
    let (a, b) = (nested("a", "b.c", 1.0), nested("a.b", "c", 2.0));
    assert_eq!(a.paths(), b.paths());
    let err = error_of(same_structure("zip", &a, &b));
    assert!(
        err.contains("zip") && err.contains(r#"["a", "b.c"]"#),
        "{err}"
    );
    assert!(a.zip_map(&b, |x, _| x.clone()).is_err());
    // An empty key is a segment of its own.
    let (c, d) = (nested("", "a", 1.0), nested("a", "", 2.0));
    assert!(a.zip_map(&a, |x, _| x.clone()).is_ok());
    assert!(c.zip_map(&d, |x, _| x.clone()).is_err());
    // A tangent of the other structure is refused by the transforms too.
    let r = jvp(|t| Ok(t["a"]["b.c"].clone()), &a, &b);
    assert!(r.is_err());
}

/// A tree node holding its children: a recursive type.
#[derive(Tree, Clone, Debug)]
struct Node<A> {
    value: A,
    children: Vec<Node<A>>,
}

#[test]
fn a_recursive_derived_type_is_a_tree() {
    let leaf = |x| Node {
        value: v(x),
        children: vec![],
    };
    let t = Node {
        value: v(1.0),
        children: vec![
            leaf(2.0),
            Node {
                value: v(3.0),
                children: vec![leaf(4.0)],
            },
        ],
    };
    assert_eq!(
        t.paths(),
        [
            "value",
            "children.0.value",
            "children.1.value",
            "children.1.children.0.value"
        ]
    );
    // d/dx sum of squares = 2x, node by node.
    let g = grad(
        |t| {
            let mut total = t.value.square().sum_all();
            let mut stack: Vec<&Node<_>> = t.children.iter().collect();
            while let Some(n) = stack.pop() {
                total = total + n.value.square().sum_all();
                stack.extend(n.children.iter());
            }
            Ok(total)
        },
        &t,
    )
    .unwrap();
    assert_eq!(g.children[1].children[0].value.to_vec(), [8.0]);
}

fn with_empty_leaves<A: ArrayOps<Elem = f64>>((a, b, c): &(A, A, A)) -> A {
    a.sum_all() + b.square().sum_all() + c.sum_all()
}

#[test]
fn zero_element_leaves_go_through_every_transform() {
    let t = (
        Tensor::<f64>::zeros(&[0]),
        v(2.0),
        Tensor::<f64>::zeros(&[3, 0]),
    );
    // The gradient, and the Jacobians of a scalar function (the same shapes), both modes.
    let g = grad(|t| Ok(with_empty_leaves(t)), &t).unwrap();
    let jf = jacfwd(|t| Ok(with_empty_leaves(t)), &t).unwrap();
    let jr = jacrev(|t| Ok(with_empty_leaves(t)), &t).unwrap();
    for d in [g, jf, jr] {
        assert_eq!(
            (d.0.shape(), d.1.to_vec(), d.2.shape()),
            (&[0][..], vec![4.0], &[3, 0][..])
        );
    }
    let h = hessian(|t| Ok(with_empty_leaves(t)), &t).unwrap();
    assert_eq!(
        (h.1 .1.to_vec(), h.0 .1.shape(), h.2 .0.shape()),
        (vec![2.0], &[0, 1][..], &[3, 0, 0][..])
    );
    let hv = hvp(
        |t| Ok(with_empty_leaves(t)),
        &t,
        &t.map(|x| Tensor::ones(x.shape())),
    )
    .unwrap();
    assert_eq!(hv.1.to_vec(), [2.0]);
    let (_, d) = jvp(
        |t| Ok(with_empty_leaves(t)),
        &t,
        &t.map(|x| Tensor::ones(x.shape())),
    )
    .unwrap();
    assert_eq!(d.to_vec(), [4.0]);
    let flat = ravel(&t).unwrap();
    assert_eq!(flat.to_vec(), [2.0]);
    let back = unravel(&t, &flat).unwrap();
    assert_eq!((back.0.shape(), back.2.shape()), (&[0][..], &[3, 0][..]));
}

#[test]
fn unravel_refuses_vectors_of_another_length_or_rank() {
    let t = (Tensor::<f64>::zeros(&[2, 2]), v(0.0));
    for bad in [
        Tensor::<f64>::zeros(&[4]),
        Tensor::zeros(&[6]),
        Tensor::zeros(&[5, 1]),
        Tensor::scalar(0.0),
    ] {
        let err = error_of(unravel(&t, &bad));
        assert!(err.contains("unravel") && err.contains("[5]"), "{err}");
    }
}

fn total<A: ArrayOps<Elem = f64>>(t: &[A]) -> A {
    t.iter()
        .fold(A::lift(Tensor::scalar(0.0)), |s, x| s + x.sum_all())
}

#[test]
fn mismatched_tangent_trees_are_refused_naming_the_leaf() {
    let t = vec![v(1.0), Tensor::vector(&[1.0, 2.0])];
    let short = vec![v(1.0)];
    let err = error_of(jvp(|t| Ok(total(t)), &t, &short));
    assert!(err.contains("jvp") && err.contains("'1'"), "{err}");
    let wrong_shape = vec![v(1.0), v(1.0)];
    let err = error_of(jvp(|t| Ok(total(t)), &t, &wrong_shape));
    assert!(
        err.contains("jvp") && err.contains("'1'") && err.contains("[2]"),
        "{err}"
    );
    let err = error_of(hvp(|t| Ok(t[1].square().sum_all()), &t, &wrong_shape));
    assert!(err.contains("hvp") && err.contains("'1'"), "{err}");
}

/// `sum(x^2)` of a tree, for `check_grads`.
struct SumSquares;

impl TensorFn<f64, Vec<Tensor<f64>>> for SumSquares {
    fn call<A: Array<Elem = f64>>(&self, x: &Vec<A>) -> Result<A, Error> {
        let mut total = A::lift(Tensor::scalar(0.0));
        for leaf in x {
            total = total.try_add(&leaf.square().sum_all())?;
        }
        Ok(total)
    }
}

#[test]
fn check_grads_on_an_empty_tree_says_there_is_nothing_to_check() {
    let report = check_grads(&SumSquares, &Vec::new(), &CheckOptions::default());
    let err = error_of(report);
    assert!(
        err.contains("check_grads") && err.contains("no elements"),
        "{err}"
    );
    // One zero-element leaf: nothing to check either.
    let report = check_grads(
        &SumSquares,
        &vec![Tensor::zeros(&[0])],
        &CheckOptions::default(),
    );
    assert!(report.is_err());
}

#[test]
fn jacfwd_and_hessian_of_too_many_elements_are_errors_not_aborts() {
    // 2^23 elements: the n x n basis (jacfwd of two leaves) and the Hessian are 2^46 values,
    // 512 TiB of f64, more than any address space: the allocation used to abort the process
    // ("memory allocation of .. bytes failed"; at 10^5 elements already, 80 GB).
    let half = Tensor::<f64>::zeros(&[1 << 22]);
    let pair = (half.clone(), half);
    let err = error_of(jacfwd(|(a, b)| Ok(a.sum_all() + b.sum_all()), &pair));
    assert!(
        err.contains("jacfwd") && err.contains("8388608 elements"),
        "{err}"
    );
    let err = error_of(hessian(
        |(a, b)| Ok(a.square().sum_all() + b.sum_all()),
        &pair,
    ));
    assert!(
        err.contains("hessian") && err.contains("8388608 elements"),
        "{err}"
    );
    let one = Tensor::<f64>::zeros(&[1 << 23]);
    let err = error_of(hessian(|x| Ok(x.square().sum_all()), &one));
    assert!(err.contains("hessian") && err.contains("hvp"), "{err}");
    // One leaf: the basis is carried by its diagonal until an operation needs it written out
    // (the sum, here: a `try_` form returns the error, the plain `sum_all` panics with it).
    let err = error_of(jacfwd(|x| x.exp().try_sum_axes(&[0], false), &one));
    assert!(
        err.contains("Jacobian basis") && err.contains("8388608 elements"),
        "{err}"
    );
    let err = error_of(jacrev(|x| Ok(x.exp()), &one));
    assert!(
        err.contains("Jacobian basis") && err.contains("vjp"),
        "{err}"
    );
    // hvp of the same is fine: a few gradients' worth of memory.
    let hv = hvp(|x| Ok(x.square().sum_all()), &one, &one).unwrap();
    assert_eq!(hv.shape(), &[1 << 23]);
}

/// Two layer kinds whose parameters have the same names: a variant adds no path segment.
#[derive(Tree, Clone, Debug)]
enum Layer<A> {
    Dense { weight: A },
    Norm { weight: A },
    Relu,
    Named(#[tree(skip)] String),
}

#[test]
fn layers_of_other_variants_with_the_same_field_names_do_not_zip() {
    let a = vec![
        Layer::Dense { weight: v(1.0) },
        Layer::Norm { weight: v(2.0) },
    ];
    let b = vec![
        Layer::Norm { weight: v(1.0) },
        Layer::Dense { weight: v(2.0) },
    ];
    // Variants without leaves map and zip as before.
    let plain = vec![Layer::Relu, Layer::Named("n".into())];
    let mapped: Vec<Layer<f64>> = plain.map(|t: &Tensor<f64>| t.to_vec()[0]);
    assert!(matches!(&mapped[1], Layer::Named(n) if n == "n"));
    assert!(plain.zip_map(&plain, |x, _| x.clone()).is_ok());
    assert_eq!(a.paths(), b.paths());
    let err = error_of(a.zip_map(&b, |x, _| x.clone()));
    assert!(err.contains("zip_map") && err.contains("0.weight"), "{err}");
    assert!(err.contains("Dense") && err.contains("Norm"), "{err}");
    assert!(a.zip_map(&a, |x, _| x.clone()).is_ok());
}

#[test]
fn a_tree_of_a_hundred_thousand_leaves_goes_through_in_linear_time() {
    // Nothing here is quadratic: measured in a debug build, 10^4 and 4 10^4 leaves take 4x
    // as long for same_structure, zip_map, unflatten, ravel, unravel, grad and jacrev.
    let n = 100_000;
    let t: Vec<Tensor<f64>> = (0..n).map(|i| v(i as f64)).collect();
    same_structure("test", &t, &t).unwrap();
    let doubled = t.zip_map(&t, |a, b| a.clone() + b).unwrap();
    let back = t.unflatten(doubled.flatten()).unwrap();
    let flat = ravel(&back).unwrap();
    assert_eq!(flat.shape(), &[n]);
    let again = unravel(&t, &flat).unwrap();
    assert_eq!(again[n - 1].to_vec(), [2.0 * (n - 1) as f64]);
    let g = grad(|t| Ok(total(t)), &t).unwrap();
    assert!(g.iter().all(|g| g.to_vec() == [1.0]));
}

#[test]
fn a_shape_error_of_an_operator_in_generic_code_under_grad_names_both_shapes() {
    fn bad<A: ArrayOps<Elem = f64>>((a, b): &(A, A)) -> A {
        (a.clone() + b).sum_all()
    }
    let t = (Tensor::<f64>::zeros(&[2]), Tensor::<f64>::zeros(&[3]));
    let panic = std::panic::catch_unwind(|| grad(|t| Ok(bad(t)), &t)).unwrap_err();
    let message = panic.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(
        message.contains("[2]") && message.contains("[3]"),
        "{message}"
    );
}

/// A hand-written impl with a bug: `visit` forgets `b`, `map_with_path` does not.
struct Forgetful<A> {
    a: A,
    b: A,
}

impl<A: Array> Tree<A> for Forgetful<A> {
    type With<M> = Forgetful<M>;

    fn visit<'a>(
        &'a self,
        path: &mut perturb::tree::Path,
        f: &mut dyn FnMut(&perturb::tree::Path, &'a A),
    ) {
        path.with("a", |p| self.a.visit(p, f));
    }

    fn visit_mut(
        &mut self,
        path: &mut perturb::tree::Path,
        f: &mut dyn FnMut(&perturb::tree::Path, &mut A),
    ) {
        path.with("a", |p| self.a.visit_mut(p, f));
    }

    fn map_with_path<M>(
        &self,
        path: &mut perturb::tree::Path,
        f: &mut dyn FnMut(&perturb::tree::Path, &A) -> M,
    ) -> Forgetful<M> {
        Forgetful {
            a: path.with("a", |p| Tree::map_with_path(&self.a, p, f)),
            b: path.with("b", |p| Tree::map_with_path(&self.b, p, f)),
        }
    }
}

#[test]
fn a_tree_impl_whose_walks_disagree_is_named_in_the_panic() {
    let t = Forgetful {
        a: v(1.0),
        b: v(2.0),
    };
    for run in [
        Box::new(|| drop(t.unflatten(vec![0]))) as Box<dyn Fn()>,
        Box::new(|| drop(t.zip_map(&t, |x, _| x.clone()))),
    ] {
        let panic = std::panic::catch_unwind(std::panic::AssertUnwindSafe(run)).unwrap_err();
        let message = panic.downcast_ref::<String>().cloned().unwrap_or_default();
        assert!(
            message.contains("map_with_path walks more leaves than its visit"),
            "{message}"
        );
    }
}
