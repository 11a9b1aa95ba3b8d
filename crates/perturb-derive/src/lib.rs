//! `#[derive(Tree)]` for [perturb](https://docs.rs/perturb): your struct or enum of arrays as
//! a parameter tree. Use it as `perturb::Tree`, which re-exports it beside the trait of the
//! same name (as serde does with `Serialize`); its documentation is on [`Tree`](macro@Tree).
//!
//! # What it refuses, and the fix
//!
//! Each refusal is a compile error at the offending place, with the reason; all of them are
//! reported at once.
//!
//! A bound on the leaf parameter, in the parameter list or a where-clause: the same tree with
//! other leaves, `Net<M>` for any `M`, must be a type.
//!
//! ```compile_fail
//! #[derive(perturb::Tree)]
//! struct Net<A: perturb::tensor::Array> {
//!     w: A,
//! }
//! ```
//!
//! ```compile_fail
//! #[derive(perturb::Tree)]
//! struct Net<A>
//! where
//!     A: Clone,
//! {
//!     w: A,
//! }
//! ```
//!
//! The bounds go on the impl blocks instead:
//!
//! ```
//! use perturb::tensor::Array;
//!
//! #[derive(perturb::Tree)]
//! struct Net<A> {
//!     w: A,
//! }
//!
//! impl<A: Array> Net<A> {
//!     fn forward(&self, x: &A) -> A {
//!         self.w.matmul(x)
//!     }
//! }
//! ```
//!
//! A skipped field whose type mentions the leaf parameter: it is kept as it is when the leaves
//! change type, so in `Net<M>` it would have the wrong type.
//!
//! ```compile_fail
//! #[derive(perturb::Tree)]
//! struct Net<A> {
//!     w: A,
//!     #[tree(skip)]
//!     cache: Vec<A>,
//! }
//! ```
//!
//! Make it a tree field (its leaves are then the model's), or give it a type without `A`:
//!
//! ```
//! #[derive(perturb::Tree)]
//! struct Net<A> {
//!     w: A,
//!     cache: Vec<A>,
//!     #[tree(skip)]
//!     steps: Vec<usize>,
//! }
//! ```
//!
//! An attribute other than `#[tree(skip)]`, or a `#[tree(..)]` on the type or a variant:
//!
//! ```compile_fail
//! #[derive(perturb::Tree)]
//! struct Net<A> {
//!     #[tree(flatten)]
//!     w: A,
//! }
//! ```
//!
//! ```compile_fail
//! #[derive(perturb::Tree)]
//! #[tree(skip)]
//! struct Net<A> {
//!     w: A,
//! }
//! ```
//!
//! A second type parameter: a tree has one leaf type.
//!
//! ```compile_fail
//! #[derive(perturb::Tree)]
//! struct Net<A, B> {
//!     w: A,
//!     b: B,
//! }
//! ```
//!
//! Give the other fields fixed types (or skip them):
//!
//! ```
//! #[derive(perturb::Tree)]
//! struct Net<A> {
//!     w: A,
//!     #[tree(skip)]
//!     b: f64,
//! }
//! ```
//!
//! A field that is not a tree and not skipped: rustc says that its type does not implement
//! `Tree<A>`, pointing at it.
//!
//! ```compile_fail
//! #[derive(perturb::Tree)]
//! struct Net<A> {
//!     w: A,
//!     inputs: usize,
//! }
//! ```

mod expand;
mod input;

use proc_macro::TokenStream;
use syn::{parse_macro_input, DeriveInput};

/// Implements `perturb::tree::Tree<A>` for a struct or enum generic over its leaf type `A`:
/// its leaves are those of its fields, in order, each named by its path from the root.
///
/// ```
/// use perturb::tensor::{Array, Tensor};
/// use perturb::Tree;
///
/// #[derive(Tree)]
/// struct Linear<A> {
///     weight: A,
///     bias: Option<A>,
///     #[tree(skip)]
///     inputs: usize,
/// }
///
/// #[derive(Tree)]
/// struct Mlp<A> {
///     layers: Vec<Linear<A>>,
/// }
///
/// let layer = |inputs, outputs| Linear {
///     weight: Tensor::<f64>::zeros(&[outputs, inputs]),
///     bias: Some(Tensor::zeros(&[outputs])),
///     inputs,
/// };
/// let mlp = Mlp { layers: vec![layer(2, 3), layer(3, 1)] };
/// let paths = ["layers.0.weight", "layers.0.bias", "layers.1.weight", "layers.1.bias"];
/// assert_eq!(mlp.paths(), paths);
///
/// // The same model with other leaves: Mlp<Tensor<f64>>::With<Vec<usize>> is Mlp<Vec<usize>>.
/// let shapes: Mlp<Vec<usize>> = mlp.map(|t| t.shape().to_vec());
/// assert_eq!(shapes.layers[0].weight, [3, 2]);
/// assert_eq!(shapes.layers[1].inputs, 3); // skipped fields are cloned
/// ```
///
/// # Fields
///
/// Each field is a tree of `A`: `A` itself, an `Option`, `Vec`, `[T; N]`, tuple or
/// `BTreeMap<String, T>` of trees, another type with `#[derive(Tree)]`, nested to any depth.
/// A field marked `#[tree(skip)]` holds no leaves: its value is cloned into a mapped tree, so
/// its type implements `Clone` and does not mention `A`.
///
/// # Paths
///
/// A field's leaves are under its name (`weight`), or its index in a tuple struct or variant
/// (`0`, `1`, ...). An enum's variant adds no segment: in a `Vec<Layer<A>>` of
/// `enum Layer<A> { Dense { weight: A }, .. }` the weight of the first layer is at
/// `0.weight` (the variant is still part of the path's identity, not its text:
/// `perturb::tree::same_structure` tells `Dense { weight }` from another variant's `weight`).
/// Nor does the one field of a newtype (`Dense(Linear<A>)`, or
/// `struct Wrapper<A>(Linear<A>)`): its leaves keep the paths they have in the field.
///
/// ```
/// use perturb::tensor::{Array, Tensor};
/// use perturb::Tree;
///
/// #[derive(Tree)]
/// struct Linear<A> {
///     weight: A,
/// }
///
/// #[derive(Tree)]
/// enum Layer<A> {
///     Dense(Linear<A>),
///     Affine(A, A),
///     Scale { factor: A },
///     Relu,
/// }
///
/// let t = |x: f64| Tensor::scalar(x);
/// let layers = vec![
///     Layer::Dense(Linear { weight: t(1.0) }),
///     Layer::Relu,
///     Layer::Affine(t(2.0), t(3.0)),
///     Layer::Scale { factor: t(4.0) },
/// ];
/// assert_eq!(layers.paths(), ["0.weight", "2.0", "2.1", "3.factor"]);
/// ```
///
/// # Generics
///
/// The type has one type parameter, the leaf, with no bounds where the type is defined:
/// `With<M>`, the same tree with leaves `M`, is the type with `M` in its place, and must exist
/// for every `M` (tape variables, gradients, shapes). Put the bounds on impl blocks
/// (`impl<A: Array> Linear<A> { fn forward(..) }`). Lifetimes and const parameters may come
/// with it. A type with no type parameter holds no leaves: it is a tree of every array type,
/// with every field cloned (a parameter-free layer: `struct Relu;`).
///
/// The generated impl, for `Linear` above:
///
/// ```text
/// impl<A: ::perturb::tensor::Array> ::perturb::tree::Tree<A> for Linear<A> {
///     type With<M> = Linear<M>;
///     fn visit(..)         // weight, then bias, each under its name
///     fn visit_mut(..)
///     fn map_with_path(..) // Linear { weight: .., bias: .., inputs: inputs.clone() }
/// }
/// ```
#[proc_macro_derive(Tree, attributes(tree))]
pub fn derive_tree(input: TokenStream) -> TokenStream {
    let ast = parse_macro_input!(input as DeriveInput);
    match input::read(&ast) {
        Ok(input) => expand::expand(&input),
        Err(errors) => errors.into_compile_error(),
    }
    .into()
}
