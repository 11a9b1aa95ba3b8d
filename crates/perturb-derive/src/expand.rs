//! The generated `impl ::perturb::tree::Tree<A> for Name<A>`.
//!
//! Each method is one `match self` with an arm per variant (one arm for a struct) that binds
//! the fields and walks the tree fields in order, each under its segment of the path. A field
//! is walked by `::perturb::tree::Tree::<A>::method(field, ..)`, with no where-clause for its
//! type: rustc then finds its impl and normalises `<Vec<Linear<A>> as Tree<A>>::With<M>` to
//! `Vec<Linear<M>>`, the field's type in `Name<M>`. (With a where-clause `Linear<A>: Tree<A>`
//! it would take the clause as the impl and could not see what `With<M>` is.)

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned, ToTokens};
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{GenericParam, Ident, Lifetime};

use crate::input::{Body, Field, Input};

pub fn expand(input: &Input) -> TokenStream {
    let Input { ast, leaf, body } = input;
    let name = &ast.ident;
    let taken: Vec<String> = ast.generics.params.iter().map(param_name).collect();
    // The generated generic parameters, named apart from the type's own.
    let out = Ident::new(&fresh("__TreeLeaf", &taken), Span::call_site());
    let life = Lifetime::new(&fresh("'__tree", &taken), Span::call_site());

    // A type without a leaf parameter is a tree (of no leaves) of every array type.
    let mut generics = ast.generics.clone();
    let leaf = match leaf {
        Some(leaf) => (*leaf).clone(),
        None => {
            let leaf = Ident::new(&fresh("__TreeArray", &taken), Span::call_site());
            generics.params.push(syn::parse_quote!(#leaf));
            leaf
        }
    };
    for param in generics.type_params_mut() {
        param
            .bounds
            .push(syn::parse_quote!(::perturb::tensor::Array));
    }
    let (impl_generics, _, _) = generics.split_for_impl();
    let (_, ty_generics, where_clause) = ast.generics.split_for_impl();
    let with_args = ast.generics.params.iter().map(|param| match param {
        GenericParam::Type(_) => out.to_token_stream(),
        GenericParam::Lifetime(l) => l.lifetime.to_token_stream(),
        GenericParam::Const(c) => c.ident.to_token_stream(),
    });

    let arms = match body {
        Body::Struct(fields) => vec![(quote!(#name), None, fields)],
        Body::Enum(variants) => variants
            .iter()
            .map(|v| {
                let variant = v.ident;
                (quote!(#name::#variant), Some(variant), &v.fields)
            })
            .collect(),
    };
    let names = Names::new();
    let visit = walk(&arms, &names, &leaf, &quote!(visit));
    let visit_mut = walk(&arms, &names, &leaf, &quote!(visit_mut));
    let map = map(&arms, &names, &leaf);
    let Names { path, f, .. } = &names;
    let tree = quote!(::perturb::tree::Tree);
    let path_type = quote!(::perturb::tree::Path);

    quote! {
        #[automatically_derived]
        impl #impl_generics #tree<#leaf> for #name #ty_generics #where_clause {
            type With<#out> = #name<#(#with_args),*>;

            fn visit<#life>(
                &#life self,
                #path: &mut #path_type,
                #f: &mut dyn ::core::ops::FnMut(&#path_type, &#life #leaf),
            ) {
                #visit
            }

            fn visit_mut(
                &mut self,
                #path: &mut #path_type,
                #f: &mut dyn ::core::ops::FnMut(&#path_type, &mut #leaf),
            ) {
                #visit_mut
            }

            fn map_with_path<#out>(
                &self,
                #path: &mut #path_type,
                #f: &mut dyn ::core::ops::FnMut(&#path_type, &#leaf) -> #out,
            ) -> <Self as #tree<#leaf>>::With<#out> {
                #map
            }
        }
    }
}

/// A constructor (`Name` or `Name::Variant`), the variant (for an enum) and its fields.
type Arm<'a> = (TokenStream, Option<&'a Ident>, &'a Vec<Field<'a>>);

/// The generated code's local variables, hygienic (`Span::mixed_site`): a user's field named
/// `path` or `f` cannot clash with them.
struct Names {
    path: Ident,
    f: Ident,
    /// The path inside `Path::with`'s closure.
    p: Ident,
}

impl Names {
    fn new() -> Self {
        let local = |name: &str| Ident::new(name, Span::mixed_site());
        Names {
            path: local("path"),
            f: local("f"),
            p: local("p"),
        }
    }

    /// The variable bound to the `i`th field. It sits at the field's type, where rustc then
    /// points when that type is not a tree (`usize: Tree<A>` is not satisfied).
    fn field(i: usize, field: &Field) -> Ident {
        let span = Span::mixed_site().located_at(field.ty.span());
        format_ident!("field_{}", i, span = span)
    }
}

/// `visit` or `visit_mut`: each tree field in order, under its segment.
fn walk(arms: &[Arm], names: &Names, leaf: &Ident, method: &TokenStream) -> TokenStream {
    let arms = arms.iter().map(|(constructor, variant, fields)| {
        let trees = fields.iter().enumerate().filter(|(_, field)| !field.skip);
        let members = trees.clone().map(|(_, field)| &field.member);
        let bindings = trees.clone().map(|(i, field)| Names::field(i, field));
        let calls =
            trees.map(|(i, field)| call(field, &Names::field(i, field), names, leaf, method));
        let calls = in_variant(*variant, names, quote!({ #(#calls;)* }));
        quote!(#constructor { #(#members: #bindings,)* .. } => { #calls })
    });
    match_self(arms)
}

/// `map_with_path`: the same constructor with each tree field mapped under its segment and
/// each skipped field cloned.
fn map(arms: &[Arm], names: &Names, leaf: &Ident) -> TokenStream {
    let arms = arms.iter().map(|(constructor, variant, fields)| {
        let members: Vec<_> = fields.iter().map(|field| &field.member).collect();
        let bindings: Vec<_> = fields
            .iter()
            .enumerate()
            .map(|(i, field)| Names::field(i, field))
            .collect();
        let values = fields.iter().zip(&bindings).map(|(field, binding)| {
            if field.skip {
                quote!(::core::clone::Clone::clone(#binding))
            } else {
                call(field, binding, names, leaf, &quote!(map_with_path))
            }
        });
        let value = in_variant(
            *variant,
            names,
            quote!(#constructor { #(#members: #values),* }),
        );
        quote!(#constructor { #(#members: #bindings),* } => #value,)
    });
    match_self(arms)
}

/// `Tree::<leaf>::method(binding, path, f)` for a tree field, under its segment if it has one.
/// A type error in the call points at the field's type.
fn call(
    field: &Field,
    binding: &Ident,
    names: &Names,
    leaf: &Ident,
    method: &TokenStream,
) -> TokenStream {
    let Names { path, f, p } = names;
    let call = |at: &Ident| {
        quote_spanned! {field.ty.span()=>
            ::perturb::tree::Tree::<#leaf>::#method(#binding, #at, #f)
        }
    };
    match &field.segment {
        Some(segment) => {
            let call = call(p);
            quote!(#path.with(#segment, |#p| #call))
        }
        None => call(path),
    }
}

/// `body` run inside `Path::with_variant` for an enum's variant (no segment, but leaves under
/// other variants then have other paths), as it is for a struct.
fn in_variant(variant: Option<&Ident>, names: &Names, body: TokenStream) -> TokenStream {
    let Some(variant) = variant else { return body };
    let name = variant.unraw().to_string();
    let path = &names.path;
    quote!(#path.with_variant(#name, |#path| #body))
}

fn match_self(arms: impl Iterator<Item = TokenStream>) -> TokenStream {
    let arms: Vec<_> = arms.collect();
    if arms.is_empty() {
        // An enum without variants: no value to walk (`match self {}` would not compile).
        quote!(match *self {})
    } else {
        quote!(match self { #(#arms)* })
    }
}

fn param_name(param: &GenericParam) -> String {
    match param {
        GenericParam::Type(t) => t.ident.to_string(),
        GenericParam::Lifetime(l) => l.lifetime.to_string(),
        GenericParam::Const(c) => c.ident.to_string(),
    }
}

/// `base`, with underscores added until no name in `taken` is the same.
fn fresh(base: &str, taken: &[String]) -> String {
    let mut name = base.to_string();
    while taken.contains(&name) {
        name.push('_');
    }
    name
}
