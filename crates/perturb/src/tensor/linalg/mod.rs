//! Differentiable linear algebra, batched over leading axes as in JAX (`jnp.linalg`): a
//! `[.., n, n]` stack is a stack of problems. Each function is an [`Op`](super::Op) (or a
//! composition of them) with its value, JVP, VJP and batching rule, so forward mode, reverse
//! mode and every transform work through it at any order. The decompositions run on faer.
//!
//! Each fallible function has a `try_` form that returns the [`Error`](crate::Error) and a
//! plain form that panics with it.
//!
//! - [`diagonal`], [`trace`], [`diag`], [`eye`], [`outer`]: the small matrix functions.
//! - [`vector_norm`] (the 2-norm over the last axis) and [`matrix_norm`] (the Frobenius norm
//!   over the last two), with the subgradient 0 at 0.
//! - [`einsum`]: Einstein summation over one or two operands.
//! - [`solve`], [`inv`], [`det`], [`slogdet`]: general square matrices, by LU.
//! - [`cholesky`], [`cholesky_solve`], [`triangular_solve`]: symmetric positive definite and
//!   triangular matrices.
//! - [`eigh`]: the eigendecomposition of symmetric matrices; [`qr`]: the reduced QR
//!   decomposition.

mod basic;
mod einsum;

pub use super::ops::linalg::eigh::{eigh, try_eigh};
pub use super::ops::linalg::lu::{
    det, inv, slogdet, solve, try_det, try_inv, try_slogdet, try_solve,
};
pub use super::ops::linalg::norm::{matrix_norm, try_matrix_norm, try_vector_norm, vector_norm};
pub use super::ops::linalg::qr::{qr, try_qr};
pub use super::ops::linalg::{
    cholesky, cholesky_solve, triangular_solve, try_cholesky, try_cholesky_solve,
    try_triangular_solve,
};
pub use basic::{
    diag, diagonal, eye, outer, trace, try_diag, try_diagonal, try_eye, try_outer, try_trace,
};
pub use einsum::{einsum, try_einsum};
