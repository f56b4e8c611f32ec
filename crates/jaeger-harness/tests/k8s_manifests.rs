//! The Kubernetes manifests of `deploy/` (kustomization.yaml + k8s/), validated offline with
//! the real tools: `kustomize build` renders them with the ConfigMaps generated from
//! `deploy/configs/`, and `kubeconform -strict` checks every resource against the Kubernetes
//! API's schemas; a misspelled field and a wrong type must fail that check. Then the rendered
//! resources are checked for wiring the schemas cannot see: the front's sampler list names the
//! StatefulSet's pods, every endpoint names a Service and port that exist, every variable a
//! config needs is set, the probes hit the healthcheck port.
//!
//! The tools are built or fetched into the cache on first use (`kube_tools_for_tests`): about
//! 1.5 min cold, then a fraction of a second per run.

use std::collections::BTreeMap;

use jaeger_harness::{
    env_references, jaeger_for_tests, kube_tools_for_tests, otelcol_for_tests, substitute_env,
    KubeTools, JAEGER_RELEASE,
};
use serde::Deserialize;
use serde_norway::Value;

const NAMESPACE: &str = "latency-lab";

/// The resources the kustomization must render, as (kind, name).
const EXPECTED: [(&str, &str); 11] = [
    ("Namespace", NAMESPACE),
    ("Deployment", "otel-front"),
    ("Service", "otel-front"),
    ("StatefulSet", "sampler"),
    ("Service", "sampler"),
    ("Deployment", "jaeger-collector"),
    ("Service", "jaeger-collector"),
    ("StatefulSet", "kafka"),
    ("Service", "kafka"),
    ("Deployment", "jaeger"),
    ("Service", "jaeger-query"),
];

fn rendered(tools: &KubeTools) -> String {
    tools
        .build_repository()
        .unwrap_or_else(|e| panic!("kustomize build deploy/ failed: {e}"))
}

fn documents(yaml: &str) -> Vec<Value> {
    serde_norway::Deserializer::from_str(yaml)
        .map(|doc| Value::deserialize(doc).expect("kustomize printed invalid YAML"))
        .filter(|doc| !doc.is_null())
        .collect()
}

fn kind_name(doc: &Value) -> (&str, &str) {
    (
        doc["kind"].as_str().unwrap_or_default(),
        doc["metadata"]["name"].as_str().unwrap_or_default(),
    )
}

fn find<'a>(docs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    docs.iter()
        .find(|doc| kind_name(doc) == (kind, name))
        .unwrap_or_else(|| panic!("no {kind} {name} rendered"))
}

/// The one container of a workload.
fn container(workload: &Value) -> &Value {
    let containers = workload["spec"]["template"]["spec"]["containers"]
        .as_sequence()
        .expect("containers");
    assert_eq!(containers.len(), 1, "{:?}", kind_name(workload));
    &containers[0]
}

fn env(container: &Value) -> BTreeMap<String, String> {
    container["env"]
        .as_sequence()
        .map(|list| {
            list.iter()
                .map(|item| {
                    (
                        item["name"].as_str().expect("env name").to_owned(),
                        item["value"].as_str().expect("env value").to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The config a workload runs: the `config.yaml` of the ConfigMap mounted where its
/// `--config=` argument points.
fn mounted_config(docs: &[Value], workload: &Value) -> String {
    let container = container(workload);
    let config_arg = container["args"]
        .as_sequence()
        .expect("args")
        .iter()
        .filter_map(|a| a.as_str()?.strip_prefix("--config="))
        .next()
        .unwrap_or_else(|| panic!("{:?} has no --config=", kind_name(workload)));
    let (dir, file) = config_arg.rsplit_once('/').expect("a path");
    let mount = container["volumeMounts"]
        .as_sequence()
        .expect("volumeMounts")
        .iter()
        .find(|m| m["mountPath"].as_str() == Some(dir))
        .unwrap_or_else(|| panic!("{config_arg} is not mounted"));
    let volume = workload["spec"]["template"]["spec"]["volumes"]
        .as_sequence()
        .expect("volumes")
        .iter()
        .find(|v| v["name"] == mount["name"])
        .expect("the mount's volume");
    let map = volume["configMap"]["name"]
        .as_str()
        .unwrap_or_else(|| panic!("{config_arg}: not a ConfigMap volume"));
    find(docs, "ConfigMap", map)["data"][file]
        .as_str()
        .unwrap_or_else(|| panic!("ConfigMap {map} has no {file}"))
        .to_owned()
}

/// The value the config's entry at `path` takes in the container's environment.
fn config_value(config: &str, env: &BTreeMap<String, String>, path: &[&str]) -> String {
    let parsed: Value = serde_norway::from_str(config).expect("config YAML");
    let mut node = &parsed;
    for key in path {
        node = &node[*key];
    }
    let raw = match node {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        other => panic!("no scalar at {path:?}: {other:?}"),
    };
    substitute_env(&raw, env)
}

fn port_of(endpoint: &str) -> u16 {
    endpoint
        .rsplit_once(':')
        .and_then(|(_, port)| port.parse().ok())
        .unwrap_or_else(|| panic!("no port in {endpoint:?}"))
}

/// A YAML flow list as the configs take it: `[a:1, b:2]` -> ["a:1", "b:2"].
fn flow_list(value: &str) -> Vec<String> {
    let parsed: Vec<String> =
        serde_norway::from_str(value).unwrap_or_else(|e| panic!("{value:?}: {e}"));
    parsed
}

/// The container port a Service's named target port refers to.
fn container_port(workload: &Value, name: &str) -> u16 {
    container(workload)["ports"]
        .as_sequence()
        .expect("ports")
        .iter()
        .find(|p| p["name"].as_str() == Some(name))
        .and_then(|p| p["containerPort"].as_u64())
        .unwrap_or_else(|| panic!("{:?} has no port named {name}", kind_name(workload))) as u16
}

/// The workload whose pod labels a Service selects.
fn selected<'a>(docs: &'a [Value], service: &Value) -> &'a Value {
    let selector = service["spec"]["selector"].as_mapping().expect("selector");
    let matching: Vec<&Value> = docs
        .iter()
        .filter(|d| matches!(kind_name(d).0, "Deployment" | "StatefulSet"))
        .filter(|d| {
            let labels = &d["spec"]["template"]["metadata"]["labels"];
            selector
                .iter()
                .all(|(k, v)| &labels[k.as_str().unwrap()] == v)
        })
        .collect();
    assert_eq!(
        matching.len(),
        1,
        "{:?} selects {matching:?}",
        kind_name(service)
    );
    matching[0]
}

/// `host:port` -> the workload behind Service `host` and its container port for `port`.
fn resolve_endpoint<'a>(docs: &'a [Value], endpoint: &str) -> (&'a Value, u16) {
    let (host, port) = endpoint.rsplit_once(':').expect("host:port");
    let port: u16 = port.parse().expect("port");
    let service = find(docs, "Service", host);
    let entry = service["spec"]["ports"]
        .as_sequence()
        .expect("ports")
        .iter()
        .find(|p| p["port"].as_u64() == Some(u64::from(port)))
        .unwrap_or_else(|| panic!("Service {host} has no port {port}"));
    let workload = selected(docs, service);
    let target = entry["targetPort"].as_str().expect("a named targetPort");
    (workload, container_port(workload, target))
}

#[test]
fn manifests_pass_strict_offline_validation() {
    let Some(tools) = kube_tools_for_tests() else {
        return;
    };
    let yaml = rendered(&tools);
    let docs = documents(&yaml);
    for (kind, name) in EXPECTED {
        find(&docs, kind, name);
    }
    let maps = docs
        .iter()
        .filter(|d| kind_name(d).0 == "ConfigMap")
        .count();
    assert_eq!(maps, 4, "one generated ConfigMap per config");
    let validation = tools.validate(&yaml).expect("kubeconform ran");
    assert!(
        validation.valid,
        "kubeconform refused:\n{}",
        validation.report
    );
    // Every resource was checked against a schema: none skipped, none unknown.
    let summary = format!(
        "{} resources found parsing stdin - Valid: {}, Invalid: 0, Errors: 0, Skipped: 0",
        docs.len(),
        docs.len()
    );
    assert!(
        validation.report.contains(&summary),
        "expected {summary:?} in:\n{}",
        validation.report
    );
}

/// A copy of `deploy/` (kustomization, manifests, configs) in a temporary folder, with the
/// first `from` in `k8s/<file>` replaced by `to`, rendered by kustomize: kustomize passes such
/// mistakes through, only the schema check can catch them.
fn rendered_with_mistake(tools: &KubeTools, file: &str, from: &str, to: &str) -> String {
    let source = jaeger_harness::repo_file(jaeger_harness::KUSTOMIZATION_DIR);
    let copy = tempfile::tempdir().expect("tempdir");
    std::fs::copy(
        source.join("kustomization.yaml"),
        copy.path().join("kustomization.yaml"),
    )
    .expect("copy kustomization.yaml");
    for dir in ["k8s", "configs"] {
        std::fs::create_dir(copy.path().join(dir)).expect("mkdir");
        for entry in std::fs::read_dir(source.join(dir)).expect("list") {
            let path = entry.expect("entry").path();
            if path.extension().is_some_and(|e| e == "yaml") {
                std::fs::copy(&path, copy.path().join(dir).join(path.file_name().unwrap()))
                    .expect("copy");
            }
        }
    }
    let target = copy.path().join("k8s").join(file);
    let text = std::fs::read_to_string(&target).expect("read");
    assert!(text.contains(from), "{from:?} not in k8s/{file}");
    std::fs::write(&target, text.replacen(from, to, 1)).expect("write");
    tools
        .build(copy.path())
        .unwrap_or_else(|e| panic!("kustomize refused the copy: {e}"))
}

#[test]
fn strict_validation_refuses_a_misspelled_field() {
    let Some(tools) = kube_tools_for_tests() else {
        return;
    };
    let broken = rendered_with_mistake(&tools, "jaeger.yaml", "readinessProbe:", "readinesProbe:");
    let validation = tools.validate(&broken).expect("kubeconform ran");
    assert!(
        !validation.valid,
        "a misspelled field passed:\n{}",
        validation.report
    );
    assert!(
        validation.report.contains("Deployment jaeger is invalid")
            && validation
                .report
                .contains("additional properties 'readinesProbe' not allowed"),
        "{}",
        validation.report
    );
    assert!(
        validation.report.contains("Invalid: 1"),
        "{}",
        validation.report
    );
}

#[test]
fn validation_refuses_a_wrong_type() {
    let Some(tools) = kube_tools_for_tests() else {
        return;
    };
    let broken = rendered_with_mistake(&tools, "sampler.yaml", "replicas: 2", "replicas: two");
    let validation = tools.validate(&broken).expect("kubeconform ran");
    assert!(
        !validation.valid,
        "a string replica count passed:\n{}",
        validation.report
    );
    assert!(
        validation.report.contains("StatefulSet sampler is invalid")
            && validation.report.contains("/spec/replicas")
            && validation
                .report
                .contains("got string, want null or integer"),
        "{}",
        validation.report
    );
}

#[test]
fn rendered_manifests_wire_the_topology() {
    let Some(tools) = kube_tools_for_tests() else {
        return;
    };
    let docs = documents(&rendered(&tools));

    // Everything but the Namespace itself lives in it.
    for doc in &docs {
        if kind_name(doc).0 != "Namespace" {
            assert_eq!(
                doc["metadata"]["namespace"].as_str(),
                Some(NAMESPACE),
                "{:?}",
                kind_name(doc)
            );
        }
    }

    let workloads: Vec<&Value> = docs
        .iter()
        .filter(|d| matches!(kind_name(d).0, "Deployment" | "StatefulSet"))
        .collect();
    assert_eq!(workloads.len(), 5);
    for workload in &workloads {
        let name = kind_name(workload);
        let container = container(workload);
        let env = env(container);
        // Memory requests and limits on every container (requests schedule, limits contain).
        for key in ["requests", "limits"] {
            assert!(
                container["resources"][key]["memory"].is_string(),
                "{name:?}: no memory {key}"
            );
        }
        let image = container["image"].as_str().expect("image");
        let expected_image = match name.1 {
            "otel-front" | "sampler" => "otel/opentelemetry-collector-contrib:0.140.1".to_owned(),
            "jaeger-collector" | "jaeger" => format!("jaegertracing/jaeger:{JAEGER_RELEASE}"),
            "kafka" => "apache/kafka:4.1.1".to_owned(),
            other => panic!("unexpected workload {other}"),
        };
        assert_eq!(image, expected_image, "{name:?}");
        if name.1 == "kafka" {
            continue;
        }
        // Every variable the config needs without a default is set.
        let config = mounted_config(&docs, workload);
        for reference in env_references(&config) {
            if reference.default.is_none() {
                assert!(
                    env.contains_key(&reference.name),
                    "{name:?}: its config needs {} and the container does not set it",
                    reference.name
                );
            }
        }
        // The probes ask healthcheckv2 on the port the config listens on.
        let health = config_value(
            &config,
            &env,
            &["extensions", "healthcheckv2", "http", "endpoint"],
        );
        for probe in ["readinessProbe", "livenessProbe"] {
            let get = &container[probe]["httpGet"];
            assert_eq!(get["path"].as_str(), Some("/status"), "{name:?} {probe}");
            let port = get["port"].as_str().expect("a named probe port");
            assert_eq!(
                container_port(workload, port),
                port_of(&health),
                "{name:?} {probe}"
            );
        }
    }

    // The front's static list names every sampler pod, through the headless Service that
    // governs the StatefulSet, on the port the sampler's receiver listens on.
    let front = find(&docs, "Deployment", "otel-front");
    let front_env = env(container(front));
    let sampler = find(&docs, "StatefulSet", "sampler");
    let sampler_env = env(container(sampler));
    let sampler_config = mounted_config(&docs, sampler);
    let sampler_port = port_of(&config_value(
        &sampler_config,
        &sampler_env,
        &["receivers", "otlp", "protocols", "grpc", "endpoint"],
    ));
    let governing = sampler["spec"]["serviceName"]
        .as_str()
        .expect("serviceName");
    assert_eq!(
        find(&docs, "Service", governing)["spec"]["clusterIP"].as_str(),
        Some("None"),
        "the samplers' Service must be headless to name each pod"
    );
    let replicas = sampler["spec"]["replicas"].as_u64().expect("replicas");
    let expected: Vec<String> = (0..replicas)
        .map(|i| format!("sampler-{i}.{governing}:{sampler_port}"))
        .collect();
    assert_eq!(flow_list(&front_env["SAMPLER_ENDPOINTS"]), expected);
    assert_eq!(
        front_env.get("LB_ROUTING_KEY").map(String::as_str),
        Some("traceID")
    );
    let front_config = mounted_config(&docs, front);
    assert_eq!(
        config_value(
            &front_config,
            &front_env,
            &["receivers", "otlp", "protocols", "grpc", "endpoint"]
        ),
        format!("0.0.0.0:{}", container_port(front, "otlp-grpc"))
    );

    // Samplers -> the Jaeger collector role's OTLP receiver.
    let (target, port) = resolve_endpoint(&docs, &sampler_env["SAMPLER_EXPORT_ENDPOINT"]);
    assert_eq!(kind_name(target), ("Deployment", "jaeger-collector"));
    let collector_env = env(container(target));
    let collector_config = mounted_config(&docs, target);
    assert_eq!(
        port_of(&config_value(
            &collector_config,
            &collector_env,
            &["receivers", "otlp", "protocols", "grpc", "endpoint"]
        )),
        port
    );

    // Collector role and ingester -> the broker's advertised address, one topic.
    let kafka = find(&docs, "StatefulSet", "kafka");
    let kafka_env = env(container(kafka));
    let advertised = kafka_env["KAFKA_ADVERTISED_LISTENERS"]
        .strip_prefix("PLAINTEXT://")
        .expect("a PLAINTEXT listener");
    let kafka_service = kafka["spec"]["serviceName"].as_str().expect("serviceName");
    assert_eq!(advertised, format!("kafka-0.{kafka_service}:9092"));
    assert_eq!(
        find(&docs, "Service", kafka_service)["spec"]["clusterIP"].as_str(),
        Some("None")
    );
    assert!(kafka["spec"]["volumeClaimTemplates"]
        .as_sequence()
        .is_some_and(|v| !v.is_empty()));
    let ingester = find(&docs, "Deployment", "jaeger");
    let ingester_env = env(container(ingester));
    let ingester_config = mounted_config(&docs, ingester);
    let brokers = |config: &str, env: &BTreeMap<String, String>, kind: &str| {
        flow_list(&config_value(config, env, &[kind, "kafka", "brokers"]))
    };
    assert_eq!(
        brokers(&collector_config, &collector_env, "exporters"),
        [advertised]
    );
    assert_eq!(
        brokers(&ingester_config, &ingester_env, "receivers"),
        [advertised]
    );
    assert_eq!(
        config_value(
            &collector_config,
            &collector_env,
            &["exporters", "kafka", "traces", "topic"]
        ),
        config_value(
            &ingester_config,
            &ingester_env,
            &["receivers", "kafka", "traces", "topic"]
        ),
    );

    // Badger: one process, its folders on the claimed volume.
    assert_eq!(ingester["spec"]["replicas"].as_u64(), Some(1));
    assert_eq!(
        ingester["spec"]["strategy"]["type"].as_str(),
        Some("Recreate")
    );
    let badger = &serde_norway::from_str::<Value>(&ingester_config).expect("config")["extensions"]
        ["jaeger_storage"]["backends"];
    let directories = badger
        .as_mapping()
        .and_then(|m| {
            m.values()
                .find_map(|b| b["badger"]["directories"].as_mapping())
        })
        .expect("a badger backend with directories");
    let mounts = container(ingester)["volumeMounts"]
        .as_sequence()
        .expect("mounts");
    let volumes = ingester["spec"]["template"]["spec"]["volumes"]
        .as_sequence()
        .expect("volumes");
    for dir in directories.values() {
        let dir = substitute_env(dir.as_str().expect("a path"), &ingester_env);
        let mount = mounts
            .iter()
            .filter(|m| dir.starts_with(m["mountPath"].as_str().unwrap_or("\0")))
            .max_by_key(|m| m["mountPath"].as_str().map_or(0, str::len))
            .unwrap_or_else(|| panic!("Badger folder {dir} is on no volume"));
        let volume = volumes
            .iter()
            .find(|v| v["name"] == mount["name"])
            .expect("volume");
        let claim = volume["persistentVolumeClaim"]["claimName"]
            .as_str()
            .unwrap_or_else(|| panic!("Badger folder {dir} is not on a persistent volume"));
        find(&docs, "PersistentVolumeClaim", claim);
    }

    // The UI: the query Service reaches the port the config serves it on.
    let (target, port) = resolve_endpoint(&docs, "jaeger-query:16686");
    assert_eq!(kind_name(target), ("Deployment", "jaeger"));
    assert_eq!(
        port_of(&config_value(
            &ingester_config,
            &ingester_env,
            &["extensions", "jaeger_query", "http", "endpoint"]
        )),
        port
    );

    // The services' entry point.
    let (target, _) = resolve_endpoint(&docs, "otel-front:4317");
    assert_eq!(kind_name(target), ("Deployment", "otel-front"));
}

/// Every generated ConfigMap holds a config its program accepts (`validate`) with exactly the
/// environment its container sets: the contrib collector's configs with the collector built
/// from deploy/collector/ (same components and release as the image), Jaeger's with Jaeger.
#[test]
fn each_config_validates_with_its_containers_environment() {
    let Some(tools) = kube_tools_for_tests() else {
        return;
    };
    let Some(otelcol) = otelcol_for_tests() else {
        return;
    };
    let Some(jaeger) = jaeger_for_tests() else {
        return;
    };
    let docs = documents(&rendered(&tools));
    let dir = tempfile::tempdir().expect("tempdir");
    let mut validated = Vec::new();
    for workload in docs
        .iter()
        .filter(|d| matches!(kind_name(d).0, "Deployment" | "StatefulSet"))
    {
        let name = kind_name(workload).1;
        let image = container(workload)["image"].as_str().expect("image");
        let program = if image.starts_with("otel/opentelemetry-collector-contrib:") {
            &otelcol
        } else if image.starts_with("jaegertracing/jaeger:") {
            &jaeger
        } else {
            continue;
        };
        let file = dir.path().join(format!("{name}.yaml"));
        std::fs::write(&file, mounted_config(&docs, workload)).expect("write config");
        let output = std::process::Command::new(program)
            .arg("validate")
            .arg(format!("--config={}", file.display()))
            .env_clear()
            .envs(env(container(workload)))
            .output()
            .expect("run validate");
        assert!(
            output.status.success(),
            "{name}: {} validate refused its ConfigMap with its environment:\n{}{}",
            program.display(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        validated.push(name);
    }
    validated.sort_unstable();
    assert_eq!(
        validated,
        ["jaeger", "jaeger-collector", "otel-front", "sampler"]
    );
}
