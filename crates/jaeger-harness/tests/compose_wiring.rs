//! Static checks of `docker-compose.yml` and `Dockerfile` (no Docker engine runs in CI):
//! the compose file parses with `compose_spec`, bind mounts exist, the OTLP endpoints point at
//! the right services and ports (cross-checked against `otel-collector.yaml` and
//! `jaeger/config.yaml`), images are pinned, and start order and health checks are wired; the
//! metrics path too: Prometheus scrapes the collector's exporter, Jaeger's Monitor tab reads
//! that Prometheus.

use std::collections::BTreeMap;
use std::path::PathBuf;

use compose_spec::service::volumes::{self, Mount};
use compose_spec::service::Command;
use compose_spec::{Compose, Service};
use jaeger_harness::{
    compose_loader_for_tests, env_references, load_compose, repo_file, substitute_env, Loaded,
    COLLECTOR_CONFIG, COLLECTOR_SCRAPE_JOB, JAEGER_CONFIG, JAEGER_RELEASE, PROMETHEUS_CONFIG,
};
use serde_norway::Value;

const APP_SERVICES: [(&str, u16); 3] = [
    ("user-service", 5001),
    ("order-service", 5002),
    ("profile-aggregator", 8080),
];

fn read(relative: &str) -> String {
    std::fs::read_to_string(repo_file(relative))
        .unwrap_or_else(|e| panic!("cannot read {relative}: {e}"))
}

fn compose() -> Compose {
    let compose = Compose::options()
        .apply_merge(true)
        .from_yaml_str(&read("docker-compose.yml"))
        .expect("compose_spec cannot parse docker-compose.yml");
    compose
        .validate_all()
        .expect("docker-compose.yml uses undeclared networks/volumes/configs/secrets");
    compose
}

fn service<'a>(compose: &'a Compose, name: &str) -> &'a Service {
    compose
        .services
        .iter()
        .find(|(id, _)| id.as_str() == name)
        .map(|(_, service)| service)
        .unwrap_or_else(|| panic!("docker-compose.yml has no service {name:?}"))
}

/// A field of a service, as plain YAML (as compose_spec normalised it).
fn yaml_field<T: serde::Serialize>(value: &T) -> Value {
    serde_norway::to_value(value).expect("re-serialise")
}

fn environment(service: &Service) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    match yaml_field(&service.environment) {
        Value::Mapping(map) => {
            for (key, value) in map {
                let key = key.as_str().expect("env key").to_owned();
                let value = match value {
                    Value::String(s) => s,
                    Value::Number(n) => n.to_string(),
                    Value::Bool(b) => b.to_string(),
                    Value::Null => String::new(),
                    other => panic!("odd env value {other:?}"),
                };
                env.insert(key, value);
            }
        }
        Value::Sequence(list) => {
            for item in list {
                let item = item.as_str().expect("env item");
                let (k, v) = item.split_once('=').unwrap_or((item, ""));
                env.insert(k.to_owned(), v.to_owned());
            }
        }
        Value::Null => {}
        other => panic!("odd environment {other:?}"),
    }
    env
}

fn command(service: &Service) -> Vec<String> {
    match &service.command {
        Some(Command::List(args)) => args.clone(),
        Some(Command::String(line)) => line.split_whitespace().map(str::to_owned).collect(),
        None => Vec::new(),
    }
}

/// (host path, container path) of every bind mount.
fn bind_mounts(service: &Service) -> Vec<(PathBuf, PathBuf)> {
    volumes::into_long_iter(service.volumes.clone())
        .filter_map(|mount| match mount {
            Mount::Bind(bind) => Some((
                bind.source.as_path().to_path_buf(),
                bind.common.target.as_path().to_path_buf(),
            )),
            _ => None,
        })
        .collect()
}

/// `${env:NAME:-default}` -> (NAME, default).
fn env_reference(value: &str) -> Option<(&str, &str)> {
    let inner = value.strip_prefix("${env:")?.strip_suffix('}')?;
    inner.split_once(":-")
}

/// The value a config entry takes given the environment `env` of its process.
fn resolve(value: &str, env: &BTreeMap<String, String>) -> String {
    match env_reference(value) {
        Some((name, default)) => env.get(name).cloned().unwrap_or_else(|| default.to_owned()),
        None => value.to_owned(),
    }
}

/// What docker compose makes of `${VAR:-default}` in a value, with `shell` as the variables
/// of the shell it runs in.
fn interpolate(value: &str, shell: &BTreeMap<String, String>) -> String {
    substitute_env(value, shell)
}

/// `http://host:port/...` or `host:port` -> (host, port).
fn host_port(endpoint: &str) -> (String, u16) {
    let rest = endpoint
        .strip_prefix("http://")
        .or_else(|| endpoint.strip_prefix("https://"))
        .unwrap_or(endpoint);
    let authority = rest.split('/').next().unwrap_or(rest);
    let (host, port) = authority
        .rsplit_once(':')
        .unwrap_or_else(|| panic!("no port in {endpoint:?}"));
    (
        host.to_owned(),
        port.parse()
            .unwrap_or_else(|_| panic!("bad port in {endpoint:?}")),
    )
}

fn yaml_file(relative: &str) -> Value {
    serde_norway::from_str(&read(relative)).unwrap_or_else(|e| panic!("{relative}: {e}"))
}

fn yaml_str<'a>(value: &'a Value, path: &[&str]) -> &'a str {
    let mut node = value;
    for key in path {
        node = &node[*key];
    }
    node.as_str()
        .unwrap_or_else(|| panic!("no string at {path:?}"))
}

#[test]
fn compose_parses_and_has_the_services() {
    let compose = compose();
    let names: Vec<&str> = compose.services.keys().map(|id| id.as_str()).collect();
    for expected in [
        "jaeger",
        "otel-collector",
        "prometheus",
        "user-service",
        "order-service",
        "profile-aggregator",
        "load",
    ] {
        assert!(
            names.contains(&expected),
            "missing service {expected}: {names:?}"
        );
    }
}

#[test]
fn bind_mounted_files_exist_and_are_the_ones_the_commands_read() {
    let compose = compose();
    let mut checked = 0;
    for (name, service) in &compose.services {
        let mounts = bind_mounts(service);
        for (host, _) in &mounts {
            assert!(
                host.is_relative(),
                "{name}: bind source {host:?} should be relative to the repo"
            );
            let on_disk = jaeger_harness::workspace_root().join(host);
            assert!(
                on_disk.is_file(),
                "{name}: bind-mounted {host:?} does not exist"
            );
            checked += 1;
        }
        // Every --config=<path> (Prometheus: --config.file=<path>) the service is given must be
        // a mounted file.
        for arg in command(service) {
            if let Some(path) = arg
                .strip_prefix("--config=")
                .or_else(|| arg.strip_prefix("--config.file="))
            {
                assert!(
                    mounts
                        .iter()
                        .any(|(_, target)| target == &PathBuf::from(path)),
                    "{name}: {arg} is not bind-mounted ({mounts:?})"
                );
            }
        }
        // So must every *_CONFIG_FILE variable.
        for (key, value) in environment(service) {
            if key.ends_with("_CONFIG_FILE") && !value.is_empty() {
                assert!(
                    mounts
                        .iter()
                        .any(|(_, target)| target == &PathBuf::from(&value)),
                    "{name}: {key}={value} is not bind-mounted"
                );
            }
        }
    }
    assert!(
        checked >= 5,
        "expected the Jaeger, collector and Prometheus configs to be mounted"
    );
}

#[test]
fn services_export_to_the_collectors_otlp_grpc_port() {
    let compose = compose();
    let collector = service(&compose, "otel-collector");
    let collector_env = environment(collector);
    let collector_config = yaml_file(COLLECTOR_CONFIG);
    let receiver = yaml_str(
        &collector_config,
        &["receivers", "otlp", "protocols", "grpc", "endpoint"],
    );
    let (_, receiver_port) = host_port(&resolve(receiver, &collector_env));
    assert_eq!(receiver_port, 4317);
    let published = serde_norway::to_string(&collector.ports).unwrap();
    assert!(
        published.contains("4317"),
        "collector does not publish 4317: {published}"
    );

    for (name, port) in APP_SERVICES {
        let svc = service(&compose, name);
        let env = environment(svc);
        // Unset, OTLP_GATEWAY leaves the demo as it was: the services send spans (and
        // metrics, always) to otel-collector.
        for variable in [
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        ] {
            let endpoint = env
                .get(variable)
                .unwrap_or_else(|| panic!("{name}: no {variable}"));
            let endpoint = interpolate(endpoint, &BTreeMap::new());
            assert_eq!(
                host_port(&endpoint),
                ("otel-collector".to_owned(), receiver_port),
                "{name}: {variable} {endpoint}"
            );
        }
        assert_eq!(env.get("OTEL_SERVICE_NAME").map(String::as_str), Some(name));
        assert_eq!(
            env.get("OTEL_BSP_SCHEDULE_DELAY").map(String::as_str),
            Some("200")
        );
        // The binary must listen on all interfaces, on the port that is published and probed.
        let args = command(svc);
        assert_eq!(
            args.first().map(String::as_str),
            Some(name),
            "{name}: {args:?}"
        );
        let listen = args
            .iter()
            .position(|a| a == "--listen")
            .and_then(|i| args.get(i + 1))
            .unwrap_or_else(|| panic!("{name}: no --listen in {args:?}"));
        assert_eq!(listen, &format!("0.0.0.0:{port}"));
        let ports = serde_norway::to_string(&svc.ports).unwrap();
        assert!(
            ports.contains(&port.to_string()),
            "{name}: {port} not published"
        );
        let health = serde_norway::to_string(&svc.healthcheck).unwrap();
        assert!(
            health.contains(&format!("127.0.0.1:{port}/healthz")),
            "{name}: health check does not probe /healthz on {port}: {health}"
        );
    }

    let aggregator = command(service(&compose, "profile-aggregator"));
    let joined = aggregator.join(" ");
    assert!(
        joined.contains("--user-service-url http://user-service:5001"),
        "{joined}"
    );
    assert!(
        joined.contains("--order-service-url http://order-service:5002"),
        "{joined}"
    );
}

#[test]
fn collector_exports_to_a_port_jaeger_receives_on() {
    let compose = compose();
    let collector_env = environment(service(&compose, "otel-collector"));
    let jaeger_service = service(&compose, "jaeger");
    let jaeger_env = environment(jaeger_service);
    let collector_config = yaml_file(COLLECTOR_CONFIG);
    let jaeger_config = yaml_file(JAEGER_CONFIG);

    let exporters = collector_config["exporters"]
        .as_mapping()
        .expect("exporters map");
    let otlp: Vec<&str> = exporters
        .iter()
        .filter(|(key, _)| {
            let key = key.as_str().unwrap_or_default();
            key == "otlp" || key.starts_with("otlp/")
        })
        .map(|(_, value)| yaml_str(value, &["endpoint"]))
        .collect();
    assert_eq!(otlp.len(), 1, "expected one OTLP/gRPC exporter: {otlp:?}");
    let (variable, default) = env_reference(otlp[0]).expect("endpoint from ${env:..:-..}");
    assert_eq!(variable, "JAEGER_OTLP_ENDPOINT");

    let jaeger_receiver = yaml_str(
        &jaeger_config,
        &["receivers", "otlp", "protocols", "grpc", "endpoint"],
    );
    let (_, jaeger_port) = host_port(&resolve(jaeger_receiver, &jaeger_env));
    // Both the file's default and what compose actually sets name the jaeger service and port.
    for endpoint in [default.to_owned(), resolve(otlp[0], &collector_env)] {
        assert_eq!(
            host_port(&endpoint),
            ("jaeger".to_owned(), jaeger_port),
            "collector exports to {endpoint}, Jaeger receives OTLP/gRPC on {jaeger_port}"
        );
    }
    let tls = &exporters
        .iter()
        .find(|(k, _)| k.as_str().is_some_and(|k| k.starts_with("otlp")))
        .expect("otlp exporter")
        .1["tls"]["insecure"];
    assert_eq!(
        tls.as_bool(),
        Some(true),
        "plain-text gRPC to Jaeger needs tls.insecure"
    );

    // The UI is published on the query port from jaeger/config.yaml.
    let query = yaml_str(
        &jaeger_config,
        &["extensions", "jaeger_query", "http", "endpoint"],
    );
    let (_, query_port) = host_port(&resolve(query, &jaeger_env));
    let ports = serde_norway::to_string(&jaeger_service.ports).unwrap();
    assert!(
        ports.contains(&query_port.to_string()),
        "query port {query_port} not published"
    );

    // The health check probes the healthcheckv2 endpoint from jaeger/config.yaml.
    let health = yaml_str(
        &jaeger_config,
        &["extensions", "healthcheckv2", "http", "endpoint"],
    );
    let (_, health_port) = host_port(&resolve(health, &jaeger_env));
    let probe = serde_norway::to_string(&jaeger_service.healthcheck).unwrap();
    assert!(
        probe.contains(&format!("127.0.0.1:{health_port}/status")),
        "jaeger health check does not probe :{health_port}/status: {probe}"
    );
}

#[test]
fn images_are_pinned() {
    let compose = compose();
    let built: Vec<String> = compose
        .services
        .values()
        .filter(|s| s.build.is_some())
        .filter_map(|s| s.image.as_ref().map(|i| i.name().to_owned()))
        .collect();
    assert_eq!(
        built,
        ["latency-lab"],
        "exactly one service builds the shared image"
    );
    for (name, svc) in &compose.services {
        let image = svc
            .image
            .as_ref()
            .unwrap_or_else(|| panic!("{name}: no image"));
        let tag = image.tag();
        assert!(
            image.digest().is_some() || tag.is_some_and(|t| t != "latest"),
            "{name}: image {image} is not pinned"
        );
        if image.name() == "latency-lab" && svc.build.is_none() {
            assert_eq!(
                yaml_field(&svc.pull_policy).as_str(),
                Some("never"),
                "{name} reuses the local image and must not try to pull it"
            );
        }
    }
    let jaeger = service(&compose, "jaeger").image.as_ref().unwrap();
    assert_eq!(jaeger.name(), "jaegertracing/jaeger");
    assert_eq!(jaeger.tag(), Some(JAEGER_RELEASE));
    let prometheus = service(&compose, "prometheus").image.as_ref().unwrap();
    assert_eq!(prometheus.name(), "prom/prometheus");
    assert!(
        prometheus.tag().is_some_and(|t| t.starts_with("v2.")),
        "Prometheus 2.x, like Debian's 2.42 that CI runs: {prometheus}"
    );
    let collector = service(&compose, "otel-collector").image.as_ref().unwrap();
    assert_eq!(collector.name(), "otel/opentelemetry-collector-contrib");
    assert!(
        collector.tag().is_some_and(|t| t.starts_with("0.140.")),
        "collector image should match Collector core v0.140 like Jaeger {JAEGER_RELEASE}"
    );
}

#[test]
fn start_order_is_jaeger_collector_backends_aggregator() {
    let compose = compose();
    let depends = |name: &str| -> BTreeMap<String, String> {
        match yaml_field(&service(&compose, name).depends_on) {
            Value::Mapping(map) => map
                .into_iter()
                .map(|(k, v)| {
                    (
                        k.as_str().unwrap().to_owned(),
                        v["condition"]
                            .as_str()
                            .unwrap_or("service_started")
                            .to_owned(),
                    )
                })
                .collect(),
            Value::Sequence(list) => list
                .into_iter()
                .map(|k| (k.as_str().unwrap().to_owned(), "service_started".to_owned()))
                .collect(),
            _ => BTreeMap::new(),
        }
    };
    let deps = |name: &str| depends(name).keys().cloned().collect::<Vec<_>>();
    assert_eq!(deps("jaeger"), Vec::<String>::new());
    assert_eq!(deps("otel-collector"), ["jaeger"]);
    assert_eq!(deps("prometheus"), ["otel-collector"]);
    assert_eq!(deps("user-service"), ["otel-collector"]);
    assert_eq!(deps("order-service"), ["otel-collector"]);
    assert_eq!(
        deps("profile-aggregator"),
        ["order-service", "otel-collector", "user-service"]
    );
    assert_eq!(deps("load"), ["profile-aggregator"]);

    // service_healthy only on services that define a health check.
    for name in compose.services.keys() {
        for (dependency, condition) in depends(name.as_str()) {
            if condition == "service_healthy" {
                assert!(
                    service(&compose, &dependency).healthcheck.is_some(),
                    "{name} waits for {dependency} to be healthy, which has no health check"
                );
            }
        }
    }
    assert_eq!(
        depends("profile-aggregator")["user-service"],
        "service_healthy"
    );
    assert_eq!(
        depends("profile-aggregator")["order-service"],
        "service_healthy"
    );
    assert_eq!(depends("load")["profile-aggregator"], "service_healthy");
}

#[test]
fn load_generator_is_opt_in() {
    let compose = compose();
    let load = service(&compose, "load");
    let profiles: Vec<&str> = load.profiles.iter().map(|p| p.as_str()).collect();
    assert_eq!(profiles, ["load"]);
    let script = serde_norway::to_string(&load.command).unwrap();
    for needle in ["mode=$$mode", "sequential concurrent", "/user-profile/"] {
        assert!(
            script.contains(needle),
            "load script lacks {needle:?}: {script}"
        );
    }
}

#[test]
fn dockerfile_pins_its_bases_and_builds_every_service() {
    let dockerfile = read("Dockerfile");
    let args: BTreeMap<&str, &str> = dockerfile
        .lines()
        .filter_map(|l| l.trim().strip_prefix("ARG "))
        .filter_map(|a| a.split_once('='))
        .collect();
    let mut stages = Vec::new();
    for line in dockerfile.lines().map(str::trim) {
        let Some(from) = line.strip_prefix("FROM ") else {
            continue;
        };
        let image = from.split_whitespace().next().unwrap();
        stages.push(from.to_owned());
        assert!(!image.contains(":latest"), "unpinned base {image}");
        if !["chef", "planner", "builder"].contains(&image) {
            assert!(image.contains(':'), "base {image} has no tag");
        }
    }
    assert!(
        stages.len() >= 4,
        "expected chef/planner/builder/runtime stages: {stages:?}"
    );
    let chef = args
        .get("CARGO_CHEF_VERSION")
        .expect("CARGO_CHEF_VERSION arg");
    assert!(
        chef.split('.').count() == 3,
        "cargo-chef not pinned to x.y.z: {chef}"
    );
    assert!(dockerfile.contains("cargo install cargo-chef --locked --version"));
    assert!(dockerfile.contains("cargo chef prepare"));
    assert!(dockerfile.contains("cargo chef cook --release"));
    for (bin, _) in APP_SERVICES {
        assert!(dockerfile.contains(bin), "Dockerfile does not build {bin}");
    }
    assert!(
        !dockerfile
            .lines()
            .any(|l| l.trim_start().starts_with("ENTRYPOINT")),
        "no ENTRYPOINT: compose chooses the binary"
    );
    assert!(
        dockerfile.contains("USER 10001"),
        "runtime should not run as root"
    );

    let dockerignore = read(".dockerignore");
    for needed in ["Cargo.lock", "Cargo.toml", "crates"] {
        assert!(
            !dockerignore
                .lines()
                .any(|l| l.trim().trim_end_matches('/') == needed),
            ".dockerignore excludes {needed}, which the build needs"
        );
    }
    assert!(dockerignore.lines().any(|l| l.trim() == "target/"));
}

/// A path's components without `.`.
fn parts(path: &std::path::Path) -> Vec<std::path::Component<'_>> {
    path.components()
        .filter(|c| *c != std::path::Component::CurDir)
        .collect()
}

/// The container path a service mounts `host` (relative to the repo) at.
fn mount_target(service: &Service, host: &str) -> Option<PathBuf> {
    bind_mounts(service)
        .into_iter()
        // `./prometheus/x.yml` and `prometheus/x.yml` are the same file.
        .find(|(source, _)| parts(source) == parts(std::path::Path::new(host)))
        .map(|(_, target)| target)
}

#[test]
fn prometheus_scrapes_the_collectors_exporter_and_keeps_exemplars() {
    let compose = compose();
    let prometheus = service(&compose, "prometheus");
    let args = command(prometheus);
    assert!(
        args.iter()
            .any(|a| a == "--enable-feature=exemplar-storage"),
        "exemplar storage off: {args:?}"
    );
    // The rules sit next to the config, where its relative rule_files entry points.
    let config_target = mount_target(prometheus, PROMETHEUS_CONFIG).expect("config mounted");
    assert!(args.contains(&format!("--config.file={}", config_target.display())));
    let prometheus_config = yaml_file(PROMETHEUS_CONFIG);
    let rule_files: Vec<&str> = prometheus_config["rule_files"]
        .as_sequence()
        .expect("rule_files")
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(rule_files, ["alerts.yml"]);
    assert_eq!(
        mount_target(prometheus, "prometheus/alerts.yml"),
        Some(config_target.parent().unwrap().join("alerts.yml"))
    );

    // The scrape target is the collector's `prometheus` exporter, which speaks OpenMetrics.
    let job = prometheus_config["scrape_configs"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|job| job["job_name"].as_str() == Some(COLLECTOR_SCRAPE_JOB))
        .expect("the collector's scrape job");
    assert_eq!(job["honor_labels"].as_bool(), Some(true));
    let targets: Vec<&str> = job["static_configs"][0]["targets"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let collector_env = environment(service(&compose, "otel-collector"));
    let collector_config = yaml_file(COLLECTOR_CONFIG);
    let exporter = yaml_str(&collector_config, &["exporters", "prometheus", "endpoint"]);
    let (_, exporter_port) = host_port(&resolve(exporter, &collector_env));
    assert_eq!(targets.len(), 1, "{targets:?}");
    assert_eq!(
        host_port(targets[0]),
        ("otel-collector".to_owned(), exporter_port)
    );
    assert_eq!(
        collector_config["exporters"]["prometheus"]["enable_open_metrics"].as_bool(),
        Some(true),
        "exemplars only travel in OpenMetrics"
    );

    let probe = serde_norway::to_string(&prometheus.healthcheck).unwrap();
    assert!(probe.contains("127.0.0.1:9090/-/ready"), "{probe}");
    let ports = serde_norway::to_string(&prometheus.ports).unwrap();
    assert!(
        ports.contains("9090"),
        "Prometheus UI not published: {ports}"
    );
}

#[test]
fn jaegers_monitor_tab_reads_that_prometheus() {
    let compose = compose();
    let jaeger_env = environment(service(&compose, "jaeger"));
    let jaeger_config = yaml_file(JAEGER_CONFIG);
    let backend = yaml_str(
        &jaeger_config,
        &["extensions", "jaeger_query", "storage", "metrics"],
    );
    let prometheus =
        &jaeger_config["extensions"]["jaeger_storage"]["metric_backends"][backend]["prometheus"];
    let endpoint = prometheus["endpoint"]
        .as_str()
        .unwrap_or_else(|| panic!("no prometheus endpoint for metric backend {backend:?}"));
    let (variable, default) = env_reference(endpoint).expect("endpoint from ${env:..:-..}");
    assert_eq!(variable, "JAEGER_PROMETHEUS_URL");
    // Prometheus listens on its default port (no --web.listen-address in compose).
    let args = command(service(&compose, "prometheus"));
    assert!(!args.iter().any(|a| a.starts_with("--web.listen-address")));
    for url in [default.to_owned(), resolve(endpoint, &jaeger_env)] {
        assert_eq!(host_port(&url), ("prometheus".to_owned(), 9090), "{url}");
    }

    // The spanmetrics names Jaeger queries are the ones the collector produces.
    let collector_config = yaml_file(COLLECTOR_CONFIG);
    let spanmetrics = &collector_config["connectors"]["spanmetrics"];
    assert_eq!(
        prometheus["metric_namespace"].as_str().unwrap(),
        spanmetrics["namespace"].as_str().unwrap().replace('.', "_")
    );
    assert_eq!(
        prometheus["latency_unit"].as_str(),
        spanmetrics["histogram"]["unit"].as_str()
    );
    // The exporter appends _total and the unit: Jaeger must expect them.
    assert_eq!(prometheus["normalize_calls"].as_bool(), Some(true));
    assert_eq!(prometheus["normalize_duration"].as_bool(), Some(true));
    assert_eq!(spanmetrics["exemplars"]["enabled"].as_bool(), Some(true));

    // And the UI shows the Monitor tab.
    let ui: serde_json::Value =
        serde_json::from_str(&read("jaeger/ui-config.json")).expect("ui-config.json");
    assert_eq!(ui["monitor"]["menuEnabled"], true);
}

// ---- The `scale` profile: the scale-out pipeline of deploy/ (see the compose file's header).

/// The services of the default profile (what `docker compose up` starts), unchanged by the
/// scale profile.
const DEFAULT_SERVICES: [&str; 6] = [
    "jaeger",
    "order-service",
    "otel-collector",
    "profile-aggregator",
    "prometheus",
    "user-service",
];

/// The services only `--profile scale` starts.
const SCALE_SERVICES: [&str; 7] = [
    "jaeger-badger-init",
    "jaeger-ingester",
    "jaeger-kafka-collector",
    "kafka",
    "otel-front",
    "sampler-1",
    "sampler-2",
];

fn profiles(service: &Service) -> Vec<&str> {
    service.profiles.iter().map(|p| p.as_str()).collect()
}

/// Every service's `depends_on`, as names.
fn dependencies(service: &Service) -> Vec<String> {
    match yaml_field(&service.depends_on) {
        Value::Mapping(map) => map.keys().map(|k| k.as_str().unwrap().to_owned()).collect(),
        Value::Sequence(list) => list
            .iter()
            .map(|k| k.as_str().unwrap().to_owned())
            .collect(),
        _ => Vec::new(),
    }
}

/// The config file (repository path) a service is started with: the host side of the bind
/// mount its `--config=` argument names.
fn started_config(service: &Service) -> Option<PathBuf> {
    let mounts = bind_mounts(service);
    command(service).iter().find_map(|arg| {
        let path = arg.strip_prefix("--config=")?;
        mounts
            .iter()
            .find(|(_, target)| target == &PathBuf::from(path))
            .map(|(host, _)| host.clone())
    })
}

/// The value of `path` in the config a service runs, its `${env:..}` resolved with the
/// service's environment.
fn config_value(service: &Service, path: &[&str]) -> String {
    let config = started_config(service).expect("a --config= file");
    let parsed = yaml_file(config.to_str().expect("UTF-8 path"));
    resolve_all(yaml_str(&parsed, path), &environment(service))
}

/// `${env:..}` references anywhere in `value`, resolved like the collector does.
fn resolve_all(value: &str, env: &BTreeMap<String, String>) -> String {
    substitute_env(value, env)
}

/// A YAML flow list as the configs take it: `[a:1, b:2]` -> ["a:1", "b:2"].
fn flow_list(value: &str) -> Vec<String> {
    serde_norway::from_str(value).unwrap_or_else(|e| panic!("{value:?}: {e}"))
}

/// The host ports a service publishes.
fn published_ports(service: &Service) -> Vec<u16> {
    let ports = yaml_field(&service.ports);
    let Some(list) = ports.as_sequence() else {
        return Vec::new();
    };
    list.iter()
        .map(|entry| match entry {
            Value::String(short) => {
                let parts: Vec<&str> = short.split(':').collect();
                assert!(parts.len() >= 2, "{short:?} publishes no fixed host port");
                parts[parts.len() - 2].parse().expect("host port")
            }
            Value::Mapping(_) => {
                let published = &entry["published"];
                published
                    .as_u64()
                    .map(|p| p as u16)
                    .or_else(|| published.as_str().and_then(|p| p.parse().ok()))
                    .unwrap_or_else(|| panic!("no published port in {entry:?}"))
            }
            other => panic!("odd port entry {other:?}"),
        })
        .collect()
}

#[test]
fn scale_services_exist_only_under_the_scale_profile() {
    let compose = compose();
    let mut default = Vec::new();
    let mut scale = Vec::new();
    for (name, svc) in &compose.services {
        match profiles(svc).as_slice() {
            [] => default.push(name.as_str()),
            ["scale"] => scale.push(name.as_str()),
            ["load"] => assert_eq!(name.as_str(), "load"),
            other => panic!("{name}: unexpected profiles {other:?}"),
        }
    }
    default.sort_unstable();
    scale.sort_unstable();
    assert_eq!(default, DEFAULT_SERVICES, "the default demo changed");
    assert_eq!(scale, SCALE_SERVICES);
}

#[test]
fn depends_on_names_services_a_profile_can_start() {
    let compose = compose();
    for (name, svc) in &compose.services {
        for dependency in dependencies(svc) {
            let target = service(&compose, &dependency);
            // A service of the default profile cannot wait for one that only a profile starts.
            if profiles(svc).is_empty() {
                assert!(
                    profiles(target).is_empty(),
                    "{name} (default) depends on {dependency}, which only a profile starts"
                );
            }
        }
    }
}

#[test]
fn published_host_ports_are_unique() {
    let compose = compose();
    let mut owner: BTreeMap<u16, &str> = BTreeMap::new();
    for (name, svc) in &compose.services {
        for port in published_ports(svc) {
            if let Some(other) = owner.insert(port, name.as_str()) {
                panic!("host port {port} is published by both {other} and {name}");
            }
        }
    }
    // The scale pipeline's UI sits beside the demo's.
    assert_eq!(owner.get(&16686), Some(&"jaeger"));
    assert_eq!(owner.get(&16687), Some(&"jaeger-ingester"));
}

#[test]
fn every_config_variable_without_a_default_is_set() {
    let compose = compose();
    let mut checked = Vec::new();
    for (name, svc) in &compose.services {
        let Some(config) = started_config(svc) else {
            continue;
        };
        let env = environment(svc);
        let text = read(config.to_str().expect("UTF-8 path"));
        for reference in env_references(&text) {
            if reference.default.is_none() {
                assert!(
                    env.contains_key(&reference.name),
                    "{name}: {} needs {}, which the service does not set",
                    config.display(),
                    reference.name
                );
            }
        }
        checked.push(name.as_str());
    }
    for name in SCALE_SERVICES {
        if !["kafka", "jaeger-badger-init"].contains(&name) {
            assert!(checked.contains(&name), "{name} runs no --config= file");
        }
    }
}

#[test]
fn scale_pipeline_is_wired_front_to_samplers_to_kafka_to_badger() {
    let compose = compose();

    // The app services reach the front when OTLP_GATEWAY names it, on its receiver's port.
    let gateway = BTreeMap::from([("OTLP_GATEWAY".to_owned(), "otel-front".to_owned())]);
    let front = service(&compose, "otel-front");
    let front_port = host_port(&config_value(
        front,
        &["receivers", "otlp", "protocols", "grpc", "endpoint"],
    ))
    .1;
    for (name, _) in APP_SERVICES {
        // Spans to the front; metrics still to otel-collector (the tiers carry traces only).
        let env = environment(service(&compose, name));
        assert_eq!(
            host_port(&interpolate(
                &env["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"],
                &gateway
            )),
            ("otel-front".to_owned(), front_port),
            "{name}"
        );
        assert_eq!(
            host_port(&interpolate(&env["OTEL_EXPORTER_OTLP_ENDPOINT"], &gateway)).0,
            "otel-collector",
            "{name}"
        );
    }

    // The front lists every sampler, each on its receiver's port, and routes by trace id.
    let front_env = environment(front);
    let samplers: Vec<String> = flow_list(&front_env["SAMPLER_ENDPOINTS"]);
    let names: Vec<String> = samplers.iter().map(|e| host_port(e).0).collect();
    assert_eq!(names, ["sampler-1", "sampler-2"]);
    assert_eq!(
        config_value(front, &["exporters", "loadbalancing", "routing_key"]),
        "traceID"
    );
    for endpoint in &samplers {
        let (name, port) = host_port(endpoint);
        let sampler = service(&compose, &name);
        let receiver = config_value(
            sampler,
            &["receivers", "otlp", "protocols", "grpc", "endpoint"],
        );
        assert_eq!(host_port(&receiver).1, port, "{name}");
        // Samplers -> the Jaeger collector role's OTLP/gRPC receiver.
        let export = config_value(sampler, &["exporters", "otlp", "endpoint"]);
        let (target, target_port) = host_port(&export);
        assert_eq!(target, "jaeger-kafka-collector", "{name}");
        let collector = service(&compose, &target);
        let receiver = config_value(
            collector,
            &["receivers", "otlp", "protocols", "grpc", "endpoint"],
        );
        assert_eq!(host_port(&receiver).1, target_port, "{name}");
    }

    // Collector role and ingester use the broker's advertised address and one topic.
    let kafka_env = environment(service(&compose, "kafka"));
    let advertised = kafka_env["KAFKA_ADVERTISED_LISTENERS"]
        .strip_prefix("PLAINTEXT://")
        .expect("a PLAINTEXT listener");
    assert_eq!(host_port(advertised).0, "kafka");
    let collector = service(&compose, "jaeger-kafka-collector");
    let ingester = service(&compose, "jaeger-ingester");
    assert_eq!(
        flow_list(&config_value(collector, &["exporters", "kafka", "brokers"])),
        [advertised]
    );
    assert_eq!(
        flow_list(&config_value(ingester, &["receivers", "kafka", "brokers"])),
        [advertised]
    );
    assert_eq!(
        config_value(collector, &["exporters", "kafka", "traces", "topic"]),
        config_value(ingester, &["receivers", "kafka", "traces", "topic"])
    );

    // Badger's folders are on a named volume (it outlives the container), handed to Jaeger's
    // user by the init step before the ingester starts.
    let badger_dir = config_value(
        ingester,
        &[
            "extensions",
            "jaeger_storage",
            "backends",
            "badger_store",
            "badger",
            "directories",
            "keys",
        ],
    );
    let volume_at = |svc: &Service| -> Vec<(String, PathBuf)> {
        volumes::into_long_iter(svc.volumes.clone())
            .filter_map(|mount| match mount {
                Mount::Volume(v) => Some((
                    yaml_field(&v.source).as_str()?.to_owned(),
                    v.common.target.as_path().to_path_buf(),
                )),
                _ => None,
            })
            .collect()
    };
    let (volume, target) = volume_at(ingester)
        .into_iter()
        .find(|(_, target)| std::path::Path::new(&badger_dir).starts_with(target))
        .unwrap_or_else(|| panic!("Badger folder {badger_dir} is on no named volume"));
    let init = service(&compose, "jaeger-badger-init");
    assert!(volume_at(init).contains(&(volume.clone(), target.clone())));
    assert!(
        command(init)
            .join(" ")
            .contains(&target.display().to_string())
            || serde_norway::to_string(&init.entrypoint)
                .unwrap()
                .contains(&target.display().to_string()),
        "the init step does not touch {}",
        target.display()
    );
    let deps = yaml_field(&ingester.depends_on);
    assert_eq!(
        deps["jaeger-badger-init"]["condition"].as_str(),
        Some("service_completed_successfully")
    );

    // The ingester's UI is published from the port its config serves it on, and the health
    // checks of both Jaeger roles probe their healthcheckv2 port.
    let query = config_value(
        ingester,
        &["extensions", "jaeger_query", "http", "endpoint"],
    );
    let ports = serde_norway::to_string(&ingester.ports).unwrap();
    assert!(
        ports.contains(&format!("16687:{}", host_port(&query).1)),
        "{ports}"
    );
    for svc in [collector, ingester] {
        let health = config_value(svc, &["extensions", "healthcheckv2", "http", "endpoint"]);
        let probe = serde_norway::to_string(&svc.healthcheck).unwrap();
        assert!(
            probe.contains(&format!("127.0.0.1:{}/status", host_port(&health).1)),
            "{probe}"
        );
    }
}

#[test]
fn scale_images_match_the_releases() {
    let compose = compose();
    for name in SCALE_SERVICES {
        let image = service(&compose, name).image.as_ref().unwrap().to_string();
        let expected = match name {
            "otel-front" | "sampler-1" | "sampler-2" => {
                "otel/opentelemetry-collector-contrib:0.140.1".to_owned()
            }
            "kafka" => "apache/kafka:4.1.1".to_owned(),
            _ => format!("jaegertracing/jaeger:{JAEGER_RELEASE}"),
        };
        assert_eq!(image, expected, "{name}");
    }
}

/// Services (sorted) and the JSON of what Docker Compose's own loader accepted.
fn loaded_services(loaded: Loaded) -> (Vec<String>, serde_json::Value) {
    match loaded {
        Loaded::Accepted(json) => {
            let services = json["services"].clone();
            let mut names: Vec<String> = services
                .as_object()
                .expect("services")
                .keys()
                .cloned()
                .collect();
            names.sort_unstable();
            (names, services)
        }
        Loaded::Refused(message) => panic!("Docker Compose's loader refused the file: {message}"),
    }
}

/// The file as `docker compose config` sees it (compose-go: schema, interpolation, anchors,
/// profiles, references): the default profile starts the demo alone and unchanged, `scale`
/// adds the pipeline, and OTLP_GATEWAY moves the app services to the front.
#[test]
fn docker_composes_own_loader_accepts_both_profiles() {
    let Some(loader) = compose_loader_for_tests() else {
        return;
    };
    let file = repo_file("docker-compose.yml");
    let (default, services) =
        loaded_services(load_compose(&loader, &file, &[], &[]).expect("compose-check ran"));
    assert_eq!(default, DEFAULT_SERVICES);
    assert_eq!(
        services["user-service"]["environment"]["OTEL_EXPORTER_OTLP_ENDPOINT"],
        "http://otel-collector:4317"
    );

    let (scale, services) = loaded_services(
        load_compose(
            &loader,
            &file,
            &["scale"],
            &[("OTLP_GATEWAY", "otel-front")],
        )
        .expect("compose-check ran"),
    );
    let mut expected: Vec<&str> = DEFAULT_SERVICES
        .iter()
        .chain(&SCALE_SERVICES)
        .copied()
        .collect();
    expected.sort_unstable();
    assert_eq!(scale, expected);
    for (name, _) in APP_SERVICES {
        assert_eq!(
            services[name]["environment"]["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"],
            "http://otel-front:4317",
            "{name}"
        );
        assert_eq!(
            services[name]["environment"]["OTEL_EXPORTER_OTLP_ENDPOINT"],
            "http://otel-collector:4317",
            "{name}"
        );
    }
    // The anchor gave both samplers the whole definition.
    for name in ["sampler-1", "sampler-2"] {
        assert_eq!(
            services[name]["environment"]["SAMPLER_EXPORT_ENDPOINT"],
            "jaeger-kafka-collector:4317"
        );
        assert_eq!(services[name]["profiles"], serde_json::json!(["scale"]));
    }
}

/// The check above can fail: the loader refuses a misspelled key and a dependency on a
/// service that does not exist.
#[test]
fn docker_composes_own_loader_refuses_broken_copies() {
    let Some(loader) = compose_loader_for_tests() else {
        return;
    };
    let original = read("docker-compose.yml");
    let dir = tempfile::tempdir().expect("tempdir");
    let cases = [
        (
            "    environment:\n      # Every sampler",
            "    enviroment:\n      # Every sampler",
            "services.otel-front.enviroment",
        ),
        (
            "      sampler-2:\n        condition: service_started",
            "      sampler-3:\n        condition: service_started",
            "undefined service \"sampler-3\"",
        ),
    ];
    for (from, to, expected) in cases {
        assert!(
            original.contains(from),
            "{from:?} not in docker-compose.yml"
        );
        let copy = dir.path().join("docker-compose.yml");
        std::fs::write(&copy, original.replacen(from, to, 1)).expect("write");
        match load_compose(&loader, &copy, &["scale"], &[]).expect("compose-check ran") {
            Loaded::Refused(message) => {
                assert!(
                    message.contains(expected),
                    "{expected:?} not in {message:?}"
                )
            }
            Loaded::Accepted(_) => panic!("the loader accepted a copy with {to:?}"),
        }
    }
}
