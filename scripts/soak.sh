#!/usr/bin/env bash
# Soak: the whole suite under a steady open-loop load for a bounded time,
# on loopback only, watching for errors and for memory that keeps growing.
#
#   scripts/soak.sh                         # 10 minutes at 300 requests/s
#   DURATION=5s RATE=50 WARMUP=2s scripts/soak.sh
#   scripts/soak.sh --duration 1m --rate 100 --release
#
# It builds latency-lab (debug unless --release or PROFILE=release; or
# uses LATENCY_LAB_BIN as is), starts the suite with `latency-lab up`
# (embedded OTLP receiver, every port picked free on 127.0.0.1, no Jaeger,
# traces not printed), sends WARMUP of load, takes each service's resident
# memory (VmRSS of /proc/PID/status) as the baseline, then drives it with
# `latency-lab load` for DURATION at RATE, sampling RSS as it goes. It prints
# errors, p99, and RSS at start, after warm-up and at the end with the
# ratio, and exits 1 when there was any error or a service's RSS grew more
# than MAX_GROWTH percent (10) from after warm-up to the end; 2 on a usage
# or start-up problem.
set -euo pipefail

DURATION=${DURATION:-10m}
RATE=${RATE:-300}
WARMUP=${WARMUP:-30s}
SAMPLES=${SAMPLES:-10}
MAX_GROWTH=${MAX_GROWTH:-10}
PROFILE=${PROFILE:-debug}
TARGET_PATH=${TARGET_PATH:-/user-profile/42?mode=concurrent}

usage() {
    sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'
    echo "flags: --duration D --rate R --warmup D --samples N --max-growth PCT --release"
    echo "env:   DURATION RATE WARMUP SAMPLES MAX_GROWTH PROFILE TARGET_PATH LATENCY_LAB_BIN"
}

while [ $# -gt 0 ]; do
    case $1 in
        --duration) DURATION=$2; shift 2 ;;
        --rate) RATE=$2; shift 2 ;;
        --warmup) WARMUP=$2; shift 2 ;;
        --samples) SAMPLES=$2; shift 2 ;;
        --max-growth) MAX_GROWTH=$2; shift 2 ;;
        --release) PROFILE=release; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "soak: unknown argument $1" >&2; usage >&2; exit 2 ;;
    esac
done

# A duration in whole seconds: 90s, 10m, 1h (what the sampling loop needs).
seconds() {
    case $1 in
        *ms) echo 0 ;;
        *s) echo "${1%s}" ;;
        *m) echo $(( ${1%m} * 60 )) ;;
        *h) echo $(( ${1%h} * 3600 )) ;;
        *) echo "soak: a duration such as 30s, 10m or 1h, not $1" >&2; exit 2 ;;
    esac
}
duration_s=$(seconds "$DURATION")
seconds "$WARMUP" >/dev/null
if [ "$duration_s" -lt 1 ] || ! [ "$RATE" -ge 1 ] 2>/dev/null; then
    echo "soak: DURATION must be at least 1s and RATE a whole number of requests/s above 0" >&2
    exit 2
fi

cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [ -n "${LATENCY_LAB_BIN:-}" ]; then
    lab=$LATENCY_LAB_BIN
    PROFILE="given ($lab)"
elif [ "$PROFILE" = release ]; then
    cargo build --release -p latency-lab --locked
    lab=target/release/latency-lab
else
    cargo build -p latency-lab --locked
    lab=target/debug/latency-lab
fi

work=$(mktemp -d)
up_pid=
stop_suite() {
    if [ -n "$up_pid" ] && kill -0 "$up_pid" 2>/dev/null; then
        kill -INT "$up_pid" 2>/dev/null || true
        # `up` stops its services (SIGTERM, then a deadline of its own).
        for _ in $(seq 300); do kill -0 "$up_pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$up_pid" 2>/dev/null || true
    fi
    up_pid=
}
trap 'stop_suite; rm -rf "$work"' EXIT
trap 'exit 130' INT TERM

# Every port free on loopback: a soak never collides with a running suite.
"$lab" up --no-demo --no-follow \
    --aggregator 127.0.0.1:0 --user-service 127.0.0.1:0 --order-service 127.0.0.1:0 \
    --otlp-grpc 127.0.0.1:0 --otlp-http 127.0.0.1:0 \
    --traces-dir "$work/traces" >"$work/up.out" 2>"$work/up.err" &
up_pid=$!
for _ in $(seq 600); do
    grep -q '^latency-lab is up' "$work/up.out" 2>/dev/null && break
    if ! kill -0 "$up_pid" 2>/dev/null; then
        echo "soak: latency-lab up stopped before the suite was up:" >&2
        cat "$work/up.out" "$work/up.err" >&2
        exit 2
    fi
    sleep 0.1
done
base=$(sed -n 's/^  profile-aggregator  *\(http:[^ ]*\).*/\1/p' "$work/up.out")
if [ -z "$base" ]; then
    echo "soak: the suite did not come up within 60 s:" >&2
    cat "$work/up.out" "$work/up.err" >&2
    exit 2
fi
url="$base$TARGET_PATH"

# The three services are `up`'s children: `latency-lab serve <name>`.
services=(profile-aggregator user-service order-service)
declare -A pid start warm peak
for name in "${services[@]}"; do
    pid[$name]=$(pgrep -P "$up_pid" -f "serve $name( |$)" | head -1)
    [ -n "${pid[$name]}" ] || { echo "soak: no $name process under up" >&2; exit 2; }
done
rss() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }
for name in "${services[@]}"; do start[$name]=$(rss "${pid[$name]}"); done

echo "soak: $DURATION at $RATE requests/s (after a $WARMUP warm-up), $PROFILE build, against $url"
echo "  RSS every $((duration_s / SAMPLES > 0 ? duration_s / SAMPLES : 1))s (kB):"
"$lab" load "$url" --rate "$RATE" --duration "$WARMUP" >"$work/warmup.out" 2>&1 || true
for name in "${services[@]}"; do warm[$name]=$(rss "${pid[$name]}"); peak[$name]=${warm[$name]}; done

"$lab" load "$url" --rate "$RATE" --duration "$DURATION" >"$work/load.out" 2>&1 &
load_pid=$!
every=$(( duration_s / SAMPLES )); [ "$every" -ge 1 ] || every=1
elapsed=0
while kill -0 "$load_pid" 2>/dev/null; do
    sleep 1
    elapsed=$((elapsed + 1))
    if [ $((elapsed % every)) -eq 0 ]; then
        line="  ${elapsed}s"
        for name in "${services[@]}"; do
            now=$(rss "${pid[$name]}")
            [ "$now" -gt "${peak[$name]}" ] && peak[$name]=$now
            line="$line  $name ${now} kB"
        done
        echo "$line"
    fi
done
load_status=0
wait "$load_pid" || load_status=$?
declare -A end
for name in "${services[@]}"; do end[$name]=$(rss "${pid[$name]}"); done

requests=$(sed -n 's/^  requests *\([0-9]*\) in .*/\1/p' "$work/load.out" | head -1)
errors=$(sed -n 's/^  errors *\([0-9]*\) (.*/\1/p' "$work/load.out" | head -1)
errors=${errors:-0}
p99=$(sed -n 's/^  latency .* p99 \([0-9.]* [a-zµ]*\) .*/\1/p' "$work/load.out" | head -1)
if [ -z "$requests" ] || [ "$load_status" -ne 0 ]; then
    echo "soak: the load did not finish (exit $load_status):" >&2
    cat "$work/load.out" >&2
    exit 1
fi

echo
# The load's own report up to its histogram: pacing (asked and achieved
# rate, requests sent late), answers, errors by kind, percentiles.
sed -n '1,/^  latency /p' "$work/load.out"
echo
echo "soak summary: $DURATION at $RATE/s, $PROFILE build"
echo "  requests  $requests"
echo "  errors    $errors"
echo "  p99       $p99"
printf '  %-20s %12s %14s %12s %12s %16s\n' "RSS (kB)" start after-warm-up peak end "end/warm-up"
failed=0
[ "$errors" -eq 0 ] || failed=1
for name in "${services[@]}"; do
    ratio=$(awk -v e="${end[$name]}" -v w="${warm[$name]}" 'BEGIN { printf "%.3f", (w > 0 ? e / w : 0) }')
    grew=$(awk -v e="${end[$name]}" -v w="${warm[$name]}" -v m="$MAX_GROWTH" 'BEGIN { print (e > w * (1 + m / 100)) ? 1 : 0 }')
    mark=""
    if [ "$grew" = 1 ]; then mark="  grew more than $MAX_GROWTH %"; failed=1; fi
    printf '  %-20s %12s %14s %12s %12s %16s%s\n' "$name" "${start[$name]}" "${warm[$name]}" "${peak[$name]}" "${end[$name]}" "$ratio" "$mark"
done
if [ "$failed" -eq 0 ]; then
    echo "soak: OK (no errors; RSS within $MAX_GROWTH % of after warm-up)"
else
    echo "soak: FAILED"
fi
exit "$failed"
