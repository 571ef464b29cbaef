//! Bind and advertise addresses, as a container uses them: the director and a worker bind
//! every interface (`0.0.0.0`) and advertise a loopback address, the worker and the client
//! find the director by host name, and the client is handed the worker's advertised
//! address. TLS files named by variables are used; a missing one is one clear line.

use std::path::Path;
use std::time::Instant;

use rpcnet_cluster_example::settings::vars;

use crate::configuration::exits_with_one_error_line;
use crate::support::*;

/// The repository's cluster CA and a node certificate it signed (names `localhost`,
/// `127.0.0.1`): a deployment's own certificates rather than the bundled default.
fn cluster_tls() -> Vec<(&'static str, String)> {
    let certs = concat!(env!("CARGO_MANIFEST_DIR"), "/../../certs/cluster");
    vec![
        (vars::TLS_CERT_PATH, format!("{certs}/node_cert.pem")),
        (vars::TLS_KEY_PATH, format!("{certs}/node_key.pem")),
        (vars::TLS_CA_PATH, format!("{certs}/cluster_ca.pem")),
        (vars::TLS_SERVER_NAME, "localhost".to_owned()),
    ]
}

fn start(name: &str, binary: &str, env: Vec<(&'static str, String)>) -> Process {
    let env = [env, cluster_tls()].concat();
    Process::start(name, Path::new(binary), &env, &[], None).expect("the process starts")
}

#[test]
fn nodes_bound_on_every_interface_advertise_their_address_and_find_the_director_by_name() {
    let _one_at_a_time = one_scenario_at_a_time();
    let (d, w) = (free_port().expect("port"), free_port().expect("port"));
    let start_at = Instant::now();
    let director = start(
        "director",
        env!("CARGO_BIN_EXE_director"),
        vec![
            (vars::DIRECTOR_BIND_ADDR, format!("0.0.0.0:{d}")),
            (vars::DIRECTOR_ADVERTISE_ADDR, format!("127.0.0.1:{d}")),
        ],
    );
    let worker = start(
        "worker-a",
        env!("CARGO_BIN_EXE_worker"),
        vec![
            (vars::WORKER_LABEL, "worker-a".to_owned()),
            (vars::WORKER_BIND_ADDR, format!("0.0.0.0:{w}")),
            (vars::WORKER_ADVERTISE_ADDR, format!("127.0.0.1:{w}")),
            (vars::DIRECTOR_ADDR, format!("localhost:{d}")),
        ],
    );
    let added = format!("➕ pool: worker-a added (127.0.0.1:{w})");
    assert!(
        director
            .wait_for(start_at, PATIENCE, |l| l.starts_with(&added))
            .is_some(),
        "the worker did not join with its advertised address{}",
        logs(&[&director, &worker])
    );
    let client = start(
        "client",
        env!("CARGO_BIN_EXE_client"),
        vec![(vars::DIRECTOR_ADDR, format!("localhost:{d}"))],
    );
    let assigned = format!("📋 director assigned worker-a at 127.0.0.1:{w}");
    assert!(
        client
            .wait_for(start_at, PATIENCE, |l| l.starts_with(&assigned))
            .is_some(),
        "the client was not handed the advertised address{}",
        logs(&[&director, &worker, &client])
    );
    assert!(
        client
            .wait_for(start_at, PATIENCE, |l| token(l)
                .is_some_and(|(s, w)| s >= 3 && w == "worker-a"))
            .is_some(),
        "the client got no tokens from the worker{}",
        logs(&[&director, &worker, &client])
    );
}

#[test]
fn binding_every_interface_without_an_advertised_address_is_one_line_and_a_non_zero_exit() {
    exits_with_one_error_line(
        env!("CARGO_BIN_EXE_worker"),
        &[(vars::WORKER_BIND_ADDR, "0.0.0.0:62001".to_owned())],
        "WORKER_BIND_ADDR=0.0.0.0:62001 binds every interface: set WORKER_ADVERTISE_ADDR",
    );
    exits_with_one_error_line(
        env!("CARGO_BIN_EXE_director"),
        &[(vars::DIRECTOR_BIND_ADDR, "0.0.0.0:61000".to_owned())],
        "DIRECTOR_BIND_ADDR=0.0.0.0:61000 binds every interface: set DIRECTOR_ADVERTISE_ADDR",
    );
}

#[test]
fn a_tls_file_that_cannot_be_read_is_one_line_and_a_non_zero_exit() {
    for binary in [
        env!("CARGO_BIN_EXE_director"),
        env!("CARGO_BIN_EXE_worker"),
        env!("CARGO_BIN_EXE_client"),
    ] {
        exits_with_one_error_line(
            binary,
            &[(vars::TLS_CA_PATH, "/nonexistent/ca.pem".to_owned())],
            "TLS_CA_PATH=\"/nonexistent/ca.pem\" cannot be read",
        );
    }
}

#[test]
fn a_director_address_that_is_not_host_and_port_is_one_line_and_a_non_zero_exit() {
    for binary in [env!("CARGO_BIN_EXE_worker"), env!("CARGO_BIN_EXE_client")] {
        exits_with_one_error_line(
            binary,
            &[(vars::DIRECTOR_ADDR, "director".to_owned())],
            "DIRECTOR_ADDR=\"director\" is not an address",
        );
    }
}

#[test]
fn a_director_at_a_new_address_finds_the_running_workers_through_its_seeds() {
    let _one_at_a_time = one_scenario_at_a_time();
    // The worker knows the director at an address nobody serves any more (a restarted
    // pod's old IP); the director, at a new one, joins through the worker.
    let (old, d, w) = (
        free_port().expect("port"),
        free_port().expect("port"),
        free_port().expect("port"),
    );
    let start_at = Instant::now();
    let worker = start(
        "worker-a",
        env!("CARGO_BIN_EXE_worker"),
        vec![
            (vars::WORKER_LABEL, "worker-a".to_owned()),
            (vars::WORKER_ADDR, format!("127.0.0.1:{w}")),
            (vars::DIRECTOR_ADDR, format!("127.0.0.1:{old}")),
        ],
    );
    let director = start(
        "director",
        env!("CARGO_BIN_EXE_director"),
        vec![
            (vars::DIRECTOR_ADDR, format!("127.0.0.1:{d}")),
            (vars::DIRECTOR_SEEDS, format!("localhost:{w}")),
        ],
    );
    assert!(
        director
            .wait_for(start_at, PATIENCE, |l| l
                .starts_with("➕ pool: worker-a added"))
            .is_some(),
        "the director did not find the worker through its seed{}",
        logs(&[&director, &worker])
    );
}

#[test]
fn a_worker_stopped_with_sigterm_leaves_the_pool_gracefully_and_exits_zero() {
    let _one_at_a_time = one_scenario_at_a_time();
    let (d, w) = (free_port().expect("port"), free_port().expect("port"));
    let start_at = Instant::now();
    let director = director(d);
    let mut worker = worker("worker-a", w, d, None);
    assert!(
        director
            .wait_for(start_at, PATIENCE, |l| l
                .starts_with("➕ pool: worker-a added"))
            .is_some(),
        "the worker did not join{}",
        logs(&[&director, &worker])
    );
    // What Kubernetes sends a pod's processes when it deletes the pod.
    let terminated = Instant::now();
    let sent = std::process::Command::new("kill")
        .args(["-TERM", &worker.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(sent.success(), "kill -TERM failed");
    assert!(
        worker
            .wait_for(terminated, PATIENCE, |l| l
                .starts_with("👋 [worker-a] leaving the cluster"))
            .is_some(),
        "the worker did not leave on SIGTERM{}",
        logs(&[&worker])
    );
    // The director drops it from the pool.
    assert!(
        director
            .wait_for(terminated, PATIENCE, |l| l
                .starts_with("➖ pool: worker-a removed"))
            .is_some(),
        "the director did not drop the worker{}",
        logs(&[&director, &worker])
    );
    let deadline = Instant::now() + PATIENCE;
    let status = loop {
        if let Some(status) = worker.try_wait() {
            break status;
        }
        assert!(Instant::now() < deadline, "the worker did not exit");
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(status.success(), "the worker exited with {status}");
}
