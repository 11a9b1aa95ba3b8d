//! Differentiable linear algebra, batched over leading axes as in JAX (`jnp.linalg`): a
//! `[.., n, n]` stack is a stack of problems. Each function is an [`Op`](super::Op) (or a
//! composition of them) with its value, JVP, VJP and batching rule, so forward mode, reverse
//! mode and every transform work through it at any order. The decompositions run on faer.
//!
//! Each fallible function has a `try_` form that returns the [`Error`](crate::Error) and a
//! plain form that panics with it.

mod basic;
mod einsum;

pub use super::ops::linalg::{
    cholesky, cholesky_solve, triangular_solve, try_cholesky, try_cholesky_solve,
    try_triangular_solve,
};
