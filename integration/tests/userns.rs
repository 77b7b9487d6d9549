//! User namespaces: the container's root is an unprivileged host id.

use berth_integration::*;

#[test]
fn a_user_namespaced_container_is_root_inside_and_mapped_outside() {
    let t = Test::new("userns_map");
    let mut b = t.bundle();
    b.namespace("user", None);
    b.set("/linux/uidMappings", json!([{"containerID": 0, "hostID": 100000, "size": 65536}]));
    b.set("/linux/gidMappings", json!([{"containerID": 0, "hostID": 100000, "size": 65536}]));
    b.sh("id -u; cat /proc/self/uid_map; cat /proc/self/gid_map; cat /dev/null && echo devices-work; grep -c cgroup /proc/self/mountinfo");
    let o = t.rt.run(&t.id(""), &b);
    o.ok();
    let lines: Vec<String> = o.stdout.lines().map(|l| l.split_whitespace().collect::<Vec<_>>().join(" ")).collect();
    assert_eq!(lines[0], "0", "{}", o.describe());
    assert_eq!(lines[1], "0 100000 65536", "{}", o.describe());
    assert_eq!(lines[2], "0 100000 65536", "{}", o.describe());
    assert_eq!(lines[3], "devices-work", "{}", o.describe());
    assert!(lines[4].parse::<u32>().unwrap() > 0, "no cgroup mounts in the user-namespaced container: {}", o.describe());
}

#[test]
fn a_user_namespaced_containers_process_is_unprivileged_on_the_host() {
    let t = Test::new("userns_host_view");
    let id = t.id("");
    let mut b = t.bundle();
    b.namespace("user", None);
    b.set("/linux/uidMappings", json!([{"containerID": 0, "hostID": 100000, "size": 65536}]));
    b.set("/linux/gidMappings", json!([{"containerID": 0, "hostID": 100000, "size": 65536}]));
    b.args(&["sleep", "100"]);
    t.rt.create(&id, &b).ok();
    t.rt.start(&id).ok();
    let pid = t.rt.state(&id)["pid"].as_i64().unwrap();
    let st = status_fields(&std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap());
    assert!(st["Uid"].starts_with("100000"), "host uid of the container's root: {}", st["Uid"]);
}

/// A user-namespaced bundle (container 0 is host 100000) with mount points `dests` made
/// in its rootfs (its root cannot create them in a rootfs owned by the host's root).
fn userns_bundle(t: &Test, dests: &[&str]) -> Bundle {
    let mut b = t.bundle();
    b.namespace("user", None);
    b.set("/linux/uidMappings", json!([{"containerID": 0, "hostID": 100000, "size": 65536}]));
    b.set("/linux/gidMappings", json!([{"containerID": 0, "hostID": 100000, "size": 65536}]));
    for d in dests {
        std::fs::create_dir_all(b.rootfs().join(d.trim_start_matches('/'))).unwrap();
    }
    b
}

fn idmapped_bind(b: &mut Bundle, src: &std::path::Path, dest: &str, opts: &[&str], map: Option<(u32, u32, u32)>) {
    let mut m = json!({"destination": dest, "type": "bind", "source": src, "options": opts});
    if let Some((c, h, n)) = map {
        m["uidMappings"] = json!([{"containerID": c, "hostID": h, "size": n}]);
        m["gidMappings"] = json!([{"containerID": c, "hostID": h, "size": n}]);
    }
    b.mount(m);
}

#[test]
fn an_idmapped_mount_shows_host_owned_files_as_the_containers_ids() {
    use std::os::unix::fs::MetadataExt;
    let t = Test::new("idmap_mount");
    let src = t.mkdir("src");
    std::fs::write(src.join("user-file"), "x").unwrap();
    std::os::unix::fs::chown(src.join("user-file"), Some(1000), Some(1000)).unwrap();
    std::fs::write(src.join("root-file"), "x").unwrap();
    let mut b = userns_bundle(&t, &["/mapped", "/plain", "/own"]);
    // On-disk 1000 is host 100000: the container's root.
    idmapped_bind(&mut b, &src, "/mapped", &["rbind", "idmap"], Some((1000, 100000, 1)));
    idmapped_bind(&mut b, &src, "/plain", &["rbind"], None);
    // No mappings of its own: the container's (on-disk 0 is host 100000, and so on).
    idmapped_bind(&mut b, &src, "/own", &["rbind", "idmap"], None);
    b.sh("stat -c '%n %u:%g' /mapped/user-file /plain/user-file /own/root-file /own/user-file; \
          touch /own/made-inside 2>/dev/null && echo wrote || echo no-write");
    let o = t.rt.run(&t.id(""), &b);
    o.ok();
    if flavor().is_runc_before(1, 2) {
        // runc 1.1 knows no idmapped mounts: it binds the source as it is.
        assert!(o.stdout.starts_with("/mapped/user-file 65534:65534\n"), "{}", o.describe());
        return;
    }
    assert_eq!(o.stdout, "/mapped/user-file 0:0\n/plain/user-file 65534:65534\n/own/root-file 0:0\n/own/user-file 1000:1000\nwrote\n", "{}", o.describe());
    // Written as the container's root through the container's own mapping: host root's.
    let md = std::fs::metadata(src.join("made-inside")).unwrap();
    assert_eq!((md.uid(), md.gid()), (0, 0));
}

#[test]
fn ridmap_maps_the_submounts_of_an_rbind_and_idmap_only_the_top() {
    let t = Test::new("ridmap");
    let src = t.mkdir("tree");
    let sub = t.mkdir("tree/sub");
    t.mount_tmpfs(&sub);
    for d in [&src, &sub] {
        std::fs::write(d.join("f"), "x").unwrap();
        std::os::unix::fs::chown(d.join("f"), Some(1000), Some(1000)).unwrap();
    }
    let mut b = userns_bundle(&t, &["/rec", "/top"]);
    idmapped_bind(&mut b, &src, "/rec", &["rbind", "ridmap"], Some((1000, 100000, 1)));
    idmapped_bind(&mut b, &src, "/top", &["rbind", "idmap"], Some((1000, 100000, 1)));
    b.sh("stat -c '%n %u' /rec/f /rec/sub/f /top/f /top/sub/f");
    let o = t.rt.run(&t.id(""), &b);
    o.ok();
    if flavor().is_runc_before(1, 2) {
        assert!(o.stdout.starts_with("/rec/f 65534\n"), "{}", o.describe());
        return;
    }
    assert_eq!(o.stdout, "/rec/f 0\n/rec/sub/f 0\n/top/f 0\n/top/sub/f 65534\n", "{}", o.describe());
}

#[test]
fn invalid_idmapped_mounts_are_refused_naming_the_mount() {
    let t = Test::new("idmap_invalid");
    let src = t.mkdir("src");
    let cases: Vec<(bool, Value, &str)> = vec![
        // idmap without mappings takes the container's user namespace: there is none.
        (false, json!({"destination": "/m", "type": "bind", "source": src, "options": ["rbind", "idmap"]}), "there is no user namespace"),
        (
            true,
            json!({"destination": "/m", "type": "bind", "source": src, "options": ["rbind", "idmap"],
                   "uidMappings": [{"containerID": 0, "hostID": 100000, "size": 1}]}),
            "uidMappings and gidMappings must be given together",
        ),
        (
            true,
            json!({"destination": "/m", "type": "tmpfs", "source": "tmpfs", "options": ["idmap"],
                   "uidMappings": [{"containerID": 0, "hostID": 100000, "size": 1}],
                   "gidMappings": [{"containerID": 0, "hostID": 100000, "size": 1}]}),
            "only supported for bind mounts",
        ),
    ];
    for (k, (userns, m, words)) in cases.into_iter().enumerate() {
        let mut b = if userns { userns_bundle(&t, &["/m"]) } else { t.bundle() };
        b.mount(m);
        let o = t.rt.run(&t.id(&k.to_string()), &b);
        if flavor().is_runc_before(1, 2) {
            // runc 1.1 knows no idmapped mounts: it does not check their fields.
            assert!(o.status.code().is_some(), "{}", o.describe());
            continue;
        }
        o.failed().stderr_has(words);
        if *flavor() == Flavor::Berth {
            o.stderr_has("on /m)");
        }
    }
}
