//! The signals that stop a service: SIGTERM always; Ctrl-C (SIGINT) too,
//! except in a service whose parent stops it ([`crate::child::ServiceCommand::stopped_by_parent`],
//! what `latency-lab up` does).
//!
//! A terminal's Ctrl-C reaches every process of its foreground group at
//! once: `up` and its three services would all stop together, and a
//! request halfway through its calls would meet a stopped dependency. So
//! such a service leaves Ctrl-C to its parent, which stops the stack front
//! to back with SIGTERM — but only while that parent lives: orphaned, it
//! stops on Ctrl-C again.

/// Holds the pid of the parent that stops this service.
const PARENT_STOPS: &str = "SERVICE_KIT_PARENT_STOPS";

/// The environment that tells a child its parent (this process) stops it.
pub(crate) fn parent_stops_env() -> (&'static str, String) {
    (PARENT_STOPS, std::process::id().to_string())
}

/// Resolves when the service must stop (see the module's doc).
pub async fn shutdown_signal() {
    let Some(parent) = parent_that_stops_us() else {
        return telemetry::shutdown_signal().await;
    };
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut interrupt), Ok(mut terminate)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        return telemetry::shutdown_signal().await;
    };
    loop {
        tokio::select! {
            _ = terminate.recv() => return,
            _ = interrupt.recv() => {
                if std::os::unix::process::parent_id() != parent {
                    return;
                }
                tracing::info!("Ctrl-C left to the parent process, which stops the services front to back");
            }
        }
    }
}

/// The parent named by the environment, if it is really ours: a variable
/// inherited by some other process does not take its Ctrl-C away.
fn parent_that_stops_us() -> Option<u32> {
    let named: u32 = std::env::var(PARENT_STOPS).ok()?.trim().parse().ok()?;
    (std::os::unix::process::parent_id() == named).then_some(named)
}
