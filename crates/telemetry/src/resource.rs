//! The resource: who sent a span. Jaeger shows it as the span's *Process*.
//!
//! With only the SDK's defaults that section says `telemetry.sdk.*` and
//! nothing a person looks for when two runs or two replicas differ: which
//! version, which process, on which host. The layers, each merged over the
//! one before (the later wins):
//!
//! 1. detected: the contrib crate's host (`host.name`, `host.id`,
//!    `host.arch`), process (`process.pid`, `process.runtime.*` of the
//!    compiler that built it; not `process.command_args`, see
//!    [`without_command_line`]) and service-instance (`service.instance.id`,
//!    a UUID per process) detectors;
//! 2. what only the service knows: `service.version` (the service crate's
//!    version, passed in by the service) and `process.executable.name`;
//! 3. the SDK's defaults, `OTEL_SERVICE_NAME` and `OTEL_RESOURCE_ATTRIBUTES`
//!    (`Resource::builder()`), so the environment wins over everything
//!    detected — `deployment.environment.name=lab` is set there, and only
//!    when someone sets it;
//! 4. the service's default name, only when the environment names none
//!    ([`TelemetryConfig::default_service_name`]).

use opentelemetry::KeyValue;
use opentelemetry_resource_detectors::{
    HostResourceDetector, ProcessResourceDetector, ServiceInstanceIdResourceDetector,
};
use opentelemetry_sdk::resource::{
    EnvResourceDetector, ResourceDetector, SdkProvidedResourceDetector, TelemetryResourceDetector,
};
use opentelemetry_sdk::Resource;
use opentelemetry_semantic_conventions::resource::{
    PROCESS_COMMAND_ARGS, PROCESS_EXECUTABLE_NAME, SERVICE_VERSION,
};

use crate::TelemetryConfig;

/// The resource every span of this process carries.
pub fn resource(config: &TelemetryConfig) -> Resource {
    let detected: [Box<dyn ResourceDetector>; 3] = [
        Box::new(HostResourceDetector::default()),
        Box::new(ProcessResourceDetector),
        Box::new(ServiceInstanceIdResourceDetector),
    ];
    // The three detectors of `Resource::builder()`, run last so that
    // `OTEL_RESOURCE_ATTRIBUTES` overrides anything detected above it.
    let sdk_and_environment: [Box<dyn ResourceDetector>; 3] = [
        Box::new(SdkProvidedResourceDetector),
        Box::new(TelemetryResourceDetector),
        Box::new(EnvResourceDetector::new()),
    ];
    let detected = Resource::builder_empty().with_detectors(&detected).build();
    let mut builder = Resource::builder_empty()
        .with_attributes(without_command_line(&detected))
        .with_attributes(own_attributes(config))
        .with_detectors(&sdk_and_environment);
    if let Some(name) = &config.default_service_name {
        builder = builder.with_service_name(name.clone());
    }
    builder.build()
}

/// The detected attributes less `process.command_args`: a flag such as
/// `--user-service-url http://user:secret@host` would put in every span the
/// credentials that the CLIENT spans' `url.full` takes care to redact.
fn without_command_line(detected: &Resource) -> Vec<KeyValue> {
    detected
        .iter()
        .filter(|(key, _)| key.as_str() != PROCESS_COMMAND_ARGS)
        .map(|(key, value)| KeyValue::new(key.clone(), value.clone()))
        .collect()
}

/// What no detector can know: the version of the service (not of this
/// crate) and the executable's file name.
fn own_attributes(config: &TelemetryConfig) -> Vec<KeyValue> {
    let mut attributes = vec![KeyValue::new(
        SERVICE_VERSION,
        config.service_version.clone(),
    )];
    if let Some(name) = executable_name() {
        attributes.push(KeyValue::new(PROCESS_EXECUTABLE_NAME, name));
    }
    attributes
}

fn executable_name() -> Option<String> {
    let path = std::env::current_exe().ok()?;
    Some(path.file_name()?.to_str()?.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::{Key, Value};
    use opentelemetry_semantic_conventions::resource::{
        HOST_NAME, PROCESS_PID, PROCESS_RUNTIME_NAME, SERVICE_INSTANCE_ID, SERVICE_NAME,
    };

    fn config() -> TelemetryConfig {
        TelemetryConfig::from_lookup("user-service", "1.2.3", |_| None).unwrap()
    }

    fn get(resource: &Resource, key: &'static str) -> Option<Value> {
        resource.get(&Key::from_static_str(key))
    }

    #[test]
    fn says_which_version_which_process_and_where() {
        let resource = resource(&config());
        assert_eq!(get(&resource, SERVICE_NAME), Some("user-service".into()));
        assert_eq!(get(&resource, SERVICE_VERSION), Some("1.2.3".into()));
        assert_eq!(
            get(&resource, PROCESS_PID),
            Some(i64::from(std::process::id()).into())
        );
        assert_eq!(get(&resource, PROCESS_RUNTIME_NAME), Some("rustc".into()));
        assert_eq!(
            get(&resource, PROCESS_EXECUTABLE_NAME),
            executable_name().map(Value::from)
        );
        assert_eq!(get(&resource, HOST_NAME), hostname().map(Value::from));
        assert!(get(&resource, "telemetry.sdk.name").is_some());
        assert_eq!(
            get(&resource, PROCESS_COMMAND_ARGS),
            None,
            "may hold credentials"
        );
    }

    #[test]
    fn the_instance_id_is_a_uuid_that_stays_for_the_life_of_the_process() {
        let first = get(&resource(&config()), SERVICE_INSTANCE_ID).expect("instance id");
        let second = get(&resource(&config()), SERVICE_INSTANCE_ID);
        assert_eq!(first.as_str().len(), 36, "{first}");
        assert_eq!(Some(first), second);
    }

    /// The host detector asks the `hostname` program; without it there is
    /// honestly no `host.name`.
    fn hostname() -> Option<String> {
        let output = std::process::Command::new("hostname").output().ok()?;
        let name = String::from_utf8(output.stdout).ok()?.trim().to_owned();
        (!name.is_empty()).then_some(name)
    }
}
