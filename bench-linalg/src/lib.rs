//! Nothing here: see benches/decomp.rs.
