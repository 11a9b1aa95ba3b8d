//! Reverse mode: a [`Tape`] records each operation on [`Var`]s with its local partial
//! derivatives; one backward sweep then gives the sensitivity of an output to every input.
//!
//! ```
//! let tape = perturb::Tape::new();
//! let x = tape.var(2.0_f64);
//! let y = x * x * x;
//! assert_eq!(tape.gradient(y).unwrap()[x], 12.0);
//! ```

mod spare;
mod tape;

pub use tape::{Gradient, Tape, Var};
