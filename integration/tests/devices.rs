//! /dev in the container: the default devices and symlinks every runtime provides, and
//! the config's linux.devices.

use berth_integration::*;

#[track_caller]
fn run_ok(t: &Test, b: &Bundle) -> String {
    let o = t.rt.run(&t.id(""), b);
    o.ok();
    o.stdout
}

#[test]
fn default_devices_exist_with_their_numbers_and_modes() {
    let t = Test::new("default_devices");
    let mut b = t.bundle();
    b.sh("for d in null zero full random urandom tty; do stat -c '%n %F %t:%T %a' /dev/$d; done");
    // Major and minor in hex, as stat prints them.
    assert_eq!(
        run_ok(&t, &b),
        "/dev/null character special file 1:3 666\n\
         /dev/zero character special file 1:5 666\n\
         /dev/full character special file 1:7 666\n\
         /dev/random character special file 1:8 666\n\
         /dev/urandom character special file 1:9 666\n\
         /dev/tty character special file 5:0 666\n"
    );
}

#[test]
fn default_devices_work() {
    let t = Test::new("devices_work");
    let mut b = t.bundle();
    b.sh("echo gone > /dev/null && echo null-ok; \
          head -c 5 /dev/zero | wc -c; head -c 7 /dev/urandom | wc -c; \
          { echo x > /dev/full; } 2>&1; echo full-rc=$?");
    let out = run_ok(&t, &b);
    let lines: Vec<&str> = out.lines().map(str::trim).collect();
    assert_eq!(lines[..3], ["null-ok", "5", "7"], "{out}");
    assert!(out.contains("No space left on device") && out.contains("full-rc=1"), "{out}");
}

#[test]
fn dev_symlinks_point_into_proc() {
    let t = Test::new("dev_symlinks");
    let mut b = t.bundle();
    b.sh("for l in fd stdin stdout stderr ptmx; do echo $l=$(readlink /dev/$l); done");
    assert_eq!(run_ok(&t, &b), "fd=/proc/self/fd\nstdin=/proc/self/fd/0\nstdout=/proc/self/fd/1\nstderr=/proc/self/fd/2\nptmx=pts/ptmx\n");
}

#[test]
fn stdio_through_dev_symlinks_reaches_the_runtimes_stdio() {
    let t = Test::new("dev_stdout");
    let mut b = t.bundle();
    b.sh("echo via-dev-stdout > /dev/stdout; echo via-dev-stderr > /dev/stderr");
    let o = t.rt.run(&t.id(""), &b);
    o.ok();
    assert_eq!(o.stdout, "via-dev-stdout\n");
    assert!(o.stderr.contains("via-dev-stderr"), "{}", o.describe());
}

#[test]
fn linux_devices_are_created_with_type_numbers_mode_and_owner() {
    let t = Test::new("linux_devices");
    let mut b = t.bundle();
    b.push(
        "/linux/devices",
        json!({"path": "/dev/mynull", "type": "c", "major": 1, "minor": 3,
                                    "fileMode": 0o640, "uid": 1000, "gid": 1001}),
    );
    b.push(
        "/linux/devices",
        json!({"path": "/dev/sub/dir/myzero", "type": "c", "major": 1, "minor": 5,
                                    "fileMode": 0o666, "uid": 0, "gid": 0}),
    );
    b.sh("stat -c '%F %t:%T %a %u:%g' /dev/mynull /dev/sub/dir/myzero; echo x > /dev/sub/dir/myzero && echo write-ok; head -c 3 /dev/sub/dir/myzero | wc -c");
    let out = run_ok(&t, &b);
    let lines: Vec<&str> = out.lines().map(str::trim).collect();
    assert_eq!(lines, ["character special file 1:3 640 1000:1001", "character special file 1:5 666 0:0", "write-ok", "3"]);
}

#[test]
fn a_fifo_device_can_be_created() {
    let t = Test::new("fifo_device");
    let mut b = t.bundle();
    b.push("/linux/devices", json!({"path": "/dev/myfifo", "type": "p", "fileMode": 0o600}));
    b.sh("stat -c '%F %a' /dev/myfifo");
    assert_eq!(run_ok(&t, &b), "fifo 600\n");
}

#[test]
fn a_device_path_that_climbs_out_of_dev_is_refused_naming_the_field() {
    let t = Test::new("device_dotdot");
    let mut b = t.bundle();
    b.push("/linux/devices", json!({"path": "/dev/../etc/x", "type": "b", "major": 7, "minor": 0, "fileMode": 0o600}));
    let etc_x = b.rootfs().join("etc/x");
    let o = t.rt.run(&t.id(""), &b);
    if flavor().is_runc() {
        // runc resolves the path inside the rootfs and makes the node where it lands.
        o.ok();
        assert!(std::fs::symlink_metadata(&etc_x).is_ok(), "runc made no node at /etc/x");
        return;
    }
    o.failed().stderr_has("linux.devices[0].path");
    assert!(std::fs::symlink_metadata(&etc_x).is_err(), "a node was made at {} all the same", etc_x.display());
}

#[test]
fn a_device_path_led_out_of_dev_by_a_rootfs_symlink_is_refused() {
    // With the image's own /dev (no tmpfs on it), a symlink there decides where a path
    // lands: /dev/net -> /etc would put the node at /etc/tun.
    let t = Test::new("device_symlink");
    let mut b = t.bundle();
    let mounts: Vec<Value> = b.config["mounts"].as_array().unwrap().iter().filter(|m| m["destination"] != "/dev").cloned().collect();
    b.set("/mounts", Value::Array(mounts));
    std::os::unix::fs::symlink("/etc", b.rootfs().join("dev/net")).unwrap();
    b.push("/linux/devices", json!({"path": "/dev/net/tun", "type": "c", "major": 10, "minor": 200, "fileMode": 0o666}));
    let tun = b.rootfs().join("etc/tun");
    let o = t.rt.run(&t.id(""), &b);
    if flavor().is_runc() {
        // runc follows the rootfs's symlink (inside the rootfs) and makes the node there.
        o.ok();
        assert!(std::fs::symlink_metadata(&tun).is_ok(), "runc made no node at /etc/tun");
        return;
    }
    o.failed().stderr_has("linux.devices[0].path").stderr_has("/dev/net/tun").stderr_has("resolves to /etc/tun");
    assert!(std::fs::symlink_metadata(&tun).is_err(), "a node was made at {} all the same", tun.display());
}
