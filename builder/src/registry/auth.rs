//! Credentials and challenges.
//!
//! Credentials come from, in order: credentials set on the [`AuthConfig`] itself (a
//! `--creds` flag), berth's login file (`$BERTH_AUTH_FILE`, else
//! `$XDG_CONFIG_HOME/berth/auth.json`, else `~/.config/berth/auth.json`, written by
//! `berth-build login`), then docker's `$DOCKER_CONFIG/config.json` (else
//! `~/.docker/config.json`). Both files have docker's format: `auths` entries keyed by
//! registry (`host[:port]`, maybe with a scheme and path; docker.io is
//! `https://index.docker.io/v1/`) holding a base64 `auth` of `user:password` (or
//! `username`/`password`, or an `identitytoken`), and `credHelpers` (per registry) or
//! `credsStore` (default) naming a `docker-credential-<name>` helper, which is run as
//! `docker-credential-<name> get` with the server URL on stdin and answers
//! `{"Username":..,"Secret":..}` (a Username of `<token>` makes Secret an identity token).

use super::reference::{DOCKER_HUB, DOCKER_HUB_AUTH_KEY};
use crate::error::Context as _;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// What to authenticate with.
#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    /// Username and password (basic auth, or basic auth to the token endpoint).
    Basic { username: String, password: String },
    /// An OAuth2 refresh token (docker's `identitytoken`), exchanged at the token
    /// endpoint with `grant_type=refresh_token`.
    IdentityToken { username: String, token: String },
    /// A bearer token used as is (docker's `registrytoken`).
    RegistryToken(String),
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credential::Basic { username, .. } => write!(f, "Basic({username}, ***)"),
            Credential::IdentityToken { username, .. } => write!(f, "IdentityToken({username}, ***)"),
            Credential::RegistryToken(_) => write!(f, "RegistryToken(***)"),
        }
    }
}

impl Credential {
    pub fn basic(username: &str, password: &str) -> Credential {
        Credential::Basic { username: username.into(), password: password.into() }
    }

    /// `Basic base64(user:password)`, when this is a username and password.
    pub fn basic_header(&self) -> Option<String> {
        match self {
            Credential::Basic { username, password } => Some(format!("Basic {}", base64_encode(format!("{username}:{password}").as_bytes()))),
            _ => None,
        }
    }
}

/// Where credentials are looked up and where `login` stores them.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// Files searched in order (docker's config.json format).
    pub files: Vec<PathBuf>,
    /// The file `login`/`logout` write.
    pub login_file: PathBuf,
    /// Credentials given directly, by registry host (`docker.io`, `host:port`).
    pub explicit: HashMap<String, Credential>,
    /// Whether credential helpers may be run.
    pub use_helpers: bool,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig::from_env()
    }
}

impl AuthConfig {
    /// berth's login file, then docker's config.json, from the environment.
    pub fn from_env() -> AuthConfig {
        let login = berth_auth_file();
        let mut files = vec![login.clone()];
        if let Some(d) = docker_config_file() {
            files.push(d);
        }
        AuthConfig { files, login_file: login, explicit: HashMap::new(), use_helpers: true }
    }

    /// No files, no helpers: only what is set with [`AuthConfig::set`].
    pub fn none() -> AuthConfig {
        AuthConfig { files: vec![], login_file: PathBuf::from("/dev/null"), explicit: HashMap::new(), use_helpers: false }
    }

    /// Only these files (the first is also the login file).
    pub fn with_files(files: Vec<PathBuf>) -> AuthConfig {
        let login = files.first().cloned().unwrap_or_else(berth_auth_file);
        AuthConfig { files, login_file: login, explicit: HashMap::new(), use_helpers: true }
    }

    /// Sets credentials for a registry (`--creds user:pass`).
    pub fn set(&mut self, registry: &str, cred: Credential) {
        self.explicit.insert(normalize_registry_key(registry), cred);
    }

    /// The credentials for `registry` (a reference's registry: `docker.io`,
    /// `host:port`), or None for anonymous access.
    pub fn lookup(&self, registry: &str) -> crate::Result<Option<Credential>> {
        let want = normalize_registry_key(registry);
        if let Some(c) = self.explicit.get(&want) {
            return Ok(Some(c.clone()));
        }
        for file in &self.files {
            let text = match fs::read(file) {
                Ok(t) => t,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(format!("{}: {e}", file.display()).into()),
            };
            if text.iter().all(|b| b.is_ascii_whitespace()) {
                continue;
            }
            let v: Value = serde_json::from_slice(&text).with_context(|| format!("{}", file.display()))?;
            if let Some(c) = lookup_in_config(&v, &want, self.use_helpers).with_context(|| format!("{}", file.display()))? {
                return Ok(Some(c));
            }
        }
        Ok(None)
    }

    /// Stores `username:password` for `registry` in the login file (mode 0600, written
    /// atomically; other entries are kept).
    pub fn store(&self, registry: &str, username: &str, password: &str) -> io::Result<()> {
        let key = auth_file_key(registry);
        let mut root = match read_json_object(&self.login_file) {
            Ok(r) => r,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Map::new(),
            Err(e) => return Err(e),
        };
        let auths = root.entry("auths").or_insert_with(|| Value::Object(Map::new()));
        if !auths.is_object() {
            *auths = Value::Object(Map::new());
        }
        let auths = auths.as_object_mut().expect("object");
        // Drop other spellings of the same registry so the new entry is the one found.
        let want = normalize_registry_key(registry);
        auths.retain(|k, _| normalize_registry_key(k) != want);
        let mut entry = Map::new();
        entry.insert("auth".into(), Value::String(base64_encode(format!("{username}:{password}").as_bytes())));
        auths.insert(key, Value::Object(entry));
        write_json_atomic(&self.login_file, &Value::Object(root))
    }

    /// Removes `registry` from the login file. Returns whether there was an entry.
    pub fn remove(&self, registry: &str) -> io::Result<bool> {
        let mut root = match read_json_object(&self.login_file) {
            Ok(r) => r,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(e),
        };
        let want = normalize_registry_key(registry);
        let Some(auths) = root.get_mut("auths").and_then(|a| a.as_object_mut()) else { return Ok(false) };
        let before = auths.len();
        auths.retain(|k, _| normalize_registry_key(k) != want);
        if auths.len() == before {
            return Ok(false);
        }
        write_json_atomic(&self.login_file, &Value::Object(root))?;
        Ok(true)
    }
}

/// `$BERTH_AUTH_FILE`, `$XDG_CONFIG_HOME/berth/auth.json`, `~/.config/berth/auth.json`.
pub fn berth_auth_file() -> PathBuf {
    if let Some(p) = std::env::var_os("BERTH_AUTH_FILE").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    if let Some(x) = std::env::var_os("XDG_CONFIG_HOME").filter(|p| !p.is_empty()) {
        return PathBuf::from(x).join("berth/auth.json");
    }
    home().join(".config/berth/auth.json")
}

/// `$DOCKER_CONFIG/config.json` or `~/.docker/config.json`.
pub fn docker_config_file() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("DOCKER_CONFIG").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(d).join("config.json"));
    }
    Some(home().join(".docker/config.json"))
}

fn home() -> PathBuf {
    std::env::var_os("HOME").filter(|h| !h.is_empty()).map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/root"))
}

/// `https://index.docker.io/v1/` → `docker.io`; `http://h:5000/v2/` → `h:5000`.
pub fn normalize_registry_key(k: &str) -> String {
    let s = k.trim();
    let s = s.strip_prefix("https://").or_else(|| s.strip_prefix("http://")).unwrap_or(s);
    let host = s.split('/').next().unwrap_or(s).to_ascii_lowercase();
    match host.as_str() {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" | "docker.io" => DOCKER_HUB.into(),
        _ => host,
    }
}

/// The key docker writes for a registry.
pub fn auth_file_key(registry: &str) -> String {
    let n = normalize_registry_key(registry);
    if n == DOCKER_HUB {
        DOCKER_HUB_AUTH_KEY.into()
    } else {
        n
    }
}

fn lookup_in_config(v: &Value, want: &str, use_helpers: bool) -> crate::Result<Option<Credential>> {
    // A per-registry helper wins over a stored entry, a stored entry over credsStore
    // (docker's order).
    if use_helpers {
        if let Some(helpers) = v.get("credHelpers").and_then(|h| h.as_object()) {
            for (k, name) in helpers {
                if normalize_registry_key(k) == want {
                    if let Some(name) = name.as_str().filter(|n| !n.is_empty()) {
                        return run_helper(name, &helper_server_url(k, want));
                    }
                }
            }
        }
    }
    if let Some(auths) = v.get("auths").and_then(|a| a.as_object()) {
        for (k, e) in auths {
            if normalize_registry_key(k) != want {
                continue;
            }
            if let Some(c) = entry_credential(e)? {
                return Ok(Some(c));
            }
        }
    }
    if use_helpers {
        if let Some(store) = v.get("credsStore").and_then(|s| s.as_str()).filter(|s| !s.is_empty()) {
            return run_helper(store, &helper_server_url(&auth_file_key(want), want));
        }
    }
    Ok(None)
}

fn helper_server_url(key: &str, want: &str) -> String {
    if want == DOCKER_HUB {
        DOCKER_HUB_AUTH_KEY.into()
    } else {
        key.to_string()
    }
}

fn entry_credential(e: &Value) -> crate::Result<Option<Credential>> {
    let s = |k: &str| e.get(k).and_then(|x| x.as_str()).filter(|x| !x.is_empty()).map(str::to_string);
    let (mut user, mut pass) = (s("username"), s("password"));
    if let Some(a) = s("auth") {
        let raw = base64_decode(&a).ok_or("invalid base64 in auth")?;
        let text = String::from_utf8(raw).map_err(|_| "auth is not UTF-8")?;
        let (u, p) = text.split_once(':').ok_or("auth is not user:password")?;
        user = Some(u.to_string());
        pass = Some(p.to_string());
    }
    if let Some(t) = s("identitytoken") {
        return Ok(Some(Credential::IdentityToken { username: user.unwrap_or_default(), token: t }));
    }
    if let Some(t) = s("registrytoken") {
        return Ok(Some(Credential::RegistryToken(t)));
    }
    match (user, pass) {
        (Some(u), Some(p)) => Ok(Some(Credential::Basic { username: u, password: p })),
        _ => Ok(None),
    }
}

/// Runs `docker-credential-<helper> get` with `server_url` on stdin.
pub fn run_helper(helper: &str, server_url: &str) -> crate::Result<Option<Credential>> {
    if helper.contains('/') {
        return Err(format!("invalid credential helper name {helper:?}").into());
    }
    let prog = format!("docker-credential-{helper}");
    let mut child = Command::new(&prog)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("credential helper {prog}"))?;
    {
        let mut stdin = child.stdin.take().expect("piped");
        let _ = stdin.write_all(server_url.as_bytes());
    }
    let out = child.wait_with_output().with_context(|| format!("credential helper {prog}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        let msg = format!("{}{}", stdout.trim(), String::from_utf8_lossy(&out.stderr).trim());
        if msg.to_ascii_lowercase().contains("credentials not found") {
            return Ok(None);
        }
        return Err(format!("credential helper {prog} get {server_url}: {}", if msg.is_empty() { out.status.to_string() } else { msg }).into());
    }
    let v: Value = serde_json::from_str(&stdout).with_context(|| format!("credential helper {prog}: bad answer"))?;
    let user = v.get("Username").and_then(|x| x.as_str()).unwrap_or("").to_string();
    let secret = v.get("Secret").and_then(|x| x.as_str()).unwrap_or("").to_string();
    if secret.is_empty() {
        return Ok(None);
    }
    if user == "<token>" {
        return Ok(Some(Credential::IdentityToken { username: String::new(), token: secret }));
    }
    Ok(Some(Credential::Basic { username: user, password: secret }))
}

fn read_json_object(p: &Path) -> io::Result<Map<String, Value>> {
    let text = fs::read(p)?;
    if text.iter().all(|b| b.is_ascii_whitespace()) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(&text) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(io::Error::new(io::ErrorKind::InvalidData, format!("{}: not a JSON object", p.display()))),
        Err(e) => Err(io::Error::new(io::ErrorKind::InvalidData, format!("{}: {e}", p.display()))),
    }
}

fn write_json_atomic(p: &Path, v: &Value) -> io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = p.parent() {
        fs::create_dir_all(dir)?;
    }
    let tmp = p.with_extension(format!("tmp{}", std::process::id()));
    let res = (|| {
        let mut f = fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
        f.write_all(serde_json::to_string_pretty(v).expect("json").as_bytes())?;
        f.write_all(b"\n")?;
        f.sync_all()?;
        fs::rename(&tmp, p)
    })();
    if res.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    res
}

// ---- challenges ----

/// One `WWW-Authenticate` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// Lowercased scheme: `basic`, `bearer`.
    pub scheme: String,
    /// Parameters with lowercased names (`realm`, `service`, `scope`, `error`).
    pub params: Vec<(String, String)>,
}

impl Challenge {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// Parses a `WWW-Authenticate` value: one or more challenges, each a scheme followed
/// by comma-separated `name=value` or `name="quoted value"` parameters.
pub fn parse_challenges(h: &str) -> Vec<Challenge> {
    let b = h.as_bytes();
    let mut i = 0;
    let mut out: Vec<Challenge> = Vec::new();
    let skip_ws = |i: &mut usize| {
        while *i < b.len() && (b[*i] == b' ' || b[*i] == b'\t' || b[*i] == b',') {
            *i += 1;
        }
    };
    let token = |i: &mut usize| {
        let s = *i;
        while *i < b.len() && !matches!(b[*i], b' ' | b'\t' | b',' | b'=') {
            *i += 1;
        }
        h[s..*i].to_string()
    };
    loop {
        skip_ws(&mut i);
        if i >= b.len() {
            break;
        }
        let t = token(&mut i);
        // Look past blanks: `=` means a parameter of the current challenge.
        let mut j = i;
        while j < b.len() && (b[j] == b' ' || b[j] == b'\t') {
            j += 1;
        }
        if j < b.len() && b[j] == b'=' && !out.is_empty() {
            i = j + 1;
            while i < b.len() && (b[i] == b' ' || b[i] == b'\t') {
                i += 1;
            }
            let value = if i < b.len() && b[i] == b'"' {
                i += 1;
                let mut v = String::new();
                while i < b.len() && b[i] != b'"' {
                    if b[i] == b'\\' && i + 1 < b.len() {
                        i += 1;
                    }
                    let ch = h[i..].chars().next().expect("char");
                    v.push(ch);
                    i += ch.len_utf8();
                }
                i += 1;
                v
            } else {
                let s = i;
                while i < b.len() && b[i] != b',' && b[i] != b' ' {
                    i += 1;
                }
                h[s..i].to_string()
            };
            out.last_mut().expect("challenge").params.push((t.to_ascii_lowercase(), value));
        } else if !t.is_empty() {
            out.push(Challenge { scheme: t.to_ascii_lowercase(), params: vec![] });
        } else {
            i += 1;
        }
    }
    out
}

// ---- base64 (standard alphabet, with padding) ----

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

pub fn base64_encode(data: &[u8]) -> String {
    let mut s = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let n = (chunk[0] as u32) << 16 | (*chunk.get(1).unwrap_or(&0) as u32) << 8 | *chunk.get(2).unwrap_or(&0) as u32;
        s.push(B64[(n >> 18) as usize & 63] as char);
        s.push(B64[(n >> 12) as usize & 63] as char);
        s.push(if chunk.len() > 1 { B64[(n >> 6) as usize & 63] as char } else { '=' });
        s.push(if chunk.len() > 2 { B64[n as usize & 63] as char } else { '=' });
    }
    s
}

/// Decodes standard or URL-safe base64, padded or not, ignoring whitespace.
pub fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let mut acc = 0u32;
    let mut bits = 0;
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            b'=' => break,
            b' ' | b'\n' | b'\r' | b'\t' => continue,
            _ => return None,
        };
        acc = acc << 6 | v as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}
