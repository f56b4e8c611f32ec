#!/usr/bin/env bash
# Measures what the Kafka pipeline (Jaeger collector role -> Kafka -> Jaeger ingester with
# Badger) sustains on this machine, at a few offered rates, and the memory of each process.
# A person runs it to get the numbers the README states; CI does not (it takes minutes and
# its numbers depend on the machine).
#
# Needs what the Kafka pipeline test needs: Go (or JAEGER_BIN) for Jaeger, Java 17 and Maven
# (or KAFKA_LIBS) for Kafka. Everything runs on loopback and is stopped at the end.
#
# Environment:
#   RATES            offered loads to try, spans/s  (default "10000 20000 40000")
#   MEASURE_SECONDS  length of each load             (default 20)
#   MEASURE_THREADS  generator threads               (default 1)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

cargo build -q -p jaeger-harness --example kafka_throughput
for rate in ${RATES:-10000 20000 40000}; do
    MEASURE_RATE=$rate cargo run -q -p jaeger-harness --example kafka_throughput
done
