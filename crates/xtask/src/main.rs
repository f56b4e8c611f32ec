//! `cargo xtask` — developer tasks for latency-lab.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    about = "Developer tasks for latency-lab"
)]
struct Cli {
    #[command(subcommand)]
    command: Task,
}

#[derive(Debug, Subcommand)]
enum Task {
    /// Print the path of a Jaeger v2 binary, building it first if needed.
    ///
    /// Order: JAEGER_BIN (must be an executable file); else the cached build in
    /// $LATENCY_LAB_CACHE, or ${XDG_CACHE_HOME:-$HOME/.cache}/latency-lab, under
    /// jaeger-v1.76.0/jaeger; else build it with Go (module github.com/jaegertracing/jaeger
    /// v1.76.0, the code of Jaeger 2.13.0) and cache it. Needs Go >= 1.24.6 on PATH for the
    /// build. Progress goes to stderr; only the path goes to stdout, so
    /// `JAEGER_BIN=$(cargo xtask jaeger)` works.
    #[command(verbatim_doc_comment)]
    Jaeger,
    /// Print the path of otelcol-latency-lab, the collector of deploy/collector/ (the
    /// scale-out pipeline's front and tail-sampling tiers), building it first if needed.
    ///
    /// Order: OTELCOL_BIN; else the cached build of the current sources (under the same cache
    /// as `jaeger`); else `go build` in deploy/collector/ (GOSUMDB=off, go.sum pins every
    /// hash; see deploy/collector/build.sh). Only the path goes to stdout.
    #[command(verbatim_doc_comment)]
    Otelcol,
    /// Validate deploy/'s Kubernetes manifests offline: `kustomize build deploy/` piped to
    /// `kubeconform -strict` with local Kubernetes schemas; prints kubeconform's report.
    ///
    /// The tools come from KUSTOMIZE_BIN, KUBECONFORM_BIN and KUBERNETES_SCHEMAS_DIR, else
    /// from the same cache as `jaeger`, built there with Go (kustomize, kubeconform) and
    /// fetched with pip (the kubernetes-validate package's schemas) the first time.
    #[command(verbatim_doc_comment)]
    K8s,
    /// The cost of observing: the aggregator's CPU per request and its tail
    /// latency with tracing on, the SDK disabled, sampling off and metrics
    /// off, over interleaved rounds, with PASS/MISS against issue 15's
    /// targets. Run the measurement with --release.
    Bench(xtask::bench::BenchArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Task::Jaeger => print_path(jaeger_harness::jaeger_binary()),
        Task::Otelcol => print_path(jaeger_harness::otelcol_binary()),
        Task::K8s => validate_manifests(),
        Task::Bench(args) => bench(&args),
    }
}

/// A built binary's path on stdout (so `$(cargo xtask …)` works), or the error on stderr.
fn print_path(found: Result<std::path::PathBuf, jaeger_harness::HarnessError>) -> ExitCode {
    match found {
        Ok(path) => {
            println!("{}", path.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `cargo xtask k8s`: kubeconform's report on stdout; failure when a manifest is invalid.
fn validate_manifests() -> ExitCode {
    let checked = jaeger_harness::kube_tools().and_then(|tools| {
        let manifests = tools.build_repository()?;
        tools.validate(&manifests)
    });
    match checked {
        Ok(validation) => {
            print!("{}", validation.report);
            if validation.valid {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the benchmark on a runtime of its own and prints the report.
///
/// With `--release` from a debug `cargo xtask`, runs itself again built in
/// release: its OTLP receiver shares the two cores with the services, and a
/// debug receiver would weigh on the very numbers it helps to measure.
fn bench(args: &xtask::bench::BenchArgs) -> ExitCode {
    if args.release && cfg!(debug_assertions) && args.lab.is_none() {
        return match xtask::bench::rerun_in_release() {
            Ok(code) => code,
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start a Tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let report = if args.instructions {
        runtime
            .block_on(xtask::bench::run_instructions(args))
            .map(|report| report.to_string())
    } else {
        runtime
            .block_on(xtask::bench::run(args))
            .map(|report| report.to_string())
    };
    match report {
        Ok(report) => {
            print!("{report}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
