//! The trait itself, kept as the server-side trait: each `async fn` becomes a method
//! returning `impl Future<Output = ..> + Send`, which users implement with plain `async fn`.

use proc_macro2::TokenStream;
use quote::{quote, ToTokens};
use syn::spanned::Spanned;
use syn::{ReturnType, TraitItem};

use crate::model::Service;

/// The rewritten trait, with `Send + Sync + 'static` supertraits: the server shares one
/// implementation across the tasks of all calls.
pub(crate) fn trait_def(service: &Service) -> TokenStream {
    let mut item = service.item.clone();
    item.supertraits
        .push(syn::parse_quote!(::core::marker::Send));
    item.supertraits
        .push(syn::parse_quote!(::core::marker::Sync));
    item.supertraits.push(syn::parse_quote!('static));

    for trait_item in &mut item.items {
        let TraitItem::Fn(function) = trait_item else {
            continue;
        };
        let (output, span) = match &function.sig.output {
            ReturnType::Default => (quote!(()), function.sig.ident.span()),
            ReturnType::Type(_, ty) => (ty.to_token_stream(), ty.span()),
        };
        function.sig.asyncness = None;
        // Wrapping the output in `impl Future` makes boxed-stream signatures "complex" in
        // clippy's eyes; the user wrote the simpler type.
        function
            .attrs
            .push(syn::parse_quote!(#[allow(clippy::type_complexity)]));
        function.sig.output = syn::parse_quote_spanned! {span=>
            -> impl ::core::future::Future<Output = #output> + ::core::marker::Send
        };
        if let Some(block) = &function.default {
            function.default = Some(syn::parse_quote_spanned! {block.span()=>
                { async move #block }
            });
        }
    }

    let server = quote::format_ident!("{}Server", item.ident);
    let client = quote::format_ident!("{}Client", item.ident);
    let wire = &service.wire_name;
    let note = format!(
        " rpcnet service `{wire}`: implement this trait with plain `async fn`s and serve it with \
         [`{server}`]; call it through [`{client}`]. Inside a method, \
         `rpcnet::CallContext::current()` gives the call's deadline, peer, metadata and \
         cancellation."
    );
    if item.attrs.iter().any(|attr| attr.path().is_ident("doc")) {
        item.attrs.push(syn::parse_quote!(#[doc = ""]));
    }
    item.attrs.push(syn::parse_quote!(#[doc = #note]));
    item.into_token_stream()
}
