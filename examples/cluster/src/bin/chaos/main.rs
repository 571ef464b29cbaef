//! The chaos harness's processes: `scripts/chaos.sh` makes the network namespaces and runs
//! `chaos run` in the host namespace; `run` starts the director, the workers, the load
//! generator, a delaying relay and two streaming clients in their namespaces, applies the
//! seeded fault schedule, and checks what they recorded.
//!
//! ```text
//! chaos run   --prefix P --subnet 10.231.0 --out DIR --seed N --duration SECS [--iptables CMD]
//! chaos load  --director IP:PORT --bind IP:PORT --out DIR --duration SECS [--rate N] [--unsafe-every N]
//! chaos relay --listen IP:PORT --to IP:PORT --delay-ms MS
//! chaos check --out DIR     (the checks again, over a finished run's records)
//! ```

// The binary owns its console output: the summary is its user interface.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod load;
mod relay;
mod run;

use std::collections::HashMap;
use std::process::ExitCode;

/// The options after a subcommand, `--name value` each. The harness is driven by its own
/// script with a handful of options, so a hand-written parser keeps the example's
/// dependencies to the workspace's.
#[derive(Debug)]
struct Options {
    values: HashMap<String, String>,
}

impl Options {
    fn parse(args: impl Iterator<Item = String>) -> Result<Options, String> {
        let mut values = HashMap::new();
        let mut args = args.peekable();
        while let Some(arg) = args.next() {
            let name = arg
                .strip_prefix("--")
                .ok_or_else(|| format!("unexpected argument {arg:?}"))?;
            let value = args
                .next()
                .ok_or_else(|| format!("--{name} needs a value"))?;
            values.insert(name.to_owned(), value);
        }
        Ok(Options { values })
    }

    fn get(&self, name: &str) -> Result<&str, String> {
        self.values
            .get(name)
            .map(String::as_str)
            .ok_or_else(|| format!("--{name} is required"))
    }

    fn parse_as<T: std::str::FromStr>(&self, name: &str) -> Result<T, String> {
        let value = self.get(name)?;
        value
            .parse()
            .map_err(|_| format!("--{name} {value:?} is not valid"))
    }

    fn parse_or<T: std::str::FromStr>(&self, name: &str, default: T) -> Result<T, String> {
        match self.values.get(name) {
            Some(_) => self.parse_as(name),
            None => Ok(default),
        }
    }
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let command = args.next().unwrap_or_default();
    let options = match Options::parse(args) {
        Ok(options) => options,
        Err(error) => {
            eprintln!("❌ chaos {command}: {error}");
            return ExitCode::from(2);
        }
    };
    let outcome = match command.as_str() {
        "run" => run::main(&options),
        "check" => run::check_only(&options),
        "load" => load::main(&options),
        "relay" => relay::main(&options),
        _ => Err("usage: chaos run|check|load|relay --option value …".to_owned()),
    };
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("❌ chaos {command}: {error}");
            ExitCode::from(2)
        }
    }
}
