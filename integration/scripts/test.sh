#!/usr/bin/env bash
# Every test: unit tests of each crate, then the end-to-end tests of the built binaries.
# Needs root (containers, mounts, cgroups) and busybox-static.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release --workspace --bins
cargo test --release --workspace
