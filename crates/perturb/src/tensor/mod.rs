//! Tensors with forward and reverse mode: the vector half of the lecture.
//!
//! - [`Tensor`]: an n-dimensional `f32`/`f64` array with shared storage, its buffers reused
//!   through a per-thread pool ([`buffers`]).
//! - [`Op`]: one operation in one place: its value, its Jacobian-vector product, its
//!   vector-Jacobian product and its batching rule ([`ops`] holds them all).
//! - [`Array`]: what every tensor type implements, so code is written once for plain tensors,
//!   dual tensors and tape variables.
//! - [`TensorTape`], [`TensorVar`]: reverse mode, a flat list swept by a loop.
//! - [`DualTensor`]: forward mode, the tangent carried beside the value.
//! - [`Batched`]: a stack of values that every operation maps over by its batching rule
//!   ([`Op::batch`]): several tangents or cotangents in one pass.
//! - Transforms ([`jvp`], [`vjp`], [`grad`], [`jacfwd`], [`jacrev`], [`jacobian`], [`hessian`],
//!   [`hvp`], and the composable [`TensorFn`]s [`Grad`], [`JacFwd`], [`JacRev`], [`Hessian`]),
//!   and [`check_grads`] to test derivatives the way perturb tests its own; each takes a
//!   [tree](crate::tree) of arrays (a model) where it takes an array, and [`ravel`] turns a
//!   tree into one vector.
//!
//! ```
//! use perturb::tensor::{Array, Tensor, TensorTape};
//!
//! // The lecture's linear regression: a = X w, b = y - a, c = b^2, g = sum(c), L = g / N.
//! let x = Tensor::from_vec(vec![1.0, 0.0, 1.0, 1.0, 1.0, 2.0], &[3, 2]).unwrap();
//! let y = Tensor::from_vec(vec![1.0, 2.0, 2.5], &[3, 1]).unwrap();
//! let tape = TensorTape::new();
//! let w = tape.var(Tensor::zeros(&[2, 1]));
//! let a = tape.constant(x.clone()).matmul(&w);
//! let b = tape.constant(y.clone()).sub(&a);
//! let c = b.square();
//! let g = c.sum_all();
//! let loss = g.scale(1.0 / 3.0);
//! let grad = &tape.gradient(&loss, &[&w]).unwrap()[0];
//! // -(2/N) X^T (y - X w) at w = 0 is -(2/3) X^T y = -(2/3) [5.5, 7.0]
//! assert!(grad.all_close(&Tensor::from_vec(vec![-11.0 / 3.0, -14.0 / 3.0], &[2, 1]).unwrap(), 1e-15));
//! ```

mod anomaly;
mod array;
mod batched;
pub mod buffers;
mod check;
pub mod conv;
#[cfg(feature = "ndarray")]
mod convert;
mod cotangent;
mod deferred;
mod dense;
mod dual;
mod element;
pub mod fusion;
pub(crate) mod kernels;
pub mod linalg;
mod op;
mod operators;
pub mod ops;
mod ravel;
mod tape;
pub mod transforms;
mod vmath;

pub use array::Array;
pub use batched::Batched;
pub use check::{check_grads, CheckOptions, Comparison, GradReport, OpComparison};
pub use cotangent::Cotangent;
pub use deferred::Deferred;
pub use dense::Tensor;
pub use dual::DualTensor;
pub use element::Element;
pub use op::{Op, VjpReads};
pub use operators::ArrayOps;
pub use ops::Indices;
pub use ravel::{ravel, unravel};
pub use tape::{TensorTape, TensorVar};
pub use transforms::{
    grad, grad_n, grad_with_aux, hessian, hvp, jacfwd, jacobian, jacrev, jvp, jvp_n,
    value_and_grad, value_and_grad_n, value_and_grad_with_aux, vjp, vjp_n, Grad, Hessian, JacFwd,
    JacRev, Jacobian, TensorFn, TreeFn, TreeFnWithAux,
};
