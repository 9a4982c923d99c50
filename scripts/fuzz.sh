#!/usr/bin/env bash
# Builds the libFuzzer targets (Fuzz/: release, our modules instrumented with
# -sanitize=fuzzer,address) and runs each one for a while on a private copy of its seed
# corpus (Fuzz/Corpus/TARGET, which stays as committed). Prints per target: execs/s,
# corpus size, coverage (cov, ft); exits non-zero if any target crashed, naming the crash
# artifact (kept under Fuzz/.build/fuzz-artifacts/). Self-sufficient as root, like test.sh.
#
#   bash scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]      (default: 30 s, every target)
#
# BYST_FUZZ_JOBS=N limits the build to N jobs (default: all cores).
# Reproduce a crash: Fuzz/.build/release/byst-fuzz TARGET ARTIFACT
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
byst_setup

seconds=30
if [ $# -gt 0 ] && [[ $1 =~ ^[0-9]+$ ]]; then seconds=$1; shift; fi

# The fuzz package builds the main package's sources against its own copy of the
# dependency list: a drift would fuzz other code than we ship.
dependencies() { grep -oE '\.package\(url: "[^"]+", from: "[^"]+"\)' "$1" | sort; }
if ! diff <(dependencies Package.swift) <(dependencies Fuzz/Package.swift) >&2; then
    echo "fuzz: Fuzz/Package.swift's dependencies differ from Package.swift's (diff above): keep them in step" >&2
    exit 1
fi
[ "$(dependencies Package.swift | wc -l)" -gt 0 ] || { echo "fuzz: no dependencies found in Package.swift" >&2; exit 1; }

# The fuzz package pins what the main package resolved, when it has.
[ -f Fuzz/Package.resolved ] || [ ! -f Package.resolved ] || cp Package.resolved Fuzz/Package.resolved
log=$(mktemp)
work=$(mktemp -d)
trap 'rm -rf "$log" "$work"' EXIT
jobs=()
[ -z "${BYST_FUZZ_JOBS:-}" ] || jobs=(-j "$BYST_FUZZ_JOBS")
start=$SECONDS
if ! swift build --package-path Fuzz -c release "${jobs[@]}" --product byst-fuzz >"$log" 2>&1 || ! grep -qE "Build (of product '.*' )?complete" "$log"; then
    grep -E "error:" "$log" >&2 || tail -20 "$log" >&2
    echo "fuzz: build failed" >&2
    exit 1
fi
if grep -E "^$PWD/Fuzz/Sources/byst-fuzz/.*warning:" "$log"; then
    echo "fuzz: the fuzz targets have warnings (Swift 6 mode, no warnings allowed)" >&2
    exit 1
fi
echo "fuzz: build took $((SECONDS - start)) s"
binary=Fuzz/.build/release/byst-fuzz
[ $# -gt 0 ] || set -- $("$binary" list)

artifacts=Fuzz/.build/fuzz-artifacts
mkdir -p "$artifacts"
ok=0 crashed=0
for target in "$@"; do
    [ -d "Fuzz/Corpus/$target" ] || { echo "fuzz: no target $target (no Fuzz/Corpus/$target)" >&2; crashed=$((crashed + 1)); continue; }
    corpus=$work/$target
    mkdir -p "$corpus"
    cp Fuzz/Corpus/"$target"/* "$corpus"/
    leaks=1
    # TOMLKit's TOMLTable(string:) leaks on every parse (a dependency's bug, a few hundred
    # bytes per config load): leaks are not what this target can look for.
    [ "$target" != config ] || leaks=0
    # Swift's own crash backtracer would outlive the fuzzer holding its output open.
    status=0
    SWIFT_BACKTRACE=enable=no ASAN_OPTIONS=detect_leaks=$leaks "$binary" "$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$artifacts/$target-" "$corpus" >"$work/$target.log" 2>&1 \
        || status=$?
    final=$(grep -E "^#[0-9]+.*(cov|ft):" "$work/$target.log" | tail -1 || true)
    cov=$(sed -nE 's/.* cov: ([0-9]+).*/\1/p' <<<"$final")
    ft=$(sed -nE 's/.* ft: ([0-9]+).*/\1/p' <<<"$final")
    units=$(sed -nE 's/^stat::number_of_executed_units:[[:space:]]+([0-9]+)/\1/p' "$work/$target.log" | tail -1)
    rate=$(sed -nE 's/^stat::average_exec_per_sec:[[:space:]]+([0-9]+)/\1/p' "$work/$target.log" | tail -1)
    rss=$(sed -nE 's/^stat::peak_rss_mb:[[:space:]]+([0-9]+)/\1/p' "$work/$target.log" | tail -1)
    files=$(find "$corpus" -type f | wc -l)
    bytes=$(du -sb "$corpus" | cut -f1)
    printf 'fuzz: %-9s %8s execs/s  %9s execs  corpus %5s files (%s bytes)  cov %6s  ft %6s  rss %s MB\n' \
        "$target" "${rate:-?}" "${units:-?}" "$files" "$bytes" "${cov:-?}" "${ft:-?}" "${rss:-?}"
    if [ "$status" -eq 0 ]; then
        ok=$((ok + 1))
    else
        crashed=$((crashed + 1))
        echo "FAILED: fuzz target $target (exit $status)" >&2
        grep -E "ERROR: |SUMMARY: |invariant broken|Fatal error|Test unit written to|Base64:" "$work/$target.log" | head -20 >&2 || true
        tail -40 "$work/$target.log" > "$artifacts/$target.log"
        echo "  log tail: $artifacts/$target.log; reproduce: $binary $target <artifact>" >&2
    fi
done
echo "fuzz targets: $ok ok, $crashed crashing"
[ "$crashed" -eq 0 ]
