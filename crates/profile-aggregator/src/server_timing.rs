//! The `Server-Timing` response header: browsers show its entries in their
//! network panel, so the per-dependency wait is visible without a tracer.

use std::fmt::Write;
use std::time::Duration;

/// One entry: `name;desc="…";dur=12.3` (milliseconds).
pub(crate) struct Metric<'a> {
    pub name: &'a str,
    pub description: &'a str,
    pub duration: Duration,
}

pub(crate) fn header_value(metrics: &[Metric<'_>]) -> String {
    let mut value = String::new();
    for (i, m) in metrics.iter().enumerate() {
        if i > 0 {
            value.push_str(", ");
        }
        let _ = write!(
            value,
            "{};desc=\"{}\";dur={:.1}",
            m.name,
            m.description,
            m.duration.as_secs_f64() * 1000.0
        );
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_entries_in_milliseconds() {
        let value = header_value(&[
            Metric {
                name: "user",
                description: "user-service",
                duration: Duration::from_micros(100_260),
            },
            Metric {
                name: "total",
                description: "total",
                duration: Duration::from_millis(301),
            },
        ]);
        assert_eq!(
            value,
            "user;desc=\"user-service\";dur=100.3, total;desc=\"total\";dur=301.0"
        );
    }
}
