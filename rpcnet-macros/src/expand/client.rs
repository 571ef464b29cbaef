//! `XClient`: a typed client with one method per trait method, each returning the runtime's
//! call builder (await it, or set `.timeout(..)` / `.metadata(..)` first).

use proc_macro2::TokenStream;
use quote::{format_ident, quote};

use super::{error_type, message_pattern, message_type};
use crate::model::{Kind, Method, Request, Response, Service};

/// The client struct, its constructors and its call methods.
pub(crate) fn client(service: &Service) -> TokenStream {
    let krate = &service.krate;
    let vis = &service.item.vis;
    let trait_ident = &service.item.ident;
    let client = format_ident!("{}Client", trait_ident);
    let wire = &service.wire_name;
    let methods = service
        .methods
        .iter()
        .map(|method| call_method(service, method));
    let doc = format!(
        " A client of the [`{trait_ident}`] service (wire name `{wire}`). Cheap to clone: clones \
         share one QUIC connection, and every call opens its own stream on it."
    );
    let connect_doc = format!(
        " Connects to a server of `{wire}` at `addr`. To share one connection between the \
         clients of several services, connect an `rpcnet::RpcClient` once and wrap clones of \
         it with [`from_client`](Self::from_client)."
    );

    quote! {
        #[doc = #doc]
        #[derive(::core::clone::Clone, ::core::fmt::Debug)]
        #vis struct #client {
            client: #krate::__private::RpcClient,
        }

        // Not every program calls every method of a generated client.
        #[allow(dead_code)]
        impl #client {
            #[doc = #connect_doc]
            pub async fn connect(
                addr: impl #krate::__private::ToSocketAddrs,
                config: #krate::__private::RpcConfig,
            ) -> ::core::result::Result<Self, #krate::__private::RpcError> {
                ::core::result::Result::Ok(Self::from_client(
                    #krate::__private::RpcClient::connect(addr, config).await?,
                ))
            }

            /// Wraps an existing connection (which other typed clients may share).
            pub fn from_client(client: #krate::__private::RpcClient) -> Self {
                Self { client }
            }

            /// The underlying untyped client.
            pub fn client(&self) -> &#krate::__private::RpcClient {
                &self.client
            }

            #(#methods)*
        }

        impl #krate::__private::FromClient for #client {
            fn from_client(client: #krate::__private::RpcClient) -> Self {
                Self { client }
            }
        }
    }
}

fn call_method(service: &Service, method: &Method) -> TokenStream {
    let krate = &service.krate;
    let ident = &method.ident;
    let docs = &method.docs;
    let wire = method.wire_name(&service.wire_name);
    let error = error_type(service, method);
    let client = quote!(::core::clone::Clone::clone(&self.client));
    // Named so that it cannot shadow a user type such as `S` or `Requests` in the signature.
    let requests = format_ident!("RpcnetRequests");

    let response = match &method.response {
        Response::Message(ty) | Response::Stream { item: ty, .. } => ty,
    };
    let (kind_doc, output) = match method.kind() {
        Kind::Unary => (
            "unary: awaiting it gives `Result<Response, CallError<E>>`",
            quote!(UnaryCall),
        ),
        Kind::ServerStreaming => (
            "server streaming: awaiting it gives a `ResponseStream` of `Result<Item, CallError<E>>`",
            quote!(ServerStreamingCall),
        ),
        Kind::ClientStreaming => (
            "client streaming: every item of `requests` is sent; awaiting the call gives `Result<Response, CallError<E>>`",
            quote!(ClientStreamingCall),
        ),
        Kind::BidiStreaming => (
            "bidirectional streaming: `requests` are sent while awaiting the call gives a `ResponseStream` of `Result<Item, CallError<E>>`",
            quote!(BidiStreamingCall),
        ),
    };
    let call_doc = format!(
        " Calls `{wire}` ({kind_doc}). Configure the call before awaiting it: `.timeout(..)` \
         overrides the deadline, `.metadata(..)` adds header entries."
    );
    let has_docs = docs.iter().any(|attr| attr.path().is_ident("doc"));
    let separator = has_docs.then(|| quote!(#[doc = ""]));

    match &method.request {
        Request::Message(args) => {
            let params = args.iter().map(|arg| {
                let (ident, ty) = (&arg.ident, &arg.ty);
                quote!(#ident: #ty)
            });
            let request_type = message_type(args);
            let request = message_pattern(args);
            quote! {
                #(#docs)*
                #separator
                #[doc = #call_doc]
                pub fn #ident(&self, #(#params),*) -> #krate::__private::#output<#request_type, #response, #error> {
                    #krate::__private::#output::new(#client, #wire, #request)
                }
            }
        }
        Request::Stream { ident: param, item } => quote! {
            #(#docs)*
            #separator
            #[doc = #call_doc]
            pub fn #ident<#requests>(&self, #param: #requests) -> #krate::__private::#output<#requests, #response, #error>
            where
                #requests: #krate::__private::Stream<Item = #item> + ::core::marker::Send + 'static,
            {
                #krate::__private::#output::new(#client, #wire, #param)
            }
        },
    }
}
