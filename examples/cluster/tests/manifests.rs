//! The Kubernetes manifests (`deploy/kubernetes/`) against the binaries they run: every
//! variable a manifest sets is one the binary reads (the lists in `settings`, which the
//! binaries' own code uses), the workers and the client find the director at its Service's
//! name and port, every container and Service port is the port the binary binds, the TLS
//! files are where the Secret is mounted, and the probes ask the health service on the
//! node's own port with the node's TLS settings. `scripts/validate-manifests.sh` checks
//! the same files against the Kubernetes schemas.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use rpcnet_cluster_example::settings::{vars, CLIENT_VARS, DIRECTOR_VARS, WORKER_VARS};
use serde::Deserialize;
use serde_norway::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn manifests_dir() -> PathBuf {
    root().join("deploy/kubernetes")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every resource of every manifest, by kind and name.
fn resources() -> BTreeMap<(String, String), Value> {
    let mut all = BTreeMap::new();
    for file in manifest_files() {
        let text = read(&manifests_dir().join(&file));
        for document in serde_norway::Deserializer::from_str(&text) {
            let value = Value::deserialize(document).unwrap_or_else(|e| panic!("{file}: {e}"));
            if value.is_null() {
                continue;
            }
            let key = (s(&value, &["kind"]), s(&value, &["metadata", "name"]));
            assert!(all.insert(key.clone(), value).is_none(), "{key:?} twice");
        }
    }
    all
}

/// The manifest files: every `.yaml` in the directory but the kustomization.
fn manifest_files() -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(manifests_dir())
        .expect("deploy/kubernetes exists")
        .map(|e| {
            e.expect("a directory entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|name| name.ends_with(".yaml") && name != "kustomization.yaml")
        .collect();
    files.sort();
    files
}

fn get<'a>(value: &'a Value, path: &[&str]) -> &'a Value {
    path.iter().fold(value, |v, key| match v.get(*key) {
        Some(next) => next,
        None => panic!("no {key:?} in {path:?} of {v:?}"),
    })
}

fn s(value: &Value, path: &[&str]) -> String {
    match get(value, path) {
        Value::String(text) => text.clone(),
        other => panic!("{path:?} is not a string: {other:?}"),
    }
}

fn list<'a>(value: &'a Value, path: &[&str]) -> &'a Vec<Value> {
    get(value, path)
        .as_sequence()
        .unwrap_or_else(|| panic!("{path:?} is not a list"))
}

fn resource<'a>(all: &'a BTreeMap<(String, String), Value>, kind: &str, name: &str) -> &'a Value {
    all.get(&(kind.to_owned(), name.to_owned()))
        .unwrap_or_else(|| panic!("no {kind} {name} in deploy/kubernetes"))
}

/// The one container of a workload's pod template.
fn container(workload: &Value) -> &Value {
    let containers = list(workload, &["spec", "template", "spec", "containers"]);
    assert_eq!(containers.len(), 1, "one container per pod");
    &containers[0]
}

/// A container's environment: literal values, and the downward-API fields of the others.
struct Env {
    values: BTreeMap<String, String>,
    fields: BTreeMap<String, String>,
    order: Vec<String>,
}

fn env(container: &Value) -> Env {
    let mut env = Env {
        values: BTreeMap::new(),
        fields: BTreeMap::new(),
        order: Vec::new(),
    };
    for var in list(container, &["env"]) {
        let name = s(var, &["name"]);
        if var.get("value").is_some() {
            env.values.insert(name.clone(), s(var, &["value"]));
        } else {
            let field = s(var, &["valueFrom", "fieldRef", "fieldPath"]);
            env.fields.insert(name.clone(), field);
        }
        assert!(!env.order.contains(&name), "{name} set twice");
        env.order.push(name);
    }
    env
}

impl Env {
    fn value(&self, name: &str) -> &str {
        self.values
            .get(name)
            .unwrap_or_else(|| panic!("{name} is not set"))
    }
}

/// The binary a container runs (its command).
fn binary(container: &Value) -> String {
    let command = list(container, &["command"]);
    assert_eq!(
        command.len(),
        1,
        "the command is the binary alone: {command:?}"
    );
    command[0].as_str().expect("a string").to_owned()
}

/// The variables `binary` reads, from the example's code.
fn read_by(binary: &str) -> &'static [&'static str] {
    match binary {
        "director" => DIRECTOR_VARS,
        "worker" => WORKER_VARS,
        "client" => CLIENT_VARS,
        other => panic!("a container runs {other:?}, not an example binary"),
    }
}

/// Every workload: the director's StatefulSet, the workers' Deployment, the client's Job.
fn workloads(all: &BTreeMap<(String, String), Value>) -> Vec<&Value> {
    all.iter()
        .filter(|((kind, _), _)| matches!(kind.as_str(), "StatefulSet" | "Deployment" | "Job"))
        .map(|(_, v)| v)
        .collect()
}

/// A container port by name: its number and protocol.
fn container_port(container: &Value, name: &str) -> (u16, String) {
    let port = list(container, &["ports"])
        .iter()
        .find(|p| p.get("name").and_then(Value::as_str) == Some(name))
        .unwrap_or_else(|| panic!("no container port {name}"));
    let number = get(port, &["containerPort"]).as_u64().expect("a number");
    (
        u16::try_from(number).expect("a port"),
        s(port, &["protocol"]),
    )
}

#[test]
fn every_variable_the_manifests_set_is_one_the_binary_reads() {
    let all = resources();
    let workloads = workloads(&all);
    assert_eq!(
        workloads.len(),
        3,
        "the director, the workers and the client"
    );
    for workload in workloads {
        let container = container(workload);
        let binary = binary(container);
        let env = env(container);
        let reads = read_by(&binary);
        for name in env.values.keys() {
            assert!(
                reads.contains(&name.as_str()),
                "{binary} does not read {name} (settings::{}_VARS)",
                binary.to_uppercase()
            );
        }
        // A downward-API variable only feeds `$(NAME)` in a variable the binary reads,
        // and comes before it (Kubernetes expands only variables defined earlier).
        for (name, field) in &env.fields {
            let reference = format!("$({name})");
            let users: Vec<&String> = env
                .values
                .iter()
                .filter(|(_, v)| v.contains(&reference))
                .map(|(k, _)| k)
                .collect();
            assert!(!users.is_empty(), "{binary}: {name} ({field}) is not used");
            let at = |n: &str| env.order.iter().position(|o| o == n);
            for user in users {
                assert!(at(name) < at(user), "{binary}: {name} comes after {user}");
            }
        }
        for (name, value) in &env.values {
            for (i, _) in value.match_indices("$(") {
                let inner = &value[i + 2..value[i..].find(')').map_or(value.len(), |e| i + e)];
                assert!(
                    env.fields.contains_key(inner),
                    "{binary}: {name}={value} refers to {inner}, which is not a downward-API variable"
                );
            }
        }
    }
}

#[test]
fn nodes_bind_every_interface_and_advertise_their_pod_ip_on_the_port_they_bind() {
    let all = resources();
    for (kind, name, bind, advertise) in [
        (
            "StatefulSet",
            "director",
            vars::DIRECTOR_BIND_ADDR,
            vars::DIRECTOR_ADVERTISE_ADDR,
        ),
        (
            "Deployment",
            "worker",
            vars::WORKER_BIND_ADDR,
            vars::WORKER_ADVERTISE_ADDR,
        ),
    ] {
        let container = container(resource(&all, kind, name));
        let env = env(container);
        let (rpc_port, protocol) = container_port(container, "rpc");
        assert_eq!(protocol, "UDP", "{name}: QUIC is UDP");
        assert_eq!(
            env.value(bind),
            format!("0.0.0.0:{rpc_port}"),
            "{name}: {bind}"
        );
        let (host, port) = env.value(advertise).rsplit_once(':').expect("host:port");
        assert_eq!(port, rpc_port.to_string(), "{name}: {advertise}");
        let pod_ip = host
            .strip_prefix("$(")
            .and_then(|h| h.strip_suffix(')'))
            .unwrap_or_else(|| panic!("{name}: {advertise} is not $(POD_IP):port"));
        assert_eq!(
            env.fields.get(pod_ip).map(String::as_str),
            Some("status.podIP")
        );
    }
    // The worker's node id is its pod's name: unique per pod.
    let worker = env(container(resource(&all, "Deployment", "worker")));
    let label = worker.value(vars::WORKER_LABEL);
    let pod_name = label.trim_start_matches("$(").trim_end_matches(')');
    assert_eq!(
        worker.fields.get(pod_name).map(String::as_str),
        Some("metadata.name")
    );
}

#[test]
fn workers_and_the_client_find_the_director_at_its_service_name_and_port() {
    let all = resources();
    let director = resource(&all, "StatefulSet", "director");
    let service_name = s(director, &["spec", "serviceName"]);
    let service = resource(&all, "Service", &service_name);
    assert_eq!(
        s(service, &["spec", "clusterIP"]),
        "None",
        "a headless Service"
    );
    let (rpc_port, _) = container_port(container(director), "rpc");
    let expected = format!("{service_name}:{rpc_port}");
    for (kind, name) in [("Deployment", "worker"), ("Job", "client")] {
        let env = env(container(resource(&all, kind, name)));
        assert_eq!(
            env.value(vars::DIRECTOR_ADDR),
            expected,
            "{name}: {}",
            vars::DIRECTOR_ADDR
        );
    }
    // A recreated director (new pod IP) rejoins through the workers' headless Service.
    let worker = resource(&all, "Deployment", "worker");
    let (worker_port, _) = container_port(container(worker), "rpc");
    let worker_service = resource(&all, "Service", "worker");
    assert_eq!(s(worker_service, &["spec", "clusterIP"]), "None");
    assert_eq!(
        get(worker_service, &["spec", "selector"]),
        get(worker, &["spec", "selector", "matchLabels"]),
        "the worker Service selects the workers"
    );
    assert_eq!(
        env(container(director)).value(vars::DIRECTOR_SEEDS),
        format!("worker:{worker_port}")
    );
}

#[test]
fn every_service_port_is_a_container_port_with_its_number_and_protocol() {
    let all = resources();
    for (kind, name) in [("StatefulSet", "director"), ("Deployment", "worker")] {
        let workload = resource(&all, kind, name);
        let service = resource(&all, "Service", name);
        assert_eq!(
            get(service, &["spec", "selector"]),
            get(workload, &["spec", "selector", "matchLabels"]),
            "the {name} Service selects its pods"
        );
        let container = container(workload);
        for port in list(service, &["spec", "ports"]) {
            let target = s(port, &["targetPort"]);
            let (number, protocol) = container_port(container, &target);
            assert_eq!(get(port, &["port"]).as_u64(), Some(u64::from(number)));
            assert_eq!(s(port, &["protocol"]), protocol, "{name}: {target}");
        }
    }
    let director = container(resource(&all, "StatefulSet", "director"));
    let (metrics, protocol) = container_port(director, "metrics");
    assert_eq!(protocol, "TCP", "the metrics are HTTP");
    assert_eq!(
        env(director).value(vars::DIRECTOR_METRICS_ADDR),
        format!("0.0.0.0:{metrics}")
    );
    let annotations = get(
        resource(&all, "StatefulSet", "director"),
        &["spec", "template", "metadata", "annotations"],
    );
    assert_eq!(s(annotations, &["prometheus.io/port"]), metrics.to_string());
}

#[test]
fn the_tls_files_are_where_the_secret_is_mounted_and_the_readme_creates_its_keys() {
    let all = resources();
    let readme = read(&root().join("deploy/README.md"));
    for workload in workloads(&all) {
        let container = container(workload);
        let env = env(container);
        let volumes = list(workload, &["spec", "template", "spec", "volumes"]);
        for variable in [vars::TLS_CERT_PATH, vars::TLS_KEY_PATH, vars::TLS_CA_PATH] {
            let path = env.value(variable);
            let (dir, file) = path.rsplit_once('/').expect("a path");
            let mount = list(container, &["volumeMounts"])
                .iter()
                .find(|m| s(m, &["mountPath"]) == dir)
                .unwrap_or_else(|| panic!("{variable}={path}: nothing is mounted at {dir}"));
            let volume_name = s(mount, &["name"]);
            let volume = volumes
                .iter()
                .find(|v| s(v, &["name"]) == volume_name)
                .expect("the mount's volume");
            let secret = s(volume, &["secret", "secretName"]);
            let create = format!("kubectl create secret generic {secret}");
            assert!(
                readme.contains(&create),
                "deploy/README.md lacks `{create}`"
            );
            let key = format!("--from-file={file}=");
            assert!(readme.contains(&key), "deploy/README.md lacks `{key}`");
        }
    }
}

#[test]
fn the_probes_ask_the_health_service_on_the_nodes_port_with_its_tls_settings() {
    let all = resources();
    for (kind, name) in [("StatefulSet", "director"), ("Deployment", "worker")] {
        let container = container(resource(&all, kind, name));
        let env = env(container);
        let (rpc_port, _) = container_port(container, "rpc");
        for probe in ["readinessProbe", "livenessProbe"] {
            let command: Vec<String> = list(container, &[probe, "exec", "command"])
                .iter()
                .map(|v| v.as_str().expect("a string").to_owned())
                .collect();
            let flag = |f: &str| {
                command
                    .iter()
                    .position(|c| c == f)
                    .and_then(|i| command.get(i + 1))
                    .cloned()
                    .unwrap_or_else(|| panic!("{name} {probe}: no {f}"))
            };
            assert_eq!(
                command[..3],
                ["rpcnet", "health", &format!("127.0.0.1:{rpc_port}")]
            );
            assert_eq!(flag("--ca"), env.value(vars::TLS_CA_PATH), "{name} {probe}");
            assert_eq!(
                flag("--server-name"),
                env.value(vars::TLS_SERVER_NAME),
                "{name} {probe}"
            );
        }
    }
}

#[test]
fn the_image_holds_every_binary_the_manifests_run_and_the_kustomization_lists_the_cluster() {
    let all = resources();
    let dockerfile = read(&root().join("deploy/Dockerfile"));
    let mut images = BTreeSet::new();
    for workload in workloads(&all) {
        let container = container(workload);
        let mut run = vec![binary(container)];
        for probe in ["readinessProbe", "livenessProbe"] {
            if let Some(exec) = container.get(probe) {
                run.push(s(&list(exec, &["exec", "command"])[0], &[]));
            }
        }
        for binary in run {
            assert!(
                dockerfile.contains(&format!("--bin {binary}")),
                "deploy/Dockerfile does not build {binary}"
            );
        }
        let image = s(container, &["image"]);
        images.insert(image.split(':').next().expect("a name").to_owned());
    }
    assert_eq!(images.len(), 1, "one image: {images:?}");
    let kustomization: Value =
        serde_norway::from_str(&read(&manifests_dir().join("kustomization.yaml"))).expect("yaml");
    let listed: BTreeSet<String> = list(&kustomization, &["resources"])
        .iter()
        .map(|v| v.as_str().expect("a string").to_owned())
        .collect();
    let expected: BTreeSet<String> = manifest_files()
        .into_iter()
        .filter(|f| f != "client.yaml")
        .collect();
    assert_eq!(
        listed, expected,
        "the kustomization lists every manifest but the client's"
    );
    let image_names: BTreeSet<String> = list(&kustomization, &["images"])
        .iter()
        .map(|i| s(i, &["name"]))
        .collect();
    assert_eq!(
        image_names, images,
        "the kustomization's image is the manifests'"
    );
}
