#!/usr/bin/env bash
# The VM lane: run one command as root in a throwaway VM that boots Debian's kernel with
# another cgroup layout than this host's (pure cgroup v2 by default, with systemd as
# PID 1), and exit with the command's status.
#
#   bash integration/scripts/vm.sh [--cgroup v2|hybrid] [--init systemd|direct]
#        [--mem MB] [--cpus N] [--share PATH]... [--env NAME[=VALUE]]...
#        [--accel tcg|kvm|auto] [--timeout S] [--boot-timeout S] [--console FILE]
#        -- COMMAND [ARG...]
#
# The guest sees the host's root filesystem read-only over 9p, with a tmpfs overlay on
# top (so /etc, /run and /var/lib are writable; changes vanish with the VM), fresh tmpfs
# on /tmp, /var/tmp and the engines' default state dirs, and, writable and shared with the
# host at the same paths, this checkout (with its target/) and each --share (a test's temp
# dir, say). COMMAND runs as root in the caller's working directory (/ when the guest
# has no such directory) with /dev/null as stdin; its stdout and stderr arrive here as
# it writes them. BERTH_* and RUST_* variables and each --env are passed in.
#
# Needs: qemu-system-x86_64 (Debian's qemu-system-x86; from bookworm-backports on this
# machine, to match qemu-utils), a Debian kernel in /boot with its modules
# (linux-image-amd64), busybox (busybox-static) and cpio. `.ci/run` installs them.
#
# Exit status: COMMAND's, or 125 when the VM did not boot or run (the console log is
# printed), 124 when --timeout ran out. Nothing is left running: qemu is stopped by its
# pid on every exit path and the run directory is removed.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
checkout="$(cd "$here/../.." && pwd)"

cgroup=v2
init=systemd
mem=3072
cpus=$(nproc)
accel=tcg
timeout=3600
boot_timeout=300
console_out=""
shares=()
envs=()

die() { echo "vm.sh: $*" >&2; exit 125; }
usage() { sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 125; }

while [ $# -gt 0 ]; do
    case "$1" in
        --cgroup) cgroup="${2:?}"; shift 2 ;;
        --init) init="${2:?}"; shift 2 ;;
        --mem) mem="${2:?}"; shift 2 ;;
        --cpus) cpus="${2:?}"; shift 2 ;;
        --share) shares+=("$(realpath -m "${2:?}")"); shift 2 ;;
        --env) envs+=("${2:?}"); shift 2 ;;
        --accel) accel="${2:?}"; shift 2 ;;
        --timeout) timeout="${2:?}"; shift 2 ;;
        --boot-timeout) boot_timeout="${2:?}"; shift 2 ;;
        --console) console_out="${2:?}"; shift 2 ;;
        --) shift; break ;;
        -h|--help) usage ;;
        *) echo "vm.sh: unknown option $1" >&2; usage ;;
    esac
done
[ $# -gt 0 ] || { echo "vm.sh: no COMMAND after --" >&2; usage; }
case "$cgroup" in v2|hybrid) ;; *) die "--cgroup must be v2 or hybrid, not $cgroup" ;; esac
case "$init" in systemd|direct) ;; *) die "--init must be systemd or direct, not $init" ;; esac
case "$accel" in tcg|kvm|auto) ;; *) die "--accel must be tcg, kvm or auto, not $accel" ;; esac
[[ "$mem" =~ ^[0-9]+$ && "$cpus" =~ ^[0-9]+$ && "$timeout" =~ ^[0-9]+$ && "$boot_timeout" =~ ^[0-9]+$ ]] ||
    die "--mem, --cpus, --timeout and --boot-timeout take whole numbers"
[ "$(id -u)" = 0 ] || die "needs root (the guest's 9p view of / is read as root)"

qemu=$(command -v qemu-system-x86_64) || die "qemu-system-x86_64 is missing: apt-get install -t bookworm-backports qemu-system-x86"
busybox=$(command -v busybox) || die "busybox is missing: apt-get install busybox-static"
command -v cpio >/dev/null || die "cpio is missing: apt-get install cpio"
kernel="${BERTH_VM_KERNEL:-$(ls -1 /boot/vmlinuz-* 2>/dev/null | sort -V | tail -n1)}"
[ -n "$kernel" ] && [ -r "$kernel" ] || die "no kernel in /boot: apt-get install linux-image-amd64"
kver="${kernel##*/vmlinuz-}"
moddir="/lib/modules/$kver"
[ -r "$moddir/modules.dep" ] || die "no modules for $kver in $moddir"

# The checkout is shared writable, so that what a command writes there (target/,
# bench.json) is on the host afterwards.
shares+=("$checkout")
cwd="$(pwd)"
for s in "${shares[@]}"; do [ -d "$s" ] || die "--share $s: not a directory"; done

# Run dirs of earlier runs that were SIGKILLed (no trap ran) and whose vm.sh is gone.
for old in /tmp/berth-vm.*; do
    [ -f "$old/owner" ] || continue
    kill -0 "$(cat "$old/owner")" 2>/dev/null || rm -rf "$old"
done
run="$(mktemp -d /tmp/berth-vm.XXXXXX)"
echo $$ > "$run/owner"
qpid=""
tails=()
cleanup() {
    local rc=$?
    if [ -n "$qpid" ] && kill -0 "$qpid" 2>/dev/null; then
        kill -TERM "$qpid" 2>/dev/null || true
        for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$qpid" 2>/dev/null || break; sleep 0.2; done
        kill -KILL "$qpid" 2>/dev/null || true
        wait "$qpid" 2>/dev/null || true
    fi
    for t in "${tails[@]}"; do kill "$t" 2>/dev/null || true; wait "$t" 2>/dev/null || true; done
    rm -rf "$run"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- the initramfs: busybox, the modules for virtio 9p and overlayfs, and our /init ----
stage="$run/initramfs"
mkdir -p "$stage"/{bin,dev,proc,sys,lower,upper,newroot,modules}
cp "$busybox" "$stage/bin/busybox"
cp "$here/vm-guest-init" "$stage/init"
chmod 755 "$stage/init"
# Each wanted module after the modules it needs (modules.dep lists them per module).
declare -A seen=()
order=()
add_module() {
    local name="$1" line path dep
    line=$(grep -E "(^|/)$name\.ko(\.[a-z]+)?:" "$moddir/modules.dep" | head -n1) || true
    # Built into the kernel: nothing to load.
    [ -n "$line" ] || return 0
    path="${line%%:*}"
    [ -z "${seen[$path]:-}" ] || return 0
    seen[$path]=1
    for dep in ${line#*:}; do
        dep="${dep##*/}"
        add_module "${dep%%.ko*}"
    done
    order+=("$path")
}
for m in virtio_pci 9pnet_virtio 9p overlay; do add_module "$m"; done
for path in "${order[@]}"; do
    case "$path" in
        *.ko) cp "$moddir/$path" "$stage/modules/" ;;
        *.ko.xz) xz -dc "$moddir/$path" > "$stage/modules/$(basename "${path%.xz}")" ;;
        *.ko.zst) zstd -qdc "$moddir/$path" > "$stage/modules/$(basename "${path%.zst}")" ;;
        *) die "unknown module file $path" ;;
    esac
    basename "${path%.ko*}.ko" >> "$stage/modules/order"
done
(cd "$stage" && find . -print0 | cpio --null -o -H newc --quiet) > "$run/initrd.img"

# ---- what the guest runs: the command, its environment and the shares ----
io="$run/io"
mkdir -p "$io"
{
    echo "set -e"
    printf 'export PATH=%q\n' "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    printf 'export HOME=/root\n'
    while IFS= read -r name; do
        printf 'export %s=%q\n' "$name" "${!name}"
    done < <(compgen -e | grep -E '^(BERTH_|RUST_)' || true)
    for e in "${envs[@]}"; do
        if [[ "$e" == *=* ]]; then printf 'export %s=%q\n' "${e%%=*}" "${e#*=}"
        else printf 'export %s=%q\n' "$e" "${!e-}"; fi
    done
    printf 'cd %q 2>/dev/null || cd /\n' "$cwd"
    echo "set +e"
    printf 'exec'; printf ' %q' "$@"; printf '\n'
} > "$io/cmd"
# Shares mount in path order, so that a share inside another lands on top of it.
printf '%s\n' "${shares[@]}" | sort -u > "$io/shares.list"

qemu_args=(-nodefaults -no-user-config -display none -no-reboot
    -machine q35 -smp "$cpus" -m "$mem"
    -kernel "$kernel" -initrd "$run/initrd.img"
    -serial "file:$run/console.log"
    -device virtio-rng-pci
    -fsdev "local,id=hostroot,path=/,security_model=none,readonly=on,multidevs=remap"
    -device virtio-9p-pci,fsdev=hostroot,mount_tag=hostroot
    -fsdev "local,id=berthio,path=$io,security_model=none"
    -device virtio-9p-pci,fsdev=berthio,mount_tag=berthio)
i=0
while IFS= read -r s; do
    qemu_args+=(-fsdev "local,id=share$i,path=$s,security_model=passthrough,multidevs=remap"
        -device "virtio-9p-pci,fsdev=share$i,mount_tag=share$i")
    i=$((i + 1))
done < "$io/shares.list"

append="console=ttyS0 panic=-1 loglevel=4 rdinit=/init berth.init=$init berth.cgroup=$cgroup"
if [ "$cgroup" = v2 ]; then
    append+=" cgroup_no_v1=all systemd.unified_cgroup_hierarchy=1"
else
    append+=" systemd.unified_cgroup_hierarchy=0 systemd.legacy_systemd_cgroup_controller=0"
fi
if [ "$init" = systemd ]; then
    append+=" systemd.unit=berth-vm.target systemd.show_status=0 systemd.log_level=warning"
fi

# Starts qemu with one accelerator; sets qpid. qemu dies with this script even when it
# is SIGKILLed (no trap runs then): setpriv gives it a parent-death signal.
start_qemu() {
    local a="$1"
    rm -f "$io/booted" "$io/status" "$io/stdout" "$io/stderr"
    : > "$io/stdout"; : > "$io/stderr"; : > "$run/console.log"
    if [ "$a" = kvm ]; then
        setpriv --pdeathsig KILL -- "$qemu" "${qemu_args[@]}" -accel kvm -cpu "${BERTH_VM_KVM_CPU:-host}" -append "$append" </dev/null >>"$run/qemu.log" 2>&1 &
    else
        setpriv --pdeathsig KILL -- "$qemu" "${qemu_args[@]}" -accel tcg,thread=multi -cpu max -append "$append" </dev/null >>"$run/qemu.log" 2>&1 &
    fi
    qpid=$!
}

# Waits until the guest has booted (its runner touched io/booted); false when qemu died
# or the wait ran out (then qemu is stopped).
wait_boot() {
    local limit="$1" start=$SECONDS
    while [ ! -e "$io/booted" ]; do
        if ! kill -0 "$qpid" 2>/dev/null; then return 1; fi
        if [ $((SECONDS - start)) -ge "$limit" ]; then
            kill -KILL "$qpid" 2>/dev/null || true
            wait "$qpid" 2>/dev/null || true
            return 1
        fi
        sleep 0.2
    done
}

show_console() {
    echo "vm.sh: $1; the last lines of the guest console and of qemu:" >&2
    tail -n 40 "$run/console.log" >&2 || true
    tail -n 10 "$run/qemu.log" >&2 || true
    if [ -n "$console_out" ]; then cp "$run/console.log" "$console_out" || true; fi
}

booted=0
if [ "$accel" != tcg ] && [ -w /dev/kvm ]; then
    # Nested KVM may hang before the kernel prints anything: give it a short time.
    start_qemu kvm
    if wait_boot "$([ "$accel" = auto ] && echo 60 || echo "$boot_timeout")"; then
        booted=1
    elif [ "$accel" = kvm ]; then
        show_console "the VM did not boot with KVM within ${boot_timeout}s"
        exit 125
    else
        echo "vm.sh: no boot with KVM within 60s; using TCG" >&2
    fi
elif [ "$accel" = kvm ]; then
    die "--accel kvm: /dev/kvm is not usable"
fi
if [ "$booted" = 0 ]; then
    start_qemu tcg
    wait_boot "$boot_timeout" || { show_console "the VM did not boot within ${boot_timeout}s"; exit 125; }
fi

# Stream the command's output as the guest writes it; tail ends when qemu does.
tail -n +1 -s 0.2 --pid="$qpid" -f "$io/stdout" &
tails+=($!)
tail -n +1 -s 0.2 --pid="$qpid" -f "$io/stderr" >&2 &
tails+=($!)

start=$SECONDS
timed_out=0
while kill -0 "$qpid" 2>/dev/null; do
    if [ -e "$io/status" ]; then
        # The guest powers off right after writing the status: allow it a moment.
        for _ in $(seq 1 150); do kill -0 "$qpid" 2>/dev/null || break; sleep 0.2; done
        break
    fi
    if [ $((SECONDS - start)) -ge "$timeout" ]; then
        timed_out=1
        break
    fi
    sleep 0.5
done
if kill -0 "$qpid" 2>/dev/null; then
    kill -KILL "$qpid" 2>/dev/null || true
fi
wait "$qpid" 2>/dev/null || true
for t in "${tails[@]}"; do wait "$t" 2>/dev/null || true; done
tails=()
if [ -n "$console_out" ]; then cp "$run/console.log" "$console_out"; fi

if [ "$timed_out" = 1 ]; then
    echo "vm.sh: the command did not finish within ${timeout}s; the VM was stopped" >&2
    exit 124
fi
status=$(cat "$io/status" 2>/dev/null || true)
if ! [[ "$status" =~ ^[0-9]+$ ]]; then
    show_console "the guest stopped without reporting the command's exit status"
    exit 125
fi
exit "$status"
