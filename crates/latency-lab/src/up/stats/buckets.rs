//! Percentiles from an explicit-bucket histogram, the way Prometheus'
//! `histogram_quantile` computes them: find the bucket the rank falls in,
//! then interpolate linearly inside it (assuming the values are spread
//! evenly there). The answer is only as exact as the buckets: a p99 is
//! known to lie in its bucket, no closer. The point's recorded min and max,
//! which Prometheus does not have, tighten the two open-ended buckets.

use otlp_receiver::HistogramPoint;

/// One histogram's (or several merged histograms') buckets. Bucket `i`
/// holds values in `(bounds[i-1], bounds[i]]`; the last one everything above
/// the last bound.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Buckets {
    pub(crate) bounds: Vec<f64>,
    pub(crate) counts: Vec<u64>,
    pub(crate) min: Option<f64>,
    pub(crate) max: Option<f64>,
}

/// Where a quantile lies: the interpolated value and the bucket it is in.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Quantile {
    pub(crate) seconds: f64,
    pub(crate) bucket: Bucket,
}

/// A bucket's edges in seconds: `lower` is `None` for the first bucket (no
/// lower edge), `upper` is `None` for the last one (+Inf).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Bucket {
    pub(crate) lower: Option<f64>,
    pub(crate) upper: Option<f64>,
}

impl Bucket {
    /// Whether a value falls in this bucket (upper edge included, as OTLP
    /// buckets are).
    pub(crate) fn contains(&self, seconds: f64) -> bool {
        self.lower.is_none_or(|lower| seconds > lower)
            && self.upper.is_none_or(|upper| seconds <= upper)
    }

    /// How far a value lies from this bucket, in seconds: 0 inside and on
    /// the lower edge (which belongs to the bucket below).
    pub(crate) fn distance(&self, seconds: f64) -> f64 {
        match (self.lower, self.upper) {
            (Some(lower), _) if seconds <= lower => lower - seconds,
            (_, Some(upper)) if seconds > upper => seconds - upper,
            _ => 0.0,
        }
    }
}

impl Buckets {
    /// The point's buckets; `None` when it carries none (or a malformed set:
    /// there must be one more count than bounds).
    pub(crate) fn from_point(point: &HistogramPoint) -> Option<Self> {
        (!point.bucket_counts.is_empty()
            && point.bucket_counts.len() == point.explicit_bounds.len() + 1)
            .then(|| Buckets {
                bounds: point.explicit_bounds.clone(),
                counts: point.bucket_counts.clone(),
                min: point.min,
                max: point.max,
            })
    }

    /// Adds another histogram of the same bounds (e.g. the 200 and the 503
    /// series of one route); `false`, and nothing changed, when the bounds
    /// differ, since buckets of different edges cannot be added.
    pub(crate) fn merge(&mut self, other: &Buckets) -> bool {
        if self.bounds != other.bounds || self.counts.len() != other.counts.len() {
            return false;
        }
        for (total, add) in self.counts.iter_mut().zip(&other.counts) {
            *total += add;
        }
        self.min = extreme(self.min, other.min, f64::min);
        self.max = extreme(self.max, other.max, f64::max);
        true
    }

    pub(crate) fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// The `q`-quantile (0 < q ≤ 1), or `None` for an empty histogram.
    ///
    /// As `histogram_quantile`: the first bucket's lower edge is taken as 0
    /// (durations are not negative), and a rank in the +Inf bucket has no
    /// upper edge to interpolate to — Prometheus answers the last finite
    /// bound; here the recorded max is used when there is one. Both ends are
    /// clamped to the recorded min and max.
    pub(crate) fn quantile(&self, q: f64) -> Option<Quantile> {
        let total = self.count();
        if total == 0 || !(q > 0.0 && q <= 1.0) {
            return None;
        }
        let rank = q * total as f64;
        let mut below = 0u64;
        for (i, &count) in self.counts.iter().enumerate() {
            if count == 0 || ((below + count) as f64) < rank {
                below += count;
                continue;
            }
            let bucket = Bucket {
                lower: i.checked_sub(1).map(|j| self.bounds[j]),
                upper: self.bounds.get(i).copied(),
            };
            let mut low = bucket.lower.unwrap_or(0.0);
            let mut high = match (bucket.upper, self.max) {
                (Some(upper), _) => upper,
                (None, Some(max)) => max,
                (None, None) => low,
            };
            if let Some(min) = self.min {
                low = low.max(min);
            }
            if let Some(max) = self.max {
                high = high.min(max);
            }
            let high = high.max(low);
            let fraction = (rank - below as f64) / count as f64;
            return Some(Quantile {
                seconds: low + (high - low) * fraction,
                bucket,
            });
        }
        None
    }
}

fn extreme(a: Option<f64>, b: Option<f64>, pick: fn(f64, f64) -> f64) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(pick(a, b)),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 100 values: 50 ≤ 100 ms, 30 in (100, 250], 15 in (250, 500],
    /// 4 in (500 ms, 1 s], 1 above 1 s.
    fn known() -> Buckets {
        Buckets {
            bounds: vec![0.1, 0.25, 0.5, 1.0],
            counts: vec![50, 30, 15, 4, 1],
            min: None,
            max: None,
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn quantiles_interpolate_within_their_bucket() {
        let b = known();
        let p50 = b.quantile(0.5).unwrap();
        // Rank 50 is the last value of the first bucket: its upper edge.
        assert!(close(p50.seconds, 0.1), "{p50:?}");
        assert_eq!(
            p50.bucket,
            Bucket {
                lower: None,
                upper: Some(0.1)
            }
        );
        // Rank 90: 10 of the 15 in (0.25, 0.5] → 0.25 + 0.25 × 10/15.
        let p90 = b.quantile(0.9).unwrap();
        assert!(close(p90.seconds, 0.25 + 0.25 * 10.0 / 15.0), "{p90:?}");
        assert_eq!(p90.bucket.lower, Some(0.25));
        // Rank 99: the last of the 4 in (0.5, 1] → its upper edge.
        let p99 = b.quantile(0.99).unwrap();
        assert!(close(p99.seconds, 1.0), "{p99:?}");
        assert_eq!(
            p99.bucket,
            Bucket {
                lower: Some(0.5),
                upper: Some(1.0)
            }
        );
        // Rank 25: half way through the first bucket, from 0.
        assert!(close(b.quantile(0.25).unwrap().seconds, 0.05));
    }

    #[test]
    fn the_open_bucket_uses_the_recorded_max_or_else_the_last_bound() {
        let b = known();
        // Rank 99.9 is in the +Inf bucket: Prometheus answers the last bound.
        let p999 = b.quantile(0.999).unwrap();
        assert!(close(p999.seconds, 1.0), "{p999:?}");
        assert_eq!(p999.bucket.upper, None);
        // With a recorded max of 1.7 s: 1 + 0.7 × 0.9.
        let with_max = Buckets {
            max: Some(1.7),
            ..known()
        };
        assert!(close(with_max.quantile(0.999).unwrap().seconds, 1.63));
        assert!(close(with_max.quantile(1.0).unwrap().seconds, 1.7));
    }

    #[test]
    fn min_and_max_clamp_the_interpolation() {
        // Every value is 0.2 s: the answer is 0.2 s, not somewhere in (0.1, 0.25].
        let b = Buckets {
            bounds: vec![0.1, 0.25],
            counts: vec![0, 10, 0],
            min: Some(0.2),
            max: Some(0.2),
        };
        for q in [0.5, 0.9, 0.99] {
            assert!(close(b.quantile(q).unwrap().seconds, 0.2), "q {q}");
        }
    }

    #[test]
    fn empty_histograms_and_bad_quantiles_have_no_answer() {
        let empty = Buckets {
            counts: vec![0; 5],
            ..known()
        };
        assert_eq!(empty.quantile(0.5), None);
        assert_eq!(known().quantile(0.0), None);
        assert_eq!(known().quantile(1.5), None);
    }

    #[test]
    fn merging_adds_counts_only_for_the_same_bounds() {
        let mut a = Buckets {
            min: Some(0.05),
            max: Some(0.9),
            ..known()
        };
        let b = Buckets {
            counts: vec![0, 0, 0, 0, 100],
            min: Some(1.5),
            max: Some(3.0),
            ..known()
        };
        assert!(a.merge(&b));
        assert_eq!(a.counts, [50, 30, 15, 4, 101]);
        assert_eq!((a.min, a.max), (Some(0.05), Some(3.0)));
        assert_eq!(a.count(), 200);
        let other_bounds = Buckets {
            bounds: vec![1.0],
            counts: vec![1, 1],
            min: None,
            max: None,
        };
        assert!(!a.merge(&other_bounds));
        assert_eq!(a.count(), 200);
    }

    #[test]
    fn buckets_contain_their_upper_edge_only() {
        let middle = Bucket {
            lower: Some(0.1),
            upper: Some(0.25),
        };
        assert!(!middle.contains(0.1));
        assert!(middle.contains(0.2));
        assert!(middle.contains(0.25));
        assert!(!middle.contains(0.26));
        let first = Bucket {
            lower: None,
            upper: Some(0.1),
        };
        assert!(first.contains(0.0) && first.contains(0.1));
        let last = Bucket {
            lower: Some(1.0),
            upper: None,
        };
        assert!(last.contains(30.0) && !last.contains(1.0));
    }
}
