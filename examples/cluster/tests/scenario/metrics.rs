//! The director's metrics in Prometheus text format (`DIRECTOR_METRICS_ADDR`): the real
//! director binary serves them over HTTP, and the RPC call counters move with real calls
//! from the real client, labelled with the method's wire name.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use rpcnet_cluster_example::settings::vars;

use crate::support::*;

/// `GET /metrics` over a plain TCP connection; the body, or why there is none.
fn scrape(port: u16) -> Result<String, String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .map_err(|e| e.to_string())?;
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .map_err(|e| e.to_string())?;
    let (head, body) = response
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("not an HTTP response: {response:?}"))?;
    if !head.starts_with("HTTP/1.1 200") {
        return Err(format!("not 200 OK: {head:?}"));
    }
    Ok(body.to_owned())
}

/// The value of the sample `name` whose labels include every one of `labels`.
fn sample(body: &str, name: &str, labels: &[&str]) -> Option<f64> {
    body.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
        .find(|l| labels.iter().all(|label| l.contains(label)))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[test]
fn the_director_serves_call_cluster_and_routing_metrics_in_prometheus_format_when_asked_to() {
    let _one_at_a_time = one_scenario_at_a_time();
    let (d, m) = (free_port().expect("port"), free_port().expect("port"));
    let start = Instant::now();
    let director = Process::start(
        "director",
        Path::new(env!("CARGO_BIN_EXE_director")),
        &[
            (vars::DIRECTOR_ADDR, format!("127.0.0.1:{d}")),
            (vars::DIRECTOR_METRICS_ADDR, format!("127.0.0.1:{m}")),
        ],
        &[],
        None,
    )
    .expect("the director starts");
    assert!(
        director
            .wait_for(start, PATIENCE, |l| l.starts_with("✅ Director ready"))
            .is_some(),
        "the director did not start{}",
        logs(&[&director])
    );
    // With no worker in the pool every `assign_worker` the client makes (one a second)
    // ends with the service's typed error: status `application`.
    let client = client(d);
    let method = "method=\"Director.assign_worker\"";
    let deadline = Instant::now() + PATIENCE;
    let mut last: Result<String, String> = Err("not scraped yet".to_owned());
    loop {
        if let Ok(body) = &last {
            let started = sample(body, "rpcnet_server_calls_started_total", &[method]);
            let finished = sample(
                body,
                "rpcnet_server_calls_finished_total",
                &[method, "code=\"application\""],
            );
            // The cluster's gauges and the routing's counters are served too: the director
            // knows no other member yet, and its `compute` calls find no worker.
            let members = sample(
                body,
                "rpcnet_cluster_members",
                &["node=\"director\"", "state=\"alive\""],
            );
            let no_workers = sample(body, "rpcnet_routing_no_workers_total", &[]);
            if started.is_some_and(|n| n >= 2.0)
                && finished.is_some_and(|n| n >= 2.0)
                && members == Some(0.0)
                && no_workers.is_some_and(|n| n >= 1.0)
            {
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the counters of Director.assign_worker did not reach 2, or the cluster and routing metrics are missing: {last:?}{}",
            logs(&[&director, &client])
        );
        std::thread::sleep(Duration::from_millis(200));
        last = scrape(m);
    }
}

#[test]
fn the_director_serves_no_metrics_port_unless_asked_to() {
    let _one_at_a_time = one_scenario_at_a_time();
    let d = free_port().expect("port");
    let start = Instant::now();
    let director = director(d);
    assert!(
        director
            .wait_for(start, PATIENCE, |l| l.starts_with("✅ Director ready"))
            .is_some(),
        "the director did not start{}",
        logs(&[&director])
    );
    assert!(
        !director.lines().iter().any(|l| l.text.contains("metrics")),
        "the director mentions metrics without DIRECTOR_METRICS_ADDR{}",
        logs(&[&director])
    );
}
