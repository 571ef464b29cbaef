//! The `#[rpcnet::service]` attribute macro. Use it through the `rpcnet` facade crate, which
//! re-exports it and provides everything the generated code refers to.
//!
//! The expansion runs in four steps, one module each: `attrs` and `parse` read the trait
//! into a `model`, `validate` checks it across methods, and `expand` generates one item
//! per generator. Every problem is recorded in `diagnostics` so all of them are reported in
//! one compile; on errors the trait is emitted as written next to the `compile_error!`s.

mod attrs;
mod diagnostics;
mod expand;
mod model;
mod parse;
mod types;
mod validate;

use darling::ast::NestedMeta;
use darling::FromMeta;
use proc_macro::TokenStream;

use crate::attrs::ServiceArgs;
use crate::diagnostics::Diagnostics;

/// Turns a trait into an rpcnet service: the trait is the schema.
///
/// Next to the trait, the macro generates (for a trait named `Calculator`):
///
/// - **The trait itself**, as the server-side trait. Each `async fn` becomes
///   `fn ..(&self, ..) -> impl Future<Output = ..> + Send`, and the trait gets the supertraits
///   `Send + Sync + 'static` (one implementation serves all calls concurrently). Implement it
///   with plain `async fn`s; no `async_trait` is needed.
/// - **`CalculatorServer<T>`**: wraps an implementation (`CalculatorServer::new(my_calc)` or
///   `from_arc(arc)`) and implements `rpcnet::Service`, so `server.add_service(..)` serves
///   it. Several services can share one `RpcServer`.
/// - **`CalculatorClient`**: `CalculatorClient::connect(addr, config).await?`, or
///   `CalculatorClient::from_client(rpc_client)` so that the clients of several services
///   share one connection. It is cheap to clone and has one method per trait method, with
///   the same name and arguments, returning a call builder: await it, or first set a
///   per-call deadline with `.timeout(duration)` or header entries with `.metadata(key, value)`.
///
/// # Methods
///
/// Every method is an `async fn` taking `&self`, with owned argument types that implement
/// serde's `Serialize` and `Deserialize` (they travel as MessagePack):
///
/// | trait method | client result after `.await` |
/// |---|---|
/// | `async fn f(&self, a: A, b: B) -> Result<R, E>` | `Result<R, CallError<E>>` |
/// | `async fn f(&self, req: Q) -> R` (cannot fail) | `Result<R, CallError<Never>>` |
/// | `async fn f(&self, req: Q) -> Result<Pin<Box<dyn Stream<Item = Result<R, E>> + Send>>, E>` | `Result<ResponseStream<R, E>, CallError<E>>` |
/// | `async fn f(&self, reqs: Pin<Box<dyn Stream<Item = Q> + Send>>) -> Result<R, E>` | `Result<R, CallError<E>>` |
/// | `async fn f(&self, reqs: Pin<Box<dyn Stream<Item = Q> + Send>>) -> Result<Pin<Box<dyn Stream<Item = Result<R, E>> + Send>>, E>` | `Result<ResponseStream<R, E>, CallError<E>>` |
///
/// - Several arguments travel as a tuple, one as itself, none as `()`.
/// - A request stream must be the method's only argument. On the client, the method takes
///   any `Stream<Item = Q> + Send + 'static` in its place.
/// - `Pin<Box<dyn Stream<Item = T> + Send>>` has two shorter names, both accepted in either
///   place: `rpcnet::Streaming<T>` and `futures::stream::BoxStream<'static, T>` (what
///   `StreamExt::boxed` returns). A returned stream whose items are not `Result`s, or that
///   is not wrapped in `Result`, is accepted too.
/// - A response stream yields `Result<R, CallError<E>>`: an `Err` item from the handler's
///   stream reaches the client as that item's error and ends the stream. Dropping the
///   response stream cancels the call on the server (the handler's future is dropped).
/// - `CallError<E>` is either `CallError::Application(E)`, the handler's typed error, or
///   `CallError::Rpc(RpcError)` for everything the framework reports (transport, deadline,
///   cancellation, `Unimplemented` from a server without the method, ...).
///
/// # The call context
///
/// Handler signatures carry no context argument. Inside a method, and while its response
/// stream is being polled, `rpcnet::CallContext::current()` returns the call's context: the
/// method name, the peer address, the remaining deadline, the client's metadata and its
/// cancellation. Calls made from inside a handler inherit its deadline.
///
/// # Attributes
///
/// - `#[rpcnet::service(name = "inference.v1.Inference")]`: the service's wire name (the
///   trait's name by default). Methods are called as `"{service}.{method}"` on the wire.
/// - `#[rpcnet(name = "generate_v2")]` on a method: that method's part of the wire name
///   (the method's name by default). Also the way to keep a wire name when renaming a
///   method, or to name a method `connect`, `from_client` or `client` on the wire.
/// - `#[rpcnet::service(crate = "my_rpc")]`: the path of the `rpcnet` crate when it is a
///   renamed dependency (`::rpcnet` by default).
///
/// Unknown arguments, non-`async` methods, `self` by value or `&mut self`, generic methods,
/// borrowed arguments, argument patterns, associated types or constants, several request
/// streams, stream types the macro cannot read and duplicate wire names are compile errors
/// that point at the offending tokens; all of them are reported at once.
///
/// # Example
///
/// ```
/// use rpcnet::{CallError, RpcConfig, RpcServer};
/// use serde::{Deserialize, Serialize};
/// use std::time::Duration;
///
/// #[derive(Serialize, Deserialize, Debug, Clone)]
/// pub struct AddRequest { pub a: i64, pub b: i64 }
/// #[derive(Serialize, Deserialize, Debug, Clone)]
/// pub struct AddResponse { pub result: i64 }
/// #[derive(Serialize, Deserialize, Debug, Clone)]
/// pub enum CalculatorError { Overflow, InvalidInput(String) }
///
/// /// A calculator.
/// #[rpcnet::service]
/// pub trait Calculator {
///     /// Adds two numbers.
///     async fn add(&self, request: AddRequest) -> Result<AddResponse, CalculatorError>;
/// }
///
/// struct MyCalculator;
///
/// impl Calculator for MyCalculator {
///     async fn add(&self, request: AddRequest) -> Result<AddResponse, CalculatorError> {
///         // The call's context is one call away, without a parameter for it.
///         if let Some(ctx) = rpcnet::CallContext::current() {
///             println!("{} from {:?}", ctx.method(), ctx.peer());
///         }
///         let result = request.a.checked_add(request.b).ok_or(CalculatorError::Overflow)?;
///         Ok(AddResponse { result })
///     }
/// }
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let cert = concat!(env!("CARGO_MANIFEST_DIR"), "/../certs/test_cert.pem");
/// let key = concat!(env!("CARGO_MANIFEST_DIR"), "/../certs/test_key.pem");
/// let config = RpcConfig::new(cert, "127.0.0.1:0")
///     .with_key_path(key)
///     .with_server_name("localhost");
///
/// let mut server = RpcServer::new(config.clone());
/// server.add_service(CalculatorServer::new(MyCalculator));
/// let bound = server.bind()?;
/// let addr = bound.local_addr();
/// tokio::spawn(bound.serve());
///
/// let client = CalculatorClient::connect(addr, config).await?;
/// let sum = client.add(AddRequest { a: 2, b: 3 }).await?;
/// assert_eq!(sum.result, 5);
///
/// // A per-call deadline, and the typed application error:
/// match client
///     .add(AddRequest { a: i64::MAX, b: 1 })
///     .timeout(Duration::from_secs(5))
///     .await
/// {
///     Err(CallError::Application(CalculatorError::Overflow)) => println!("overflow"),
///     other => println!("unexpected: {other:?}"),
/// }
/// # Ok(())
/// # }
/// # fn main() {
/// #     let runtime = tokio::runtime::Runtime::new().expect("a runtime");
/// #     runtime.block_on(run()).expect("the example runs");
/// # }
/// ```
#[proc_macro_attribute]
pub fn service(args: TokenStream, item: TokenStream) -> TokenStream {
    expand_service(args.into(), item.into()).into()
}

fn expand_service(
    args: proc_macro2::TokenStream,
    item: proc_macro2::TokenStream,
) -> proc_macro2::TokenStream {
    let mut diag = Diagnostics::default();
    let args = match NestedMeta::parse_meta_list(args) {
        Ok(list) => ServiceArgs::from_list(&list).unwrap_or_else(|error| {
            diag.push_darling(
                error,
                "`#[rpcnet::service(..)]` accepts `name = \"wire.ServiceName\"` and `crate = \"path::to::rpcnet\"`",
            );
            ServiceArgs::default()
        }),
        Err(error) => {
            diag.push(error);
            ServiceArgs::default()
        }
    };
    let trait_item: syn::ItemTrait = match syn::parse2(item.clone()) {
        Ok(trait_item) => trait_item,
        Err(_) => {
            diag.push(syn::Error::new_spanned(
                &item,
                "`#[rpcnet::service]` goes on a trait\n  = help: write `#[rpcnet::service] pub trait MyService { async fn call(&self, request: Request) -> Result<Response, Error>; }`",
            ));
            let errors = diag.into_tokens();
            return quote::quote!(#item #errors);
        }
    };
    let service = parse::service(args, trait_item, &mut diag);
    validate::service(&service, &mut diag);
    if diag.is_empty() {
        expand::service(&service)
    } else {
        expand::fallback(&service.item, diag.into_tokens())
    }
}
