//! Checks across methods, once every method has been read: wire names are unique, and
//! method names do not collide with the generated client's own methods.

use std::collections::BTreeMap;

use crate::diagnostics::Diagnostics;
use crate::model::Service;

/// Inherent methods of every generated client; a service method cannot share their names.
const CLIENT_METHODS: [&str; 3] = ["connect", "from_client", "client"];

/// Records every cross-method problem of `service` in `diag`.
pub(crate) fn service(service: &Service, diag: &mut Diagnostics) {
    let mut seen = BTreeMap::new();
    for method in &service.methods {
        let wire = method.wire_name(&service.wire_name);
        if let Some(first) = seen.insert(wire.clone(), &method.ident) {
            diag.push(syn::Error::new(
                method.name_span,
                format!(
                    "duplicate wire name `{wire}`: method `{first}` is already served under it\n  = help: give one of them another name with `#[rpcnet(name = \"...\")]`"
                ),
            ));
        }
        let ident = method.ident.to_string();
        if CLIENT_METHODS.contains(&ident.as_str()) {
            let client = format!("{}Client", service.item.ident);
            diag.error(
                &method.ident,
                format!(
                    "a method named `{ident}` would clash with the generated `{client}::{ident}`"
                ),
                format!(
                    "rename the method and keep its wire name with `#[rpcnet(name = \"{ident}\")]`"
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attrs::ServiceArgs;

    #[test]
    fn a_renamed_method_can_collide_with_another() {
        let mut diag = Diagnostics::default();
        let item = syn::parse_quote! {
            trait S {
                async fn a(&self);
                #[rpcnet(name = "a")]
                async fn b(&self);
            }
        };
        let model = crate::parse::service(ServiceArgs::default(), item, &mut diag);
        assert!(diag.is_empty());
        service(&model, &mut diag);
        assert_eq!(diag.len(), 1);
    }
}
