//! The `loadbalancing` exporter's consistent-hash ring (contrib v0.140.1,
//! `consistent_hashing.go`), replayed: which backend a routing key goes to.
//!
//! Why replay it: a test of the front tier must know, before it sends a
//! span, which sampler the span will reach — to check that the exporter did
//! route it there, and to pick sampler addresses that make the control
//! (routing by service) split the services deterministically. The unit tests
//! below hold values printed by the Go code itself.
//!
//! The ring: each backend (the resolver's names, sorted) gets 100 positions
//! `crc32(name ‖ i as u32 little-endian) % 36000`, a taken position moving
//! ahead by one (at most 10 times, else dropped); a key goes to the first
//! position at or after `crc32(key) % 36000`, wrapping around. The key is the
//! trace id's 16 bytes for `traceID`, the `service.name` for `service`.

const MAX_POSITIONS: u32 = 36_000;
const WEIGHT: u32 = 100;
const LINEAR_PROBE_LIMIT: u32 = 10;

/// A ring over some backends.
#[derive(Debug, Clone)]
pub struct HashRing {
    /// (position, backend), sorted by position.
    items: Vec<(u32, String)>,
}

impl HashRing {
    /// The ring the exporter builds for `backends` (in any order: it sorts them).
    pub fn new<S: AsRef<str>>(backends: &[S]) -> Self {
        let mut names: Vec<&str> = backends.iter().map(AsRef::as_ref).collect();
        names.sort_unstable();
        let mut taken = std::collections::HashSet::new();
        let mut items = Vec::new();
        for name in names {
            for i in 0..WEIGHT {
                let mut hasher = crc32fast::Hasher::new();
                hasher.update(name.as_bytes());
                hasher.update(&i.to_le_bytes());
                let mut pos = hasher.finalize() % MAX_POSITIONS;
                let mut probed = 0;
                while taken.contains(&pos) && probed < LINEAR_PROBE_LIMIT {
                    pos = (pos + 1) % MAX_POSITIONS;
                    probed += 1;
                }
                if probed >= LINEAR_PROBE_LIMIT {
                    continue;
                }
                taken.insert(pos);
                items.push((pos, name.to_owned()));
            }
        }
        items.sort_by_key(|(pos, _)| *pos);
        HashRing { items }
    }

    /// The backend a routing key goes to (`None` for an empty ring).
    pub fn backend_for(&self, key: &[u8]) -> Option<&str> {
        let pos = crc32fast::hash(key) % MAX_POSITIONS;
        let at = self.items.partition_point(|(p, _)| *p < pos);
        let (_, name) = self.items.get(at).or_else(|| self.items.first())?;
        Some(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Printed by the exporter's own `newHashRing(...).endpointFor(...)`.
    #[test]
    fn routes_as_the_go_code_does() {
        let cases: &[(&[&str], &str, &str)] = &[
            (
                &["127.0.0.1:4317", "127.0.0.1:4318"],
                "profile-aggregator",
                "127.0.0.1:4317",
            ),
            (
                &["127.0.0.1:4317", "127.0.0.1:4318"],
                "user-service",
                "127.0.0.1:4318",
            ),
            (
                &["127.0.0.1:4317", "127.0.0.1:4318"],
                "order-service",
                "127.0.0.1:4318",
            ),
            (&["127.0.0.1:4317", "127.0.0.1:4318"], "a", "127.0.0.1:4318"),
            (&["127.0.0.1:4317", "127.0.0.1:4318"], "", "127.0.0.1:4317"),
            (
                &["127.0.0.1:40001", "127.0.0.1:40002", "127.0.0.1:40003"],
                "profile-aggregator",
                "127.0.0.1:40003",
            ),
            (
                &["127.0.0.1:40001", "127.0.0.1:40002", "127.0.0.1:40003"],
                "user-service",
                "127.0.0.1:40001",
            ),
            (
                &["127.0.0.1:40001", "127.0.0.1:40002", "127.0.0.1:40003"],
                "order-service",
                "127.0.0.1:40003",
            ),
            (
                &["127.0.0.1:40001", "127.0.0.1:40002", "127.0.0.1:40003"],
                "",
                "127.0.0.1:40001",
            ),
            (
                &["sampler-1.sampler:4317", "sampler-0.sampler:4317"],
                "profile-aggregator",
                "sampler-0.sampler:4317",
            ),
            (
                &["sampler-1.sampler:4317", "sampler-0.sampler:4317"],
                "user-service",
                "sampler-0.sampler:4317",
            ),
            (
                &["sampler-1.sampler:4317", "sampler-0.sampler:4317"],
                "order-service",
                "sampler-1.sampler:4317",
            ),
        ];
        for (backends, key, expected) in cases {
            let ring = HashRing::new(backends);
            assert_eq!(
                ring.backend_for(key.as_bytes()),
                Some(*expected),
                "{backends:?} {key:?}"
            );
        }
        let trace_id = [
            0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e,
            0x47, 0x36,
        ];
        for (backends, expected) in [
            (&["127.0.0.1:4317", "127.0.0.1:4318"][..], "127.0.0.1:4317"),
            (
                &["127.0.0.1:40001", "127.0.0.1:40002", "127.0.0.1:40003"][..],
                "127.0.0.1:40002",
            ),
            (
                &["sampler-0.sampler:4317", "sampler-1.sampler:4317"][..],
                "sampler-1.sampler:4317",
            ),
        ] {
            assert_eq!(
                HashRing::new(backends).backend_for(&trace_id),
                Some(expected)
            );
        }
    }

    /// Why a ring, not `hash % N`: a third sampler takes about a third of
    /// the keys, all of them from the other two; none moves between those.
    #[test]
    fn a_third_backend_takes_about_a_third_of_the_keys_and_moves_no_others() {
        let two = HashRing::new(&["sampler-0.sampler:4317", "sampler-1.sampler:4317"]);
        let three = HashRing::new(&[
            "sampler-0.sampler:4317",
            "sampler-1.sampler:4317",
            "sampler-2.sampler:4317",
        ]);
        let keys = 10_000u32;
        let mut moved = 0;
        for key in 0..keys {
            let key = u128::from(key)
                .wrapping_mul(0x9e37_79b9_7f4a_7c15)
                .to_be_bytes();
            let (before, after) = (two.backend_for(&key), three.backend_for(&key));
            if before != after {
                assert_eq!(after, Some("sampler-2.sampler:4317"));
                moved += 1;
            }
        }
        let share = f64::from(moved) / f64::from(keys);
        assert!((0.2..0.45).contains(&share), "{share}");
    }

    #[test]
    fn an_empty_ring_routes_nowhere() {
        assert_eq!(HashRing::new::<&str>(&[]).backend_for(b"x"), None);
    }
}
