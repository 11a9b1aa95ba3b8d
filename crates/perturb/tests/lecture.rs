//! The worked examples of the lecture perturb comes from ("Automatic differentiation"), each
//! checked against its exact analytic derivative in forward mode (`Dual`, `DualN`,
//! `gradient_forward`) and in reverse mode (`Tape`, `gradient`).
//!
//! Expected values are derived by hand in the comment next to each check and computed with plain
//! `f64` arithmetic, never with perturb.

use num_traits::Float;
use perturb::{
    derivative, gradient, gradient_forward, jacobian, Dual, DualN, DualVec, Mode, Scalar, Tape,
    Var, VectorFunction,
};

/// Relative tolerance for "exact" analytic values: a few ulps of rounding in the chain of
/// elementary operations, nothing more.
const EXACT: f64 = 1e-14;

/// `|actual - expected| <= tol * max(1, |expected|)`.
#[track_caller]
fn assert_close(actual: f64, expected: f64, tol: f64) {
    let scale = expected.abs().max(1.0);
    assert!(
        (actual - expected).abs() <= tol * scale,
        "got {actual:e}, expected {expected:e} (difference {:e}, tolerance {tol:e})",
        (actual - expected).abs()
    );
}

/// The derivative of a one-variable expression at `$at`, `(forward, reverse)`: the body is
/// evaluated once on `Dual::variable($at)` and once on a tape variable, so the same source text
/// is differentiated in both modes.
macro_rules! d_both {
    (|$v:ident| $body:expr, $at:expr) => {{
        let at: f64 = $at;
        let forward = {
            let $v = Dual::variable(at);
            $body
        }
        .tangent();
        let tape = Tape::new();
        let input = tape.var(at);
        let output = {
            let $v = input;
            $body
        };
        let reverse = tape.gradient(output).unwrap()[input];
        (forward, reverse)
    }};
}

/// A constant of any scalar type.
fn k<T: Scalar>(v: f64) -> T {
    T::from_f64(v).unwrap()
}

/// Plain `f64` logistic sigmoid, for expected values.
fn sigma(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

// ---------------------------------------------------------------------------------------------
// "Useful notation": b = x ** 2, a = log(b), da/dx = (1/b)(2x) = 2/x.
// ---------------------------------------------------------------------------------------------

/// The lecture's code: `b = x ** 2; a = log(b)`.
fn log_square<T: Scalar>(x: T) -> T {
    let b = x.powi(2);
    b.ln()
}

/// Points where log(x^2) is defined (x != 0), both signs.
const LOG_XS: [f64; 7] = [0.25, 0.5, 1.0, 2.0, 3.0, -1.5, -7.0];

#[test]
fn log_of_square_is_two_over_x() {
    for x in LOG_XS {
        // da/dx = (1/x^2)(2x) = 2/x.
        let expected = 2.0 / x;
        let (fwd, rev) = d_both!(|v| log_square(v), x);
        assert_close(fwd, expected, EXACT);
        assert_close(rev, expected, EXACT);

        // The functional API agrees and also returns the value log(x^2).
        let (value, slope) = derivative(log_square, x);
        assert_close(value, (x * x).ln(), EXACT);
        assert_close(slope, expected, EXACT);
        let (value, grad) = gradient(|v| log_square(v[0]), &[x]);
        assert_close(value, (x * x).ln(), EXACT);
        assert_close(grad[0], expected, EXACT);
    }
}

#[test]
fn log_of_square_local_derivatives_multiply_to_the_total() {
    for x in LOG_XS {
        // db/dx for b = x^2 alone: 2x (powi(2)'s rule is 2 * x^1, exact in floating point).
        let (db_dx_f, db_dx_r) = d_both!(|v| v.powi(2), x);
        assert_eq!(db_dx_f, 2.0 * x);
        assert_eq!(db_dx_r, 2.0 * x);

        // da/db for a = log(b) alone, at b = x^2: 1/b.
        let b = x * x;
        let (da_db_f, da_db_r) = d_both!(|v| v.ln(), b);
        assert_close(da_db_f, 1.0 / b, EXACT);
        assert_close(da_db_r, 1.0 / b, EXACT);

        // Chain rule: (1/b)(2x) = 2/x, the derivative of the composition.
        let (total, _) = d_both!(|v| log_square(v), x);
        assert_close(da_db_f * db_dx_f, total, EXACT);
        assert_close(da_db_r * db_dx_r, 2.0 / x, EXACT);

        // The reverse sweep holds da/db as the adjoint of the intermediate b.
        let tape = Tape::new();
        let xv = tape.var(x);
        let bv = xv.powi(2);
        let av = bv.ln();
        let g = tape.gradient(av).unwrap();
        assert_eq!(g[av], 1.0); // seed: da/da = 1
        assert_close(g[bv], 1.0 / b, EXACT); // da/db = 1/b
        assert_close(g[xv], 2.0 / x, EXACT); // da/dx = (1/b)(2x)
    }
}

// ---------------------------------------------------------------------------------------------
// "Total derivatives": f(y, z) = y z^2 with y = 2x, z = exp(x).
// ---------------------------------------------------------------------------------------------

fn f_yz<T: Scalar>(y: T, z: T) -> T {
    y * z * z
}

fn f_of_x<T: Scalar>(x: T) -> T {
    let y = x * k::<T>(2.0);
    let z = x.exp();
    f_yz(y, z)
}

/// x = -0.5 is where 2 + 4x = 0, so the total derivative vanishes there.
const TOTAL_XS: [f64; 6] = [-1.0, -0.5, 0.0, 0.5, 1.0, 2.0];

#[test]
fn total_derivative_of_y_z_squared() {
    for x in TOTAL_XS {
        // df/dx = (df/dy)(dy/dx) + (df/dz)(dz/dx) = z^2 * 2 + 2yz * z
        //       = 2 e^{2x} + 4x e^{2x} = (2 + 4x) e^{2x}.
        let expected = (2.0 + 4.0 * x) * (2.0 * x).exp();
        let (fwd, rev) = d_both!(|v| f_of_x(v), x);
        assert_close(fwd, expected, EXACT);
        assert_close(rev, expected, EXACT);
        let (value, grad) = gradient(|v| f_of_x(v[0]), &[x]);
        // f = 2x e^{2x}.
        assert_close(value, 2.0 * x * (2.0 * x).exp(), EXACT);
        assert_close(grad[0], expected, EXACT);
    }
}

#[test]
fn partials_of_y_z_squared_as_independent_inputs() {
    for x in TOTAL_XS {
        let (y, z) = (2.0 * x, x.exp());
        // df/dy = z^2, df/dz = 2yz.
        let (dfdy, dfdz) = (z * z, 2.0 * y * z);

        // Forward, both partials in one pass.
        let [yd, zd] = DualN::<f64, 2>::variables([y, z]);
        let t = *f_yz(yd, zd).tangents();
        assert_close(t[0], dfdy, EXACT);
        assert_close(t[1], dfdz, EXACT);
        let (_, gf) = gradient_forward(|v| f_yz(v[0], v[1]), &[y, z]);
        assert_close(gf[0], dfdy, EXACT);
        assert_close(gf[1], dfdz, EXACT);

        // Reverse.
        let (value, gr) = gradient(|v| f_yz(v[0], v[1]), &[y, z]);
        assert_close(value, y * z * z, EXACT);
        assert_close(gr[0], dfdy, EXACT);
        assert_close(gr[1], dfdz, EXACT);

        // Recombining the AD partials with the AD inner derivatives dy/dx = 2 and
        // dz/dx = e^x gives the total derivative (2 + 4x) e^{2x}.
        let (dy_dx, _) = d_both!(|v| v * 2.0, x);
        let (dz_dx, _) = d_both!(|v| v.exp(), x);
        assert_eq!(dy_dx, 2.0);
        assert_close(dz_dx, x.exp(), EXACT);
        let (total, _) = d_both!(|v| f_of_x(v), x);
        assert_close(gr[0] * dy_dx + gr[1] * dz_dx, total, EXACT);
        assert_close(
            gf[0] * dy_dx + gf[1] * dz_dx,
            (2.0 + 4.0 * x) * (2.0 * x).exp(),
            EXACT,
        );
    }
}

#[test]
fn a_value_used_twice_gets_both_contributions() {
    for x in [-3.0, -0.5, 0.0, 1.5, 4.0] {
        // f(x, y) = xy: df/dx = y, df/dy = x; at y = x they add: d/dx f(x, x) = x + x = 2x.
        let (fwd, rev) = d_both!(|v| v * v, x);
        assert_eq!(fwd, 2.0 * x);
        assert_eq!(rev, 2.0 * x);

        // The two partials taken separately, each equal to x.
        let (_, g) = gradient(|v| v[0] * v[1], &[x, x]);
        assert_eq!(g, vec![x, x]);
        let [a, b] = DualN::<f64, 2>::variables([x, x]);
        assert_eq!((a * b).tangents(), &[x, x]);

        // d/dx x^2 = 2x by the power rule, the same number.
        let (pow_f, pow_r) = d_both!(|v| v.powi(2), x);
        assert_eq!((pow_f, pow_r), (fwd, rev));
    }
}

// ---------------------------------------------------------------------------------------------
// "Composing the chain rule": L = -log sigmoid(w x^2).
// ---------------------------------------------------------------------------------------------

/// a = x^2, b = w a, c = sigmoid(b), g = log c, L = -g, as in the lecture.
fn sigmoid_loss<T: Scalar>(x: T, w: T) -> T {
    let a = x * x;
    let b = w * a;
    let c = b.sigmoid();
    let g = c.ln();
    -g
}

/// (x, w) pairs: b = w x^2 positive, negative and zero.
const XW: [(f64, f64); 5] = [
    (0.5, 3.0),
    (-1.5, 0.8),
    (2.0, -0.25),
    (1.0, 0.0),
    (-0.3, 5.0),
];

#[test]
fn sigmoid_loss_gradient() {
    for (x, w) in XW {
        let c = sigma(w * x * x);
        // dL/dx = (-1)(1/c)(c(1-c))(w)(2x) = -(1 - c) 2 w x.
        let dl_dx = -(1.0 - c) * 2.0 * w * x;
        // dL/dw = (-1)(1/c)(c(1-c))(a) = -(1 - c) x^2.
        let dl_dw = -(1.0 - c) * x * x;
        // L = -log c.
        let value = -c.ln();

        // Forward: one Dual pass per input, the other held constant.
        let yx = sigmoid_loss(Dual::variable(x), Dual::constant(w));
        let yw = sigmoid_loss(Dual::constant(x), Dual::variable(w));
        assert_close(yx.value(), value, EXACT);
        assert_close(yx.tangent(), dl_dx, EXACT);
        assert_close(yw.tangent(), dl_dw, EXACT);
        // Forward: both at once.
        let [xd, wd] = DualN::<f64, 2>::variables([x, w]);
        let t = *sigmoid_loss(xd, wd).tangents();
        assert_close(t[0], dl_dx, EXACT);
        assert_close(t[1], dl_dw, EXACT);
        let (_, gf) = gradient_forward(|v| sigmoid_loss(v[0], v[1]), &[x, w]);
        assert_close(gf[0], dl_dx, EXACT);
        assert_close(gf[1], dl_dw, EXACT);

        // Reverse.
        let tape = Tape::new();
        let (xv, wv) = (tape.var(x), tape.var(w));
        let l = sigmoid_loss(xv, wv);
        assert_close(l.value(), value, EXACT);
        let g = tape.gradient(l).unwrap();
        assert_close(g[xv], dl_dx, EXACT);
        assert_close(g[wv], dl_dw, EXACT);
        let (_, gr) = gradient(|v| sigmoid_loss(v[0], v[1]), &[x, w]);
        assert_close(gr[0], dl_dx, EXACT);
        assert_close(gr[1], dl_dw, EXACT);

        // perturb's fused log_sigmoid gives the same gradient.
        let (_, gs) = gradient(|v| -(v[1] * v[0] * v[0]).log_sigmoid(), &[x, w]);
        assert_close(gs[0], dl_dx, EXACT);
        assert_close(gs[1], dl_dw, EXACT);
    }
}

#[test]
fn sigmoid_loss_local_derivatives_multiply_to_dl_dx() {
    for (x, w) in XW {
        let a = x * x;
        let b = w * a;
        let c = sigma(b);
        let g = c.ln();

        // Each step differentiated alone, at the value it sees in the chain.
        // a = x^2: da/dx = 2x.
        let (da_dx, da_dx_r) = d_both!(|v| v * v, x);
        assert_eq!((da_dx, da_dx_r), (2.0 * x, 2.0 * x));
        // b = w a: db/da = w.
        let (db_da, db_da_r) = d_both!(|v| v * w, a);
        assert_eq!((db_da, db_da_r), (w, w));
        // c = sigmoid(b): dc/db = c (1 - c).
        let (dc_db, dc_db_r) = d_both!(|v| v.sigmoid(), b);
        assert_close(dc_db, c * (1.0 - c), EXACT);
        assert_close(dc_db_r, c * (1.0 - c), EXACT);
        // g = log c: dg/dc = 1/c.
        let (dg_dc, dg_dc_r) = d_both!(|v| v.ln(), c);
        assert_close(dg_dc, 1.0 / c, EXACT);
        assert_close(dg_dc_r, 1.0 / c, EXACT);
        // L = -g: dL/dg = -1.
        let (dl_dg, dl_dg_r) = d_both!(|v| -v, g);
        assert_eq!((dl_dg, dl_dg_r), (-1.0, -1.0));

        // The product of the local derivatives is dL/dx = -(1 - c) 2 w x.
        let product = dl_dg * dg_dc * dc_db * db_da * da_dx;
        let total = sigmoid_loss(Dual::variable(x), Dual::constant(w)).tangent();
        let tape = Tape::new();
        let xv = tape.var(x);
        let total_r = tape.gradient(sigmoid_loss(xv, Var::constant(w))).unwrap()[xv];
        assert_close(product, -(1.0 - c) * 2.0 * w * x, EXACT);
        assert_close(product, total, EXACT);
        assert_close(
            dl_dg_r * dg_dc_r * dc_db_r * db_da_r * da_dx_r,
            total_r,
            EXACT,
        );
    }
}

#[test]
fn sigmoid_loss_forward_tangents_and_reverse_adjoints_are_partial_products() {
    for (x, w) in XW {
        let c = sigma(w * x * x);

        // Forward mode carries d(step)/dx along the chain, left to right:
        let xd = Dual::variable(x);
        let a = xd * xd;
        let b = a * w;
        let cd = b.sigmoid();
        let g = cd.ln();
        let l = -g;
        assert_eq!(a.tangent(), 2.0 * x); // da/dx = 2x
        assert_eq!(b.tangent(), 2.0 * x * w); // db/dx = w * 2x
        assert_close(cd.tangent(), c * (1.0 - c) * 2.0 * x * w, EXACT); // dc/dx = c(1-c) * 2xw
        assert_close(g.tangent(), (1.0 - c) * 2.0 * x * w, EXACT); // dg/dx = (1/c) dc/dx
        assert_close(l.tangent(), -(1.0 - c) * 2.0 * x * w, EXACT); // dL/dx = -dg/dx

        // Reverse mode carries dL/d(step) back along the chain, right to left:
        let tape = Tape::new();
        let xv = tape.var(x);
        let a = xv * xv;
        let b = a * w;
        let cv = b.sigmoid();
        let g = cv.ln();
        let l = -g;
        let adj = tape.gradient(l).unwrap();
        assert_eq!(adj[l], 1.0); // dL/dL = 1
        assert_eq!(adj[g], -1.0); // dL/dg = -1
        assert_close(adj[cv], -1.0 / c, EXACT); // dL/dc = -1 * 1/c
        assert_close(adj[b], -(1.0 - c), EXACT); // dL/db = -1/c * c(1-c)
        assert_close(adj[a], -(1.0 - c) * w, EXACT); // dL/da = dL/db * w
        assert_close(adj[xv], -(1.0 - c) * w * 2.0 * x, EXACT); // dL/dx = dL/da * 2x
    }
}

// ---------------------------------------------------------------------------------------------
// "Reusing values": a = x^2, b = 5a, c = log a, g = b c, L = -g.
// ---------------------------------------------------------------------------------------------

fn reuse_loss<T: Scalar>(x: T) -> T {
    let a = x.powi(2);
    let b = a * k::<T>(5.0);
    let c = a.ln();
    let g = b * c;
    -g
}

const REUSE_XS: [f64; 6] = [0.25, 0.5, 1.0, 2.0, 3.5, -1.25];

#[test]
fn reused_value_loss_derivative() {
    for x in REUSE_XS {
        // L = -5x^2 log(x^2); dL/dx = -(10x log(x^2) + 5x^2 * 2/x) = -(10 x log(x^2) + 10 x).
        let expected = -(10.0 * x * (x * x).ln() + 10.0 * x);
        let (fwd, rev) = d_both!(|v| reuse_loss(v), x);
        assert_close(fwd, expected, EXACT);
        assert_close(rev, expected, EXACT);
        let (value, g) = gradient(|v| reuse_loss(v[0]), &[x]);
        assert_close(value, -5.0 * x * x * (x * x).ln(), EXACT);
        assert_close(g[0], expected, EXACT);
        let (_, g) = gradient_forward(|v| reuse_loss(v[0]), &[x]);
        assert_close(g[0], expected, EXACT);
    }
}

#[test]
fn reused_value_adjoints_sum_over_both_paths() {
    for x in REUSE_XS {
        let a = x * x;
        let b = 5.0 * a;
        let c = a.ln();
        // Path through b: dL/dg * dg/db * db/da * da/dx = (-1)(c)(5)(2x) = -10 x log(x^2).
        let dl_dg = -1.0;
        let through_b = dl_dg * c * 5.0 * (2.0 * x);
        // Path through c: dL/dg * dg/dc * dc/da * da/dx = (-1)(b)(1/a)(2x) = -5x^2 * 2/x = -10x.
        let through_c = dl_dg * b * (1.0 / a) * (2.0 * x);
        assert_close(through_b, -10.0 * x * (x * x).ln(), EXACT);
        assert_close(through_c, -10.0 * x, EXACT);

        let tape = Tape::new();
        let xv = tape.var(x);
        let av = xv.powi(2);
        let bv = av * 5.0;
        let cv = av.ln();
        let gv = bv * cv;
        let lv = -gv;
        let adj = tape.gradient(lv).unwrap();
        // The adjoint of a collects both users: dL/da = -(5c + b/a).
        assert_close(adj[bv], -c, EXACT); // dL/db = -c
        assert_close(adj[cv], -b, EXACT); // dL/dc = -b
        assert_close(adj[av], -(5.0 * c + b / a), EXACT);
        // The total is the sum of the two paths, neither alone.
        assert_close(adj[xv], through_b + through_c, EXACT);
        // |through_c| = 10|x| >= 2.5 here; |through_b| = 10|x| |log x^2| vanishes at |x| = 1.
        assert!(
            (adj[xv] - through_b).abs() > 1.0,
            "the path through c is missing"
        );
        if x.abs() != 1.0 {
            assert!(
                (adj[xv] - through_c).abs() > 1e-2,
                "the path through b is missing"
            );
        }

        // Each path by AD, holding the other intermediate constant at its value.
        let (path_b, path_b_r) = d_both!(|v| -(v.powi(2) * 5.0 * c), x);
        let (path_c, path_c_r) = d_both!(|v| -(v.powi(2).ln() * b), x);
        assert_close(path_b, through_b, EXACT);
        assert_close(path_c, through_c, EXACT);
        assert_close(path_b_r + path_c_r, adj[xv], EXACT);
        let (fwd, _) = d_both!(|v| reuse_loss(v), x);
        assert_close(path_b + path_c, fwd, EXACT);
    }
}

#[test]
fn partial_versus_total_derivative_c_equals_a_times_5a() {
    for a in [-2.0, -0.5, 0.0, 1.5, 3.0] {
        // c = a b with b = 5a: dc/da = dc/da|_b + dc/db * db/da = b + a * 5 = 5a + 5a = 10a.
        let tape = Tape::new();
        let av = tape.var(a);
        let bv = av * 5.0;
        let cv = av * bv;
        let g = tape.gradient(cv).unwrap();
        assert_eq!(g[av], 10.0 * a);
        assert_eq!(g[bv], a); // dc/db = a
        let ad = Dual::variable(a);
        assert_eq!((ad * (ad * 5.0)).tangent(), 10.0 * a);

        // With b an independent input the partials are dc/da = b = 5a and dc/db = a, which the
        // total derivative combines as 5a + a * 5.
        let (_, partials) = gradient(|v| v[0] * v[1], &[a, 5.0 * a]);
        assert_eq!(partials, vec![5.0 * a, a]);
        assert_eq!(partials[0] + partials[1] * 5.0, 10.0 * a);
    }
}

// ---------------------------------------------------------------------------------------------
// "Automatic differentiation with multiple inputs": -log sigmoid(w1 x1 + w2 x2 + w3 x3).
// ---------------------------------------------------------------------------------------------

/// a_i = w_i x_i, b = sum a_i, c = sigmoid(b), g = log c, L = -g.
fn linear_loss<T: Scalar>(w: &[T], x: &[T]) -> T {
    let b = w
        .iter()
        .zip(x)
        .map(|(&wi, &xi)| wi * xi)
        .fold(T::zero(), |s, a| s + a);
    let c = b.sigmoid();
    -c.ln()
}

#[test]
fn linear_sigmoid_loss_gradients() {
    let cases: [([f64; 3], [f64; 3]); 3] = [
        ([0.5, -1.0, 2.0], [1.0, 2.0, 0.25]),
        ([0.3, 0.7, -0.2], [1.5, -0.5, 2.0]),
        ([-2.0, 1.0, 0.5], [0.1, -0.4, 3.0]),
    ];
    for (w, x) in cases {
        let z: f64 = w.iter().zip(&x).map(|(a, b)| a * b).sum();
        let s = sigma(z);
        // dL/dx_i = (-1)(1/s)(s(1-s))(w_i) = -(1 - s) w_i ; dL/dw_i = -(1 - s) x_i.
        let dx: Vec<f64> = w.iter().map(|wi| -(1.0 - s) * wi).collect();
        let dw: Vec<f64> = x.iter().map(|xi| -(1.0 - s) * xi).collect();
        let value = -s.ln();

        // The fixed vector enters as constants: recorded nowhere, derivative zero.
        let (v, gx) = gradient(|xv| linear_loss(&w.map(Var::constant), xv), &x);
        assert_close(v, value, EXACT);
        let (_, gw) = gradient(|wv| linear_loss(wv, &x.map(Var::constant)), &w);
        let (_, fx) = gradient_forward(|xv| linear_loss(&w.map(DualVec::constant), xv), &x);
        let (_, fw) = gradient_forward(|wv| linear_loss(wv, &x.map(DualVec::constant)), &w);
        for i in 0..3 {
            assert_close(gx[i], dx[i], EXACT);
            assert_close(fx[i], dx[i], EXACT);
            assert_close(gw[i], dw[i], EXACT);
            assert_close(fw[i], dw[i], EXACT);
        }

        // All six partials at once, both modes.
        let all = [w, x].concat();
        let (_, r6) = gradient(|v| linear_loss(&v[..3], &v[3..]), &all);
        let (_, f6) = gradient_forward(|v| linear_loss(&v[..3], &v[3..]), &all);
        let d6 = DualN::<f64, 6>::variables(all.clone().try_into().unwrap());
        let n6 = *linear_loss(&d6[..3], &d6[3..]).tangents();
        for (i, e) in dw.iter().chain(&dx).enumerate() {
            assert_close(r6[i], *e, EXACT);
            assert_close(f6[i], *e, EXACT);
            assert_close(n6[i], *e, EXACT);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// "Calculus for vectors (Jacobian)": y = A x has Jacobian A; y = x^2 has Jacobian diag(2x).
// ---------------------------------------------------------------------------------------------

struct Linear(Vec<Vec<f64>>);

impl VectorFunction for Linear {
    fn eval<S: Scalar>(&self, x: &[S]) -> Vec<S> {
        self.0
            .iter()
            .map(|row| {
                row.iter()
                    .zip(x)
                    .map(|(&a, &xj)| k::<S>(a) * xj)
                    .fold(S::zero(), |s, t| s + t)
            })
            .collect()
    }
}

/// `A x` in plain f64, summed in the same order as `Linear::eval`.
fn matvec(a: &[Vec<f64>], x: &[f64]) -> Vec<f64> {
    a.iter()
        .map(|row| row.iter().zip(x).fold(0.0, |s, (a, x)| s + a * x))
        .collect()
}

#[test]
fn jacobian_of_linear_map_is_the_matrix() {
    // Dyadic entries, so every product and sum is exact: the Jacobian must equal A bit for bit
    // (each entry is a_ij * 1 plus zeros in forward mode, 1 * a_ij in reverse mode).
    let a34 = vec![
        vec![1.0, -2.0, 0.5, 3.0],
        vec![0.0, 4.0, -1.5, 0.25],
        vec![-0.75, 2.0, 8.0, -1.0],
    ];
    let x4 = [0.5, -1.0, 2.0, 0.25];
    // The same matrix transposed (4 x 3: more outputs than inputs, Auto picks forward mode).
    let a43: Vec<Vec<f64>> = (0..4)
        .map(|j| (0..3).map(|i| a34[i][j]).collect())
        .collect();
    let x3 = [1.5, -0.5, 2.0];
    // A wide 2 x 11 matrix: more inputs than the 8 tangents of one forward pass.
    let a2_11: Vec<Vec<f64>> = (0..2)
        .map(|i| {
            (0..11)
                .map(|j| (i as f64 + 1.0) * (j as f64 - 5.0) / 4.0)
                .collect()
        })
        .collect();
    let x11: Vec<f64> = (0..11).map(|j| 0.5 * j as f64 - 2.0).collect();

    for (a, x) in [(a34, &x4[..]), (a43, &x3[..]), (a2_11, &x11[..])] {
        let f = Linear(a.clone());
        for mode in [Mode::Forward, Mode::Reverse, Mode::Auto] {
            let (y, j) = jacobian(&f, x, mode).unwrap();
            assert_eq!(y, matvec(&a, x), "value in {mode:?}");
            // dy_i/dx_j = d/dx_j sum_k A_ik x_k = A_ij.
            assert_eq!(j, a, "Jacobian in {mode:?}");
        }
    }
}

struct Square;

impl VectorFunction for Square {
    fn eval<S: Scalar>(&self, x: &[S]) -> Vec<S> {
        x.iter().map(|&xi| xi.powi(2)).collect()
    }
}

#[test]
fn jacobian_of_elementwise_square_is_diagonal() {
    for x in [
        vec![1.0, -2.0, 0.5, 3.0, 0.0],
        (0..10).map(|i| 0.75 * i as f64 - 3.0).collect(),
    ] {
        // dy_i/dx_j = 2 x_i if i == j else 0 (y_i depends on x_i only); 2x is exact.
        let expected: Vec<Vec<f64>> = (0..x.len())
            .map(|i| {
                (0..x.len())
                    .map(|j| if i == j { 2.0 * x[i] } else { 0.0 })
                    .collect()
            })
            .collect();
        for mode in [Mode::Forward, Mode::Reverse, Mode::Auto] {
            let (y, j) = jacobian(&Square, &x, mode).unwrap();
            assert_eq!(
                y,
                x.iter().map(|v| v * v).collect::<Vec<_>>(),
                "value in {mode:?}"
            );
            assert_eq!(j, expected, "Jacobian in {mode:?}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// "Motivation": the network with 2 inputs, 3 sigmoid hidden units and one output, trained with
// NLL = -sum_i log sigmoid((2 y_i - 1) z_i).
//
// The lecture writes phi(x) = sigmoid(W x) and z = phi(x)^T w0 (W is 3 x 2, w0 has 3 entries);
// here each hidden unit also has a bias b_k and the output a bias c, so the parameters are
// theta = [W11, W12, W21, W22, W31, W32, b1, b2, b3, w01, w02, w03, c]: 6 + 3 + 3 + 1 = 13.
// (The lecture's expanded formula also wraps the output in one more sigmoid; this follows its
// first line, log sigmoid((2y - 1) phi(x)^T w).)
// ---------------------------------------------------------------------------------------------

const NET_X: [[f64; 2]; 6] = [
    [0.0, 0.0],
    [0.0, 1.0],
    [1.0, 0.0],
    [1.0, 1.0],
    [0.5, -0.5],
    [-1.0, 0.25],
];
const NET_Y: [f64; 6] = [0.0, 1.0, 1.0, 0.0, 1.0, 0.0];
const THETA0: [f64; 13] = [
    0.5, -0.3, 0.8, 0.2, -0.6, 0.9, 0.1, -0.2, 0.05, 1.2, -0.7, 0.4, -0.1,
];

fn nll<T: Scalar>(theta: &[T]) -> T {
    let (w, rest) = theta.split_at(6);
    let (b, rest) = rest.split_at(3);
    let (w0, c) = rest.split_at(3);
    let mut total = T::zero();
    for (x, &y) in NET_X.iter().zip(&NET_Y) {
        let (x1, x2) = (k::<T>(x[0]), k::<T>(x[1]));
        let mut z = c[0];
        for j in 0..3 {
            let h = (w[2 * j] * x1 + w[2 * j + 1] * x2 + b[j]).sigmoid();
            z += w0[j] * h;
        }
        total -= (k::<T>(2.0 * y - 1.0) * z).sigmoid().ln();
    }
    total
}

/// Backpropagation written out by hand in f64, the lecture's chain rule for this network.
fn nll_by_hand(theta: &[f64]) -> (f64, Vec<f64>) {
    let mut grad = vec![0.0; 13];
    let mut total = 0.0;
    for (x, &y) in NET_X.iter().zip(&NET_Y) {
        let h: Vec<f64> = (0..3)
            .map(|j| sigma(theta[2 * j] * x[0] + theta[2 * j + 1] * x[1] + theta[6 + j]))
            .collect();
        let z = theta[12] + (0..3).map(|j| theta[9 + j] * h[j]).sum::<f64>();
        let s = 2.0 * y - 1.0;
        let p = sigma(s * z);
        total -= p.ln();
        // dL_i/dz = (-1/p) p (1 - p) s = -(1 - p) s.
        let dz = -(1.0 - p) * s;
        grad[12] += dz; // dz/dc = 1
        for j in 0..3 {
            grad[9 + j] += dz * h[j]; // dz/dw0_j = h_j
            let dpre = dz * theta[9 + j] * h[j] * (1.0 - h[j]); // dh_j/dpre_j = h_j (1 - h_j)
            grad[6 + j] += dpre; // dpre_j/db_j = 1
            grad[2 * j] += dpre * x[0]; // dpre_j/dW_j1 = x1
            grad[2 * j + 1] += dpre * x[1]; // dpre_j/dW_j2 = x2
        }
    }
    (total, grad)
}

#[test]
fn network_gradient_reverse_forward_by_hand_and_finite_differences() {
    let (lr, gr) = gradient(|t| nll(t), &THETA0);
    let (lf, gf) = gradient_forward(|t| nll(t), &THETA0);
    let (lh, gh) = nll_by_hand(&THETA0);
    assert_eq!(gr.len(), 13);
    assert_close(lr, lh, 1e-12);
    assert_close(lf, lh, 1e-12);
    assert_close(nll(&THETA0), lh, 1e-12);
    for i in 0..13 {
        assert_close(gr[i], gf[i], 1e-12);
        assert_close(gr[i], gh[i], 1e-12);
        // Central difference (f(t + h e_i) - f(t - h e_i)) / 2h: truncation error ~ h^2 f'''/6
        // ~ 1e-11 and rounding ~ 1e-16 * |f| / h ~ 1e-10 with h = 1e-5.
        let h = 1e-5;
        let (mut up, mut down) = (THETA0, THETA0);
        up[i] += h;
        down[i] -= h;
        let fd = (nll(&up) - nll(&down)) / (2.0 * h);
        assert_close(gr[i], fd, 1e-6);
    }
    // Not a degenerate point: every parameter has a gradient that matters.
    assert!(gr.iter().all(|g| g.abs() > 1e-4), "{gr:?}");
}

#[test]
fn network_gradient_descent_decreases_the_loss() {
    // A small step follows the first-order prediction L(t - a g) = L(t) - a |g|^2 + O(a^2).
    let (l0, g0) = gradient(|t| nll(t), &THETA0);
    let g2: f64 = g0.iter().map(|g| g * g).sum();
    let alpha = 1e-4;
    let stepped: Vec<f64> = THETA0.iter().zip(&g0).map(|(t, g)| t - alpha * g).collect();
    let predicted = alpha * g2;
    let actual = l0 - nll(&stepped);
    assert_close(actual / predicted, 1.0, 1e-3);

    // W <- W - alpha dL/dW (and the same for every other parameter), on one reused tape.
    let alpha = 0.5;
    let mut theta = THETA0.to_vec();
    let mut tape = Tape::new();
    let mut losses = Vec::new();
    for _ in 0..25 {
        let (loss, grad) = {
            let vars = tape.vars(&theta);
            let loss = nll(&vars);
            (
                loss.value(),
                tape.gradient(loss).unwrap().wrt(&vars).unwrap(),
            )
        };
        tape.clear();
        losses.push(loss);
        for (t, g) in theta.iter_mut().zip(grad) {
            *t -= alpha * g;
        }
    }
    losses.push(nll(&theta));
    for pair in losses.windows(2) {
        assert!(pair[1] < pair[0], "the loss went up: {losses:?}");
    }
    assert!(
        losses[25] < 0.9 * losses[0],
        "too little progress: {losses:?}"
    );
}
