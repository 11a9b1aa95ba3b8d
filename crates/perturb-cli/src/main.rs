//! `perturb`: the command-line program.
//!
//! With no arguments it runs the lecture's worked examples and prints each derivative in
//! forward mode, in reverse mode and from the exact formula. `perturb explain EXPR --at x=...`
//! shows the chain rule step by step on any expression.

mod apply;
mod data_arg;
mod explain;
mod lecture;
mod model_file;
mod network;
mod out_dir;
mod plot;
mod serve;
mod train;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "perturb",
    version,
    about = "Automatic differentiation, shown on the lecture's examples",
    after_help = "Examples:\n  perturb                 # same as `perturb lecture`\n  perturb lecture --x 0.7 --w 3\n  perturb explain '-log(sigmoid(w*x^2))' --at x=0.7,w=3\n  perturb serve --port 8000   # the chain rule as a page: http://127.0.0.1:8000/\n  perturb train --data breast_cancer --hidden 16 --optimizer adam --lr 0.01 --epochs 150"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Print the lecture's worked examples with their derivatives in forward and reverse mode.
    Lecture(lecture::Args),
    /// Evaluate an expression and show the chain rule at work: the value of every
    /// intermediate, the forward and reverse sweeps, and the graph.
    Explain(explain::Args),
    /// Train a network by gradient descent and report its train and test metrics; with no
    /// options, the lecture's network on two moons with plain gradient descent.
    Train(train::Args),
    /// Print the predictions of a model saved by `perturb train --out` on a data set.
    Predict(apply::Args),
    /// Print the accuracy and the confusion matrix (or MSE and R^2) of a model saved by
    /// `perturb train --out` on a data set.
    Eval(apply::Args),
    /// Serve a local web page where you type an expression, see its graph and step through
    /// forward and reverse mode, and see the Jacobian chain rule on the lecture's vector examples.
    Serve(serve::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Lecture(args)) => lecture::run(&args),
        Some(Command::Explain(args)) => explain::run(&args),
        Some(Command::Train(args)) => train::run(&args),
        Some(Command::Predict(args)) => apply::predict(&args),
        Some(Command::Eval(args)) => apply::eval(&args),
        Some(Command::Serve(args)) => serve::run(&args),
        None => lecture::run(&lecture::Args::default()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("perturb: {}", explain::terminal_safe(&e));
            ExitCode::FAILURE
        }
    }
}
