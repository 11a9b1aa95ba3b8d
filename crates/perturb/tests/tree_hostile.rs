//! Hostile inputs for parameter trees and the tree transforms: paths that collide, zero-element
//! leaves, very many leaves, mismatched tangents, wrong-length vectors, recursive types, empty
//! trees.

use std::collections::BTreeMap;
use std::time::Instant;

use perturb::prelude::*;
use perturb::tensor::{
    check_grads, grad, hessian, hvp, jacfwd, jacrev, jvp, ravel, unravel, CheckOptions, TensorFn,
};
use perturb::tree::same_structure;

fn v(x: f64) -> Tensor<f64> {
    Tensor::vector(&[x])
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
    let err = same_structure("zip", &a, &b).unwrap_err().to_string();
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
