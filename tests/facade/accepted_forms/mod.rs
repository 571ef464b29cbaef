//! Every form of service trait the macro accepts compiles as a user's crate would write it
//! (public traits and types, as in API.md), and the generated server serves each method
//! under its wire name. The traits are public on purpose: that is the form users write, so
//! the lints for unreachable public items are off here.

#![allow(unreachable_pub)]

mod api_traits_as_written;
mod attributes;
mod several_arguments_and_plain_values;
mod stream_spellings;
