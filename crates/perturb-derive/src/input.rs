//! Reading a `#[derive(Tree)]` input: its leaf parameter, its fields and their `#[tree(..)]`
//! attributes. Every misuse becomes a compile error at its place, all of them at once.

use proc_macro2::{TokenStream, TokenTree};
use quote::ToTokens;
use syn::ext::IdentExt;
use syn::{Attribute, Data, DeriveInput, Error, Fields, Ident, Index, Member, Type};

/// A type that derives `Tree`, checked.
pub struct Input<'a> {
    pub ast: &'a DeriveInput,
    /// The leaf type parameter: `A` in `Linear<A>`; none in a type that holds no leaves.
    pub leaf: Option<&'a Ident>,
    pub body: Body<'a>,
}

pub enum Body<'a> {
    Struct(Vec<Field<'a>>),
    Enum(Vec<Variant<'a>>),
}

pub struct Variant<'a> {
    pub ident: &'a Ident,
    pub fields: Vec<Field<'a>>,
}

pub struct Field<'a> {
    /// How patterns and literals name the field: `weight`, or `0` in a tuple struct.
    pub member: Member,
    /// Its segment in the paths of its leaves: the name (without `r#`) or the index; none for
    /// the one field of a newtype (`Dense(Linear<A>)`), whose leaves are at the paths they
    /// have in the field, as those of an `Option`'s `Some`.
    pub segment: Option<String>,
    pub ty: &'a Type,
    /// `#[tree(skip)]`, or a field of a type without a leaf parameter: no leaves; cloned as it
    /// is into a mapped tree.
    pub skip: bool,
}

const ONLY_SKIP: &str = "the only tree attribute is `#[tree(skip)]`, on a field";

/// Checks `ast` and reads it, or returns every error found.
pub fn read(ast: &DeriveInput) -> syn::Result<Input<'_>> {
    let mut errors = Errors::default();
    reject_tree_attrs(&ast.attrs, &mut errors);
    let leaf = leaf_parameter(ast, &mut errors);
    let body = match &ast.data {
        Data::Struct(data) => Body::Struct(fields(&data.fields, leaf, &mut errors)),
        Data::Enum(data) => Body::Enum(
            data.variants
                .iter()
                .map(|v| {
                    reject_tree_attrs(&v.attrs, &mut errors);
                    Variant {
                        ident: &v.ident,
                        fields: fields(&v.fields, leaf, &mut errors),
                    }
                })
                .collect(),
        ),
        Data::Union(data) => {
            let union = "`#[derive(Tree)]` is for structs and enums, not unions";
            return Err(errors.fail(Error::new_spanned(data.union_token, union)));
        }
    };
    errors.finish()?;
    Ok(Input { ast, leaf, body })
}

/// The type parameter, if any: one, unbounded, since `With<M>` is the type with `M` in its
/// place, which must exist for every `M`.
fn leaf_parameter<'a>(ast: &'a DeriveInput, errors: &mut Errors) -> Option<&'a Ident> {
    let name = &ast.ident;
    let mut types = ast.generics.type_params();
    let leaf = types.next()?;
    let leaf_name = &leaf.ident;
    for extra in types {
        errors.push(Error::new_spanned(
            extra,
            format!(
                "`#[derive(Tree)]` takes one type parameter, the leaf type (`{leaf_name}` here); \
                 `{}` is a second one: give its fields fixed types",
                extra.ident
            ),
        ));
    }
    let unbounded = format!(
        "the leaf parameter `{leaf_name}` of a tree takes no bounds where the type is defined: \
         the same tree with other leaves (`{name}<M>` for tape variables, gradients, shapes, \
         any `M`) must be a type too. Put the bounds on the impl blocks instead: \
         `impl<{leaf_name}: Array> {name}<{leaf_name}> {{ .. }}`"
    );
    if !leaf.bounds.is_empty() {
        errors.push(Error::new_spanned(&leaf.bounds, &unbounded));
    }
    for predicate in ast.generics.where_clause.iter().flat_map(|w| &w.predicates) {
        if mentions(predicate.to_token_stream(), leaf_name) {
            errors.push(Error::new_spanned(predicate, &unbounded));
        }
    }
    Some(leaf_name)
}

fn fields<'a>(fields: &'a Fields, leaf: Option<&Ident>, errors: &mut Errors) -> Vec<Field<'a>> {
    let newtype = matches!(fields, Fields::Unnamed(f) if f.unnamed.len() == 1);
    let read = |(index, field): (usize, &'a syn::Field)| {
        let skipped = is_skipped(&field.attrs, errors);
        let (member, name) = match &field.ident {
            Some(name) => (Member::Named(name.clone()), name.unraw().to_string()),
            None => (Member::Unnamed(Index::from(index)), index.to_string()),
        };
        let mentioned = leaf.filter(|leaf| skipped && mentions(field.ty.to_token_stream(), leaf));
        if let Some(leaf) = mentioned {
            errors.push(Error::new_spanned(
                &field.ty,
                format!(
                    "field `{name}` is `#[tree(skip)]`, kept as it is when the tree's leaves \
                     change type, so its type cannot mention the leaf parameter `{leaf}`: \
                     make it a tree field (no `skip`), or give it a type without `{leaf}`"
                ),
            ));
        }
        Field {
            member,
            segment: (!newtype).then_some(name),
            ty: &field.ty,
            skip: skipped || leaf.is_none(),
        }
    };
    fields.iter().enumerate().map(read).collect()
}

/// Whether the field is marked `#[tree(skip)]`; other `#[tree(..)]` contents are errors.
fn is_skipped(attrs: &[Attribute], errors: &mut Errors) -> bool {
    let mut skip = false;
    for attr in attrs.iter().filter(|a| a.path().is_ident("tree")) {
        let parsed = attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("skip") {
                skip = true;
                Ok(())
            } else {
                let name = meta.path.to_token_stream().to_string().replace(' ', "");
                Err(meta.error(format!("unknown tree attribute `{name}`: {ONLY_SKIP}")))
            }
        });
        if let Err(e) = parsed {
            errors.push(e);
        }
    }
    skip
}

/// `#[tree(..)]` on the type or a variant.
fn reject_tree_attrs(attrs: &[Attribute], errors: &mut Errors) {
    for attr in attrs.iter().filter(|a| a.path().is_ident("tree")) {
        errors.push(Error::new_spanned(attr, ONLY_SKIP));
    }
}

/// Whether `tokens` name the type parameter `leaf` (an identifier `leaf` that does not follow
/// `::`, which would make it an item or associated type of that name).
fn mentions(tokens: TokenStream, leaf: &Ident) -> bool {
    let mut colons = 0;
    for token in tokens {
        match &token {
            TokenTree::Ident(ident) if ident == leaf && colons < 2 => return true,
            TokenTree::Group(group) if mentions(group.stream(), leaf) => return true,
            TokenTree::Punct(p) if p.as_char() == ':' => {
                colons += 1;
                continue;
            }
            _ => {}
        }
        colons = 0;
    }
    false
}

/// The errors found so far, reported together.
#[derive(Default)]
struct Errors(Option<Error>);

impl Errors {
    fn push(&mut self, error: Error) {
        match &mut self.0 {
            Some(first) => first.combine(error),
            None => self.0 = Some(error),
        }
    }

    /// All of them, ending with `last`.
    fn fail(self, last: Error) -> Error {
        match self.0 {
            Some(mut first) => {
                first.combine(last);
                first
            }
            None => last,
        }
    }

    fn finish(self) -> syn::Result<()> {
        self.0.map_or(Ok(()), Err)
    }
}
