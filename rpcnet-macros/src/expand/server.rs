//! `XServer<T>`: wraps an implementation of the trait and registers one typed handler per
//! method with the runtime.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;

use super::{error_type, hidden, message_pattern, message_type};
use crate::model::{Kind, Method, Request, Response, Service};

/// The server wrapper, its constructors and its `Service` implementation.
pub(crate) fn server(service: &Service) -> TokenStream {
    let krate = &service.krate;
    let vis = &service.item.vis;
    let trait_ident = &service.item.ident;
    let server = format_ident!("{}Server", trait_ident);
    let wire = &service.wire_name;
    let methods = hidden("methods");
    let registrations = service
        .methods
        .iter()
        .map(|method| registration(service, method, &methods));
    let doc = format!(
        " Serves [`{trait_ident}`] (wire name `{wire}`): add it to an `rpcnet::RpcServer` with \
         `server.add_service({server}::new(implementation))`."
    );
    let name = server.to_string();
    let t = implementation();
    let checks = message_checks(service);

    quote! {
        #checks

        #[doc = #doc]
        #vis struct #server<#t> {
            inner: ::std::sync::Arc<#t>,
        }

        // Not every program uses every constructor of a generated type.
        #[allow(dead_code)]
        impl<#t> #server<#t> {
            /// Wraps an implementation of the service trait.
            pub fn new(service: #t) -> Self {
                Self::from_arc(::std::sync::Arc::new(service))
            }

            /// Wraps an implementation that is already shared, for example with other
            /// services or background tasks.
            pub fn from_arc(service: ::std::sync::Arc<#t>) -> Self {
                Self { inner: service }
            }

            /// The wrapped implementation.
            pub fn get_ref(&self) -> &#t {
                &self.inner
            }
        }

        impl<#t> ::core::clone::Clone for #server<#t> {
            fn clone(&self) -> Self {
                Self::from_arc(::core::clone::Clone::clone(&self.inner))
            }
        }

        impl<#t> ::core::fmt::Debug for #server<#t> {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                f.debug_struct(#name).field("service", &#wire).finish_non_exhaustive()
            }
        }

        impl<#t: #trait_ident> #krate::__private::Service for #server<#t> {
            fn name(&self) -> &str {
                #wire
            }

            // Serving a method the trait marks `#[deprecated]` is not a use of it: only
            // callers of the generated client method are warned.
            #[allow(deprecated)]
            fn register(self, #methods: &mut #krate::__private::MethodTable) {
                #(#registrations)*
            }
        }
    }
}

/// Asserts that every message type can travel (serde both ways, `Send + 'static`), with the
/// type's own span, so a missing `derive(Serialize)` is reported on the user's type rather
/// than on the macro.
fn message_checks(service: &Service) -> TokenStream {
    let krate = &service.krate;
    let assert = hidden("message");
    let checks = service.methods.iter().flat_map(|method| {
        let mut types: Vec<&syn::Type> = match &method.request {
            Request::Message(args) => args.iter().map(|arg| &arg.ty).collect(),
            Request::Stream { item, .. } => vec![&**item],
        };
        types.push(match &method.response {
            Response::Message(ty) | Response::Stream { item: ty, .. } => ty,
        });
        types.extend(method.error.as_ref());
        types
            .into_iter()
            .map(|ty| quote_spanned!(ty.span()=> #assert::<#ty>();))
            .collect::<Vec<_>>()
    });
    quote! {
        const _: () = {
            fn #assert<M>()
            where
                M: #krate::__private::Serialize
                    + #krate::__private::DeserializeOwned
                    + ::core::marker::Send
                    + 'static,
            {
            }
            #[allow(dead_code)]
            fn check_messages() {
                #(#checks)*
            }
        };
    }
}

/// The server's type parameter, named so that it cannot shadow a user's type called `T`
/// in the request types the handlers spell out.
fn implementation() -> syn::Ident {
    format_ident!("RpcnetImpl")
}

/// Registers one method: a closure that decodes the request, calls the implementation and
/// hands its result to the runtime's typed adapter for the method's kind.
fn registration(service: &Service, method: &Method, methods: &syn::Ident) -> TokenStream {
    let krate = &service.krate;
    let trait_ident = &service.item.ident;
    let ident = &method.ident;
    let wire = method.wire_name(&service.wire_name);
    let shared = hidden("service");
    let error = error_type(service, method);

    let (pattern, request_type, call_args) = match &method.request {
        Request::Message(args) => (message_pattern(args), message_type(args), {
            let idents = args.iter().map(|arg| &arg.ident);
            quote!(#(#idents),*)
        }),
        Request::Stream { ident, item } => (
            quote!(#ident),
            quote!(#krate::__private::Streaming<#item>),
            quote!(#ident),
        ),
    };
    let t = implementation();
    let call = quote!(<#t as #trait_ident>::#ident(&*#shared, #call_args).await);
    let ok = quote!(::core::result::Result::Ok);
    let body = match &method.response {
        Response::Message(_) if method.returns_result => call,
        Response::Message(_) => quote!(#ok::<_, #error>(#call)),
        Response::Stream { fallible: true, .. } if method.returns_result => call,
        Response::Stream { fallible: true, .. } => quote!(#ok::<_, #error>(#call)),
        Response::Stream {
            item,
            fallible: false,
        } => {
            let stream = hidden("stream");
            let wrap = quote! {
                |#stream| #krate::__private::StreamExt::map(#stream, #ok::<#item, #error>)
            };
            if method.returns_result {
                quote!(::core::result::Result::map(#call, #wrap))
            } else {
                quote!(#ok::<_, #error>((#wrap)(#call)))
            }
        }
    };
    let constructor = match method.kind() {
        Kind::Unary => quote!(unary),
        Kind::ServerStreaming => quote!(server_streaming),
        Kind::ClientStreaming => quote!(client_streaming),
        Kind::BidiStreaming => quote!(bidi_streaming),
    };

    quote! {
        {
            let #shared = ::core::clone::Clone::clone(&self.inner);
            #methods.add(
                #wire,
                #krate::__private::MethodHandler::#constructor(move |#pattern: #request_type| {
                    let #shared = ::core::clone::Clone::clone(&#shared);
                    async move { #body }
                }),
            );
        }
    }
}
