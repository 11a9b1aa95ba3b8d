//! Gradient checking for users: forward mode, reverse mode and finite differences compared in
//! random directions, the way perturb tests its own rules.

use std::fmt;
use std::ops::Range;

use super::array::Array;
use super::dense::Tensor;
use super::ravel::{ravel, split};
use super::tape::TensorTape;
use super::transforms::{element_count, jvp, vjp, TensorFn};
use crate::error::Error;
use crate::functional::Mode;
use crate::tree::Tree;

/// What [`check_grads`] compares, and how.
///
/// ```
/// use perturb::tensor::CheckOptions;
/// use perturb::Mode;
/// let options = CheckOptions { order: 2, modes: vec![Mode::Reverse], ..CheckOptions::default() };
/// assert_eq!(options.directions, 2);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct CheckOptions {
    /// The highest derivative order checked: 1 or 2.
    pub order: usize,
    /// The modes checked: [`Mode::Forward`] (JVPs), [`Mode::Reverse`] (VJPs); [`Mode::Auto`]
    /// means both.
    pub modes: Vec<Mode>,
    /// How many random direction pairs `(v, u)` each comparison uses.
    pub directions: usize,
    /// The seed of the random directions.
    pub seed: u64,
    /// The central-difference step, relative to `max(1, max |x|)`.
    pub step: f64,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions {
            order: 2,
            modes: vec![Mode::Forward, Mode::Reverse],
            directions: 2,
            seed: 0x5eed,
            step: 1e-5,
        }
    }
}

/// One comparison of [`check_grads`]: a derivative by AD against a central difference.
#[derive(Clone, Debug, PartialEq)]
pub struct Comparison {
    /// What was compared, e.g. `"order 2, forward over reverse"`.
    pub what: String,
    /// `<u, J v>` from automatic differentiation.
    pub ad: f64,
    /// The same number from central differences.
    pub finite_difference: f64,
    /// `|ad - finite_difference| / max(1, |finite_difference|)`.
    pub error: f64,
}

/// One recorded operation checked on its own, at the inputs it saw.
#[derive(Clone, Debug, PartialEq)]
pub struct OpComparison {
    /// The operation's name.
    pub op: &'static str,
    /// Its position on the tape.
    pub node: usize,
    /// The worst error of its JVP against a central difference of its value.
    pub forward_error: f64,
    /// The worst error of its VJP against the same central difference.
    pub reverse_error: f64,
}

impl OpComparison {
    /// The larger of the two errors.
    ///
    /// ```
    /// let c = perturb::tensor::OpComparison { op: "exp", node: 1, forward_error: 1e-9, reverse_error: 2e-9 };
    /// assert_eq!(c.error(), 2e-9);
    /// ```
    pub fn error(&self) -> f64 {
        self.forward_error.max(self.reverse_error)
    }
}

/// The result of [`check_grads`]: every comparison of the whole function, and every operation
/// it recorded checked on its own, so a wrong rule is named.
#[derive(Clone, Debug, PartialEq)]
pub struct GradReport {
    /// The comparisons of the whole function's derivatives.
    pub comparisons: Vec<Comparison>,
    /// Each recorded operation's own check.
    pub ops: Vec<OpComparison>,
}

impl GradReport {
    /// The worst comparison of the whole function.
    ///
    /// ```
    /// use perturb::tensor::{check_grads, Array, CheckOptions, Tensor, TensorFn};
    /// struct F;
    /// impl TensorFn<f64> for F {
    ///     fn call<A: Array<Elem = f64>>(&self, x: &A) -> Result<A, perturb::Error> { Ok(x.exp().sum_all()) }
    /// }
    /// let report = check_grads(&F, &Tensor::vector(&[0.1, 0.2]), &CheckOptions::default()).unwrap();
    /// assert!(report.worst().unwrap().error < 1e-6);
    /// ```
    pub fn worst(&self) -> Option<&Comparison> {
        self.comparisons
            .iter()
            .max_by(|a, b| a.error.total_cmp(&b.error))
    }

    /// The operation whose own check is worst.
    ///
    /// ```
    /// use perturb::tensor::{check_grads, Array, CheckOptions, Tensor, TensorFn};
    /// struct F;
    /// impl TensorFn<f64> for F {
    ///     fn call<A: Array<Elem = f64>>(&self, x: &A) -> Result<A, perturb::Error> { Ok(x.sin().sum_all()) }
    /// }
    /// let report = check_grads(&F, &Tensor::vector(&[0.1, 0.2]), &CheckOptions::default()).unwrap();
    /// assert!(["sin", "sum_axes"].contains(&report.worst_op().unwrap().op));
    /// ```
    pub fn worst_op(&self) -> Option<&OpComparison> {
        self.ops
            .iter()
            .max_by(|a, b| a.error().total_cmp(&b.error()))
    }

    /// Whether every comparison and every operation's check is within `tolerance`.
    ///
    /// ```
    /// use perturb::tensor::{check_grads, Array, CheckOptions, Tensor, TensorFn};
    /// struct F;
    /// impl TensorFn<f64> for F {
    ///     fn call<A: Array<Elem = f64>>(&self, x: &A) -> Result<A, perturb::Error> { Ok(x.tanh()) }
    /// }
    /// let report = check_grads(&F, &Tensor::vector(&[0.1, -0.7]), &CheckOptions::default()).unwrap();
    /// assert!(report.passes(1e-6), "{report}");
    /// ```
    pub fn passes(&self, tolerance: f64) -> bool {
        self.comparisons.iter().all(|c| c.error <= tolerance)
            && self.ops.iter().all(|o| o.error() <= tolerance)
    }
}

impl fmt::Display for GradReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "gradient check: AD against central differences")?;
        for c in &self.comparisons {
            writeln!(
                f,
                "  {:<40} ad {:>14.7e}  fd {:>14.7e}  error {:.1e}",
                c.what, c.ad, c.finite_difference, c.error
            )?;
        }
        writeln!(f, "each operation at the inputs it saw:")?;
        for o in &self.ops {
            writeln!(
                f,
                "  node {:>4} {:<16} forward error {:.1e}  reverse error {:.1e}",
                o.node, o.op, o.forward_error, o.reverse_error
            )?;
        }
        if let Some(o) = self.worst_op() {
            writeln!(
                f,
                "worst operation: {} (node {}), error {:.1e}",
                o.op,
                o.node,
                o.error()
            )?;
        }
        Ok(())
    }
}

/// `<a, b>`, summed over all elements.
fn dot(a: &Tensor<f64>, b: &Tensor<f64>) -> f64 {
    a.as_slice()
        .iter()
        .zip(b.as_slice())
        .map(|(x, y)| x * y)
        .sum()
}

fn relative_error(ad: f64, fd: f64) -> f64 {
    let e = (ad - fd).abs() / fd.abs().max(1.0);
    if e.is_nan() {
        f64::INFINITY
    } else {
        e
    }
}

/// A random direction with unit length (zeros for an empty tensor).
fn direction(shape: &[usize], seed: u64) -> Tensor<f64> {
    direction_in(shape, seed, None)
}

/// A random direction with unit length whose flat elements outside `span` (when given) are
/// zero.
fn direction_in(shape: &[usize], seed: u64, span: Option<&Range<usize>>) -> Tensor<f64> {
    let mut v = Tensor::randn(shape, 0.0, 1.0, seed);
    if let Some(span) = span {
        let mut values = v.to_vec();
        for (i, x) in values.iter_mut().enumerate() {
            if !span.contains(&i) {
                *x = 0.0;
            }
        }
        v = Tensor::from_vec(values, shape).expect("the shape of the values");
    }
    let norm = dot(&v, &v).sqrt();
    if norm > 0.0 {
        v.scale(1.0 / norm)
    } else {
        v
    }
}

/// `x -> J(x) v`: the directional derivative of `f`, itself a [`TensorFn`].
struct Jvp<'a, F> {
    f: &'a F,
    v: &'a Tensor<f64>,
}

impl<F: TensorFn<f64>> TensorFn<f64> for Jvp<'_, F> {
    fn call<A: Array<Elem = f64>>(&self, x: &A) -> Result<A, Error> {
        Ok(jvp(|x| self.f.call(x), x, &A::lift(self.v.clone()))?.1)
    }
}

/// `x -> J(x)^T u`: the pulled-back cotangent of `f`, itself a [`TensorFn`].
struct Vjp<'a, F> {
    f: &'a F,
    u: &'a Tensor<f64>,
}

impl<F: TensorFn<f64>> TensorFn<f64> for Vjp<'_, F> {
    fn call<A: Array<Elem = f64>>(&self, x: &A) -> Result<A, Error> {
        Ok(vjp(|x| self.f.call(x), x, &A::lift(self.u.clone()))?.1)
    }
}

/// Compares `<u, J v>` of `f` at `x` by forward mode (`<u, jvp(v)>`), by reverse mode
/// (`<vjp(u), v>`) and by a central difference, for each direction pair.
/// With `span`, the directions `v` move only those flat elements of `x`.
fn compare_first_order<F: TensorFn<f64>>(
    f: &F,
    x: &Tensor<f64>,
    label: &str,
    options: &CheckOptions,
    seed: u64,
    span: Option<&Range<usize>>,
    out: &mut Vec<Comparison>,
) -> Result<(), Error> {
    let y = f.call(x)?;
    let scale = x.as_slice().iter().fold(1.0_f64, |m, v| m.max(v.abs()));
    let h = options.step * scale;
    let (forward, reverse) = modes(&options.modes);
    for d in 0..options.directions as u64 {
        let v = direction_in(x.shape(), seed.wrapping_add(2 * d), span);
        let u = direction(y.shape(), seed.wrapping_add(2 * d + 1));
        let plus = f.call(&x.add(&v.scale(h)))?;
        let minus = f.call(&x.sub(&v.scale(h)))?;
        let fd = (dot(&u, &plus) - dot(&u, &minus)) / (2.0 * h);
        let mut push = |mode: &str, ad: f64| {
            out.push(Comparison {
                what: label.replace("{mode}", mode),
                ad,
                finite_difference: fd,
                error: relative_error(ad, fd),
            })
        };
        if forward {
            let (_, t) = jvp(|x| f.call(x), x, &v)?;
            push("forward", dot(&u, &t));
        }
        if reverse {
            let (_, ct) = vjp(|x| f.call(x), x, &u)?;
            push("reverse", dot(&ct, &v));
        }
    }
    Ok(())
}

fn modes(modes: &[Mode]) -> (bool, bool) {
    let has = |m: Mode| modes.contains(&m) || modes.contains(&Mode::Auto);
    (has(Mode::Forward), has(Mode::Reverse))
}

/// Checks the recorded operations of `f` at `x` one by one: each operation's JVP and VJP at
/// the inputs it saw against a central difference of its value.
fn compare_ops<F: TensorFn<f64>>(
    f: &F,
    x: &Tensor<f64>,
    options: &CheckOptions,
) -> Result<Vec<OpComparison>, Error> {
    let tape = TensorTape::keeping_values();
    let xv = tape.var(x.clone());
    f.call(&xv)?;
    let mut result = Vec::new();
    let mut failure = None;
    tape.for_each_op(|node, op, inputs, output| {
        let check = || -> Result<OpComparison, Error> {
            let refs = inputs;
            let seed = options.seed.wrapping_add(1000 * node as u64);
            let u = direction(output.shape(), seed.wrapping_add(999));
            let cts = op.vjp(refs, output, &u, &vec![true; inputs.len()])?;
            // Only differentiable inputs move (not a mask or an index).
            let vs: Vec<Tensor<f64>> = inputs
                .iter()
                .zip(&cts)
                .enumerate()
                .map(|(i, (x, ct))| match ct {
                    Some(_) => direction(x.shape(), seed.wrapping_add(i as u64)),
                    None => Tensor::zeros(x.shape()),
                })
                .collect();
            let scale = inputs
                .iter()
                .flat_map(|x| x.as_slice())
                .fold(1.0_f64, |m, v| m.max(v.abs()));
            let h = options.step * scale;
            let shifted = |sign: f64| -> Result<Tensor<f64>, Error> {
                let moved: Vec<Tensor<f64>> = inputs
                    .iter()
                    .zip(&vs)
                    .map(|(x, v)| x.add(&v.scale(sign * h)))
                    .collect();
                let moved_refs: Vec<&Tensor<f64>> = moved.iter().collect();
                op.apply(&moved_refs)
            };
            let fd = (dot(&u, &shifted(1.0)?) - dot(&u, &shifted(-1.0)?)) / (2.0 * h);
            let tangents: Vec<Option<&Tensor<f64>>> = vs
                .iter()
                .zip(&cts)
                .map(|(v, ct)| ct.as_ref().map(|_| v))
                .collect();
            let forward = op
                .jvp(refs, output, &tangents)?
                .map_or(0.0, |t| dot(&u, &t));
            let reverse: f64 = cts
                .iter()
                .zip(&vs)
                .map(|(ct, v)| ct.as_ref().map_or(0.0, |ct| dot(ct, v)))
                .sum();
            Ok(OpComparison {
                op: op.name(),
                node,
                forward_error: relative_error(forward, fd),
                reverse_error: relative_error(reverse, fd),
            })
        };
        match check() {
            Ok(c) => result.push(c),
            Err(e) => {
                failure.get_or_insert(e);
            }
        }
    })?;
    match failure {
        Some(e) => Err(e),
        None => Ok(result),
    }
}

/// Checks the derivatives of `f` at `x` the way perturb checks its own rules: forward mode,
/// reverse mode and central differences compared as `<u, J v>` in random unit directions, at
/// order one and (with `order: 2`) order two in every nesting of the chosen modes: forward
/// over forward, reverse over forward, forward over reverse, reverse over reverse. Each
/// operation `f` records is also checked on its own, so the report names a wrong rule.
///
/// `x` may be any [tree](crate::tree) of tensors (a model), with `f` a `TensorFn<f64, X>` of
/// it: the tree is then checked as one flat vector ([`ravel`](crate::tensor::ravel)), and
/// first-order comparisons along each leaf alone are added, labelled with the leaf's path
/// (`order 1, reverse, leaf '1.0'`), so a wrong derivative is traced to its leaf.
///
/// Returns an error if `x` has no elements (nothing would be checked) or if `f` or a rule fails
/// to run; whether the derivatives agree is in the
/// [`GradReport`] (see [`GradReport::passes`]). Errors are relative for values above 1 and
/// absolute below; with the default step, right rules give about 1e-8 or less.
///
/// ```
/// use perturb::tensor::{check_grads, Array, CheckOptions, Element, Op, Tensor, TensorFn};
/// use perturb::Error;
///
/// /// A custom op with a wrong JVP: d/dx x^3 is 3 x^2, not 2 x^2.
/// #[derive(Clone, Debug)]
/// struct BadCube;
/// impl Op for BadCube {
///     fn name(&self) -> &'static str { "bad_cube" }
///     fn eval<T: Element>(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>, Error> {
///         Ok(x[0].map(|v| v * v * v))
///     }
///     fn jvp<A: Array>(&self, x: &[&A], _: &A, t: &[Option<&A>]) -> Result<Option<A>, Error> {
///         let Some(t) = t[0] else { return Ok(None) };
///         Ok(Some(t.try_mul(&x[0].square().scale(A::elem(2.0)))?))
///     }
/// }
/// struct F;
/// impl TensorFn<f64> for F {
///     fn call<A: Array<Elem = f64>>(&self, x: &A) -> Result<A, Error> {
///         Ok(x.exp().apply_op(&BadCube)?.sum_all())
///     }
/// }
/// let report = check_grads(&F, &Tensor::vector(&[0.3, -0.2]), &CheckOptions::default()).unwrap();
/// assert!(!report.passes(1e-6));
/// assert_eq!(report.worst_op().unwrap().op, "bad_cube");
/// ```
pub fn check_grads<X, F>(f: &F, x: &X, options: &CheckOptions) -> Result<GradReport, Error>
where
    X: Tree<Tensor<f64>>,
    F: TensorFn<f64, X>,
{
    if !(1..=2).contains(&options.order) {
        return Err(Error::InvalidArgument {
            op: "check_grads",
            reason: format!("order {} is not checked; use 1 or 2", options.order),
        });
    }
    let (forward, reverse) = modes(&options.modes);
    if !forward && !reverse {
        return Err(Error::InvalidArgument {
            op: "check_grads",
            reason: "no mode to check: give Mode::Forward, Mode::Reverse or Mode::Auto".into(),
        });
    }
    let leaves = x.leaves();
    if leaves.iter().all(|leaf| leaf.is_empty()) {
        // Every comparison would be 0 against 0: a pass that checked nothing.
        return Err(Error::InvalidArgument {
            op: "check_grads",
            reason: format!(
                "the input has no elements to check (no leaves, or {} leaves of zero elements)",
                leaves.len()
            ),
        });
    }
    let f = &Flat {
        f,
        tree: x,
        shapes: leaves.iter().map(|l| l.shape()).collect(),
    };
    let x = &match leaves[..] {
        [leaf] => leaf.clone(),
        _ => ravel(x)?,
    };
    let mut comparisons = Vec::new();
    let seed = options.seed;
    compare_first_order(
        f,
        x,
        "order 1, {mode}",
        options,
        seed,
        None,
        &mut comparisons,
    )?;
    if leaves.len() > 1 {
        let mut start = 0;
        for (path, leaf) in f.tree.named_leaves() {
            let span = start..start + element_count(leaf.shape());
            start = span.end;
            let label = format!("order 1, {{mode}}, leaf '{path}'");
            compare_first_order(f, x, &label, options, seed, Some(&span), &mut comparisons)?;
        }
    }
    if options.order == 2 {
        let y = f.call(x)?;
        for d in 0..options.directions as u64 {
            let base = seed.wrapping_add(7919 * (d + 1));
            if forward {
                let v = direction(x.shape(), base);
                let g = Jvp { f, v: &v };
                compare_first_order(
                    &g,
                    x,
                    "order 2, {mode} over forward",
                    options,
                    base,
                    None,
                    &mut comparisons,
                )?;
            }
            if reverse {
                let u = direction(y.shape(), base + 1);
                let g = Vjp { f, u: &u };
                compare_first_order(
                    &g,
                    x,
                    "order 2, {mode} over reverse",
                    options,
                    base,
                    None,
                    &mut comparisons,
                )?;
            }
        }
    }
    let ops = compare_ops(f, x, options)?;
    Ok(GradReport { comparisons, ops })
}

/// A function of a tree as a function of one array: the tree's only leaf itself, or the leaves
/// raveled into one vector and cut apart again by differentiable operations.
struct Flat<'a, F, X> {
    f: &'a F,
    tree: &'a X,
    shapes: Vec<&'a [usize]>,
}

impl<X: Tree<Tensor<f64>>, F: TensorFn<f64, X>> TensorFn<f64> for Flat<'_, F, X> {
    fn call<A: Array<Elem = f64>>(&self, v: &A) -> Result<A, Error> {
        let leaves = match self.shapes[..] {
            [_] => vec![v.clone()],
            _ => split(v, &self.shapes)?,
        };
        self.f.call(&self.tree.unflatten(leaves)?)
    }
}
