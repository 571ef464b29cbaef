//! The macro's attribute arguments, parsed with darling: `#[rpcnet::service(...)]` on the
//! trait and `#[rpcnet(...)]` on its methods. Unknown arguments are errors.

use darling::util::SpannedValue;
use darling::{FromAttributes, FromMeta};

/// `#[rpcnet::service(name = "inference.v1.Inference", crate = "my_rpc")]`.
#[derive(Debug, Default, FromMeta)]
pub(crate) struct ServiceArgs {
    /// The service's wire name; the trait's name when absent.
    pub(crate) name: Option<SpannedValue<String>>,
    /// The path of the `rpcnet` facade crate in generated code; `::rpcnet` when absent.
    #[darling(rename = "crate")]
    pub(crate) krate: Option<syn::Path>,
}

/// `#[rpcnet(name = "...")]` on a method of the trait.
#[derive(Debug, Default, FromAttributes)]
#[darling(attributes(rpcnet))]
pub(crate) struct MethodArgs {
    /// The method's part of its wire name (`Service.<name>`); the method's name when absent.
    pub(crate) name: Option<SpannedValue<String>>,
}

/// Whether `attr` is one of the macro's own method attributes (stripped from the output).
pub(crate) fn is_rpcnet_attr(attr: &syn::Attribute) -> bool {
    attr.path().is_ident("rpcnet")
}
