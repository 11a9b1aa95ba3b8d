//! Derivatives of functions written generically: `derivative`, `gradient`, `jacobian`,
//! `hessian` and `hvp`.
//!
//! Rust closures cannot be generic, so each function here takes a closure at the number type it
//! needs; a function written once as `fn f<T: Float>(x: &[T]) -> T` is passed as `|x| f(x)`.
//! [`jacobian`] may run either mode, so it takes a [`VectorFunction`] instead.
//!
//! ```
//! use num_traits::Float;
//!
//! fn rosenbrock<T: Float>(x: &[T]) -> T {
//!     let (one, hundred) = (T::one(), T::from(100.0).unwrap());
//!     x.windows(2)
//!         .map(|w| hundred * (w[1] - w[0] * w[0]).powi(2) + (one - w[0]).powi(2))
//!         .fold(T::zero(), |a, b| a + b)
//! }
//!
//! let x = [1.0_f64, 1.0, 1.0];
//! let (value, grad) = perturb::gradient(|x| rosenbrock(x), &x);
//! assert_eq!((value, grad), (0.0, vec![0.0, 0.0, 0.0]));
//! let h = perturb::hessian(|x| rosenbrock(x), &x);
//! assert_eq!(h[0], vec![802.0, -400.0, 0.0]);
//! ```

use crate::error::Error;
use crate::forward::{Dual, DualN, DualVec, TangentArena};
use crate::reverse::{Tape, Var};
use crate::scalar::Scalar;

/// The value and derivative of a function of one variable, by forward mode.
///
/// ```
/// use num_traits::Float;
/// // d/dx log(x^2) = 2/x
/// let (value, slope) = perturb::derivative(|x| (x * x).ln(), 4.0_f64);
/// assert_eq!(value, 16.0_f64.ln());
/// assert_eq!(slope, 0.5);
/// ```
pub fn derivative<T: Scalar>(f: impl FnOnce(Dual<T>) -> Dual<T>, x: T) -> (T, T) {
    let y = f(Dual::variable(x));
    (y.value(), y.tangent())
}

/// The value and gradient of `f: R^n -> R`, by reverse mode: one recording, one backward sweep.
///
/// The tape's buffers are kept for the next call on the same thread (one set, up to 512 MiB,
/// shared with [`hessian`], [`hvp`] and [`jacobian`]), so that repeated calls do not allocate,
/// grow and fault in a fresh tape each time.
///
/// ```
/// let (value, grad) = perturb::gradient(|x| x[0] * x[1] * x[1], &[3.0_f64, 2.0]);
/// assert_eq!(value, 12.0);
/// assert_eq!(grad, vec![4.0, 12.0]);
/// ```
pub fn gradient<T, F>(f: F, x: &[T]) -> (T, Vec<T>)
where
    T: Scalar,
    F: for<'t> FnOnce(&[Var<'t, T>]) -> Var<'t, T>,
{
    let tape = Tape::recycled();
    let result = {
        let xs = tape.vars(x);
        let y = f(&xs);
        (y.value(), gradient_on(&tape, y, &xs))
    };
    tape.recycle();
    result
}

/// The value and gradient of `f: R^n -> R` by forward mode in a single pass, carrying `n`
/// tangents at once: the lecture's `forward_grads`.
///
/// ```
/// let (value, grad) = perturb::gradient_forward(|x| x[0] * x[1] * x[1], &[3.0_f64, 2.0]);
/// assert_eq!((value, grad), (12.0, vec![4.0, 12.0]));
/// ```
pub fn gradient_forward<T, F>(f: F, x: &[T]) -> (T, Vec<T>)
where
    T: Scalar,
    F: for<'a> FnOnce(&[DualVec<'a, T>]) -> DualVec<'a, T>,
{
    let arena = TangentArena::new(x.len());
    let xs = arena.variables(x).unwrap_or_else(|e| unreachable!("{e}"));
    let y = f(&xs);
    let grad = arena.tangents(y).unwrap_or_else(|e| owned_elsewhere(e));
    (y.value(), grad)
}

/// A function `R^n -> R^m` written once for every [`Scalar`], so perturb can run it in forward
/// or reverse mode as it sees fit.
///
/// ```
/// use perturb::{jacobian, Mode, Scalar, VectorFunction};
///
/// struct Square;
/// impl VectorFunction for Square {
///     fn eval<S: Scalar>(&self, x: &[S]) -> Vec<S> {
///         x.iter().map(|&xi| xi * xi).collect()
///     }
/// }
/// let (_, j) = jacobian(&Square, &[1.0_f64, 2.0], Mode::Auto).unwrap();
/// assert_eq!(j, vec![vec![2.0, 0.0], vec![0.0, 4.0]]);
/// ```
pub trait VectorFunction {
    /// Evaluates the function.
    ///
    /// ```
    /// # use perturb::{Scalar, VectorFunction};
    /// # struct Square;
    /// # impl VectorFunction for Square {
    /// #     fn eval<S: Scalar>(&self, x: &[S]) -> Vec<S> { x.iter().map(|&xi| xi * xi).collect() }
    /// # }
    /// assert_eq!(Square.eval(&[3.0_f64]), vec![9.0]);
    /// ```
    fn eval<S: Scalar>(&self, x: &[S]) -> Vec<S>;
}

/// Which mode [`jacobian`] runs.
///
/// ```
/// assert_eq!(perturb::Mode::default(), perturb::Mode::Auto);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Forward mode when there are no more inputs than outputs, reverse mode otherwise.
    #[default]
    Auto,
    /// Forward mode: one pass per 8 inputs, each carrying 8 tangents.
    Forward,
    /// Reverse mode: one recording, one backward sweep per output.
    Reverse,
}

/// Tangents carried per forward pass in [`jacobian`].
const CHUNK: usize = 8;

/// The value `f(x)` and the Jacobian `J[i][j] = d f_i / d x_j` (one row per output).
///
/// [`Mode::Auto`] runs forward mode when `n <= m` and reverse mode otherwise; the result is the
/// same up to rounding. An error if `f` returns outputs of different lengths on different passes.
///
/// ```
/// use perturb::{jacobian, Mode, Scalar, VectorFunction};
///
/// // y = A x: the Jacobian is A.
/// struct Linear([[f64; 3]; 2]);
/// impl VectorFunction for Linear {
///     fn eval<S: Scalar>(&self, x: &[S]) -> Vec<S> {
///         self.0.iter()
///             .map(|row| row.iter().zip(x).map(|(&a, &xj)| xj * S::from(a).unwrap()).sum())
///             .collect()
///     }
/// }
/// let a = Linear([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]);
/// for mode in [Mode::Forward, Mode::Reverse, Mode::Auto] {
///     let (_, j) = jacobian(&a, &[0.1, 0.2, 0.3], mode).unwrap();
///     assert_eq!(j, vec![vec![1.0, 2.0, 3.0], vec![4.0, 5.0, 6.0]]);
/// }
/// ```
pub fn jacobian<T: Scalar>(
    f: &impl VectorFunction,
    x: &[T],
    mode: Mode,
) -> Result<(Vec<T>, Vec<Vec<T>>), Error> {
    let forward = match mode {
        Mode::Forward => true,
        Mode::Reverse => false,
        Mode::Auto => x.len() <= f.eval(x).len(),
    };
    if forward {
        jacobian_forward(f, x)
    } else {
        jacobian_reverse(f, x)
    }
}

fn jacobian_forward<T: Scalar>(
    f: &impl VectorFunction,
    x: &[T],
) -> Result<(Vec<T>, Vec<Vec<T>>), Error> {
    let n = x.len();
    let mut value: Option<Vec<T>> = None;
    let mut rows: Vec<Vec<T>> = Vec::new();
    // At least one pass, so that a function of no inputs still reports its value.
    for start in (0..n.max(1)).step_by(CHUNK) {
        let xs: Vec<DualN<T, CHUNK>> = x
            .iter()
            .enumerate()
            .map(|(j, &xj)| {
                let mut t = [T::zero(); CHUNK];
                if let Some(slot) = j.checked_sub(start).filter(|&k| k < CHUNK) {
                    t[slot] = T::one();
                }
                DualN::new(xj, t)
            })
            .collect();
        let ys = f.eval(&xs);
        let m = value
            .get_or_insert_with(|| ys.iter().map(|y| y.value()).collect())
            .len();
        if ys.len() != m {
            return Err(Error::LengthMismatch {
                op: "jacobian",
                what: "the function's output",
                expected: m,
                found: ys.len(),
            });
        }
        rows.resize_with(m, || vec![T::zero(); n]);
        let width = CHUNK.min(n.saturating_sub(start));
        for (row, y) in rows.iter_mut().zip(&ys) {
            row[start..start + width].copy_from_slice(&y.tangents()[..width]);
        }
    }
    Ok((value.unwrap_or_default(), rows))
}

fn jacobian_reverse<T: Scalar>(
    f: &impl VectorFunction,
    x: &[T],
) -> Result<(Vec<T>, Vec<Vec<T>>), Error> {
    let tape = Tape::recycled();
    let result = {
        let xs = tape.vars(x);
        let ys = f.eval(&xs);
        let rows = ys.iter().map(|&y| gradient_on(&tape, y, &xs)).collect();
        (ys.iter().map(|y| y.value()).collect(), rows)
    };
    tape.recycle();
    Ok(result)
}

/// The Hessian of `f: R^n -> R`, `H[i][j] = d^2 f / dx_i dx_j`, by forward over reverse mode:
/// row `i` is the Hessian-vector product with the `i`-th unit vector ([`hvp`]), on one tape
/// reused for all `n` rows.
///
/// ```
/// // f = x^2 y + y^3: H = [[2y, 2x], [2x, 6y]]
/// let h = perturb::hessian(|v| v[0] * v[0] * v[1] + v[1] * v[1] * v[1], &[1.0_f64, 2.0]);
/// assert_eq!(h, vec![vec![4.0, 2.0], vec![2.0, 12.0]]);
/// ```
pub fn hessian<T, F>(f: F, x: &[T]) -> Vec<Vec<T>>
where
    T: Scalar,
    F: for<'t> Fn(&[Var<'t, Dual<T>>]) -> Var<'t, Dual<T>>,
{
    let mut tape = Tape::recycled();
    let mut direction = vec![T::zero(); x.len()];
    let mut rows = Vec::with_capacity(x.len());
    for i in 0..x.len() {
        direction[i] = T::one();
        rows.push(hvp_on(&tape, &f, x, &direction));
        direction[i] = T::zero();
        tape.clear();
    }
    tape.recycle();
    rows
}

/// The Hessian-vector product `H(x) v` of `f: R^n -> R` by forward over reverse mode: the tape
/// records `f` on dual numbers seeded with `v`, so the backward sweep's tangents are `H v`. It
/// costs a few gradients, never the whole Hessian.
///
/// ```
/// // f = x^2 y + y^3 at (1, 2): H = [[4, 2], [2, 12]], H (1, 1) = (6, 14)
/// let hv = perturb::hvp(|v| v[0] * v[0] * v[1] + v[1] * v[1] * v[1], &[1.0_f64, 2.0], &[1.0, 1.0]);
/// assert_eq!(hv.unwrap(), vec![6.0, 14.0]);
/// ```
pub fn hvp<T, F>(f: F, x: &[T], v: &[T]) -> Result<Vec<T>, Error>
where
    T: Scalar,
    F: for<'t> Fn(&[Var<'t, Dual<T>>]) -> Var<'t, Dual<T>>,
{
    if v.len() != x.len() {
        return Err(Error::LengthMismatch {
            op: "hvp",
            what: "the direction v",
            expected: x.len(),
            found: v.len(),
        });
    }
    let tape = Tape::recycled();
    let hv = hvp_on(&tape, &f, x, v);
    tape.recycle();
    Ok(hv)
}

fn hvp_on<'t, T, F>(tape: &'t Tape<Dual<T>>, f: &F, x: &[T], v: &[T]) -> Vec<T>
where
    T: Scalar,
    F: for<'s> Fn(&[Var<'s, Dual<T>>]) -> Var<'s, Dual<T>>,
{
    let xs: Vec<_> = x
        .iter()
        .zip(v)
        .map(|(&xi, &vi)| tape.var(Dual::new(xi, vi)))
        .collect();
    let y = f(&xs);
    gradient_on(tape, y, &xs)
        .into_iter()
        .map(Dual::tangent)
        .collect()
}

/// The gradient of `y` with respect to `xs`, all recorded on `tape` by this module.
fn gradient_on<T: Scalar>(tape: &Tape<T>, y: Var<'_, T>, xs: &[Var<'_, T>]) -> Vec<T> {
    tape.gradient_wrt(y, xs)
        .unwrap_or_else(|e| owned_elsewhere(e))
}

/// A closure given a fresh tape can only return a variable of another tape if that tape lives
/// forever (was leaked); say so rather than return a wrong number.
#[cold]
fn owned_elsewhere(e: Error) -> ! {
    panic!("perturb: the function returned a value recorded outside the call ({e})")
}
