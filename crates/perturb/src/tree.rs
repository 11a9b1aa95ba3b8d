//! Parameter trees: any collection of arrays, as JAX's pytrees.
//!
//! A model is rarely one array: it is a struct of layers, each a few tensors. A [`Tree`] is any
//! such collection (a single [`Array`], a `Vec`, an array `[T; N]`, a tuple, an `Option`, a
//! `BTreeMap<String, _>`, a struct with `#[derive(Tree)]`, nested to any depth) seen as
//! an ordered list of leaves, each named by its [`Path`] (`layers.0.weight`).
//!
//! A tree's type is generic over its leaf: `Net<Tensor<f64>>` holds the weights,
//! `Net<TensorVar<'t, Tensor<f64>>>` the same weights recorded on a tape. [`Tree::With`] is that
//! change of leaf type, and [`Tree::map`] builds it. That is how the transforms take a tree
//! where they take an array ([`grad`](crate::tensor::grad) of a model is a model of gradients)
//! and how an optimiser updates any model.
//!
//! ```
//! use std::collections::BTreeMap;
//! use perturb::tensor::{Array, Tensor};
//! use perturb::tree::Tree;
//!
//! let mut model = BTreeMap::new();
//! model.insert("bias".to_string(), Tensor::vector(&[0.5_f64]));
//! model.insert("weights".to_string(), Tensor::vector(&[1.0, 2.0]));
//! let params = (model, vec![Tensor::scalar(3.0_f64)]);
//!
//! assert_eq!(params.paths(), ["0.bias", "0.weights", "1.0"]);
//! let doubled = params.map(|t| t.scale(2.0));
//! assert_eq!(doubled.0["weights"].to_vec(), [2.0, 4.0]);
//! assert_eq!(doubled.1[0].to_vec(), [6.0]);
//! ```
//!
//! ## Your own types
//!
//! [`#[derive(Tree)]`](macro@crate::Tree) makes a struct or enum generic over its leaf a tree:
//! each field's leaves under the field's name, `#[tree(skip)]` fields cloned as they are.
//!
//! ```
//! use perturb::tensor::{Array, Tensor};
//! use perturb::Tree;
//!
//! #[derive(Tree)]
//! struct Linear<A> {
//!     weight: A,
//!     bias: A,
//!     #[tree(skip)]
//!     name: String,
//! }
//!
//! let layer = Linear {
//!     weight: Tensor::vector(&[1.0_f64, 2.0]),
//!     bias: Tensor::scalar(0.5),
//!     name: "first".to_string(),
//! };
//! assert_eq!(layer.paths(), ["weight", "bias"]);
//! let doubled = layer.map(|t| t.scale(2.0));
//! assert_eq!((doubled.bias.to_vec(), doubled.name.as_str()), (vec![1.0], "first"));
//! ```

use std::collections::BTreeMap;
use std::fmt;

use crate::error::Error;
use crate::tensor::Array;

/// The derive, beside the trait, so that `use perturb::tree::Tree;` brings both.
pub use perturb_derive::Tree;

/// Where a leaf sits in its tree: the field names, indices and keys from the root, joined by
/// dots (`layers.0.weight`). The root's own path is empty. Two paths are equal when their
/// segments and enum variants are, not merely their text (`a` then `b.c` is not `a.b` then
/// `c`; see [`Path::with_variant`]).
///
/// ```
/// use perturb::tree::Path;
/// let mut p = Path::root();
/// p.push("layers");
/// p.push(0);
/// p.push("weight");
/// assert_eq!(p.as_str(), "layers.0.weight");
/// p.pop();
/// assert_eq!(p.to_string(), "layers.0");
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Path {
    text: String,
    /// Where each pushed segment starts (its dot included), for `pop`.
    starts: Vec<usize>,
    /// The enum variants entered ([`Path::with_variant`]), each with the number of segments
    /// before it: not in the text, but part of what makes two paths equal.
    variants: Vec<(usize, &'static str)>,
}

impl Path {
    /// The empty path, of the root.
    ///
    /// ```
    /// assert_eq!(perturb::tree::Path::root().as_str(), "");
    /// ```
    pub fn root() -> Self {
        Self::default()
    }

    /// Appends a segment: a field name, an index or a key.
    ///
    /// ```
    /// let mut p = perturb::tree::Path::root();
    /// p.push("w");
    /// p.push(3);
    /// assert_eq!(p.as_str(), "w.3");
    /// ```
    pub fn push(&mut self, segment: impl fmt::Display) {
        use fmt::Write;
        self.starts.push(self.text.len());
        if !self.text.is_empty() {
            self.text.push('.');
        }
        // Writing to a String cannot fail.
        let _ = write!(self.text, "{segment}");
    }

    /// Removes the last segment (nothing at the root).
    ///
    /// ```
    /// let mut p = perturb::tree::Path::root();
    /// p.push("a");
    /// p.push("b");
    /// p.pop();
    /// assert_eq!(p.as_str(), "a");
    /// ```
    pub fn pop(&mut self) {
        if let Some(start) = self.starts.pop() {
            self.text.truncate(start);
        }
    }

    /// The path as text, segments joined by dots.
    ///
    /// ```
    /// assert!(perturb::tree::Path::root().as_str().is_empty());
    /// ```
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Runs `f` inside the enum variant `variant`, which adds no segment to the text
    /// (`#[derive(Tree)]` calls it for each variant): two leaves under different variants have
    /// different paths even when their text is the same, so [`same_structure`] tells a layer
    /// `Dense { weight }` from a layer `Norm { weight }`.
    ///
    /// ```
    /// let (mut a, mut b) = (perturb::tree::Path::root(), perturb::tree::Path::root());
    /// let a = a.with_variant("Dense", |p| p.with("weight", |p| p.clone()));
    /// let b = b.with_variant("Norm", |p| p.with("weight", |p| p.clone()));
    /// assert_eq!((a.as_str(), b.as_str()), ("weight", "weight"));
    /// assert_ne!(a, b);
    /// ```
    pub fn with_variant<R>(&mut self, variant: &'static str, f: impl FnOnce(&mut Self) -> R) -> R {
        self.variants.push((self.starts.len(), variant));
        let r = f(self);
        self.variants.pop();
        r
    }

    /// The segments, as pushed (a segment may itself contain a dot).
    fn segments(&self) -> Vec<&str> {
        let ends = self.starts.iter().skip(1).copied().chain([self.text.len()]);
        self.starts
            .iter()
            .zip(ends)
            .map(|(&start, end)| {
                let segment = &self.text[start..end];
                // Every segment but one pushed onto the empty text starts with its dot.
                segment
                    .strip_prefix('.')
                    .filter(|_| start > 0)
                    .unwrap_or(segment)
            })
            .collect()
    }

    /// Runs `f` with `segment` pushed, then pops it.
    ///
    /// ```
    /// let mut p = perturb::tree::Path::root();
    /// let inner = p.with("bias", |p| p.to_string());
    /// assert_eq!((inner.as_str(), p.as_str()), ("bias", ""));
    /// ```
    pub fn with<R>(&mut self, segment: impl fmt::Display, f: impl FnOnce(&mut Self) -> R) -> R {
        self.push(segment);
        let r = f(self);
        self.pop();
        r
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// A collection of leaves of type `L` (arrays), in a fixed order, each named by a [`Path`].
///
/// Implemented for every [`Array`] (a single leaf, path `""`), `Vec<T>`, `[T; N]`,
/// `Option<T>` (no leaves when `None`), tuples of up to six trees and `BTreeMap<String, T>`
/// (in key order), where `T` is a tree; and for your own structs with `#[derive(Tree)]`
/// (the [`perturb::Tree`](crate::Tree) derive), whose fields are trees or marked
/// `#[tree(skip)]`.
///
/// Not for `Box<T>`: an impl would overlap with the one for arrays (another crate may make a
/// `Box` an [`Array`]). A recursive type holds its children in a `Vec` (none or one, for an
/// optional child), which is a tree:
///
/// ```
/// use perturb::tensor::Tensor;
/// use perturb::tree::Tree;
///
/// #[derive(Tree)]
/// struct Node<A> {
///     value: A,
///     children: Vec<Node<A>>,
/// }
/// let leaf = Node { value: Tensor::scalar(2.0_f64), children: vec![] };
/// let root = Node { value: Tensor::scalar(1.0), children: vec![leaf] };
/// assert_eq!(root.paths(), ["value", "children.0.value"]);
/// ```
///
/// Only the three required methods walk the structure; everything else ([`map`](Tree::map),
/// [`leaves`](Tree::leaves), [`unflatten`](Tree::unflatten), [`zip_map`](Tree::zip_map), ...)
/// is built on them.
///
/// ```
/// use perturb::tensor::{Array, Tensor};
/// use perturb::tree::Tree;
///
/// let t = vec![(Tensor::vector(&[1.0_f64]), Some(Tensor::vector(&[2.0, 3.0])))];
/// assert_eq!(t.paths(), ["0.0", "0.1"]);
/// assert_eq!(t.num_leaves(), 2);
/// let sizes = t.map(|a| a.shape()[0]); // the same structure, other leaves
/// assert_eq!(sizes[0], (1, Some(2)));
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a parameter tree with leaves `{L}`",
    note = "derive it with `#[derive(perturb::Tree)]`, or mark a field with no leaves `#[tree(skip)]`"
)]
pub trait Tree<L>: Sized {
    /// The same structure with leaves of type `M`: for `Vec<Tensor<f64>>` and
    /// `M = TensorVar<'t, Tensor<f64>>`, `Vec<TensorVar<'t, Tensor<f64>>>`.
    type With<M>;

    /// Calls `f` on each leaf in order, with its path below `path`.
    ///
    /// ```
    /// use perturb::tensor::Tensor;
    /// use perturb::tree::{Path, Tree};
    /// let t = (Tensor::vector(&[1.0_f64]), Tensor::vector(&[2.0]));
    /// let mut seen = Vec::new();
    /// t.visit(&mut Path::root(), &mut |p, leaf| seen.push((p.to_string(), leaf.to_vec()[0])));
    /// assert_eq!(seen, [("0".to_string(), 1.0), ("1".to_string(), 2.0)]);
    /// ```
    fn visit<'a>(&'a self, path: &mut Path, f: &mut dyn FnMut(&Path, &'a L));

    /// Calls `f` on each leaf in order, mutably, with its path below `path`.
    ///
    /// ```
    /// use perturb::tensor::{Array, Tensor};
    /// use perturb::tree::{Path, Tree};
    /// let mut t = vec![Tensor::vector(&[1.0_f64]), Tensor::vector(&[2.0])];
    /// t.visit_mut(&mut Path::root(), &mut |_, leaf| *leaf = leaf.scale(10.0));
    /// assert_eq!(t[1].to_vec(), [20.0]);
    /// ```
    fn visit_mut(&mut self, path: &mut Path, f: &mut dyn FnMut(&Path, &mut L));

    /// The same structure with each leaf replaced by `f(path, leaf)`, in leaf order.
    ///
    /// ```
    /// use perturb::tensor::Tensor;
    /// use perturb::tree::{Path, Tree};
    /// let t = vec![Tensor::vector(&[1.0_f64]), Tensor::vector(&[2.0])];
    /// let names = t.map_with_path(&mut Path::root(), &mut |p, _| p.to_string());
    /// assert_eq!(names, ["0", "1"]);
    /// ```
    fn map_with_path<M>(&self, path: &mut Path, f: &mut dyn FnMut(&Path, &L) -> M)
        -> Self::With<M>;

    /// The same structure with each leaf replaced by `f(leaf)`: JAX's `tree_map`.
    ///
    /// ```
    /// use perturb::tensor::{Array, Tensor};
    /// use perturb::tree::Tree;
    /// let zeros = (Tensor::vector(&[1.0_f64, 2.0]),).map(|t| Tensor::<f64>::zeros(t.shape()));
    /// assert_eq!(zeros.0.to_vec(), [0.0, 0.0]);
    /// ```
    fn map<M>(&self, mut f: impl FnMut(&L) -> M) -> Self::With<M> {
        self.map_with_path(&mut Path::root(), &mut |_, leaf| f(leaf))
    }

    /// The leaves, in order (JAX's `tree_leaves`).
    ///
    /// ```
    /// use perturb::tensor::Tensor;
    /// use perturb::tree::Tree;
    /// let t = [Tensor::vector(&[1.0_f64]), Tensor::vector(&[2.0])];
    /// assert_eq!(t.leaves()[1].to_vec(), [2.0]);
    /// ```
    fn leaves(&self) -> Vec<&L> {
        let mut out = Vec::new();
        self.visit(&mut Path::root(), &mut |_, leaf| out.push(leaf));
        out
    }

    /// The leaves, cloned, in order: the tree flattened (JAX's `tree_flatten`; the structure
    /// stays in `self`, for [`unflatten`](Tree::unflatten)).
    ///
    /// ```
    /// use perturb::tensor::Tensor;
    /// use perturb::tree::Tree;
    /// let t = (Tensor::scalar(1.0_f64), vec![Tensor::scalar(2.0)]);
    /// let flat: Vec<Tensor<f64>> = t.flatten();
    /// assert_eq!(flat.len(), 2);
    /// ```
    fn flatten(&self) -> Vec<L>
    where
        L: Clone,
    {
        self.leaves().into_iter().cloned().collect()
    }

    /// The paths of the leaves, in order.
    ///
    /// ```
    /// use perturb::tensor::Tensor;
    /// use perturb::tree::Tree;
    /// assert_eq!(Tensor::scalar(1.0_f64).paths(), [""]);
    /// ```
    fn paths(&self) -> Vec<String> {
        let mut out = Vec::new();
        self.visit(&mut Path::root(), &mut |p, _| out.push(p.to_string()));
        out
    }

    /// Each leaf with its path, in order.
    ///
    /// ```
    /// use perturb::tensor::Tensor;
    /// use perturb::tree::Tree;
    /// let t = vec![Tensor::scalar(1.0_f64)];
    /// let named = t.named_leaves();
    /// assert_eq!((named[0].0.as_str(), named[0].1.to_vec()), ("0", vec![1.0]));
    /// ```
    fn named_leaves(&self) -> Vec<(String, &L)> {
        let mut out = Vec::new();
        self.visit(&mut Path::root(), &mut |p, leaf| {
            out.push((p.to_string(), leaf))
        });
        out
    }

    /// How many leaves the tree has.
    ///
    /// ```
    /// use perturb::tensor::Tensor;
    /// use perturb::tree::Tree;
    /// let t: Option<Tensor<f64>> = None;
    /// assert_eq!(t.num_leaves(), 0);
    /// ```
    fn num_leaves(&self) -> usize {
        let mut n = 0;
        self.visit(&mut Path::root(), &mut |_, _| n += 1);
        n
    }

    /// The tree with this structure whose leaves are `leaves`, in order (JAX's
    /// `tree_unflatten`); an error naming the counts when there are too few or too many.
    ///
    /// ```
    /// use perturb::tensor::Tensor;
    /// use perturb::tree::Tree;
    /// let shape = (Tensor::scalar(0.0_f64), vec![Tensor::scalar(0.0)]);
    /// let t = shape.unflatten(vec!["a", "b"]).unwrap();
    /// assert_eq!(t, ("a", vec!["b"]));
    /// assert!(shape.unflatten(vec!["a"]).is_err());
    /// ```
    fn unflatten<M>(&self, leaves: Vec<M>) -> Result<Self::With<M>, Error> {
        let expected = self.num_leaves();
        if leaves.len() != expected {
            return Err(Error::LengthMismatch {
                op: "unflatten",
                what: "leaves (one per leaf of the tree)",
                expected,
                found: leaves.len(),
            });
        }
        let mut leaves = leaves.into_iter();
        // The count was checked: every leaf gets one (if the impl's methods agree).
        Ok(self.map(|_| leaves.next().expect(WALKS_DISAGREE)))
    }

    /// The tree of `f(a, b)` over the leaves of `self` and `other` in pairs (JAX's `tree_map`
    /// of two trees). The trees must have the same structure: an error names the first path
    /// where they differ (a `Vec` of another length, a map with another key, an `Option` that
    /// is `None` in one).
    ///
    /// ```
    /// use perturb::tensor::{Array, Tensor};
    /// use perturb::tree::Tree;
    /// let p = vec![Tensor::vector(&[1.0_f64]), Tensor::vector(&[2.0])];
    /// let g = vec![Tensor::vector(&[0.5_f64]), Tensor::vector(&[1.0])];
    /// let step = p.zip_map(&g, |p, g| p.sub(&g.scale(0.1))).unwrap();
    /// assert_eq!(step[1].to_vec(), [1.9]);
    /// assert!(p.zip_map(&vec![g[0].clone()], |p, _| p.clone()).is_err());
    /// ```
    fn zip_map<M>(
        &self,
        other: &Self,
        mut f: impl FnMut(&L, &L) -> M,
    ) -> Result<Self::With<M>, Error> {
        same_structure("zip_map", self, other)?;
        let others = other.leaves();
        let mut i = 0;
        Ok(self.map(|a| {
            let b = others.get(i).expect(WALKS_DISAGREE);
            i += 1;
            f(a, b)
        }))
    }
}

/// The panic of a `Tree` impl whose `map_with_path` walks more leaves than its `visit`: a bug
/// in that impl (a hand-written one), not in the data.
const WALKS_DISAGREE: &str =
    "this Tree impl's map_with_path walks more leaves than its visit: they must walk the same";

/// Checks that `a` and `b` have the same leaves at the same paths; otherwise an error naming
/// the first difference. Paths are compared by their segments and enum variants, not their
/// text: a map key with a dot (`{"a": {"b.c": x}}` against `{"a.b": {"c": y}}`, both `a.b.c`),
/// an empty key, or another variant with the same field names does not make two different
/// trees equal.
///
/// ```
/// use std::collections::BTreeMap;
/// use perturb::tensor::Tensor;
/// use perturb::tree::same_structure;
/// let a = vec![Tensor::scalar(1.0_f64)];
/// assert!(same_structure("update", &a, &a).is_ok());
/// let err = same_structure("update", &a, &vec![]).unwrap_err().to_string();
/// assert!(err.contains("update") && err.contains("'0'"), "{err}");
///
/// let nested = |outer: &str, inner: &str| {
///     BTreeMap::from([(outer.to_string(), BTreeMap::from([(inner.to_string(), Tensor::scalar(1.0_f64))]))])
/// };
/// assert!(same_structure("update", &nested("a", "b.c"), &nested("a.b", "c")).is_err());
/// ```
pub fn same_structure<L, T: Tree<L>>(op: &'static str, a: &T, b: &T) -> Result<(), Error> {
    let paths = |t: &T| {
        let mut out = Vec::new();
        t.visit(&mut Path::root(), &mut |p, _| out.push(p.clone()));
        out
    };
    let (pa, pb) = (paths(a), paths(b));
    if pa == pb {
        return Ok(());
    }
    let first = pa.iter().zip(&pb).position(|(x, y)| x != y);
    let reason = match first {
        Some(i) if pa[i].as_str() == pb[i].as_str() => format!(
            "the trees differ: leaf {i} is '{}' in both, but under the segments {:?} and \
             variants {:?} in one and {:?} and {:?} in the other",
            pa[i],
            pa[i].segments(),
            pa[i].variants.iter().map(|v| v.1).collect::<Vec<_>>(),
            pb[i].segments(),
            pb[i].variants.iter().map(|v| v.1).collect::<Vec<_>>(),
        ),
        Some(i) => format!(
            "the trees differ: leaf {i} is '{}' in one and '{}' in the other",
            pa[i], pb[i]
        ),
        None if pa.len() > pb.len() => format!(
            "the trees differ: '{}' is in the first ({} leaves) but not the second ({})",
            pa[pb.len()],
            pa.len(),
            pb.len()
        ),
        None => format!(
            "the trees differ: '{}' is in the second ({} leaves) but not the first ({})",
            pb[pa.len()],
            pb.len(),
            pa.len()
        ),
    };
    Err(Error::InvalidArgument { op, reason })
}

/// Every array is a tree of one leaf, itself, at the root's path.
impl<L: Array> Tree<L> for L {
    type With<M> = M;

    fn visit<'a>(&'a self, path: &mut Path, f: &mut dyn FnMut(&Path, &'a L)) {
        f(path, self);
    }

    fn visit_mut(&mut self, path: &mut Path, f: &mut dyn FnMut(&Path, &mut L)) {
        f(path, self);
    }

    fn map_with_path<M>(&self, path: &mut Path, f: &mut dyn FnMut(&Path, &L) -> M) -> M {
        f(path, self)
    }
}

/// `None` has no leaves; `Some(t)` has `t`'s, at the same paths (no segment of its own).
impl<L, T: Tree<L>> Tree<L> for Option<T> {
    type With<M> = Option<T::With<M>>;

    fn visit<'a>(&'a self, path: &mut Path, f: &mut dyn FnMut(&Path, &'a L)) {
        if let Some(t) = self {
            t.visit(path, f);
        }
    }

    fn visit_mut(&mut self, path: &mut Path, f: &mut dyn FnMut(&Path, &mut L)) {
        if let Some(t) = self {
            t.visit_mut(path, f);
        }
    }

    fn map_with_path<M>(
        &self,
        path: &mut Path,
        f: &mut dyn FnMut(&Path, &L) -> M,
    ) -> Self::With<M> {
        self.as_ref().map(|t| t.map_with_path(path, f))
    }
}

/// Elements at paths `0`, `1`, ...
impl<L, T: Tree<L>> Tree<L> for Vec<T> {
    type With<M> = Vec<T::With<M>>;

    fn visit<'a>(&'a self, path: &mut Path, f: &mut dyn FnMut(&Path, &'a L)) {
        for (i, t) in self.iter().enumerate() {
            path.with(i, |path| t.visit(path, f));
        }
    }

    fn visit_mut(&mut self, path: &mut Path, f: &mut dyn FnMut(&Path, &mut L)) {
        for (i, t) in self.iter_mut().enumerate() {
            path.with(i, |path| t.visit_mut(path, f));
        }
    }

    fn map_with_path<M>(
        &self,
        path: &mut Path,
        f: &mut dyn FnMut(&Path, &L) -> M,
    ) -> Self::With<M> {
        let mut out = Vec::with_capacity(self.len());
        for (i, t) in self.iter().enumerate() {
            out.push(path.with(i, |path| t.map_with_path(path, f)));
        }
        out
    }
}

/// Elements at paths `0`, `1`, ...
impl<L, T: Tree<L>, const N: usize> Tree<L> for [T; N] {
    type With<M> = [T::With<M>; N];

    fn visit<'a>(&'a self, path: &mut Path, f: &mut dyn FnMut(&Path, &'a L)) {
        for (i, t) in self.iter().enumerate() {
            path.with(i, |path| t.visit(path, f));
        }
    }

    fn visit_mut(&mut self, path: &mut Path, f: &mut dyn FnMut(&Path, &mut L)) {
        for (i, t) in self.iter_mut().enumerate() {
            path.with(i, |path| t.visit_mut(path, f));
        }
    }

    fn map_with_path<M>(
        &self,
        path: &mut Path,
        f: &mut dyn FnMut(&Path, &L) -> M,
    ) -> Self::With<M> {
        let mut i = 0;
        std::array::from_fn(|_| {
            let r = path.with(i, |path| self[i].map_with_path(path, f));
            i += 1;
            r
        })
    }
}

/// Values at their keys, in key order.
impl<L, T: Tree<L>> Tree<L> for BTreeMap<String, T> {
    type With<M> = BTreeMap<String, T::With<M>>;

    fn visit<'a>(&'a self, path: &mut Path, f: &mut dyn FnMut(&Path, &'a L)) {
        for (k, t) in self {
            path.with(k, |path| t.visit(path, f));
        }
    }

    fn visit_mut(&mut self, path: &mut Path, f: &mut dyn FnMut(&Path, &mut L)) {
        for (k, t) in self.iter_mut() {
            path.with(k, |path| t.visit_mut(path, f));
        }
    }

    fn map_with_path<M>(
        &self,
        path: &mut Path,
        f: &mut dyn FnMut(&Path, &L) -> M,
    ) -> Self::With<M> {
        self.iter()
            .map(|(k, t)| (k.clone(), path.with(k, |path| t.map_with_path(path, f))))
            .collect()
    }
}

/// Tuples: members at paths `0`, `1`, ...
macro_rules! tuple_trees {
    ($( ($($t:ident $i:tt),+) )*) => {$(
        impl<L, $($t: Tree<L>),+> Tree<L> for ($($t,)+) {
            type With<M> = ($($t::With<M>,)+);

            fn visit<'a>(&'a self, path: &mut Path, f: &mut dyn FnMut(&Path, &'a L)) {
                $( path.with($i, |path| self.$i.visit(path, f)); )+
            }

            fn visit_mut(&mut self, path: &mut Path, f: &mut dyn FnMut(&Path, &mut L)) {
                $( path.with($i, |path| self.$i.visit_mut(path, f)); )+
            }

            fn map_with_path<M>(
                &self,
                path: &mut Path,
                f: &mut dyn FnMut(&Path, &L) -> M,
            ) -> Self::With<M> {
                ($( path.with($i, |path| self.$i.map_with_path(path, f)), )+)
            }
        }
    )*};
}

tuple_trees! {
    (T0 0)
    (T0 0, T1 1)
    (T0 0, T1 1, T2 2)
    (T0 0, T1 1, T2 2, T3 3)
    (T0 0, T1 1, T2 2, T3 3, T4 4)
    (T0 0, T1 1, T2 2, T3 3, T4 4, T5 5)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::Tensor;

    fn v(x: f64) -> Tensor<f64> {
        Tensor::vector(&[x])
    }

    #[test]
    fn paths_of_nested_containers_name_every_leaf_in_order() {
        let mut map = BTreeMap::new();
        map.insert("w".to_string(), [v(1.0), v(2.0)]);
        map.insert("b".to_string(), [v(3.0), v(4.0)]);
        let t = (map, Some(vec![v(5.0)]), None::<Tensor<f64>>, v(6.0));
        assert_eq!(t.paths(), ["0.b.0", "0.b.1", "0.w.0", "0.w.1", "1.0", "3"]);
        let values: Vec<f64> = t.leaves().iter().map(|l| l.to_vec()[0]).collect();
        assert_eq!(values, [3.0, 4.0, 1.0, 2.0, 5.0, 6.0]);
    }

    #[test]
    fn map_then_unflatten_round_trips() {
        let t = vec![(v(1.0), v(2.0)), (v(3.0), v(4.0))];
        let flat = t.flatten();
        let back = t.unflatten(flat).unwrap();
        assert_eq!(back.paths(), t.paths());
        for (a, b) in back.leaves().iter().zip(t.leaves()) {
            assert_eq!(a.to_vec(), b.to_vec());
        }
        let err = t.unflatten(vec![v(0.0); 5]).unwrap_err().to_string();
        assert!(
            err.contains("unflatten") && err.contains('4') && err.contains('5'),
            "{err}"
        );
    }

    #[test]
    fn visit_mut_reaches_every_leaf_once_in_order() {
        let mut t = (vec![v(1.0), v(2.0)], [v(3.0)]);
        let mut i = 0.0;
        t.visit_mut(&mut Path::root(), &mut |_, l| {
            *l = v(10.0 * i);
            i += 1.0;
        });
        let mut seen = Vec::new();
        t.visit_mut(&mut Path::root(), &mut |p, l| {
            seen.push((p.to_string(), l.to_vec()[0]))
        });
        assert_eq!(
            seen,
            [
                ("0.0".into(), 0.0),
                ("0.1".into(), 10.0),
                ("1.0".into(), 20.0)
            ]
        );
    }

    #[test]
    fn zip_map_refuses_trees_of_another_structure_and_names_the_path() {
        let mut a = BTreeMap::new();
        a.insert("x".to_string(), v(1.0));
        let mut b = a.clone();
        b.insert("y".to_string(), v(2.0));
        let err = a.zip_map(&b, |p, _| p.clone()).unwrap_err().to_string();
        assert!(err.contains("'y'") && err.contains("second"), "{err}");
        let mut c = BTreeMap::new();
        c.insert("z".to_string(), v(1.0));
        let err = a.zip_map(&c, |p, _| p.clone()).unwrap_err().to_string();
        assert!(err.contains("'x'") && err.contains("'z'"), "{err}");
        let sum = a.zip_map(&a, |p, q| p.to_vec()[0] + q.to_vec()[0]).unwrap();
        assert_eq!(sum["x"], 2.0);
    }
}
