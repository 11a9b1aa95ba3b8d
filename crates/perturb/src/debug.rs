//! Finding where a NaN or an infinity came from: a debugging mode for both engines.
//!
//! A NaN in a gradient says that something went wrong, not where. Inside
//! [`detect_non_finite`], every operation of the scalar engine ([`Dual`](crate::Dual),
//! [`Var`](crate::Var)) and of the tensor engine checks what it computes: its value, the local
//! partial derivatives a tape records, the tangent forward mode pushes, and the cotangent a
//! reverse sweep sends back. The first number that is not finite is reported as a
//! [`NonFinite`]: the operation's name, the sweep it happened in, the shapes and ranges of the
//! operation's inputs, and the line of *your* code that recorded the operation. This is
//! PyTorch's anomaly detection and JAX's `debug_nans`, for both engines, with the source line.
//!
//! Outside [`detect_non_finite`] nothing is checked: the switch is one relaxed atomic load per
//! operation, which the benchmarks do not see.
//!
//! ```
//! use perturb::{debug, Float, Tape};
//!
//! let found = debug::detect_non_finite(|| {
//!     let tape = Tape::new();
//!     let x = tape.var(-1.0_f64);
//!     let y = x.sqrt() * 2.0; // sqrt(-1) is NaN
//!     tape.gradient(y).map(|g| g[x])
//! })
//! .unwrap_err();
//! assert_eq!(found.op, "sqrt");
//! assert_eq!(found.sweep, debug::Sweep::Forward);
//! assert!(found.location.unwrap().file().ends_with(".rs"));
//! ```

use std::cell::{Cell, RefCell};
use std::fmt;
use std::panic::Location;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Which part of a computation produced a number.
///
/// ```
/// use perturb::debug::Sweep;
/// assert_eq!(Sweep::Reverse.to_string(), "the reverse sweep (cotangent)");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Sweep {
    /// The forward pass: an operation's value, or the local partial derivatives a tape records
    /// with it.
    Forward,
    /// Forward mode: the tangent an operation pushes forward.
    Tangent,
    /// Reverse mode: the cotangent (adjoint) an operation's rule sends back to its inputs.
    Reverse,
}

impl fmt::Display for Sweep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Sweep::Forward => "the forward pass (value)",
            Sweep::Tangent => "forward mode (tangent)",
            Sweep::Reverse => "the reverse sweep (cotangent)",
        })
    }
}

/// The shape and the range of one input of an operation (a scalar has shape `[]`).
///
/// ```
/// use perturb::debug::InputSummary;
/// let s = InputSummary::of(&[3], [1.0, f64::NAN, -2.0]);
/// assert_eq!((s.min, s.max, s.non_finite), (-2.0, 1.0, 1));
/// assert_eq!(s.to_string(), "[3] in [-2, 1], 1 not finite");
/// ```
#[derive(Debug, Clone)]
pub struct InputSummary {
    /// The input's shape.
    pub shape: Vec<usize>,
    /// The smallest finite element (`+inf` if none is finite).
    pub min: f64,
    /// The largest finite element (`-inf` if none is finite).
    pub max: f64,
    /// How many elements are NaN or infinite.
    pub non_finite: usize,
}

impl InputSummary {
    /// Summarises the elements of an input of the given shape.
    ///
    /// ```
    /// use perturb::debug::InputSummary;
    /// let s = InputSummary::of(&[], [0.5]);
    /// assert_eq!(s.to_string(), "[] = 0.5");
    /// ```
    pub fn of(shape: &[usize], values: impl IntoIterator<Item = f64>) -> Self {
        let (mut min, mut max, mut non_finite) = (f64::INFINITY, f64::NEG_INFINITY, 0);
        for v in values {
            if v.is_finite() {
                min = min.min(v);
                max = max.max(v);
            } else {
                non_finite += 1;
            }
        }
        InputSummary {
            shape: shape.to_vec(),
            min,
            max,
            non_finite,
        }
    }
}

impl PartialEq for InputSummary {
    fn eq(&self, other: &Self) -> bool {
        self.shape == other.shape
            && self.min.to_bits() == other.min.to_bits()
            && self.max.to_bits() == other.max.to_bits()
            && self.non_finite == other.non_finite
    }
}

// Bitwise equality of the bounds is an equivalence relation.
impl Eq for InputSummary {}

impl fmt::Display for InputSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.shape)?;
        if self.min > self.max {
            // No finite element at all.
        } else if self.min == self.max && self.non_finite == 0 && self.shape.is_empty() {
            return write!(f, " = {}", self.min);
        } else {
            write!(f, " in [{}, {}]", self.min, self.max)?;
        }
        if self.non_finite > 0 {
            let sep = if self.min > self.max { " " } else { ", " };
            write!(f, "{sep}{} not finite", self.non_finite)?;
        }
        Ok(())
    }
}

/// The first operation that produced a number that is not finite.
///
/// ```
/// use perturb::debug::{self, Sweep};
/// use perturb::{Dual, Float};
///
/// let found = debug::detect_non_finite(|| {
///     let x = Dual::variable(0.0_f64);
///     x.ln() // value -inf
/// })
/// .unwrap_err();
/// assert_eq!((found.op, found.sweep), ("ln", Sweep::Forward));
/// assert!(found.to_string().starts_with("ln at "));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NonFinite {
    /// The operation's name.
    pub op: &'static str,
    /// The sweep it happened in.
    pub sweep: Sweep,
    /// What was not finite: `"value"`, `"local partial"`, `"tangent"` or `"cotangent"`.
    pub quantity: &'static str,
    /// The first non-finite number found.
    pub found: F64Bits,
    /// The operation's inputs (in the reverse sweep: the output's cotangent first).
    pub inputs: Vec<InputSummary>,
    /// The line of the caller's code that recorded the operation, where it is known.
    pub location: Option<&'static Location<'static>>,
}

/// An `f64` compared bit for bit, so that a report holding a NaN equals itself.
///
/// ```
/// use perturb::debug::F64Bits;
/// assert_eq!(F64Bits(f64::NAN), F64Bits(f64::NAN));
/// ```
#[derive(Debug, Clone, Copy)]
pub struct F64Bits(pub f64);

impl PartialEq for F64Bits {
    fn eq(&self, other: &Self) -> bool {
        self.0.to_bits() == other.0.to_bits()
    }
}

impl Eq for F64Bits {}

impl fmt::Display for NonFinite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.op)?;
        match self.location {
            Some(l) => write!(f, " at {}:{}:{}", l.file(), l.line(), l.column())?,
            None => write!(f, " (recorded at an unknown line)")?,
        }
        write!(
            f,
            ": the {} is {} in {}",
            self.quantity, self.found.0, self.sweep
        )?;
        if !self.inputs.is_empty() {
            f.write_str("; inputs ")?;
            for (i, input) in self.inputs.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "{input}")?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for NonFinite {}

/// How many [`detect_non_finite`] scopes are running, on any thread: the cheap switch every
/// operation reads first.
static ACTIVE: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// This thread's state: `None` outside a scope; inside, the first report (if any).
    static STATE: RefCell<Option<Option<NonFinite>>> = const { RefCell::new(None) };
}

/// Runs `f` with every operation on this thread checked for numbers that are not finite, and
/// returns `f`'s result, or the first operation that produced one.
///
/// The computation is not interrupted: operators cannot fail, so `f` runs to its end and the
/// first report wins. Scopes nest (the outermost reports). Other threads are not checked.
///
/// ```
/// use perturb::{debug, Float, Tape};
///
/// // Finite everywhere: the result comes back.
/// let g = debug::detect_non_finite(|| {
///     let tape = Tape::new();
///     let x = tape.var(4.0_f64);
///     tape.gradient(x.sqrt()).unwrap()[x]
/// });
/// assert_eq!(g, Ok(0.25));
/// ```
pub fn detect_non_finite<R>(f: impl FnOnce() -> R) -> Result<R, NonFinite> {
    let outer = STATE.with(|s| s.borrow().is_some());
    if outer {
        return Ok(f());
    }
    struct Scope;
    impl Drop for Scope {
        fn drop(&mut self) {
            ACTIVE.fetch_sub(1, Ordering::Relaxed);
            STATE.with(|s| *s.borrow_mut() = None);
            PROVISIONAL.with(|p| p.set(false));
        }
    }
    STATE.with(|s| *s.borrow_mut() = Some(None));
    ACTIVE.fetch_add(1, Ordering::Relaxed);
    let scope = Scope;
    let result = f();
    let found = STATE.with(|s| s.borrow_mut().as_mut().and_then(Option::take));
    drop(scope);
    match found {
        Some(report) => Err(report),
        None => Ok(result),
    }
}

/// Whether operations on this thread are being checked (inside [`detect_non_finite`]).
///
/// One relaxed atomic load when no scope runs anywhere; a custom operation can use it to skip
/// the work of a check.
///
/// ```
/// use perturb::debug;
/// assert!(!debug::enabled());
/// assert_eq!(debug::detect_non_finite(debug::enabled), Ok(true));
/// ```
#[inline(always)]
pub fn enabled() -> bool {
    ACTIVE.load(Ordering::Relaxed) != 0 && enabled_here()
}

#[cold]
#[inline(never)]
fn enabled_here() -> bool {
    STATE.with(|s| s.borrow().is_some())
}

/// Whether a report has already been made in the current scope (later ones are dropped, so a
/// caller can skip building them).
///
/// ```
/// use perturb::debug;
/// assert!(!debug::reported());
/// ```
pub fn reported() -> bool {
    STATE.with(|s| matches!(&*s.borrow(), Some(Some(_))))
}

/// Records `report` as this scope's finding if it is the first; does nothing outside a scope.
///
/// The engines call this; a custom operation that computes outside perturb's operations can
/// call it too.
///
/// ```
/// use perturb::debug::{self, NonFinite, Sweep, F64Bits};
///
/// let found = debug::detect_non_finite(|| {
///     debug::report(|| NonFinite {
///         op: "my_table_lookup",
///         sweep: Sweep::Forward,
///         quantity: "value",
///         found: F64Bits(f64::NAN),
///         inputs: vec![],
///         location: None,
///     })
/// })
/// .unwrap_err();
/// assert_eq!(found.op, "my_table_lookup");
/// ```
#[cold]
#[inline(never)]
pub fn report(report: impl FnOnce() -> NonFinite) {
    STATE.with(|s| {
        if let Some(slot) = &mut *s.borrow_mut() {
            if slot.is_none() || PROVISIONAL.with(|p| p.replace(false)) {
                *slot = Some(report());
            }
        }
    });
}

thread_local! {
    /// Whether this scope's report was made by an operation called from inside perturb (a
    /// nested number type computes an operation's rule in operations of the inner type): a
    /// later report, from the operation the user called, replaces it.
    static PROVISIONAL: Cell<bool> = const { Cell::new(false) };
}

/// Whether `location` is in perturb's own source (the directory of this file), where rules
/// compute in operations of inner number types. This file holds no such code, only examples
/// (whose doctests report lines here).
fn internal(location: &Location<'_>) -> bool {
    let here = file!();
    let dir = here.strip_suffix("debug.rs").unwrap_or(here);
    location.file().starts_with(dir) && location.file() != here
}

/// Records a report of the scalar engine: as [`report`], but a report whose line is inside
/// perturb is provisional, replaced by the next report (the outer operation's, or the sweep's).
pub(crate) fn report_scalar(make: impl FnOnce() -> NonFinite) {
    STATE.with(|s| {
        let mut state = s.borrow_mut();
        let Some(slot) = &mut *state else {
            return;
        };
        if slot.is_none() || PROVISIONAL.with(Cell::get) {
            let found = make();
            PROVISIONAL.with(|p| p.set(found.location.is_some_and(internal)));
            *slot = Some(found);
        }
    });
}

/// The summaries of scalar inputs (their values at the bottom of any nesting).
pub(crate) fn scalar_inputs<S: crate::Scalar>(values: &[S]) -> Vec<InputSummary> {
    values
        .iter()
        .map(|v| InputSummary::of(&[], [v.to_f64_value()]))
        .collect()
}

/// Checks the result `y` of one operation of the scalar engine (the caller has seen
/// [`enabled`]) and reports it if it is not finite: the value (the forward pass), else any
/// tangent at any level of nesting (forward mode).
#[cold]
#[inline(never)]
pub(crate) fn check_scalar<I: crate::Scalar, S: crate::Scalar>(
    op: &'static str,
    location: &'static Location<'static>,
    inputs: &[I],
    y: S,
) {
    let value = y.to_f64_value();
    let found = if !value.is_finite() {
        Some((Sweep::Forward, "value", value))
    } else {
        y.first_non_finite().map(|t| (Sweep::Tangent, "tangent", t))
    };
    if let Some((sweep, quantity, found)) = found {
        report_scalar(|| NonFinite {
            op,
            sweep,
            quantity,
            found: F64Bits(found),
            inputs: scalar_inputs(inputs),
            location: Some(location),
        });
    }
}
