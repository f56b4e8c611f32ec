//! The configurations compared: the same binaries, told by the standard
//! OpenTelemetry variables what to do.

/// One way to run the three services.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    pub name: &'static str,
    pub env: &'static [(&'static str, &'static str)],
    /// Whether every request's spans should reach the receiver.
    pub exports_spans: bool,
}

pub const TRACING_ON: Config = Config {
    name: "tracing on",
    env: &[],
    exports_spans: true,
};
pub const SDK_DISABLED: Config = Config {
    name: "SDK disabled",
    env: &[("OTEL_SDK_DISABLED", "true")],
    exports_spans: false,
};
pub const SAMPLING_OFF: Config = Config {
    name: "sampling off",
    env: &[("OTEL_TRACES_SAMPLER", "always_off")],
    exports_spans: false,
};
pub const METRICS_OFF: Config = Config {
    name: "metrics off",
    env: &[("OTEL_METRICS_EXPORTER", "none")],
    exports_spans: true,
};

/// In the order every round runs them.
pub const ALL: [Config; 4] = [TRACING_ON, SDK_DISABLED, SAMPLING_OFF, METRICS_OFF];
