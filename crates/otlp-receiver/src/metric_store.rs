//! The bounded, shared store of received metric points: one point per series, the latest.
//!
//! A series is (service, metric name, attribute set). Services export cumulative points every
//! few seconds, each one superseding the last, so the store keeps only the newest point of a
//! series: memory grows with the number of series, not with time. Delta points are added up
//! instead, so a reader always sees totals whichever temporality the sender chose. The number
//! of series is bounded (a runaway attribute such as a user id must not eat the lab's memory):
//! past the bound, points of *new* series are refused and counted, while known series keep
//! updating — evicting one would silently falsify its totals.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use crate::error::ReceiverError;
use crate::metric_model::{
    HistogramPoint, MetricOrigin, NumberKind, NumberPoint, ReceivedMetrics, Temporality,
};

/// Series kept by the lab's receiver: far above what the suite's services export (a few
/// dozen), far below what would strain memory.
pub const MAX_METRIC_SERIES: usize = 10_000;

/// (service, metric, attributes in their display form, sorted by key). Display form because
/// attribute values hold floats, which are not `Ord`; an `Int(1)` and a `String("1")` under
/// the same key would share a series, which no sane instrument sends.
type SeriesKey = (String, String, Vec<(String, String)>);

fn series_key(origin: &MetricOrigin) -> SeriesKey {
    (
        origin.service_name.clone(),
        origin.name.clone(),
        origin
            .attributes
            .iter()
            .map(|(k, v)| (k.clone(), v.to_string()))
            .collect(),
    )
}

/// Shared, cloneable store of the latest point of every metric series. Clones see the same
/// points.
#[derive(Debug, Clone)]
pub struct MetricStore {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    inner: Mutex<Inner>,
    /// Bumped on every change; waits re-check on it (see `SpanStore` for why a `watch`).
    changed: watch::Sender<u64>,
}

#[derive(Debug, Default)]
struct Inner {
    max_series: usize,
    histograms: BTreeMap<SeriesKey, HistogramPoint>,
    numbers: BTreeMap<SeriesKey, NumberPoint>,
    refused_points: u64,
    ignored_points: u64,
}

impl MetricStore {
    /// A store keeping at most `max_series` series (histograms and numbers together; at
    /// least one).
    pub fn new(max_series: usize) -> Self {
        let (changed, _) = watch::channel(0);
        Self {
            shared: Arc::new(Shared {
                inner: Mutex::new(Inner {
                    max_series: max_series.max(1),
                    ..Inner::default()
                }),
                changed,
            }),
        }
    }

    /// Merges one export: each point replaces its series' point (cumulative, gauge,
    /// unspecified) unless older than it, or is added to it (delta with the same bucket
    /// bounds). Wakes every waiter.
    pub fn insert(&self, received: ReceivedMetrics) {
        if received.is_empty() {
            return;
        }
        {
            let mut inner = self.lock();
            inner.ignored_points += received.ignored;
            for point in received.histograms {
                inner.put_histogram(point);
            }
            for point in received.numbers {
                inner.put_number(point);
            }
        }
        self.shared
            .changed
            .send_modify(|generation| *generation += 1);
    }

    /// The latest point of every series of histogram `name`, ordered by service then
    /// attributes.
    pub fn histograms(&self, name: &str) -> Vec<HistogramPoint> {
        self.lock()
            .histograms
            .iter()
            .filter(|((_, metric, _), _)| metric == name)
            .map(|(_, point)| point.clone())
            .collect()
    }

    /// Every series' point of sum `name` (counters and up-down counters).
    pub fn sums(&self, name: &str) -> Vec<NumberPoint> {
        self.numbers(name, |kind| matches!(kind, NumberKind::Sum { .. }))
    }

    /// Every series' point of gauge `name`.
    pub fn gauges(&self, name: &str) -> Vec<NumberPoint> {
        self.numbers(name, |kind| matches!(kind, NumberKind::Gauge))
    }

    fn numbers(&self, name: &str, kind: fn(&NumberKind) -> bool) -> Vec<NumberPoint> {
        self.lock()
            .numbers
            .iter()
            .filter(|((_, metric, _), point)| metric == name && kind(&point.kind))
            .map(|(_, point)| point.clone())
            .collect()
    }

    /// The names of every metric received, of any kind.
    pub fn names(&self) -> BTreeSet<String> {
        let inner = self.lock();
        inner
            .histograms
            .keys()
            .chain(inner.numbers.keys())
            .map(|(_, name, _)| name.clone())
            .collect()
    }

    /// How many series are stored.
    pub fn series_count(&self) -> usize {
        let inner = self.lock();
        inner.histograms.len() + inner.numbers.len()
    }

    /// Whether nothing at all has arrived (no stored series, nothing refused or ignored).
    pub fn is_empty(&self) -> bool {
        let inner = self.lock();
        inner.histograms.is_empty()
            && inner.numbers.is_empty()
            && inner.refused_points == 0
            && inner.ignored_points == 0
    }

    /// Points of new series refused because the store held its maximum of series.
    pub fn refused_points(&self) -> u64 {
        self.lock().refused_points
    }

    /// Points of kinds not kept (exponential histograms, summaries).
    pub fn ignored_points(&self) -> u64 {
        self.lock().ignored_points
    }

    /// Forgets every series and count.
    pub fn clear(&self) {
        {
            let mut inner = self.lock();
            let max_series = inner.max_series;
            *inner = Inner {
                max_series,
                ..Inner::default()
            };
        }
        self.shared
            .changed
            .send_modify(|generation| *generation += 1);
    }

    /// Waits until `check(store)` gives a value or `timeout` passes; re-checks on every
    /// insert. On timeout the error names the series seen by then.
    pub async fn wait_for<T>(
        &self,
        timeout: Duration,
        check: impl Fn(&MetricStore) -> Option<T>,
    ) -> Result<T, ReceiverError> {
        let started = Instant::now();
        let deadline = started + timeout;
        let mut changes = self.shared.changed.subscribe();
        loop {
            changes.borrow_and_update();
            if let Some(found) = check(self) {
                return Ok(found);
            }
            match tokio::time::timeout_at(deadline, changes.changed()).await {
                Ok(Ok(())) => continue,
                Ok(Err(_)) | Err(_) => {
                    return check(self).ok_or_else(|| ReceiverError::MetricsTimeout {
                        waited: started.elapsed(),
                        seen: self.describe_series(),
                    });
                }
            }
        }
    }

    /// Waits until the points of histogram `name` satisfy `pred`, and returns them.
    pub async fn wait_for_histograms(
        &self,
        name: &str,
        timeout: Duration,
        pred: impl Fn(&[HistogramPoint]) -> bool,
    ) -> Result<Vec<HistogramPoint>, ReceiverError> {
        self.wait_for(timeout, |store| {
            let points = store.histograms(name);
            pred(&points).then_some(points)
        })
        .await
    }

    /// `service metric{k=v, …}` for every series, for failure messages.
    fn describe_series(&self) -> Vec<String> {
        let inner = self.lock();
        inner
            .histograms
            .keys()
            .chain(inner.numbers.keys())
            .map(|(service, name, attrs)| {
                let attrs: Vec<String> = attrs.iter().map(|(k, v)| format!("{k}={v}")).collect();
                format!("{service} {name}{{{}}}", attrs.join(", "))
            })
            .collect()
    }

    /// Never panics on a poisoned lock (see `SpanStore::lock`).
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.shared
            .inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Inner {
    fn has_room(&self) -> bool {
        self.histograms.len() + self.numbers.len() < self.max_series
    }

    fn put_histogram(&mut self, point: HistogramPoint) {
        let key = series_key(&point.origin);
        let has_room = self.has_room();
        match self.histograms.get_mut(&key) {
            Some(stored)
                if point.temporality == Temporality::Delta
                    && stored.temporality == Temporality::Delta
                    && stored.explicit_bounds == point.explicit_bounds
                    && stored.bucket_counts.len() == point.bucket_counts.len() =>
            {
                stored.accumulate(&point);
            }
            Some(stored) => {
                // An older cumulative point arriving late (a retried export) must not undo a
                // newer one.
                if point.time_unix_nanos >= stored.time_unix_nanos {
                    *stored = point;
                }
            }
            None if has_room => {
                self.histograms.insert(key, point);
            }
            None => self.refused_points += 1,
        }
    }

    fn put_number(&mut self, point: NumberPoint) {
        let key = series_key(&point.origin);
        let has_room = self.has_room();
        match self.numbers.get_mut(&key) {
            Some(stored) if point.is_delta_sum() && stored.is_delta_sum() => {
                stored.accumulate(&point);
            }
            Some(stored) => {
                if point.time_unix_nanos >= stored.time_unix_nanos {
                    *stored = point;
                }
            }
            None if has_room => {
                self.numbers.insert(key, point);
            }
            None => self.refused_points += 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metric_model::NumberValue;
    use crate::model::AttrValue;

    fn origin(service: &str, name: &str, route: &str) -> MetricOrigin {
        MetricOrigin {
            service_name: service.into(),
            resource: BTreeMap::new(),
            scope_name: String::new(),
            name: name.into(),
            unit: "s".into(),
            description: String::new(),
            attributes: BTreeMap::from([("http.route".into(), AttrValue::String(route.into()))]),
        }
    }

    fn histogram(route: &str, temporality: Temporality, time: u64, count: u64) -> HistogramPoint {
        HistogramPoint {
            origin: origin("svc", "duration", route),
            temporality,
            start_unix_nanos: 0,
            time_unix_nanos: time,
            count,
            sum: Some(count as f64 * 0.1),
            bucket_counts: vec![count, 0],
            explicit_bounds: vec![0.25],
            min: Some(0.1),
            max: Some(0.1),
        }
    }

    fn received(histograms: Vec<HistogramPoint>) -> ReceivedMetrics {
        ReceivedMetrics {
            histograms,
            ..Default::default()
        }
    }

    #[test]
    fn cumulative_points_replace_older_ones_of_their_series() {
        let store = MetricStore::new(10);
        store.insert(received(vec![
            histogram("/a", Temporality::Cumulative, 10, 1),
            histogram("/b", Temporality::Cumulative, 10, 5),
        ]));
        store.insert(received(vec![histogram(
            "/a",
            Temporality::Cumulative,
            20,
            3,
        )]));
        // A late, older export does not go back in time.
        store.insert(received(vec![histogram(
            "/a",
            Temporality::Cumulative,
            15,
            2,
        )]));
        let points = store.histograms("duration");
        let counts: Vec<(Option<&str>, u64)> = points
            .iter()
            .map(|p| (p.origin.attr_str("http.route"), p.count))
            .collect();
        assert_eq!(counts, [(Some("/a"), 3), (Some("/b"), 5)]);
        assert!(store.histograms("other").is_empty());
        assert_eq!(store.names(), BTreeSet::from(["duration".to_owned()]));
        assert_eq!(store.series_count(), 2);
    }

    #[test]
    fn delta_points_are_added_up() {
        let store = MetricStore::new(10);
        store.insert(received(vec![histogram("/a", Temporality::Delta, 10, 2)]));
        store.insert(received(vec![histogram("/a", Temporality::Delta, 20, 3)]));
        let point = &store.histograms("duration")[0];
        assert_eq!(point.count, 5);
        assert_eq!(point.bucket_counts, [5, 0]);

        let sum = |value, time| NumberPoint {
            origin: origin("svc", "retries", "/a"),
            kind: NumberKind::Sum {
                monotonic: true,
                temporality: Temporality::Delta,
            },
            start_unix_nanos: 0,
            time_unix_nanos: time,
            value: NumberValue::Int(value),
        };
        for (value, time) in [(2, 1), (3, 2)] {
            store.insert(ReceivedMetrics {
                numbers: vec![sum(value, time)],
                ..Default::default()
            });
        }
        assert_eq!(store.sums("retries")[0].value, NumberValue::Int(5));
        assert!(store.gauges("retries").is_empty());
    }

    #[test]
    fn new_series_past_the_bound_are_refused_and_counted() {
        let store = MetricStore::new(1);
        store.insert(received(vec![
            histogram("/a", Temporality::Cumulative, 10, 1),
            histogram("/b", Temporality::Cumulative, 10, 1),
        ]));
        // The known series still updates.
        store.insert(received(vec![histogram(
            "/a",
            Temporality::Cumulative,
            20,
            7,
        )]));
        assert_eq!(store.series_count(), 1);
        assert_eq!(store.refused_points(), 1);
        assert_eq!(store.histograms("duration")[0].count, 7);
        store.clear();
        assert!(store.is_empty());
    }

    #[tokio::test]
    async fn waits_wake_on_insert_and_time_out_naming_what_was_seen() {
        let store = MetricStore::new(10);
        let writer = store.clone();
        let task = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(30)).await;
            writer.insert(received(vec![histogram(
                "/a",
                Temporality::Cumulative,
                1,
                4,
            )]));
        });
        let points = store
            .wait_for_histograms("duration", Duration::from_secs(5), |p| {
                p.iter().map(|p| p.count).sum::<u64>() >= 4
            })
            .await
            .expect("the insert satisfies the wait");
        assert_eq!(points.len(), 1);
        task.await.unwrap();

        let err = store
            .wait_for_histograms("duration", Duration::from_millis(50), |p| p.len() > 1)
            .await
            .unwrap_err();
        let message = err.to_string();
        assert!(message.contains("svc duration{http.route=/a}"), "{message}");
    }
}
