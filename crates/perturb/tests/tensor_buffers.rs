//! The buffer pool (`perturb::tensor::buffers`): the same bits with the pool on and off, also
//! when every reused buffer held NaN before; and a gradient that, once warm, takes its large
//! buffers from the pool instead of the allocator.
//!
//! The pool's switch is process-wide, so this file's checks run in one test, one after the
//! other.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use perturb::tensor::{buffers, hvp, jacfwd, Array, Tensor, TensorTape};

/// The system allocator, counting this thread's allocations of at least 1 KiB.
struct Counting;

thread_local! {
    static LARGE: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: every call is passed on to `System` unchanged; the count is a thread-local `Cell`
// with a constant initialiser, which does not allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.size() >= 1024 {
            let _ = LARGE.try_with(|n| n.set(n.get() + 1));
        }
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if layout.size() >= 1024 {
            let _ = LARGE.try_with(|n| n.set(n.get() + 1));
        }
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size >= 1024 {
            let _ = LARGE.try_with(|n| n.set(n.get() + 1));
        }
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The number of allocations of at least 1 KiB `f` makes on this thread.
fn large_allocations(f: impl FnOnce()) -> usize {
    let before = LARGE.with(Cell::get);
    f();
    LARGE.with(Cell::get) - before
}

fn rosenbrock<A: Array>(x: &A) -> Result<A, perturb::Error> {
    let n = x.shape()[0];
    let head = x.try_narrow(0, 0, n - 1)?;
    let tail = x.try_narrow(0, 1, n - 1)?;
    let a = tail.try_sub(&head.square())?;
    let b = head.add_scalar(A::elem(-1.0));
    a.square()
        .scale(A::elem(100.0))
        .try_add(&b.square())
        .map(|s| s.sum_all())
}

/// A network on a batch large enough for the parallel loops (`tanh` and `exp` of 2^15
/// elements run on rayon's pool), with broadcasting, a reduction over an axis and products.
fn network<A: Array>(w: &A, b: &A, x: &A) -> Result<A, perturb::Error> {
    let h = x.try_matmul(w)?.try_add(b)?.tanh();
    Ok(h.log_softmax(1)
        .exp()
        .mul(&h)
        .try_sum_axes(&[0], false)?
        .square()
        .sum_all())
}

/// Every result the workloads compute, as bits.
fn results() -> Vec<Vec<u64>> {
    let bits = |t: &Tensor<f64>| t.as_slice().iter().map(|v| v.to_bits()).collect();
    let n = 10_000;
    let x = Tensor::from_vec(
        (0..n).map(|i| 0.5 + 0.001 * (i % 100) as f64).collect(),
        &[n],
    )
    .unwrap();
    let v = Tensor::<f64>::randn(&[n], 0.0, 1.0, 1);
    let tape = TensorTape::new();
    let xv = tape.var(x.clone());
    let grad = tape.gradient(&rosenbrock(&xv).unwrap(), &[&xv]).unwrap();
    let hv = hvp(|x| rosenbrock(x), &x, &v).unwrap();

    let (w, b) = (
        Tensor::randn(&[8, 32], 0.0, 0.5, 2),
        Tensor::randn(&[32], 0.0, 0.1, 3),
    );
    let data = Tensor::randn(&[1024, 8], 0.0, 1.0, 4);
    let tape = TensorTape::new();
    let (wv, bv) = (tape.var(w.clone()), tape.var(b.clone()));
    let loss = network(&wv, &bv, &tape.constant(data.clone())).unwrap();
    let net = tape.gradient(&loss, &[&wv, &bv]).unwrap();
    let jac = jacfwd(
        |b| network(&b.constant_like(&w), b, &b.constant_like(&data)),
        &b,
    )
    .unwrap();
    let mut out = vec![
        bits(&grad[0]),
        bits(&hv),
        bits(&net[0]),
        bits(&net[1]),
        bits(&jac),
    ];
    out.push(bits(loss.value()));
    // Every path of the matrix product writes its output into a buffer it does not clear first
    // (`gemm` with `beta = 0`), here one of NaN when the pool is on: a matrix times a vector, a row times a matrix, a short inner
    // dimension, no inner dimension at all, a stack, and the general kernel.
    let shapes: [(&[usize], &[usize]); 6] = [
        (&[300, 5], &[5, 1]),
        (&[1, 300], &[300, 200]),
        (&[300, 3], &[3, 6]),
        (&[200, 0], &[0, 3]),
        (&[2, 100, 3], &[3, 4]),
        (&[64, 64], &[64, 64]),
    ];
    for (i, (sa, sb)) in shapes.into_iter().enumerate() {
        let a = Tensor::<f64>::randn(sa, 0.0, 1.0, 10 + i as u64);
        let b = Tensor::<f64>::randn(sb, 0.0, 1.0, 20 + i as u64);
        poison();
        out.push(bits(&a.try_matmul(&b).unwrap()));
    }
    out
}

/// Fills this thread's pool with NaN buffers of every size from 128 to 2^18 elements.
fn poison() {
    for shift in 7..=18 {
        for len in [1 << shift, (1 << shift) + (1 << (shift - 1))] {
            drop(Tensor::full(&[len], f64::NAN));
        }
    }
}

#[test]
fn the_pool_changes_no_bit_and_serves_a_warm_gradient() {
    assert!(buffers::set_enabled(false));
    let off = results();
    buffers::set_enabled(true);
    poison();
    assert!(buffers::pooled_bytes() > 0);
    assert_eq!(results(), off, "pool on, after NaN buffers");
    poison();
    assert_eq!(results(), off, "pool on, second round");
    assert!(buffers::pooled_bytes() <= buffers::limit());

    // A Rosenbrock gradient on a reused tape: with the pool, once warm, no buffer of 1 KiB or
    // more comes from the allocator; without it, every operation's does.
    let x = Tensor::<f64>::linspace(-1.0, 1.0, 10_000);
    let mut tape = TensorTape::new();
    let mut step = || {
        let xv = tape.var(x.clone());
        let g = tape.gradient(&rosenbrock(&xv).unwrap(), &[&xv]).unwrap();
        tape.clear();
        g
    };
    step();
    assert_eq!(large_allocations(|| drop(step())), 0);
    buffers::set_enabled(false);
    assert!(large_allocations(|| drop(step())) >= 10);
    buffers::set_enabled(true);
}
