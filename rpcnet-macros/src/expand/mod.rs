//! From the checked `model` to tokens: one generator per emitted item.
//!
//! Everything generated names items by absolute path (`::core::…`, `::std::…` and the
//! facade's `__private` module through the `crate = "…"` path), so a service compiles inside
//! a `#![no_implicit_prelude]` module and under a renamed dependency.

mod client;
mod server;
mod trait_def;

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote};
use syn::{Ident, ItemTrait, Type};

use crate::model::{Method, Service};

/// The trait rewritten for the server side, the server wrapper and the typed client.
pub(crate) fn service(service: &Service) -> TokenStream {
    let trait_def = trait_def::trait_def(service);
    let server = server::server(service);
    let client = client::client(service);
    quote! {
        #trait_def
        #server
        #client
    }
}

/// What is emitted when the trait has mistakes: the trait as written (so the rest of the
/// crate and IDEs keep resolving it) and one `compile_error!` per mistake.
pub(crate) fn fallback(item: &ItemTrait, errors: TokenStream) -> TokenStream {
    // Patterns are not allowed in methods without a body: name them so the only errors the
    // user sees are the macro's.
    let mut item = item.clone();
    for trait_item in &mut item.items {
        let syn::TraitItem::Fn(function) = trait_item else {
            continue;
        };
        if function.default.is_some() {
            continue;
        }
        for (index, input) in function.sig.inputs.iter_mut().enumerate() {
            if let syn::FnArg::Typed(typed) = input {
                if !matches!(&*typed.pat, syn::Pat::Ident(pat) if pat.by_ref.is_none() && pat.mutability.is_none() && pat.subpat.is_none())
                {
                    let ident = format_ident!("arg{}", index);
                    *typed.pat = syn::parse_quote!(#ident);
                }
            }
        }
    }
    quote! {
        #[allow(async_fn_in_trait)]
        #item
        #errors
    }
}

/// The application error type of a method on the wire.
fn error_type(service: &Service, method: &Method) -> TokenStream {
    let krate = &service.krate;
    match &method.error {
        Some(error) => quote!(#error),
        None => quote!(#krate::__private::Never),
    }
}

/// The type of a unary or server-streaming request: `()`, the argument's type, or a tuple.
fn message_type(args: &[crate::model::Arg]) -> TokenStream {
    match args {
        [arg] => {
            let ty: &Type = &arg.ty;
            quote!(#ty)
        }
        args => {
            let types = args.iter().map(|arg| &arg.ty);
            quote!((#(#types,)*))
        }
    }
}

/// The request value built from the arguments (client) or the pattern that takes it apart
/// (server): `()`, the argument, or a tuple of them.
fn message_pattern(args: &[crate::model::Arg]) -> TokenStream {
    match args {
        [arg] => {
            let ident = &arg.ident;
            quote!(#ident)
        }
        args => {
            let idents = args.iter().map(|arg| &arg.ident);
            quote!((#(#idents,)*))
        }
    }
}

/// A local name that user code cannot see or shadow.
fn hidden(name: &str) -> Ident {
    format_ident!("__rpcnet_{}", name, span = Span::mixed_site())
}
