//! Nothing here: see benches/gemm.rs.
