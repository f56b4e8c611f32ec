//! The three services as child processes of `up`: started as `latency-lab
//! serve <service>`, stopped with SIGTERM so they flush their spans; and the
//! signals that stop `up` itself.

use std::process::Stdio;
use std::time::Duration;

use anyhow::Context as _;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::signal::unix::{signal, Signal, SignalKind};

/// Ctrl-C (SIGINT) or SIGTERM, registered once up front.
pub(super) struct Stop {
    interrupt: Signal,
    terminate: Signal,
}

impl Stop {
    pub(super) fn install() -> std::io::Result<Stop> {
        Ok(Stop {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
        })
    }

    pub(super) async fn wait(&mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {},
            _ = self.terminate.recv() => {},
        }
    }
}

/// The child processes; stopped with SIGTERM so they flush their spans.
#[derive(Default)]
pub(super) struct Children {
    running: Vec<(&'static str, Child)>,
}

impl Children {
    pub(super) async fn start(
        &mut self,
        name: &'static str,
        args: &[&str],
        endpoint: &str,
    ) -> anyhow::Result<String> {
        let exe = std::env::current_exe().context("cannot find the latency-lab binary")?;
        let mut cmd = Command::new(exe);
        cmd.arg("serve").arg(name).args(args);
        cmd.env("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
            .env("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
            .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
            .env_remove("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
            .env_remove("OTEL_SERVICE_NAME");
        if std::env::var_os("OTEL_BSP_SCHEDULE_DELAY").is_none() {
            cmd.env("OTEL_BSP_SCHEDULE_DELAY", "100");
        }
        if std::env::var_os("RUST_LOG").is_none() {
            cmd.env("RUST_LOG", "warn");
        }
        cmd.stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        let mut child = cmd
            .spawn()
            .with_context(|| format!("cannot start {name}"))?;
        let stdout = child.stdout.take().context("child stdout")?;
        self.running.push((name, child));
        let mut lines = BufReader::new(stdout).lines();
        let url = tokio::time::timeout(Duration::from_secs(30), async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some((_, url)) = line.split_once(" listening on ") {
                    return Some(url.trim().to_owned());
                }
            }
            None
        })
        .await
        .ok()
        .flatten()
        .with_context(|| format!("{name} did not start (see its error above)"))?;
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(url)
    }

    pub(super) async fn stop(&mut self) {
        for (_, child) in &self.running {
            if let Some(pid) = child.id() {
                terminate(pid);
            }
        }
        for (name, child) in &mut self.running {
            let pid = child.id().unwrap_or_default();
            match tokio::time::timeout(Duration::from_secs(10), child.wait()).await {
                Ok(_) => println!("stopped {name} (pid {pid})"),
                Err(_) => {
                    eprintln!("{name} did not stop within 10 s; killing it");
                    let _ = child.kill().await;
                }
            }
        }
        self.running.clear();
    }
}

/// SIGTERM: the signal the services treat as "flush and exit".
fn terminate(pid: u32) {
    let Ok(pid) = i32::try_from(pid) else { return };
    // SAFETY: kill(2) has no memory-safety preconditions; the pid is one of
    // our own children that has not been reaped yet.
    #[allow(unsafe_code)]
    unsafe {
        libc::kill(pid, libc::SIGTERM);
    }
}
