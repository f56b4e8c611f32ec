//! A single-node KRaft broker as a child process.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use super::groups::{parse_describe, GroupOffsets};
use super::messages::{parse_messages, TopicMessage};
use super::{KafkaError, KafkaTools, KAFKA_LOG4J2, KAFKA_SERVER_PROPERTIES, KAFKA_TOOLS_LOG4J2};
use crate::process::free_loopback_addrs;
use crate::{repo_file, HarnessError, JaegerProcess};

/// The KRaft cluster id the storage is formatted with: any 16 bytes, base64url without padding
/// (`latency-lab-kraf`). One broker per temporary folder, so one fixed id is enough.
const CLUSTER_ID: &str = "bGF0ZW5jeS1sYWIta3JhZg";
/// Partitions of a topic the broker creates on first use.
const DEFAULT_PARTITIONS: u32 = 3;
/// Heap of the broker: Kafka's own default for a small broker, and it bounds the RSS.
const HEAP: [&str; 2] = ["-Xms256m", "-Xmx512m"];
/// A broker that does not answer within this is reported with its log.
const READY_TIMEOUT: Duration = Duration::from_secs(90);
/// How often a port clash (a port taken between allocation and start) is retried.
const START_ATTEMPTS: usize = 3;

/// A Kafka broker (and its KRaft controller) on loopback, with its data in a temporary folder.
/// Killed when dropped.
#[derive(Debug)]
pub struct KafkaBroker {
    /// The JVM (killed on drop).
    pub process: JaegerProcess,
    /// Where clients connect (the only address it advertises).
    pub addr: SocketAddr,
    tools: KafkaTools,
    // Last field: removed after the process is killed.
    _dir: tempfile::TempDir,
}

impl KafkaBroker {
    /// Formats a fresh storage folder and starts the broker on free loopback ports; returns once
    /// it answers a Kafka request. On a port clash it retries with new ports.
    pub fn start(tools: &KafkaTools) -> Result<Self, HarnessError> {
        let mut attempt = 1;
        loop {
            match Self::start_once(tools) {
                Err(e) if attempt < START_ATTEMPTS && is_port_clash(&e) => {
                    eprintln!("jaeger-harness: a Kafka port was taken meanwhile, retrying: {e}");
                    attempt += 1;
                }
                result => return result,
            }
        }
    }

    fn start_once(tools: &KafkaTools) -> Result<Self, HarnessError> {
        let dir = tempfile::Builder::new()
            .prefix("kafka-harness-")
            .tempdir()
            .map_err(|e| HarnessError::io("cannot create a temporary directory", e))?;
        let addrs = free_loopback_addrs(2)?;
        let (broker, controller) = (addrs[0], addrs[1]);
        let data = dir.path().join("data");
        let template_path = repo_file(KAFKA_SERVER_PROPERTIES);
        let template = std::fs::read_to_string(&template_path)
            .map_err(|e| HarnessError::io(format!("cannot read {}", template_path.display()), e))?;
        let properties = render(
            &template,
            &template_path,
            broker,
            controller,
            &data,
            DEFAULT_PARTITIONS,
        )?;
        let config = dir.path().join("server.properties");
        std::fs::write(&config, properties)
            .map_err(|e| HarnessError::io(format!("cannot write {}", config.display()), e))?;

        let mut format = tools.java_command(&repo_file(KAFKA_TOOLS_LOG4J2));
        format
            .arg("kafka.tools.StorageTool")
            .args(["format", "--cluster-id", CLUSTER_ID, "--config"])
            .arg(&config);
        run_tool(format, "kafka-storage format")?;

        let log4j2 = repo_file(KAFKA_LOG4J2);
        let process = JaegerProcess::builder(&tools.java)
            .name("kafka")
            .arg(HEAP[0])
            .arg(HEAP[1])
            .arg(format!("-Dlog4j2.configurationFile={}", log4j2.display()))
            .arg("-cp")
            .arg(tools.libs.join("*"))
            .arg("kafka.Kafka")
            .arg(&config)
            .wait_for_port(broker)
            .ready_timeout(READY_TIMEOUT)
            .start()?;
        let mut broker_process = KafkaBroker {
            process,
            addr: broker,
            tools: tools.clone(),
            _dir: dir,
        };
        broker_process.wait_until_serving()?;
        Ok(broker_process)
    }

    /// An open port is not yet a serving broker: wait until it answers ApiVersions.
    fn wait_until_serving(&mut self) -> Result<(), HarnessError> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if answers_api_versions(self.addr) {
                return Ok(());
            }
            if !self.process.is_running() || Instant::now() >= deadline {
                return Err(HarnessError::ReadinessTimeout {
                    name: "kafka".to_owned(),
                    timeout: READY_TIMEOUT,
                    waiting_for: format!("an ApiVersions answer from {}", self.addr),
                    log: self.process.log_path().to_path_buf(),
                    log_tail: self.process.log_tail(40),
                });
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// `host:port` for a client's bootstrap list.
    pub fn bootstrap(&self) -> String {
        self.addr.to_string()
    }

    /// The YAML flow list `KAFKA_BROKERS` of the Jaeger configs takes, e.g. `[127.0.0.1:9092]`.
    pub fn brokers_env(&self) -> String {
        format!("[{}]", self.addr)
    }

    /// Creates `topic` with `partitions` partitions (nothing when it exists).
    pub fn create_topic(&self, topic: &str, partitions: u32) -> Result<(), HarnessError> {
        let mut command = self.tools.java_command(&repo_file(KAFKA_TOOLS_LOG4J2));
        command
            .arg("org.apache.kafka.tools.TopicCommand")
            .args(["--bootstrap-server", &self.bootstrap()])
            .args(["--create", "--if-not-exists", "--topic", topic])
            .args(["--partitions", &partitions.to_string()])
            .args(["--replication-factor", "1"]);
        run_tool(command, "kafka-topics --create")?;
        Ok(())
    }

    /// The offsets of consumer group `group` (`kafka-consumer-groups --describe`).
    pub fn group_offsets(&self, group: &str) -> Result<GroupOffsets, HarnessError> {
        let mut command = self.tools.java_command(&repo_file(KAFKA_TOOLS_LOG4J2));
        command
            .arg("org.apache.kafka.tools.consumer.group.ConsumerGroupCommand")
            .args(["--bootstrap-server", &self.bootstrap()])
            .args(["--describe", "--group", group]);
        let shown = format!("kafka-consumer-groups --describe --group {group}");
        // The tool prints some failures (an unknown group) as an `Error:` line and exits 0.
        let (stdout, stderr) = run_tool(command, &shown)?;
        // A blank line ends the table before stderr's lines.
        let output = format!("{stdout}\n\n{stderr}");
        parse_describe(&output).map_err(|reason| {
            KafkaError::UnexpectedOutput {
                command: shown,
                reason,
                output,
            }
            .into()
        })
    }

    /// The partition, offset and key of the first `count` messages of `topic` (all of them
    /// when `count` is the sum of its end offsets); fewer when none comes for 10 s.
    pub fn topic_messages(
        &self,
        topic: &str,
        count: u64,
    ) -> Result<Vec<TopicMessage>, HarnessError> {
        let mut command = self.tools.java_command(&repo_file(KAFKA_TOOLS_LOG4J2));
        command
            .arg("org.apache.kafka.tools.consumer.ConsoleConsumer")
            .args(["--bootstrap-server", &self.bootstrap()])
            .args(["--topic", topic, "--from-beginning"])
            .args([
                "--max-messages",
                &count.to_string(),
                "--timeout-ms",
                "10000",
            ])
            .args(["--property", "print.partition=true"])
            .args(["--property", "print.offset=true"])
            .args(["--property", "print.key=true"])
            .args(["--property", "print.value=false"]);
        let shown = format!("kafka-console-consumer --topic {topic}");
        let (stdout, stderr) = run_tool(command, &shown)?;
        parse_messages(&stdout).map_err(|reason| {
            KafkaError::UnexpectedOutput {
                command: shown,
                reason,
                output: format!("{stdout}\n{stderr}"),
            }
            .into()
        })
    }

    /// Reads `group`'s offsets until every partition `0..partitions` of `topic` is listed with
    /// no lag; after `timeout` the error shows the last reading.
    pub fn wait_for_zero_lag(
        &self,
        group: &str,
        topic: &str,
        partitions: u32,
        timeout: Duration,
    ) -> Result<GroupOffsets, HarnessError> {
        let deadline = Instant::now() + timeout;
        loop {
            let last = match self.group_offsets(group) {
                Ok(offsets) if offsets.caught_up(topic, partitions) => return Ok(offsets),
                Ok(offsets) => format!("{offsets:?}"),
                Err(e) => e.to_string(),
            };
            if Instant::now() >= deadline {
                return Err(KafkaError::LagNotZero {
                    group: group.to_owned(),
                    timeout,
                    last,
                }
                .into());
            }
            std::thread::sleep(Duration::from_secs(1));
        }
    }
}

/// Fills the template's placeholders; one left over is an error (the template and this
/// harness disagree).
fn render(
    template: &str,
    path: &Path,
    broker: SocketAddr,
    controller: SocketAddr,
    data: &Path,
    partitions: u32,
) -> Result<String, KafkaError> {
    let text = template
        .replace("{{BROKER_ADDR}}", &broker.to_string())
        .replace("{{CONTROLLER_ADDR}}", &controller.to_string())
        .replace("{{LOG_DIR}}", &data.display().to_string())
        .replace("{{PARTITIONS}}", &partitions.to_string());
    // Comments may name the placeholders; settings may not keep one.
    let left = text
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .find_map(|l| {
            let start = l.find("{{")?;
            let end = l[start..].find("}}")? + start + 2;
            Some(l[start..end].to_owned())
        });
    match left {
        Some(placeholder) => Err(KafkaError::Template {
            path: path.to_path_buf(),
            placeholder,
        }),
        None => Ok(text),
    }
}

/// Runs a Kafka tool to completion; its stdout and stderr on success, both in the error.
fn run_tool(
    mut command: std::process::Command,
    shown: &str,
) -> Result<(String, String), HarnessError> {
    let output = command
        .output()
        .map_err(|e| HarnessError::io(format!("cannot run `{shown}`"), e))?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    if output.status.success() {
        Ok((stdout, String::from_utf8_lossy(&output.stderr).into_owned()))
    } else {
        Err(KafkaError::ToolFailed {
            command: shown.to_owned(),
            status: output.status,
            output: format!("{stdout}{}", String::from_utf8_lossy(&output.stderr)),
        }
        .into())
    }
}

/// Whether a Kafka request gets an answer: ApiVersions v0 (key 18), the request every client
/// sends first, answered once the broker processes requests.
fn answers_api_versions(addr: SocketAddr) -> bool {
    const CORRELATION_ID: i32 = 0x1a7e;
    let client_id = b"jaeger-harness";
    let mut request = Vec::new();
    request.extend_from_slice(&18i16.to_be_bytes());
    request.extend_from_slice(&0i16.to_be_bytes());
    request.extend_from_slice(&CORRELATION_ID.to_be_bytes());
    request.extend_from_slice(&(client_id.len() as i16).to_be_bytes());
    request.extend_from_slice(client_id);
    let attempt = || -> std::io::Result<bool> {
        let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(500))?;
        stream.set_read_timeout(Some(Duration::from_secs(2)))?;
        stream.set_write_timeout(Some(Duration::from_secs(2)))?;
        stream.write_all(&(request.len() as i32).to_be_bytes())?;
        stream.write_all(&request)?;
        // Size, correlation id, error code.
        let mut head = [0u8; 10];
        stream.read_exact(&mut head)?;
        let correlation = i32::from_be_bytes([head[4], head[5], head[6], head[7]]);
        let error = i16::from_be_bytes([head[8], head[9]]);
        Ok(correlation == CORRELATION_ID && error == 0)
    };
    attempt().unwrap_or(false)
}

fn is_port_clash(error: &HarnessError) -> bool {
    match error {
        HarnessError::ProcessExited { log_tail, .. }
        | HarnessError::ReadinessTimeout { log_tail, .. } => log_tail
            .to_ascii_lowercase()
            .contains("address already in use"),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_repository_template_renders_completely() {
        let path = repo_file(KAFKA_SERVER_PROPERTIES);
        let template = std::fs::read_to_string(&path).unwrap();
        let broker: SocketAddr = "127.0.0.1:19092".parse().unwrap();
        let controller: SocketAddr = "127.0.0.1:19093".parse().unwrap();
        let text = render(
            &template,
            &path,
            broker,
            controller,
            Path::new("/x/data"),
            5,
        )
        .unwrap();
        for line in [
            "listeners=PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093",
            "advertised.listeners=PLAINTEXT://127.0.0.1:19092",
            "controller.quorum.voters=1@127.0.0.1:19093",
            "log.dirs=/x/data",
            "num.partitions=5",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
    }

    #[test]
    fn a_placeholder_left_over_is_named() {
        let addr: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let error = render(
            "# {{COMMENTED}} is fine\nx={{UNKNOWN}}\n",
            Path::new("t"),
            addr,
            addr,
            Path::new("/d"),
            1,
        )
        .unwrap_err();
        assert!(error.to_string().contains("{{UNKNOWN}}"), "{error}");
    }
}
