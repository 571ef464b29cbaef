//! Accumulates every error found while reading and checking the trait, so a user sees all of
//! their mistakes in one compile.

use proc_macro2::TokenStream;
use quote::ToTokens;
use std::fmt::Display;

/// The errors found so far, each already rendered as a `compile_error!` invocation.
#[derive(Debug, Default)]
pub(crate) struct Diagnostics {
    errors: TokenStream,
    count: usize,
}

impl Diagnostics {
    /// An error spanning `tokens`, with a hint of what to write instead.
    pub(crate) fn error(
        &mut self,
        tokens: impl ToTokens,
        message: impl Display,
        help: impl Display,
    ) {
        self.push(syn::Error::new_spanned(
            tokens,
            format!("{message}\n  = help: {help}"),
        ));
    }

    /// Records a syn error as is.
    pub(crate) fn push(&mut self, error: syn::Error) {
        self.count += 1;
        self.errors.extend(error.to_compile_error());
    }

    /// Records darling's (possibly several) errors, each with `help` added.
    pub(crate) fn push_darling(&mut self, error: darling::Error, help: &str) {
        for error in error {
            let span = error.span();
            self.push(syn::Error::new(span, format!("{error}\n  = help: {help}")));
        }
    }

    /// How many errors were recorded.
    pub(crate) fn len(&self) -> usize {
        self.count
    }

    /// Whether nothing went wrong.
    pub(crate) fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The `compile_error!`s for everything recorded.
    pub(crate) fn into_tokens(self) -> TokenStream {
        self.errors
    }
}
