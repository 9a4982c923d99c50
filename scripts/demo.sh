#!/usr/bin/env bash
# The main job, self-sufficient on a fresh Debian machine as root: installs packages,
# builds, and shows BYST's key workflow between a hub and a branch (two key stores in a
# temporary directory, removed on exit).
#
#   bash scripts/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
byst_setup
byst_build debug
byst=$PWD/.build/debug/byst

work=$(mktemp -d /tmp/byst-demo.XXXXXX)
trap 'rm -rf "$work"' EXIT INT TERM
hub=$work/hub/keys branch=$work/branch/keys
step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }

step "$byst" key gen branch-1 --store "$hub"
step "$byst" key list --store "$hub"
echo; echo "\$ $byst key export branch-1 --store $hub | $byst key import hub --store $branch"
"$byst" key export branch-1 --store "$hub" | "$byst" key import hub --store "$branch"
step "$byst" key show branch-1 --store "$hub"
step "$byst" key show hub --store "$branch"
step stat -c '%a %n' "$hub" "$branch"
echo
echo "Both stores hold the same key (same key id); the secret never left the pipe."
