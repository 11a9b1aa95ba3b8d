//! The forward-mode column of the per-operation tables (`tensor_elementwise.rs`,
//! `tensor_reduce_shape.rs`, `tensor_linalg.rs`, `tensor_forward.rs`): one set of checks, run on
//! every row at a seeded point `x` with seeded directions `v`, `z` and output weights `u`, all in
//! `f64`.
//!
//! First order ([`check_first_order`]):
//! - the JVP `J v`, by [`DualTensor`] inputs, against the central difference
//!   `(f(x + h v) - f(x - h v)) / 2h`, element by element, with all inputs perturbed and with
//!   each input alone (the others constant, so every rule's "no tangent here" branch runs);
//! - the value carried by the dual tensor is the plain value, bit for bit;
//! - the JVP and the VJP are transposes: `<u, J v> == <J^T u, v>` to 1e-12 relative.
//!
//! Second order ([`check_second_order`]):
//! - forward over reverse: the JVP along `v` of the VJP map `x -> J(x)^T u` (a tape over dual
//!   tensors, so each `Op::vjp` runs on `DualTensor`s), against a central difference of the
//!   first-order VJP;
//! - reverse over forward: the VJP with cotangent `u` of the JVP map `x -> J(x) v` (dual tensors
//!   over tape variables, so each `Op::jvp` is recorded on a `TensorTape`). By the symmetry of
//!   second derivatives it is the same vector as forward over reverse, checked to 1e-12, and
//!   its projection on `z` is checked against a central difference of the JVP along `z`;
//! - forward over forward: the JVP along `z` of the JVP map `x -> J(x) v` (dual tensors of dual
//!   tensors), against the same central difference element by element, symmetric in `v` and `z`,
//!   and consistent with reverse over forward (`<u, d/dz J v> == <d/dx <u, J v>, z>`).
//!
//! Batching ([`check_batched`], run by [`check_first_order`]):
//! - the JVP with a stack of three tangents at once (a [`Batched`] stack) equals the three JVPs
//!   one at a time, and the VJP with a stack of three cotangents the three VJPs;
//! - the function mapped over stacks of inputs (each input stacked, and each alone stacked with
//!   the others single) equals the function at each member.
//!
//! Inputs marked inactive (masks, indices) are constants at every level; their directions are
//! ignored.

#![allow(dead_code)]

use perturb::tensor::{hvp, Array, Batched, DualTensor, Tensor, TensorTape, TensorVar};
use perturb::Error;

/// splitmix64: a small seeded generator, so the tests need no dependency. The tables draw
/// their points, directions and weights from it; a file adds its own samplers (`impl
/// SplitMix` beside its table).
pub struct SplitMix(pub u64);

impl SplitMix {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[lo, hi)`.
    pub fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        let u = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        lo + (hi - lo) * u
    }

    /// A tensor of `shape` with entries uniform in `[lo, hi)`.
    pub fn tensor(&mut self, shape: &[usize], lo: f64, hi: f64) -> Tensor<f64> {
        let n = shape.iter().product();
        let data = (0..n).map(|_| self.uniform(lo, hi)).collect();
        Tensor::from_vec(data, shape).unwrap()
    }
}

/// A function of several tensors, written once for every array type, so the checks can run it
/// on plain tensors, dual tensors, tape variables and their nestings.
pub trait Function {
    fn call<A: Array<Elem = f64>>(&self, xs: &[&A]) -> Result<A, Error>;
}

/// Central-difference step for first derivatives.
pub const H1: f64 = 1e-6;
/// Central-difference step for second derivatives (differences of first derivatives).
pub const H2: f64 = 1e-5;
/// Agreement required between two exact computations of the same quantity (JVP against VJP,
/// one second-order mode against another), relative to the size of the terms summed.
pub const EXACT: f64 = 1e-12;

type Dual = DualTensor<Tensor<f64>>;

pub fn dot(a: &Tensor<f64>, b: &Tensor<f64>) -> f64 {
    assert_eq!(a.shape(), b.shape());
    a.as_slice()
        .iter()
        .zip(b.as_slice())
        .map(|(x, y)| x * y)
        .sum()
}

/// `sum |a_k b_k|`: the size of the terms of `dot(a, b)`, the scale its rounding error is
/// relative to.
fn abs_dot(a: &Tensor<f64>, b: &Tensor<f64>) -> f64 {
    a.as_slice()
        .iter()
        .zip(b.as_slice())
        .map(|(x, y)| (x * y).abs())
        .sum()
}

/// `a + c b`.
fn axpy(a: &Tensor<f64>, c: f64, b: &Tensor<f64>) -> Tensor<f64> {
    assert_eq!(a.shape(), b.shape());
    let data = a
        .as_slice()
        .iter()
        .zip(b.as_slice())
        .map(|(x, y)| x + c * y);
    Tensor::from_vec(data.collect(), a.shape()).unwrap()
}

/// `(plus - minus) / 2h`.
fn central(plus: &Tensor<f64>, minus: &Tensor<f64>, h: f64) -> Tensor<f64> {
    axpy(plus, -1.0, minus).map(|d| d / (2.0 * h))
}

/// Element by element, `|got - want| <= tol (1 + |want|)`.
pub fn assert_close(what: &str, got: &Tensor<f64>, want: &Tensor<f64>, tol: f64) {
    assert_eq!(got.shape(), want.shape(), "{what}: shape");
    for (k, (&g, &w)) in got.as_slice().iter().zip(want.as_slice()).enumerate() {
        assert!(
            (g - w).abs() <= tol * (1.0 + w.abs()),
            "{what}: element {k}: got {g}, want {w} (tolerance {tol})\n  got  {:?}\n  want {:?}",
            got.to_vec(),
            want.to_vec()
        );
    }
}

/// Two numbers that are the same quantity computed two exact ways: equal to `EXACT` relative
/// to `scale`, the size of the terms they sum.
fn assert_same(what: &str, a: f64, b: f64, scale: f64) {
    assert!(
        (a - b).abs() <= EXACT * (1.0 + scale),
        "{what}: {a} vs {b} (difference {}, scale {scale})",
        (a - b).abs()
    );
}

fn zeros_like(x: &Tensor<f64>) -> Tensor<f64> {
    Tensor::zeros(x.shape())
}

/// `x + t v` for the active inputs, `x` for the others.
fn shifted(xs: &[Tensor<f64>], active: &[bool], vs: &[Tensor<f64>], t: f64) -> Vec<Tensor<f64>> {
    xs.iter()
        .zip(active)
        .zip(vs)
        .map(|((x, &a), v)| if a { axpy(x, t, v) } else { x.clone() })
        .collect()
}

/// `vs` with every input but `i` (and every inactive one) zero.
fn only(i: usize, active: &[bool], vs: &[Tensor<f64>]) -> Vec<bool> {
    (0..vs.len()).map(|k| k == i && active[k]).collect()
}

// ---- The function at each level ----------------------------------------------------------------

/// `f(xs)` on plain tensors.
pub fn value<F: Function>(f: &F, xs: &[Tensor<f64>]) -> Tensor<f64> {
    let refs: Vec<&Tensor<f64>> = xs.iter().collect();
    f.call(&refs).unwrap()
}

/// `(f(x), J v)` by forward mode, the active inputs carrying their direction and the others
/// constant (tangent `None`).
pub fn jvp<F: Function>(
    f: &F,
    xs: &[Tensor<f64>],
    active: &[bool],
    vs: &[Tensor<f64>],
) -> (Tensor<f64>, Tensor<f64>) {
    let duals: Vec<Dual> = xs
        .iter()
        .zip(active)
        .zip(vs)
        .map(|((x, &a), v)| {
            if a {
                DualTensor::new(x.clone(), v.clone())
            } else {
                DualTensor::constant(x.clone())
            }
        })
        .collect();
    let refs: Vec<&Dual> = duals.iter().collect();
    f.call(&refs).unwrap().into_parts()
}

/// `J^T u` by reverse mode, one cotangent per input (zeros for the inactive ones).
pub fn vjp<F: Function>(
    f: &F,
    xs: &[Tensor<f64>],
    active: &[bool],
    u: &Tensor<f64>,
) -> Vec<Tensor<f64>> {
    let tape = TensorTape::new();
    let vars: Vec<TensorVar<'_, Tensor<f64>>> = xs
        .iter()
        .zip(active)
        .map(|(x, &a)| {
            if a {
                tape.var(x.clone())
            } else {
                TensorVar::constant(x.clone())
            }
        })
        .collect();
    let refs: Vec<_> = vars.iter().collect();
    let y = f.call(&refs).unwrap();
    let wrt: Vec<_> = vars.iter().filter(|v| !v.is_constant()).collect();
    let mut cts = tape.vjp(&y, u, &wrt).unwrap().into_iter();
    xs.iter()
        .zip(active)
        .map(|(x, &a)| {
            if a {
                cts.next().unwrap()
            } else {
                zeros_like(x)
            }
        })
        .collect()
}

/// Forward over reverse: `d/dt J(x + t v)^T u` at `t = 0`, per input. The tape computes with
/// dual tensors, so every `Op::vjp` on the way runs on `DualTensor`s.
pub fn jvp_of_vjp<F: Function>(
    f: &F,
    xs: &[Tensor<f64>],
    active: &[bool],
    u: &Tensor<f64>,
    vs: &[Tensor<f64>],
) -> Vec<Tensor<f64>> {
    let tape = TensorTape::<Dual>::over();
    let vars: Vec<TensorVar<'_, Dual>> = xs
        .iter()
        .zip(active)
        .zip(vs)
        .map(|((x, &a), v)| {
            if a {
                tape.var(DualTensor::new(x.clone(), v.clone()))
            } else {
                TensorVar::constant(DualTensor::constant(x.clone()))
            }
        })
        .collect();
    let refs: Vec<_> = vars.iter().collect();
    let y = f.call(&refs).unwrap();
    let wrt: Vec<_> = vars.iter().filter(|v| !v.is_constant()).collect();
    let mut cts = tape
        .vjp(&y, &DualTensor::constant(u.clone()), &wrt)
        .unwrap()
        .into_iter();
    xs.iter()
        .zip(active)
        .map(|(x, &a)| {
            if a {
                cts.next().unwrap().tangent_or_zeros()
            } else {
                zeros_like(x)
            }
        })
        .collect()
}

/// Reverse over forward: the gradient of `<w, J(x) v>` with respect to `x`, per input. The
/// dual tensors' primals and tangents are tape variables, so every `Op::jvp` is recorded.
pub fn vjp_of_jvp<F: Function>(
    f: &F,
    xs: &[Tensor<f64>],
    active: &[bool],
    vs: &[Tensor<f64>],
    w: &Tensor<f64>,
) -> Vec<Tensor<f64>> {
    let tape = TensorTape::new();
    let vars: Vec<TensorVar<'_, Tensor<f64>>> = xs
        .iter()
        .zip(active)
        .map(|(x, &a)| {
            if a {
                tape.var(x.clone())
            } else {
                TensorVar::constant(x.clone())
            }
        })
        .collect();
    let duals: Vec<DualTensor<TensorVar<'_, Tensor<f64>>>> = vars
        .iter()
        .zip(active)
        .zip(vs)
        .map(|((x, &a), v)| {
            if a {
                DualTensor::new(x.clone(), TensorVar::constant(v.clone()))
            } else {
                DualTensor::constant(x.clone())
            }
        })
        .collect();
    let refs: Vec<_> = duals.iter().collect();
    let jv = f.call(&refs).unwrap().tangent_or_zeros();
    let wrt: Vec<_> = vars.iter().filter(|v| !v.is_constant()).collect();
    let mut cts = tape.vjp(&jv, w, &wrt).unwrap().into_iter();
    xs.iter()
        .zip(active)
        .map(|(x, &a)| {
            if a {
                cts.next().unwrap()
            } else {
                zeros_like(x)
            }
        })
        .collect()
}

/// Forward over forward: `(J(x) v, d/ds J(x + s z) v)` at `s = 0`, by dual tensors whose primal
/// and tangent are dual tensors (`z` inside, `v` outside).
pub fn jvp_of_jvp<F: Function>(
    f: &F,
    xs: &[Tensor<f64>],
    active: &[bool],
    vs: &[Tensor<f64>],
    zs: &[Tensor<f64>],
) -> (Tensor<f64>, Tensor<f64>) {
    let duals: Vec<DualTensor<Dual>> = xs
        .iter()
        .zip(active)
        .zip(vs.iter().zip(zs))
        .map(|((x, &a), (v, z))| {
            if a {
                DualTensor::new(
                    DualTensor::new(x.clone(), z.clone()),
                    DualTensor::constant(v.clone()),
                )
            } else {
                DualTensor::constant(DualTensor::constant(x.clone()))
            }
        })
        .collect();
    let refs: Vec<_> = duals.iter().collect();
    f.call(&refs).unwrap().tangent_or_zeros().into_parts()
}

// ---- The checks ------------------------------------------------------------------------------

/// First order at `xs` along `vs`, weighted by `u` (of the output's shape): see the module
/// documentation. `tol` is the finite-difference tolerance, relative to `1 + |exact|`.
pub fn check_first_order<F: Function>(
    what: &str,
    f: &F,
    xs: &[Tensor<f64>],
    active: &[bool],
    vs: &[Tensor<f64>],
    u: &Tensor<f64>,
    tol: f64,
) {
    let y = value(f, xs);
    let (y_dual, jv) = jvp(f, xs, active, vs);
    assert_eq!(y_dual.shape(), y.shape(), "{what}: dual value shape");
    for (a, b) in y_dual.as_slice().iter().zip(y.as_slice()) {
        assert!(
            a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()),
            "{what}: the dual tensor's value {a} is not the plain value {b}"
        );
    }
    let fd = central(
        &value(f, &shifted(xs, active, vs, H1)),
        &value(f, &shifted(xs, active, vs, -H1)),
        H1,
    );
    assert_close(
        &format!("{what}: J v against a central difference"),
        &jv,
        &fd,
        tol,
    );

    // Each input alone, the others constant: the contributions add up to J v.
    let n_active = active.iter().filter(|&&a| a).count();
    if n_active > 1 {
        let mut sum = Tensor::zeros(y.shape());
        for i in (0..xs.len()).filter(|&i| active[i]) {
            let alone = only(i, active, vs);
            let (_, jv_i) = jvp(f, xs, &alone, vs);
            let fd_i = central(
                &value(f, &shifted(xs, &alone, vs, H1)),
                &value(f, &shifted(xs, &alone, vs, -H1)),
                H1,
            );
            assert_close(
                &format!("{what}: J v with only input {i} perturbed"),
                &jv_i,
                &fd_i,
                tol,
            );
            sum = sum.add(&jv_i);
        }
        assert_close(
            &format!("{what}: the inputs' contributions add up to J v"),
            &sum,
            &jv,
            EXACT,
        );
    }

    check_batched(what, f, xs, active, vs, u);

    // Forward and reverse are transposes of each other.
    let cts = vjp(f, xs, active, u);
    let forward = dot(u, &jv);
    let (mut reverse, mut scale) = (0.0, abs_dot(u, &jv));
    for ((ct, v), x) in cts.iter().zip(vs).zip(xs) {
        assert_eq!(ct.shape(), x.shape(), "{what}: cotangent shape");
        reverse += dot(ct, v);
        scale += abs_dot(ct, v);
    }
    // (The inactive inputs' cotangents are zeros, so they add nothing.)
    assert_same(
        &format!("{what}: <u, J v> against <J^T u, v>"),
        forward,
        reverse,
        scale,
    );
}

/// Second order at `xs` along `vs` and `zs`, weighted by `u`: forward over reverse, reverse
/// over forward and forward over forward against central differences of the first-order
/// rules and against each other; see the module documentation.
#[allow(clippy::too_many_arguments)] // the point, its two directions and the weights
pub fn check_second_order<F: Function>(
    what: &str,
    f: &F,
    xs: &[Tensor<f64>],
    active: &[bool],
    vs: &[Tensor<f64>],
    zs: &[Tensor<f64>],
    u: &Tensor<f64>,
    tol: f64,
) {
    // Forward over reverse against a central difference of the VJP along v.
    let fwd_rev = jvp_of_vjp(f, xs, active, u, vs);
    let plus = vjp(f, &shifted(xs, active, vs, H2), active, u);
    let minus = vjp(f, &shifted(xs, active, vs, -H2), active, u);
    for (i, g) in fwd_rev.iter().enumerate() {
        assert_eq!(
            g.shape(),
            xs[i].shape(),
            "{what}: forward over reverse shape"
        );
        assert_close(
            &format!("{what}: forward over reverse, input {i}"),
            g,
            &central(&plus[i], &minus[i], H2),
            tol,
        );
    }

    // The `hvp` transform (its own sweep: tangents only where a rule reads them) against
    // forward over reverse, one active input at a time with the others held constant: both
    // give that input's block of the Hessian of <u, f> times its direction.
    for i in (0..xs.len()).filter(|&i| active[i]) {
        let mut only: Vec<Tensor<f64>> = vs.iter().map(|v| Tensor::zeros(v.shape())).collect();
        only[i] = vs[i].clone();
        let want = jvp_of_vjp(f, xs, active, u, &only).swap_remove(i);
        let got = hvp(
            |x| {
                let inputs: Vec<_> = xs
                    .iter()
                    .enumerate()
                    .map(|(j, xj)| {
                        if j == i {
                            x.clone()
                        } else {
                            x.constant_like(xj)
                        }
                    })
                    .collect();
                let refs: Vec<_> = inputs.iter().collect();
                let y = f.call(&refs)?;
                Ok(y.try_mul(&x.constant_like(u))?.sum_all())
            },
            &xs[i],
            &vs[i],
        )
        .unwrap();
        assert_close(
            &format!("{what}: hvp against forward over reverse, input {i}"),
            &got,
            &want,
            1e-11,
        );
    }

    // Reverse over forward: d/dx <u, J(x) v> is the same vector.
    let rev_fwd = vjp_of_jvp(f, xs, active, vs, u);
    for (i, (a, b)) in rev_fwd.iter().zip(&fwd_rev).enumerate() {
        assert_eq!(
            a.shape(),
            xs[i].shape(),
            "{what}: reverse over forward shape"
        );
        assert_close(
            &format!("{what}: reverse over forward against forward over reverse, input {i}"),
            a,
            b,
            1e-11,
        );
    }

    // Forward over forward against a central difference of the JVP along z.
    let (jv, fwd_fwd) = jvp_of_jvp(f, xs, active, vs, zs);
    let (_, jv_first) = jvp(f, xs, active, vs);
    assert_close(
        &format!("{what}: forward over forward, first order"),
        &jv,
        &jv_first,
        EXACT,
    );
    let fd = central(
        &jvp(f, &shifted(xs, active, zs, H2), active, vs).1,
        &jvp(f, &shifted(xs, active, zs, -H2), active, vs).1,
        H2,
    );
    assert_close(
        &format!("{what}: forward over forward against a central difference of J v"),
        &fwd_fwd,
        &fd,
        tol,
    );
    // ... symmetric in the two directions ...
    let (_, swapped) = jvp_of_jvp(f, xs, active, zs, vs);
    assert_close(
        &format!("{what}: forward over forward, directions swapped"),
        &swapped,
        &fwd_fwd,
        1e-11,
    );
    // ... and the transpose of reverse over forward: <u, D^2 f [v, z]> both ways.
    let along_z: f64 = rev_fwd
        .iter()
        .zip(zs)
        .zip(active)
        .filter(|(_, &a)| a)
        .map(|((g, z), _)| dot(g, z))
        .sum();
    let scale = abs_dot(u, &fwd_fwd)
        + rev_fwd
            .iter()
            .zip(zs)
            .map(|(g, z)| abs_dot(g, z))
            .sum::<f64>();
    assert_same(
        &format!("{what}: <u, forward over forward> against <reverse over forward, z>"),
        dot(u, &fwd_fwd),
        along_z,
        scale,
    );
}

/// Three different members made from one tensor: `t`, `t^2 - 1/2` and `sin(3 t)`.
fn three(t: &Tensor<f64>) -> [Tensor<f64>; 3] {
    [
        t.clone(),
        t.map(|a| a * a - 0.5),
        t.map(|a| (3.0 * a).sin()),
    ]
}

/// `members` stacked along a new leading axis.
fn stack_of(members: &[Tensor<f64>]) -> Tensor<f64> {
    let refs: Vec<&Tensor<f64>> = members.iter().collect();
    Tensor::try_stack(&refs, 0).unwrap()
}

/// Member `i` of a stack.
fn member(stack: &Tensor<f64>, i: usize) -> Tensor<f64> {
    stack.narrow(0, i, 1).squeeze(0)
}

/// The batching checks of the module documentation.
pub fn check_batched<F: Function>(
    what: &str,
    f: &F,
    xs: &[Tensor<f64>],
    active: &[bool],
    vs: &[Tensor<f64>],
    u: &Tensor<f64>,
) {
    type B = Batched<Tensor<f64>>;
    // Three tangents per active input at once.
    let members: Vec<[Tensor<f64>; 3]> = vs.iter().map(three).collect();
    let duals: Vec<DualTensor<B>> = xs
        .iter()
        .zip(active)
        .zip(&members)
        .map(|((x, &a), m)| {
            let x = Batched::single(x.clone());
            if a {
                DualTensor::new(x, Batched::stack(stack_of(m)))
            } else {
                DualTensor::constant(x)
            }
        })
        .collect();
    let refs: Vec<&DualTensor<B>> = duals.iter().collect();
    let y = f.call(&refs).unwrap();
    let stacked = y.tangent().map(|t| t.clone().into_stack_of(3).unwrap());
    for i in 0..3 {
        let vs_i: Vec<Tensor<f64>> = members.iter().map(|m| m[i].clone()).collect();
        let (_, jv) = jvp(f, xs, active, &vs_i);
        let got = stacked
            .as_ref()
            .map_or_else(|| Tensor::zeros(jv.shape()), |s| member(s, i));
        assert_close(
            &format!("{what}: member {i} of a stack of tangents"),
            &got,
            &jv,
            EXACT,
        );
    }

    // Three cotangents at once.
    let us = three(u);
    let tape = TensorTape::<B>::over();
    let vars: Vec<TensorVar<'_, B>> = xs
        .iter()
        .zip(active)
        .map(|(x, &a)| {
            let x = Batched::single(x.clone());
            if a {
                tape.var(x)
            } else {
                TensorVar::constant(x)
            }
        })
        .collect();
    let refs: Vec<_> = vars.iter().collect();
    let y = f.call(&refs).unwrap();
    let wrt: Vec<_> = vars.iter().filter(|v| !v.is_constant()).collect();
    if !wrt.is_empty() {
        let cts = tape.vjp(&y, &Batched::stack(stack_of(&us)), &wrt).unwrap();
        for (i, u_i) in us.iter().enumerate() {
            let want: Vec<Tensor<f64>> = vjp(f, xs, active, u_i)
                .into_iter()
                .zip(active)
                .filter(|(_, &a)| a)
                .map(|(ct, _)| ct)
                .collect();
            for (k, (ct, w)) in cts.iter().zip(&want).enumerate() {
                let got = member(&ct.clone().into_stack_of(3).unwrap(), i);
                assert_close(
                    &format!("{what}: input {k}, member {i} of a stack of cotangents"),
                    &got,
                    w,
                    EXACT,
                );
            }
        }
    }

    // The function mapped over stacks of inputs: members x, x + v / 100, x - v / 100 of each
    // active input (inactive ones repeat), all inputs stacked, then each alone.
    let stacks: Vec<Tensor<f64>> = xs
        .iter()
        .zip(active)
        .zip(vs)
        .map(|((x, &a), v)| {
            let c = if a { 0.01 } else { 0.0 };
            stack_of(&[x.clone(), axpy(x, c, v), axpy(x, -c, v)])
        })
        .collect();
    let patterns: Vec<Vec<bool>> = std::iter::once(vec![true; xs.len()])
        .chain(
            (0..xs.len())
                .filter(|_| xs.len() > 1)
                .map(|i| (0..xs.len()).map(|j| j == i).collect()),
        )
        .collect();
    for pattern in patterns {
        let inputs: Vec<B> = pattern
            .iter()
            .zip(&stacks)
            .map(|(&s, st)| {
                if s {
                    Batched::stack(st.clone())
                } else {
                    Batched::single(member(st, 0))
                }
            })
            .collect();
        let refs: Vec<&B> = inputs.iter().collect();
        let y = f.call(&refs).unwrap().into_stack_of(3).unwrap();
        for i in 0..3 {
            let xs_i: Vec<Tensor<f64>> = pattern
                .iter()
                .zip(&stacks)
                .map(|(&s, st)| member(st, if s { i } else { 0 }))
                .collect();
            let want = value(f, &xs_i);
            assert_close(
                &format!("{what}: member {i} of the function mapped over stacks {pattern:?}"),
                &member(&y, i),
                &want,
                EXACT,
            );
        }
    }
}
