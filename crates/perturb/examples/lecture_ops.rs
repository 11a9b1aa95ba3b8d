//! The lecture's `ForwardValue` operations, defined the lecture's way: a value function (`func`)
//! and the local partial derivatives (`grads`). Nothing else is written for them, yet they work
//! in forward mode, reverse mode, and nested for second derivatives.
//!
//! Run with `cargo run -p perturb --example lecture_ops`.

use perturb::{derivative, gradient, hessian, BinaryOp, Dual, Scalar, Tape, UnaryOp};

// -------------------------------------------------------------------------------------------
// The operations. Compare with the lecture's Python:
//
//     class _add(ForwardValue):          class _neg(ForwardValue):
//         def func(self, a, b):              def func(self, a):
//             return a + b                       return -a
//         def grads(self, a, b):             def grads(self, a):
//             return 1., 1.                      return (-1.,)
// -------------------------------------------------------------------------------------------

/// `_add`: c = a + b, dc/da = 1, dc/db = 1.
struct Add;
impl BinaryOp for Add {
    fn func<T: Scalar>(&self, a: T, b: T) -> T {
        a + b
    }
    fn grads<T: Scalar>(&self, _a: T, _b: T, _value: T) -> (T, T) {
        (T::one(), T::one())
    }
}

/// `_neg`: c = -a, dc/da = -1.
struct Neg;
impl UnaryOp for Neg {
    fn func<T: Scalar>(&self, a: T) -> T {
        -a
    }
    fn grads<T: Scalar>(&self, _a: T, _value: T) -> T {
        -T::one()
    }
}

/// `_sub` (the lecture's exercise): c = a - b, dc/da = 1, dc/db = -1.
struct Sub;
impl BinaryOp for Sub {
    fn func<T: Scalar>(&self, a: T, b: T) -> T {
        a - b
    }
    fn grads<T: Scalar>(&self, _a: T, _b: T, _value: T) -> (T, T) {
        (T::one(), -T::one())
    }
}

/// `_log`: g = log(a), dg/da = 1/a. The derivative is itself written with a differentiable
/// operation (`recip`), which is all nested modes need to differentiate it again.
struct Log;
impl UnaryOp for Log {
    fn func<T: Scalar>(&self, a: T) -> T {
        a.ln()
    }
    fn grads<T: Scalar>(&self, a: T, _value: T) -> T {
        a.recip()
    }
}

/// f(x, y) = log(x + y) - log(x - y), built from the four operations only.
fn f<T: Scalar>(x: T, y: T) -> T {
    let p = Log.apply(Add.apply(x, y)); // log(x + y)
    let m = Log.apply(Sub.apply(x, y)); // log(x - y)
    Add.apply(p, Neg.apply(m)) // log(x + y) + (-log(x - y))
}

fn main() {
    let (x, y) = (3.0_f64, 1.0_f64);
    // With p = x + y = 4 and m = x - y = 2:
    //   f     = ln 4 - ln 2           = ln 2
    //   df/dx = 1/p - 1/m             = -0.25
    //   df/dy = 1/p + 1/m             =  0.75
    //   d2f/dx2 = d2f/dy2 = -1/p^2 + 1/m^2 =  0.1875
    //   d2f/dxdy          = -1/p^2 - 1/m^2 = -0.3125

    println!("The lecture's operations, each defined by func and grads only");
    println!("==============================================================");
    println!();
    println!("f(x, y) = log(x + y) - log(x - y)   at (x, y) = ({x}, {y})");
    println!("         = _add(_log(_add(x, y)), _neg(_log(_sub(x, y))))");
    println!();

    // Plain numbers: only `func` runs.
    println!("On plain f64 (only func runs):");
    println!(
        "  f(3, 1)            = {:.6}   (exact: ln 2 = {:.6})",
        f(x, y),
        2.0_f64.ln()
    );
    println!();

    // Forward mode: a Dual number carries "if I perturb x by 1, how does this change?".
    println!("Forward mode (Dual: seed the input with tangent 1):");
    let dx = f(Dual::variable(x), Dual::constant(y));
    let dy = f(Dual::constant(x), Dual::variable(y));
    println!(
        "  df/dx              = {:>8}   (exact: 1/4 - 1/2 = -0.25)",
        dx.tangent()
    );
    println!(
        "  df/dy              = {:>8}   (exact: 1/4 + 1/2 =  0.75)",
        dy.tangent()
    );
    println!();

    // Reverse mode: the tape records each op with its grads; one backward sweep gives both.
    println!("Reverse mode (Tape: record, then one backward sweep):");
    let tape = Tape::new();
    let (xv, yv) = (tape.var(x), tape.var(y));
    let out = f(xv, yv);
    let grad = tape.gradient(out).expect("out is recorded on this tape");
    println!("  df/dx              = {:>8}", grad[xv]);
    println!("  df/dy              = {:>8}", grad[yv]);
    println!(
        "  recorded nodes     = {:>8}   (2 inputs + 6 operations)",
        tape.len()
    );
    let (_, g) = gradient(|v| f(v[0], v[1]), &[x, y]);
    println!("  perturb::gradient  = {g:?}");
    println!();

    // Nested: a dual number of dual numbers differentiates the derivative.
    println!("Second derivatives, nested (no extra code for the operations):");
    let xx = Dual::new(Dual::variable(x), Dual::constant(1.0));
    let second = f(xx, Dual::constant(Dual::constant(y)));
    println!(
        "  d2f/dx2, Dual<Dual<f64>>          = {:>8}   (exact: -1/16 + 1/4 = 0.1875)",
        second.tangent().tangent()
    );
    let (_, slope) = derivative(
        |t| f(t, Dual::constant(Dual::constant(y))),
        Dual::variable(x),
    );
    println!(
        "  d2f/dx2, derivative of derivative = {:>8}",
        slope.tangent()
    );
    let h = hessian(|v| f(v[0], v[1]), &[x, y]);
    println!("  Hessian, perturb::hessian (forward over reverse):");
    println!(
        "    [{:>8}, {:>8}]      exact: [ 0.1875, -0.3125]",
        h[0][0], h[0][1]
    );
    println!(
        "    [{:>8}, {:>8}]             [-0.3125,  0.1875]",
        h[1][0], h[1][1]
    );
    println!();

    // The lecture's single-variable example with these ops: L = -log(x) has L' = -1/x and
    // L'' = 1/x^2.
    println!("L(x) = _neg(_log(x)) for a few x:");
    println!(
        "  {:>6} {:>10} {:>10} {:>10} {:>10}",
        "x", "L'(x)", "-1/x", "L''(x)", "1/x^2"
    );
    for x in [0.5_f64, 1.0, 2.0, 4.0] {
        let l = Neg.apply(Log.apply(Dual::new(Dual::variable(x), Dual::constant(1.0))));
        println!(
            "  {:>6} {:>10.6} {:>10.6} {:>10.6} {:>10.6}",
            x,
            l.tangent().value(),
            -1.0 / x,
            l.tangent().tangent(),
            1.0 / (x * x)
        );
    }

    // Every number above must match its exact value.
    let exact_ok = dx.tangent() == -0.25
        && dy.tangent() == 0.75
        && grad[xv] == -0.25
        && grad[yv] == 0.75
        && second.tangent().tangent() == 0.1875
        && h == vec![vec![0.1875, -0.3125], vec![-0.3125, 0.1875]];
    println!();
    println!("all derivatives match the exact values: {exact_ok}");
    assert!(exact_ok);
}
