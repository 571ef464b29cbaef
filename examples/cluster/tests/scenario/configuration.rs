//! Bad configuration gives one clear line and a non-zero exit; a director that is not up
//! yet gives a retry with a message, never a silent hang.

use std::net::UdpSocket;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::support::*;

pub(crate) fn exits_with_one_error_line(binary: &str, env: &[(&str, String)], says: &str) {
    let mut process = Process::start(binary, Path::new(binary), env, &[], None).expect("starts");
    let deadline = Instant::now() + PATIENCE;
    let status = loop {
        if let Some(status) = process.try_wait() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "{binary} did not exit{}",
            logs(&[&process])
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        !status.success(),
        "{binary} exited successfully{}",
        logs(&[&process])
    );
    let errors: Vec<String> = process
        .lines()
        .into_iter()
        .map(|l| l.text)
        .filter(|l| l.starts_with('❌'))
        .collect();
    assert_eq!(errors.len(), 1, "{binary}{}", logs(&[&process]));
    assert!(errors[0].contains(says), "{binary}: {:?}", errors[0]);
    assert!(
        !process.lines().iter().any(|l| l.text.contains("panicked")),
        "{binary} panicked{}",
        logs(&[&process])
    );
}

#[test]
fn an_unparsable_address_is_one_line_and_a_non_zero_exit() {
    exits_with_one_error_line(
        env!("CARGO_BIN_EXE_director"),
        &[("DIRECTOR_ADDR", "localhost-ish".to_owned())],
        "DIRECTOR_ADDR=\"localhost-ish\" is not an address",
    );
    exits_with_one_error_line(
        env!("CARGO_BIN_EXE_worker"),
        &[("WORKER_ADDR", "1.2.3".to_owned())],
        "WORKER_ADDR=\"1.2.3\" is not an address",
    );
}

#[test]
fn a_port_in_use_is_one_line_and_a_non_zero_exit() {
    let taken = UdpSocket::bind("127.0.0.1:0").expect("a port");
    let addr = taken.local_addr().expect("its address").to_string();
    exits_with_one_error_line(
        env!("CARGO_BIN_EXE_director"),
        &[("DIRECTOR_ADDR", addr.clone())],
        &format!("cannot serve on {addr}"),
    );
    exits_with_one_error_line(
        env!("CARGO_BIN_EXE_worker"),
        &[("WORKER_ADDR", addr.clone())],
        &format!("cannot serve on {addr}"),
    );
}

#[test]
fn a_client_and_a_worker_wait_for_a_director_that_is_not_up_saying_so() {
    let nobody = free_port().expect("port");
    let start = Instant::now();
    let client = client(nobody);
    let worker = worker("worker-a", free_port().expect("port"), nobody, None);
    assert!(
        client
            .wait_for(start, PATIENCE, |l| l.starts_with("⏳ director at"))
            .is_some(),
        "{}",
        logs(&[&client])
    );
    assert!(
        worker
            .wait_for(start, PATIENCE, |l| l
                .starts_with("⏳ [worker-a] waiting for the director"))
            .is_some(),
        "{}",
        logs(&[&worker])
    );
}
