//! Linear algebra: the matrix product, and the decompositions and solves built on faer
//! (one file per family, each operation's value beside its derivative rules).

mod matmul;
pub(crate) mod norm;

pub use matmul::MatMul;
pub use norm::Norm;
