//! Where a topic's messages are and under which key, read from what Kafka's console consumer
//! (`org.apache.kafka.tools.consumer.ConsoleConsumer`) prints with `print.partition`,
//! `print.offset` and `print.key`: `Partition:2<TAB>Offset:0<TAB>key`.
//!
//! Enough to check how a producer partitions (the collector role keys every message by trace
//! id, so one trace stays in one partition) without decoding the payloads.

/// One message's place and key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicMessage {
    pub partition: u32,
    pub offset: u64,
    /// `None` for a message without a key (printed `null`).
    pub key: Option<String>,
}

/// Reads the console consumer's stdout; its closing "Processed a total of N messages" goes to
/// stderr and is not expected here.
pub(crate) fn parse_messages(text: &str) -> Result<Vec<TopicMessage>, String> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let mut fields = line.splitn(3, '\t');
            let mut field = |prefix: &str| {
                fields
                    .next()
                    .and_then(|f| f.strip_prefix(prefix))
                    .ok_or_else(|| format!("no {prefix} field in {line:?}"))
            };
            let partition = field("Partition:")?;
            let offset = field("Offset:")?;
            let key = fields.next().unwrap_or("null");
            Ok(TopicMessage {
                partition: partition
                    .parse()
                    .map_err(|_| format!("bad partition in {line:?}"))?,
                offset: offset
                    .parse()
                    .map_err(|_| format!("bad offset in {line:?}"))?,
                key: (key != "null").then(|| key.to_owned()),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_partitions_and_offsets() {
        // Kafka 4.1.1's console consumer, captured here.
        let text =
            "Partition:2\tOffset:0\tk1\nPartition:2\tOffset:1\tk1\nPartition:0\tOffset:0\tnull\n";
        let messages = parse_messages(text).unwrap();
        assert_eq!(messages.len(), 3);
        assert_eq!(
            messages[1],
            TopicMessage {
                partition: 2,
                offset: 1,
                key: Some("k1".to_owned())
            }
        );
        assert_eq!(messages[2].key, None);
        assert!(parse_messages("Processed a total of 3 messages").is_err());
        assert!(parse_messages("Partition:x\tOffset:0\tk").is_err());
        assert_eq!(parse_messages("\n").unwrap(), []);
    }
}
