//! # perturb-nn
//!
//! Neural networks on [`perturb::tensor`]: layers and models ([`nn`]), losses ([`loss`]),
//! optimisers and learning-rate schedules ([`optim`]), and data sets ([`data`]). Everything
//! here uses only perturb's public API.

pub mod data;
pub mod loss;
pub mod nn;
pub mod optim;
