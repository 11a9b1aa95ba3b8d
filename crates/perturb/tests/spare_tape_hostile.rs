//! Hostile checks of the thread's spare tape buffers that `perturb::gradient`, `hessian`,
//! `hvp` and `jacobian` reuse (reverse/spare.rs): calls nested inside the closure of another,
//! a panic inside the closure then more calls, number types alternating (buffers of another
//! element size), sizes growing and shrinking, threads. Every result is checked against a
//! closed form.

use perturb::{gradient, hessian, hvp, jacobian, Dual, Mode, Scalar, VectorFunction};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// f(x) = sum_i x_i^2 x_{i+1} (cyclic): df/dx_i = 2 x_i x_{i+1} + x_{i-1}^2.
fn cyc<S: Scalar>(x: &[S]) -> S {
    let n = x.len();
    (0..n).fold(S::zero(), |acc, i| acc + x[i] * x[i] * x[(i + 1) % n])
}

fn cyc_grad(x: &[f64]) -> Vec<f64> {
    let n = x.len();
    (0..n)
        .map(|i| 2.0 * x[i] * x[(i + 1) % n] + x[(i + n - 1) % n].powi(2))
        .collect()
}

fn point(n: usize, shift: f64) -> Vec<f64> {
    (0..n).map(|i| (i as f64 * 0.37 + shift).sin()).collect()
}

fn close(a: &[f64], b: &[f64]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-12)
}

#[test]
fn sizes_growing_and_shrinking_reuse_the_buffers_correctly() {
    for &n in &[1000, 3, 50_000, 1, 7, 20_000, 2] {
        let x = point(n, n as f64);
        let (v, g) = gradient(|x| cyc(x), &x);
        assert!((v - cyc(&x)).abs() < 1e-9, "value, n = {n}");
        assert!(close(&g, &cyc_grad(&x)), "gradient, n = {n}");
    }
}

#[test]
fn a_gradient_inside_the_closure_of_a_gradient() {
    // The inner call takes and gives back the spare while the outer tape is recording.
    let x = point(6, 0.2);
    let inner_x = point(40, 1.1);
    let (v, g) = gradient(
        |xs| {
            let (iv, ig) = gradient(|y| cyc(y), &inner_x);
            assert!(close(&ig, &cyc_grad(&inner_x)));
            // A third level, on f32.
            let (_, g32) = gradient(|y| y[0] * y[1], &[2.0_f32, 5.0]);
            assert_eq!(g32, vec![5.0, 2.0]);
            cyc(xs) * iv
        },
        &x,
    );
    let iv = cyc(&inner_x);
    assert!((v - cyc(&x) * iv).abs() < 1e-9);
    let want: Vec<f64> = cyc_grad(&x).iter().map(|d| d * iv).collect();
    assert!(close(&g, &want));
    // And afterwards, a call on the buffers both left.
    let (_, g) = gradient(|x| cyc(x), &x);
    assert!(close(&g, &cyc_grad(&x)));
}

#[test]
fn a_panic_inside_the_closure_then_more_calls() {
    let x = point(500, 0.5);
    for round in 0..3 {
        let caught = catch_unwind(AssertUnwindSafe(|| {
            gradient(
                |xs| {
                    let partial = cyc(xs);
                    if round < 3 {
                        panic!("on purpose");
                    }
                    partial
                },
                &x,
            )
        }));
        assert!(caught.is_err());
        let (_, g) = gradient(|x| cyc(x), &x);
        assert!(close(&g, &cyc_grad(&x)), "after panic {round}");
        let h = hessian(|v| v[0] * v[0] * v[1] + v[1] * v[1] * v[1], &[1.0_f64, 2.0]);
        assert_eq!(h, vec![vec![4.0, 2.0], vec![2.0, 12.0]]);
    }
    // A panic inside hessian's closure too.
    let caught = catch_unwind(AssertUnwindSafe(|| {
        hessian(
            |v: &[perturb::Var<'_, Dual<f64>>]| {
                let _ = v[0] * v[1];
                panic!("on purpose")
            },
            &[1.0_f64, 2.0],
        )
    }));
    assert!(caught.is_err());
    let (_, g) = gradient(|x| cyc(x), &x);
    assert!(close(&g, &cyc_grad(&x)));
}

struct Poly;
impl VectorFunction for Poly {
    fn eval<S: Scalar>(&self, x: &[S]) -> Vec<S> {
        vec![x[0] * x[1], x[1] * x[1] * x[2], x[0] + x[2] * x[2]]
    }
}

#[test]
fn number_types_alternating_on_one_thread() {
    let x = point(300, 0.9);
    let x32: Vec<f32> = x.iter().map(|&v| v as f32).collect();
    for _ in 0..3 {
        let (_, g) = gradient(|x| cyc(x), &x);
        assert!(close(&g, &cyc_grad(&x)));
        let (_, g32) = gradient(|x| cyc(x), &x32);
        let want = cyc_grad(&x);
        assert!(g32
            .iter()
            .zip(&want)
            .all(|(a, b)| (f64::from(*a) - b).abs() < 1e-5));
        // Dual<f64> nodes (hessian, hvp) are larger than f64's.
        let hv = hvp(|v| cyc(v), &x[..4], &[1.0, 0.0, 0.0, 0.0]).unwrap();
        // d/dx_0 of the gradient: (2 x1, 0, 0, 2 x0) for n = 4 (x3^2 x0 term: 2 x3 -> row 3).
        let want = [2.0 * x[1], 2.0 * x[0], 0.0, 2.0 * x[3]];
        assert!(close(&hv, &want), "{hv:?} vs {want:?}");
        let (_, j) = jacobian(&Poly, &[1.0_f64, 2.0, 3.0], Mode::Reverse).unwrap();
        assert_eq!(
            j,
            vec![
                vec![2.0, 1.0, 0.0],
                vec![0.0, 12.0, 4.0],
                vec![1.0, 0.0, 6.0]
            ]
        );
        let (_, j32) = jacobian(&Poly, &[1.0_f32, 2.0, 3.0], Mode::Reverse).unwrap();
        assert_eq!(
            j32,
            vec![
                vec![2.0, 1.0, 0.0],
                vec![0.0, 12.0, 4.0],
                vec![1.0, 0.0, 6.0]
            ]
        );
    }
}

#[test]
fn threads_each_with_their_own_spare() {
    let handles: Vec<_> = (0..4)
        .map(|k| {
            std::thread::spawn(move || {
                for round in 0..20 {
                    let n = 10 + 37 * ((k + round) % 5);
                    let x = point(n, k as f64 + round as f64 * 0.1);
                    let (_, g) = gradient(|x| cyc(x), &x);
                    assert!(close(&g, &cyc_grad(&x)), "thread {k}, round {round}");
                    let (_, g32) = gradient(|x| x[0] * x[0], &[k as f32]);
                    assert_eq!(g32, vec![2.0 * k as f32]);
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}
