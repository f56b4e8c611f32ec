//! The command line of a mock, shared by its own binary and
//! `latency-lab serve <mock>`: the same flags for both mocks, named and
//! defaulted from their [`MockSpec`].
//!
//! `clap`'s derive takes only literal environment names and defaults, so
//! [`Flags`] declares what the mocks share and [`describe`] fills in, at
//! run time, what the spec says: `<PREFIX>_LISTEN` and friends, the default
//! address and latency, and the baggage keys named in the help.

use std::marker::PhantomData;
use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::time::Duration;

use clap::{Arg, ArgMatches, Command};
use mock_db::latency::units::format_duration;
use mock_db::latency::{FaultRates, LatencySpec, Probability};
use mock_db::mock::MockSettings;
use service_kit::cli::{parse_duration, CommonArgs};
use service_kit::{ServeError, Service};

use crate::{MockKind, MockSpec};

/// Where the help names a baggage key, `<short>` stands for the mock's short
/// name (`latency.<short>` is `latency.user` for the user service).
const SHORT: &str = "<short>";

/// The flags of a mock. Environment names and two defaults come from its
/// spec: see [`describe`].
#[derive(Debug, Clone, clap::Args)]
pub struct Flags {
    /// Address to listen on (port 0 picks a free port and prints it).
    #[arg(long)]
    pub listen: SocketAddr,
    /// Simulated database latency per lookup: a duration (100ms, 1.5s) or a
    /// model — uniform(50ms,150ms), normal(mean=100ms,stddev=20ms),
    /// lognormal(median=80ms,p99=900ms), pareto(scale=50ms,shape=1.5) —
    /// optionally followed by +spike(p=0.01,1s). Baggage
    /// `latency.<short>=SPEC` overrides it for one request.
    #[arg(long)]
    pub latency: LatencySpec,
    /// Fraction of lookups (0 to 1) that fail with 503 after their delay.
    /// Baggage `fail.<short>=RATE` overrides it for one request.
    #[arg(long, default_value = "0")]
    pub error_rate: Probability,
    /// Fraction of lookups (0 to 1) that never answer: the request ends when
    /// the client gives up. Baggage `hang.<short>=RATE` overrides it.
    #[arg(long, default_value = "0")]
    pub hang_rate: Probability,
    /// Simulated database connection pool: at most N lookups at once, the
    /// rest queue (traced as `db.pool.wait`). Unlimited when not set.
    #[arg(long)]
    pub db_pool_size: Option<NonZeroUsize>,
    /// Longest delay a lookup may be asked for: a longer `--latency` stops
    /// the service, a longer baggage override is refused with 400, and a
    /// longer random draw is cut to it.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub max_delay: Duration,
    /// Seed for the random draws (latency, faults), so that a run can be
    /// repeated: the same requests in the same order draw the same delays.
    /// From the operating system when not set.
    #[arg(long)]
    pub seed: Option<u64>,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// Gives [`Flags`] the spec's environment names, defaults and baggage keys.
pub fn describe(command: Command, spec: &MockSpec) -> Command {
    let env = |suffix: &str| format!("{}_{suffix}", spec.env_prefix);
    let short = spec.name.short;
    command
        .mut_arg("listen", |arg| {
            arg.env(env("LISTEN"))
                .default_value(spec.default_listen.to_string())
                .required(false)
        })
        .mut_arg("latency", |arg| {
            naming_keys(arg, short)
                .env(env("LATENCY"))
                .default_value(format_duration(spec.default_latency))
                .required(false)
        })
        .mut_arg("error_rate", |arg| {
            naming_keys(arg, short).env(env("ERROR_RATE"))
        })
        .mut_arg("hang_rate", |arg| {
            naming_keys(arg, short).env(env("HANG_RATE"))
        })
        .mut_arg("db_pool_size", |arg| arg.env(env("DB_POOL_SIZE")))
        .mut_arg("max_delay", |arg| arg.env(env("MAX_DELAY")))
        .mut_arg("seed", |arg| arg.env(env("SEED")))
}

/// The help with `<short>` replaced by the mock's short name.
fn naming_keys(arg: Arg, short: &str) -> Arg {
    let named = |text: &clap::builder::StyledStr| text.to_string().replace(SHORT, short);
    let help = arg.get_help().map(named);
    let long_help = arg.get_long_help().map(named);
    let arg = match help {
        Some(help) => arg.help(help),
        None => arg,
    };
    match long_help {
        Some(long_help) => arg.long_help(long_help),
        None => arg,
    }
}

impl Flags {
    /// The simulated database's settings.
    pub fn settings(&self) -> MockSettings {
        MockSettings {
            latency: self.latency.clone(),
            faults: FaultRates {
                error: self.error_rate,
                hang: self.hang_rate,
            },
            db_pool_size: self.db_pool_size,
            max_delay: self.max_delay,
        }
    }

    /// Serves the mock until Ctrl-C/SIGTERM, which also releases the
    /// requests the mock holds (hung or queued for a connection) so they
    /// never delay the exit.
    pub async fn run(self, spec: &'static MockSpec) -> Result<(), ServeError> {
        let mock = spec
            .mock_seeded(self.settings(), self.seed)
            .map_err(|e| ServeError::Build(e.to_string()))?;
        let shutdown = mock.shutdown_token();
        let service = Service {
            name: spec.name.service,
            version: env!("CARGO_PKG_VERSION"),
            listen: self.listen,
            log_format: self.common.log_format,
            limits: self.common.server.limits(),
        };
        service_kit::run_until(service, shutdown, move || Ok(crate::router(spec, mock))).await
    }
}

/// The command line of mock `M`: [`Flags`] described by `M`'s spec. A type
/// per mock, because `clap` builds a parser from a type.
#[derive(Debug, Clone)]
pub struct Args<M> {
    pub flags: Flags,
    mock: PhantomData<M>,
}

impl<M: MockKind> Args<M> {
    pub async fn run(self) -> Result<(), ServeError> {
        self.flags.run(M::SPEC).await
    }
}

impl<M: MockKind> clap::FromArgMatches for Args<M> {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        Ok(Self {
            flags: <Flags as clap::FromArgMatches>::from_arg_matches(matches)?,
            mock: PhantomData,
        })
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        <Flags as clap::FromArgMatches>::update_from_arg_matches(&mut self.flags, matches)
    }
}

impl<M: MockKind> clap::Args for Args<M> {
    fn augment_args(command: Command) -> Command {
        keeping_about(command, |c| {
            describe(<Flags as clap::Args>::augment_args(c), M::SPEC)
        })
    }

    fn augment_args_for_update(command: Command) -> Command {
        keeping_about(command, |c| {
            describe(<Flags as clap::Args>::augment_args_for_update(c), M::SPEC)
        })
    }
}

impl<M: MockKind> clap::CommandFactory for Args<M> {
    fn command() -> Command {
        <Self as clap::Args>::augment_args(binary(M::SPEC))
    }

    fn command_for_update() -> Command {
        <Self as clap::Args>::augment_args_for_update(binary(M::SPEC))
    }
}

impl<M: MockKind> clap::Parser for Args<M> {}

/// Runs `augment` but keeps the command's summary: the derive would put
/// [`Flags`]' doc comment there, and the summary belongs to the mock.
fn keeping_about(command: Command, augment: impl FnOnce(Command) -> Command) -> Command {
    let about = command.get_about().cloned();
    let long_about = command.get_long_about().cloned();
    let command = augment(command)
        .about(None::<&str>)
        .long_about(None::<&str>);
    let command = match about {
        Some(about) => command.about(about),
        None => command,
    };
    match long_about {
        Some(long_about) => command.long_about(long_about),
        None => command,
    }
}

/// The mock's own binary: its name, version and one-line summary.
fn binary(spec: &MockSpec) -> Command {
    Command::new(spec.name.service)
        .version(env!("CARGO_PKG_VERSION"))
        .about(spec.about)
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::*;
    use crate::{OrderService, UserService};

    /// Each mock's help names its own variables, defaults and baggage keys.
    #[test]
    fn each_mock_is_described_by_its_spec() {
        for (help, prefix, listen, latency, short) in [
            (
                Args::<UserService>::command().render_help().to_string(),
                "USER_SERVICE",
                "127.0.0.1:5001",
                "100ms",
                "user",
            ),
            (
                Args::<OrderService>::command().render_help().to_string(),
                "ORDER_SERVICE",
                "127.0.0.1:5002",
                "200ms",
                "orders",
            ),
        ] {
            for suffix in [
                "LISTEN",
                "LATENCY",
                "ERROR_RATE",
                "HANG_RATE",
                "DB_POOL_SIZE",
                "MAX_DELAY",
            ] {
                assert!(
                    help.contains(&format!("[env: {prefix}_{suffix}=")),
                    "{help}"
                );
            }
            assert!(help.contains(&format!("[default: {listen}]")), "{help}");
            assert!(help.contains(&format!("[default: {latency}]")), "{help}");
            for key in ["latency", "fail", "hang"] {
                assert!(help.contains(&format!("`{key}.{short}=")), "{help}");
            }
            assert!(!help.contains(SHORT), "{help}");
        }
    }

    #[test]
    fn defaults_come_from_the_spec() {
        let users = Args::<UserService>::try_parse_from(["user-service"]).unwrap();
        let orders = Args::<OrderService>::try_parse_from(["order-service"]).unwrap();
        assert_eq!(users.flags.listen.port(), 5001);
        assert_eq!(orders.flags.listen.port(), 5002);
        assert_eq!(users.flags.latency.to_string(), "100ms");
        assert_eq!(orders.flags.latency.to_string(), "200ms");
    }
}
