//! Linear algebra: the matrix product, and the decompositions and solves built on faer
//! (one file per family, each operation's value beside its derivative rules).

pub(crate) mod backend;
mod cholesky;
mod matmul;
mod triangular;

pub(crate) use backend::Dense;
pub use cholesky::{cholesky, cholesky_solve, try_cholesky, try_cholesky_solve, Cholesky};
pub use matmul::MatMul;
pub use triangular::{triangular_solve, try_triangular_solve, TriangularSolve};
