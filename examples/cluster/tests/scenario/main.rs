//! End-to-end tests of the cluster example: its real binaries as processes on free ports of
//! 127.0.0.1 with the bundled certificates — configuration errors, a worker killed with
//! SIGKILL mid-stream, failure cycles, and the demo. One test binary with a module per
//! scenario; the scenarios themselves run one at a time.

mod addresses;
mod configuration;
mod demo;
mod failover;
mod failure_cycles;
mod metrics;
mod support;
