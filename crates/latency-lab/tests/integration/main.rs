//! latency-lab's integration tests: one test binary (one link on a 2-core
//! machine instead of sixteen), one module per area. Every test starts the
//! real `latency-lab` binary as child processes on ephemeral ports.

mod common;

mod any_app;
mod bench;
mod cli;
mod configuration;
mod coordinated_omission;
mod docs;
mod explain;
mod export;
mod failures;
mod fan_out;
mod first_run;
mod jaeger_e2e;
mod load;
mod logs;
mod metrics_e2e;
mod mock_faults;
mod mock_timing;
mod otlp_tls;
mod percentiles;
mod propagation;
mod remedies;
mod scale_out;
mod scenarios;
mod server_limits;
mod soak;
mod stop_order;
mod trace_command;
mod trace_shape;
mod tracecontext;
mod up_metrics;
mod up_waterfalls;
mod view;
