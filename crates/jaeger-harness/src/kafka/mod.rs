//! A real Apache Kafka broker, and Jaeger's two Kafka roles, for the Kafka pipeline test.
//!
//! * [`kafka_tools`] finds Java (17 or newer) and the Kafka jars: `KAFKA_LIBS`, else the cache,
//!   else `mvn` copies them from the repository's `deploy/kafka/pom.xml` into the cache once.
//!   [`kafka_for_tests`] skips or fails like [`crate::jaeger_for_tests`].
//! * [`KafkaBroker`] is a single-node KRaft broker (`deploy/kafka/server.properties`) on free
//!   loopback ports, killed on drop; it creates topics and reads a consumer group's offsets
//!   ([`GroupOffsets`], from Kafka's own `ConsumerGroupCommand`) and where a topic's messages
//!   are, by key ([`TopicMessage`], from its console consumer).
//! * [`KafkaCollector`] and [`KafkaIngester`] run the Jaeger binary with
//!   `deploy/configs/jaeger-kafka-collector.yaml` and `deploy/configs/jaeger-ingester.yaml`.

mod broker;
mod error;
mod groups;
mod jars;
mod messages;
mod roles;

pub use broker::KafkaBroker;
pub use error::KafkaError;
pub use groups::{GroupOffsets, PartitionOffsets};
pub use jars::{kafka_for_tests, kafka_tools, KafkaTools};
pub use messages::TopicMessage;
pub use roles::{CollectorRolePorts, IngesterPorts, KafkaCollector, KafkaIngester};

/// The Kafka release the jars, the `apache/kafka` image and the tests use.
pub const KAFKA_VERSION: &str = "4.1.1";
/// The Maven POM naming the broker's jars, relative to the workspace root.
pub const KAFKA_POM: &str = "deploy/kafka/pom.xml";
/// The broker's `server.properties` template, relative to the workspace root.
pub const KAFKA_SERVER_PROPERTIES: &str = "deploy/kafka/server.properties";
/// The broker's log4j2 configuration, relative to the workspace root.
pub const KAFKA_LOG4J2: &str = "deploy/kafka/log4j2.properties";
/// The command-line tools' log4j2 configuration (stdout kept for their answer).
pub const KAFKA_TOOLS_LOG4J2: &str = "deploy/kafka/tools-log4j2.properties";
/// Jaeger in the collector role (OTLP in, Kafka out), relative to the workspace root.
pub const KAFKA_COLLECTOR_CONFIG: &str = "deploy/configs/jaeger-kafka-collector.yaml";
/// Jaeger as ingester + Badger + query API (Kafka in), relative to the workspace root.
pub const KAFKA_INGESTER_CONFIG: &str = "deploy/configs/jaeger-ingester.yaml";
/// The ingester with a distributed backend (documented, validated, not run), relative to the
/// workspace root.
pub const KAFKA_INGESTER_DISTRIBUTED_CONFIG: &str =
    "deploy/configs/jaeger-ingester.distributed-storage.yaml";
