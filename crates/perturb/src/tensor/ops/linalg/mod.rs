//! Linear algebra: the matrix product, and the decompositions and solves built on faer
//! (one file per family, each operation's value beside its derivative rules).

mod matmul;

pub use matmul::MatMul;
