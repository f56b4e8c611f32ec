//! `--out DIR`: a run as files other tools read — one CSV row per request,
//! the report's numbers as JSON, and the two SVG plots.

use std::fs::File;
use std::io::{BufWriter, Write as _};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::plot::{self, PlotError};
use super::record::{Outcome, Record, Run};
use super::summary::{is_success, Summary};

/// The files [`write_dir`] writes, in its order.
pub const REQUESTS_CSV: &str = "requests.csv";
pub const SUMMARY_JSON: &str = "summary.json";
pub const PERCENTILES_SVG: &str = "percentiles.svg";
pub const LATENCY_OVER_TIME_SVG: &str = "latency-over-time.svg";

/// A file of `--out` could not be written.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("cannot create the folder {}: {source}", path.display())]
    Folder {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {}: {source}", path.display())]
    Csv { path: PathBuf, source: csv::Error },
    #[error("cannot write {}: {source}", path.display())]
    Json {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error(transparent)]
    Plot(#[from] PlotError),
}

/// One row of `requests.csv`. Times in µs from the run's start; latency
/// from the *intended* send time (open loop) or the send (closed loop).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestRow {
    /// The variant's label (the URL for a single run).
    pub variant: String,
    pub intended_us: u64,
    pub sent_us: u64,
    pub latency_us: u64,
    /// `ok` (a 1xx–3xx answer), `http_error`, `timeout`, `connect`, `other`.
    pub outcome: String,
    /// The HTTP status when an answer arrived.
    pub status: Option<u16>,
    /// Why an `other` failure failed.
    pub detail: Option<String>,
    /// 32 hex digits, from the answer's `traceresponse` header.
    pub trace_id: Option<String>,
}

impl RequestRow {
    pub fn of(run: &Run, record: &Record) -> Self {
        let (outcome, status, detail) = match &record.outcome {
            Outcome::Status(s) if is_success(&record.outcome) => ("ok", Some(*s), None),
            Outcome::Status(s) => ("http_error", Some(*s), None),
            Outcome::Timeout => ("timeout", None, None),
            Outcome::Connect => ("connect", None, None),
            Outcome::Other(reason) => ("other", None, Some(reason.clone())),
        };
        RequestRow {
            variant: run
                .variants
                .get(record.variant)
                .map_or_else(|| format!("#{}", record.variant), |v| v.label.clone()),
            intended_us: whole_micros(record.intended),
            sent_us: whole_micros(record.sent),
            latency_us: whole_micros(record.latency),
            outcome: outcome.to_owned(),
            status,
            detail,
            trace_id: record.trace_id.map(|id| id.to_string()),
        }
    }
}

/// Writes `requests.csv`, `summary.json`, `percentiles.svg` and
/// `latency-over-time.svg` into `dir` (created if missing; files there of
/// the same names are replaced). Returns their paths.
pub fn write_dir(run: &Run, dir: &Path) -> Result<Vec<PathBuf>, OutputError> {
    std::fs::create_dir_all(dir).map_err(|source| OutputError::Folder {
        path: dir.to_owned(),
        source,
    })?;
    let paths = [
        REQUESTS_CSV,
        SUMMARY_JSON,
        PERCENTILES_SVG,
        LATENCY_OVER_TIME_SVG,
    ]
    .map(|name| dir.join(name));
    write_csv(run, &paths[0])?;
    write_json(run, &paths[1])?;
    write_text(&paths[2], &plot::percentile_spectrum_svg(run)?)?;
    write_text(&paths[3], &plot::latency_over_time_svg(run)?)?;
    Ok(paths.to_vec())
}

fn write_csv(run: &Run, path: &Path) -> Result<(), OutputError> {
    let fail = |source| OutputError::Csv {
        path: path.to_owned(),
        source,
    };
    let mut writer = csv::Writer::from_path(path).map_err(fail)?;
    for record in &run.records {
        writer
            .serialize(RequestRow::of(run, record))
            .map_err(fail)?;
    }
    // An empty run still gets its header row.
    if run.records.is_empty() {
        writer
            .write_record([
                "variant",
                "intended_us",
                "sent_us",
                "latency_us",
                "outcome",
                "status",
                "detail",
                "trace_id",
            ])
            .map_err(fail)?;
    }
    writer.flush().map_err(|source| OutputError::Write {
        path: path.to_owned(),
        source,
    })
}

fn write_json(run: &Run, path: &Path) -> Result<(), OutputError> {
    let write_error = |source| OutputError::Write {
        path: path.to_owned(),
        source,
    };
    let mut file = BufWriter::new(File::create(path).map_err(write_error)?);
    serde_json::to_writer_pretty(&mut file, &Summary::of(run)).map_err(|source| {
        OutputError::Json {
            path: path.to_owned(),
            source,
        }
    })?;
    file.write_all(b"\n").map_err(write_error)?;
    file.flush().map_err(write_error)
}

fn write_text(path: &Path, text: &str) -> Result<(), OutputError> {
    std::fs::write(path, text).map_err(|source| OutputError::Write {
        path: path.to_owned(),
        source,
    })
}

fn whole_micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::summary::fixtures;

    fn written(run: &Run) -> (tempfile::TempDir, Vec<PathBuf>) {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("run");
        let paths = write_dir(run, &out).unwrap();
        (dir, paths)
    }

    fn read_rows(path: &Path) -> (csv::StringRecord, Vec<RequestRow>) {
        let mut reader = csv::Reader::from_path(path).unwrap();
        let header = reader.headers().unwrap().clone();
        let rows = reader.deserialize().collect::<Result<_, _>>().unwrap();
        (header, rows)
    }

    #[test]
    fn writes_the_four_files() {
        let (_dir, paths) = written(&fixtures::open_single());
        let names: Vec<_> = paths
            .iter()
            .map(|p| p.file_name().unwrap().to_str().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                REQUESTS_CSV,
                SUMMARY_JSON,
                PERCENTILES_SVG,
                LATENCY_OVER_TIME_SVG
            ]
        );
        assert!(paths.iter().all(|p| p.metadata().unwrap().len() > 0));
    }

    #[test]
    fn the_csv_has_one_row_per_request_and_round_trips() {
        let run = fixtures::closed_three();
        let (_dir, paths) = written(&run);
        let (header, rows) = read_rows(&paths[0]);
        assert_eq!(
            header.iter().collect::<Vec<_>>(),
            [
                "variant",
                "intended_us",
                "sent_us",
                "latency_us",
                "outcome",
                "status",
                "detail",
                "trace_id"
            ]
        );
        assert_eq!(rows.len(), run.records.len());
        for (row, record) in rows.iter().zip(&run.records) {
            assert_eq!(row, &RequestRow::of(&run, record));
        }
        assert_eq!(rows[3].variant, "mode=sequential");
        assert_eq!(rows[3].outcome, "http_error");
        assert_eq!(rows[3].status, Some(500));
        assert_eq!(rows[2].variant, "mode=concurrent&hedge_after=p95");
        assert_eq!(rows[1].intended_us, 10_000);
        assert_eq!(rows[1].latency_us, 76_500);
        assert_eq!(
            rows[1].trace_id.as_deref(),
            Some("000000000000000000000000abc00001")
        );
        assert_eq!(rows[6].trace_id, None);
    }

    #[test]
    fn failures_keep_their_kind_in_the_csv() {
        let run = fixtures::open_single();
        let (_dir, paths) = written(&run);
        let (_, rows) = read_rows(&paths[0]);
        assert_eq!(rows[510].outcome, "timeout");
        assert_eq!(rows[900].outcome, "connect");
        assert_eq!(rows[901].outcome, "other");
        assert_eq!(rows[901].detail.as_deref(), Some("body: connection reset"));
        assert_eq!(
            (rows[500].intended_us, rows[500].sent_us),
            (5_000_000, 5_002_000)
        );
    }

    #[test]
    fn an_empty_run_still_has_a_header() {
        let mut run = fixtures::open_single();
        run.records.clear();
        let (_dir, paths) = written(&run);
        let (header, rows) = read_rows(&paths[0]);
        assert_eq!(header.len(), 8);
        assert!(rows.is_empty());
    }

    #[test]
    fn the_summary_json_holds_the_reports_numbers() {
        let run = fixtures::closed_three();
        let (_dir, paths) = written(&run);
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&paths[1]).unwrap()).unwrap();
        assert_eq!(json["pacing"]["loop"], "closed");
        assert_eq!(json["pacing"]["concurrency"], 4);
        assert_eq!(json["requests"], 900);
        assert_eq!(json["interrupted"], true);
        assert!(json["send_lag_us"].is_null());
        let variants = json["variants"].as_array().unwrap();
        assert_eq!(variants.len(), 3);
        assert_eq!(variants[0]["label"], "mode=sequential");
        assert_eq!(variants[0]["errors"], 2);
        assert_eq!(variants[0]["statuses"]["500"], 2);
        // 3 significant digits: within 0.1 % of 150 ms and 74.5 ms.
        let p50 = |i: usize| variants[i]["latency_us"]["p50"].as_u64().unwrap();
        assert!((149_850..=150_150).contains(&p50(0)), "{}", p50(0));
        assert!((74_420..=74_580).contains(&p50(1)), "{}", p50(1));
        let summary = Summary::of(&run);
        for (json, numbers) in variants.iter().zip(&summary.variants) {
            let p = numbers.latency_us.unwrap();
            assert_eq!(json["latency_us"]["p99"], p.p99);
            assert_eq!(json["latency_us"]["p99.9"], p.p99_9);
            assert_eq!(json["latency_us"]["p99.99"], p.p99_99);
            assert_eq!(json["latency_us"]["max"], p.max);
            assert_eq!(json["requests"], 300);
        }

        let run = fixtures::open_single();
        let (_dir, paths) = written(&run);
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&paths[1]).unwrap()).unwrap();
        assert_eq!(json["pacing"]["loop"], "open");
        assert_eq!(json["pacing"]["asked_per_s"], 100.0);
        assert_eq!(json["late"], 12);
        assert_eq!(json["variants"][0]["timeouts"], 2);
        assert_eq!(json["variants"][0]["connect_errors"], 1);
        assert_eq!(
            json["variants"][0]["other_errors"]["body: connection reset"],
            1
        );
        assert!(json["send_lag_us"]["max"].as_u64().unwrap() < 1_000);
    }

    #[test]
    fn the_plots_are_svg_with_a_legend_entry_per_variant() {
        let run = fixtures::closed_three();
        let (_dir, paths) = written(&run);
        for path in &paths[2..] {
            let svg = std::fs::read_to_string(path).unwrap();
            let document = roxmltree::Document::parse(&svg).unwrap();
            assert!(document.root_element().has_tag_name("svg"));
            let texts: Vec<&str> = document
                .descendants()
                .filter(|n| n.has_tag_name("text"))
                .filter_map(|n| n.text())
                .map(str::trim)
                .collect();
            for variant in &run.variants {
                assert_eq!(
                    texts.iter().filter(|t| **t == variant.label).count(),
                    1,
                    "{}: {texts:?}",
                    path.display()
                );
            }
        }
    }

    #[test]
    fn an_unwritable_folder_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a-file");
        std::fs::write(&file, "").unwrap();
        let error = write_dir(&fixtures::open_single(), &file.join("out")).unwrap_err();
        assert!(matches!(error, OutputError::Folder { .. }), "{error}");
        assert!(
            error.to_string().contains("cannot create the folder"),
            "{error}"
        );
    }
}
