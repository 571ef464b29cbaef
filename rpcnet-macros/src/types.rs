//! Reading the types of a method's signature: `Result<T, E>`, the stream spellings the macro
//! understands, and types that cannot travel over the network (borrows, `impl Trait`).

use syn::visit::Visit;
use syn::{GenericArgument, PathArguments, Type, TypeParamBound};

/// What a type in a signature is, as far as streaming goes.
pub(crate) enum StreamShape<'a> {
    /// A stream the macro understands, with its item type.
    Stream(&'a Type),
    /// Not a stream: a plain message type.
    Message,
    /// Looks like a stream but is not spelled in a form the macro understands; the string
    /// says what is wrong.
    Unrecognized(&'static str),
}

/// Removes invisible groups and parentheses around a type.
fn peel(mut ty: &Type) -> &Type {
    loop {
        match ty {
            Type::Group(group) => ty = &group.elem,
            Type::Paren(paren) => ty = &paren.elem,
            _ => return ty,
        }
    }
}

/// The last path segment of a plain path type (no qualified self).
fn last_segment(ty: &Type) -> Option<&syn::PathSegment> {
    match peel(ty) {
        Type::Path(path) if path.qself.is_none() => path.path.segments.last(),
        _ => None,
    }
}

/// The type arguments of a path segment, skipping lifetimes.
fn type_args(segment: &syn::PathSegment) -> Vec<&Type> {
    match &segment.arguments {
        PathArguments::AngleBracketed(args) => args
            .args
            .iter()
            .filter_map(|arg| match arg {
                GenericArgument::Type(ty) => Some(ty),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// The only type argument of a path segment.
fn single_type_arg(segment: &syn::PathSegment) -> Option<&Type> {
    match type_args(segment).as_slice() {
        [ty] => Some(*ty),
        _ => None,
    }
}

/// `Result<T, E>` (under any path) as `(T, E)`. `Ok(None)` for other types; `Err` for a
/// `Result` alias with one argument, whose error type the macro cannot see.
pub(crate) fn result_parts(ty: &Type) -> Result<Option<(&Type, &Type)>, ()> {
    let Some(segment) = last_segment(ty) else {
        return Ok(None);
    };
    if segment.ident != "Result" {
        return Ok(None);
    }
    match type_args(segment).as_slice() {
        [ok, err] => Ok(Some((ok, err))),
        _ => Err(()),
    }
}

/// The stream spellings the macro understands:
///
/// - `Pin<Box<dyn Stream<Item = T> + Send>>`, optionally `+ 'static`, under any paths;
/// - `Streaming<T>` (the facade's name for that type);
/// - `BoxStream<'static, T>` (the `futures` crate's name for it).
pub(crate) fn stream_shape(ty: &Type) -> StreamShape<'_> {
    if let Some(segment) = last_segment(ty) {
        if segment.ident == "Streaming" {
            return match type_args(segment).as_slice() {
                [item] => StreamShape::Stream(item),
                _ => StreamShape::Unrecognized("`Streaming` takes exactly one item type"),
            };
        }
        if segment.ident == "BoxStream" {
            return futures_box_stream(segment);
        }
        if segment.ident == "Pin" {
            return pinned_box_stream(segment);
        }
    }
    if mentions_stream(ty) {
        return StreamShape::Unrecognized(
            "streams are passed boxed and pinned, as `Pin<Box<dyn Stream<Item = T> + Send>>`",
        );
    }
    StreamShape::Message
}

/// `futures::stream::BoxStream<'static, T>`: a lifetime and an item type.
fn futures_box_stream(segment: &syn::PathSegment) -> StreamShape<'_> {
    let PathArguments::AngleBracketed(args) = &segment.arguments else {
        return StreamShape::Unrecognized(
            "`BoxStream` takes a lifetime and an item type: `BoxStream<'static, T>`",
        );
    };
    let mut lifetimes = args.args.iter().filter_map(|arg| match arg {
        GenericArgument::Lifetime(lifetime) => Some(lifetime),
        _ => None,
    });
    match (
        lifetimes.next(),
        lifetimes.next(),
        type_args(segment).as_slice(),
    ) {
        (Some(lifetime), None, [item]) if lifetime.ident == "static" => StreamShape::Stream(item),
        _ => StreamShape::Unrecognized(
            "streams outlive the call's borrows: write `futures::stream::BoxStream<'static, T>`",
        ),
    }
}

fn pinned_box_stream(pin: &syn::PathSegment) -> StreamShape<'_> {
    let Some(boxed) = single_type_arg(pin) else {
        return StreamShape::Unrecognized("`Pin` needs exactly one type argument");
    };
    let Some(boxed) = last_segment(boxed).filter(|segment| segment.ident == "Box") else {
        return StreamShape::Unrecognized(
            "the pinned stream must be boxed: `Pin<Box<dyn Stream<..> + Send>>`",
        );
    };
    let Some(object) = single_type_arg(boxed) else {
        return StreamShape::Unrecognized("`Box` needs exactly one type argument");
    };
    let Type::TraitObject(object) = peel(object) else {
        return StreamShape::Unrecognized(
            "the boxed type must be a `dyn Stream<Item = T> + Send` trait object",
        );
    };
    let mut item = None;
    let mut send = false;
    for bound in &object.bounds {
        match bound {
            TypeParamBound::Trait(bound) => {
                let Some(segment) = bound.path.segments.last() else {
                    return StreamShape::Unrecognized("unexpected bound on the stream");
                };
                if segment.ident == "Send" {
                    send = true;
                } else if segment.ident == "Stream" && item.is_none() {
                    item = stream_item(segment);
                    if item.is_none() {
                        return StreamShape::Unrecognized("the stream must name its item: `Stream<Item = T>`");
                    }
                } else {
                    return StreamShape::Unrecognized(
                        "the only bounds allowed on a boxed stream are `Stream<Item = T>`, `Send` and `'static`",
                    );
                }
            }
            TypeParamBound::Lifetime(lifetime) if lifetime.ident == "static" => {}
            _ => {
                return StreamShape::Unrecognized(
                    "the only bounds allowed on a boxed stream are `Stream<Item = T>`, `Send` and `'static`",
                )
            }
        }
    }
    match (item, send) {
        (Some(item), true) => StreamShape::Stream(item),
        (None, _) => {
            StreamShape::Unrecognized("the boxed trait object must be a `Stream<Item = T>`")
        }
        (Some(_), false) => {
            StreamShape::Unrecognized("streams cross tasks, so they must be `Send`: add `+ Send`")
        }
    }
}

/// `Item = T` in `Stream<Item = T>`.
fn stream_item(segment: &syn::PathSegment) -> Option<&Type> {
    let PathArguments::AngleBracketed(args) = &segment.arguments else {
        return None;
    };
    args.args.iter().find_map(|arg| match arg {
        GenericArgument::AssocType(assoc) if assoc.ident == "Item" => Some(&assoc.ty),
        _ => None,
    })
}

/// Whether a type names a stream anywhere (then it was meant as one).
fn mentions_stream(ty: &Type) -> bool {
    struct Finder(bool);
    impl<'ast> Visit<'ast> for Finder {
        fn visit_path_segment(&mut self, segment: &'ast syn::PathSegment) {
            if matches!(
                segment.ident.to_string().as_str(),
                "Stream" | "TryStream" | "Streaming" | "BoxStream"
            ) {
                self.0 = true;
            }
            syn::visit::visit_path_segment(self, segment);
        }
    }
    let mut finder = Finder(false);
    finder.visit_type(ty);
    finder.0
}

/// Why a type cannot be a message, if it cannot: a borrow, a lifetime other than
/// `'static`, or `impl Trait`. Returns the offending part of the type.
pub(crate) fn non_owned_part(ty: &Type) -> Option<(proc_macro2::TokenStream, &'static str)> {
    struct Finder(Option<(proc_macro2::TokenStream, &'static str)>);
    impl<'ast> Visit<'ast> for Finder {
        fn visit_type_reference(&mut self, reference: &'ast syn::TypeReference) {
            if self.0.is_none() {
                self.0 = Some((quote::quote!(#reference), "a reference"));
            }
        }
        fn visit_type_impl_trait(&mut self, ty: &'ast syn::TypeImplTrait) {
            if self.0.is_none() {
                self.0 = Some((quote::quote!(#ty), "an `impl Trait` type"));
            }
        }
        fn visit_lifetime(&mut self, lifetime: &'ast syn::Lifetime) {
            if self.0.is_none() && lifetime.ident != "static" {
                self.0 = Some((quote::quote!(#lifetime), "a borrowed type"));
            }
        }
    }
    let mut finder = Finder(None);
    finder.visit_type(ty);
    finder.0
}
