//! The two traits the tensor engine is built on: [`Op`], one operation in one place (its value
//! on plain tensors and its derivative rule), and [`Array`], a tensor perturb can differentiate
//! through (plain, recorded on a tape, nested).

use std::fmt::Debug;

use super::dense::Tensor;
use super::element::Element;
use super::ops;
use crate::error::Error;
use crate::scalar::Scalar;

/// One tensor operation: its value on plain tensors and its vector-Jacobian product.
///
/// The VJP is written with [`Array`] methods, generic over the array type, so it is itself
/// differentiable: run on plain tensors it is first-order reverse mode and costs nothing more;
/// run on tape variables it is recorded, and a second sweep gives second derivatives.
///
/// ```
/// use perturb::tensor::{Array, Element, Op, Tensor, TensorTape};
/// use perturb::Error;
///
/// /// `x^3`, defined by its value and its VJP `ct * 3 x^2`.
/// #[derive(Clone, Debug)]
/// struct Cube;
/// impl Op for Cube {
///     fn name(&self) -> &'static str { "cube" }
///     fn eval<T: Element>(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>, Error> {
///         Ok(x[0].map(|v| v * v * v))
///     }
///     fn vjp<A: Array>(&self, x: &[&A], _out: &A, ct: &A, _needed: &[bool]) -> Result<Vec<Option<A>>, Error> {
///         let three_x2 = x[0].try_mul(x[0])?.scale(A::elem(3.0));
///         Ok(vec![Some(ct.try_mul(&three_x2)?)])
///     }
/// }
///
/// let tape = TensorTape::new();
/// let x = tape.var(Tensor::vector(&[1.0_f64, 2.0]));
/// let y = x.apply_op(&Cube).unwrap().sum_all();
/// let g = tape.gradient(&y, &[&x]).unwrap();
/// assert_eq!(g[0].to_vec(), vec![3.0, 12.0]);
/// ```
pub trait Op: Clone + Debug + 'static {
    /// The name used in error messages and graphs.
    ///
    /// ```
    /// use perturb::tensor::{ops::Exp, Op};
    /// assert_eq!(Exp.name(), "exp");
    /// ```
    fn name(&self) -> &'static str;

    /// The value, computed on plain tensors.
    ///
    /// ```
    /// use perturb::tensor::{ops::Exp, Op, Tensor};
    /// let y = Exp.eval(&[&Tensor::vector(&[0.0_f64])]).unwrap();
    /// assert_eq!(y.to_vec(), vec![1.0]);
    /// ```
    fn eval<T: Element>(&self, inputs: &[&Tensor<T>]) -> Result<Tensor<T>, Error>;

    /// The cotangent of each input given the cotangent of the output (`None`: zero, or an input
    /// that is not differentiable). `needed[i]` says whether input `i`'s cotangent is wanted;
    /// an operation may skip the work for the others.
    ///
    /// ```
    /// use perturb::tensor::{ops::Exp, Op, Tensor};
    /// let x = Tensor::vector(&[0.0_f64]);
    /// let y = Exp.eval(&[&x]).unwrap();
    /// let ct = Exp.vjp(&[&x], &y, &Tensor::vector(&[2.0]), &[true]).unwrap();
    /// assert_eq!(ct[0].as_ref().unwrap().to_vec(), vec![2.0]);
    /// ```
    fn vjp<A: Array>(
        &self,
        inputs: &[&A],
        output: &A,
        cotangent: &A,
        needed: &[bool],
    ) -> Result<Vec<Option<A>>, Error>;
}

/// Unwraps an operation's result, or panics with its error at the caller's line.
#[track_caller]
pub(crate) fn or_panic<A>(result: Result<A, Error>) -> A {
    match result {
        Ok(a) => a,
        Err(e) => panic!("{e}"),
    }
}

macro_rules! unary_methods {
    ($( $(#[$doc:meta])* $method:ident => $op:expr; )*) => {$(
        $(#[$doc])*
        #[track_caller]
        fn $method(&self) -> Self {
            or_panic(Self::apply(&$op, &[self]))
        }
    )*};
}

macro_rules! binary_methods {
    ($( $(#[$doc:meta])* $method:ident, $try_method:ident => $op:expr; )*) => {$(
        $(#[$doc])*
        ///
        /// An error (the `try_` form) or a panic (the plain form) if the shapes do not broadcast.
        fn $try_method(&self, rhs: &Self) -> Result<Self, Error> {
            Self::apply(&$op, &[self, rhs])
        }
        $(#[$doc])*
        #[track_caller]
        fn $method(&self, rhs: &Self) -> Self {
            or_panic(self.$try_method(rhs))
        }
    )*};
}

/// A tensor perturb can differentiate through: a plain [`Tensor`], a
/// [`TensorVar`](super::TensorVar) recorded on a tape, or a nesting of them.
///
/// Every operation goes through [`apply`](Array::apply), so each array type says once how an
/// operation is run and (for tape variables) recorded. Code written against `A: Array` runs on
/// all of them.
///
/// ```
/// use perturb::tensor::{Array, Tensor, TensorTape};
///
/// // The lecture's linear regression loss, written once: L = sum((y - X w)^2) / N.
/// fn mse<A: Array>(x: &A, w: &A, y: &A) -> A {
///     let n = x.shape()[0] as f64;
///     y.sub(&x.matmul(w)).square().sum_all().scale(A::elem(1.0 / n))
/// }
///
/// let x = Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[3, 2]).unwrap();
/// let y = Tensor::from_vec(vec![1.0, 0.0, 2.0], &[3, 1]).unwrap();
/// let w = Tensor::from_vec(vec![0.5, -0.25], &[2, 1]).unwrap();
/// let plain = mse(&x, &w, &y);
///
/// let tape = TensorTape::new();
/// let wv = tape.var(w.clone());
/// let loss = mse(&tape.constant(x.clone()), &wv, &tape.constant(y.clone()));
/// assert_eq!(loss.value().to_vec(), plain.to_vec());
/// let grad = &tape.gradient(&loss, &[&wv]).unwrap()[0];
/// // dL/dw = -(2/N) X^T (y - X w)
/// let expected = x.transpose().matmul(&y.sub(&x.matmul(&w))).scale(-2.0 / 3.0);
/// assert!(grad.all_close(&expected, 1e-14));
/// ```
pub trait Array: Clone + Debug + Sized {
    /// The element type at the bottom: `f32` or `f64`.
    type Elem: Element;

    /// Runs an operation on arrays of this type (and records it, for tape variables).
    ///
    /// ```
    /// use perturb::tensor::{ops::Exp, Array, Tensor};
    /// let y = Tensor::apply(&Exp, &[&Tensor::vector(&[0.0_f64])]).unwrap();
    /// assert_eq!(y.to_vec(), vec![1.0]);
    /// ```
    fn apply<O: Op>(op: &O, inputs: &[&Self]) -> Result<Self, Error>;

    /// A constant of this array type: not recorded, derivative zero.
    ///
    /// ```
    /// use perturb::tensor::{Array, Tensor};
    /// let c = <Tensor<f64> as Array>::lift(Tensor::vector(&[1.0]));
    /// assert_eq!(c.shape(), &[1]);
    /// ```
    fn lift(value: Tensor<Self::Elem>) -> Self;

    /// The plain value at the bottom of any nesting.
    ///
    /// ```
    /// use perturb::tensor::{Array, Tensor};
    /// assert_eq!(Tensor::vector(&[2.0_f64]).primal().to_vec(), vec![2.0]);
    /// ```
    fn primal(&self) -> Tensor<Self::Elem>;

    /// The shape.
    ///
    /// ```
    /// use perturb::tensor::{Array, Tensor};
    /// assert_eq!(Array::shape(&Tensor::<f64>::zeros(&[2, 3])), &[2, 3]);
    /// ```
    fn shape(&self) -> &[usize];

    /// Converts an `f64` to the element type (for constants in generic code).
    ///
    /// ```
    /// use perturb::tensor::{Array, Tensor};
    /// assert_eq!(<Tensor<f32> as Array>::elem(0.5), 0.5_f32);
    /// ```
    fn elem(x: f64) -> Self::Elem {
        <Self::Elem as num_traits::FromPrimitive>::from_f64(x)
            .unwrap_or_else(num_traits::Float::nan)
    }

    /// Applies a user-defined [`Op`]; see its example.
    ///
    /// ```
    /// use perturb::tensor::{ops::Exp, Array, Tensor};
    /// let y = Tensor::vector(&[0.0_f64]).apply_op(&Exp).unwrap();
    /// assert_eq!(y.to_vec(), vec![1.0]);
    /// ```
    fn apply_op<O: Op>(&self, op: &O) -> Result<Self, Error> {
        Self::apply(op, &[self])
    }

    // ---- Arithmetic with broadcasting ------------------------------------------------------
    binary_methods! {
        /// Element-wise `self + rhs`, with numpy broadcasting.
        ///
        /// ```
        /// use perturb::tensor::{Array, Tensor};
        /// let a = Tensor::from_vec(vec![1.0_f64, 2.0, 3.0, 4.0], &[2, 2]).unwrap();
        /// let b = Tensor::vector(&[10.0, 20.0]);
        /// assert_eq!(a.add(&b).to_vec(), vec![11.0, 22.0, 13.0, 24.0]);
        /// assert!(a.try_add(&Tensor::vector(&[1.0, 2.0, 3.0])).is_err());
        /// ```
        add, try_add => ops::Add;
        /// Element-wise `self - rhs`, with numpy broadcasting.
        ///
        /// ```
        /// use perturb::tensor::{Array, Tensor};
        /// assert_eq!(Tensor::vector(&[3.0_f64]).sub(&Tensor::vector(&[1.0])).to_vec(), vec![2.0]);
        /// ```
        sub, try_sub => ops::Sub;
        /// Element-wise `self * rhs`, with numpy broadcasting.
        ///
        /// ```
        /// use perturb::tensor::{Array, Tensor};
        /// assert_eq!(Tensor::vector(&[3.0_f64]).mul(&Tensor::vector(&[2.0])).to_vec(), vec![6.0]);
        /// ```
        mul, try_mul => ops::Mul;
        /// Element-wise `self / rhs`, with numpy broadcasting.
        ///
        /// ```
        /// use perturb::tensor::{Array, Tensor};
        /// assert_eq!(Tensor::vector(&[3.0_f64]).div(&Tensor::vector(&[2.0])).to_vec(), vec![1.5]);
        /// ```
        div, try_div => ops::Div;
    }

    /// `c * self` for a constant `c`.
    ///
    /// ```
    /// use perturb::tensor::{Array, Tensor};
    /// assert_eq!(Tensor::vector(&[3.0_f64]).scale(2.0).to_vec(), vec![6.0]);
    /// ```
    fn scale(&self, c: Self::Elem) -> Self {
        or_panic(Self::apply(&ops::Scale(c.to_f64_value()), &[self]))
    }

    /// `self + c` for a constant `c`.
    ///
    /// ```
    /// use perturb::tensor::{Array, Tensor};
    /// assert_eq!(Tensor::vector(&[3.0_f64]).add_scalar(2.0).to_vec(), vec![5.0]);
    /// ```
    fn add_scalar(&self, c: Self::Elem) -> Self {
        or_panic(Self::apply(&ops::AddScalar(c.to_f64_value()), &[self]))
    }

    // ---- Element-wise functions -----------------------------------------------------------
    unary_methods! {
        /// `-x`.
        ///
        /// ```
        /// use perturb::tensor::{Array, Tensor};
        /// assert_eq!(Tensor::vector(&[1.0_f64]).neg().to_vec(), vec![-1.0]);
        /// ```
        neg => ops::Neg;
        /// `exp(x)`.
        ///
        /// ```
        /// use perturb::tensor::{Array, Tensor};
        /// assert_eq!(Tensor::vector(&[0.0_f64]).exp().to_vec(), vec![1.0]);
        /// ```
        exp => ops::Exp;
        /// `ln(x)`.
        ///
        /// ```
        /// use perturb::tensor::{Array, Tensor};
        /// assert_eq!(Tensor::vector(&[1.0_f64]).ln().to_vec(), vec![0.0]);
        /// ```
        ln => ops::Ln;
        /// `x^2`.
        ///
        /// ```
        /// use perturb::tensor::{Array, Tensor};
        /// assert_eq!(Tensor::vector(&[3.0_f64]).square().to_vec(), vec![9.0]);
        /// ```
        square => ops::Square;
        /// The logistic sigmoid, stable for large `|x|`.
        ///
        /// ```
        /// use perturb::tensor::{Array, Tensor};
        /// assert_eq!(Tensor::vector(&[0.0_f64]).sigmoid().to_vec(), vec![0.5]);
        /// ```
        sigmoid => ops::Sigmoid;
    }
    // ---- Element-wise functions: more (helper A) ----
    // ---- end of element-wise functions ----

    // ---- Comparisons, selection, clamp, maximum / minimum (helper A) ----
    // ---- end of comparisons ----

    // ---- Reductions -----------------------------------------------------------------------
    /// The sum of all elements, as a 0-dimensional array.
    ///
    /// ```
    /// use perturb::tensor::{Array, Tensor};
    /// assert_eq!(Tensor::vector(&[1.0_f64, 2.0]).sum_all().to_vec(), vec![3.0]);
    /// ```
    fn sum_all(&self) -> Self {
        or_panic(Self::apply(&ops::SumTo(Vec::new()), &[self]))
    }

    /// Sums down to `shape`, a shape this array's shape is a broadcast of (the adjoint of
    /// [`broadcast_to`](Array::broadcast_to)).
    ///
    /// ```
    /// use perturb::tensor::{Array, Tensor};
    /// let a = Tensor::<f64>::ones(&[2, 3]);
    /// assert_eq!(a.try_sum_to(&[1, 3]).unwrap().to_vec(), vec![2.0; 3]);
    /// assert!(a.try_sum_to(&[2, 2]).is_err());
    /// ```
    fn try_sum_to(&self, shape: &[usize]) -> Result<Self, Error> {
        Self::apply(&ops::SumTo(shape.to_vec()), &[self])
    }

    /// Copies along axes of length 1 (and new leading axes) to reach `shape`.
    ///
    /// ```
    /// use perturb::tensor::{Array, Tensor};
    /// let a = Tensor::vector(&[1.0_f64, 2.0]);
    /// assert_eq!(a.try_broadcast_to(&[2, 2]).unwrap().to_vec(), vec![1.0, 2.0, 1.0, 2.0]);
    /// ```
    fn try_broadcast_to(&self, shape: &[usize]) -> Result<Self, Error> {
        Self::apply(&ops::BroadcastTo(shape.to_vec()), &[self])
    }

    // ---- Reductions: over axes, softmax (helper B) ----
    // ---- end of reductions ----

    // ---- Shape ----------------------------------------------------------------------------
    /// The same elements in a new shape of the same size.
    ///
    /// ```
    /// use perturb::tensor::{Array, Tensor};
    /// let a = Tensor::<f64>::arange(6);
    /// assert_eq!(Array::try_reshape(&a, &[2, 3]).unwrap().shape(), &[2, 3]);
    /// ```
    fn try_reshape(&self, shape: &[usize]) -> Result<Self, Error> {
        Self::apply(&ops::Reshape(shape.to_vec()), &[self])
    }

    /// Reorders the axes: axis `i` of the result is axis `perm[i]` of `self`.
    ///
    /// ```
    /// use perturb::tensor::{Array, Tensor};
    /// let a = Tensor::<f64>::zeros(&[2, 3, 4]);
    /// assert_eq!(a.try_permute(&[2, 0, 1]).unwrap().shape(), &[4, 2, 3]);
    /// assert!(a.try_permute(&[0, 0, 1]).is_err());
    /// ```
    fn try_permute(&self, perm: &[usize]) -> Result<Self, Error> {
        Self::apply(&ops::Permute(perm.to_vec()), &[self])
    }

    /// Swaps the last two axes (the matrix transpose).
    ///
    /// ```
    /// use perturb::tensor::{Array, Tensor};
    /// let a = Tensor::from_vec(vec![1.0_f64, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]).unwrap();
    /// assert_eq!(a.transpose().to_vec(), vec![1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
    /// ```
    #[track_caller]
    fn transpose(&self) -> Self {
        let n = self.shape().len();
        let mut perm: Vec<usize> = (0..n).collect();
        if n >= 2 {
            perm.swap(n - 1, n - 2);
        }
        or_panic(self.try_permute(&perm))
    }

    // ---- Shape: more (helper B) ----
    // ---- end of shape ----

    // ---- Indexing and joining (helper B) ----
    // ---- end of indexing ----

    // ---- Linear algebra -------------------------------------------------------------------
    /// The matrix product: `(m, k) @ (k, n)`, matrix-vector `(m, k) @ (k)`, and batched
    /// `(..., m, k) @ (..., k, n)` with broadcasting over the leading axes.
    ///
    /// ```
    /// use perturb::tensor::{Array, Tensor};
    /// let a = Tensor::from_vec(vec![1.0_f64, 2.0, 3.0, 4.0], &[2, 2]).unwrap();
    /// let x = Tensor::vector(&[1.0, 1.0]);
    /// assert_eq!(a.matmul(&x).to_vec(), vec![3.0, 7.0]);
    /// assert!(a.try_matmul(&Tensor::vector(&[1.0, 2.0, 3.0])).is_err());
    /// ```
    fn try_matmul(&self, rhs: &Self) -> Result<Self, Error> {
        Self::apply(&ops::MatMul, &[self, rhs])
    }

    /// See [`try_matmul`](Array::try_matmul); panics where it returns an error.
    ///
    /// ```
    /// use perturb::tensor::{Array, Tensor};
    /// let a = Tensor::<f64>::ones(&[3, 2]);
    /// assert_eq!(a.matmul(&Tensor::ones(&[2, 4])).shape(), &[3, 4]);
    /// ```
    #[track_caller]
    fn matmul(&self, rhs: &Self) -> Self {
        or_panic(self.try_matmul(rhs))
    }
}

impl<T: Element> Array for Tensor<T> {
    type Elem = T;

    #[inline]
    fn apply<O: Op>(op: &O, inputs: &[&Self]) -> Result<Self, Error> {
        op.eval(inputs)
    }

    fn lift(value: Tensor<T>) -> Self {
        value
    }

    fn primal(&self) -> Tensor<T> {
        self.clone()
    }

    fn shape(&self) -> &[usize] {
        Tensor::shape(self)
    }
}
