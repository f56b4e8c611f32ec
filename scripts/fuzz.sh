#!/usr/bin/env bash
# Runs the fuzz targets in fuzz/ (cargo-fuzz, libFuzzer) for a bounded time
# each and fails if any of them crashes: a panic, or a broken property such
# as a value that no longer parses back to itself.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
#
# SECONDS_PER_TARGET defaults to 300; no TARGET means every target
# (`cargo fuzz list`). Needs cargo-fuzz (`cargo install cargo-fuzz --locked`).
#
# Toolchain: nightly when rustup has one, with AddressSanitizer (it needs
# -Zsanitizer); otherwise the default toolchain without a sanitizer
# (`-s none` needs no unstable flag). FUZZ_SANITIZER overrides the choice
# (CI sets `none`: a shorter build, and safe Rust panics without one).
#
# New inputs go to fuzz/target/corpus/TARGET (kept between runs, not
# committed); the seeds in fuzz/corpus/TARGET are only read, and so is a
# libFuzzer dictionary fuzz/dict/TARGET.dict if there is one. A crash is
# saved under fuzz/artifacts/TARGET/; replay it with the command printed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

seconds=${1:-300}
shift || true
if ! [[ $seconds =~ ^[1-9][0-9]*$ ]]; then
    echo "usage: scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]" >&2
    exit 2
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "cargo-fuzz not found: cargo install cargo-fuzz --locked" >&2
    exit 1
fi

toolchain=()
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    toolchain=(+nightly)
    sanitizer=${FUZZ_SANITIZER:-address}
else
    sanitizer=${FUZZ_SANITIZER:-none}
    if [ "$sanitizer" != none ]; then
        echo "no nightly toolchain: a sanitizer needs one (rustup toolchain install nightly)" >&2
        exit 1
    fi
fi
fuzz=(cargo "${toolchain[@]}" fuzz)
# Debug builds: quick to build, with overflow checks (see fuzz/Cargo.toml).
flags=(--dev --sanitizer "$sanitizer")

if [ $# -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <("${fuzz[@]}" list)
fi

echo "fuzz: ${targets[*]}: ${seconds} s each, $("${fuzz[@]}" --version), sanitizer $sanitizer"
"${fuzz[@]}" build "${flags[@]}"

logs=fuzz/target/logs
mkdir -p "$logs"
failed=()
for target in "${targets[@]}"; do
    corpus=fuzz/target/corpus/$target
    mkdir -p "$corpus"
    log=$logs/$target.log
    # -timeout: one input taking seconds is a hang, and a failure.
    options=(-max_total_time="$seconds" -timeout=10 -print_final_stats=1)
    if [ -f "fuzz/dict/$target.dict" ]; then
        options+=(-dict="fuzz/dict/$target.dict")
    fi
    if "${fuzz[@]}" run "${flags[@]}" "$target" "$corpus" "fuzz/corpus/$target" -- \
        "${options[@]}" >"$log" 2>&1; then
        echo "$target: $(grep -E '^Done [0-9]+ runs' "$log" || echo done), corpus $(find "$corpus" -type f | wc -l) inputs"
    else
        echo "$target: FAILED (full log: $log)"
        tail -n 40 "$log"
        failed+=("$target")
    fi
done

if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz: ${failed[*]} failed; the inputs are in fuzz/artifacts/" >&2
    exit 1
fi
