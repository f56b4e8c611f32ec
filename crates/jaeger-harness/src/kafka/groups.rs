//! A consumer group's offsets, read from the table `kafka-consumer-groups --describe`
//! (`org.apache.kafka.tools.consumer.group.ConsumerGroupCommand`) prints.
//!
//! Kafka's own tool rather than the wire protocol: it is the command an operator types, so the
//! test reads lag the way a person would, and its output format is stable across releases.

/// One partition of a group's table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionOffsets {
    pub topic: String,
    pub partition: u32,
    /// The group's committed offset (the next message it will read); `None` when it has not
    /// committed one yet (the tool prints `-`).
    pub committed: Option<u64>,
    /// The partition's end: the offset the next message written will get.
    pub log_end: u64,
}

impl PartitionOffsets {
    /// Messages written but not yet committed by the group. Without a committed offset, all of
    /// the partition (its log starts at 0: nothing here is old enough to be deleted).
    pub fn lag(&self) -> u64 {
        self.log_end.saturating_sub(self.committed.unwrap_or(0))
    }
}

/// A consumer group as `--describe` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupOffsets {
    /// Whether some consumer is a member now. A group without members lists only the
    /// partitions it has committed offsets for.
    pub has_members: bool,
    /// Whether the group is rebalancing (then no table is printed).
    pub rebalancing: bool,
    /// The partitions listed, sorted by topic and partition.
    pub partitions: Vec<PartitionOffsets>,
}

impl GroupOffsets {
    /// Sum of [`PartitionOffsets::lag`].
    pub fn total_lag(&self) -> u64 {
        self.partitions.iter().map(PartitionOffsets::lag).sum()
    }

    /// Sum of the partitions' end offsets: every message ever written to them.
    pub fn total_log_end(&self) -> u64 {
        self.partitions.iter().map(|p| p.log_end).sum()
    }

    /// Whether `topic`'s partitions `0..partitions` are all listed and all caught up.
    pub fn caught_up(&self, topic: &str, partitions: u32) -> bool {
        let listed: Vec<u32> = self
            .partitions
            .iter()
            .filter(|p| p.topic == topic)
            .map(|p| p.partition)
            .collect();
        listed == (0..partitions).collect::<Vec<_>>() && self.total_lag() == 0
    }
}

/// Reads the tool's stdout. `Err` carries a reason (an `Error:` line, a table that cannot be
/// read).
pub(crate) fn parse_describe(text: &str) -> Result<GroupOffsets, String> {
    if let Some(error) = text.lines().find(|l| l.trim_start().starts_with("Error:")) {
        return Err(error.trim().to_owned());
    }
    let has_members = !text.contains("has no active members");
    let rebalancing = text.contains("is rebalancing");
    let mut lines = text.lines();
    let mut partitions = Vec::new();
    if let Some(header) = lines.by_ref().find(|l| l.trim_start().starts_with("GROUP")) {
        let columns: Vec<&str> = header.split_whitespace().collect();
        let column = |name: &str| {
            columns
                .iter()
                .position(|c| *c == name)
                .ok_or_else(|| format!("no {name} column in {header:?}"))
        };
        let topic = column("TOPIC")?;
        let partition = column("PARTITION")?;
        let current = column("CURRENT-OFFSET")?;
        let end = column("LOG-END-OFFSET")?;
        for line in lines.take_while(|l| !l.trim().is_empty()) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let field = |i: usize| {
                fields
                    .get(i)
                    .copied()
                    .ok_or_else(|| format!("short row {line:?}"))
            };
            let number = |i: usize| -> Result<u64, String> {
                let value = field(i)?;
                value
                    .parse()
                    .map_err(|_| format!("{value:?} is not an offset in {line:?}"))
            };
            partitions.push(PartitionOffsets {
                topic: field(topic)?.to_owned(),
                partition: u32::try_from(number(partition)?)
                    .map_err(|_| format!("partition out of range in {line:?}"))?,
                committed: match field(current)? {
                    "-" => None,
                    _ => Some(number(current)?),
                },
                log_end: number(end)?,
            });
        }
    } else if !rebalancing {
        return Err("no table and no known message".to_owned());
    }
    partitions.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
    Ok(GroupOffsets {
        has_members,
        rebalancing,
        partitions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // Output of Kafka 4.1.1's tool, captured here.
    const ACTIVE: &str = "
GROUP           TOPIC           PARTITION  CURRENT-OFFSET  LOG-END-OFFSET  LAG             CONSUMER-ID                                          HOST            CLIENT-ID
jaeger-ingester jaeger-spans    2          1               1               0               jaeger-ingester-665f44bf-f1f9-49eb-9fca-3f1aaffb7516 /127.0.0.1      jaeger-ingester
jaeger-ingester jaeger-spans    1          -               0               -               jaeger-ingester-665f44bf-f1f9-49eb-9fca-3f1aaffb7516 /127.0.0.1      jaeger-ingester
jaeger-ingester jaeger-spans    0          -               4               -               jaeger-ingester-665f44bf-f1f9-49eb-9fca-3f1aaffb7516 /127.0.0.1      jaeger-ingester
";

    const STOPPED: &str = "
Consumer group 'jaeger-ingester' has no active members.

GROUP           TOPIC           PARTITION  CURRENT-OFFSET  LOG-END-OFFSET  LAG             CONSUMER-ID     HOST            CLIENT-ID
jaeger-ingester jaeger-spans    2          1               7               6               -               -               -
";

    #[test]
    fn an_active_group_lists_every_partition() {
        let group = parse_describe(ACTIVE).unwrap();
        assert!(group.has_members && !group.rebalancing);
        let partitions: Vec<u32> = group.partitions.iter().map(|p| p.partition).collect();
        assert_eq!(partitions, [0, 1, 2]);
        assert_eq!(group.partitions[0].committed, None);
        assert_eq!(group.partitions[2].committed, Some(1));
        // Partition 0: nothing committed, 4 written.
        assert_eq!(group.total_lag(), 4);
        assert_eq!(group.total_log_end(), 5);
        assert!(!group.caught_up("jaeger-spans", 3));
    }

    #[test]
    fn a_stopped_group_lists_only_committed_partitions() {
        let group = parse_describe(STOPPED).unwrap();
        assert!(!group.has_members);
        assert_eq!(group.partitions.len(), 1);
        assert_eq!(group.total_lag(), 6);
        assert!(!group.caught_up("jaeger-spans", 1));
    }

    #[test]
    fn caught_up_needs_every_partition() {
        let text = ACTIVE.replace(
            "0          -               4               -",
            "0          4               4               0",
        );
        let text = text.replace(
            "1          -               0               -",
            "1          0               0               0",
        );
        let group = parse_describe(&text).unwrap();
        assert!(group.caught_up("jaeger-spans", 3));
        assert!(!group.caught_up("jaeger-spans", 4), "partition 3 missing");
        assert!(!group.caught_up("other", 3));
    }

    #[test]
    fn rebalancing_and_errors() {
        let group = parse_describe("\nWarning: Consumer group 'g' is rebalancing.\n").unwrap();
        assert!(group.rebalancing && group.partitions.is_empty());
        let error = parse_describe(
            "\nError: Executing consumer group command failed due to \
             org.apache.kafka.common.errors.GroupIdNotFoundException: Group g not found.\n",
        )
        .unwrap_err();
        assert!(error.contains("GroupIdNotFoundException"), "{error}");
        assert!(parse_describe("something else").is_err());
        assert!(
            parse_describe("GROUP TOPIC PARTITION CURRENT-OFFSET LOG-END-OFFSET\ng t x 1 2\n")
                .is_err()
        );
    }
}
