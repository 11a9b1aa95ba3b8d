//! `#[derive(Tree)]` for [perturb](https://docs.rs/perturb): a struct or enum of arrays as a
//! parameter tree. Use it through `perturb::Tree`, which re-exports it beside the trait.

mod expand;
mod input;

use proc_macro::TokenStream;
use syn::{parse_macro_input, DeriveInput};

/// Implements `perturb::tree::Tree<A>` for a struct or enum generic over its leaf type `A`.
#[proc_macro_derive(Tree, attributes(tree))]
pub fn derive_tree(input: TokenStream) -> TokenStream {
    let ast = parse_macro_input!(input as DeriveInput);
    match input::read(&ast) {
        Ok(input) => expand::expand(&input),
        Err(errors) => errors.into_compile_error(),
    }
    .into()
}
