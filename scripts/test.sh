#!/usr/bin/env bash
# The full test suite, self-sufficient on a fresh Debian machine as root:
# installs the packages it needs, builds, runs the unit/in-process tests and the
# end-to-end scripts under Tests/E2E (network namespaces, as root).
#
#   bash scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
byst_setup
byst_build debug --build-tests

# NoiseVectorTests reads the committed vectors (Tests/BYSTProtoTests/Vectors/), or the file
# that BYST_NOISE_VECTORS names when it is set in the environment.

log=$(mktemp)
trap 'rm -f "$log"' EXIT
swift test --skip-build 2>&1 | tee "$log" | grep -vE "^(◇|↳|Test Suite|Test Case|[[:space:]]+Executed)" || true
unit=$(sed -nE 's/^✔ Test run with ([0-9]+) tests? .*passed.*/\1/p' "$log")
[ -n "$unit" ] || { echo "swift test failed" >&2; exit 1; }

passed=0 failed=0
shopt -s nullglob
for script in Tests/E2E/*.sh; do
    echo "== e2e: $script"
    if bash "$script"; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAILED: $script" >&2; fi
done
# Fuzzing smoke: every libFuzzer target for 30 s (scripts/fuzz.sh; docs/RELIABILITY.md).
echo "== fuzz: scripts/fuzz.sh 30"
if bash scripts/fuzz.sh 30; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAILED: scripts/fuzz.sh" >&2; fi
echo "e2e scripts: $passed ok, $failed failing"
echo "all: $((unit + passed)) passed, $failed failed"
[ "$failed" -eq 0 ]
