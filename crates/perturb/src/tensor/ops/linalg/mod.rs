//! Linear algebra: the matrix product, and the decompositions and solves built on faer
//! (one file per family, each operation's value beside its derivative rules).

pub(crate) mod backend;
mod matmul;
pub(crate) mod norm;

pub(crate) use backend::Dense;
pub use matmul::MatMul;
pub use norm::Norm;
