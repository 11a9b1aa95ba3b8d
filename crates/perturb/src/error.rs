//! The errors perturb reports: each names the operation and the cause.

/// What went wrong, and in which operation.
///
/// ```
/// use perturb::{Error, Tape};
///
/// let a = Tape::<f64>::new();
/// let b = Tape::<f64>::new();
/// let x = a.var(1.0);
/// let y = b.var(2.0);
/// let err = b.gradient(x).unwrap_err();
/// assert!(matches!(err, Error::ForeignVariable { .. }));
/// assert!(err.to_string().starts_with("Tape::gradient: "));
/// # let _ = y;
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A variable was used with a tape (or gradient) it was not recorded on.
    #[error("{op}: the variable belongs to tape #{found}, not to tape #{expected}")]
    ForeignVariable {
        /// The operation that was called.
        op: &'static str,
        /// The tape the operation works on.
        expected: u64,
        /// The tape the variable was recorded on.
        found: u64,
    },
    /// A gradient computed before its tape was cleared was asked about a variable recorded after.
    #[error(
        "{op}: the gradient was computed on tape #{tape} before it was cleared \
         (generation {gradient_generation}); the variable is from generation {variable_generation}"
    )]
    StaleGradient {
        /// The operation that was called.
        op: &'static str,
        /// The tape.
        tape: u64,
        /// How many times the tape had been cleared when the gradient was computed.
        gradient_generation: u64,
        /// How many times the tape had been cleared when the variable was recorded.
        variable_generation: u64,
    },
    /// A derivative was asked with respect to a constant, which is not recorded on any tape.
    #[error("{op}: the value is a constant, not a variable recorded on a tape; use Tape::var to make an input")]
    NotAVariable {
        /// The operation that was called.
        op: &'static str,
    },
    /// Two inputs that must have the same length do not.
    #[error("{op}: {what} has length {found}, expected {expected}")]
    LengthMismatch {
        /// The operation that was called.
        op: &'static str,
        /// Which argument has the wrong length.
        what: &'static str,
        /// The length it should have.
        expected: usize,
        /// The length it has.
        found: usize,
    },
}
