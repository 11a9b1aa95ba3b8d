//! The conv benchmark's three rows as a fixed workload, timed by the process's CPU time
//! (user + system, which a loaded machine disturbs less than wall time).
//! Run: `cargo run --release -p perturb --example conv_cpu -- 200`.
use perturb::tensor::conv::{conv2d, Conv2dOptions};
use perturb::tensor::ops::{Conv, ConvTranspose, ConvWeightGrad};
use perturb::tensor::{Op, Tensor, TensorTape};
use std::hint::black_box;

#[path = "../benches/conv/baseline.rs"]
mod baseline;
use baseline::GemmBaseline;

fn cpu_ms() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let f: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    (f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap()) * 10.0
}

fn main() {
    let reps: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(200);
    let (n, o, k, p) = (64, 32, 9, 784);
    let x = Tensor::<f32>::randn(&[n, 1, 28, 28], 0.0, 1.0, 1);
    let w = Tensor::<f32>::randn(&[o, 1, 3, 3], 0.0, 0.3, 2);
    let g = Tensor::<f32>::randn(&[n, o, 28, 28], 0.0, 1.0, 3);
    let options = Conv2dOptions::default().padding(1);
    let time = |name: &str, f: &mut dyn FnMut()| {
        f();
        let (c0, t0) = (cpu_ms(), std::time::Instant::now());
        for _ in 0..reps {
            f();
        }
        let cpu = (cpu_ms() - c0) / reps as f64;
        let wall = t0.elapsed().as_secs_f64() * 1e3 / reps as f64;
        println!("{name}: {cpu:.3} ms CPU, {wall:.3} ms wall");
    };
    for _ in 0..3 {
        time("tape", &mut || {
            let tape = TensorTape::new();
            let (xv, wv) = (tape.var(x.clone()), tape.var(w.clone()));
            let y = conv2d(&xv, &wv, options);
            black_box(tape.vjp(&y, &g, &[&xv, &wv]).unwrap());
        });
        let (conv, tr) = (Conv { options }, ConvTranspose { options });
        let wg = ConvWeightGrad {
            options,
            kernel: [3, 3],
        };
        time("ops", &mut || {
            black_box((
                conv.eval(&[&x, &w]).unwrap(),
                tr.eval(&[&g, &w]).unwrap(),
                wg.eval(&[&x, &g]).unwrap(),
            ));
        });
        let mut baseline = GemmBaseline::new(n, o, k, p);
        time("gemm", &mut || {
            baseline.run(w.as_slice(), g.as_slice());
            black_box(&baseline);
        });
    }
}
