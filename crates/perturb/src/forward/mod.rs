//! Forward mode: numbers that carry their tangents (directional derivatives) along with their
//! values, pushing a perturbation of the inputs through the computation.
//!
//! - [`Dual`]: one tangent.
//! - [`DualN`]: `N` tangents, a count fixed at compile time, on the stack.
//! - [`DualVec`]: a run-time count of tangents, stored in a [`TangentArena`].
//!
//! ```
//! use perturb::{Dual, DualN};
//! let x = Dual::variable(1.0_f64);
//! assert_eq!((x * x).tangent(), 2.0);
//! let [a, b] = DualN::<f64, 2>::variables([1.0, 2.0]);
//! assert_eq!((a * b).tangents(), &[2.0, 1.0]);
//! ```

mod dual;
mod dual_n;
mod dual_vec;

pub use dual::Dual;
pub use dual_n::DualN;
pub use dual_vec::{DualVec, TangentArena};
