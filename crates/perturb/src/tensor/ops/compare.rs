//! Comparisons (masks of 0 and 1, not differentiable), selection by a mask, clamping,
//! element-wise maximum and minimum.

use std::borrow::Cow;

use rayon::prelude::*;

use crate::error::Error;
use crate::tensor::kernels;
use crate::tensor::{Array, Element, Op, Tensor};

use super::binary::unbroadcast;
use super::elem;
use super::reduce::{max_nan, min_nan};

/// Which comparison a [`Compare`] makes, element by element, of its first input with its
/// second. Like Rust's operators on floats, every comparison with NaN is false except
/// [`Ne`](CmpKind::Ne).
///
/// ```
/// use perturb::tensor::ops::CmpKind;
/// assert!(CmpKind::Le.holds(1.0, 1.0));
/// assert!(!CmpKind::Lt.holds(1.0, f64::NAN));
/// assert!(CmpKind::Ne.holds(f64::NAN, f64::NAN));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CmpKind {
    /// `a == b`.
    Eq,
    /// `a != b`.
    Ne,
    /// `a < b`.
    Lt,
    /// `a <= b`.
    Le,
    /// `a > b`.
    Gt,
    /// `a >= b`.
    Ge,
}

impl CmpKind {
    /// Whether `a` compares to `b` this way.
    ///
    /// ```
    /// use perturb::tensor::ops::CmpKind;
    /// assert!(CmpKind::Gt.holds(2.0_f32, 1.0));
    /// ```
    #[inline]
    pub fn holds<T: PartialOrd>(self, a: T, b: T) -> bool {
        match self {
            CmpKind::Eq => a == b,
            CmpKind::Ne => a != b,
            CmpKind::Lt => a < b,
            CmpKind::Le => a <= b,
            CmpKind::Gt => a > b,
            CmpKind::Ge => a >= b,
        }
    }

    /// The name of the operation, as the [`Array`] method that makes it is named.
    ///
    /// ```
    /// use perturb::tensor::ops::CmpKind;
    /// assert_eq!(CmpKind::Ge.name(), "greater_equal");
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            CmpKind::Eq => "equal",
            CmpKind::Ne => "not_equal",
            CmpKind::Lt => "less",
            CmpKind::Le => "less_equal",
            CmpKind::Gt => "greater",
            CmpKind::Ge => "greater_equal",
        }
    }
}

/// An element-wise comparison with numpy broadcasting: 1 where it holds, else 0. Not
/// differentiable: the VJP is `None` for both inputs (the mask is piecewise constant).
///
/// ```
/// use perturb::tensor::ops::{CmpKind, Compare};
/// use perturb::tensor::{Op, Tensor};
/// let a = Tensor::vector(&[1.0_f64, 2.0, 3.0]);
/// let m = Compare(CmpKind::Lt).eval(&[&a, &Tensor::scalar(2.0)]).unwrap();
/// assert_eq!(m.to_vec(), vec![1.0, 0.0, 0.0]);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Compare(pub CmpKind);

impl Op for Compare {
    fn name(&self) -> &'static str {
        self.0.name()
    }

    const ELEMENTWISE: bool = true;

    fn eval<T: Element>(&self, inputs: &[&Tensor<T>]) -> Result<Tensor<T>, Error> {
        // One loop per comparison rather than a `match` per element: each then compiles to a
        // compare and a select, with no branch to mispredict on mixed data (with one, 262,143
        // random pairs took 1.33 ms; now 0.08 ms).
        let indicator = |holds: bool| if holds { T::one() } else { T::zero() };
        let name = self.0.name();
        match self.0 {
            CmpKind::Eq => super::binary_eval(name, inputs, kernels::Cost::Cheap, move |a, b| {
                indicator(a == b)
            }),
            CmpKind::Ne => super::binary_eval(name, inputs, kernels::Cost::Cheap, move |a, b| {
                indicator(a != b)
            }),
            CmpKind::Lt => super::binary_eval(name, inputs, kernels::Cost::Cheap, move |a, b| {
                indicator(a < b)
            }),
            CmpKind::Le => super::binary_eval(name, inputs, kernels::Cost::Cheap, move |a, b| {
                indicator(a <= b)
            }),
            CmpKind::Gt => super::binary_eval(name, inputs, kernels::Cost::Cheap, move |a, b| {
                indicator(a > b)
            }),
            CmpKind::Ge => super::binary_eval(name, inputs, kernels::Cost::Cheap, move |a, b| {
                indicator(a >= b)
            }),
        }
    }

    fn jvp<A: Array>(&self, _: &[&A], _: &A, _: &[Option<&A>]) -> Result<Option<A>, Error> {
        Ok(None)
    }

    fn vjp<A: Array>(&self, _: &[&A], _: &A, _: &A, _: &[bool]) -> Result<Vec<Option<A>>, Error> {
        Ok(vec![None, None])
    }
}

/// A 0-dimensional constant, broadcast against anything.
fn constant<A: Array>(c: f64) -> A {
    A::lift(Tensor::scalar(A::elem(c)))
}

/// Selection by a mask, numpy's `where(mask, a, b)`: `a` where `mask != 0`, else `b`, the three
/// inputs broadcast together. VJP: none for the mask (not differentiable), `ct * m` for `a` and
/// `ct * (1 - m)` for `b`, each summed back to its input's shape, where `m` is 1 where
/// `mask != 0` (so `m` is the mask itself when the mask holds only 0 and 1). A NaN in the mask
/// counts as nonzero.
///
/// ```
/// use perturb::tensor::ops::Where;
/// use perturb::tensor::{Op, Tensor};
/// let mask = Tensor::vector(&[1.0_f64, 0.0]);
/// let y = Where.eval(&[&mask, &Tensor::vector(&[1.0, 2.0]), &Tensor::scalar(9.0)]).unwrap();
/// assert_eq!(y.to_vec(), vec![1.0, 9.0]);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Where;

impl Op for Where {
    fn name(&self) -> &'static str {
        "where"
    }

    const ELEMENTWISE: bool = true;

    fn jvp<A: Array>(
        &self,
        inputs: &[&A],
        output: &A,
        tangents: &[Option<&A>],
    ) -> Result<Option<A>, Error> {
        if tangents[1].is_none() && tangents[2].is_none() {
            return Ok(None);
        }
        let zero = constant::<A>(0.0);
        let pick = |t: Option<&A>| t.unwrap_or(&zero).clone();
        let t = inputs[0].try_select(&pick(tangents[1]), &pick(tangents[2]))?;
        super::sum_tangents([Some(t)], output.shape())
    }

    fn eval<T: Element>(&self, inputs: &[&Tensor<T>]) -> Result<Tensor<T>, Error> {
        let [mask, a, b] = inputs else {
            return Err(Error::Arity {
                op: "where",
                expected: 3,
                found: inputs.len(),
            });
        };
        let shape = kernels::broadcast_shape("where", mask.shape(), a.shape())?;
        let shape = kernels::broadcast_shape("where", &shape, b.shape())?;
        let (m, a, b) = (spread(mask, &shape), spread(a, &shape), spread(b, &shape));
        // Zipped slices, not indexing: no bounds checks, and a select rather than a branch.
        let pick = |((&m, &a), &b): ((&T, &T), &T)| if m != T::zero() { a } else { b };
        let data: Vec<T> = if m.len() >= kernels::Cost::Cheap.parallel_threshold() {
            let triples = m.par_iter().zip(a.par_iter()).zip(b.par_iter());
            triples.map(pick).collect()
        } else {
            m.iter().zip(a.iter()).zip(b.iter()).map(pick).collect()
        };
        Ok(Tensor::from_parts(data, shape))
    }

    fn vjp<A: Array>(
        &self,
        inputs: &[&A],
        _: &A,
        ct: &A,
        needed: &[bool],
    ) -> Result<Vec<Option<A>>, Error> {
        let (mask, a, b) = (inputs[0], inputs[1], inputs[2]);
        let chosen = mask.try_not_equal(&constant(0.0))?;
        let da = if needed[1] {
            Some(unbroadcast(ct.try_mul(&chosen)?, a)?)
        } else {
            None
        };
        let db = if needed[2] {
            let other = chosen.neg().add_scalar(A::elem(1.0));
            Some(unbroadcast(ct.try_mul(&other)?, b)?)
        } else {
            None
        };
        Ok(vec![None, da, db])
    }
}

/// `x`'s elements broadcast to `shape` (borrowed where `x` already has it).
fn spread<'a, T: Element>(x: &'a Tensor<T>, shape: &[usize]) -> Cow<'a, [T]> {
    if x.shape() == shape {
        Cow::Borrowed(x.as_slice())
    } else {
        Cow::Owned(kernels::broadcast_to(x.as_slice(), x.shape(), shape))
    }
}

/// Clamping to `[min, max]` (kept as `f64`): `min` below it, `max` above it, NaN passed
/// through. An error if `min > max` or either is NaN. VJP: `ct` where `min <= x <= max`
/// (boundaries included, as PyTorch), else 0.
///
/// ```
/// use perturb::tensor::ops::Clamp;
/// use perturb::tensor::{Op, Tensor};
/// let x = Tensor::vector(&[-2.0_f64, 0.5, 1.0, 3.0]);
/// let clamp = Clamp { min: 0.0, max: 1.0 };
/// let y = clamp.eval(&[&x]).unwrap();
/// assert_eq!(y.to_vec(), vec![0.0, 0.5, 1.0, 1.0]);
/// let ct = clamp.vjp(&[&x], &y, &Tensor::ones(&[4]), &[true]).unwrap();
/// assert_eq!(ct[0].as_ref().unwrap().to_vec(), vec![0.0, 1.0, 1.0, 0.0]);
/// assert!(Clamp { min: 1.0, max: 0.0 }.eval(&[&x]).is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Clamp {
    /// The lower bound.
    pub min: f64,
    /// The upper bound.
    pub max: f64,
}

impl Clamp {
    fn check(&self) -> Result<(), Error> {
        if self.min <= self.max {
            Ok(())
        } else {
            Err(Error::InvalidArgument {
                op: "clamp",
                reason: format!(
                    "the lower bound {} must not exceed the upper bound {} (and neither may be NaN)",
                    self.min, self.max
                ),
            })
        }
    }
}

impl Op for Clamp {
    fn name(&self) -> &'static str {
        "clamp"
    }

    const ELEMENTWISE: bool = true;

    fn jvp<A: Array>(&self, inputs: &[&A], _: &A, t: &[Option<&A>]) -> Result<Option<A>, Error> {
        let Some(t) = t[0] else { return Ok(None) };
        Ok(Some(t.try_mul(&A::apply(&InRange(*self), &[inputs[0]])?)?))
    }

    fn eval<T: Element>(&self, inputs: &[&Tensor<T>]) -> Result<Tensor<T>, Error> {
        self.check()?;
        let x = super::unary("clamp", inputs)?;
        let (lo, hi): (T, T) = (elem(self.min), elem(self.max));
        // Two selects, each a compare and a blend: a NaN fails both compares and passes
        // through. (Written as one `if / else if` chain it compiled to branches, mispredicted
        // on mixed data: 6.7 ns an element.)
        Ok(x.map_with(kernels::Cost::Cheap, move |v| {
            let above_lo = if v < lo { lo } else { v };
            if above_lo > hi {
                hi
            } else {
                above_lo
            }
        }))
    }

    fn vjp<A: Array>(
        &self,
        inputs: &[&A],
        _: &A,
        ct: &A,
        _: &[bool],
    ) -> Result<Vec<Option<A>>, Error> {
        let inside = A::apply(&InRange(*self), &[inputs[0]])?;
        Ok(vec![Some(ct.try_mul(&inside)?)])
    }
}

/// 1 where `min <= x <= max`, else 0 (and 0 for NaN): the derivative of [`Clamp`], piecewise
/// constant and so not differentiated further.
#[derive(Clone, Copy, Debug)]
struct InRange(Clamp);

impl Op for InRange {
    fn name(&self) -> &'static str {
        "clamp_slope"
    }

    const ELEMENTWISE: bool = true;

    fn eval<T: Element>(&self, inputs: &[&Tensor<T>]) -> Result<Tensor<T>, Error> {
        let x = super::unary("clamp_slope", inputs)?;
        let (lo, hi): (T, T) = (elem(self.0.min), elem(self.0.max));
        Ok(x.map_with(kernels::Cost::Cheap, move |v| {
            if lo <= v && v <= hi {
                T::one()
            } else {
                T::zero()
            }
        }))
    }

    fn jvp<A: Array>(&self, _: &[&A], _: &A, _: &[Option<&A>]) -> Result<Option<A>, Error> {
        Ok(None)
    }

    fn vjp<A: Array>(&self, _: &[&A], _: &A, _: &A, _: &[bool]) -> Result<Vec<Option<A>>, Error> {
        Ok(vec![None])
    }
}

/// Which of [`Maximum`] and [`Minimum`], for the derivative's shares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Extremum {
    Max,
    Min,
}

impl Extremum {
    /// The share of the derivative that goes to `a`: 1 where it wins, 1/2 at a tie, 0 where
    /// it loses or either is NaN (a comparison decided by a NaN passes no derivative).
    fn share<T: Element>(self, a: T, b: T) -> T {
        let wins = match self {
            Extremum::Max => a > b,
            Extremum::Min => a < b,
        };
        if wins {
            T::one()
        } else if a == b {
            elem(0.5)
        } else {
            T::zero()
        }
    }
}

/// The share of the derivative of [`Maximum`] or [`Minimum`] that goes to the first input
/// ([`Extremum::share`]). Piecewise constant, so not differentiated further.
#[derive(Clone, Copy, Debug)]
struct Share(Extremum);

impl Op for Share {
    fn name(&self) -> &'static str {
        match self.0 {
            Extremum::Max => "maximum_share",
            Extremum::Min => "minimum_share",
        }
    }

    const ELEMENTWISE: bool = true;

    fn eval<T: Element>(&self, inputs: &[&Tensor<T>]) -> Result<Tensor<T>, Error> {
        let kind = self.0;
        super::binary_eval(self.name(), inputs, kernels::Cost::Cheap, move |a, b| {
            kind.share(a, b)
        })
    }

    fn jvp<A: Array>(&self, _: &[&A], _: &A, _: &[Option<&A>]) -> Result<Option<A>, Error> {
        Ok(None)
    }

    fn vjp<A: Array>(&self, _: &[&A], _: &A, _: &A, _: &[bool]) -> Result<Vec<Option<A>>, Error> {
        Ok(vec![None, None])
    }
}

/// The JVP of maximum or minimum: each tangent times its input's share ([`Share`]), summed.
fn extremum_jvp<A: Array>(
    kind: Extremum,
    inputs: &[&A],
    output: &A,
    tangents: &[Option<&A>],
) -> Result<Option<A>, Error> {
    let (a, b) = (inputs[0], inputs[1]);
    let da = match tangents[0] {
        Some(t) => Some(t.try_mul(&A::apply(&Share(kind), &[a, b])?)?),
        None => None,
    };
    let db = match tangents[1] {
        Some(t) => Some(t.try_mul(&A::apply(&Share(kind), &[b, a])?)?),
        None => None,
    };
    super::sum_tangents([da, db], output.shape())
}

/// The VJP of maximum or minimum: `ct` times each input's share, summed back to its shape.
fn extremum_vjp<A: Array>(
    kind: Extremum,
    inputs: &[&A],
    ct: &A,
    needed: &[bool],
) -> Result<Vec<Option<A>>, Error> {
    let (a, b) = (inputs[0], inputs[1]);
    let term = |wanted: bool, x: &A, other: &A| -> Result<Option<A>, Error> {
        if !wanted {
            return Ok(None);
        }
        let share = A::apply(&Share(kind), &[x, other])?;
        Ok(Some(unbroadcast(ct.try_mul(&share)?, x)?))
    };
    Ok(vec![term(needed[0], a, b)?, term(needed[1], b, a)?])
}

/// The element-wise maximum with numpy broadcasting, NaN where either input is (as
/// `np.maximum`, `jnp.maximum` and `torch.maximum`; the scalar `max` is `f64::max`, which drops
/// a NaN). VJP: the larger input gets `ct`, each half of it at a tie, and neither input gets
/// any where one is NaN.
///
/// ```
/// use perturb::tensor::ops::Maximum;
/// use perturb::tensor::{Op, Tensor};
/// let (a, b) = (Tensor::vector(&[1.0_f64, 2.0, 3.0, f64::NAN]), Tensor::scalar(2.0));
/// let y = Maximum.eval(&[&a, &b]).unwrap();
/// assert_eq!(y.to_vec()[..3], [2.0, 2.0, 3.0]);
/// assert!(y.to_vec()[3].is_nan());
/// let ct = Maximum.vjp(&[&a, &b], &y, &Tensor::ones(&[4]), &[true, true]).unwrap();
/// assert_eq!(ct[0].as_ref().unwrap().to_vec(), vec![0.0, 0.5, 1.0, 0.0]);
/// assert_eq!(ct[1].as_ref().unwrap().to_vec(), vec![1.5]); // 1 + 1/2 + 0 + 0
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Maximum;

impl Op for Maximum {
    fn name(&self) -> &'static str {
        "maximum"
    }

    const ELEMENTWISE: bool = true;

    fn eval<T: Element>(&self, inputs: &[&Tensor<T>]) -> Result<Tensor<T>, Error> {
        super::binary_eval("maximum", inputs, kernels::Cost::Cheap, max_nan)
    }

    fn jvp<A: Array>(&self, inputs: &[&A], y: &A, t: &[Option<&A>]) -> Result<Option<A>, Error> {
        extremum_jvp(Extremum::Max, inputs, y, t)
    }

    fn vjp<A: Array>(
        &self,
        inputs: &[&A],
        _: &A,
        ct: &A,
        needed: &[bool],
    ) -> Result<Vec<Option<A>>, Error> {
        extremum_vjp(Extremum::Max, inputs, ct, needed)
    }
}

/// The element-wise minimum with numpy broadcasting, NaN where either input is (as
/// `np.minimum`, `jnp.minimum` and `torch.minimum`; the scalar `min` is `f64::min`, which drops
/// a NaN). VJP: the smaller input gets `ct`, each half of it at a tie, and neither input gets
/// any where one is NaN.
///
/// ```
/// use perturb::tensor::ops::Minimum;
/// use perturb::tensor::{Op, Tensor};
/// let (a, b) = (Tensor::vector(&[1.0_f64, f64::NAN]), Tensor::vector(&[1.0, 5.0]));
/// let y = Minimum.eval(&[&a, &b]).unwrap();
/// assert_eq!(y.to_vec()[0], 1.0);
/// assert!(y.to_vec()[1].is_nan());
/// let ct = Minimum.vjp(&[&a, &b], &y, &Tensor::ones(&[2]), &[true, true]).unwrap();
/// assert_eq!(ct[0].as_ref().unwrap().to_vec(), vec![0.5, 0.0]);
/// assert_eq!(ct[1].as_ref().unwrap().to_vec(), vec![0.5, 0.0]);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Minimum;

impl Op for Minimum {
    fn name(&self) -> &'static str {
        "minimum"
    }

    const ELEMENTWISE: bool = true;

    fn eval<T: Element>(&self, inputs: &[&Tensor<T>]) -> Result<Tensor<T>, Error> {
        super::binary_eval("minimum", inputs, kernels::Cost::Cheap, min_nan)
    }

    fn jvp<A: Array>(&self, inputs: &[&A], y: &A, t: &[Option<&A>]) -> Result<Option<A>, Error> {
        extremum_jvp(Extremum::Min, inputs, y, t)
    }

    fn vjp<A: Array>(
        &self,
        inputs: &[&A],
        _: &A,
        ct: &A,
        needed: &[bool],
    ) -> Result<Vec<Option<A>>, Error> {
        extremum_vjp(Extremum::Min, inputs, ct, needed)
    }
}
