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
    /// Two shapes that an operation needs to agree do not.
    #[error("{op}: shapes {lhs:?} and {rhs:?} do not match")]
    ShapeMismatch {
        /// The operation that was called.
        op: &'static str,
        /// The first shape.
        lhs: Vec<usize>,
        /// The second shape.
        rhs: Vec<usize>,
    },
    /// A buffer does not hold as many elements as its shape needs.
    #[error("{op}: shape {shape:?} needs {expected} elements, got {found}")]
    ElementCount {
        /// The operation that was called.
        op: &'static str,
        /// The requested shape.
        shape: Vec<usize>,
        /// The number of elements the shape needs.
        expected: usize,
        /// The number of elements given.
        found: usize,
    },
    /// An operation was given the wrong number of inputs.
    #[error("{op}: takes {expected} inputs, got {found}")]
    Arity {
        /// The operation that was called.
        op: &'static str,
        /// How many inputs it takes.
        expected: usize,
        /// How many it was given.
        found: usize,
    },
    /// An argument is out of range or malformed.
    #[error("{op}: {reason}")]
    InvalidArgument {
        /// The operation that was called.
        op: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A gradient was asked of an output with more than one element.
    #[error("{op}: the output has shape {shape:?}; a gradient needs a single element (use vjp with a cotangent)")]
    NotAScalar {
        /// The operation that was called.
        op: &'static str,
        /// The output's shape.
        shape: Vec<usize>,
    },
    /// Inside [`debug::detect_non_finite`](crate::debug::detect_non_finite): an operation
    /// produced a number that is not finite.
    #[error("{0}")]
    NonFinite(Box<crate::debug::NonFinite>),
    /// A matrix that must be invertible is singular (or numerically so): `solve`, `inv`,
    /// a triangular solve with a zero on the diagonal.
    #[error("{op}: the matrix{} is singular: {detail}", batch_member(.member))]
    Singular {
        /// The operation that was called.
        op: &'static str,
        /// Which matrix of a batch (its index along the leading axes); empty for a single matrix.
        member: Vec<usize>,
        /// Where the factorisation broke down (the zero pivot).
        detail: String,
    },
    /// A matrix that must be symmetric positive definite (`cholesky`) is not.
    #[error(
        "{op}: the matrix{} is not positive definite: pivot {pivot} (the leading minor of order {}) is not positive",
        batch_member(.member),
        .pivot + 1
    )]
    NotPositiveDefinite {
        /// The operation that was called.
        op: &'static str,
        /// Which matrix of a batch (its index along the leading axes); empty for a single matrix.
        member: Vec<usize>,
        /// The zero-based index of the first pivot that is not positive.
        pivot: usize,
    },
    /// An operation's derivative rule failed during a backward sweep.
    #[error("backward pass of {op}: {cause}")]
    Backward {
        /// The operation whose VJP failed.
        op: &'static str,
        /// Why.
        cause: Box<Error>,
    },
}

/// " at batch index [i, j]" for a member of a batch, "" for a single matrix.
fn batch_member(member: &[usize]) -> String {
    if member.is_empty() {
        String::new()
    } else {
        format!(" at batch index {member:?}")
    }
}
