#!/usr/bin/env bash
# Every test: formatting and lints, unit tests of each crate, then the end-to-end tests of
# the built binaries on this host, then the cgroup v2 + systemd lane in a VM (vm-lane.sh).
# Needs root (containers, mounts, cgroups) and what .ci/run installs.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo build --release --workspace --bins
cargo test --release --workspace
bash integration/scripts/vm-lane.sh
