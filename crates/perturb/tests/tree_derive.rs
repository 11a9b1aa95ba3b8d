//! `#[derive(Tree)]` from a crate that depends on perturb: the paths and order of the leaves
//! of structs, tuple structs, unit structs and enums, nested; skipped fields kept through a
//! map; unflatten and zip_map; a gradient through a derived model.

use std::collections::BTreeMap;

use perturb::tensor::{Array, Tensor, TensorTape};
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

#[derive(Tree, Debug, PartialEq)]
struct Pair<A>(A, Option<A>, #[tree(skip)] &'static str);

#[derive(Tree, Debug, PartialEq)]
struct Unit;

/// No type parameter: no leaves.
#[derive(Tree, Debug, PartialEq)]
struct Pool {
    size: usize,
}

#[derive(Tree)]
enum Never {}

#[derive(Tree)]
struct Block<A> {
    dense: Pair<A>,
    pool: Pool,
    never: Option<Never>,
}

/// A newtype: its one field adds no segment.
#[derive(Tree, Debug, PartialEq)]
struct Wrapper<A>(Linear<A>);

#[test]
fn tuple_structs_name_their_leaves_by_index_and_unit_structs_have_none() {
    let pair = Pair(v(&[1.0]), Some(v(&[2.0])), "kept");
    assert_eq!(pair.paths(), ["0", "1"]);
    assert_eq!(firsts(&pair), [1.0, 2.0]);
    assert_eq!(pair.map(|t| t.len()), Pair(1, Some(1), "kept"));

    let wrapper = Wrapper(Linear {
        weight: v(&[1.0]),
        bias: Some(v(&[2.0])),
        inputs: 1,
    });
    assert_eq!(wrapper.paths(), ["weight", "bias"]);
    assert_eq!(firsts(&wrapper), [1.0, 2.0]);

    // `Unit` holds no leaf of any type: it is a tree of `A` for every array `A`.
    assert_eq!(Tree::<Tensor<f64>>::num_leaves(&Unit), 0);
    let mapped: Unit = Tree::<Tensor<f64>>::map(&Unit, |t| t.len());
    assert_eq!(mapped, Unit);

    // So is a type without a leaf parameter: a tree field of any tree, its fields cloned.
    let block = Block {
        dense: Pair(v(&[1.0]), None, "d"),
        pool: Pool { size: 2 },
        never: None,
    };
    assert_eq!(block.paths(), ["dense.0"]);
    assert_eq!(block.map(|t| t.len()).pool, Pool { size: 2 });
}

/// A network's layers in one enum, as in a `Sequential`: the variant adds no segment.
#[derive(Tree, Debug, PartialEq)]
enum Layer<A> {
    Dense(Linear<A>),
    Scale {
        factor: A,
        #[tree(skip)]
        name: String,
    },
    Residual(A, #[tree(skip)] usize, Vec<A>),
    Relu,
}

#[test]
fn enum_variants_add_no_segment_and_tuple_variants_name_fields_by_index() {
    let layers = vec![
        Layer::Dense(Linear {
            weight: v(&[1.0]),
            bias: Some(v(&[2.0])),
            inputs: 1,
        }),
        Layer::Relu,
        Layer::Scale {
            factor: v(&[3.0]),
            name: "s".to_string(),
        },
        Layer::Residual(v(&[4.0]), 9, vec![v(&[5.0]), v(&[6.0])]),
    ];
    assert_eq!(
        layers.paths(),
        ["0.weight", "0.bias", "2.factor", "3.0", "3.2.0", "3.2.1"]
    );
    assert_eq!(firsts(&layers), [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let firsts_tree: Vec<Layer<f64>> = layers.map(|t| t.to_vec()[0]);
    assert_eq!(
        firsts_tree,
        [
            Layer::Dense(Linear {
                weight: 1.0,
                bias: Some(2.0),
                inputs: 1
            }),
            Layer::Relu,
            Layer::Scale {
                factor: 3.0,
                name: "s".to_string()
            },
            Layer::Residual(4.0, 9, vec![5.0, 6.0]),
        ]
    );
}

/// A model under a field of a model, with a leaf parameter named otherwise, lifetimes and
/// const parameters.
#[derive(Tree, Debug)]
struct Model<'n, T, const K: usize> {
    layers: Vec<Layer<T>>,
    heads: [Linear<T>; K],
    #[tree(skip)]
    name: &'n str,
}

fn model() -> Model<'static, Tensor<f64>, 2> {
    let linear = |w: &[f64], b: &[f64]| Linear {
        weight: Tensor::from_vec(w.to_vec(), &[1, w.len()]).unwrap(),
        bias: Some(v(b)),
        inputs: w.len(),
    };
    Model {
        layers: vec![
            Layer::Dense(linear(&[0.5, -1.0], &[0.25])),
            Layer::Scale {
                factor: v(&[2.0]),
                name: "double".into(),
            },
        ],
        heads: [linear(&[3.0], &[-0.5]), linear(&[-2.0], &[1.0])],
        name: "model",
    }
}

#[test]
fn unflatten_rebuilds_the_tree_from_its_leaves() {
    let m = model();
    let paths = [
        "layers.0.weight",
        "layers.0.bias",
        "layers.1.factor",
        "heads.0.weight",
        "heads.0.bias",
        "heads.1.weight",
        "heads.1.bias",
    ];
    assert_eq!(m.paths(), paths);
    let back = m.unflatten(m.flatten()).unwrap();
    assert_eq!(back.paths(), paths);
    for (a, b) in back.leaves().into_iter().zip(m.leaves()) {
        assert_eq!((a.shape(), a.to_vec()), (b.shape(), b.to_vec()));
    }
    assert_eq!(back.name, "model");
    let numbered = m.unflatten((0..7).collect()).unwrap();
    assert_eq!(numbered.heads[1].bias, Some(6));
    let err = m.unflatten(vec![0; 6]).unwrap_err().to_string();
    assert!(
        err.contains("unflatten") && err.contains('7') && err.contains('6'),
        "{err}"
    );
}

#[test]
fn zip_map_pairs_leaves_at_the_same_paths_and_refuses_another_structure() {
    let m = model();
    let twice = m.map(|t| t.scale(2.0));
    let diff = m.zip_map(&twice, |a, b| b.sub(a)).unwrap();
    for (d, a) in diff.leaves().into_iter().zip(m.leaves()) {
        assert_eq!(d.to_vec(), a.to_vec());
    }
    let mut shorter = model();
    shorter.layers.pop();
    let err = m
        .zip_map(&shorter, |a, _| a.clone())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("zip_map") && err.contains("layers.1.factor"),
        "{err}"
    );
}

/// A small network whose steps are an enum, differentiated on a tape.
#[derive(Tree)]
enum Step<A> {
    Dense(Linear<A>),
    Scale { factor: A },
    Tanh,
}

#[derive(Tree)]
struct Net<A> {
    steps: Vec<Step<A>>,
    #[tree(skip)]
    label: &'static str,
}

impl<A: Array> Net<A> {
    fn forward(&self, x: &A) -> A {
        self.steps.iter().fold(x.clone(), |x, step| match step {
            Step::Dense(l) => {
                let y = l.weight.matmul(&x);
                l.bias.as_ref().map_or(y.clone(), |b| y.add(b))
            }
            Step::Scale { factor } => x.mul(factor),
            Step::Tanh => x.tanh(),
        })
    }
}

fn matrix(rows: usize, values: &[f64]) -> Tensor<f64> {
    Tensor::from_vec(values.to_vec(), &[rows, values.len() / rows]).unwrap()
}

#[test]
fn a_gradient_through_a_derived_model_unflattens_into_the_model_and_matches_the_chain_rule() {
    let (w1, b1, s, w2) = (
        [0.5, -1.0, 0.25, 2.0, 0.75, -0.5],
        [0.1, -0.2],
        [1.5, -0.5],
        [2.0, -3.0],
    );
    let x = [1.0, 0.5, -2.0];
    let net = Net {
        steps: vec![
            Step::Dense(Linear {
                weight: matrix(2, &w1),
                bias: Some(v(&b1)),
                inputs: 3,
            }),
            Step::Scale { factor: v(&s) },
            Step::Tanh,
            Step::Dense(Linear {
                weight: matrix(1, &w2),
                bias: None,
                inputs: 2,
            }),
        ],
        label: "net",
    };

    let tape = TensorTape::new();
    let vars = net.map(|t| tape.var(t.clone()));
    assert_eq!(vars.label, "net");
    let loss = vars.forward(&tape.constant(v(&x))).square().sum_all();
    let grads = tape.gradient(&loss, &vars.leaves()).unwrap();
    let grad: Net<Tensor<f64>> = net.unflatten(grads).unwrap();

    // The chain rule by hand, on plain numbers: h = W1 x + b1, g = s * h, t = tanh(g),
    // y = W2 t, L = y^2. Then dy = 2y, dW2 = dy t^T, dt = W2^T dy, dg = dt (1 - t^2),
    // ds = dg h, dh = dg s, dW1 = dh x^T, db1 = dh.
    let h: Vec<f64> = (0..2)
        .map(|i| (0..3).map(|j| w1[3 * i + j] * x[j]).sum::<f64>() + b1[i])
        .collect();
    let t: Vec<f64> = (0..2).map(|i| (s[i] * h[i]).tanh()).collect();
    let y = w2[0] * t[0] + w2[1] * t[1];
    let dy = 2.0 * y;
    let dw2: Vec<f64> = t.iter().map(|ti| dy * ti).collect();
    let dg: Vec<f64> = (0..2).map(|i| w2[i] * dy * (1.0 - t[i] * t[i])).collect();
    let ds: Vec<f64> = (0..2).map(|i| dg[i] * h[i]).collect();
    let dh: Vec<f64> = (0..2).map(|i| dg[i] * s[i]).collect();
    let dw1: Vec<f64> = (0..6).map(|k| dh[k / 3] * x[k % 3]).collect();
    let expected = [
        ("steps.0.weight", dw1),
        ("steps.0.bias", dh),
        ("steps.1.factor", ds),
        ("steps.3.weight", dw2),
    ];

    let found = grad.named_leaves();
    assert_eq!(found.len(), expected.len());
    for ((path, g), (want_path, want)) in found.iter().zip(&expected) {
        assert_eq!(path, want_path);
        assert!(g.all_close(&Tensor::from_vec(want.clone(), g.shape()).unwrap(), 1e-12));
    }
    assert_eq!(grad.label, "net");
}

/// A recursive type, a default for the leaf, and a leaf named like the generated parameters.
#[derive(Tree)]
struct Node<A = Tensor<f64>> {
    value: A,
    children: Vec<Node<A>>,
}

#[derive(Tree)]
struct Odd<'a, 'b: 'a, __TreeLeaf> {
    x: __TreeLeaf,
    #[tree(skip)]
    tag: &'a &'b str,
}

#[test]
fn recursive_types_defaults_and_unusual_generics_derive() {
    let leaf = |x| Node {
        value: v(&[x]),
        children: vec![],
    };
    let tree: Node = Node {
        value: v(&[1.0]),
        children: vec![
            leaf(2.0),
            Node {
                value: v(&[3.0]),
                children: vec![leaf(4.0)],
            },
        ],
    };
    assert_eq!(
        tree.paths(),
        [
            "value",
            "children.0.value",
            "children.1.value",
            "children.1.children.0.value"
        ]
    );
    assert_eq!(firsts(&tree), [1.0, 2.0, 3.0, 4.0]);
    let depth_first: Node<f64> = tree.map(|t| t.to_vec()[0]);
    assert_eq!(depth_first.children[1].children[0].value, 4.0);

    let name = "odd";
    let odd = Odd {
        x: v(&[5.0]),
        tag: &name,
    };
    let mapped = odd.map(|t| t.len());
    assert_eq!((mapped.x, *mapped.tag), (1, "odd"));
}
