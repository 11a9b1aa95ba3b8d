//! `#[derive(Tree)]` from a crate that depends on perturb: the paths and order of the leaves
//! of structs, tuple structs, unit structs and enums, nested; skipped fields kept through a
//! map; unflatten and zip_map; a gradient through a derived model.

use std::collections::BTreeMap;

use perturb::tensor::{Array, Tensor};
use perturb::tree::Path;
use perturb::Tree;

#[derive(Tree, Clone, Debug, PartialEq)]
struct Linear<A> {
    weight: A,
    bias: Option<A>,
    #[tree(skip)]
    inputs: usize,
}

fn v(values: &[f64]) -> Tensor<f64> {
    Tensor::vector(values)
}

/// The first element of each leaf, in leaf order.
fn firsts<T: Tree<Tensor<f64>>>(tree: &T) -> Vec<f64> {
    tree.leaves().iter().map(|t| t.to_vec()[0]).collect()
}

#[test]
fn named_fields_are_leaves_in_declaration_order_and_skipped_fields_are_not() {
    let l = Linear {
        weight: v(&[1.0, 2.0]),
        bias: Some(v(&[3.0])),
        inputs: 2,
    };
    assert_eq!(l.paths(), ["weight", "bias"]);
    assert_eq!(firsts(&l), [1.0, 3.0]);
    let without_bias = Linear { bias: None, ..l };
    assert_eq!(without_bias.paths(), ["weight"]);
}

#[test]
fn map_changes_the_leaf_type_and_keeps_skipped_fields() {
    let l = Linear {
        weight: v(&[1.0, 2.0]),
        bias: Some(v(&[3.0])),
        inputs: 7,
    };
    // Linear<Tensor<f64>>::With<Vec<usize>> is Linear<Vec<usize>>: the annotation checks it.
    let shapes: Linear<Vec<usize>> = l.map(|t| t.shape().to_vec());
    assert_eq!(
        shapes,
        Linear {
            weight: vec![2],
            bias: Some(vec![1]),
            inputs: 7
        }
    );
    let named: Linear<String> = l.map_with_path(&mut Path::root(), &mut |p, _| p.to_string());
    assert_eq!(
        (named.weight.as_str(), named.bias.as_deref()),
        ("weight", Some("bias"))
    );
}

#[test]
fn visit_mut_reaches_each_leaf_once_in_order() {
    let mut l = Linear {
        weight: v(&[1.0]),
        bias: Some(v(&[2.0])),
        inputs: 1,
    };
    let mut seen = Vec::new();
    l.visit_mut(&mut Path::root(), &mut |p, t| {
        seen.push(p.to_string());
        *t = t.scale(10.0);
    });
    assert_eq!(seen, ["weight", "bias"]);
    assert_eq!(firsts(&l), [10.0, 20.0]);
}

/// Field names that are also the names of the generated code's variables.
#[derive(Tree)]
struct Clashing<A> {
    path: A,
    f: A,
    p: A,
    field_0: A,
    r#type: A,
}

#[test]
fn fields_named_like_the_generated_variables_keep_their_own_leaves() {
    let c = Clashing {
        path: v(&[1.0]),
        f: v(&[2.0]),
        p: v(&[3.0]),
        field_0: v(&[4.0]),
        r#type: v(&[5.0]),
    };
    assert_eq!(c.paths(), ["path", "f", "p", "field_0", "type"]);
    assert_eq!(firsts(&c), [1.0, 2.0, 3.0, 4.0, 5.0]);
    let m = c.map(|t| t.to_vec()[0]);
    assert_eq!(
        [m.path, m.f, m.p, m.field_0, m.r#type],
        [1.0, 2.0, 3.0, 4.0, 5.0]
    );
}

/// Every kind of field the core implements `Tree` for, and a nested derived struct.
#[derive(Tree)]
struct Everything<A> {
    layers: Vec<Linear<A>>,
    pair: (A, [A; 2]),
    named: BTreeMap<String, A>,
    head: Linear<A>,
    #[tree(skip)]
    label: String,
}

#[test]
fn nested_fields_of_every_tree_type_name_their_leaves_from_the_root() {
    let layer = |x: f64, bias: bool| Linear {
        weight: v(&[x]),
        bias: bias.then(|| v(&[x + 0.5])),
        inputs: 1,
    };
    let mut named = BTreeMap::new();
    named.insert("z".to_string(), v(&[9.0]));
    named.insert("a".to_string(), v(&[8.0]));
    let e = Everything {
        layers: vec![layer(1.0, true), layer(2.0, false)],
        pair: (v(&[3.0]), [v(&[4.0]), v(&[5.0])]),
        named,
        head: layer(6.0, true),
        label: "net".to_string(),
    };
    assert_eq!(
        e.paths(),
        [
            "layers.0.weight",
            "layers.0.bias",
            "layers.1.weight",
            "pair.0",
            "pair.1.0",
            "pair.1.1",
            "named.a",
            "named.z",
            "head.weight",
            "head.bias",
        ]
    );
    assert_eq!(
        firsts(&e),
        [1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 8.0, 9.0, 6.0, 6.5]
    );
    let sizes: Everything<usize> = e.map(|t| t.shape()[0]);
    assert_eq!(sizes.label, "net");
    assert_eq!(sizes.layers[1].bias, None);
    assert_eq!(sizes.named["z"], 1);
}
