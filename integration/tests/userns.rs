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
