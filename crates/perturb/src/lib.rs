//! # perturb
//!
//! Automatic differentiation for Rust: "if I perturb x by h, how does the output change?",
//! answered exactly, for numeric code you already have.
//!
//! - **Forward mode** ([`forward`]): [`Dual`] numbers carry a tangent with each value; [`DualN`]
//!   and [`DualVec`] carry many, so one pass gives every partial derivative.
//! - **Reverse mode** ([`reverse`]): a [`Tape`] records each operation on [`Var`]s with its local
//!   partial derivatives; one backward sweep gives the gradient with respect to every input.
//! - **Generic code**: every number type implements [`num_traits::Float`] (through [`Scalar`]),
//!   so `fn f<T: Float>(x: &[T]) -> T` is differentiated unchanged, in either mode, nested to any
//!   order (`Dual<Dual<f64>>`, `Var<Dual<f64>>`, `Dual<Var<f64>>`, ...).
//! - **One place per operation** ([`rules`]): each elementary function is a value and its local
//!   partials, written in differentiable operations; your own operations are defined the same
//!   way ([`UnaryOp`], [`BinaryOp`]).
//! - **Functional API** ([`functional`]): [`derivative`], [`gradient`], [`gradient_forward`],
//!   [`jacobian`], [`hessian`], [`hvp`].
//! - **Tensors** ([`tensor`]): n-dimensional `f32`/`f64` arrays with broadcasting, matrix
//!   products and reverse mode; each operation's VJP is written in tensor operations, so tapes
//!   nest for second order.
//!
//! ```
//! use num_traits::Float;
//!
//! // The lecture's loss, written once for any float type.
//! fn loss<T: Float>(w: &[T], x: &[T]) -> T {
//!     let z = w.iter().zip(x).fold(T::zero(), |acc, (&wi, &xi)| acc + wi * xi);
//!     (T::one() + (-z).exp()).ln() // -log sigmoid(z)
//! }
//!
//! let w = [0.5, -1.0, 2.0];
//! let x = [1.0_f64, 2.0, 0.25];
//! let (value, grad) = perturb::gradient(|x| loss(&w.map(perturb::Var::constant), x), &x);
//! // dL/dx = -(1 - sigmoid(z)) w with z = w . x = -1
//! let s = 1.0 / (1.0 + 1.0_f64.exp());
//! assert!((value + s.ln()).abs() < 1e-15);
//! for (g, wi) in grad.iter().zip(w) {
//!     assert!((g + (1.0 - s) * wi).abs() < 1e-15);
//! }
//! ```
//!
//! ## Features
//!
//! Both are off by default; docs.rs documents the crate with both on.
//!
//! - **`ndarray`**: conversions between [`tensor::Tensor`] and `ndarray` 0.16 arrays: any array
//!   or view, of any dimension and memory layout, into a tensor (`Tensor::from(array.view())`),
//!   and a tensor into an `ArrayD` (`From`) or an `Array1`/`Array2` (`TryFrom`, checking the
//!   number of axes).
//! - **`svg`**: `explain::dot_to_svg`, which lays out the DOT graphs of
//!   [`Trace::to_dot`](explain::Trace::to_dot) and
//!   [`TensorTape::to_dot`](tensor::TensorTape::to_dot) as an SVG picture, in pure Rust (with
//!   `layout-rs`).

#![deny(missing_docs)]

pub mod debug;
pub mod error;
pub mod explain;
pub mod forward;
pub mod functional;
mod number;
pub mod prelude;
pub mod reverse;
pub mod rules;
mod scalar;
mod scalar_check;
pub mod tensor;
pub mod tree;

/// The num-traits crate, re-exported so that `perturb::Float` and generic code need no extra
/// dependency.
pub use num_traits;
pub use num_traits::Float;

pub use error::Error;
pub use forward::{Dual, DualN, DualVec, TangentArena};
pub use functional::{
    derivative, gradient, gradient_forward, hessian, hvp, jacobian, Mode, VectorFunction,
};
pub use reverse::{Gradient, Tape, Var};
pub use scalar::{BinaryOp, F64Fn, Scalar, UnaryOp};
pub use scalar_check::{
    check_scalar_fn, ScalarCheckFailure, ScalarCheckOptions, ScalarCheckReport,
};
/// The trait of parameter trees and its derive (same name, two namespaces, as serde's).
pub use tree::Tree;
