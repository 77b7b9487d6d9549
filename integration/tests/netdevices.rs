//! `linux.netDevices`: a host network device moves into the container's network
//! namespace, renamed, up, with its permanent global address; when the namespace goes,
//! the kernel destroys a virtual device (a physical one would come back to the host).
//! The tests make veth pairs (this kernel has no dummy driver) with names of their own
//! and delete them in every case.

use berth_integration::*;
use std::process::Command;

/// A veth pair on the host (the device under test and its peer), deleted on drop if it
/// is still there (deleting one end deletes both).
struct Veth(String);

impl Veth {
    fn new(tag: &str) -> Veth {
        let name = format!("bt{tag}{}", std::process::id() % 100_000);
        let peer = format!("bt{tag}p{}", std::process::id() % 100_000);
        ip(&["link", "add", &name, "type", "veth", "peer", "name", &peer]);
        Veth(name)
    }
    fn exists(&self) -> bool {
        std::path::Path::new("/sys/class/net").join(&self.0).exists()
    }
}

impl Drop for Veth {
    fn drop(&mut self) {
        if self.exists() {
            let _ = procs::output(Command::new("ip").args(["link", "del", &self.0]));
        }
    }
}

#[track_caller]
fn ip(args: &[&str]) {
    let o = procs::output(Command::new("ip").args(args)).unwrap();
    assert!(o.status.success(), "ip {args:?}: {}", String::from_utf8_lossy(&o.stderr));
}

fn supported() -> bool {
    !flavor().is_runc_before(1, 3)
}

#[test]
fn a_host_device_moves_in_renamed_up_with_its_address_and_dies_with_the_namespace() {
    if !supported() {
        return;
    }
    let t = Test::new("netdev_move");
    let dev = Veth::new("m");
    ip(&["addr", "add", "10.213.77.1/24", "dev", &dev.0]);
    let mut b = t.bundle();
    b.set("/linux/netDevices", json!({ &dev.0: {"name": "ctr0"} }));
    // flags bit 0 is IFF_UP; fib_trie lists the namespace's local addresses.
    b.sh("cat /sys/class/net/ctr0/flags; grep -c 10.213.77.1 /proc/net/fib_trie; ls /sys/class/net | sort | tr '\\n' ' '");
    let o = t.rt.run(&t.id(""), &b);
    o.ok();
    let lines: Vec<&str> = o.stdout.lines().collect();
    let flags = u32::from_str_radix(lines[0].trim_start_matches("0x"), 16).unwrap();
    assert_eq!(flags & 1, 1, "ctr0 is not up: {}", o.describe());
    assert_ne!(lines[1], "0", "the address did not follow the device: {}", o.describe());
    assert_eq!(lines[2], "ctr0 lo ", "{}", o.describe());
    // The container is gone, so is its namespace: the kernel destroys a virtual device
    // (and a veth's peer with it).
    wait_until(std::time::Duration::from_secs(10), "the moved veth to be destroyed", || !dev.exists());
    assert!(!std::path::Path::new("/sys/class/net/ctr0").exists(), "ctr0 came back to the host");
}

#[test]
fn a_missing_device_or_a_bad_name_is_refused_by_name() {
    if !supported() {
        return;
    }
    let t = Test::new("netdev_bad");
    let dev = Veth::new("b");
    let mut b = t.bundle();
    b.set("/linux/netDevices", json!({ format!("{}x", dev.0): {} }));
    t.rt.run(&t.id(""), &b).failed().stderr_has("linux.netDevices");
    b.set("/linux/netDevices", json!({ &dev.0: {"name": "a/b"} }));
    t.rt.run(&t.id("name"), &b).failed().stderr_has("linux.netDevices");
    b.set("/linux/netDevices", json!({ &dev.0: {} }));
    b.without_namespace("network");
    t.rt.run(&t.id("nonetns"), &b).failed().stderr_has("linux.netDevices");
    assert!(dev.exists(), "a refused config moved the device");
    assert!(t.rt.list_ids().is_empty());
}
