//! # perturb-nn
//!
//! Neural networks on [`perturb::tensor`]: modules ([`module`]) and the layers they are built
//! from ([`layers`]), ready-made networks ([`models`]), the older layers and models ([`nn`]),
//! losses ([`loss`]), optimisers and learning-rate schedules ([`optim`]), data sets ([`data`]),
//! model files and checkpoints ([`io`]), and data-parallel training on several ranks, threads
//! or MPI processes ([`distributed`]). Everything here uses only perturb's public API.

pub mod data;
pub mod distributed;
pub mod io;
pub mod layers;
pub mod loss;
pub mod models;
pub mod module;
pub mod nn;
pub mod optim;

/// The README's examples, compiled and run as doctests (here, where both crates are available).
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;
