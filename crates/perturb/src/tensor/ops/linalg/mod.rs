//! Linear algebra: the matrix product, and the decompositions and solves built on faer
//! (one file per family, each operation's value beside its derivative rules).

pub(crate) mod backend;
pub(crate) mod cholesky;
pub(crate) mod eigh;
pub(crate) mod lu;
mod matmul;
pub(crate) mod norm;
pub(crate) mod qr;
pub(crate) mod triangular;

pub(crate) use backend::Dense;
pub use cholesky::{cholesky, cholesky_solve, try_cholesky, try_cholesky_solve, Cholesky};
pub use eigh::Eigh;
pub use lu::{Det, LogAbsDet, Solve};
pub use matmul::MatMul;
pub use norm::Norm;
pub use qr::Qr;
pub use triangular::{triangular_solve, try_triangular_solve, TriangularSolve};
