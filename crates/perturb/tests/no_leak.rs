//! Recording, sweeping and clearing many times leaves no memory behind: a counting allocator
//! measures the bytes alive before and after, for the scalar tape and the tensor tape.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

use perturb::tensor::{Array, Tensor, TensorTape};
use perturb::{Float, Tape};

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards to the system allocator, only counting.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn live() -> isize {
    LIVE.load(Ordering::Relaxed)
}

/// One test, so that no other test's allocations run at the same time.
/// The count is process-wide, so the test harness's own bookkeeping on another thread (its
/// "has been running for over 60 seconds" notice on a loaded machine) can move it by a few
/// hundred bytes once. A leak of even one 8-byte allocation per step moves it by 80 KB.
fn assert_no_growth(what: &str, before: isize, after: isize) {
    assert!(
        after - before < 1024,
        "{what}: {} bytes more alive after 10,000 steps",
        after - before
    );
}

#[test]
fn many_steps_leave_no_memory_behind() {
    // Scalar tape: 1,000,000 recorded operations in 10,000 steps of 100.
    let mut tape = Tape::with_capacity(128);
    let mut x0 = 0.3_f64;
    let warm = |tape: &mut Tape<f64>, x0: &mut f64| {
        let g = {
            let x = tape.var(*x0);
            let mut y = x;
            for _ in 0..99 {
                y = (y * 0.999).sin() + x;
            }
            tape.gradient_wrt(y, &[x]).unwrap()[0]
        };
        tape.clear();
        *x0 += 1e-6 * g.signum();
    };
    for _ in 0..100 {
        warm(&mut tape, &mut x0); // sizes the buffers once
    }
    let before = live();
    for _ in 0..10_000 {
        warm(&mut tape, &mut x0);
    }
    assert_no_growth("scalar tape", before, live());

    // Tensor tape: 10,000 steps of a small network's loss and gradient.
    let w0 = Tensor::<f64>::randn(&[8, 4], 0.0, 0.5, 1);
    let x = Tensor::<f64>::randn(&[16, 8], 0.0, 1.0, 2);
    let mut ttape = TensorTape::new();
    let mut w = w0.clone();
    let step = |ttape: &mut TensorTape<Tensor<f64>>, w: &mut Tensor<f64>| {
        let g = {
            let wv = ttape.var(w.clone());
            let loss = ttape
                .constant(x.clone())
                .matmul(&wv)
                .tanh()
                .square()
                .sum_all();
            ttape.gradient(&loss, &[&wv]).unwrap().remove(0)
        };
        ttape.clear();
        *w = w.sub(&g.scale(1e-4));
    };
    // Warm-up steps size the tape's list and let one-time initialisation (thread-locals of
    // the GEMM and rayon) happen before counting.
    for _ in 0..100 {
        step(&mut ttape, &mut w);
    }
    let before = live();
    for _ in 0..10_000 {
        step(&mut ttape, &mut w);
    }
    assert_no_growth("tensor tape", before, live());
}
