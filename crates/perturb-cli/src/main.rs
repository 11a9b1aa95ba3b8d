//! `perturb`: the command-line program.
//!
//! With no arguments it runs the lecture's worked examples and prints each derivative in
//! forward mode, in reverse mode and from the exact formula.

mod lecture;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "perturb",
    version,
    about = "Automatic differentiation, shown on the lecture's examples",
    after_help = "Examples:\n  perturb                 # same as `perturb lecture`\n  perturb lecture --x 0.7 --w 3"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Print the lecture's worked examples with their derivatives in forward and reverse mode.
    Lecture(lecture::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Lecture(args)) => lecture::run(&args),
        None => lecture::run(&lecture::Args::default()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("perturb: {e}");
            ExitCode::FAILURE
        }
    }
}
