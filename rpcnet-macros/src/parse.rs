//! From the annotated trait to the `model`: reads every method, checks what
//! can be checked one method at a time, and records every problem instead of stopping at
//! the first.

use darling::FromAttributes;
use proc_macro2::Span;
use quote::{quote, ToTokens};
use syn::{FnArg, ItemTrait, Pat, ReturnType, TraitItem, TraitItemFn, Type};

use crate::attrs::{is_rpcnet_attr, MethodArgs, ServiceArgs};
use crate::diagnostics::Diagnostics;
use crate::model::{Arg, Method, Request, Response, Service};
use crate::types::{non_owned_part, result_parts, stream_shape, StreamShape};

/// What `#[rpcnet(..)]` on a method accepts.
const METHOD_ARGS_HELP: &str =
    "`#[rpcnet(..)]` on a method accepts `name = \"wire_name\"` (the part after the service name)";

const STREAM_HELP: &str =
    "write `Pin<Box<dyn Stream<Item = T> + Send>>` (or the alias `rpcnet::Streaming<T>`)";

/// Builds the model of `item`, recording problems in `diag`. Methods with problems are left
/// out of the model; the result is only expanded when `diag` stays empty.
pub(crate) fn service(args: ServiceArgs, mut item: ItemTrait, diag: &mut Diagnostics) -> Service {
    check_trait(&item, diag);
    let wire_name = match &args.name {
        Some(name) => {
            check_name(name, name.span(), "service", true, diag);
            name.as_str().to_owned()
        }
        None => item.ident.to_string(),
    };
    let krate = args.krate.unwrap_or_else(|| syn::parse_quote!(::rpcnet));

    let mut methods = Vec::new();
    for trait_item in &mut item.items {
        match trait_item {
            TraitItem::Fn(function) => {
                if let Some(method) = method(function, diag) {
                    methods.push(method);
                }
                function.attrs.retain(|attr| !is_rpcnet_attr(attr));
            }
            TraitItem::Type(ty) => diag.error(
                quote!(#ty),
                "associated types are not supported in a service trait",
                "use concrete types in the method signatures: clients are generated from the trait and cannot name `Self::` types",
            ),
            TraitItem::Const(constant) => diag.error(
                quote!(#constant),
                "associated constants are not supported in a service trait",
                "move the constant out of the trait, next to it as a `const` item",
            ),
            other => diag.error(
                other,
                "only methods are allowed in a service trait",
                "write each method out as `async fn name(&self, request: Request) -> Result<Response, Error>;`",
            ),
        }
    }
    Service {
        item,
        wire_name,
        krate,
        methods,
    }
}

fn check_trait(item: &ItemTrait, diag: &mut Diagnostics) {
    if !item.generics.params.is_empty() {
        diag.error(
            &item.generics,
            "generic service traits are not supported",
            "use concrete request and response types; a service has one wire schema",
        );
    }
    if let Some(unsafety) = &item.unsafety {
        diag.error(
            unsafety,
            "a service trait cannot be `unsafe`",
            "remove `unsafe`",
        );
    }
    if let Some(auto) = &item.auto_token {
        diag.error(
            auto,
            "a service trait cannot be an auto trait",
            "remove `auto`",
        );
    }
}

/// Checks a wire name part given in an attribute.
fn check_name(name: &str, span: Span, what: &str, dots_allowed: bool, diag: &mut Diagnostics) {
    let bad = name.is_empty()
        || name.chars().any(char::is_whitespace)
        || (!dots_allowed && name.contains('.'))
        || name.starts_with('.')
        || name.ends_with('.');
    if bad {
        let hint = if dots_allowed {
            "a non-empty name without spaces, for example `name = \"inference.v1.Inference\"`"
        } else {
            "a non-empty name without dots or spaces, for example `name = \"add\"`; the service name and the dot are added for you"
        };
        diag.push(syn::Error::new(
            span,
            format!("invalid {what} wire name `{name}`\n  = help: use {hint}"),
        ));
    }
}

/// Reads one method. `None` when it has problems (recorded in `diag`).
fn method(function: &TraitItemFn, diag: &mut Diagnostics) -> Option<Method> {
    let before = diag.len();
    let sig = &function.sig;
    let ident = &sig.ident;

    let args = match MethodArgs::from_attributes(&function.attrs) {
        Ok(args) => args,
        Err(error) => {
            diag.push_darling(error, METHOD_ARGS_HELP);
            MethodArgs::default()
        }
    };
    let (name, name_span) = match &args.name {
        Some(name) => {
            check_name(name, name.span(), "method", false, diag);
            (name.as_str().to_owned(), name.span())
        }
        None => (ident.to_string(), ident.span()),
    };

    if let Some(constness) = &sig.constness {
        diag.error(
            constness,
            "service methods cannot be `const`",
            "remove `const` and write `async fn`",
        );
    }
    if let Some(unsafety) = &sig.unsafety {
        diag.error(
            unsafety,
            "service methods cannot be `unsafe`",
            "remove `unsafe`",
        );
    }
    if let Some(abi) = &sig.abi {
        diag.error(
            abi,
            "service methods cannot have an ABI",
            "remove the `extern` qualifier",
        );
    }
    if sig.asyncness.is_none() {
        diag.error(
            sig.fn_token,
            format!("service method `{ident}` is not `async`"),
            format!(
                "write `async fn {ident}(&self, ...)`: every method runs as an asynchronous call"
            ),
        );
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        let generics = &sig.generics;
        let tokens = match &generics.where_clause {
            Some(clause) => quote!(#generics #clause),
            None => quote!(#generics),
        };
        diag.error(
            tokens,
            format!("generic method `{ident}` cannot be served over the network"),
            "use concrete types: each method has one request type and one response type on the wire",
        );
    }
    if let Some(variadic) = &sig.variadic {
        diag.error(
            variadic,
            "variadic methods are not supported",
            "remove `...`",
        );
    }

    check_receiver(function, diag);
    let request = request(function, diag);
    let (response, error, returns_result) = response(&sig.output, diag);

    if diag.len() > before {
        return None;
    }
    Some(Method {
        ident: ident.clone(),
        docs: function
            .attrs
            .iter()
            .filter(|attr| attr.path().is_ident("doc") || attr.path().is_ident("deprecated"))
            .cloned()
            .collect(),
        name,
        name_span,
        request: request?,
        response: response?,
        error,
        returns_result,
    })
}

fn check_receiver(function: &TraitItemFn, diag: &mut Diagnostics) {
    let sig = &function.sig;
    let ident = &sig.ident;
    let receiver = match sig.inputs.first() {
        Some(FnArg::Receiver(receiver)) => receiver,
        first => {
            let tokens = match first {
                Some(arg) => arg.to_token_stream(),
                None => ident.to_token_stream(),
            };
            diag.error(
                tokens,
                format!("service method `{ident}` has no `&self` receiver"),
                format!("write `async fn {ident}(&self, ...)`: the server calls methods on a shared implementation"),
            );
            return;
        }
    };
    if receiver.colon_token.is_some() {
        diag.error(
            receiver,
            "typed receivers (`self: Type`) are not supported",
            "write `&self`; the server already holds the implementation in an `Arc`",
        );
    } else if receiver.reference.is_none() {
        diag.error(
            receiver,
            "service methods cannot take `self` by value",
            "write `&self`: one implementation serves every call",
        );
    } else if receiver.mutability.is_some() {
        diag.error(
            receiver,
            "service methods cannot take `&mut self`",
            "write `&self` and keep mutable state behind a `Mutex` or atomics: calls run concurrently",
        );
    } else if let Some((_, Some(lifetime))) = &receiver.reference {
        diag.error(
            lifetime,
            "the receiver cannot name a lifetime",
            "write `&self`",
        );
    }
}

/// The request side. `None` when it has problems.
fn request(function: &TraitItemFn, diag: &mut Diagnostics) -> Option<Request> {
    let mut args = Vec::new();
    let mut streams = Vec::new();
    let mut ok = true;
    for input in function.sig.inputs.iter().skip(1) {
        let FnArg::Typed(typed) = input else {
            continue;
        };
        let ident = match &*typed.pat {
            Pat::Ident(pat)
                if pat.by_ref.is_none() && pat.mutability.is_none() && pat.subpat.is_none() =>
            {
                pat.ident.clone()
            }
            pat => {
                ok = false;
                diag.error(
                    pat,
                    "argument patterns are not supported in service methods",
                    "name the argument with a plain identifier, for example `request: Request`, and destructure it in the implementation",
                );
                continue;
            }
        };
        let ty = &*typed.ty;
        if let Type::Reference(reference) = ty {
            ok = false;
            let owned = owned_suggestion(&reference.elem);
            diag.error(
                reference,
                format!("argument `{ident}` is a reference, which cannot travel over the network"),
                format!("take it by value: `{ident}: {owned}`"),
            );
            continue;
        }
        match stream_shape(ty) {
            StreamShape::Stream(item) => {
                if !check_owned(item, "a request stream's item", diag) {
                    ok = false;
                }
                streams.push((ident, item.clone(), typed));
            }
            StreamShape::Unrecognized(why) => {
                ok = false;
                diag.error(
                    ty,
                    format!("rpcnet cannot understand this stream type: {why}"),
                    STREAM_HELP,
                );
            }
            StreamShape::Message => {
                if !check_owned(ty, "an argument", diag) {
                    ok = false;
                }
                args.push(Arg {
                    ident,
                    ty: ty.clone(),
                });
            }
        }
    }
    if streams.len() > 1 {
        for (_, _, extra) in &streams[1..] {
            diag.error(
                extra,
                "a service method takes at most one request stream",
                "merge the streams into one stream of an enum with a variant per kind of message",
            );
        }
        return None;
    }
    if let Some((ident, item, _)) = streams.pop() {
        for arg in &args {
            let name = &arg.ident;
            diag.error(
                quote!(#name),
                format!("`{name}` is an argument next to a request stream; a streaming method takes the stream as its only argument"),
                format!("move `{name}` into the stream's items, or send it as call metadata (`.metadata(..)` on the call, `CallContext::current()` in the handler)"),
            );
        }
        return (ok && args.is_empty()).then_some(Request::Stream {
            ident,
            item: Box::new(item),
        });
    }
    ok.then_some(Request::Message(args))
}

/// The owned type to suggest for a borrowed `elem`: `String` for `str`, `Vec<T>` for `[T]`.
fn owned_suggestion(elem: &Type) -> String {
    match elem {
        Type::Path(path) if path.path.is_ident("str") => "String".to_owned(),
        Type::Slice(slice) => {
            let elem = &slice.elem;
            format!("Vec<{}>", quote!(#elem))
        }
        other => quote!(#other).to_string(),
    }
}

/// Checks that a message type owns its data; records an error otherwise.
fn check_owned(ty: &Type, what: &str, diag: &mut Diagnostics) -> bool {
    match non_owned_part(ty) {
        None => true,
        Some((part, kind)) => {
            diag.error(
                part,
                format!("{what} contains {kind}, which cannot travel over the network"),
                "use owned types such as `String`, `Vec<T>` or your own `Deserialize` types",
            );
            false
        }
    }
}

/// The response side, the application error and whether the method returns a `Result`.
fn response(output: &ReturnType, diag: &mut Diagnostics) -> (Option<Response>, Option<Type>, bool) {
    let ty = match output {
        ReturnType::Default => {
            return (Some(Response::Message(syn::parse_quote!(()))), None, false)
        }
        ReturnType::Type(_, ty) => &**ty,
    };
    let (body, mut error, returns_result) = match result_parts(ty) {
        Ok(Some((ok, err))) => (ok, Some(err.clone()), true),
        Ok(None) => (ty, None, false),
        Err(()) => {
            result_alias_error(ty, diag);
            return (None, None, false);
        }
    };
    if let Some(error) = &error {
        if !check_owned(error, "the error type", diag) {
            return (None, None, returns_result);
        }
    }
    let response = match stream_shape(body) {
        StreamShape::Stream(item) => match result_parts(item) {
            Ok(Some((item, item_error))) => {
                error.get_or_insert_with(|| item_error.clone());
                check_owned(item, "a response stream's item", diag).then(|| Response::Stream {
                    item: item.clone(),
                    fallible: true,
                })
            }
            Ok(None) => {
                check_owned(item, "a response stream's item", diag).then(|| Response::Stream {
                    item: item.clone(),
                    fallible: false,
                })
            }
            Err(()) => {
                result_alias_error(item, diag);
                None
            }
        },
        StreamShape::Unrecognized(why) => {
            diag.error(
                body,
                format!("rpcnet cannot understand this stream type: {why}"),
                "return `Result<Pin<Box<dyn Stream<Item = Result<T, E>> + Send>>, E>` (or `futures::stream::BoxStream<'static, Result<T, E>>`)",
            );
            None
        }
        StreamShape::Message => {
            check_owned(body, "the response", diag).then(|| Response::Message(body.clone()))
        }
    };
    (response, error, returns_result)
}

fn result_alias_error(ty: &Type, diag: &mut Diagnostics) {
    diag.error(
        ty,
        "this `Result` alias hides the error type, which the client needs to decode errors",
        "spell the error type out: `Result<T, MyError>`",
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(trait_tokens: proc_macro2::TokenStream) -> (Service, Diagnostics) {
        let mut diag = Diagnostics::default();
        let item: ItemTrait = syn::parse2(trait_tokens).expect("a trait");
        let service = service(ServiceArgs::default(), item, &mut diag);
        (service, diag)
    }

    #[test]
    fn several_arguments_stay_in_order() {
        let (service, diag) = parse(quote! {
            trait Math { async fn add(&self, a: i64, b: i64) -> i64; }
        });
        assert!(diag.is_empty());
        let Request::Message(args) = &service.methods[0].request else {
            panic!("a message request")
        };
        let names: Vec<String> = args.iter().map(|arg| arg.ident.to_string()).collect();
        assert_eq!(names, ["a", "b"]);
        assert!(service.methods[0].error.is_none());
    }

    #[test]
    fn every_mistake_is_reported_at_once() {
        let (service, diag) = parse(quote! {
            trait Bad {
                fn a(&self);
                async fn b(self);
                async fn c<T>(&self, t: T);
                type D;
            }
        });
        assert_eq!(diag.len(), 4);
        assert!(service.methods.is_empty());
    }

    #[test]
    fn a_stream_returned_without_result_takes_the_item_error() {
        let (service, diag) = parse(quote! {
            trait S { async fn s(&self, n: u32) -> Pin<Box<dyn Stream<Item = Result<u32, MyError>> + Send>>; }
        });
        assert!(diag.is_empty());
        let method = &service.methods[0];
        assert!(!method.returns_result);
        assert!(matches!(
            method.response,
            Response::Stream { fallible: true, .. }
        ));
        let error = method.error.as_ref().expect("item error");
        assert_eq!(quote!(#error).to_string(), "MyError");
    }
}
