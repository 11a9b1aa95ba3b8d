//! Transforms of tensor functions, JAX-style: [`jvp`], [`vjp`], [`grad`], [`jacfwd`],
//! [`jacrev`], [`jacobian`], [`hessian`], [`hvp`].
//!
//! Two ways to write the function:
//!
//! - A closure, for one transform at a known level. Its argument is the array type the
//!   transform runs it on (a [`DualTensor`] for forward mode, a [`TensorVar`] for reverse mode),
//!   usually inferred. Closures nest: a closure may capture a value of an outer level and use it
//!   as a constant of the inner one (wrapped as that level's type: `TensorVar::constant(x)` for
//!   [`grad`], `DualTensor::constant(Batched::single(x))` for [`jacfwd`]), and may call another
//!   transform inside.
//! - A [`TensorFn`]: code generic over the array type, which every transform can run at any
//!   level. The combinators [`Grad`], [`JacFwd`], [`JacRev`] and [`Hessian`] are `TensorFn`s
//!   themselves, so they compose to any order: `Grad(Grad(Grad(f)))`, `JacFwd(JacRev(f))`.
//!
//! Jacobians have the shape of the output followed by the shape of the input (JAX's
//! convention): for `f: R^n -> R^m` an `m x n` matrix.
//!
//! ```
//! use perturb::tensor::{grad, hessian, Array, Tensor};
//!
//! // Rosenbrock, written once for every array type.
//! fn rosenbrock<A: Array>(x: &A) -> Result<A, perturb::Error> {
//!     let n = x.shape()[0];
//!     let (head, tail) = (x.try_narrow(0, 0, n - 1)?, x.try_narrow(0, 1, n - 1)?);
//!     let a = tail.try_sub(&head.square())?.square().scale(A::elem(100.0));
//!     let b = head.add_scalar(A::elem(-1.0)).square();
//!     Ok(a.try_add(&b)?.sum_all())
//! }
//!
//! let x = Tensor::vector(&[1.0_f64, 1.0]);
//! assert_eq!(grad(|x| rosenbrock(x), &x).unwrap().to_vec(), vec![0.0, 0.0]);
//! // At the minimum the Hessian is [[802, -400], [-400, 200]].
//! let h = hessian(|x| rosenbrock(x), &x).unwrap();
//! assert_eq!(h.to_vec(), vec![802.0, -400.0, -400.0, 200.0]);
//! ```
//!
//! # Trees
//!
//! Every transform takes a [tree](crate::tree) of arrays where it takes an array: a model
//! struct, a tuple, a `Vec`, a `BTreeMap<String, _>`. The function receives the same tree with
//! leaves of the transform's array type, and the derivatives come back as trees of the input's
//! structure (JAX's pytrees): [`grad`] of a model is a model of gradients; [`jacfwd`] and
//! [`jacrev`] give one Jacobian per leaf (shape: the output's, then the leaf's); [`hessian`]
//! gives the blocks `H[i][j]` (shape: leaf `i`'s, then leaf `j`'s) as a tree of trees, the outer
//! level for the first derivative. A single array is the tree of one leaf, itself, so all of
//! the above holds for it unchanged. [`grad_with_aux`] also returns what the function computed
//! beside its loss (JAX's `has_aux`).
//!
//! ```
//! use perturb::tensor::{grad, grad_with_aux, hessian, Array, Tensor};
//!
//! // The mean squared error of the linear model x w + b, for every array type.
//! fn loss<A: Array<Elem = f64>>((w, b): &(A, A), x: &Tensor<f64>, y: &Tensor<f64>) -> Result<A, perturb::Error> {
//!     let prediction = w.constant_like(x).try_matmul(w)?.try_add(b)?;
//!     Ok(prediction.try_sub(&w.constant_like(y))?.square().mean_all())
//! }
//!
//! let x = Tensor::from_vec(vec![1.0_f64, 0.0, 0.0, 1.0], &[2, 2]).unwrap();
//! let y = Tensor::vector(&[1.0_f64, 2.0]);
//! let model = (Tensor::vector(&[1.0_f64, 1.0]), Tensor::scalar(0.0_f64));
//!
//! // The gradient is a (weights, bias) pair too. Residuals r = x w + b - y = [0, -1]:
//! // d/dw = x^T r = [0, -1], d/db = sum(r) = -1 (the mean over 2 times 2).
//! let (dw, db) = grad(|m| loss(m, &x, &y), &model).unwrap();
//! assert_eq!((dw.to_vec(), db.to_vec()), (vec![0.0, -1.0], vec![-1.0]));
//!
//! // With an auxiliary output: the predictions, taken off the tape as plain tensors.
//! let (g, predictions) = grad_with_aux(
//!     |(w, b)| {
//!         let p = w.constant_like(&x).try_matmul(w)?.try_add(b)?;
//!         let l = p.try_sub(&w.constant_like(&y))?.square().mean_all();
//!         Ok((l, p.value().clone()))
//!     },
//!     &model,
//! )
//! .unwrap();
//! assert_eq!((g.0.to_vec(), predictions.to_vec()), (dw.to_vec(), vec![1.0, 1.0]));
//!
//! // The Hessian by blocks: h.0.1 is d/db (d/dw loss), of shape [2] ++ [].
//! let h = hessian(|m| loss(m, &x, &y), &model).unwrap();
//! assert_eq!(h.0 .0.to_vec(), [1.0, 0.0, 0.0, 1.0]); // x^T x (times 2 / 2)
//! assert_eq!((h.0 .1.to_vec(), h.1 .0.to_vec(), h.1 .1.to_vec()), (vec![1.0, 1.0], vec![1.0, 1.0], vec![2.0]));
//! ```

use super::array::Array;
use super::batched::{square_fits, Batched};
use super::deferred::Deferred;
use super::dense::Tensor;
use super::dual::DualTensor;
use super::element::Element;
use super::ravel;
use super::tape::{TensorTape, TensorVar};
use crate::error::Error;
use crate::functional::Mode;
use crate::tree::{same_structure, Tree};

/// A function of a [tree](crate::tree) whose leaves are `V`, with one `V` output: the bound of
/// the reverse-mode transforms ([`grad`], [`value_and_grad`], [`vjp`], [`jacrev`], [`hessian`],
/// [`hvp`]), as `for<'t> TreeFn<X, A, TensorVar<'t, B>>`. `X` is the tree as given, with leaves
/// `L = A`; the function sees the same structure with leaves `V`, tape variables over the array
/// type `B` the transform records (`A` itself for [`grad`], `Batched<A>` for [`jacrev`],
/// `DualTensor<Batched<A>>` for [`hessian`], `Deferred<A>` for [`hvp`]).
///
/// Every closure `FnOnce(&X::With<V>) -> Result<V, Error>` is one; there is nothing to
/// implement. A generic function is passed through a closure, `grad(|m| loss(m), &model)`:
/// `grad(loss, &model)` does not compile ("implementation of `FnOnce` is not general enough"),
/// because a function item fixes its type parameter, and with it the tape's lifetime, once.
/// Clippy's `redundant_closure` suggests that form anyway: allow the lint there
/// (`#[allow(clippy::redundant_closure)]`). (It exists because Rust refuses the bound
/// `for<'t> FnOnce(&X::With<TensorVar<'t, A>>) -> ..`, whose lifetime `'t` appears only inside
/// `X::With<..>`; in `for<'t> TreeFn<X, A, TensorVar<'t, A>>` it does not.)
///
/// ```
/// use perturb::tensor::{grad, Array, Tensor};
/// // A closure of a pair: X = (Tensor, Tensor), L = Tensor<f64>, V = TensorVar<'t, Tensor<f64>>.
/// let pair = (Tensor::vector(&[1.0_f64, 2.0]), Tensor::vector(&[3.0_f64, 4.0]));
/// let (ga, gb) = grad(|(a, b)| Ok(a.try_mul(b)?.sum_all()), &pair).unwrap();
/// assert_eq!((ga.to_vec(), gb.to_vec()), (vec![3.0, 4.0], vec![1.0, 2.0]));
/// ```
pub trait TreeFn<X: Tree<L>, L, V>: FnOnce(&X::With<V>) -> Result<V, Error> {}

impl<X: Tree<L>, L, V, F> TreeFn<X, L, V> for F where F: FnOnce(&X::With<V>) -> Result<V, Error> {}

/// A [`TreeFn`] that returns an auxiliary value `R` beside its output, for
/// [`value_and_grad_with_aux`] and [`grad_with_aux`] (JAX's `has_aux`). In
/// `for<'t> TreeFnWithAux<X, A, TensorVar<'t, A>, R>`, `R` cannot borrow the tape: return tape
/// variables' values (`v.value().clone()`), not the variables.
///
/// ```
/// use perturb::tensor::{grad_with_aux, Array, Tensor};
/// let x = Tensor::vector(&[1.0_f64, 2.0]);
/// let (g, norm2) = grad_with_aux(|x| { let l = x.square().sum_all(); Ok((l.clone(), l.value().clone())) }, &x).unwrap();
/// assert_eq!((g.to_vec(), norm2.to_vec()), (vec![2.0, 4.0], vec![5.0]));
/// ```
pub trait TreeFnWithAux<X: Tree<L>, L, V, R>: FnOnce(&X::With<V>) -> Result<(V, R), Error> {}

impl<X: Tree<L>, L, V, R, F> TreeFnWithAux<X, L, V, R> for F where
    F: FnOnce(&X::With<V>) -> Result<(V, R), Error>
{
}

/// A tensor function written once for every array type, so that transforms can run it at any
/// level and compose: `Grad(f)` is again a `TensorFn`.
///
/// Closures cannot be generic, so a `TensorFn` is a type with a generic method; captured data
/// goes in its fields (lifted into the array type with [`Array::lift`]).
///
/// Its input is one array by default; a function of a [tree](crate::tree) `X` of tensors
/// implements `TensorFn<T, X>` and gets the tree with leaves of the array type, which is how
/// [`check_grads`](crate::tensor::check_grads) checks a model:
///
/// ```
/// use perturb::tensor::{Array, Grad, Tensor, TensorFn};
/// use perturb::Error;
///
/// /// `sum(sin(x))`
/// struct SumSin;
/// impl TensorFn<f64> for SumSin {
///     fn call<A: Array<Elem = f64>>(&self, x: &A) -> Result<A, Error> {
///         Ok(x.sin().sum_all())
///     }
/// }
///
/// let x = Tensor::scalar(0.5_f64);
/// // The third derivative of sin is -cos.
/// let d3 = Grad(Grad(Grad(SumSin))).call(&x).unwrap();
/// assert!((d3.to_vec()[0] + 0.5_f64.cos()).abs() < 1e-15);
///
/// /// `sum(w * b)` of a pair of tensors.
/// struct Dot;
/// impl TensorFn<f64, (Tensor<f64>, Tensor<f64>)> for Dot {
///     fn call<A: Array<Elem = f64>>(&self, (w, b): &(A, A)) -> Result<A, Error> {
///         Ok(w.try_mul(b)?.sum_all())
///     }
/// }
/// let pair = (Tensor::vector(&[1.0_f64, 2.0]), Tensor::vector(&[3.0, 4.0]));
/// assert_eq!(Dot.call(&pair).unwrap().to_vec(), [11.0]);
/// ```
pub trait TensorFn<T: Element, X: Tree<Tensor<T>> = Tensor<T>> {
    /// The function at `x` (the tree `X` with leaves of type `A`; for one array, `x: &A`), for
    /// any array type.
    ///
    /// ```
    /// use perturb::tensor::{Array, Tensor, TensorFn};
    /// struct Double;
    /// impl TensorFn<f64> for Double {
    ///     fn call<A: Array<Elem = f64>>(&self, x: &A) -> Result<A, perturb::Error> {
    ///         Ok(x.scale(2.0))
    ///     }
    /// }
    /// assert_eq!(Double.call(&Tensor::vector(&[1.0])).unwrap().to_vec(), vec![2.0]);
    /// ```
    fn call<A: Array<Elem = T>>(&self, x: &X::With<A>) -> Result<A, Error>;
}

impl<T: Element, X: Tree<Tensor<T>>, F: TensorFn<T, X>> TensorFn<T, X> for &F {
    fn call<A: Array<Elem = T>>(&self, x: &X::With<A>) -> Result<A, Error> {
        (**self).call(x)
    }
}

pub(crate) fn element_count(shape: &[usize]) -> usize {
    shape.iter().product()
}

/// Checks that `other` (a tangent, a direction) has the structure and leaf shapes of `primal`;
/// the error names the first leaf that differs.
fn check_like<A: Array, X: Tree<A>>(
    op: &'static str,
    what: &str,
    primal: &X,
    other: &X,
) -> Result<(), Error> {
    same_structure(op, primal, other)?;
    for ((path, p), t) in primal.named_leaves().into_iter().zip(other.leaves()) {
        if p.shape() == t.shape() {
            super::batched::same_stack(op, p, t)?;
            continue;
        }
        return Err(if path.is_empty() {
            Error::ShapeMismatch {
                op,
                lhs: p.shape().to_vec(),
                rhs: t.shape().to_vec(),
            }
        } else {
            Error::InvalidArgument {
                op,
                reason: format!(
                    "the {what} of '{path}' has shape {:?}, its primal {:?}",
                    t.shape(),
                    p.shape()
                ),
            }
        });
    }
    Ok(())
}

/// The value of `f` at `primal` and its directional derivative along `tangent` (the
/// Jacobian-vector product), in one forward pass. `primal` may be any [tree](crate::tree);
/// `tangent` is then a tree of the same structure and leaf shapes.
///
/// ```
/// use perturb::tensor::{jvp, Array, Tensor};
/// let x = Tensor::vector(&[0.0_f64, 1.0]);
/// let v = Tensor::vector(&[1.0, 1.0]);
/// let (y, dy) = jvp(|x| Ok(x.exp()), &x, &v).unwrap();
/// assert_eq!(dy.to_vec(), y.to_vec()); // d exp = exp
/// assert!(jvp(|x| Ok(x.exp()), &x, &Tensor::ones(&[3])).is_err()); // shapes differ
///
/// // Of a pair: d (a b) = da b + a db.
/// let (a, b) = (Tensor::scalar(2.0_f64), Tensor::scalar(3.0_f64));
/// let (_, d) = jvp(|(a, b)| a.try_mul(b), &(a, b), &(Tensor::scalar(1.0), Tensor::scalar(10.0))).unwrap();
/// assert_eq!(d.to_vec(), [3.0 + 20.0]);
/// ```
pub fn jvp<A, X, F>(f: F, primal: &X, tangent: &X) -> Result<(A, A), Error>
where
    A: Array,
    X: Tree<A>,
    F: FnOnce(&X::With<DualTensor<A>>) -> Result<DualTensor<A>, Error>,
{
    check_like("jvp", "tangent", primal, tangent)?;
    let duals = primal
        .leaves()
        .into_iter()
        .zip(tangent.leaves())
        .map(|(p, t)| DualTensor::new(p.clone(), t.clone()))
        .collect();
    Ok(f(&primal.unflatten(duals)?)?.into_parts())
}

/// The value of `f` at `primal` and the cotangent of `primal` given the output's `cotangent`
/// (the vector-Jacobian product), by one recorded forward pass and one backward sweep. For a
/// [tree](crate::tree) `primal`, the cotangent is a tree of the same structure.
///
/// ```
/// use perturb::tensor::{vjp, Array, Tensor};
/// // f(x) = A x: the VJP with u is A^T u.
/// let a = Tensor::from_vec(vec![1.0_f64, 2.0, 3.0, 4.0], &[2, 2]).unwrap();
/// let x = Tensor::vector(&[1.0, 1.0]);
/// let u = Tensor::vector(&[1.0, 10.0]);
/// let (_, ct) = vjp(|x| x.constant_like(&a).try_matmul(x), &x, &u).unwrap();
/// assert_eq!(ct.to_vec(), vec![31.0, 42.0]);
/// ```
pub fn vjp<A, X, F>(f: F, primal: &X, cotangent: &A) -> Result<(A, X::With<A>), Error>
where
    A: Array,
    X: Tree<A>,
    F: for<'t> TreeFn<X, A, TensorVar<'t, A>>,
{
    let (y, cts) = vjp_leaves(
        &primal.leaves(),
        |xs| f(&primal.unflatten(xs.to_vec())?),
        cotangent,
    )?;
    Ok((y, primal.unflatten(cts)?))
}

/// [`vjp`] of a function of the list of variables, one per primal.
fn vjp_leaves<A: Array>(
    primals: &[&A],
    f: impl for<'t> FnOnce(&[TensorVar<'t, A>]) -> Result<TensorVar<'t, A>, Error>,
    cotangent: &A,
) -> Result<(A, Vec<A>), Error> {
    let tape = TensorTape::over();
    let xs: Vec<TensorVar<'_, A>> = primals.iter().map(|p| tape.var((*p).clone())).collect();
    let y = f(&xs)?;
    let refs: Vec<&TensorVar<'_, A>> = xs.iter().collect();
    let cts = tape.vjp(&y, cotangent, &refs)?;
    Ok((y.value().clone(), cts))
}

/// The value of a function with one output element and its gradient, of the shape of `x` (for
/// a [tree](crate::tree), a tree of the same structure: see the [module
/// example](crate::tensor::transforms)).
///
/// ```
/// use perturb::tensor::{value_and_grad, Array, Tensor};
/// let x = Tensor::vector(&[1.0_f64, 2.0]);
/// let (y, g) = value_and_grad(|x| Ok(x.square().sum_all()), &x).unwrap();
/// assert_eq!((y.to_vec(), g.to_vec()), (vec![5.0], vec![2.0, 4.0]));
/// ```
pub fn value_and_grad<A, X, F>(f: F, x: &X) -> Result<(A, X::With<A>), Error>
where
    A: Array,
    X: Tree<A>,
    F: for<'t> TreeFn<X, A, TensorVar<'t, A>>,
{
    let (y, g, ()) =
        value_and_grad_leaves(&x.leaves(), |xs| Ok((f(&x.unflatten(xs.to_vec())?)?, ())))?;
    Ok((y, x.unflatten(g)?))
}

/// [`value_and_grad`] of a function that also returns an auxiliary value (JAX's
/// `value_and_grad(f, has_aux=True)`): `f` returns `(loss, aux)`, and the result is
/// `((loss value, aux), gradient)`. `aux` is anything that does not borrow the tape, such as a
/// tape variable's value: `(loss, logits.value().clone())`.
///
/// ```
/// use perturb::tensor::{value_and_grad_with_aux, Array, Tensor};
/// let w = vec![Tensor::vector(&[1.0_f64, -1.0])];
/// let ((loss, logits), g) = value_and_grad_with_aux(
///     |w| {
///         let logits = w[0].scale(3.0);
///         Ok((logits.square().sum_all(), logits.value().clone()))
///     },
///     &w,
/// )
/// .unwrap();
/// // loss = 9 |w|^2 = 18, its gradient 18 w.
/// assert_eq!((loss.to_vec(), logits.to_vec(), g[0].to_vec()), (vec![18.0], vec![3.0, -3.0], vec![18.0, -18.0]));
/// ```
// JAX's layout, ((value, aux), gradient), spelled out rather than hidden behind an alias.
#[allow(clippy::type_complexity)]
pub fn value_and_grad_with_aux<A, X, R, F>(f: F, x: &X) -> Result<((A, R), X::With<A>), Error>
where
    A: Array,
    X: Tree<A>,
    F: for<'t> TreeFnWithAux<X, A, TensorVar<'t, A>, R>,
{
    let (y, g, aux) = value_and_grad_leaves(&x.leaves(), |xs| f(&x.unflatten(xs.to_vec())?))?;
    Ok(((y, aux), x.unflatten(g)?))
}

/// [`grad`] of a function that also returns an auxiliary value (JAX's `grad(f, has_aux=True)`):
/// `f` returns `(loss, aux)`, the result is `(gradient, aux)`; see [`value_and_grad_with_aux`]
/// and the [module example](crate::tensor::transforms).
///
/// ```
/// use perturb::tensor::{grad_with_aux, Array, Tensor};
/// let x = Tensor::vector(&[2.0_f64]);
/// let (g, cube) = grad_with_aux(|x| Ok((x.square().sum_all(), x.value().pow_scalar(3.0))), &x).unwrap();
/// assert_eq!((g.to_vec(), cube.to_vec()), (vec![4.0], vec![8.0]));
/// ```
pub fn grad_with_aux<A, X, R, F>(f: F, x: &X) -> Result<(X::With<A>, R), Error>
where
    A: Array,
    X: Tree<A>,
    F: for<'t> TreeFnWithAux<X, A, TensorVar<'t, A>, R>,
{
    let ((_, aux), g) = value_and_grad_with_aux(f, x)?;
    Ok((g, aux))
}

/// The gradient of a function with one output element (any shape with one element), by
/// reverse mode, of the shape of `x`; for a [tree](crate::tree) (a model), a tree of the same
/// structure (see the [module example](crate::tensor::transforms)). A generic function goes
/// in through a closure, `|m| loss(m)` (see [`TreeFn`] for why). Nest it for higher
/// derivatives; levels cannot be confused:
///
/// ```
/// use perturb::tensor::{grad, Array, Tensor, TensorVar};
/// // d/dx [x * d/dy (x + y)] = 1: the inner derivative is 1 whatever x is.
/// let x0 = Tensor::scalar(3.0_f64);
/// let d = grad(
///     |x| {
///         let inner = grad(
///             |y| TensorVar::constant(x.clone()).try_add(y),
///             &TensorVar::constant(Tensor::scalar(5.0)),
///         )?;
///         x.try_mul(&inner)
///     },
///     &x0,
/// )
/// .unwrap();
/// assert_eq!(d.to_vec(), vec![1.0]);
/// ```
pub fn grad<A, X, F>(f: F, x: &X) -> Result<X::With<A>, Error>
where
    A: Array,
    X: Tree<A>,
    F: for<'t> TreeFn<X, A, TensorVar<'t, A>>,
{
    Ok(value_and_grad(f, x)?.1)
}

/// [`jvp`] for a function of several tensors: each input gets its tangent, and the output's
/// tangent is the sum of their effects, in one forward pass.
///
/// ```
/// use perturb::tensor::{jvp_n, Array, Tensor};
/// // f(a, b) = sum(a * b): d f = sum(da * b + a * db).
/// let (a, b) = (Tensor::vector(&[1.0_f64, 2.0]), Tensor::vector(&[3.0, 4.0]));
/// let (da, db) = (Tensor::vector(&[1.0, 0.0]), Tensor::vector(&[0.0, 1.0]));
/// let (y, dy) = jvp_n(|x| Ok(x[0].try_mul(&x[1])?.sum_all()), &[a, b], &[da, db]).unwrap();
/// assert_eq!((y.to_vec(), dy.to_vec()), (vec![11.0], vec![3.0 + 2.0]));
/// ```
pub fn jvp_n<A, F>(f: F, primals: &[A], tangents: &[A]) -> Result<(A, A), Error>
where
    A: Array,
    F: FnOnce(&[DualTensor<A>]) -> Result<DualTensor<A>, Error>,
{
    if primals.len() != tangents.len() {
        return Err(Error::LengthMismatch {
            op: "jvp_n",
            what: "tangents (one per primal)",
            expected: primals.len(),
            found: tangents.len(),
        });
    }
    let mut inputs = Vec::with_capacity(primals.len());
    for (p, t) in primals.iter().zip(tangents) {
        if p.shape() != t.shape() {
            return Err(Error::ShapeMismatch {
                op: "jvp_n",
                lhs: p.shape().to_vec(),
                rhs: t.shape().to_vec(),
            });
        }
        super::batched::same_stack("jvp_n", p, t)?;
        inputs.push(DualTensor::new(p.clone(), t.clone()));
    }
    Ok(f(&inputs)?.into_parts())
}

/// [`vjp`] for a function of several tensors: the cotangent of each input, from one recorded
/// pass and one backward sweep.
///
/// ```
/// use perturb::tensor::{vjp_n, Array, Tensor};
/// // f(w, x) = w x (matrix times vector): the VJP with u is (u x^T, w^T u).
/// let w = Tensor::from_vec(vec![1.0_f64, 2.0, 3.0, 4.0], &[2, 2]).unwrap();
/// let x = Tensor::vector(&[1.0, -1.0]);
/// let u = Tensor::vector(&[1.0, 10.0]);
/// let (_, cts) = vjp_n(|p| p[0].try_matmul(&p[1]), &[w, x], &u).unwrap();
/// assert_eq!(cts[0].to_vec(), vec![1.0, -1.0, 10.0, -10.0]);
/// assert_eq!(cts[1].to_vec(), vec![31.0, 42.0]);
/// ```
pub fn vjp_n<A, F>(f: F, primals: &[A], cotangent: &A) -> Result<(A, Vec<A>), Error>
where
    A: Array,
    F: for<'t> FnOnce(&[TensorVar<'t, A>]) -> Result<TensorVar<'t, A>, Error>,
{
    vjp_leaves(&primals.iter().collect::<Vec<_>>(), f, cotangent)
}

/// The gradient of a function of several tensors with one output element, with respect to
/// each: what a training step needs.
///
/// ```
/// use perturb::tensor::{grad_n, Array, Tensor};
/// // The lecture's linear regression L = sum((y - X w - b)^2) / N, gradients for w and b.
/// let x = Tensor::from_vec(vec![1.0_f64, 2.0, 3.0], &[3, 1]).unwrap();
/// let y = Tensor::from_vec(vec![2.0_f64, 4.0, 6.0], &[3, 1]).unwrap();
/// let params = [Tensor::from_vec(vec![2.0], &[1, 1]).unwrap(), Tensor::vector(&[0.0])];
/// let g = grad_n(
///     |p| {
///         let pred = p[0].constant_like(&x).try_matmul(&p[0])?.try_add(&p[1])?;
///         Ok(p[0].constant_like(&y).try_sub(&pred)?.square().mean_axes(&[0, 1], false))
///     },
///     &params,
/// )
/// .unwrap();
/// // w = 2, b = 0 fit exactly: both gradients are zero.
/// assert_eq!((g[0].to_vec(), g[1].to_vec()), (vec![0.0], vec![0.0]));
/// ```
pub fn grad_n<A, F>(f: F, primals: &[A]) -> Result<Vec<A>, Error>
where
    A: Array,
    F: for<'t> FnOnce(&[TensorVar<'t, A>]) -> Result<TensorVar<'t, A>, Error>,
{
    Ok(value_and_grad_n(f, primals)?.1)
}

/// The value of a function of several tensors with one output element, and its gradient with
/// respect to each.
///
/// ```
/// use perturb::tensor::{value_and_grad_n, Array, Tensor};
/// let (a, b) = (Tensor::vector(&[1.0_f64, 2.0]), Tensor::vector(&[3.0, 4.0]));
/// let (y, g) = value_and_grad_n(|p| Ok(p[0].try_mul(&p[1])?.sum_all()), &[a.clone(), b.clone()]).unwrap();
/// assert_eq!(y.to_vec(), vec![11.0]);
/// assert_eq!((g[0].to_vec(), g[1].to_vec()), (b.to_vec(), a.to_vec()));
/// ```
pub fn value_and_grad_n<A, F>(f: F, primals: &[A]) -> Result<(A, Vec<A>), Error>
where
    A: Array,
    F: for<'t> FnOnce(&[TensorVar<'t, A>]) -> Result<TensorVar<'t, A>, Error>,
{
    let (y, g, ()) =
        value_and_grad_leaves(&primals.iter().collect::<Vec<_>>(), |xs| Ok((f(xs)?, ())))?;
    Ok((y, g))
}

/// The value, the gradients (one per primal) and the auxiliary output of a function of the list
/// of variables, one per primal: what every gradient transform runs.
fn value_and_grad_leaves<A: Array, R>(
    primals: &[&A],
    f: impl for<'t> FnOnce(&[TensorVar<'t, A>]) -> Result<(TensorVar<'t, A>, R), Error>,
) -> Result<(A, Vec<A>, R), Error> {
    let tape = TensorTape::over();
    let xs: Vec<TensorVar<'_, A>> = primals.iter().map(|p| tape.var((*p).clone())).collect();
    let (y, aux) = f(&xs)?;
    if element_count(y.shape()) != 1 {
        return Err(Error::NotAScalar {
            op: "grad",
            shape: y.shape().to_vec(),
        });
    }
    let refs: Vec<&TensorVar<'_, A>> = xs.iter().collect();
    let grads = tape.gradient(&y, &refs)?;
    Ok((y.value().clone(), grads, aux))
}

/// The Jacobian by forward mode: all the input's basis tangents pushed through one pass as a
/// stack ([`Batched`]), each operation's JVP running once on the whole stack. Best when the
/// input is smaller than the output.
///
/// The identity is carried by its diagonal as long as the operations allow (negation,
/// scaling, products with a value, sums, reshapes), and a matrix times it becomes the matrix's
/// columns with no product. The tangents are kept as the stack of the Jacobian's columns, along
/// the last axis (see [`Batched`]), where the element-wise operations, reductions over axes,
/// reshapes and matrix products keep them, so that `A` times the identity is `A` itself and the
/// Jacobian needs no transpose at the end: the Jacobian of `tanh(A x)` costs the forward pass
/// and one scaling of `A`, as the hand-written `diag(1 - tanh^2) A` does.
///
/// The function runs on a [`DualTensor`] of [`Batched`] arrays; written with [`Array`]'s
/// methods (or as a [`TensorFn`]) it need not name the type.
///
/// For a [tree](crate::tree) `x`, one Jacobian per leaf (shape: the output's, then the
/// leaf's), as a tree of `x`'s structure. The basis then spans all the tree's elements and is
/// cut into the leaves, written out rather than carried by its diagonal: `n x n` values for a
/// tree of `n` elements, and an error (not an abort) where that cannot be allocated.
///
/// ```
/// use perturb::tensor::{jacfwd, Array, Tensor};
/// // f(x) = x^2 element-wise: the Jacobian is diag(2x).
/// let j = jacfwd(|x| Ok(x.square()), &Tensor::vector(&[1.0_f64, 3.0])).unwrap();
/// assert_eq!((j.shape(), j.to_vec()), (&[2, 2][..], vec![2.0, 0.0, 0.0, 6.0]));
///
/// // f(a, b) = a * b (b a scalar): d/da = b I, d/db = a.
/// let (ja, jb) = jacfwd(|(a, b)| a.try_mul(b), &(Tensor::vector(&[1.0_f64, 2.0]), Tensor::scalar(3.0_f64))).unwrap();
/// assert_eq!((ja.to_vec(), jb.shape(), jb.to_vec()), (vec![3.0, 0.0, 0.0, 3.0], &[2][..], vec![1.0, 2.0]));
/// ```
pub fn jacfwd<A, X, F>(f: F, x: &X) -> Result<X::With<A>, Error>
where
    A: Array,
    X: Tree<A>,
    F: FnOnce(&X::With<DualTensor<Batched<A>>>) -> Result<DualTensor<Batched<A>>, Error>,
{
    let mut blocks = jacfwd_blocks("jacfwd", &x.leaves(), |inputs| {
        Ok(vec![f(&x.unflatten(inputs)?)?])
    })?;
    x.unflatten(blocks.remove(0))
}

/// The Jacobian blocks of `f` by forward mode: `blocks[k][j]`, of shape output `k`'s ++ input
/// `j`'s, is the derivative of output `k` with respect to input `j`. The basis tangents of all
/// `N` input elements go through one pass as a stack: one input carries its basis by its
/// diagonal; several cut the basis of all `N` into their pieces.
fn jacfwd_blocks<A: Array>(
    op: &'static str,
    xs: &[&A],
    f: impl FnOnce(Vec<DualTensor<Batched<A>>>) -> Result<Vec<DualTensor<Batched<A>>>, Error>,
) -> Result<Vec<Vec<A>>, Error> {
    let sizes: Vec<usize> = xs.iter().map(|x| element_count(x.shape())).collect();
    let n: usize = sizes.iter().sum();
    let tangents = match xs {
        [] => Vec::new(),
        [x] => vec![Batched::identity(x.shape(), true)],
        _ => {
            square_fits::<A::Elem>(op, n, "the basis tangents written out")?;
            let shapes: Vec<&[usize]> = xs.iter().map(|x| x.shape()).collect();
            ravel::split(&Batched::identity(&[n], true), &shapes)?
        }
    };
    let inputs = xs
        .iter()
        .zip(tangents)
        .map(|(x, t)| DualTensor::new(Batched::single((*x).clone()), t))
        .collect();
    let ys = f(inputs)?;
    if xs.is_empty() {
        return Ok(ys.iter().map(|_| Vec::new()).collect());
    }
    ys.iter()
        .map(|y| {
            let out = y.shape().to_vec();
            // One column per input element, along the last axis (no copy where the tangents
            // were kept that way).
            let columns = match y.tangent() {
                Some(t) => t.clone().into_trailing_stack_of(n)?,
                None => A::lift(Tensor::zeros(&[&out[..], &[n]].concat())),
            };
            let mut start = 0;
            xs.iter()
                .zip(&sizes)
                .map(|(x, &size)| {
                    let own = if xs.len() == 1 {
                        columns.clone()
                    } else {
                        columns.try_narrow(out.len(), start, size)?
                    };
                    start += size;
                    own.try_reshape(&[&out[..], x.shape()].concat())
                })
                .collect()
        })
        .collect()
}

/// The Jacobian by reverse mode: one recorded evaluation, then one backward sweep that pulls
/// all the output's basis cotangents back at once as a stack ([`Batched`]). Best when the
/// output is smaller than the input. As in [`jacfwd`], the identity is carried by its
/// diagonal while the rules allow. Where that sweep gives an entry that is not finite, the
/// rows are swept again one by one, so that one output's singularity (an infinite slope the
/// other outputs do not depend on) does not turn their rows into NaN.
///
/// For a [tree](crate::tree) `x`, one Jacobian per leaf (shape: the output's, then the
/// leaf's), as a tree of `x`'s structure, from the same one sweep.
///
/// ```
/// use perturb::tensor::{jacrev, Array, Tensor};
/// let a = Tensor::from_vec(vec![1.0_f64, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]).unwrap();
/// // The Jacobian of A x is A.
/// let j = jacrev(|x| x.constant_like(&a).try_matmul(x), &Tensor::ones(&[3])).unwrap();
/// assert_eq!(j.to_vec(), a.to_vec());
///
/// // Of A x + b with respect to the pair (x, b): (A, I).
/// let (jx, jb) = jacrev(|(x, b)| x.constant_like(&a).try_matmul(x)?.try_add(b), &(Tensor::ones(&[3]), Tensor::zeros(&[2]))).unwrap();
/// assert_eq!((jx.to_vec(), jb.to_vec()), (a.to_vec(), vec![1.0, 0.0, 0.0, 1.0]));
/// ```
pub fn jacrev<A, X, F>(f: F, x: &X) -> Result<X::With<A>, Error>
where
    A: Array,
    X: Tree<A>,
    F: for<'t> TreeFn<X, A, TensorVar<'t, Batched<A>>>,
{
    let tape = TensorTape::over();
    let leaves = x.leaves();
    let vars: Vec<TensorVar<'_, Batched<A>>> = leaves
        .iter()
        .map(|leaf| tape.var(Batched::single((*leaf).clone())))
        .collect();
    let y = f(&x.unflatten(vars.clone())?)?;
    let wrt: Vec<&TensorVar<'_, Batched<A>>> = vars.iter().collect();
    let out = y.shape().to_vec();
    let n = element_count(&out);
    let seeds = Batched::identity(&out, false);
    let mut blocks = tape
        .vjp(&y, &seeds, &wrt)?
        .into_iter()
        .map(|ct| ct.into_stack_of(n))
        .collect::<Result<Vec<A>, Error>>()?;
    let finite = |block: &A| {
        let values = block.primal();
        let values = values.as_slice();
        // A finite sum (eight running sums, vectorised) means every entry is finite: an
        // infinity or a NaN would make it infinite or NaN. Only where it is not (which finite
        // entries can also give, by overflow) is each entry tested, a branch per entry that
        // cost more than the rest of jacrev of tanh(A x), 200 x 200.
        num_traits::Float::is_finite(super::kernels::sum(values))
            || values.iter().all(|v| num_traits::Float::is_finite(*v))
    };
    if !blocks.iter().all(finite) {
        // One row's singularity reaches the others in the stacked sweep (a zero cotangent row
        // times an infinite slope is NaN): the rows again one by one, where an operation a row
        // does not depend on gets a zero cotangent and is skipped.
        let mut rows: Vec<Vec<A>> = blocks.iter().map(|_| Vec::with_capacity(n)).collect();
        for r in 0..n {
            let mut seed = vec![A::elem(0.0); n];
            seed[r] = A::elem(1.0);
            let seed = Batched::single(A::lift(Tensor::from_vec(seed, &out)?));
            for (row, ct) in rows.iter_mut().zip(tape.vjp(&y, &seed, &wrt)?) {
                row.push(ct.into_stack_of(1)?);
            }
        }
        for (block, row) in blocks.iter_mut().zip(rows) {
            if !finite(block) {
                *block = A::try_concat(&row.iter().collect::<Vec<_>>(), 0)?;
            }
        }
    }
    let blocks = blocks
        .into_iter()
        .zip(&leaves)
        .map(|(block, leaf)| block.try_reshape(&[&out[..], leaf.shape()].concat()))
        .collect::<Result<Vec<A>, Error>>()?;
    x.unflatten(blocks)
}

/// The Jacobian, by forward mode when the input has no more elements than the output and by
/// reverse mode otherwise ([`Mode::Auto`]), or by the mode the caller forces.
///
/// ```
/// use perturb::tensor::{jacobian, Array, Tensor, TensorFn};
/// use perturb::Mode;
///
/// struct Tanh;
/// impl TensorFn<f64> for Tanh {
///     fn call<A: perturb::tensor::Array<Elem = f64>>(&self, x: &A) -> Result<A, perturb::Error> {
///         Ok(x.tanh())
///     }
/// }
/// let x = Tensor::vector(&[0.0_f64, 1.0]);
/// let forward = jacobian(&Tanh, &x, Mode::Forward).unwrap();
/// let reverse = jacobian(&Tanh, &x, Mode::Reverse).unwrap();
/// assert!(forward.all_close(&reverse, 1e-15));
/// assert_eq!(forward.to_vec()[0], 1.0);
/// ```
pub fn jacobian<T, F, A>(f: &F, x: &A, mode: Mode) -> Result<A, Error>
where
    T: Element,
    F: TensorFn<T>,
    A: Array<Elem = T>,
{
    Jacobian { f, mode }.call(x)
}

/// The Hessian of a function with one output element, as the Jacobian of its gradient by
/// forward mode (forward over reverse). Shape: the input's shape twice.
///
/// For a [tree](crate::tree) `x`, the blocks `H[i][j]` = d/d leaf `j` (d/d leaf `i` f), of
/// shape leaf `i`'s ++ leaf `j`'s, as a tree of trees of `x`'s structure: the outer level is
/// the first derivative's leaf `i` (JAX's layout). See the [module
/// example](crate::tensor::transforms) for Rosenbrock's and for a model's. The Hessian of `n`
/// elements is `n x n` values: an error (not an abort) where that cannot be allocated; [`hvp`]
/// needs no more than a few gradients.
///
/// ```
/// use perturb::tensor::{hessian, Array, Tensor};
/// // sum(x^3) has Hessian diag(6x).
/// let h = hessian(|x| Ok(x.pow_scalar(3.0).sum_all()), &Tensor::vector(&[1.0_f64, 2.0])).unwrap();
/// assert_eq!(h.to_vec(), vec![6.0, 0.0, 0.0, 12.0]);
///
/// // a^2 b of a pair of scalars: [[2b, 2a], [2a, 0]].
/// let h = hessian(|(a, b)| a.square().try_mul(b), &(Tensor::scalar(1.0_f64), Tensor::scalar(3.0_f64))).unwrap();
/// assert_eq!([h.0 .0.to_vec(), h.0 .1.to_vec(), h.1 .0.to_vec(), h.1 .1.to_vec()], [[6.0], [2.0], [2.0], [0.0]]);
/// ```
pub fn hessian<A, X, F>(f: F, x: &X) -> Result<X::With<X::With<A>>, Error>
where
    A: Array,
    X: Tree<A>,
    F: for<'t> TreeFn<X, A, TensorVar<'t, DualTensor<Batched<A>>>>,
{
    let leaves = x.leaves();
    let n = leaves.iter().map(|leaf| element_count(leaf.shape())).sum();
    square_fits::<A::Elem>("hessian", n, "the Hessian")?;
    let rows = jacfwd_blocks("hessian", &leaves, |duals| {
        let duals: Vec<&DualTensor<Batched<A>>> = duals.iter().collect();
        let grad = value_and_grad_leaves(&duals, |xs| Ok((f(&x.unflatten(xs.to_vec())?)?, ())));
        Ok(grad?.1)
    })?;
    let rows = rows
        .into_iter()
        .map(|row| x.unflatten(row))
        .collect::<Result<Vec<_>, Error>>()?;
    x.unflatten(rows)
}

/// The Hessian-vector product `H v` of a function with one output element, by forward mode
/// over reverse mode: one JVP of the gradient, about the cost of a few gradients and without
/// forming `H`. `f` runs once, recorded; then the tangents along `v` of the values the gradient's
/// rules read are pushed forward, and the backward sweep runs on dual tensors. (The same as
/// `jvp(|x| grad(f, x), x, v)`, without the tangents no rule reads: the loss's own, and those
/// of values that only linear operations see.)
///
/// All of it runs on [`Deferred`] arrays, so only what `H v` needs is computed: not the loss
/// value, nor the gradient itself (the sweep's values, where no tangent reads them). `f` is
/// therefore called with a [`TensorVar`] over `Deferred<A>`: write it for any [`Array`], and
/// make constants with [`Array::constant_like`].
///
/// For a [tree](crate::tree) `x`, `v` is a tree of the same structure and leaf shapes, and so is
/// `H v`. (The tree's leaves are then one recorded vector, cut into the leaves by
/// differentiable operations.)
///
/// ```
/// use perturb::tensor::{hvp, Array, Tensor};
/// // sum(x^3): H v = 6 x v.
/// let x = Tensor::vector(&[1.0_f64, 2.0]);
/// let hv = hvp(|x| Ok(x.pow_scalar(3.0).sum_all()), &x, &Tensor::vector(&[1.0, 10.0])).unwrap();
/// assert_eq!(hv.to_vec(), vec![6.0, 120.0]);
///
/// // a^2 b at (1, 3), H = [[6, 2], [2, 0]], along (1, 10): (26, 2).
/// let p = vec![Tensor::scalar(1.0_f64), Tensor::scalar(3.0)];
/// let v = vec![Tensor::scalar(1.0_f64), Tensor::scalar(10.0)];
/// let hv = hvp(|p| p[0].square().try_mul(&p[1]), &p, &v).unwrap();
/// assert_eq!((hv[0].to_vec(), hv[1].to_vec()), (vec![26.0], vec![2.0]));
/// ```
pub fn hvp<A, X, F>(f: F, x: &X, v: &X) -> Result<X::With<A>, Error>
where
    A: Array + 'static,
    X: Tree<A>,
    F: for<'t> TreeFn<X, A, TensorVar<'t, Deferred<A>>>,
{
    check_like("hvp", "direction", x, v)?;
    let tape = TensorTape::keeping_values();
    if let ([leaf], [direction]) = (&x.leaves()[..], &v.leaves()[..]) {
        let xv = tape.var(Deferred::new((*leaf).clone()));
        let y = f(&x.unflatten(vec![xv.clone()])?)?;
        let hv = tape.hessian_vector(&y, &xv, &Deferred::new((*direction).clone()))?;
        return x.unflatten(vec![hv.value()?]);
    }
    let shapes: Vec<Vec<usize>> = x.leaves().iter().map(|l| l.shape().to_vec()).collect();
    let shapes: Vec<&[usize]> = shapes.iter().map(Vec::as_slice).collect();
    let xv = tape.var(Deferred::new(ravel::ravel(x)?));
    let y = f(&x.unflatten(ravel::split(&xv, &shapes)?)?)?;
    let hv = tape.hessian_vector(&y, &xv, &Deferred::new(ravel::ravel(v)?))?;
    x.unflatten(ravel::split(&hv.value()?, &shapes)?)
}

/// The gradient of a [`TensorFn`] with one output element, as a `TensorFn` again: compose it
/// for derivatives of any order (see [`TensorFn`]'s example).
///
/// ```
/// use perturb::tensor::{Array, Grad, Tensor, TensorFn};
/// struct Cube;
/// impl TensorFn<f64> for Cube {
///     fn call<A: Array<Elem = f64>>(&self, x: &A) -> Result<A, perturb::Error> {
///         Ok(x.pow_scalar(3.0).sum_all())
///     }
/// }
/// let x = Tensor::scalar(2.0_f64);
/// assert_eq!(Grad(Cube).call(&x).unwrap().to_vec(), vec![12.0]);
/// assert_eq!(Grad(Grad(Cube)).call(&x).unwrap().to_vec(), vec![12.0]);
/// assert_eq!(Grad(Grad(Grad(Cube))).call(&x).unwrap().to_vec(), vec![6.0]);
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Grad<F>(pub F);

impl<T: Element, F: TensorFn<T>> TensorFn<T> for Grad<F> {
    fn call<A: Array<Elem = T>>(&self, x: &A) -> Result<A, Error> {
        grad(|x| self.0.call(x), x)
    }
}

/// The Jacobian of a [`TensorFn`] by forward mode, as a `TensorFn`.
///
/// ```
/// use perturb::tensor::{Array, JacFwd, JacRev, Tensor, TensorFn};
/// struct Sin;
/// impl TensorFn<f64> for Sin {
///     fn call<A: Array<Elem = f64>>(&self, x: &A) -> Result<A, perturb::Error> { Ok(x.sin()) }
/// }
/// let x = Tensor::vector(&[0.0_f64, 1.0]);
/// assert!(JacFwd(Sin).call(&x).unwrap().all_close(&JacRev(Sin).call(&x).unwrap(), 1e-15));
/// ```
#[derive(Clone, Copy, Debug)]
pub struct JacFwd<F>(pub F);

impl<T: Element, F: TensorFn<T>> TensorFn<T> for JacFwd<F> {
    fn call<A: Array<Elem = T>>(&self, x: &A) -> Result<A, Error> {
        jacfwd(|x| self.0.call(x), x)
    }
}

/// The Jacobian of a [`TensorFn`] by reverse mode, as a `TensorFn`; see [`JacFwd`].
///
/// ```
/// use perturb::tensor::{Array, JacRev, Tensor, TensorFn};
/// struct Square;
/// impl TensorFn<f64> for Square {
///     fn call<A: Array<Elem = f64>>(&self, x: &A) -> Result<A, perturb::Error> { Ok(x.square()) }
/// }
/// let j = JacRev(Square).call(&Tensor::vector(&[2.0_f64])).unwrap();
/// assert_eq!(j.to_vec(), vec![4.0]);
/// ```
#[derive(Clone, Copy, Debug)]
pub struct JacRev<F>(pub F);

impl<T: Element, F: TensorFn<T>> TensorFn<T> for JacRev<F> {
    fn call<A: Array<Elem = T>>(&self, x: &A) -> Result<A, Error> {
        jacrev(|x| self.0.call(x), x)
    }
}

/// The Jacobian of a [`TensorFn`] in the mode the shapes favour (or the one given), as a
/// `TensorFn`; see [`jacobian`].
///
/// ```
/// use perturb::tensor::{Array, Jacobian, Tensor, TensorFn};
/// use perturb::Mode;
/// struct Exp;
/// impl TensorFn<f64> for Exp {
///     fn call<A: Array<Elem = f64>>(&self, x: &A) -> Result<A, perturb::Error> { Ok(x.exp()) }
/// }
/// let j = Jacobian { f: Exp, mode: Mode::Auto }.call(&Tensor::vector(&[0.0_f64])).unwrap();
/// assert_eq!(j.to_vec(), vec![1.0]);
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Jacobian<F> {
    /// The function.
    pub f: F,
    /// Forward, reverse, or chosen from the shapes.
    pub mode: Mode,
}

impl<T: Element, F: TensorFn<T>> TensorFn<T> for Jacobian<F> {
    fn call<A: Array<Elem = T>>(&self, x: &A) -> Result<A, Error> {
        let forward = match self.mode {
            Mode::Forward => true,
            Mode::Reverse => false,
            Mode::Auto => {
                let out = self.f.call(&x.primal())?;
                element_count(x.shape()) <= element_count(out.shape())
            }
        };
        if forward {
            JacFwd(&self.f).call(x)
        } else {
            JacRev(&self.f).call(x)
        }
    }
}

/// The Hessian of a [`TensorFn`] with one output element (forward over reverse), as a
/// `TensorFn`.
///
/// ```
/// use perturb::tensor::{Array, Hessian, Tensor, TensorFn};
/// struct Quartic;
/// impl TensorFn<f64> for Quartic {
///     fn call<A: Array<Elem = f64>>(&self, x: &A) -> Result<A, perturb::Error> {
///         Ok(x.pow_scalar(4.0).sum_all())
///     }
/// }
/// // d2/dx2 x^4 = 12 x^2
/// let h = Hessian(Quartic).call(&Tensor::vector(&[1.0_f64])).unwrap();
/// assert_eq!(h.to_vec(), vec![12.0]);
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Hessian<F>(pub F);

impl<T: Element, F: TensorFn<T>> TensorFn<T> for Hessian<F> {
    fn call<A: Array<Elem = T>>(&self, x: &A) -> Result<A, Error> {
        JacFwd(Grad(&self.0)).call(x)
    }
}
