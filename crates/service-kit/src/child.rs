//! Service processes started by another program: `latency-lab up` and the
//! tests start services as children, wait until they serve, and stop them
//! the way the services flush their spans.
//!
//! One helper so every caller gets the same care:
//!
//! - **Readiness** is the line of [`crate::readiness`], waited for with a
//!   timeout; a child that exits first is an error naming it (its own
//!   message is on the inherited stderr, just above).
//! - **stdout keeps draining** after that line, so a chatty child never
//!   blocks on a full pipe.
//! - **Stopping** is SIGTERM (what the services treat as "finish, flush and
//!   exit"), a deadline, then SIGKILL; signals are sent one way, [`send`].
//!   Several children stop front to back, the last started first, one at a
//!   time ([`Children`]).
//! - **Kill on drop**: a test that fails midway leaves no orphan.

use std::ffi::OsStr;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use thiserror::Error;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStderr, Command};

use crate::readiness::{self, Ready};

/// How long a service may take to announce itself unless told otherwise:
/// generous, for a shared two-core machine.
pub const DEFAULT_READY_WITHIN: Duration = Duration::from_secs(30);

#[derive(Debug, Error)]
pub enum ChildError {
    #[error("cannot start {service}: {source}")]
    Spawn { service: String, source: io::Error },
    #[error("{service} exited before announcing its address ({status}; see its error above)")]
    ExitedEarly { service: String, status: Outcome },
    #[error("{service} did not announce its address within {within:?}")]
    NotReady { service: String, within: Duration },
    #[error("cannot read the output of {service}: {source}")]
    Read { service: String, source: io::Error },
    #[error("cannot signal {service} (pid {pid}): {source}")]
    Signal {
        service: String,
        pid: u32,
        source: io::Error,
    },
    #[error("cannot wait for {service} (pid {pid}): {source}")]
    Wait {
        service: String,
        pid: u32,
        source: io::Error,
    },
}

/// How a child that exited early ended, when that could be learned.
#[derive(Debug)]
pub struct Outcome(Option<ExitStatus>);

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(status) => write!(f, "{status}"),
            None => f.write_str("still closing"),
        }
    }
}

/// A signal [`send`] can deliver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// SIGTERM: finish the requests in flight, flush, exit.
    Terminate,
    /// SIGINT: Ctrl-C, handled like SIGTERM.
    Interrupt,
    /// SIGKILL: no clean-up; the last resort.
    Kill,
}

impl Signal {
    fn number(self) -> libc::c_int {
        match self {
            Signal::Terminate => libc::SIGTERM,
            Signal::Interrupt => libc::SIGINT,
            Signal::Kill => libc::SIGKILL,
        }
    }
}

/// Sends `signal` to process `pid`.
pub fn send(pid: u32, signal: Signal) -> io::Result<()> {
    let pid = libc::pid_t::try_from(pid)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "pid out of range"))?;
    kill(pid, signal)
}

/// Sends `signal` to every process of group `group` (a child started as the
/// leader of its own group, and everything it started).
pub fn send_to_group(group: u32, signal: Signal) -> io::Result<()> {
    let group = libc::pid_t::try_from(group)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "group out of range"))?;
    kill(-group, signal)
}

#[allow(unsafe_code)]
fn kill(target: libc::pid_t, signal: Signal) -> io::Result<()> {
    // SAFETY: kill(2) has no memory-safety preconditions: it takes two
    // integers and touches no memory of ours. A wrong target is at worst
    // an error (ESRCH, EPERM), returned to the caller.
    let result = unsafe { libc::kill(target, signal.number()) };
    if result == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// A service to start: program, arguments, environment.
///
/// stdout is read for the readiness line; stderr is inherited unless
/// [`ServiceCommand::stderr`] says otherwise.
pub struct ServiceCommand {
    service: String,
    command: Command,
    ready_within: Duration,
}

impl ServiceCommand {
    /// `service` names the child in messages and reports.
    pub fn new(service: impl Into<String>, program: impl AsRef<OsStr>) -> Self {
        let mut command = Command::new(program);
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        Self {
            service: service.into(),
            command,
            ready_within: DEFAULT_READY_WITHIN,
        }
    }

    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.command.arg(arg);
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.command.args(args);
        self
    }

    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.command.env(key, value);
        self
    }

    pub fn env_remove(mut self, key: impl AsRef<OsStr>) -> Self {
        self.command.env_remove(key);
        self
    }

    /// The child leaves Ctrl-C (SIGINT) to this process while it lives
    /// ([`crate::signals`]): a terminal's Ctrl-C reaches the whole
    /// foreground process group at once, and this process then stops its
    /// children front to back ([`Children::stop_all`]). For service-kit
    /// services; SIGTERM stops them as ever.
    pub fn stopped_by_parent(self) -> Self {
        let (key, value) = crate::signals::parent_stops_env();
        self.env(key, value)
    }

    /// Where the child's stderr goes (`Stdio::piped()` to read its logs
    /// with [`ServiceChild::take_stderr`]).
    pub fn stderr(mut self, stderr: impl Into<Stdio>) -> Self {
        self.command.stderr(stderr);
        self
    }

    /// How long to wait for the readiness line.
    pub fn ready_within(mut self, within: Duration) -> Self {
        self.ready_within = within;
        self
    }

    /// Starts the child and waits for its readiness line.
    pub async fn start(mut self) -> Result<ServiceChild, ChildError> {
        let service = self.service;
        let mut child = self.command.spawn().map_err(|source| ChildError::Spawn {
            service: service.clone(),
            source,
        })?;
        let pid = child.id().unwrap_or_default();
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut lines = BufReader::new(stdout).lines();
        let announced = tokio::time::timeout(self.ready_within, async {
            loop {
                match lines.next_line().await {
                    Ok(Some(line)) => {
                        if let Some(ready) = readiness::parse(&line) {
                            return Ok(Some(ready));
                        }
                    }
                    Ok(None) => return Ok(None),
                    Err(source) => return Err(source),
                }
            }
        })
        .await;
        let ready = match announced {
            Ok(Ok(Some(ready))) => ready,
            Ok(Ok(None)) => {
                let status = tokio::time::timeout(Duration::from_secs(1), child.wait()).await;
                return Err(ChildError::ExitedEarly {
                    service,
                    status: Outcome(status.ok().and_then(Result::ok)),
                });
            }
            Ok(Err(source)) => return Err(ChildError::Read { service, source }),
            Err(_) => {
                return Err(ChildError::NotReady {
                    service,
                    within: self.ready_within,
                })
            }
        };
        // Keep draining stdout so the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(ServiceChild {
            service,
            ready,
            pid,
            child,
        })
    }
}

/// A running service; killed if dropped before [`ServiceChild::stop`].
pub struct ServiceChild {
    service: String,
    ready: Ready,
    pid: u32,
    child: Child,
}

/// A child that was stopped: what `up` reports for each.
#[derive(Debug)]
pub struct Stopped {
    pub service: String,
    pub pid: u32,
    pub status: ExitStatus,
    /// It outlived its deadline and was killed (no clean exit, no flush).
    pub killed: bool,
}

impl ServiceChild {
    /// The name it was started under.
    pub fn service(&self) -> &str {
        &self.service
    }

    /// Its readiness line: the name it announced and where it listens.
    pub fn ready(&self) -> &Ready {
        &self.ready
    }

    /// `http://<addr>`, from its readiness line.
    pub fn url(&self) -> String {
        self.ready.url()
    }

    pub fn addr(&self) -> SocketAddr {
        self.ready.addr
    }

    /// Its process id (kept after it exits, for reports).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Its stderr, when started with `stderr(Stdio::piped())`.
    pub fn take_stderr(&mut self) -> Option<ChildStderr> {
        self.child.stderr.take()
    }

    /// Sends it a signal (see [`send`]).
    pub fn signal(&self, signal: Signal) -> Result<(), ChildError> {
        send(self.pid, signal).map_err(|source| ChildError::Signal {
            service: self.service.clone(),
            pid: self.pid,
            source,
        })
    }

    /// SIGTERM, then waits up to `deadline` for it to exit, then SIGKILL.
    pub async fn stop(self, deadline: Duration) -> Result<Stopped, ChildError> {
        self.stop_with(Signal::Terminate, deadline).await
    }

    /// [`ServiceChild::stop`] with another signal first (SIGINT: Ctrl-C).
    pub async fn stop_with(
        mut self,
        signal: Signal,
        deadline: Duration,
    ) -> Result<Stopped, ChildError> {
        self.signal(signal)?;
        self.wait_or_kill(deadline).await
    }

    /// Waits up to `deadline` for the (already signalled) child to exit,
    /// then kills it.
    async fn wait_or_kill(&mut self, deadline: Duration) -> Result<Stopped, ChildError> {
        let wait_error = |service: &str, pid, source| ChildError::Wait {
            service: service.to_owned(),
            pid,
            source,
        };
        let (status, killed) = match tokio::time::timeout(deadline, self.child.wait()).await {
            Ok(status) => (
                status.map_err(|e| wait_error(&self.service, self.pid, e))?,
                false,
            ),
            Err(_) => {
                let _ = self.child.start_kill();
                let status = self
                    .child
                    .wait()
                    .await
                    .map_err(|e| wait_error(&self.service, self.pid, e))?;
                (status, true)
            }
        };
        Ok(Stopped {
            service: self.service.clone(),
            pid: self.pid,
            status,
            killed,
        })
    }
}

/// Several services, stopped front to back: the last started first.
///
/// A stack starts from the back (the services others call) to the front
/// (the one clients call), so each can reach what it needs from its first
/// request. It stops the other way round, one at a time: the front stops
/// taking requests and finishes those in flight while everything behind it
/// still serves them; stopping all at once would turn a request halfway
/// through its calls into an error.
#[derive(Default)]
pub struct Children {
    running: Vec<ServiceChild>,
}

impl Children {
    /// Starts one more service; its readiness, for its URL.
    pub async fn start(&mut self, command: ServiceCommand) -> Result<&ServiceChild, ChildError> {
        let child = command.start().await?;
        self.running.push(child);
        Ok(self.running.last().expect("just pushed"))
    }

    pub fn iter(&self) -> impl Iterator<Item = &ServiceChild> {
        self.running.iter()
    }

    /// Stops every child front to back: SIGTERM to the last started, wait
    /// for it to exit (up to `deadline`, then SIGKILL), then the one before
    /// it. One report per child, in the order they were stopped.
    pub async fn stop_all(&mut self, deadline: Duration) -> Vec<Result<Stopped, ChildError>> {
        let mut reports = Vec::with_capacity(self.running.len());
        while let Some(mut child) = self.running.pop() {
            reports.push(match child.signal(Signal::Terminate) {
                Ok(()) => child.wait_or_kill(deadline).await,
                // Could not be signalled (already gone?): do not wait the
                // whole deadline for it.
                Err(error) => {
                    let _ = child.wait_or_kill(Duration::ZERO).await;
                    Err(error)
                }
            });
        }
        reports
    }
}
