//! The service as the generators see it: names, call kinds and message types, already
//! checked. Built from the trait by `parse`, checked across methods by `validate`.

use proc_macro2::Span;
use syn::{Attribute, Ident, ItemTrait, Path, Type};

/// One `#[rpcnet::service]` trait.
#[derive(Debug)]
pub(crate) struct Service {
    /// The trait as written, minus the macro's own attributes; rewritten by `expand::trait_def`.
    pub(crate) item: ItemTrait,
    /// The wire name, before the dot in every method name.
    pub(crate) wire_name: String,
    /// The path of the facade crate (`::rpcnet` unless overridden with `crate = "..."`).
    pub(crate) krate: Path,
    /// The methods, in declaration order.
    pub(crate) methods: Vec<Method>,
}

/// One method of the service.
#[derive(Debug)]
pub(crate) struct Method {
    /// The method's name in the trait and in the generated client.
    pub(crate) ident: Ident,
    /// The user's doc comments and `#[deprecated]`, repeated on the generated client method.
    pub(crate) docs: Vec<Attribute>,
    /// The method's part of the wire name and the tokens it came from (for errors).
    pub(crate) name: String,
    pub(crate) name_span: Span,
    /// What the client sends.
    pub(crate) request: Request,
    /// What the server answers.
    pub(crate) response: Response,
    /// The application error type; `None` for methods that cannot fail (`Never` on the wire).
    pub(crate) error: Option<Type>,
    /// Whether the trait method returns `Result<_, E>` (otherwise its value is wrapped in `Ok`).
    pub(crate) returns_result: bool,
}

/// An argument of a unary or server-streaming method.
#[derive(Debug)]
pub(crate) struct Arg {
    pub(crate) ident: Ident,
    pub(crate) ty: Type,
}

/// The request side of a method.
#[derive(Debug)]
pub(crate) enum Request {
    /// Plain arguments: none travels as `()`, one as itself, several as a tuple.
    Message(Vec<Arg>),
    /// A stream of `item`s, the method's only argument.
    Stream { ident: Ident, item: Box<Type> },
}

/// The response side of a method.
#[derive(Debug)]
pub(crate) enum Response {
    /// A single value.
    Message(Type),
    /// A stream of `item`s; `fallible` when each item is a `Result<item, E>`.
    Stream { item: Type, fallible: bool },
}

/// The four call kinds, as the runtime names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Unary,
    ServerStreaming,
    ClientStreaming,
    BidiStreaming,
}

impl Method {
    /// The method's call kind.
    pub(crate) fn kind(&self) -> Kind {
        match (&self.request, &self.response) {
            (Request::Message(_), Response::Message(_)) => Kind::Unary,
            (Request::Message(_), Response::Stream { .. }) => Kind::ServerStreaming,
            (Request::Stream { .. }, Response::Message(_)) => Kind::ClientStreaming,
            (Request::Stream { .. }, Response::Stream { .. }) => Kind::BidiStreaming,
        }
    }

    /// The full wire name, `Service.method`.
    pub(crate) fn wire_name(&self, service: &str) -> String {
        format!("{service}.{}", self.name)
    }
}
