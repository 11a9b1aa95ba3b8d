//! Runs SGD steps of the f32 MLP 784-512-512-10 (batch 256) from the tensor benchmark, to
//! measure the step's peak memory from outside:
//!
//! `cargo build --release --example mlp_784_memory -p perturb && /usr/bin/time -v target/release/examples/mlp_784_memory`
//!
//! It prints the bytes of parameters and data, and the loss before and after.

use perturb::tensor::{Array, Tensor, TensorTape};

fn main() {
    let (batch, sizes) = (256, [784, 512, 512, 10]);
    let x = Tensor::<f32>::rand_uniform(&[batch, 784], 0.0, 1.0, 2);
    let mut onehot = vec![0.0f32; batch * 10];
    for i in 0..batch {
        onehot[i * 10 + (i * 7) % 10] = 1.0;
    }
    let onehot = Tensor::from_vec(onehot, &[batch, 10]).expect("256 x 10 labels");
    let mut params: Vec<Tensor<f32>> = Vec::new();
    for (l, w) in sizes.windows(2).enumerate() {
        params.push(Tensor::randn(
            &[w[0], w[1]],
            0.0,
            (2.0 / w[0] as f32).sqrt(),
            10 + l as u64,
        ));
        params.push(Tensor::zeros(&[w[1]]));
    }
    let bytes: usize =
        params.iter().map(|p| p.len() * 4).sum::<usize>() + (x.len() + onehot.len()) * 4;
    println!("parameters and data: {:.1} MB", bytes as f64 / 1e6);
    let mut tape = TensorTape::new();
    for step in 0..20 {
        let (loss, grads) = {
            let vars: Vec<_> = params.iter().map(|t| tape.var(t.clone())).collect();
            let h1 = tape
                .constant(x.clone())
                .matmul(&vars[0])
                .add(&vars[1])
                .relu();
            let h2 = h1.matmul(&vars[2]).add(&vars[3]).relu();
            let logits = h2.matmul(&vars[4]).add(&vars[5]);
            let loss = logits
                .log_softmax(1)
                .mul(&tape.constant(onehot.clone()))
                .sum_all()
                .scale(-1.0 / batch as f32);
            let refs: Vec<_> = vars.iter().collect();
            let grads = tape.gradient(&loss, &refs).expect("one-element loss");
            (loss.value().item().unwrap_or(f32::NAN), grads)
        };
        tape.clear();
        for (p, g) in params.iter_mut().zip(&grads) {
            *p = p.sub(&g.scale(0.01));
        }
        if step == 0 || step == 19 {
            println!("step {step}: loss {loss:.4}");
        }
    }
}
