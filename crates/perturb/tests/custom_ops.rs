//! Operations defined the lecture's way, by a value function (`func`) and local partial
//! derivatives (`grads`), through perturb's `UnaryOp` / `BinaryOp`: first and second derivatives
//! checked against exact values and central finite differences in forward, reverse and nested
//! modes.

use perturb::{
    derivative, gradient, gradient_forward, hessian, hvp, BinaryOp, Dual, DualN, DualVec, Scalar,
    TangentArena, Tape, UnaryOp, Var,
};

/// The lecture's `_add`: `func(a, b) = a + b`, `grads = (1, 1)`.
struct LectureAdd;
impl BinaryOp for LectureAdd {
    fn func<T: Scalar>(&self, a: T, b: T) -> T {
        a + b
    }
    fn grads<T: Scalar>(&self, _a: T, _b: T, _value: T) -> (T, T) {
        (T::one(), T::one())
    }
}

/// The lecture's `_neg`: `func(a) = -a`, `grads = (-1,)`.
struct LectureNeg;
impl UnaryOp for LectureNeg {
    fn func<T: Scalar>(&self, a: T) -> T {
        -a
    }
    fn grads<T: Scalar>(&self, _a: T, _value: T) -> T {
        -T::one()
    }
}

/// The lecture's exercise `_sub`: `func(a, b) = a - b`, `grads = (1, -1)`.
struct LectureSub;
impl BinaryOp for LectureSub {
    fn func<T: Scalar>(&self, a: T, b: T) -> T {
        a - b
    }
    fn grads<T: Scalar>(&self, _a: T, _b: T, _value: T) -> (T, T) {
        (T::one(), -T::one())
    }
}

/// The lecture's `log(x) = g`: `func(a) = log a`, `grads = (1 / a,)`. The derivative is written
/// with `recip`, a differentiable operation, so nested modes can differentiate it again.
struct LectureLog;
impl UnaryOp for LectureLog {
    fn func<T: Scalar>(&self, a: T) -> T {
        a.ln()
    }
    fn grads<T: Scalar>(&self, a: T, _value: T) -> T {
        a.recip()
    }
}

/// f(x, y) = log(x + y) - log(x - y), written with the four ops only (the subtraction of the
/// logs as an addition of a negation, to use `_neg`). Defined for x > |y|.
fn f<T: Scalar>(x: T, y: T) -> T {
    let p = LectureLog.apply(LectureAdd.apply(x, y));
    let m = LectureLog.apply(LectureSub.apply(x, y));
    LectureAdd.apply(p, LectureNeg.apply(m))
}

/// The same function with perturb's built-in operators.
fn f_builtin<T: Scalar>(x: T, y: T) -> T {
    (x + y).ln() + -(x - y).ln()
}

/// With p = x + y and m = x - y:
/// f = ln p - ln m,
/// f_x = 1/p - 1/m, f_y = 1/p + 1/m,
/// f_xx = -1/p^2 + 1/m^2, f_xy = -1/p^2 - 1/m^2, f_yy = -1/p^2 + 1/m^2.
fn exact(x: f64, y: f64) -> (f64, [f64; 2], [[f64; 2]; 2]) {
    let (p, m) = (x + y, x - y);
    let (fxx, fxy) = (
        -1.0 / (p * p) + 1.0 / (m * m),
        -1.0 / (p * p) - 1.0 / (m * m),
    );
    (
        p.ln() - m.ln(),
        [1.0 / p - 1.0 / m, 1.0 / p + 1.0 / m],
        [[fxx, fxy], [fxy, fxx]],
    )
}

/// Points with x > |y|. (3, 1) gives dyadic derivatives: p = 4, m = 2.
const POINTS: [(f64, f64); 4] = [(3.0, 1.0), (2.5, -0.5), (1.25, 0.75), (0.8, -0.3)];

const EXACT: f64 = 1e-13;

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

/// Central difference of `g` at `x`: error ~ h^2 g'''/6 + eps |g| / h.
fn central(g: impl Fn(f64) -> f64, x: f64, h: f64) -> f64 {
    (g(x + h) - g(x - h)) / (2.0 * h)
}

#[test]
fn ops_evaluate_their_func_on_plain_numbers() {
    // func only: no derivative is carried by f64.
    assert_eq!(LectureAdd.apply(2.0_f64, 3.5), 5.5);
    assert_eq!(LectureSub.apply(2.0_f64, 3.5), -1.5);
    assert_eq!(LectureNeg.apply(2.0_f64), -2.0);
    assert_eq!(LectureLog.apply(1.0_f64), 0.0);
    assert_eq!(LectureLog.apply(8.0_f64), 8.0_f64.ln());
    // grads returns the lecture's tuples.
    assert_eq!(LectureAdd.grads(2.0_f64, 3.5, 5.5), (1.0, 1.0));
    assert_eq!(LectureSub.grads(2.0_f64, 3.5, -1.5), (1.0, -1.0));
    assert_eq!(LectureNeg.grads(2.0_f64, -2.0), -1.0);
    assert_eq!(LectureLog.grads(4.0_f64, 4.0_f64.ln()), 0.25);
}

#[test]
fn each_op_first_derivatives_in_every_mode() {
    let (a, b) = (1.5_f64, -0.25_f64);

    // Forward, one input at a time (Dual).
    let da = |op: &dyn Fn(Dual<f64>, Dual<f64>) -> Dual<f64>| {
        (
            op(Dual::variable(a), Dual::constant(b)).tangent(),
            op(Dual::constant(a), Dual::variable(b)).tangent(),
        )
    };
    assert_eq!(da(&|x, y| LectureAdd.apply(x, y)), (1.0, 1.0));
    assert_eq!(da(&|x, y| LectureSub.apply(x, y)), (1.0, -1.0));
    assert_eq!(derivative(|x| LectureNeg.apply(x), a), (-a, -1.0));
    // d/da log a = 1/a = 2/3.
    let (v, d) = derivative(|x| LectureLog.apply(x), a);
    assert_eq!(v, a.ln());
    assert_close(d, 1.0 / a, EXACT);

    // Forward, both inputs at once (DualN and DualVec).
    let [x, y] = DualN::<f64, 2>::variables([a, b]);
    assert_eq!(LectureAdd.apply(x, y).tangents(), &[1.0, 1.0]);
    assert_eq!(LectureSub.apply(x, y).tangents(), &[1.0, -1.0]);
    assert_eq!(
        gradient_forward(|v| LectureSub.apply(v[0], v[1]), &[a, b]),
        (a - b, vec![1.0, -1.0])
    );
    assert_eq!(
        gradient_forward(|v| LectureAdd.apply(v[0], v[1]), &[a, b]),
        (a + b, vec![1.0, 1.0])
    );

    // Reverse (Tape and gradient).
    let tape = Tape::new();
    let (x, y) = (tape.var(a), tape.var(b));
    let sum = LectureAdd.apply(x, y);
    let diff = LectureSub.apply(x, y);
    let neg = LectureNeg.apply(x);
    let log = LectureLog.apply(x);
    assert_eq!(
        tape.gradient(sum).unwrap().wrt(&[x, y]).unwrap(),
        vec![1.0, 1.0]
    );
    assert_eq!(
        tape.gradient(diff).unwrap().wrt(&[x, y]).unwrap(),
        vec![1.0, -1.0]
    );
    assert_eq!(tape.gradient(neg).unwrap()[x], -1.0);
    assert_close(tape.gradient(log).unwrap()[x], 1.0 / a, EXACT);
    assert_eq!(gradient(|v| LectureNeg.apply(v[0]), &[a]), (-a, vec![-1.0]));
}

#[test]
fn ops_with_a_constant_argument() {
    // One argument a constant: only the other's partial is used. 5 - x: d/dx = -1; x - 5: +1.
    let x0 = 2.0_f64;
    let tape = Tape::new();
    let x = tape.var(x0);
    let left = LectureSub.apply(Var::constant(5.0), x);
    let right = LectureSub.apply(x, Var::constant(5.0));
    assert_eq!(left.value(), 3.0);
    assert_eq!(tape.gradient(left).unwrap()[x], -1.0);
    assert_eq!(tape.gradient(right).unwrap()[x], 1.0);
    let both = LectureAdd.apply(Var::constant(1.0), Var::constant(2.0));
    assert!(both.is_constant());
    assert_eq!(both.value(), 3.0);

    let arena = TangentArena::new(1);
    let xs = arena.variables(&[x0]).unwrap();
    let left = LectureSub.apply(DualVec::constant(5.0), xs[0]);
    let right = LectureSub.apply(xs[0], DualVec::constant(5.0));
    assert_eq!(arena.tangents(left).unwrap(), vec![-1.0]);
    assert_eq!(arena.tangents(right).unwrap(), vec![1.0]);

    let d = LectureSub.apply(Dual::constant(5.0), Dual::variable(x0));
    assert_eq!((d.value(), d.tangent()), (3.0, -1.0));
}

#[test]
fn each_op_second_derivatives_nested() {
    for a in [0.5_f64, 1.5, 4.0] {
        // Linear ops: second derivative 0. Nested Dual<Dual<f64>>: x = (a + e1) + 1 e2.
        let x = Dual::new(Dual::variable(a), Dual::constant(1.0));
        let c = Dual::constant(Dual::constant(0.75));
        for y in [
            LectureAdd.apply(x, c),
            LectureSub.apply(c, x),
            LectureNeg.apply(x),
        ] {
            assert_eq!(y.tangent().tangent(), 0.0);
        }
        // log: d/da (1/a) = -1/a^2.
        let y = LectureLog.apply(x);
        assert_eq!(y.value().value(), a.ln());
        assert_close(y.value().tangent(), 1.0 / a, EXACT);
        assert_close(y.tangent().value(), 1.0 / a, EXACT);
        assert_close(y.tangent().tangent(), -1.0 / (a * a), EXACT);
        // The same through the functional API, nested: derivative of the derivative.
        let (_, slope) = derivative(|x| LectureLog.apply(x), Dual::variable(a));
        assert_close(slope.tangent(), -1.0 / (a * a), EXACT);
        // Third derivative of log, d/da (-1/a^2) = 2/a^3, by Dual<Dual<Dual<f64>>>.
        let (_, s3) = derivative(
            |x| derivative(|x| LectureLog.apply(x), x).1,
            Dual::variable(a),
        );
        assert_close(s3.tangent(), 2.0 / (a * a * a), EXACT);

        // Reverse over forward: the Hessian of log(a) is [-1/a^2]; of a + b and a - b, zero.
        let h = hessian(|v| LectureLog.apply(v[0]), &[a]);
        assert_close(h[0][0], -1.0 / (a * a), EXACT);
        assert_eq!(
            hessian(|v| LectureAdd.apply(v[0], v[1]), &[a, 2.0]),
            vec![vec![0.0; 2]; 2]
        );
        assert_eq!(
            hessian(|v| LectureSub.apply(v[0], v[1]), &[a, 2.0]),
            vec![vec![0.0; 2]; 2]
        );
        assert_eq!(hessian(|v| LectureNeg.apply(v[0]), &[a]), vec![vec![0.0]]);

        // Forward over reverse: Dual<Var<f64>>; the tape records the tangent f'(x), whose
        // gradient is f''(x) = -1/a^2.
        let tape = Tape::new();
        let xv = tape.var(a);
        let y = LectureLog.apply(Dual::new(xv, Var::constant(1.0)));
        assert_close(y.tangent().value(), 1.0 / a, EXACT);
        assert_close(
            tape.gradient(y.tangent()).unwrap()[xv],
            -1.0 / (a * a),
            EXACT,
        );
    }
}

#[test]
fn composite_value_and_gradient_forward_and_reverse() {
    for (x, y) in POINTS {
        let (value, grad, _) = exact(x, y);

        // Forward: one Dual pass per input.
        let fx = f(Dual::variable(x), Dual::constant(y));
        let fy = f(Dual::constant(x), Dual::variable(y));
        assert_close(fx.value(), value, EXACT);
        assert_close(fx.tangent(), grad[0], EXACT);
        assert_close(fy.tangent(), grad[1], EXACT);
        // Forward: both at once.
        let [xd, yd] = DualN::<f64, 2>::variables([x, y]);
        let t = *f(xd, yd).tangents();
        let (_, gf) = gradient_forward(|v| f(v[0], v[1]), &[x, y]);
        // Reverse.
        let (vr, gr) = gradient(|v| f(v[0], v[1]), &[x, y]);
        assert_close(vr, value, EXACT);
        for i in 0..2 {
            assert_close(t[i], grad[i], EXACT);
            assert_close(gf[i], grad[i], EXACT);
            assert_close(gr[i], grad[i], EXACT);
        }

        // Central finite differences of the plain-f64 function (h = 1e-6: error ~ 1e-10).
        let h = 1e-6;
        assert_close(gr[0], central(|s| f(s, y), x, h), 1e-7);
        assert_close(gr[1], central(|s| f(x, s), y, h), 1e-7);
    }
    // At (3, 1): p = 4, m = 2, f_x = 1/4 - 1/2 = -0.25, f_y = 1/4 + 1/2 = 0.75, exactly.
    assert_eq!(
        gradient(|v| f(v[0], v[1]), &[3.0, 1.0]).1,
        vec![-0.25, 0.75]
    );
    assert_eq!(
        gradient_forward(|v| f(v[0], v[1]), &[3.0, 1.0]).1,
        vec![-0.25, 0.75]
    );
}

#[test]
fn composite_second_derivatives_nested() {
    for (x, y) in POINTS {
        let (_, grad, hess) = exact(x, y);

        // Reverse over forward (perturb::hessian, Var<Dual<f64>>).
        let hm = hessian(|v| f(v[0], v[1]), &[x, y]);
        for i in 0..2 {
            for j in 0..2 {
                assert_close(hm[i][j], hess[i][j], EXACT);
            }
        }
        // Hessian-vector product with (1, -2): H (1, -2) = (f_xx - 2 f_xy, f_xy - 2 f_yy).
        let hv = hvp(|v| f(v[0], v[1]), &[x, y], &[1.0, -2.0]).unwrap();
        assert_close(hv[0], hess[0][0] - 2.0 * hess[0][1], EXACT);
        assert_close(hv[1], hess[1][0] - 2.0 * hess[1][1], EXACT);

        // Forward over forward (Dual<Dual<f64>>): inner tangent along e_i, outer along e_j.
        for i in 0..2 {
            for j in 0..2 {
                let seed = |k: usize, v: f64| {
                    let inner = Dual::new(v, if k == i { 1.0 } else { 0.0 });
                    Dual::new(inner, Dual::constant(if k == j { 1.0 } else { 0.0 }))
                };
                let out = f(seed(0, x), seed(1, y));
                assert_close(out.value().tangent(), grad[i], EXACT); // df/dx_i
                assert_close(out.tangent().value(), grad[j], EXACT); // df/dx_j
                assert_close(out.tangent().tangent(), hess[i][j], EXACT); // d2f/dx_i dx_j
            }
        }

        // Forward over reverse (Dual<Var<f64>>): the tape records the directional derivative
        // along e_j; its gradient is row j of the Hessian.
        for j in 0..2 {
            let tape = Tape::new();
            let (xv, yv) = (tape.var(x), tape.var(y));
            let dir = |k: usize| Var::constant(if k == j { 1.0 } else { 0.0 });
            let out = f(Dual::new(xv, dir(0)), Dual::new(yv, dir(1)));
            assert_close(out.tangent().value(), grad[j], EXACT);
            let row = tape
                .gradient(out.tangent())
                .unwrap()
                .wrt(&[xv, yv])
                .unwrap();
            assert_close(row[0], hess[j][0], EXACT);
            assert_close(row[1], hess[j][1], EXACT);
        }

        // Central differences of the reverse-mode gradient (h = 1e-5: error ~ 1e-10), and the
        // second difference of values (h = 1e-4: error ~ eps |f| / h^2 ~ 1e-8).
        let gx = |s: f64, t: f64| gradient(|v| f(v[0], v[1]), &[s, t]).1;
        let h = 1e-5;
        let (x_up, x_down) = (gx(x + h, y), gx(x - h, y));
        let (y_up, y_down) = (gx(x, y + h), gx(x, y - h));
        for (i, row) in hm.iter().enumerate() {
            // Row i of the Hessian is the gradient of df/dx_i.
            assert_close(row[0], (x_up[i] - x_down[i]) / (2.0 * h), 1e-6);
            assert_close(row[1], (y_up[i] - y_down[i]) / (2.0 * h), 1e-6);
        }
        let h = 1e-4;
        let fxx = (f(x + h, y) - 2.0 * f(x, y) + f(x - h, y)) / (h * h);
        let fyy = (f(x, y + h) - 2.0 * f(x, y) + f(x, y - h)) / (h * h);
        assert_close(hm[0][0], fxx, 1e-5);
        assert_close(hm[1][1], fyy, 1e-5);
    }
    // At (3, 1): f_xx = f_yy = -1/16 + 1/4 = 0.1875, f_xy = -1/16 - 1/4 = -0.3125, exactly.
    assert_eq!(
        hessian(|v| f(v[0], v[1]), &[3.0, 1.0]),
        vec![vec![0.1875, -0.3125], vec![-0.3125, 0.1875]]
    );
}

#[test]
fn custom_ops_match_builtin_operators_exactly() {
    // The ops' rules are the built-in ones (1, 1), (1, -1), -1 and 1/a, so every mode must give
    // bit-identical results for the same expression.
    for (x, y) in POINTS {
        assert_eq!(f(x, y), f_builtin(x, y));
        assert_eq!(
            gradient(|v| f(v[0], v[1]), &[x, y]),
            gradient(|v| f_builtin(v[0], v[1]), &[x, y])
        );
        assert_eq!(
            gradient_forward(|v| f(v[0], v[1]), &[x, y]),
            gradient_forward(|v| f_builtin(v[0], v[1]), &[x, y])
        );
        assert_eq!(
            hessian(|v| f(v[0], v[1]), &[x, y]),
            hessian(|v| f_builtin(v[0], v[1]), &[x, y])
        );
    }
}
