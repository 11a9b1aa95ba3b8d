//! Loads a CSV file with `perturb_nn::data::load_csv` (the target is the last column) and prints
//! its shape: a way to measure the loader's time and peak memory on a file of your own, e.g.
//! `/usr/bin/time -v cargo run --release -p perturb-nn --example load_csv -- data.csv`.

use perturb_nn::data::{load_csv, TargetColumn};

fn main() {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: load_csv FILE.csv");
        std::process::exit(2);
    };
    match load_csv(&path, TargetColumn::Last) {
        Ok(d) => println!("{path}: {} rows, {} features", d.len(), d.n_features()),
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    }
}
