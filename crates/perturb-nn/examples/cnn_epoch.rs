//! N training epochs of the digits CNN, exactly those `benches/cnn.rs` times (one warm-up epoch
//! first), printing the wall time and the process's CPU time per epoch: a fixed workload for
//! `perf record`, and on Linux a CPU-time figure that a loaded machine disturbs less than wall
//! time (another process's turn on the core is not counted).
//!
//! Run: `RAYON_NUM_THREADS=1 cargo run --release -p perturb-nn --example cnn_epoch -- 4`.

#[path = "../tests/support/cnn.rs"]
#[allow(dead_code)]
mod cnn;

use perturb_nn::optim::Adam;

/// The process's user and system CPU time in milliseconds (Linux's `/proc/self/stat`, in
/// clock ticks of 10 ms), or `None` where it cannot be read.
fn cpu_ms() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat.rsplit(')').next()?.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i)?.parse::<u64>().ok();
    Some((ticks(11)? + ticks(12)?) as f64 * 10.0)
}

fn main() {
    let epochs: u32 = match std::env::args().nth(1).map(|s| s.parse()) {
        None => 1,
        Some(Ok(n)) if n > 0 => n,
        Some(_) => {
            eprintln!("usage: cnn_epoch [EPOCHS, at least 1]");
            std::process::exit(2);
        }
    };
    let (train, _) = cnn::digits_split();
    let train = cnn::scaled(&train);
    let mut adam = Adam::new(cnn::LR);
    let mut model = cnn::train_epoch(cnn::digits_cnn(0), &mut adam, &train, 0);
    let (cpu0, start) = (cpu_ms(), std::time::Instant::now());
    for seed in 1..=u64::from(epochs) {
        model = cnn::train_epoch(model, &mut adam, &train, seed);
    }
    let wall = start.elapsed().as_secs_f64() * 1e3 / f64::from(epochs);
    match (cpu0, cpu_ms()) {
        (Some(a), Some(b)) => println!(
            "{epochs} epochs: {wall:.1} ms wall, {:.1} ms CPU per epoch",
            (b - a) / f64::from(epochs)
        ),
        _ => println!("{epochs} epochs: {wall:.1} ms wall per epoch"),
    }
}
