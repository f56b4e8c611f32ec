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
    repo_file, COLLECTOR_CONFIG, COLLECTOR_SCRAPE_JOB, JAEGER_CONFIG, JAEGER_RELEASE,
    PROMETHEUS_CONFIG,
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
        let endpoint = env
            .get("OTEL_EXPORTER_OTLP_ENDPOINT")
            .unwrap_or_else(|| panic!("{name}: no OTEL_EXPORTER_OTLP_ENDPOINT"));
        assert_eq!(
            host_port(endpoint),
            ("otel-collector".to_owned(), receiver_port),
            "{name}: OTLP endpoint {endpoint}"
        );
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
