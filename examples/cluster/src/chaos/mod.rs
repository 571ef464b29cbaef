//! The chaos harness's logic: the fault schedule drawn from a seed ([`plan`]), the records
//! the processes of a run leave behind ([`records`]) and the checks over them ([`check`]).
//! `scripts/chaos.sh` builds the network namespaces and runs the `chaos` binary in them;
//! `RELIABILITY.md` at the repository root describes a run and its results.

pub mod check;
pub mod plan;
pub mod records;
