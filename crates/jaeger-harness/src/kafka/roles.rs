//! The Jaeger binary in its two Kafka roles: collector (OTLP in, Kafka out) and ingester
//! (Kafka in, Badger, query API).

use std::net::SocketAddr;
use std::path::Path;

use trace_view::{JaegerClient, JaegerError};

use super::{KAFKA_COLLECTOR_CONFIG, KAFKA_INGESTER_CONFIG};
use crate::process::{free_loopback_addrs, http_url, start_with_retries};
use crate::{repo_file, HarnessError, JaegerProcess};

/// Loopback addresses for every port `jaeger-kafka-collector.yaml` opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CollectorRolePorts {
    /// `JAEGER_OTLP_GRPC_ENDPOINT`
    pub otlp_grpc: SocketAddr,
    /// `JAEGER_OTLP_HTTP_ENDPOINT`
    pub otlp_http: SocketAddr,
    /// `JAEGER_HEALTHCHECK_ENDPOINT`
    pub health: SocketAddr,
    /// `JAEGER_METRICS_HOST` / `JAEGER_METRICS_PORT`
    pub metrics: SocketAddr,
}

impl CollectorRolePorts {
    /// Four free loopback ports.
    pub fn allocate() -> Result<Self, HarnessError> {
        let a = free_loopback_addrs(4)?;
        Ok(CollectorRolePorts {
            otlp_grpc: a[0],
            otlp_http: a[1],
            health: a[2],
            metrics: a[3],
        })
    }

    /// The config's environment variables for these ports.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            (
                "JAEGER_OTLP_GRPC_ENDPOINT".into(),
                self.otlp_grpc.to_string(),
            ),
            (
                "JAEGER_OTLP_HTTP_ENDPOINT".into(),
                self.otlp_http.to_string(),
            ),
            (
                "JAEGER_HEALTHCHECK_ENDPOINT".into(),
                self.health.to_string(),
            ),
            ("JAEGER_METRICS_HOST".into(), self.metrics.ip().to_string()),
            (
                "JAEGER_METRICS_PORT".into(),
                self.metrics.port().to_string(),
            ),
        ]
    }
}

/// Loopback addresses for every port `jaeger-ingester.yaml` opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IngesterPorts {
    /// `JAEGER_QUERY_HTTP_ENDPOINT`
    pub query_http: SocketAddr,
    /// `JAEGER_QUERY_GRPC_ENDPOINT`
    pub query_grpc: SocketAddr,
    /// `JAEGER_HEALTHCHECK_ENDPOINT`
    pub health: SocketAddr,
    /// `JAEGER_METRICS_HOST` / `JAEGER_METRICS_PORT`
    pub metrics: SocketAddr,
}

impl IngesterPorts {
    /// Four free loopback ports.
    pub fn allocate() -> Result<Self, HarnessError> {
        let a = free_loopback_addrs(4)?;
        Ok(IngesterPorts {
            query_http: a[0],
            query_grpc: a[1],
            health: a[2],
            metrics: a[3],
        })
    }

    /// The config's environment variables for these ports.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            (
                "JAEGER_QUERY_HTTP_ENDPOINT".into(),
                self.query_http.to_string(),
            ),
            (
                "JAEGER_QUERY_GRPC_ENDPOINT".into(),
                self.query_grpc.to_string(),
            ),
            (
                "JAEGER_HEALTHCHECK_ENDPOINT".into(),
                self.health.to_string(),
            ),
            ("JAEGER_METRICS_HOST".into(), self.metrics.ip().to_string()),
            (
                "JAEGER_METRICS_PORT".into(),
                self.metrics.port().to_string(),
            ),
        ]
    }
}

/// Jaeger in the collector role: receives OTLP and writes every span to Kafka.
#[derive(Debug)]
pub struct KafkaCollector {
    /// The process (killed on drop).
    pub process: JaegerProcess,
    /// Its ports.
    pub ports: CollectorRolePorts,
}

impl KafkaCollector {
    /// Starts `binary` with `jaeger-kafka-collector.yaml`, writing to `topic` on `brokers` (the
    /// `KAFKA_BROKERS` YAML flow list, see [`super::KafkaBroker::brokers_env`]), with extra
    /// environment variables.
    pub fn start(
        binary: &Path,
        brokers: &str,
        topic: &str,
        extra_env: &[(&str, &str)],
    ) -> Result<Self, HarnessError> {
        let (process, ports) = start_with_retries(CollectorRolePorts::allocate, |ports| {
            JaegerProcess::builder(binary)
                .name("jaeger-kafka-collector")
                .config(repo_file(KAFKA_COLLECTOR_CONFIG))
                .envs(ports.env())
                .env("KAFKA_BROKERS", brokers)
                .env("KAFKA_TOPIC", topic)
                .envs(extra_env.iter().copied())
                .health_check(ports.health, "/status")
                .wait_for_port(ports.otlp_grpc)
                .wait_for_port(ports.otlp_http)
                .start()
        })?;
        Ok(KafkaCollector { process, ports })
    }

    /// OTLP/gRPC endpoint for an exporter, e.g. `http://127.0.0.1:4317`.
    pub fn otlp_grpc_endpoint(&self) -> String {
        http_url(self.ports.otlp_grpc)
    }

    /// OTLP/HTTP base endpoint (traces go to `<this>/v1/traces`).
    pub fn otlp_http_endpoint(&self) -> String {
        http_url(self.ports.otlp_http)
    }
}

/// Jaeger as ingester, storage and query API: consumes the topic into Badger in `badger_dir`
/// and serves the query API from it.
#[derive(Debug)]
pub struct KafkaIngester {
    /// The process (killed — SIGKILL, a crash — on drop).
    pub process: JaegerProcess,
    /// Its ports.
    pub ports: IngesterPorts,
}

impl KafkaIngester {
    /// Starts `binary` with `jaeger-ingester.yaml`, reading `topic` on `brokers` as consumer
    /// group `group`, Badger in `badger_dir` (kept by the caller: it outlives the process, which
    /// is the point), with extra environment variables.
    pub fn start(
        binary: &Path,
        brokers: &str,
        topic: &str,
        group: &str,
        badger_dir: &Path,
        extra_env: &[(&str, &str)],
    ) -> Result<Self, HarnessError> {
        let (process, ports) = start_with_retries(IngesterPorts::allocate, |ports| {
            JaegerProcess::builder(binary)
                .name("jaeger-ingester")
                .config(repo_file(KAFKA_INGESTER_CONFIG))
                .envs(ports.env())
                .env("KAFKA_BROKERS", brokers)
                .env("KAFKA_TOPIC", topic)
                .env("KAFKA_GROUP_ID", group)
                .env("BADGER_DIRECTORY", badger_dir)
                .envs(extra_env.iter().copied())
                .health_check(ports.health, "/status")
                .wait_for_port(ports.query_http)
                .query_url(http_url(ports.query_http))
                .start()
        })?;
        Ok(KafkaIngester { process, ports })
    }

    /// The query API's base URL, e.g. `http://127.0.0.1:16686`.
    pub fn query_url(&self) -> String {
        http_url(self.ports.query_http)
    }

    /// A client for the query API (trace-view's).
    pub fn query(&self) -> Result<JaegerClient, JaegerError> {
        JaegerClient::new(&self.query_url())
    }
}
