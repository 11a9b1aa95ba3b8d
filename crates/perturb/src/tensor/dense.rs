//! `Tensor<T>`: an n-dimensional, row-major array of `f32` or `f64` with shared storage.

use std::fmt;
use std::sync::Arc;

use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, StandardNormal};

use super::buffers::{self, Buffer};
use super::element::Element;
use super::op::or_panic;
use crate::error::Error;

/// An n-dimensional array of `f32` or `f64`, stored contiguously in row-major order.
///
/// Cloning is cheap: the elements are shared (`Arc`), and an operation that would change them
/// writes a new buffer (reused from a per-thread pool of freed ones: see
/// [`buffers`](crate::tensor::buffers)). A reshape, or a [`narrow`](crate::tensor::Array::narrow) that keeps one
/// contiguous run of elements (a window of rows), is a view of the same buffer, not a copy.
/// Shapes are checked at run time; a shape error names the operation and the shapes involved.
/// A tensor is a plain value: to differentiate through it, record it on a
/// [`TensorTape`](crate::tensor::TensorTape).
///
/// ```
/// use perturb::tensor::Tensor;
///
/// let a = Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]).unwrap();
/// assert_eq!(a.shape(), &[2, 3]);
/// assert_eq!(a.get(&[1, 2]), Some(6.0));
/// assert!(Tensor::<f64>::from_vec(vec![1.0; 5], &[2, 3]).is_err());
/// ```
#[derive(Clone)]
pub struct Tensor<T> {
    /// The buffer, possibly shared with other tensors and longer than this one.
    data: Arc<Buffer<T>>,
    /// Where this tensor's elements start in `data`; they run on for the shape's product.
    offset: usize,
    shape: Vec<usize>,
}

impl<T: Element> Tensor<T> {
    /// The most elements a tensor can have: `isize::MAX / 8` (2^60 - 1 on 64-bit targets), so
    /// that a buffer of `f64` can be allocated for any valid shape. A shape is valid when the
    /// product of its nonzero lengths is at most this, so a zero-length axis does not hide an
    /// overflowing product of the others (as in PyTorch); every constructor and operation
    /// refuses larger shapes with an error naming the operation and the shape.
    ///
    /// ```
    /// use perturb::tensor::Tensor;
    /// assert!(Tensor::<f32>::try_zeros(&[Tensor::<f32>::MAX_LEN + 1]).is_err());
    /// assert!(Tensor::<f32>::try_zeros(&[0, Tensor::<f32>::MAX_LEN + 1]).is_err());
    /// ```
    pub const MAX_LEN: usize = MAX_LEN;

    /// A tensor of the given shape holding `data` in row-major order; an error if the number of
    /// elements does not match the shape, or if the shape has more elements than a tensor can
    /// hold (see [`Tensor::MAX_LEN`]).
    ///
    /// ```
    /// use perturb::tensor::Tensor;
    /// let t = Tensor::from_vec(vec![1.0_f32, 2.0], &[2, 1]).unwrap();
    /// assert_eq!(t.shape(), &[2, 1]);
    /// // (2^63 + 1) * 2 wraps around to 2 in 64 bits: refused, not taken for 2 elements.
    /// assert!(Tensor::from_vec(vec![1.0, 2.0], &[(1 << 63) + 1, 2]).is_err());
    /// ```
    pub fn from_vec(data: Vec<T>, shape: &[usize]) -> Result<Self, Error> {
        let expected = element_count("Tensor::from_vec", shape)?;
        if data.len() != expected {
            return Err(Error::ElementCount {
                op: "Tensor::from_vec",
                shape: shape.to_vec(),
                expected,
                found: data.len(),
            });
        }
        Ok(Tensor {
            data: Arc::new(Buffer::new(data)),
            offset: 0,
            shape: shape.to_vec(),
        })
    }

    /// A tensor from a buffer computed for the shape by an operation that has checked the
    /// shape ([`element_count`]). The length is checked here too, in every build: no tensor
    /// exists whose length disagrees with its shape.
    #[track_caller]
    pub(crate) fn from_parts(data: Vec<T>, shape: Vec<usize>) -> Self {
        match element_count("Tensor::from_parts", &shape) {
            Ok(n) if n == data.len() => Tensor {
                data: Arc::new(Buffer::new(data)),
                offset: 0,
                shape,
            },
            count => panic!(
                "internal error in perturb: a buffer of {} elements for shape {shape:?} ({count:?})",
                data.len()
            ),
        }
    }

    /// The elements `start .. start + shape's product` of this tensor's row-major order, as a
    /// tensor of `shape` sharing this one's buffer; `None` if they run past its end.
    pub(crate) fn window(&self, start: usize, shape: Vec<usize>) -> Option<Self> {
        let len = element_count("Tensor::window", &shape).ok()?;
        let end = start.checked_add(len)?;
        (end <= self.len()).then(|| Tensor {
            data: Arc::clone(&self.data),
            offset: self.offset + start,
            shape,
        })
    }

    /// A 0-dimensional tensor holding one value.
    ///
    /// ```
    /// let s = perturb::tensor::Tensor::scalar(2.5_f64);
    /// assert_eq!(s.shape(), &[] as &[usize]);
    /// assert_eq!(s.item(), Some(2.5));
    /// ```
    pub fn scalar(value: T) -> Self {
        Tensor::from_parts(vec![value], Vec::new())
    }

    /// A 1-dimensional tensor of the given values.
    ///
    /// ```
    /// let v = perturb::tensor::Tensor::vector(&[1.0_f64, 2.0, 3.0]);
    /// assert_eq!(v.shape(), &[3]);
    /// ```
    pub fn vector(values: &[T]) -> Self {
        Tensor::from_parts(values.to_vec(), vec![values.len()])
    }

    /// A tensor of the given shape with every element `value`, or an error naming the shape if
    /// it has more elements than a tensor can hold ([`Tensor::MAX_LEN`]).
    ///
    /// ```
    /// use perturb::tensor::Tensor;
    /// assert_eq!(Tensor::try_full(&[2, 2], 7.0_f64).unwrap().to_vec(), vec![7.0; 4]);
    /// // 2^32 * 2^32 elements do not fit in 64 bits: an error, not an empty tensor.
    /// assert!(Tensor::try_full(&[1 << 32, 1 << 32], 0.0_f64).is_err());
    /// ```
    pub fn try_full(shape: &[usize], value: T) -> Result<Self, Error> {
        Self::try_filled("Tensor::full", shape, value)
    }

    /// `value` repeated to fill `shape`, with `op` named in the error.
    fn try_filled(op: &'static str, shape: &[usize], value: T) -> Result<Self, Error> {
        let n = element_count(op, shape)?;
        Ok(Tensor::from_parts(
            buffers::filled(n, value),
            shape.to_vec(),
        ))
    }

    /// See [`try_full`](Tensor::try_full); panics (at the caller's line) where it returns an
    /// error.
    ///
    /// ```
    /// let t = perturb::tensor::Tensor::full(&[2, 2], 7.0_f64);
    /// assert_eq!(t.to_vec(), vec![7.0; 4]);
    /// ```
    #[track_caller]
    pub fn full(shape: &[usize], value: T) -> Self {
        or_panic(Self::try_filled("Tensor::full", shape, value))
    }

    /// Zeros of the given shape, or an error if the shape has more elements than a tensor can
    /// hold ([`Tensor::MAX_LEN`]).
    ///
    /// ```
    /// use perturb::tensor::Tensor;
    /// assert_eq!(Tensor::<f32>::try_zeros(&[3]).unwrap().to_vec(), vec![0.0; 3]);
    /// let err = Tensor::<f64>::try_zeros(&[1 << 32, 1 << 32]).unwrap_err();
    /// assert!(err.to_string().starts_with("Tensor::zeros: shape [4294967296, 4294967296]"));
    /// ```
    pub fn try_zeros(shape: &[usize]) -> Result<Self, Error> {
        Self::try_filled("Tensor::zeros", shape, T::zero())
    }

    /// See [`try_zeros`](Tensor::try_zeros); panics (at the caller's line) where it returns an
    /// error.
    ///
    /// ```
    /// assert_eq!(perturb::tensor::Tensor::<f32>::zeros(&[3]).to_vec(), vec![0.0; 3]);
    /// ```
    #[track_caller]
    pub fn zeros(shape: &[usize]) -> Self {
        or_panic(Self::try_zeros(shape))
    }

    /// Ones of the given shape, or an error if the shape has more elements than a tensor can
    /// hold ([`Tensor::MAX_LEN`]).
    ///
    /// ```
    /// use perturb::tensor::Tensor;
    /// assert_eq!(Tensor::<f64>::try_ones(&[2]).unwrap().to_vec(), vec![1.0; 2]);
    /// assert!(Tensor::<f64>::try_ones(&[usize::MAX, 2]).is_err());
    /// ```
    pub fn try_ones(shape: &[usize]) -> Result<Self, Error> {
        Self::try_filled("Tensor::ones", shape, T::one())
    }

    /// See [`try_ones`](Tensor::try_ones); panics (at the caller's line) where it returns an
    /// error.
    ///
    /// ```
    /// assert_eq!(perturb::tensor::Tensor::<f64>::ones(&[2]).to_vec(), vec![1.0; 2]);
    /// ```
    #[track_caller]
    pub fn ones(shape: &[usize]) -> Self {
        or_panic(Self::try_ones(shape))
    }

    /// `0, 1, ..., n - 1` as a vector; panics (at the caller's line) if `n` is more than
    /// [`Tensor::MAX_LEN`].
    ///
    /// ```
    /// assert_eq!(perturb::tensor::Tensor::<f64>::arange(3).to_vec(), vec![0.0, 1.0, 2.0]);
    /// ```
    #[track_caller]
    pub fn arange(n: usize) -> Self {
        or_panic(element_count("Tensor::arange", &[n]));
        Tensor::from_parts(
            (0..n)
                .map(|i| T::from_usize(i).unwrap_or_else(T::nan))
                .collect(),
            vec![n],
        )
    }

    /// `n` evenly spaced values from `start` to `end`, both included; panics (at the caller's
    /// line) if `n` is more than [`Tensor::MAX_LEN`].
    ///
    /// ```
    /// let t = perturb::tensor::Tensor::linspace(0.0_f64, 1.0, 5);
    /// assert_eq!(t.to_vec(), vec![0.0, 0.25, 0.5, 0.75, 1.0]);
    /// // Ends so far apart that their difference overflows.
    /// let wide = perturb::tensor::Tensor::linspace(-f64::MAX, f64::MAX, 3);
    /// assert_eq!(wide.to_vec(), vec![-f64::MAX, 0.0, f64::MAX]);
    /// ```
    #[track_caller]
    pub fn linspace(start: T, end: T, n: usize) -> Self {
        or_panic(element_count("Tensor::linspace", &[n]));
        let steps = T::from_usize(n.saturating_sub(1).max(1)).unwrap_or_else(T::nan);
        let step = (end - start) / steps;
        let at = |i: usize| {
            let i = T::from_usize(i).unwrap_or_else(T::nan);
            if step.is_finite() {
                start + step * i
            } else {
                // `end - start` overflows (from -1e308 to 1e308): weigh the ends instead.
                let t = i / steps;
                start * (T::one() - t) + end * t
            }
        };
        let data = (0..n)
            .map(|i| match i {
                0 => start,
                _ if i + 1 == n => end,
                _ => at(i),
            })
            .collect();
        Tensor::from_parts(data, vec![n])
    }

    /// Samples from the normal distribution with the given mean and standard deviation, from a
    /// generator seeded with `seed` (the same seed gives the same tensor on every platform); an
    /// error naming the operation if `mean` is not finite, `std` is negative or not finite, or
    /// the shape has more than [`Tensor::MAX_LEN`] elements.
    ///
    /// ```
    /// use perturb::tensor::Tensor;
    /// let a = Tensor::<f64>::try_randn(&[1000], 0.0, 1.0, 42).unwrap();
    /// assert_eq!(a.to_vec(), Tensor::<f64>::randn(&[1000], 0.0, 1.0, 42).to_vec());
    /// let mean = a.to_vec().iter().sum::<f64>() / 1000.0;
    /// assert!(mean.abs() < 0.1);
    /// // A negative standard deviation is a mistake, not a reflected distribution.
    /// let err = Tensor::<f64>::try_randn(&[3], 0.0, -1.0, 42).unwrap_err();
    /// assert!(err.to_string().starts_with("Tensor::randn: the standard deviation"));
    /// ```
    pub fn try_randn(shape: &[usize], mean: T, std: T, seed: u64) -> Result<Self, Error> {
        const OP: &str = "Tensor::randn";
        let n = element_count(OP, shape)?;
        if !mean.is_finite() {
            return Err(Error::InvalidArgument {
                op: OP,
                reason: format!("the mean is {mean}, not a finite number"),
            });
        }
        if !(std.is_finite() && std >= T::zero()) {
            return Err(Error::InvalidArgument {
                op: OP,
                reason: format!(
                    "the standard deviation is {std}; it must be finite and at least 0"
                ),
            });
        }
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let data = (0..n)
            .map(|_| {
                let z: f64 = StandardNormal.sample(&mut rng);
                mean + std * T::from_f64(z).unwrap_or_else(T::nan)
            })
            .collect();
        Ok(Tensor::from_parts(data, shape.to_vec()))
    }

    /// See [`try_randn`](Tensor::try_randn); panics (at the caller's line) where it returns an
    /// error.
    ///
    /// ```
    /// use perturb::tensor::Tensor;
    /// let a = Tensor::<f32>::randn(&[2, 3], 1.0, 0.5, 7);
    /// assert_eq!(a.shape(), &[2, 3]);
    /// ```
    #[track_caller]
    pub fn randn(shape: &[usize], mean: T, std: T, seed: u64) -> Self {
        or_panic(Self::try_randn(shape, mean, std, seed))
    }

    /// Samples uniformly from `[low, high)`, from a generator seeded with `seed` (`low` itself
    /// where `low == high`); an error naming the operation if an end is not finite, `low >
    /// high`, or the shape has more than [`Tensor::MAX_LEN`] elements.
    ///
    /// A draw that rounds to `high` (the unit draw rounded to 1 in `f32`, or `low + (high -
    /// low) u` rounded up) is drawn again, and ends so far apart that `high - low` overflows
    /// are weighed (`low (1 - u) + high u`), so every value lies in `[low, high)`.
    ///
    /// ```
    /// use perturb::tensor::Tensor;
    /// let a = Tensor::<f32>::try_rand_uniform(&[100], -1.0, 1.0, 7).unwrap();
    /// assert!(a.to_vec().iter().all(|&x| (-1.0..1.0).contains(&x)));
    /// // `high - low` overflows: the values are still finite and in range.
    /// let wide = Tensor::<f64>::try_rand_uniform(&[100], -f64::MAX, f64::MAX, 7).unwrap();
    /// assert!(wide.to_vec().iter().all(|&x| (-f64::MAX..f64::MAX).contains(&x)));
    /// // The ends the wrong way round are an error, not values from (high, low].
    /// let err = Tensor::<f64>::try_rand_uniform(&[3], 1.0, 0.0, 7).unwrap_err();
    /// assert!(err.to_string().starts_with("Tensor::rand_uniform: low 1 is above high 0"));
    /// ```
    pub fn try_rand_uniform(shape: &[usize], low: T, high: T, seed: u64) -> Result<Self, Error> {
        const OP: &str = "Tensor::rand_uniform";
        let n = element_count(OP, shape)?;
        if !(low.is_finite() && high.is_finite()) {
            return Err(Error::InvalidArgument {
                op: OP,
                reason: format!("the interval [{low}, {high}) must have finite ends"),
            });
        }
        if low > high {
            return Err(Error::InvalidArgument {
                op: OP,
                reason: format!("low {low} is above high {high}; the interval is [low, high)"),
            });
        }
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let span = high - low;
        let nonempty = low < high;
        let mut draw = || {
            let u: f64 = rng.random();
            let u = T::from_f64(u).unwrap_or_else(T::nan);
            if span.is_finite() {
                low + span * u
            } else {
                low * (T::one() - u) + high * u
            }
        };
        let data = (0..n)
            .map(|_| loop {
                let x = draw();
                // Only a non-empty interval can be missed; each try lands in it with
                // probability at least about 1/2 (the worst case: two adjacent floats).
                if x < high || !nonempty {
                    break x;
                }
            })
            .collect();
        Ok(Tensor::from_parts(data, shape.to_vec()))
    }

    /// See [`try_rand_uniform`](Tensor::try_rand_uniform); panics (at the caller's line) where
    /// it returns an error.
    ///
    /// ```
    /// use perturb::tensor::Tensor;
    /// let a = Tensor::<f64>::rand_uniform(&[4], 2.0, 3.0, 1);
    /// assert!(a.to_vec().iter().all(|&x| (2.0..3.0).contains(&x)));
    /// ```
    #[track_caller]
    pub fn rand_uniform(shape: &[usize], low: T, high: T, seed: u64) -> Self {
        or_panic(Self::try_rand_uniform(shape, low, high, seed))
    }

    /// The shape: the length of each axis.
    ///
    /// ```
    /// assert_eq!(perturb::tensor::Tensor::<f64>::zeros(&[2, 5]).shape(), &[2, 5]);
    /// ```
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The number of axes.
    ///
    /// ```
    /// assert_eq!(perturb::tensor::Tensor::<f64>::zeros(&[2, 5]).ndim(), 2);
    /// ```
    pub fn ndim(&self) -> usize {
        self.shape.len()
    }

    /// The number of elements (at most [`Tensor::MAX_LEN`]).
    ///
    /// ```
    /// assert_eq!(perturb::tensor::Tensor::<f64>::zeros(&[2, 5]).len(), 10);
    /// ```
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// Whether the tensor has no elements.
    ///
    /// ```
    /// assert!(perturb::tensor::Tensor::<f64>::zeros(&[0, 3]).is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The elements in row-major order.
    ///
    /// ```
    /// let t = perturb::tensor::Tensor::vector(&[1.0_f64, 2.0]);
    /// assert_eq!(t.as_slice(), &[1.0, 2.0]);
    /// ```
    pub fn as_slice(&self) -> &[T] {
        &self.data[self.offset..self.offset + self.len()]
    }

    /// The elements in row-major order, copied.
    ///
    /// ```
    /// assert_eq!(perturb::tensor::Tensor::vector(&[3.0_f64]).to_vec(), vec![3.0]);
    /// ```
    pub fn to_vec(&self) -> Vec<T> {
        self.as_slice().to_vec()
    }

    /// The elements, without a copy if this tensor is their only owner.
    ///
    /// ```
    /// let t = perturb::tensor::Tensor::vector(&[1.0_f64, 2.0]);
    /// assert_eq!(t.into_vec(), vec![1.0, 2.0]);
    /// ```
    pub fn into_vec(self) -> Vec<T> {
        if self.offset != 0 || self.data.len() != self.len() {
            return self.to_vec();
        }
        Arc::try_unwrap(self.data).map_or_else(|shared| shared.to_vec(), Buffer::into_vec)
    }

    /// The element at a multi-index, or `None` if the index is out of bounds or has the wrong
    /// number of axes.
    ///
    /// ```
    /// let t = perturb::tensor::Tensor::<f64>::arange(6).reshape(&[2, 3]).unwrap();
    /// assert_eq!(t.get(&[1, 0]), Some(3.0));
    /// assert_eq!(t.get(&[2, 0]), None);
    /// ```
    pub fn get(&self, index: &[usize]) -> Option<T> {
        if index.len() != self.shape.len() {
            return None;
        }
        let mut flat = 0;
        for (&i, &n) in index.iter().zip(&self.shape) {
            if i >= n {
                return None;
            }
            flat = flat * n + i;
        }
        self.as_slice().get(flat).copied()
    }

    /// The value of a tensor with exactly one element.
    ///
    /// ```
    /// assert_eq!(perturb::tensor::Tensor::full(&[1, 1], 4.0_f64).item(), Some(4.0));
    /// assert_eq!(perturb::tensor::Tensor::<f64>::zeros(&[2]).item(), None);
    /// ```
    pub fn item(&self) -> Option<T> {
        match self.as_slice() {
            [x] => Some(*x),
            _ => None,
        }
    }

    /// The same elements with a new shape of the same size (no copy); an error if the sizes
    /// differ or the new shape has more elements than a tensor can hold.
    ///
    /// ```
    /// use perturb::tensor::Tensor;
    /// let t = Tensor::<f64>::arange(6);
    /// assert_eq!(t.reshape(&[3, 2]).unwrap().shape(), &[3, 2]);
    /// assert!(t.reshape(&[4]).is_err());
    /// // Zero elements do not make an overflowing shape valid.
    /// assert!(Tensor::<f64>::zeros(&[0]).reshape(&[0, 1 << 32, 1 << 32]).is_err());
    /// ```
    pub fn reshape(&self, shape: &[usize]) -> Result<Self, Error> {
        if element_count("reshape", shape)? != self.len() {
            return Err(Error::ShapeMismatch {
                op: "reshape",
                lhs: self.shape.clone(),
                rhs: shape.to_vec(),
            });
        }
        Ok(Tensor {
            data: Arc::clone(&self.data),
            offset: self.offset,
            shape: shape.to_vec(),
        })
    }

    /// Applies `f` to every element (in parallel for large tensors).
    ///
    /// ```
    /// let t = perturb::tensor::Tensor::vector(&[1.0_f64, 4.0]).map(|x| x.sqrt());
    /// assert_eq!(t.to_vec(), vec![1.0, 2.0]);
    /// ```
    pub fn map(&self, f: impl Fn(T) -> T + Sync + Send) -> Self {
        self.map_with(super::kernels::Cost::Transcendental, f)
    }

    /// [`map`](Tensor::map) with the cost class that decides when it runs in parallel.
    pub(crate) fn map_with(
        &self,
        cost: super::kernels::Cost,
        f: impl Fn(T) -> T + Sync + Send,
    ) -> Self {
        Tensor::from_parts(
            super::kernels::map(self.as_slice(), cost, f),
            self.shape.clone(),
        )
    }

    /// One function of the exponential family on every element, by its vectorised loop.
    pub(crate) fn map_exp_family(&self, f: super::vmath::ExpFamily) -> Self {
        Tensor::from_parts(super::vmath::map(self.as_slice(), f), self.shape.clone())
    }

    /// Whether both tensors have the same shape and elements equal within `tol`, relative to
    /// the larger magnitude (or absolute below 1).
    ///
    /// ```
    /// let a = perturb::tensor::Tensor::vector(&[1.0_f64, 2.0]);
    /// assert!(a.all_close(&a.map(|x| x + 1e-13), 1e-12));
    /// ```
    pub fn all_close(&self, other: &Self, tol: T) -> bool {
        self.shape == other.shape
            && self
                .as_slice()
                .iter()
                .zip(other.as_slice())
                .all(|(&a, &b)| {
                    let scale = a.abs().max(b.abs()).max(T::one());
                    (a - b).abs() <= tol * scale || (a.is_nan() && b.is_nan())
                })
    }

    /// Converts every element to another float type.
    ///
    /// ```
    /// let t = perturb::tensor::Tensor::vector(&[0.5_f64]).cast::<f32>();
    /// assert_eq!(t.to_vec(), vec![0.5_f32]);
    /// ```
    pub fn cast<U: Element>(&self) -> Tensor<U> {
        Tensor::from_parts(
            self.as_slice()
                .iter()
                .map(|&x| U::from_f64(x.to_f64_value()).unwrap_or_else(U::nan))
                .collect(),
            self.shape.clone(),
        )
    }
}

/// See [`Tensor::MAX_LEN`].
const MAX_LEN: usize = isize::MAX as usize / 8;

/// The number of elements of `shape`, computed with checked arithmetic: an error naming `op`
/// and the shape if the product of its nonzero lengths exceeds [`Tensor::MAX_LEN`] (a zero
/// length does not excuse the others: every sub-product of a valid shape, such as the
/// `outer` and `inner` lengths around an axis, then fits too). Every element count of a new
/// shape is computed here.
pub(crate) fn element_count(op: &'static str, shape: &[usize]) -> Result<usize, Error> {
    let nonzero = shape
        .iter()
        .filter(|&&n| n != 0)
        .try_fold(1usize, |acc, &n| {
            acc.checked_mul(n).filter(|&p| p <= MAX_LEN)
        });
    match nonzero {
        Some(_) if shape.contains(&0) => Ok(0),
        Some(n) => Ok(n),
        None => Err(Error::InvalidArgument {
            op,
            reason: format!(
                "shape {shape:?} has more elements than a tensor can hold (the product of its \
                 lengths exceeds {MAX_LEN})"
            ),
        }),
    }
}

impl<T: Element> fmt::Debug for Tensor<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tensor(shape={:?}, data={})", self.shape, self)
    }
}

/// Shows the values nested by axis, as numpy does, eliding the middle of long axes.
impl<T: Element> fmt::Display for Tensor<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn write_axis<T: Element>(
            f: &mut fmt::Formatter<'_>,
            data: &[T],
            shape: &[usize],
        ) -> fmt::Result {
            let Some((&n, rest)) = shape.split_first() else {
                return write!(f, "{}", data.first().copied().unwrap_or_else(T::nan));
            };
            let stride: usize = rest.iter().product();
            // The first and last three of a long axis, visited directly: an axis of 2^40
            // entries (of an empty tensor, say) is not walked through.
            let (head, tail) = if n > 8 { (3, n - 3) } else { (n, n) };
            write!(f, "[")?;
            for i in (0..head).chain(tail..n) {
                if i == tail && head < tail {
                    write!(f, ", ...")?;
                }
                if i > 0 {
                    write!(f, ", ")?;
                }
                write_axis(f, &data[i * stride..(i + 1) * stride], rest)?;
            }
            write!(f, "]")
        }
        write_axis(f, self.as_slice(), &self.shape)
    }
}
