//! `DualVec<'a, T>`: a value and a run-time number of tangents, stored in a [`TangentArena`].

use std::cell::UnsafeCell;
use std::fmt;
use std::panic::Location;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::debug;
use crate::error::Error;
use crate::number::{impl_ad_number, AdNumber};
use crate::scalar::{scale_tangent, BinaryOp, Scalar, UnaryOp};

static NEXT_ARENA_ID: AtomicU64 = AtomicU64::new(1);
const CONSTANT: u32 = u32::MAX;

/// Storage for the tangents of [`DualVec`] numbers: one row of `width` tangents per value.
///
/// A dual number with a run-time count of tangents cannot hold them inline and still be `Copy`
/// (which `num_traits::Float` requires), so the rows live here and a `DualVec` is a handle. Like a
/// [`Tape`](crate::Tape) the arena grows by appending and is emptied by
/// [`clear`](TangentArena::clear), which keeps the buffer.
///
/// ```
/// use perturb::TangentArena;
///
/// // The lecture's forward_grads: every partial of f(x1, x2, x3) in one forward pass.
/// let arena = TangentArena::new(3);
/// let x = arena.variables(&[1.0_f64, 2.0, 3.0]).unwrap();
/// let f = x[0] * x[1] + x[2];
/// assert_eq!(arena.tangents(f).unwrap(), vec![2.0, 1.0, 1.0]);
/// ```
pub struct TangentArena<T> {
    id: u64,
    width: usize,
    // Only `push_*` mutate the rows; they run no user code while they hold the borrow, and the
    // arena is not `Sync`, so no other borrow can be live at the same time.
    rows: UnsafeCell<Vec<T>>,
}

impl<T: Scalar> TangentArena<T> {
    /// An empty arena for numbers with `width` tangents each.
    ///
    /// ```
    /// assert_eq!(perturb::TangentArena::<f64>::new(4).width(), 4);
    /// ```
    pub fn new(width: usize) -> Self {
        TangentArena {
            id: NEXT_ARENA_ID.fetch_add(1, Ordering::Relaxed),
            width,
            rows: UnsafeCell::new(Vec::new()),
        }
    }

    /// The number of tangents each value carries.
    ///
    /// ```
    /// assert_eq!(perturb::TangentArena::<f32>::new(2).width(), 2);
    /// ```
    pub fn width(&self) -> usize {
        self.width
    }

    /// A value with the given tangents. `tangents` must have [`width`](Self::width) entries.
    ///
    /// ```
    /// let arena = perturb::TangentArena::new(2);
    /// let d = arena.dual(1.0_f64, &[0.5, -1.0]).unwrap();
    /// assert_eq!(arena.tangents(d * 2.0).unwrap(), vec![1.0, -2.0]);
    /// ```
    pub fn dual(&self, value: T, tangents: &[T]) -> Result<DualVec<'_, T>, Error> {
        if tangents.len() != self.width {
            return Err(Error::LengthMismatch {
                op: "TangentArena::dual",
                what: "tangents",
                expected: self.width,
                found: tangents.len(),
            });
        }
        // SAFETY: see the `rows` field.
        let rows = unsafe { &mut *self.rows.get() };
        let row = self.next_row(rows.len());
        rows.extend_from_slice(tangents);
        Ok(DualVec {
            arena: Some(self),
            row,
            value,
        })
    }

    /// One input per value, the `i`-th seeded with the `i`-th unit direction, so that one forward
    /// pass gives the partial derivative with respect to each. Needs exactly
    /// [`width`](Self::width) values.
    ///
    /// ```
    /// let arena = perturb::TangentArena::new(2);
    /// let x = arena.variables(&[3.0_f64, 4.0]).unwrap();
    /// assert_eq!(arena.tangents(x[0] * x[1]).unwrap(), vec![4.0, 3.0]);
    /// assert!(arena.variables(&[1.0]).is_err());
    /// ```
    pub fn variables(&self, values: &[T]) -> Result<Vec<DualVec<'_, T>>, Error> {
        if values.len() != self.width {
            return Err(Error::LengthMismatch {
                op: "TangentArena::variables",
                what: "values",
                expected: self.width,
                found: values.len(),
            });
        }
        let mut seed = vec![T::zero(); self.width];
        let mut out = Vec::with_capacity(values.len());
        for (i, &v) in values.iter().enumerate() {
            seed[i] = T::one();
            out.push(self.dual(v, &seed)?);
            seed[i] = T::zero();
        }
        Ok(out)
    }

    /// The tangents of `x` (all zero for a constant); an error if `x` belongs to another arena.
    ///
    /// ```
    /// let arena = perturb::TangentArena::<f64>::new(2);
    /// assert_eq!(arena.tangents(perturb::DualVec::constant(1.0)).unwrap(), vec![0.0, 0.0]);
    /// ```
    pub fn tangents(&self, x: DualVec<'_, T>) -> Result<Vec<T>, Error> {
        match x.arena {
            None => Ok(vec![T::zero(); self.width]),
            Some(arena) if arena.id == self.id => Ok(self.row(x.row).to_vec()),
            Some(arena) => Err(Error::ForeignVariable {
                op: "TangentArena::tangents",
                expected: self.id,
                found: arena.id,
            }),
        }
    }

    /// Forgets every row but keeps the buffer.
    ///
    /// ```
    /// let mut arena = perturb::TangentArena::<f64>::new(1);
    /// let _ = arena.variables(&[1.0]).unwrap();
    /// arena.clear();
    /// ```
    pub fn clear(&mut self) {
        self.rows.get_mut().clear();
    }

    fn next_row(&self, len: usize) -> u32 {
        let row = len.checked_div(self.width).unwrap_or(0);
        match u32::try_from(row) {
            Ok(r) if r != CONSTANT => r,
            _ => panic!("perturb: a tangent arena holds at most {CONSTANT} rows; clear it"),
        }
    }

    fn row(&self, row: u32) -> &[T] {
        // SAFETY: see the `rows` field.
        let rows = unsafe { &*self.rows.get() };
        let start = row as usize * self.width;
        &rows[start..start + self.width]
    }

    /// Appends `scale * row(src)`.
    #[inline]
    fn push_scaled(&self, src: u32, scale: T) -> u32 {
        // SAFETY: see the `rows` field; the borrow ends before the function returns.
        let rows = unsafe { &mut *self.rows.get() };
        let start = rows.len();
        let row = self.next_row(start);
        let from = src as usize * self.width;
        rows.extend_from_within(from..from + self.width);
        for t in &mut rows[start..] {
            *t = scale_tangent(scale, *t);
        }
        row
    }

    /// Appends `da * row(a) + db * row(b)`.
    #[inline]
    fn push_combined(&self, a: u32, da: T, b: u32, db: T) -> u32 {
        // SAFETY: see the `rows` field; the borrow ends before the function returns.
        let rows = unsafe { &mut *self.rows.get() };
        let start = rows.len();
        let row = self.next_row(start);
        let from = a as usize * self.width;
        rows.extend_from_within(from..from + self.width);
        let (old, new) = rows.split_at_mut(start);
        let b_row = &old[b as usize * self.width..][..self.width];
        for (t, &tb) in new.iter_mut().zip(b_row) {
            *t = scale_tangent(da, *t) + scale_tangent(db, tb);
        }
        row
    }
}

impl<T> fmt::Debug for TangentArena<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TangentArena")
            .field("id", &self.id)
            .field("width", &self.width)
            .finish()
    }
}

/// A dual number with a run-time count of tangents, kept in a [`TangentArena`].
///
/// `Copy` and `num_traits::Float`, so generic code runs on it; one forward pass gives the
/// derivatives along all [`width`](TangentArena::width) directions.
///
/// ```
/// use perturb::TangentArena;
/// use num_traits::Float;
///
/// fn f<T: Float>(x: &[T]) -> T {
///     x.iter().map(|&xi| xi * xi).fold(T::zero(), |a, b| a + b).sqrt()
/// }
/// let arena = TangentArena::new(2);
/// let x = arena.variables(&[3.0_f64, 4.0]).unwrap();
/// let y = f(&x);
/// assert_eq!(y.value(), 5.0);
/// let grad = arena.tangents(y).unwrap(); // x / |x|
/// assert!((grad[0] - 0.6).abs() < 1e-15 && (grad[1] - 0.8).abs() < 1e-15);
/// ```
#[derive(Clone, Copy)]
pub struct DualVec<'a, T> {
    arena: Option<&'a TangentArena<T>>,
    row: u32,
    value: T,
}

impl<T: Scalar> DualVec<'_, T> {
    /// A constant: all tangents zero, stored nowhere.
    ///
    /// ```
    /// assert_eq!(perturb::DualVec::constant(2.0_f64).value(), 2.0);
    /// ```
    #[inline]
    pub fn constant(value: T) -> Self {
        DualVec {
            arena: None,
            row: CONSTANT,
            value,
        }
    }

    /// The primal value.
    ///
    /// ```
    /// let arena = perturb::TangentArena::new(1);
    /// assert_eq!(arena.variables(&[1.5_f64]).unwrap()[0].value(), 1.5);
    /// ```
    #[inline]
    pub fn value(self) -> T {
        self.value
    }
}

impl<T: Scalar> AdNumber for DualVec<'_, T> {
    type Primal = T;
    #[inline(always)]
    fn primal(self) -> T {
        self.value
    }
    #[inline(always)]
    fn lift(value: T) -> Self {
        DualVec::constant(value)
    }
}

impl<T: Scalar> Scalar for DualVec<'_, T> {
    const ORDER: usize = T::ORDER + 1;

    #[inline]
    fn is_exact_zero(self) -> bool {
        self.value.is_exact_zero()
            && match self.arena {
                None => true,
                Some(arena) => arena.row(self.row).iter().all(|t| t.is_exact_zero()),
            }
    }

    fn first_non_finite(self) -> Option<f64> {
        self.value.first_non_finite().or_else(|| {
            self.arena.and_then(|arena| {
                arena
                    .row(self.row)
                    .iter()
                    .find_map(|t| t.first_non_finite())
            })
        })
    }

    #[inline]
    #[track_caller]
    fn apply_unary<O: UnaryOp>(op: &O, x: Self) -> Self {
        let y = unary(op, x);
        if debug::enabled() {
            debug::check_scalar(op.name(), Location::caller(), &[x], y);
        }
        y
    }

    #[inline]
    #[track_caller]
    fn apply_binary<O: BinaryOp>(op: &O, a: Self, b: Self) -> Self {
        let y = binary(op, a, b);
        if debug::enabled() {
            debug::check_scalar(op.name(), Location::caller(), &[a, b], y);
        }
        y
    }
}

#[inline(always)]
fn unary<'a, T: Scalar, O: UnaryOp>(op: &O, x: DualVec<'a, T>) -> DualVec<'a, T> {
    let value = op.func(x.value);
    match x.arena {
        None => DualVec::constant(value),
        Some(arena) => {
            let d = op.grads(x.value, value);
            DualVec {
                arena: Some(arena),
                row: arena.push_scaled(x.row, d),
                value,
            }
        }
    }
}

#[inline(always)]
#[track_caller]
fn binary<'a, T: Scalar, O: BinaryOp>(
    op: &O,
    a: DualVec<'a, T>,
    b: DualVec<'a, T>,
) -> DualVec<'a, T> {
    let value = op.func(a.value, b.value);
    let (arena, row) = match (a.arena, b.arena) {
        (None, None) => return DualVec::constant(value),
        (Some(arena), None) => {
            let (da, _) = op.grads(a.value, b.value, value);
            (arena, arena.push_scaled(a.row, da))
        }
        (None, Some(arena)) => {
            let (_, db) = op.grads(a.value, b.value, value);
            (arena, arena.push_scaled(b.row, db))
        }
        (Some(aa), Some(ab)) => {
            if aa.id != ab.id {
                mixed_arenas(aa.id, ab.id);
            }
            let (da, db) = op.grads(a.value, b.value, value);
            (aa, aa.push_combined(a.row, da, b.row, db))
        }
    };
    DualVec {
        arena: Some(arena),
        row,
        value,
    }
}

#[cold]
#[inline(never)]
#[track_caller]
fn mixed_arenas(a: u64, b: u64) -> ! {
    panic!(
        "perturb: an operation combined a DualVec of arena #{a} with one of arena #{b}; they cannot be mixed"
    )
}

impl_ad_number!(['a, T: Scalar] DualVec<'a, T>, T);

impl<T: Scalar> fmt::Debug for DualVec<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.arena {
            Some(arena) => write!(f, "DualVec({:?}, {:?})", self.value, arena.row(self.row)),
            None => write!(f, "DualVec({:?} constant)", self.value),
        }
    }
}

/// Shows the value.
impl<T: Scalar> fmt::Display for DualVec<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.value, f)
    }
}
