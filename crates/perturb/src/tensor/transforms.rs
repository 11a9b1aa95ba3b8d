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

use super::array::Array;
use super::batched::Batched;
use super::deferred::Deferred;
use super::dense::Tensor;
use super::dual::DualTensor;
use super::element::Element;
use super::tape::{TensorTape, TensorVar};
use crate::error::Error;
use crate::functional::Mode;

/// A tensor function written once for every array type, so that transforms can run it at any
/// level and compose: `Grad(f)` is again a `TensorFn`.
///
/// Closures cannot be generic, so a `TensorFn` is a type with a generic method; captured data
/// goes in its fields (lifted into the array type with [`Array::lift`]).
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
/// ```
pub trait TensorFn<T: Element> {
    /// The function at `x`, for any array type.
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
    fn call<A: Array<Elem = T>>(&self, x: &A) -> Result<A, Error>;
}

impl<T: Element, F: TensorFn<T>> TensorFn<T> for &F {
    fn call<A: Array<Elem = T>>(&self, x: &A) -> Result<A, Error> {
        (**self).call(x)
    }
}

fn element_count(shape: &[usize]) -> usize {
    shape.iter().product()
}

/// The value of `f` at `primal` and its directional derivative along `tangent` (the
/// Jacobian-vector product), in one forward pass.
///
/// ```
/// use perturb::tensor::{jvp, Array, Tensor};
/// let x = Tensor::vector(&[0.0_f64, 1.0]);
/// let v = Tensor::vector(&[1.0, 1.0]);
/// let (y, dy) = jvp(|x| Ok(x.exp()), &x, &v).unwrap();
/// assert_eq!(dy.to_vec(), y.to_vec()); // d exp = exp
/// assert!(jvp(|x| Ok(x.exp()), &x, &Tensor::ones(&[3])).is_err()); // shapes differ
/// ```
pub fn jvp<A, F>(f: F, primal: &A, tangent: &A) -> Result<(A, A), Error>
where
    A: Array,
    F: FnOnce(&DualTensor<A>) -> Result<DualTensor<A>, Error>,
{
    if primal.shape() != tangent.shape() {
        return Err(Error::ShapeMismatch {
            op: "jvp",
            lhs: primal.shape().to_vec(),
            rhs: tangent.shape().to_vec(),
        });
    }
    Ok(f(&DualTensor::new(primal.clone(), tangent.clone()))?.into_parts())
}

/// The value of `f` at `primal` and the cotangent of `primal` given the output's `cotangent`
/// (the vector-Jacobian product), by one recorded forward pass and one backward sweep.
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
pub fn vjp<A, F>(f: F, primal: &A, cotangent: &A) -> Result<(A, A), Error>
where
    A: Array,
    F: for<'t> FnOnce(&TensorVar<'t, A>) -> Result<TensorVar<'t, A>, Error>,
{
    let (y, mut cts) = vjp_n(|x| f(&x[0]), std::slice::from_ref(primal), cotangent)?;
    Ok((y, cts.remove(0)))
}

/// The value of a function with one output element and its gradient.
///
/// ```
/// use perturb::tensor::{value_and_grad, Array, Tensor};
/// let x = Tensor::vector(&[1.0_f64, 2.0]);
/// let (y, g) = value_and_grad(|x| Ok(x.square().sum_all()), &x).unwrap();
/// assert_eq!((y.to_vec(), g.to_vec()), (vec![5.0], vec![2.0, 4.0]));
/// ```
pub fn value_and_grad<A, F>(f: F, x: &A) -> Result<(A, A), Error>
where
    A: Array,
    F: for<'t> FnOnce(&TensorVar<'t, A>) -> Result<TensorVar<'t, A>, Error>,
{
    let (y, mut g) = value_and_grad_n(|x| f(&x[0]), std::slice::from_ref(x))?;
    Ok((y, g.remove(0)))
}

/// The gradient of a function with one output element (any shape with one element), by
/// reverse mode. Nest it for higher derivatives; levels cannot be confused:
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
pub fn grad<A, F>(f: F, x: &A) -> Result<A, Error>
where
    A: Array,
    F: for<'t> FnOnce(&TensorVar<'t, A>) -> Result<TensorVar<'t, A>, Error>,
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
    let tape = TensorTape::over();
    let xs: Vec<TensorVar<'_, A>> = primals.iter().map(|p| tape.var(p.clone())).collect();
    let y = f(&xs)?;
    let refs: Vec<&TensorVar<'_, A>> = xs.iter().collect();
    let cts = tape.vjp(&y, cotangent, &refs)?;
    Ok((y.value().clone(), cts))
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
    let tape = TensorTape::over();
    let xs: Vec<TensorVar<'_, A>> = primals.iter().map(|p| tape.var(p.clone())).collect();
    let y = f(&xs)?;
    if element_count(y.shape()) != 1 {
        return Err(Error::NotAScalar {
            op: "grad",
            shape: y.shape().to_vec(),
        });
    }
    let refs: Vec<&TensorVar<'_, A>> = xs.iter().collect();
    let grads = tape.gradient(&y, &refs)?;
    Ok((y.value().clone(), grads))
}

/// The Jacobian by forward mode: all the input's basis tangents pushed through one pass as a
/// stack ([`Batched`]), each operation's JVP running once on the whole stack. Best when the
/// input is smaller than the output.
///
/// The identity is carried by its diagonal as long as the operations allow (negation,
/// scaling, products with a value, sums, reshapes), and a matrix times it becomes the matrix's
/// columns with no product: the Jacobian of `tanh(A x)` costs a copy of `A` and one scaling,
/// not an n^3 product with the identity.
///
/// The function runs on a [`DualTensor`] of [`Batched`] arrays; written with [`Array`]'s
/// methods (or as a [`TensorFn`]) it need not name the type.
///
/// ```
/// use perturb::tensor::{jacfwd, Array, Tensor};
/// // f(x) = x^2 element-wise: the Jacobian is diag(2x).
/// let j = jacfwd(|x| Ok(x.square()), &Tensor::vector(&[1.0_f64, 3.0])).unwrap();
/// assert_eq!((j.shape(), j.to_vec()), (&[2, 2][..], vec![2.0, 0.0, 0.0, 6.0]));
/// ```
pub fn jacfwd<A, F>(f: F, x: &A) -> Result<A, Error>
where
    A: Array,
    F: FnOnce(&DualTensor<Batched<A>>) -> Result<DualTensor<Batched<A>>, Error>,
{
    let n = element_count(x.shape());
    let tangents = Batched::basis(A::lift(Tensor::ones(x.shape())));
    let y = f(&DualTensor::new(Batched::single(x.clone()), tangents))?;
    let out = y.shape().to_vec();
    // One column per input element, along the leading axis: moved to the end.
    let columns = match y.tangent() {
        Some(t) => t.clone().into_stack_of(n)?,
        None => A::lift(Tensor::zeros(&[&[n], &out[..]].concat())),
    };
    let perm: Vec<usize> = (1..=out.len()).chain([0]).collect();
    columns
        .try_permute(&perm)?
        .try_reshape(&[&out[..], x.shape()].concat())
}

/// The Jacobian by reverse mode: one recorded evaluation, then one backward sweep that pulls
/// all the output's basis cotangents back at once as a stack ([`Batched`]). Best when the
/// output is smaller than the input. As in [`jacfwd`], the identity is carried by its
/// diagonal while the rules allow. Where that sweep gives an entry that is not finite, the
/// rows are swept again one by one, so that one output's singularity (an infinite slope the
/// other outputs do not depend on) does not turn their rows into NaN.
///
/// ```
/// use perturb::tensor::{jacrev, Array, Tensor};
/// let a = Tensor::from_vec(vec![1.0_f64, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]).unwrap();
/// // The Jacobian of A x is A.
/// let j = jacrev(|x| x.constant_like(&a).try_matmul(x), &Tensor::ones(&[3])).unwrap();
/// assert_eq!(j.to_vec(), a.to_vec());
/// ```
pub fn jacrev<A, F>(f: F, x: &A) -> Result<A, Error>
where
    A: Array,
    F: for<'t> FnOnce(&TensorVar<'t, Batched<A>>) -> Result<TensorVar<'t, Batched<A>>, Error>,
{
    let tape = TensorTape::over();
    let xv = tape.var(Batched::single(x.clone()));
    let y = f(&xv)?;
    let out = y.shape().to_vec();
    let n = element_count(&out);
    let seeds = Batched::basis(A::lift(Tensor::ones(&out)));
    let mut rows = tape.vjp(&y, &seeds, &[&xv])?.remove(0).into_stack_of(n)?;
    if rows
        .primal()
        .as_slice()
        .iter()
        .any(|v| !num_traits::Float::is_finite(*v))
    {
        // One row's singularity reaches the others in the stacked sweep (a zero cotangent row
        // times an infinite slope is NaN): the rows again one by one, where an operation a row
        // does not depend on gets a zero cotangent and is skipped.
        let mut each = Vec::with_capacity(n);
        for r in 0..n {
            let mut seed = vec![A::elem(0.0); n];
            seed[r] = A::elem(1.0);
            let seed = Batched::single(A::lift(Tensor::from_vec(seed, &out)?));
            let row = tape.vjp(&y, &seed, &[&xv])?.remove(0);
            each.push(row.into_stack_of(1)?);
        }
        rows = A::try_concat(&each.iter().collect::<Vec<_>>(), 0)?;
    }
    rows.try_reshape(&[&out[..], x.shape()].concat())
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
/// See the [module example](crate::tensor::transforms) for Rosenbrock's.
///
/// ```
/// use perturb::tensor::{hessian, Array, Tensor};
/// // sum(x^3) has Hessian diag(6x).
/// let h = hessian(|x| Ok(x.pow_scalar(3.0).sum_all()), &Tensor::vector(&[1.0_f64, 2.0])).unwrap();
/// assert_eq!(h.to_vec(), vec![6.0, 0.0, 0.0, 12.0]);
/// ```
pub fn hessian<A, F>(f: F, x: &A) -> Result<A, Error>
where
    A: Array,
    F: for<'t> Fn(
        &TensorVar<'t, DualTensor<Batched<A>>>,
    ) -> Result<TensorVar<'t, DualTensor<Batched<A>>>, Error>,
{
    jacfwd(|x| grad(&f, x), x)
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
/// ```
/// use perturb::tensor::{hvp, Array, Tensor};
/// // sum(x^3): H v = 6 x v.
/// let x = Tensor::vector(&[1.0_f64, 2.0]);
/// let hv = hvp(|x| Ok(x.pow_scalar(3.0).sum_all()), &x, &Tensor::vector(&[1.0, 10.0])).unwrap();
/// assert_eq!(hv.to_vec(), vec![6.0, 120.0]);
/// ```
pub fn hvp<A, F>(f: F, x: &A, v: &A) -> Result<A, Error>
where
    A: Array + 'static,
    F: for<'t> FnOnce(&TensorVar<'t, Deferred<A>>) -> Result<TensorVar<'t, Deferred<A>>, Error>,
{
    if x.shape() != v.shape() {
        return Err(Error::ShapeMismatch {
            op: "hvp",
            lhs: x.shape().to_vec(),
            rhs: v.shape().to_vec(),
        });
    }
    let tape = TensorTape::keeping_values();
    let xv = tape.var(Deferred::new(x.clone()));
    let y = f(&xv)?;
    tape.hessian_vector(&y, &xv, &Deferred::new(v.clone()))?
        .value()
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
