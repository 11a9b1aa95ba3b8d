//! A model defined as your own struct: `#[derive(Tree)]` makes it a parameter tree, `grad` of a
//! loss returns a `Net` of gradients, the optimiser updates the model in place, and the model is
//! saved and loaded by its tree paths. `cargo run --example model_struct -p perturb-nn`.

use perturb::prelude::*;
use perturb::tensor::{grad, TensorVar};
use perturb_nn::layers::Linear;
use perturb_nn::loss::{binary_accuracy, logistic_nll, Reduction};
use perturb_nn::module::{Context, Module};
use perturb_nn::nn::Init;
use perturb_nn::optim::{Adam, Optimizer};
use perturb_nn::{data, io};

/// Two layers; the weights live in the struct, generic over the leaf type.
#[derive(Tree, Clone)]
struct Net<A> {
    hidden: Linear<A>,
    out: Linear<A>,
}

impl<A: Array> Net<A> {
    fn logits(&self, x: &A) -> Result<A, Error> {
        let ctx = &mut Context::evaluation();
        let h = self.hidden.forward(x, ctx)?.tanh();
        self.out.forward(&h, ctx)?.try_reshape(&[x.shape()[0]])
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let moons = data::two_moons::<f64>(200, 0.1, 0)?;
    let mut net = Net {
        hidden: Linear::new(2, 16, Init::XavierUniform, 1)?,
        out: Linear::new(16, 1, Init::XavierUniform, 2)?,
    };
    let mut adam = Adam::new(0.05);
    for _ in 0..300 {
        let grads = grad(
            |m| {
                let z = m.logits(&TensorVar::constant(moons.x.clone()))?;
                logistic_nll(&z, &TensorVar::constant(moons.y.clone()), Reduction::Mean)
            },
            &net,
        )?; // a Net of gradients: grads.hidden.weight, grads.out.bias, ...
        adam.update(&mut net, &grads)?; // W <- W - step, in the model itself
    }
    let accuracy = binary_accuracy(&net.logits(&moons.x)?, &moons.y)?;
    println!("training accuracy {:.1}%", 100.0 * accuracy);

    let path = std::env::temp_dir().join("perturb-model-struct.safetensors");
    io::save(&path, &net, &io::Header::new("Net(2-16-1, tanh)"))?;
    let mut loaded = net.clone();
    loaded.hidden = Linear::new(2, 16, Init::XavierUniform, 99)?; // other weights
    io::load_into(&mut loaded, &path, "Net(2-16-1, tanh)")?; // back to the trained ones
    assert_eq!(
        loaded.logits(&moons.x)?.to_vec(),
        net.logits(&moons.x)?.to_vec()
    );
    println!(
        "saved and loaded: {} tensors {:?}",
        net.num_leaves(),
        net.paths()
    );
    Ok(())
}
