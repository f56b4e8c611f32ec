//! What can go wrong with the Kafka broker and its tools.

use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::Duration;

/// Failures of the Kafka side of the harness; [`crate::HarnessError::Kafka`] carries them.
#[derive(Debug, thiserror::Error)]
pub enum KafkaError {
    /// `mvn` could not copy the jars.
    #[error("`{command}` failed ({status}); its output is above on stderr")]
    JarsNotCopied { command: String, status: ExitStatus },

    /// A Kafka tool (storage format, topic or consumer-group command) failed; its output is
    /// captured here because the tools run quietly.
    #[error("`{command}` failed ({status}):\n{output}")]
    ToolFailed {
        command: String,
        status: ExitStatus,
        output: String,
    },

    /// A tool answered something this harness cannot read.
    #[error("`{command}`: {reason}; its output:\n{output}")]
    UnexpectedOutput {
        command: String,
        reason: String,
        output: String,
    },

    /// A consumer group did not catch up in time.
    #[error("consumer group {group} still lags after {timeout:?}; last reading: {last}")]
    LagNotZero {
        group: String,
        timeout: Duration,
        last: String,
    },

    /// The `server.properties` template has a placeholder the harness does not fill.
    #[error("{path}: placeholder {placeholder} is not filled by the harness")]
    Template { path: PathBuf, placeholder: String },
}
