//! Where the scalar tape's time goes on the benchmark chain of 2.25 million operations
//! (issue 19): the plain function, recording and sweeping separately on a reused tape, a fresh
//! tape per call, and `perturb::gradient`, with the page faults and tape bytes of each.
//!
//! `cargo run --release --example scalar_tape_profile -p perturb -- [steps] [rounds]`
//!
//! Times are medians over `rounds` (default 15) calls in this process, of the thread's CPU time
//! on Linux (wall time elsewhere), so that on a shared machine the time the thread waits for a
//! core is not counted; minor page faults are read from `/proc/self/stat`. Ad-hoc timing for finding the limit, not the benchmark: the
//! figures in BENCHMARKS.md come from `cargo bench --bench scalar`.

use std::hint::black_box;
use std::time::Duration;
#[cfg(not(target_os = "linux"))]
use std::time::Instant;

use num_traits::Float;
use perturb::Tape;

/// The benchmark's chain: x <- sin(x) * 1.0001 + 0.1 x^2 - ln(1 + x^2), 9 operations a step.
fn chain<T: Float>(x0: T, steps: usize) -> T {
    let c1 = T::from(1.0001).unwrap();
    let c2 = T::from(0.1).unwrap();
    let one = T::one();
    let mut x = x0;
    for _ in 0..steps {
        x = x.sin() * c1 + c2 * x * x - (one + x * x).ln();
    }
    x
}

/// Minor page faults of this process so far (field 10 of `/proc/self/stat`), where Linux
/// tells it.
fn minor_faults() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name may hold spaces; the fields after it are space-separated.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split_whitespace().nth(7)?.parse().ok()
}

/// This thread's CPU time so far (`CLOCK_THREAD_CPUTIME_ID`) on Linux; elsewhere the time
/// since the first call.
#[cfg(target_os = "linux")]
fn clock() -> Duration {
    #[repr(C)]
    struct Timespec {
        tv_sec: i64,
        tv_nsec: i64,
    }
    extern "C" {
        fn clock_gettime(clock: i32, time: *mut Timespec) -> i32;
    }
    const CLOCK_THREAD_CPUTIME_ID: i32 = 3;
    let mut t = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `t` is a valid `struct timespec` (64-bit Linux) for the call to fill.
    let ok = unsafe { clock_gettime(CLOCK_THREAD_CPUTIME_ID, &mut t) } == 0;
    assert!(ok, "clock_gettime failed");
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

#[cfg(not(target_os = "linux"))]
fn clock() -> Duration {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    START.get_or_init(Instant::now).elapsed()
}

/// Runs `f` `rounds` times; the median time and the median number of minor faults per call.
fn measure<R>(rounds: usize, mut f: impl FnMut() -> R) -> (Duration, u64) {
    let mut times = Vec::with_capacity(rounds);
    let mut faults = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let before = minor_faults().unwrap_or(0);
        let start = clock();
        black_box(f());
        times.push(clock() - start);
        faults.push(minor_faults().unwrap_or(0) - before);
    }
    times.sort();
    faults.sort();
    (times[rounds / 2], faults[rounds / 2])
}

fn main() {
    let mut args = std::env::args().skip(1);
    let steps: usize = args.next().map_or(250_000, |s| s.parse().expect("steps"));
    let rounds: usize = args.next().map_or(15, |s| s.parse().expect("rounds"));

    let (plain, _) = measure(rounds, || chain(black_box(0.5_f64), steps));
    let show = |what: &str, (t, faults): (Duration, u64)| {
        println!(
            "{what:<44} {:>8.2} ms  {:>5.2}x plain  {faults:>6} minor faults",
            t.as_secs_f64() * 1e3,
            t.as_secs_f64() / plain.as_secs_f64()
        );
    };
    show("plain f64 value", (plain, 0));

    let mut tape = Tape::new();
    let mut record = Vec::new();
    let mut sweep = Vec::new();
    let mut faults = Vec::new();
    for _ in 0..rounds + 1 {
        let before = minor_faults().unwrap_or(0);
        let start = clock();
        let x0 = tape.var(black_box(0.5_f64));
        let y = chain(x0, steps);
        let recorded = clock() - start;
        let d = tape.gradient_wrt(y, &[x0]).unwrap();
        sweep.push(clock() - start - recorded);
        record.push(recorded);
        faults.push(minor_faults().unwrap_or(0) - before);
        black_box(d);
        tape.clear();
    }
    // The first round grows the tape; the rest reuse it.
    let first = (record[0] + sweep[0], faults[0]);
    let (mut record, mut sweep, mut faults) = (record.split_off(1), sweep.split_off(1), faults);
    record.sort();
    sweep.sort();
    faults.sort();
    show("reused tape: record", (record[rounds / 2], 0));
    show("reused tape: sweep (gradient_wrt)", (sweep[rounds / 2], 0));
    show(
        "reused tape: record + sweep",
        (record[rounds / 2] + sweep[rounds / 2], faults[rounds / 2]),
    );
    show("first use of a tape: record + sweep", first);
    show(
        "fresh tape per call (Tape::new)",
        measure(rounds, || {
            let tape = Tape::new();
            let x0 = tape.var(black_box(0.5_f64));
            let y = chain(x0, steps);
            tape.gradient_wrt(y, &[x0]).unwrap()
        }),
    );
    show(
        "perturb::gradient",
        measure(rounds, || {
            perturb::gradient(|x| chain(x[0], steps), &[black_box(0.5_f64)])
        }),
    );
    println!(
        "{} nodes, {:.1} MB of tape ({:.1} bytes per node)",
        9 * steps + 1,
        tape_bytes(steps) as f64 / 1e6,
        tape_bytes(steps) as f64 / (9 * steps + 1) as f64
    );
}

/// The tape's own bytes after recording the chain once.
fn tape_bytes(steps: usize) -> usize {
    let tape = Tape::new();
    let _ = chain(tape.var(0.5_f64), steps);
    tape.len() * Tape::<f64>::bytes_per_node()
}
