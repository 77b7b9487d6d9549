use super::auth::{base64_decode, base64_encode, parse_challenges, AuthConfig, Credential};
use super::blobstore::{BlobStore, DirBlobStore};
use super::client::{is_loopback, Client, ClientOptions};
use super::digest::{Digest, VerifyingReader};
use super::media;
use super::pull::choose_platform;
use super::reference::Reference;
use super::ErrorKind;
use berth_spec::image::{Descriptor, Index, Platform};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// A temp dir removed on drop (also when the test fails).
struct TmpDir(PathBuf);

impl std::ops::Deref for TmpDir {
    type Target = PathBuf;
    fn deref(&self) -> &PathBuf {
        &self.0
    }
}

impl Drop for TmpDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn tmpdir(name: &str) -> TmpDir {
    static N: AtomicUsize = AtomicUsize::new(0);
    let d = std::env::temp_dir().join(format!("berth-registry-unit-{}-{}-{name}", std::process::id(), N.fetch_add(1, Ordering::SeqCst)));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    TmpDir(d)
}

#[test]
fn reference_normalization() {
    let cases = [
        ("alpine", "docker.io/library/alpine:latest", "alpine:latest"),
        ("alpine:3.20", "docker.io/library/alpine:3.20", "alpine:3.20"),
        ("user/app", "docker.io/user/app:latest", "user/app:latest"),
        ("docker.io/alpine", "docker.io/library/alpine:latest", "alpine:latest"),
        ("index.docker.io/library/alpine:1", "docker.io/library/alpine:1", "alpine:1"),
        ("localhost/foo", "localhost/foo:latest", "localhost/foo:latest"),
        ("localhost:5000/foo/bar:v1", "localhost:5000/foo/bar:v1", "localhost:5000/foo/bar:v1"),
        ("127.0.0.1:5000/foo:nope", "127.0.0.1:5000/foo:nope", "127.0.0.1:5000/foo:nope"),
        ("quay.io/a/b/c:x_y.z-1", "quay.io/a/b/c:x_y.z-1", "quay.io/a/b/c:x_y.z-1"),
        ("[::1]:5000/img:t", "[::1]:5000/img:t", "[::1]:5000/img:t"),
        ("my-reg.example.com/a__b/c-d.e:t", "my-reg.example.com/a__b/c-d.e:t", "my-reg.example.com/a__b/c-d.e:t"),
    ];
    for (input, full, familiar) in cases {
        let r = Reference::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
        assert_eq!(r.to_string(), full, "{input}");
        assert_eq!(r.familiar(), familiar, "{input}");
    }
    let d = format!("sha256:{}", "a".repeat(64));
    let r = Reference::parse(&format!("alpine@{d}")).unwrap();
    assert_eq!(r.tag(), None);
    assert_eq!(r.manifest_ref(), d);
    assert_eq!(r.to_string(), format!("docker.io/library/alpine@{d}"));
    let r = Reference::parse(&format!("h:1/x:t@{d}")).unwrap();
    assert_eq!(r.registry(), "h:1");
    assert_eq!(r.tag(), Some("t"));
    assert_eq!(r.manifest_ref(), d, "digest wins over tag");
    assert_eq!(Reference::parse("alpine").unwrap().api_host(), "registry-1.docker.io");
    for bad in ["", "Alpine", "alpine:", "alpine:-x", "a//b", "a/b/", "alpine@sha256:abc", "alpine@md5:0123", "host:99999/x", "foo/Bar", "a..b/c", "x:y:z"] {
        assert!(Reference::parse(bad).is_err(), "{bad:?} should not parse");
    }
    // `Foo/bar`: an upper-case first component is a host.
    assert_eq!(Reference::parse("Foo/bar").unwrap().registry(), "Foo");
}

#[test]
fn platforms() {
    assert_eq!(Platform::parse("linux/amd64").unwrap(), Platform::new("linux", "amd64"));
    assert_eq!(Platform::parse("x86_64").unwrap(), Platform::new("linux", "amd64"));
    assert_eq!(Platform::parse("linux/arm64/v8").unwrap().to_string(), "linux/arm64");
    assert_eq!(Platform::parse("linux/aarch64").unwrap().to_string(), "linux/arm64");
    assert_eq!(Platform::parse("linux/arm/v7").unwrap().to_string(), "linux/arm/v7");
    assert!(Platform::parse("linux/").is_err());
    assert!(Platform::parse("a/b/c/d").is_err());
    let p = |s: &str| Platform::parse(s).unwrap();
    let entry = |plat: &str, n: u8| {
        let mut d = Descriptor::new(berth_spec::image::MEDIA_TYPE_OCI_MANIFEST, Digest::sha256(&[n]), 10);
        let mut pl = Platform::parse(plat).unwrap();
        if plat == "linux/arm64/v8" {
            pl.variant = Some("v8".into());
        }
        d.platform = Some(pl);
        d
    };
    let index = Index {
        schema_version: 2,
        media_type: Some(berth_spec::image::MEDIA_TYPE_OCI_INDEX.into()),
        artifact_type: None,
        manifests: vec![entry("linux/arm/v6", 1), entry("linux/arm/v7", 2), entry("linux/arm64/v8", 3), entry("linux/amd64", 4), {
            let mut d = Descriptor::new(berth_spec::image::MEDIA_TYPE_OCI_MANIFEST, Digest::sha256(&[5]), 10);
            d.platform = Some(Platform::new("unknown", "unknown"));
            d
        }],
        subject: None,
        annotations: Default::default(),
    };
    assert_eq!(choose_platform(&index, &p("linux/amd64")).unwrap().digest, Digest::sha256(&[4]));
    assert_eq!(choose_platform(&index, &p("linux/arm/v7")).unwrap().digest, Digest::sha256(&[2]));
    assert_eq!(choose_platform(&index, &p("linux/arm/v6")).unwrap().digest, Digest::sha256(&[1]));
    assert_eq!(choose_platform(&index, &p("linux/arm64")).unwrap().digest, Digest::sha256(&[3]));
    let e = choose_platform(&index, &p("linux/s390x")).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Platform);
    assert_eq!(e.to_string(), "no image for platform linux/s390x (available: linux/arm/v6, linux/arm/v7, linux/arm64/v8, linux/amd64)");
}

#[test]
fn challenges() {
    let c = parse_challenges(r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull""#);
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].scheme, "bearer");
    assert_eq!(c[0].param("realm"), Some("https://auth.docker.io/token"));
    assert_eq!(c[0].param("service"), Some("registry.docker.io"));
    assert_eq!(c[0].param("scope"), Some("repository:library/alpine:pull"));
    let c = parse_challenges(r#"Basic realm="Registry Realm""#);
    assert_eq!(c[0].scheme, "basic");
    assert_eq!(c[0].param("realm"), Some("Registry Realm"));
    let c = parse_challenges(r#"Basic realm="x, y", Bearer realm="http://t/token", service=svc, scope="repository:a:pull,push", error="insufficient_scope""#);
    assert_eq!(c.len(), 2, "{c:?}");
    assert_eq!(c[0].param("realm"), Some("x, y"));
    assert_eq!(c[1].param("service"), Some("svc"));
    assert_eq!(c[1].param("scope"), Some("repository:a:pull,push"));
    assert_eq!(c[1].param("error"), Some("insufficient_scope"));
    let c = parse_challenges(r#"Bearer realm="a\"b""#);
    assert_eq!(c[0].param("realm"), Some("a\"b"));
}

#[test]
fn base64_roundtrip() {
    for s in ["", "f", "fo", "foo", "foob", "fooba", "foobar", "user:pa:ss word"] {
        let e = base64_encode(s.as_bytes());
        assert_eq!(base64_decode(&e).unwrap(), s.as_bytes());
    }
    assert_eq!(base64_encode(b"foobar"), "Zm9vYmFy");
    assert_eq!(base64_encode(b"fo"), "Zm8=");
    assert_eq!(base64_decode("Zm8").unwrap(), b"fo");
    assert!(base64_decode("Zm8*").is_none());
}

#[test]
fn loopback() {
    for h in ["localhost", "localhost:5000", "127.0.0.1", "127.1.2.3:80", "[::1]:5000", "[::1]"] {
        assert!(is_loopback(h), "{h}");
    }
    for h in ["example.com", "10.0.0.1:5000", "[::2]:1", "localhost.example.com"] {
        assert!(!is_loopback(h), "{h}");
    }
}

#[test]
fn auth_files_and_helpers() {
    let d = tmpdir("auth");
    let berth = d.join("berth/auth.json");
    let docker = d.join("docker/config.json");
    std::fs::create_dir_all(docker.parent().unwrap()).unwrap();
    // A credential helper on PATH.
    let bin = d.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let helper = bin.join("docker-credential-berthtest");
    std::fs::write(
        &helper,
        "#!/bin/sh\nread url\ncase \"$url\" in\n  helped.example.com) echo '{\"ServerURL\":\"helped.example.com\",\"Username\":\"hu\",\"Secret\":\"hs\"}';;\n  https://index.docker.io/v1/) echo '{\"Username\":\"<token>\",\"Secret\":\"idtok\"}';;\n  *) echo 'credentials not found in native keychain'; exit 1;;\nesac\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = std::env::var("PATH").unwrap_or_default();
    if !path.contains(bin.to_str().unwrap()) {
        std::env::set_var("PATH", format!("{path}:{}", bin.display()));
    }
    std::fs::write(
        &docker,
        format!(
            r#"{{"auths": {{"https://reg.example.com/v1/": {{"auth": "{}"}}, "other.example.com:5000": {{"username": "ou", "password": "op"}}, "tok.example.com": {{"identitytoken": "refresh"}}}},
                "credHelpers": {{"helped.example.com": "berthtest"}}}}"#,
            base64_encode(b"ru:rp:x")
        ),
    )
    .unwrap();
    let cfg = AuthConfig::with_files(vec![berth.clone(), docker.clone()]);
    assert_eq!(cfg.lookup("reg.example.com").unwrap(), Some(Credential::basic("ru", "rp:x")));
    assert_eq!(cfg.lookup("other.example.com:5000").unwrap(), Some(Credential::basic("ou", "op")));
    assert_eq!(cfg.lookup("other.example.com").unwrap(), None);
    assert_eq!(cfg.lookup("tok.example.com").unwrap(), Some(Credential::IdentityToken { username: String::new(), token: "refresh".into() }));
    assert_eq!(cfg.lookup("helped.example.com").unwrap(), Some(Credential::basic("hu", "hs")));
    assert_eq!(cfg.lookup("nowhere.example.com").unwrap(), None);
    // credsStore for everything else; "credentials not found" is no credentials.
    std::fs::write(&docker, r#"{"credsStore": "berthtest"}"#).unwrap();
    assert_eq!(cfg.lookup("docker.io").unwrap(), Some(Credential::IdentityToken { username: String::new(), token: "idtok".into() }));
    assert_eq!(cfg.lookup("nowhere.example.com").unwrap(), None);
    // login writes berth's file, which comes first; docker's key for docker.io.
    cfg.store("docker.io", "me", "secret").unwrap();
    cfg.store("127.0.0.1:5000", "a", "b").unwrap();
    assert_eq!(cfg.lookup("docker.io").unwrap(), Some(Credential::basic("me", "secret")));
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&berth).unwrap()).unwrap();
    assert_eq!(v["auths"]["https://index.docker.io/v1/"]["auth"], base64_encode(b"me:secret"));
    assert_eq!(v["auths"]["127.0.0.1:5000"]["auth"], base64_encode(b"a:b"));
    use std::os::unix::fs::MetadataExt;
    assert_eq!(std::fs::metadata(&berth).unwrap().mode() & 0o777, 0o600);
    cfg.store("127.0.0.1:5000", "a2", "b2").unwrap();
    assert_eq!(cfg.lookup("127.0.0.1:5000").unwrap(), Some(Credential::basic("a2", "b2")));
    assert!(cfg.remove("127.0.0.1:5000").unwrap());
    assert!(!cfg.remove("127.0.0.1:5000").unwrap());
    assert_eq!(cfg.lookup("127.0.0.1:5000").unwrap(), None);
    // An explicit credential wins.
    let mut cfg2 = cfg.clone();
    cfg2.set("docker.io", Credential::basic("x", "y"));
    assert_eq!(cfg2.lookup("index.docker.io").unwrap(), Some(Credential::basic("x", "y")));
    std::fs::write(&berth, "{not json").unwrap();
    assert!(cfg.lookup("docker.io").unwrap_err().to_string().contains("auth.json"));
}

#[test]
fn dir_store_verifies() {
    let d = tmpdir("store");
    let s = DirBlobStore::new(d.as_path()).unwrap();
    let data = b"hello blob".to_vec();
    let dg = Digest::sha256(&data);
    assert!(!s.has(&dg));
    assert_eq!(s.put(&dg, Some(data.len() as u64), &mut &data[..]).unwrap(), data.len() as u64);
    assert!(s.has(&dg));
    assert_eq!(s.read_all(&dg).unwrap(), data);
    assert_eq!(s.size(&dg).unwrap(), data.len() as u64);
    assert!(d.join("blobs/sha256").join(dg.hex()).is_file());
    // Wrong content, wrong size: nothing committed, no temp file left.
    let other = Digest::sha256(b"other");
    let e = s.put(&other, None, &mut &data[..]).unwrap_err();
    assert!(e.to_string().contains("digest mismatch"), "{e}");
    let e = s.put(&other, Some(3), &mut &b"other"[..]).unwrap_err();
    assert!(e.to_string().contains("size mismatch"), "{e}");
    assert!(!s.has(&other));
    assert_eq!(std::fs::read_dir(d.join("blobs/sha256")).unwrap().count(), 1);
    assert_eq!(s.list().unwrap(), vec![dg.clone()]);
    let mut v = VerifyingReader::new(&b"abc"[..], Some(Digest::sha256(b"abc")), Some(3));
    let mut out = Vec::new();
    v.read_to_end(&mut out).unwrap();
    assert!(v.verified());
    let dg512 = Digest::parse(&format!("sha512:{}", "0".repeat(128))).unwrap();
    assert_eq!(dg512.same_algo_of(b"").algorithm(), "sha512");
}

// ---- a fake registry over std TcpListener ----

#[derive(Debug, Clone)]
struct FakeReq {
    method: String,
    path: String,
    headers: HashMap<String, String>,
}

type Handler = dyn Fn(&FakeReq) -> (u16, Vec<(String, String)>, Vec<u8>) + Send + Sync;

/// Serves each connection one request then closes it. Returns the port and the log.
fn fake_server(handler: Arc<Handler>) -> (u16, Arc<Mutex<Vec<FakeReq>>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let log = Arc::new(Mutex::new(Vec::new()));
    let log2 = log.clone();
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut r = BufReader::new(conn.try_clone().unwrap());
            let mut line = String::new();
            if r.read_line(&mut line).unwrap_or(0) == 0 {
                continue;
            }
            let mut parts = line.split_whitespace();
            let method = parts.next().unwrap_or("").to_string();
            let path = parts.next().unwrap_or("").to_string();
            let mut headers = HashMap::new();
            loop {
                let mut h = String::new();
                if r.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                    break;
                }
                if let Some((k, v)) = h.split_once(':') {
                    headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
                }
            }
            let n: usize = headers.get("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
            let mut body = vec![0; n];
            let _ = r.read_exact(&mut body);
            let req = FakeReq { method, path, headers };
            log2.lock().unwrap().push(req.clone());
            let (status, hdrs, body) = handler(&req);
            let mut out = format!("HTTP/1.1 {status} X\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
            for (k, v) in hdrs {
                out.push_str(&format!("{k}: {v}\r\n"));
            }
            out.push_str("\r\n");
            let _ = conn.write_all(out.as_bytes());
            if req.method != "HEAD" {
                let _ = conn.write_all(&body);
            }
        }
    });
    (port, log)
}

fn fake_opts() -> ClientOptions {
    ClientOptions { auth: AuthConfig::none(), retry_base: std::time::Duration::from_millis(10), ..ClientOptions::default() }
}

#[test]
fn bearer_token_flow_and_retries() {
    let manifest = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}"#.to_vec();
    let mdigest = Digest::sha256(&manifest);
    let fails = Arc::new(AtomicUsize::new(1));
    let port_cell = Arc::new(Mutex::new(0u16));
    let pc = port_cell.clone();
    let m2 = manifest.clone();
    let f2 = fails.clone();
    let handler: Arc<Handler> = Arc::new(move |r: &FakeReq| {
        let port = *pc.lock().unwrap();
        let challenge = || {
            vec![("WWW-Authenticate".to_string(), format!(r#"Bearer realm="http://127.0.0.1:{port}/token",service="fake.test",scope="repository:a/b:pull""#))]
        };
        if r.path.starts_with("/token") {
            let want = format!("Basic {}", base64_encode(b"user:pw"));
            if r.headers.get("authorization") != Some(&want) {
                return (401, vec![], br#"{"details":"invalid credentials"}"#.to_vec());
            }
            if !r.path.contains("service=fake.test") || (r.path.contains("scope=") && !r.path.contains("scope=repository%3Aa%2Fb%3Apull")) {
                return (400, vec![], b"bad query".to_vec());
            }
            return (200, vec![], br#"{"token":"T0K","expires_in":300}"#.to_vec());
        }
        if r.headers.get("authorization").map(String::as_str) != Some("Bearer T0K") {
            return (401, challenge(), br#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#.to_vec());
        }
        if r.path == "/v2/a/b/manifests/1" {
            if f2.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |v| v.checked_sub(1)).is_ok() {
                return (503, vec![], b"busy".to_vec());
            }
            return (
                200,
                vec![
                    ("Content-Type".into(), berth_spec::image::MEDIA_TYPE_OCI_MANIFEST.into()),
                    ("Docker-Content-Digest".into(), Digest::sha256(&m2).to_string()),
                ],
                m2.clone(),
            );
        }
        (404, vec![], br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#.to_vec())
    });
    let (port, log) = fake_server(handler);
    *port_cell.lock().unwrap() = port;
    let host = format!("127.0.0.1:{port}");
    let r = Reference::parse(&format!("{host}/a/b:1")).unwrap();

    // Right credentials: ping (https fails, http 401), token once, 503 retried.
    let mut opts = fake_opts();
    opts.plain_http = vec![host.clone()];
    opts.auth.set(&host, Credential::basic("user", "pw"));
    let c = Client::new(opts.clone()).unwrap();
    let (bytes, mt, d) = c.get_manifest(&r, media::MANIFEST_ACCEPT).unwrap();
    assert_eq!(bytes, manifest);
    assert_eq!(mt, berth_spec::image::MEDIA_TYPE_OCI_MANIFEST);
    assert_eq!(d, mdigest);
    let st = c.stats();
    assert_eq!(st.token_requests, 1);
    assert_eq!(st.retries, 1);
    // Cached token: no new token request.
    c.get_manifest(&r, media::MANIFEST_ACCEPT).unwrap();
    assert_eq!(c.stats().token_requests, 1);
    let e = c.get_manifest(&r.with_tag("nope"), media::MANIFEST_ACCEPT).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert_eq!(e.to_string(), "manifest unknown (404)");
    let e = super::resolve(&c, &r.with_tag("nope"), &Platform::new("linux", "amd64")).unwrap_err();
    assert_eq!(e.to_string(), format!("pull {host}/a/b:nope: manifest unknown (404)"));
    c.check_auth(&host).unwrap();
    {
        let log = log.lock().unwrap();
        let paths: Vec<&str> = log.iter().map(|r| r.path.as_str()).collect();
        assert_eq!(paths[0], "/v2/", "{paths:?}");
        assert!(paths[1].starts_with("/token?service=fake.test&scope="), "{paths:?}");
    }

    // Wrong password: the token endpoint's 401, named.
    let mut bad = opts.clone();
    bad.auth.set(&host, Credential::basic("user", "wrong"));
    let c = Client::new(bad).unwrap();
    let e = super::resolve(&c, &r, &Platform::new("linux", "amd64")).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthorized);
    let s = e.to_string();
    assert!(s.starts_with(&format!("pull {host}/a/b:1: token request to http://{host}/token: invalid credentials (401)")), "{s}");
    assert!(s.contains(&format!("the credentials for {host} were rejected")), "{s}");
    assert_eq!(c.check_auth(&host).unwrap_err().kind(), ErrorKind::Unauthorized);

    // Loopback without plain_http: https fails, http fallback works.
    let mut fb = fake_opts();
    fb.auth.set(&host, Credential::basic("user", "pw"));
    let c = Client::new(fb).unwrap();
    fails.store(0, Ordering::SeqCst);
    c.get_manifest(&r, media::MANIFEST_ACCEPT).unwrap();
}

#[test]
fn connection_refused_is_clear() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    let c = Client::new(fake_opts()).unwrap();
    let r = Reference::parse(&format!("127.0.0.1:{port}/foo:1")).unwrap();
    let e = super::resolve(&c, &r, &Platform::new("linux", "amd64")).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Connect);
    assert_eq!(e.to_string(), format!("pull 127.0.0.1:{port}/foo:1: connect 127.0.0.1:{port}: connection refused"));
}

#[test]
fn basic_auth_and_mismatched_manifest() {
    let good = b"{\"schemaVersion\":2,\"manifests\":[]}".to_vec();
    let g2 = good.clone();
    let handler: Arc<Handler> = Arc::new(move |r: &FakeReq| {
        let want = format!("Basic {}", base64_encode(b"u:p"));
        if r.headers.get("authorization") != Some(&want) {
            return (401, vec![("WWW-Authenticate".into(), "Basic realm=\"fake\"".into())], b"".to_vec());
        }
        match r.path.as_str() {
            "/v2/" => (200, vec![], vec![]),
            "/v2/x/manifests/lie" => (200, vec![("Docker-Content-Digest".into(), Digest::sha256(b"other").to_string())], g2.clone()),
            _ => (200, vec![("Content-Type".into(), "application/json".into())], g2.clone()),
        }
    });
    let (port, _log) = fake_server(handler);
    let host = format!("127.0.0.1:{port}");
    let mut o = fake_opts();
    o.plain_http = vec![host.clone()];
    let anon = Client::new(o.clone()).unwrap();
    let e = anon.get_manifest(&Reference::parse(&format!("{host}/x:1")).unwrap(), media::MANIFEST_ACCEPT).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthorized);
    assert_eq!(e.to_string(), format!("unauthorized (401): no credentials for {host} (berth-build login {host})"));
    o.auth.set(&host, Credential::basic("u", "p"));
    let c = Client::new(o).unwrap();
    let (_, mt, _) = c.get_manifest(&Reference::parse(&format!("{host}/x:1")).unwrap(), media::MANIFEST_ACCEPT).unwrap();
    assert_eq!(mt, berth_spec::image::MEDIA_TYPE_OCI_INDEX, "sniffed from the body");
    let e = c.get_manifest(&Reference::parse(&format!("{host}/x:lie")).unwrap(), media::MANIFEST_ACCEPT).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Digest);
    let pinned = Reference::parse(&format!("{host}/x@{}", Digest::sha256(b"x"))).unwrap();
    assert_eq!(c.get_manifest(&pinned, media::MANIFEST_ACCEPT).unwrap_err().kind(), ErrorKind::Digest);
    c.check_auth(&host).unwrap();
}
