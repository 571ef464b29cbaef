//! The cluster scenario rpcnet is built for: a director that keeps the pool of workers and
//! hands them out, workers that serve `compute` and stream tokens (`Inference::generate`),
//! and a client that streams tokens and moves to another worker when its worker fails,
//! continuing its sequence. `README.md` next to this file walks through it.
//!
//! The library part holds what the binaries share: the service traits ([`services`]), the
//! configuration ([`settings`]), console set-up ([`console`]), child processes
//! ([`processes`]) and the chaos harness's schedule and checks ([`chaos`]).

pub mod chaos;
pub mod console;
pub mod processes;
pub mod services;
pub mod settings;
