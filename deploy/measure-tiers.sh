#!/usr/bin/env bash
# What the two collector tiers of deploy/ sustain on this machine, and their memory: a person
# runs this (it takes about two minutes); CI does not. Everything on loopback, on one machine:
#
#   telemetrygen --(OTLP/gRPC)--> front (loadbalancing, by trace id) --> sampler A --> Jaeger A
#                                                                   \--> sampler B --> Jaeger B
#
# For each offered rate it prints the spans per second the front tier accepted and passed on,
# what it refused or failed to send, and each process's peak resident memory (VmHWM).
#
#   deploy/measure-tiers.sh [RATE ...]        spans per second offered   [2000 5000 10000 20000]
#
# Binaries: JAEGER_BIN (default: `cargo xtask jaeger`), OTELCOL_BIN (default: `cargo xtask
# otelcol`), TELEMETRYGEN (default: the OpenTelemetry load generator, `go install`ed into the
# cache; its own releases are newer than the collector's, which does not matter: it only speaks
# OTLP). SECONDS_PER_RATE (default 20), WORKERS: the generator's senders (default 8; each
# sends one batch at a time, so too few of them cap the rate before the collectors do).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

rates=("$@")
[ ${#rates[@]} -gt 0 ] || rates=(2000 5000 10000 20000)
per_rate=${SECONDS_PER_RATE:-20}
workers=${WORKERS:-8}
cache=${LATENCY_LAB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/latency-lab}

jaeger=${JAEGER_BIN:-$(cargo xtask jaeger)}
otelcol=${OTELCOL_BIN:-$(cargo xtask otelcol)}
telemetrygen=${TELEMETRYGEN:-$cache/bin/telemetrygen}
if [ ! -x "$telemetrygen" ]; then
    # GOSUMDB=off for the same reason as deploy/collector/build.sh.
    GOSUMDB=off GOBIN="$cache/bin" go install \
        github.com/open-telemetry/opentelemetry-collector-contrib/cmd/telemetrygen@v0.161.0
fi

work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

# Fixed loopback ports from 47000 up; change BASE if they are taken.
base=${BASE:-47000}
start() { # name, then the command
    local name=$1
    shift
    "$@" >"$work/$name.log" 2>&1 &
    pids+=($!)
    echo $! >"$work/$name.pid"
}
wait_http() { # url
    for _ in $(seq 100); do
        curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
        sleep 0.2
    done
    echo "not ready: $1" >&2
    return 1
}

for i in 0 1; do
    p=$((base + 100 * i))
    start "jaeger-$i" env JAEGER_OTLP_GRPC_ENDPOINT=127.0.0.1:$p JAEGER_OTLP_HTTP_ENDPOINT=127.0.0.1:$((p + 1)) \
        JAEGER_QUERY_HTTP_ENDPOINT=127.0.0.1:$((p + 2)) JAEGER_QUERY_GRPC_ENDPOINT=127.0.0.1:$((p + 3)) \
        JAEGER_HEALTHCHECK_ENDPOINT=127.0.0.1:$((p + 4)) JAEGER_METRICS_HOST=127.0.0.1 JAEGER_METRICS_PORT=$((p + 5)) \
        JAEGER_MAX_TRACES=20000 "$jaeger" --config jaeger/config.yaml
    start "sampler-$i" env SAMPLER_OTLP_GRPC_ENDPOINT=127.0.0.1:$((p + 10)) \
        SAMPLER_HEALTHCHECK_ENDPOINT=127.0.0.1:$((p + 11)) SAMPLER_METRICS_PORT=$((p + 12)) \
        SAMPLER_EXPORT_ENDPOINT=127.0.0.1:$p "$otelcol" --config deploy/configs/sampler.yaml
done
start front env FRONT_OTLP_GRPC_ENDPOINT=127.0.0.1:$((base + 50)) FRONT_OTLP_HTTP_ENDPOINT=127.0.0.1:$((base + 51)) \
    FRONT_HEALTHCHECK_ENDPOINT=127.0.0.1:$((base + 52)) FRONT_METRICS_PORT=$((base + 53)) \
    SAMPLER_ENDPOINTS="[127.0.0.1:$((base + 10)), 127.0.0.1:$((base + 110))]" \
    "$otelcol" --config deploy/configs/front.yaml
for url in http://127.0.0.1:$((base + 4))/status http://127.0.0.1:$((base + 104))/status \
    http://127.0.0.1:$((base + 11))/status http://127.0.0.1:$((base + 111))/status \
    http://127.0.0.1:$((base + 52))/status; do
    wait_http "$url"
done

# A counter of the front tier's own metrics (summed over its series).
counter() {
    curl -fsS "http://127.0.0.1:$((base + 53))/metrics" |
        awk -v name="$1" '$1 ~ "^"name"(_total)?({|$)" { s += $2 } END { printf "%d\n", s }'
}
peak_mib() { awk '/VmHWM/ { printf "%d", $2 / 1024 }' "/proc/$(cat "$work/$1.pid")/status"; }

printf '%8s %10s %10s %9s %9s   peak MiB: %s\n' offered accepted/s sent/s refused failed \
    "front sampler-0 sampler-1 jaeger-0 jaeger-1"
for rate in "${rates[@]}"; do
    a0=$(counter otelcol_receiver_accepted_spans)
    s0=$(counter otelcol_exporter_sent_spans)
    r0=$(counter otelcol_receiver_refused_spans)
    f0=$(counter otelcol_exporter_send_failed_spans)
    # Traces of 5 spans (a root, 4 children); --rate counts spans per worker.
    "$telemetrygen" traces --otlp-endpoint 127.0.0.1:$((base + 50)) --otlp-insecure \
        --workers "$workers" --child-spans 4 --rate "$((rate / workers))" --duration "${per_rate}s" \
        >"$work/telemetrygen.log" 2>&1
    sleep 3
    a=$(($(counter otelcol_receiver_accepted_spans) - a0))
    s=$(($(counter otelcol_exporter_sent_spans) - s0))
    r=$(($(counter otelcol_receiver_refused_spans) - r0))
    f=$(($(counter otelcol_exporter_send_failed_spans) - f0))
    printf '%8s %10s %10s %9s %9s   %s %s %s %s %s\n' "$rate" $((a / per_rate)) $((s / per_rate)) "$r" "$f" \
        "$(peak_mib front)" "$(peak_mib sampler-0)" "$(peak_mib sampler-1)" "$(peak_mib jaeger-0)" "$(peak_mib jaeger-1)"
done
