#!/usr/bin/env bash
# Runs the coverage-guided fuzz targets in fuzz/ (cargo-fuzz, nightly), one after another,
# each for RUNS inputs (default 10,000,000) as a single niced job.
#
#   scripts/fuzz.sh [RUNS] [TARGET...]
#
# Needs `rustup toolchain install nightly` and `cargo install cargo-fuzz`. Each target
# starts from its seed corpus, fuzz/corpus/<target>/ (written by
# `cargo +nightly run --manifest-path fuzz/Cargo.toml --example write_corpus`), and keeps
# what it learns in fuzz/work/<target>/; crashes go to fuzz/artifacts/<target>/ and the
# run's log to fuzz/work/<target>.log. Each input may take 10 s, a single allocation
# 512 MiB and the process 2 GiB before libFuzzer reports it. The frame decoder's inputs are
# programs (pushes of chunks, reads) whose cost grows with their length: they are kept to
# 256 bytes, which still push up to 320 KiB.
set -euo pipefail

runs="${1:-10000000}"
shift || true
cd "$(dirname "$0")/.."
if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo +nightly fuzz list)
fi

nice -n 10 cargo +nightly fuzz build -O
for target in "${targets[@]}"; do
    mkdir -p "fuzz/work/$target"
    log="fuzz/work/$target.log"
    max_len=4096
    if [ "$target" = frame_decoder ]; then max_len=256; fi
    start=$(date +%s)
    nice -n 10 cargo +nightly fuzz run -O "$target" "fuzz/work/$target" "fuzz/corpus/$target" -- \
        -runs="$runs" -max_len="$max_len" -timeout=10 -malloc_limit_mb=512 -rss_limit_mb=2048 \
        -print_final_stats=1 >"$log" 2>&1 || {
        echo "$target: FAILED after $(($(date +%s) - start)) s; see $log and fuzz/artifacts/$target/"
        exit 1
    }
    summary=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -1)
    echo "$target: $(($(date +%s) - start)) s; ${summary}"
done
