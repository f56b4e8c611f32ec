//! `latency-lab trace`: the waterfall of a trace that is not in the lab's
//! memory — one in a running Jaeger, or one saved as Jaeger JSON (by `up`,
//! or downloaded from Jaeger's UI).

use std::path::PathBuf;

use clap::{ArgGroup, Args};

use trace_view::jaeger_json::{self, JaegerJsonError};
use trace_view::terminal::DisplayArgs;
use trace_view::{waterfall, JaegerClient, TraceId};

#[derive(Debug, Clone, Args)]
#[command(group(ArgGroup::new("source").required(true).args(["jaeger", "file"])))]
pub struct TraceArgs {
    /// The trace id (1 to 32 hex digits), fetched with --jaeger.
    // Text, not a `TraceId`: a bad id is the command's one-line error
    // (exit 1), not a usage error.
    #[arg(requires = "jaeger")]
    pub trace_id: Option<String>,
    /// Fetch the trace from the Jaeger whose UI is at this URL, e.g.
    /// http://127.0.0.1:16686.
    #[arg(long, value_name = "URL", requires = "trace_id")]
    pub jaeger: Option<String>,
    /// Read the trace(s) from a Jaeger JSON file instead (the files `up`
    /// saves, or a trace downloaded from Jaeger's UI).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["trace_id", "jaeger"])]
    pub file: Option<PathBuf>,
    #[command(flatten)]
    pub display: DisplayArgs,
}

pub async fn run(args: TraceArgs) -> anyhow::Result<()> {
    let traces = match (&args.file, &args.jaeger, &args.trace_id) {
        (Some(file), _, _) => jaeger_json::read_file(file).map_err(|e| match e {
            // Already names the file and what failed.
            e @ JaegerJsonError::Io { .. } => anyhow::Error::new(e),
            e => anyhow::Error::new(e)
                .context(format!("cannot read the trace in {}", file.display())),
        })?,
        (None, Some(url), Some(id)) => {
            let trace_id = TraceId::parse(id)?;
            vec![JaegerClient::new(url)?.trace(trace_id).await?]
        }
        _ => unreachable!("clap requires --file, or a trace id with --jaeger"),
    };
    let display = args.display.resolve();
    for (i, trace) in traces.iter().enumerate() {
        if i > 0 {
            println!();
        }
        print!(
            "{}",
            waterfall::render(trace, display.width, display.colour)
        );
    }
    Ok(())
}
