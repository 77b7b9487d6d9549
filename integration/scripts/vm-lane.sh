#!/usr/bin/env bash
# The cgroup v2 + systemd lane: the suites that need the layout real hosts run, in one VM
# booted by vm.sh (Debian's kernel, pure cgroup v2, systemd as PID 1 with the D-Bus
# system bus). The test binaries are built here, on the host, and run in the VM from the
# shared checkout.
#
#   bash integration/scripts/vm-lane.sh            # every lane suite
#   bash integration/scripts/vm-lane.sh systemd_cgroup cgroups_v2   # some of them
#
# In the VM, BERTH_VM_LANE is set: a lane test that finds the wrong layout fails
# instead of skipping; BERTH_E2E_LANE=v2-systemd makes the engine suites run their lane
# scenarios on systemd's cgroup driver (they fail if it is not in use). The runtime-level
# suites run twice, with berth and with runc (the proof that a test is right); the engine
# suites run both runtimes themselves.
# Prints a summary; exits non-zero if any suite failed.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here/../.."

# Suites whose tests take a runtime through BERTH_RUNTIME (run with berth and with runc).
runtime_suites=(systemd_cgroup cgroups_v2 checkpoint)
# Suites that run both runtimes in one binary.
engine_suites=(engine_podman engine_docker engine_containerd)

if [ "${1:-}" = --guest ]; then
    # In the VM: "--guest SUITE=EXE..." runs each, then prints the summary.
    shift
    summary=()
    failed=0
    for pair in "$@"; do
        name="${pair%%=*}"
        exe="${pair#*=}"
        runs=("berth")
        for r in "${runtime_suites[@]}"; do [ "$r" = "$name" ] && runs=(berth runc); done
        for rt in "${runs[@]}"; do
            label="$name"
            [ "${#runs[@]}" -gt 1 ] && label="$name ($rt)"
            echo "=== $label" >&2
            start=$SECONDS
            if [ "$rt" = runc ]; then
                BERTH_RUNTIME=/usr/sbin/runc "$exe" --test-threads=2 && r=pass || r=FAIL
            else
                "$exe" --test-threads=2 && r=pass || r=FAIL
            fi
            [ "$r" = pass ] || failed=1
            summary+=("$(printf '%-32s %-4s %4ds' "$label" "$r" $((SECONDS - start)))")
        done
    done
    echo "=== VM lane (cgroup v2, systemd $(systemctl --version | head -n1 | awk '{print $2}'), kernel $(uname -r))"
    printf '%s\n' "${summary[@]}"
    exit "$failed"
fi

suites=("$@")
[ "${#suites[@]}" -gt 0 ] || suites=("${runtime_suites[@]}" "${engine_suites[@]}")

cargo build --release --workspace --bins
args=()
for s in "${suites[@]}"; do args+=(--test "$s"); done
# The executables cargo built for each suite, from its JSON messages.
cargo test --release -p berth-integration --no-run --message-format=json "${args[@]}" > target/vm-lane-build.json
pairs=()
for s in "${suites[@]}"; do
    exe=$(python3 -c '
import json, sys
for line in open(sys.argv[1]):
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == sys.argv[2] and m.get("executable"):
        print(m["executable"])
' target/vm-lane-build.json "$s")
    [ -n "$exe" ] || { echo "vm-lane.sh: no test binary for $s" >&2; exit 1; }
    pairs+=("$s=$exe")
done

exec bash "$here/vm.sh" --cgroup v2 --init systemd --mem "${BERTH_VM_MEM:-4096}" \
    --env BERTH_VM_LANE=v2-systemd --env BERTH_E2E_LANE=v2-systemd --env BERTH_E2E_REQUIRE_ENGINES=1 \
    -- bash "$here/vm-lane.sh" --guest "${pairs[@]}"
