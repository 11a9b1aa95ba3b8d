//! The tensor engine's part of the debugging mode ([`crate::debug`]): the checks an operation
//! runs on its value, its tangent and the cotangents it sends back, inside
//! [`detect_non_finite`](crate::debug::detect_non_finite) only.

use std::panic::Location;

use super::array::Array;
use super::cotangent::Cotangent;
use crate::debug::{self, F64Bits, InputSummary, NonFinite, Sweep};
use crate::error::Error;
use crate::scalar::Scalar;

/// The first element of `a`'s plain value times `factor` that is not finite.
fn first_non_finite<A: Array>(a: &A, factor: f64) -> Option<f64> {
    a.primal()
        .as_slice()
        .iter()
        .map(|v| v.to_f64_value() * factor)
        .find(|v| !v.is_finite())
}

/// The shape and range of `a`'s plain value.
fn summary<A: Array>(a: &A) -> InputSummary {
    InputSummary::of(
        a.shape(),
        a.primal().as_slice().iter().map(|v| v.to_f64_value()),
    )
}

/// Reports `found` (records it as the scope's finding if it is the first) and returns it.
#[cold]
fn found(
    op: &'static str,
    sweep: Sweep,
    quantity: &'static str,
    found: f64,
    inputs: Vec<InputSummary>,
    location: Option<&'static Location<'static>>,
) -> NonFinite {
    let report = NonFinite {
        op,
        sweep,
        quantity,
        found: F64Bits(found),
        inputs,
        location,
    };
    debug::report(|| report.clone());
    report
}

/// Reports an operation's value if it is not finite (the forward pass).
pub(crate) fn check_value<A: Array>(
    op: &'static str,
    inputs: &[&A],
    value: &A,
    location: &'static Location<'static>,
) {
    if let Some(v) = first_non_finite(value, 1.0) {
        let inputs = inputs.iter().map(|x| summary(*x)).collect();
        found(op, Sweep::Forward, "value", v, inputs, Some(location));
    }
}

/// Reports an operation's tangent if it is not finite (forward mode); an error naming it.
pub(crate) fn check_tangent<A: Array>(
    op: &'static str,
    inputs: &[&A],
    tangent: &A,
    location: Option<&'static Location<'static>>,
) -> Result<(), Error> {
    match first_non_finite(tangent, 1.0) {
        None => Ok(()),
        Some(v) => {
            let inputs = inputs.iter().map(|x| summary(*x)).collect();
            let report = found(op, Sweep::Tangent, "tangent", v, inputs, location);
            Err(Error::NonFinite(Box::new(report)))
        }
    }
}

/// Reports the cotangent `sum` that an operation's rule sent to one of its inputs (added to
/// what that input had gathered, all finite) if it is not finite: an error naming the
/// operation, with its cotangent and its inputs (their shapes only where the tape did not keep
/// their values).
pub(crate) fn check_cotangent<B: Array>(
    op: &'static str,
    location: Option<&'static Location<'static>>,
    cotangent: &Cotangent<B>,
    sum: &Cotangent<B>,
    inputs: impl FnOnce() -> Vec<InputSummary>,
) -> Result<(), Error> {
    match first_non_finite(&sum.value, sum.factor) {
        None => Ok(()),
        Some(v) => {
            let mut summaries = vec![summary_scaled(cotangent)];
            summaries.extend(inputs());
            let report = found(op, Sweep::Reverse, "cotangent", v, summaries, location);
            Err(Error::NonFinite(Box::new(report)))
        }
    }
}

/// The shape and range of a cotangent, its factor applied.
fn summary_scaled<B: Array>(ct: &Cotangent<B>) -> InputSummary {
    InputSummary::of(
        ct.value.shape(),
        ct.value
            .primal()
            .as_slice()
            .iter()
            .map(|v| v.to_f64_value() * ct.factor),
    )
}

/// The shape and range of an input the tape kept, or its shape alone.
pub(crate) fn summary_or_shape<A: Array>(value: Option<&A>, shape: &[usize]) -> InputSummary {
    match value {
        Some(v) => summary(v),
        None => InputSummary::of(shape, []),
    }
}
