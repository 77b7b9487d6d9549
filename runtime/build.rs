// Records the git commit for `berth --version` (engines such as dockerd show it), and
// marks the `berth` binary's link for runtime/link/cc, which makes it a static PIE.
fn main() {
    let commit = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=BERTH_COMMIT={commit}");
    println!("cargo:rerun-if-changed=../.git/HEAD");
    println!("cargo:rerun-if-changed=../.git/index");
    println!("cargo:rerun-if-env-changed=BERTH_DYNAMIC");
    if std::env::var("BERTH_DYNAMIC").map_or(true, |v| v != "1") {
        // Seen only by runtime/link/cc (on other linkers a harmless unused symbol).
        println!("cargo:rustc-link-arg-bin=berth=-Wl,--defsym=berth_static_pie=1");
    }
}
