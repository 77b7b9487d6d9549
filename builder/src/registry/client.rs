//! The distribution API client: transport, authentication and the endpoints.
//!
//! Transport: HTTPS with the system roots (plus [`ClientOptions::extra_ca_files`]);
//! without verification for `--tls-verify=false` or registries in
//! [`ClientOptions::insecure_registries`]. Registries in `plain_http` are spoken to
//! over http; loopback registries (localhost, 127.0.0.0/8, ::1) and insecure ones are
//! tried over https first and over http when https fails (docker's behaviour), unless
//! https failed on the certificate. Loopback registries bypass any proxy. 429 and 5xx
//! answers are retried with exponential backoff (honouring `Retry-After`), at most
//! [`ClientOptions::max_retries`] times.
//!
//! Authentication: the first request to a registry is `GET /v2/`. A 200 means
//! anonymous access; a 401 carries a `WWW-Authenticate` challenge: `Basic` (send the
//! credentials on every request) or `Bearer realm=..,service=..` (get a token from the
//! realm for the repository scopes, with the credentials as basic auth or an identity
//! token as an OAuth2 refresh token, then send `Authorization: Bearer`). Tokens are
//! cached per scope until they expire; a 401 later on (expired token, wider scope
//! asked in the challenge) gets one new token and one retry.

use super::auth::{parse_challenges, AuthConfig, Challenge, Credential};
use super::blobstore::BlobStore;
use super::digest::{Digest, VerifyingReader};
use super::media::{self, MAX_MANIFEST_SIZE};
use super::reference::{Reference, DOCKER_HUB, DOCKER_HUB_API};
use super::{emit, Error, ErrorKind, Progress, ProgressFn, Result};
use std::collections::{BTreeSet, HashMap};
use std::io::{self, Read};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use ureq::http;

/// How the client reaches registries.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// `false` is `--tls-verify=false`: no certificate verification anywhere, and
    /// http fallback for every registry.
    pub tls_verify: bool,
    /// Registries (`host[:port]`) whose certificates are not verified and which may
    /// be spoken to over http when https fails.
    pub insecure_registries: Vec<String>,
    /// Registries (`host[:port]`) spoken to over plain http only.
    pub plain_http: Vec<String>,
    /// PEM files of extra trusted CAs (added to the system roots).
    pub extra_ca_files: Vec<PathBuf>,
    /// Where credentials come from.
    pub auth: AuthConfig,
    /// Retries of a request answered 429/5xx or cut off (per request; blob transfers
    /// are restarted as a whole, at most this many times too).
    pub max_retries: u32,
    /// First backoff; doubled each retry, capped at 10 s.
    pub retry_base: Duration,
    pub connect_timeout: Duration,
    /// Longest wait for a response or between two reads of a body.
    pub read_timeout: Duration,
    pub user_agent: String,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            tls_verify: true,
            insecure_registries: vec![],
            plain_http: vec![],
            extra_ca_files: vec![],
            auth: AuthConfig::from_env(),
            max_retries: 4,
            retry_base: Duration::from_millis(250),
            connect_timeout: Duration::from_secs(30),
            read_timeout: Duration::from_secs(300),
            user_agent: format!("berth-build/{}", env!("CARGO_PKG_VERSION")),
        }
    }
}

/// Request counts and transfer totals since the client was made (or last reset).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Every HTTP request sent (registry, token endpoint, retries included).
    pub requests: u64,
    pub get: u64,
    pub head: u64,
    pub post: u64,
    pub put: u64,
    pub patch: u64,
    pub delete: u64,
    /// Token requests (also counted in get/post).
    pub token_requests: u64,
    /// Retried requests and restarted transfers.
    pub retries: u64,
    /// Blobs downloaded (pull) and uploaded (push), and their bytes.
    pub blobs_downloaded: u64,
    pub bytes_downloaded: u64,
    pub blobs_uploaded: u64,
    pub bytes_uploaded: u64,
    /// Push: blobs the registry already had (HEAD), blobs mounted from another repository.
    pub blobs_existing: u64,
    pub blobs_mounted: u64,
    /// Pull: blobs already in the store.
    pub blobs_cached: u64,
    /// Manifests pushed.
    pub manifests_pushed: u64,
}

#[derive(Default)]
struct Counters {
    c: [AtomicU64; 18],
}

#[derive(Clone, Copy)]
pub(crate) enum Counter {
    Requests = 0,
    Get,
    Head,
    Post,
    Put,
    Patch,
    Delete,
    TokenRequests,
    Retries,
    BlobsDownloaded,
    BytesDownloaded,
    BlobsUploaded,
    BytesUploaded,
    BlobsExisting,
    BlobsMounted,
    BlobsCached,
    ManifestsPushed,
}

impl Counters {
    fn add(&self, c: Counter, n: u64) {
        self.c[c as usize].fetch_add(n, Ordering::Relaxed);
    }
    fn get(&self, c: Counter) -> u64 {
        self.c[c as usize].load(Ordering::Relaxed)
    }
    fn reset(&self) {
        for a in &self.c {
            a.store(0, Ordering::Relaxed);
        }
    }
}

/// A body to send.
pub(crate) enum Payload<'a> {
    Empty,
    Bytes(&'a [u8]),
    /// A stream of this many bytes (sent with Content-Length; never retried).
    Stream(&'a mut dyn Read, u64),
}

pub(crate) struct Req<'a> {
    pub method: &'static str,
    pub url: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: Payload<'a>,
    /// Retry on 429/5xx and dropped connections (idempotent requests).
    pub retry: bool,
}

impl<'a> Req<'a> {
    pub fn new(method: &'static str, url: String) -> Req<'a> {
        let retry = matches!(method, "GET" | "HEAD" | "PUT");
        Req { method, url, headers: vec![], body: Payload::Empty, retry }
    }
    pub fn header(mut self, k: &'static str, v: impl Into<String>) -> Self {
        self.headers.push((k, v.into()));
        self
    }
    pub fn body(mut self, b: Payload<'a>) -> Self {
        self.body = b;
        self
    }
    pub fn retry(mut self, r: bool) -> Self {
        self.retry = r;
        self
    }
}

pub(crate) type Resp = http::Response<ureq::Body>;

/// The token scopes a request needs: `repository:<name>:<actions>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Scope(Vec<String>);

impl Scope {
    pub fn pull(repository: &str) -> Scope {
        Scope(vec![format!("repository:{repository}:pull")])
    }
    pub fn push(repository: &str) -> Scope {
        Scope(vec![format!("repository:{repository}:pull,push")])
    }
    /// Adds `repository:<name>:pull` (a cross-repo mount source).
    pub fn add_pull(&mut self, repository: &str) {
        self.add(format!("repository:{repository}:pull"));
    }
    pub fn add(&mut self, s: String) {
        if !self.0.contains(&s) {
            self.0.push(s);
        }
    }
}

struct Host {
    registry: String,
    base: String,
    verify: bool,
    direct: bool,
    challenge: Mutex<Option<Challenge>>,
}

struct Token {
    /// The scopes it was issued for.
    scopes: Vec<String>,
    value: String,
    expires: Instant,
}

/// Whether a token issued for `have` serves a request needing `want`
/// (`repository:<name>:<actions>`: same resource, actions a subset, or `*`).
fn scope_covers(have: &str, want: &str) -> bool {
    if have == want {
        return true;
    }
    let (Some((hr, ha)), Some((wr, wa))) = (have.rsplit_once(':'), want.rsplit_once(':')) else { return false };
    if hr != wr {
        return false;
    }
    let ha: Vec<&str> = ha.split(',').collect();
    ha.contains(&"*") || wa.split(',').all(|a| ha.contains(&a))
}

/// A registry client. Cheap to share between threads (`&Client` is `Sync`); keeps
/// per-registry state (scheme, challenge, tokens) and the request statistics.
pub struct Client {
    opts: ClientOptions,
    roots: Option<Arc<Vec<ureq::tls::Certificate<'static>>>>,
    agents: Mutex<HashMap<(bool, bool), ureq::Agent>>,
    hosts: Mutex<HashMap<String, Arc<Host>>>,
    ping_lock: Mutex<()>,
    tokens: Mutex<HashMap<String, Vec<Token>>>,
    token_lock: Mutex<()>,
    creds: Mutex<HashMap<String, Option<Credential>>>,
    locations: Mutex<HashMap<(String, Digest), BTreeSet<String>>>,
    stats: Counters,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Client {
    /// A client; fails only on unreadable extra CA files.
    pub fn new(opts: ClientOptions) -> Result<Client> {
        let roots = load_roots(&opts.extra_ca_files)?.map(Arc::new);
        Ok(Client {
            opts,
            roots,
            agents: Mutex::new(HashMap::new()),
            hosts: Mutex::new(HashMap::new()),
            ping_lock: Mutex::new(()),
            tokens: Mutex::new(HashMap::new()),
            token_lock: Mutex::new(()),
            creds: Mutex::new(HashMap::new()),
            locations: Mutex::new(HashMap::new()),
            stats: Counters::default(),
        })
    }

    pub fn options(&self) -> &ClientOptions {
        &self.opts
    }

    pub fn stats(&self) -> Stats {
        use Counter::*;
        let g = |c| self.stats.get(c);
        Stats {
            requests: g(Requests),
            get: g(Get),
            head: g(Head),
            post: g(Post),
            put: g(Put),
            patch: g(Patch),
            delete: g(Delete),
            token_requests: g(TokenRequests),
            retries: g(Retries),
            blobs_downloaded: g(BlobsDownloaded),
            bytes_downloaded: g(BytesDownloaded),
            blobs_uploaded: g(BlobsUploaded),
            bytes_uploaded: g(BytesUploaded),
            blobs_existing: g(BlobsExisting),
            blobs_mounted: g(BlobsMounted),
            blobs_cached: g(BlobsCached),
            manifests_pushed: g(ManifestsPushed),
        }
    }

    pub fn reset_stats(&self) {
        self.stats.reset();
    }

    pub(crate) fn count(&self, c: Counter, n: u64) {
        self.stats.add(c, n);
    }

    /// Remembers that `repository` on `registry` holds `digest` (pull and push record
    /// this; push uses it to mount instead of upload).
    pub fn note_location(&self, registry: &str, repository: &str, digest: &Digest) {
        lock(&self.locations).entry((registry.to_string(), digest.clone())).or_default().insert(repository.to_string());
    }

    /// Repositories of `registry` known to hold `digest`.
    pub fn known_locations(&self, registry: &str, digest: &Digest) -> Vec<String> {
        lock(&self.locations).get(&(registry.to_string(), digest.clone())).map(|s| s.iter().cloned().collect()).unwrap_or_default()
    }

    /// Forgets cached tokens, credentials and pings (after `login`).
    pub fn forget_auth(&self) {
        lock(&self.tokens).clear();
        lock(&self.creds).clear();
        lock(&self.hosts).clear();
    }

    // ---- transport ----

    fn agent(&self, verify: bool, direct: bool) -> ureq::Agent {
        let mut agents = lock(&self.agents);
        agents
            .entry((verify, direct))
            .or_insert_with(|| {
                let roots = match &self.roots {
                    Some(r) => ureq::tls::RootCerts::Specific(r.clone()),
                    None => ureq::tls::RootCerts::WebPki,
                };
                let tls = ureq::tls::TlsConfig::builder().root_certs(roots).disable_verification(!verify).build();
                let mut b = ureq::Agent::config_builder()
                    .http_status_as_error(false)
                    .user_agent(self.opts.user_agent.as_str())
                    .tls_config(tls)
                    .timeout_connect(Some(self.opts.connect_timeout))
                    .timeout_recv_response(Some(self.opts.read_timeout))
                    .timeout_per_read(Some(self.opts.read_timeout))
                    .max_redirects(10)
                    .max_idle_connections_per_host(8);
                if direct {
                    b = b.proxy(None);
                }
                b.build().new_agent()
            })
            .clone()
    }

    fn is_listed(list: &[String], registry: &str) -> bool {
        let r = registry.to_ascii_lowercase();
        list.iter().any(|x| {
            let x = super::auth::normalize_registry_key(x);
            x == r || (!x.contains(':') && r.split(':').next() == Some(x.as_str()) && !r.starts_with('['))
        })
    }

    fn is_insecure(&self, registry: &str) -> bool {
        !self.opts.tls_verify || Self::is_listed(&self.opts.insecure_registries, registry)
    }

    /// The scheme, TLS policy and auth challenge of a registry, pinging it once.
    fn host(&self, registry: &str) -> Result<Arc<Host>> {
        if let Some(h) = lock(&self.hosts).get(registry) {
            return Ok(h.clone());
        }
        let _g = lock(&self.ping_lock);
        if let Some(h) = lock(&self.hosts).get(registry) {
            return Ok(h.clone());
        }
        let api = if registry == DOCKER_HUB { DOCKER_HUB_API } else { registry };
        let direct = is_loopback(api);
        let insecure = self.is_insecure(registry);
        let schemes: &[&str] = if Self::is_listed(&self.opts.plain_http, registry) {
            &["http"]
        } else if direct || insecure {
            &["https", "http"]
        } else {
            &["https"]
        };
        let mut errs: Vec<Error> = Vec::new();
        for scheme in schemes {
            let host = Host { registry: registry.to_string(), base: format!("{scheme}://{api}"), verify: !insecure, direct, challenge: Mutex::new(None) };
            match self.ping(&host) {
                Ok(ch) => {
                    *lock(&host.challenge) = ch;
                    let h = Arc::new(host);
                    lock(&self.hosts).insert(registry.to_string(), h.clone());
                    return Ok(h);
                }
                Err(e) => errs.push(e),
            }
        }
        // A certificate problem over https says more than the http fallback's failure.
        let first_tls = errs.iter().position(|e| e.kind() == ErrorKind::Tls);
        let e = match first_tls {
            Some(i) => errs.swap_remove(i),
            None => errs.pop().expect("at least one scheme"),
        };
        Err(e)
    }

    fn ping(&self, host: &Host) -> Result<Option<Challenge>> {
        let url = format!("{}/v2/", host.base);
        let mut req = Req::new("GET", url.clone());
        let mut resp = self.execute(host.verify, host.direct, &mut req, None)?;
        let status = resp.status().as_u16();
        let is_registry = resp.headers().contains_key("docker-distribution-api-version");
        match status {
            200..=299 => Ok(None),
            401 => {
                let ch = pick_challenge(&resp);
                if ch.is_none() {
                    return Err(Error::new(ErrorKind::Protocol, format!("GET {url}: 401 without a usable WWW-Authenticate challenge")));
                }
                Ok(ch)
            }
            _ if is_registry => Ok(None),
            _ => {
                let body = read_limited(&mut resp, 512).unwrap_or_default();
                let text = String::from_utf8_lossy(&body);
                let text = text.trim();
                Err(Error::new(
                    ErrorKind::Protocol,
                    format!("GET {url}: status {status}{}: not a registry", if text.is_empty() { String::new() } else { format!(" ({text})") }),
                ))
            }
        }
    }

    fn credential(&self, registry: &str) -> Result<Option<Credential>> {
        if let Some(c) = lock(&self.creds).get(registry) {
            return Ok(c.clone());
        }
        let c = self.opts.auth.lookup(registry).map_err(|e| Error::new(ErrorKind::Config, format!("credentials for {registry}: {e}")))?;
        lock(&self.creds).insert(registry.to_string(), c.clone());
        Ok(c)
    }

    /// Sends one HTTP request (no auth, no retries).
    fn execute(&self, verify: bool, direct: bool, req: &mut Req<'_>, auth: Option<&str>) -> Result<Resp> {
        let agent = self.agent(verify, direct);
        let mut b = http::Request::builder().method(req.method).uri(req.url.as_str());
        for (k, v) in &req.headers {
            b = b.header(*k, v.as_str());
        }
        if let Some(a) = auth {
            b = b.header("Authorization", a);
        }
        self.count(Counter::Requests, 1);
        self.count(
            match req.method {
                "GET" => Counter::Get,
                "HEAD" => Counter::Head,
                "POST" => Counter::Post,
                "PUT" => Counter::Put,
                "PATCH" => Counter::Patch,
                _ => Counter::Delete,
            },
            1,
        );
        let bad = |e: http::Error| Error::new(ErrorKind::Invalid, format!("{} {}: {e}", req.method, req.url));
        let r = match &mut req.body {
            Payload::Empty => agent.run(b.body(()).map_err(bad)?),
            Payload::Bytes(d) => agent.run(b.body(*d).map_err(bad)?),
            Payload::Stream(r, n) => {
                let b = b.header("Content-Length", n.to_string());
                agent.run(b.body(ureq::SendBody::from_reader(*r)).map_err(bad)?)
            }
        };
        r.map_err(|e| transport_error(&req.url, e))
    }

    /// Sends a request to a registry with authentication and retries.
    pub(crate) fn send(&self, registry: &str, scope: &Scope, mut req: Req<'_>) -> Result<Resp> {
        let host = self.host(registry)?;
        let replayable = !matches!(req.body, Payload::Stream(..));
        let same_host = req.url.starts_with(&format!("{}/", host.base));
        let mut scope = scope.clone();
        let mut attempt = 0;
        let mut auth_retried = false;
        let mut force = false;
        loop {
            let auth = if same_host { self.auth_header(&host, &scope, force)? } else { None };
            force = false;
            match self.execute(host.verify, host.direct, &mut req, auth.as_deref()) {
                Err(e) => {
                    if replayable && req.retry && e.kind() == ErrorKind::Network && attempt < self.opts.max_retries {
                        self.backoff(attempt, None);
                        attempt += 1;
                        continue;
                    }
                    return Err(e);
                }
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    if status == 401 && replayable && !auth_retried && same_host {
                        if let Some(ch) = pick_challenge(&resp) {
                            let had_auth = auth.is_some();
                            let bearer = ch.scheme == "bearer";
                            if bearer {
                                if let Some(s) = ch.param("scope") {
                                    for part in s.split(' ') {
                                        scope.add(part.to_string());
                                    }
                                }
                            }
                            *lock(&host.challenge) = Some(ch);
                            // Retry when the new challenge gives something to try: a
                            // (new) token, or credentials that were not sent.
                            let has_cred = self.credential(registry)?.is_some();
                            if bearer || (!had_auth && has_cred) {
                                auth_retried = true;
                                force = bearer;
                                continue;
                            }
                        }
                    }
                    if (status == 429 || status >= 500) && replayable && req.retry && attempt < self.opts.max_retries {
                        let after = resp.headers().get("retry-after").and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<u64>().ok());
                        drop(resp);
                        self.backoff(attempt, after.map(Duration::from_secs));
                        attempt += 1;
                        continue;
                    }
                    return Ok(resp);
                }
            }
        }
    }

    pub(crate) fn backoff(&self, attempt: u32, retry_after: Option<Duration>) {
        self.count(Counter::Retries, 1);
        let d = match retry_after {
            Some(d) => d.min(Duration::from_secs(30)),
            None => (self.opts.retry_base * 2u32.saturating_pow(attempt.min(16))).min(Duration::from_secs(10)),
        };
        std::thread::sleep(d);
    }

    fn auth_header(&self, host: &Host, scope: &Scope, force: bool) -> Result<Option<String>> {
        let ch = lock(&host.challenge).clone();
        let Some(ch) = ch else { return Ok(None) };
        let cred = self.credential(&host.registry)?;
        match ch.scheme.as_str() {
            "basic" => Ok(cred.and_then(|c| c.basic_header())),
            "bearer" => {
                if let Some(Credential::RegistryToken(t)) = &cred {
                    return Ok(Some(format!("Bearer {t}")));
                }
                let t = self.token(host, &ch, scope, cred.as_ref(), force)?;
                Ok(Some(format!("Bearer {t}")))
            }
            _ => Ok(None),
        }
    }

    fn token(&self, host: &Host, ch: &Challenge, scope: &Scope, cred: Option<&Credential>, force: bool) -> Result<String> {
        let realm = ch.param("realm").ok_or_else(|| Error::new(ErrorKind::Protocol, format!("{}: bearer challenge without realm", host.registry)))?;
        let service = ch.param("service").unwrap_or("");
        let key = format!("{}|{realm}|{service}", host.registry);
        let cached = || {
            let now = Instant::now();
            let mut tokens = lock(&self.tokens);
            let list = tokens.entry(key.clone()).or_default();
            list.retain(|t| t.expires > now);
            list.iter().rev().find(|t| scope.0.iter().all(|w| t.scopes.iter().any(|h| scope_covers(h, w)))).map(|t| t.value.clone())
        };
        if !force {
            if let Some(t) = cached() {
                return Ok(t);
            }
        }
        // One token request at a time: parallel transfers wait for the first one's
        // token instead of each asking for their own.
        let _g = lock(&self.token_lock);
        if !force {
            if let Some(t) = cached() {
                return Ok(t);
            }
        }
        let (token, ttl) = self.fetch_token(host, realm, service, scope, cred)?;
        lock(&self.tokens).entry(key).or_default().push(Token { scopes: scope.0.clone(), value: token.clone(), expires: Instant::now() + ttl });
        Ok(token)
    }

    fn fetch_token(&self, host: &Host, realm: &str, service: &str, scope: &Scope, cred: Option<&Credential>) -> Result<(String, Duration)> {
        self.count(Counter::TokenRequests, 1);
        let realm_host = url_host(realm);
        let direct = is_loopback(&realm_host);
        let what = format!("token request to {realm}");
        let mut resp = match cred {
            Some(Credential::IdentityToken { token, .. }) => {
                let mut form = vec![("grant_type", "refresh_token".to_string()), ("client_id", "berth-build".to_string()), ("refresh_token", token.clone())];
                if !service.is_empty() {
                    form.push(("service", service.to_string()));
                }
                if !scope.0.is_empty() {
                    form.push(("scope", scope.0.join(" ")));
                }
                let body: String = form.iter().map(|(k, v)| format!("{k}={}", pct(v))).collect::<Vec<_>>().join("&");
                let mut req =
                    Req::new("POST", realm.to_string()).header("Content-Type", "application/x-www-form-urlencoded").body(Payload::Bytes(body.as_bytes()));
                self.execute(host.verify, direct, &mut req, None).map_err(|e| e.context(what.clone()))?
            }
            _ => {
                let mut url = realm.to_string();
                let mut sep = if url.contains('?') { '&' } else { '?' };
                if !service.is_empty() {
                    url.push_str(&format!("{sep}service={}", pct(service)));
                    sep = '&';
                }
                for s in &scope.0 {
                    url.push_str(&format!("{sep}scope={}", pct(s)));
                    sep = '&';
                }
                let mut req = Req::new("GET", url);
                let auth = cred.and_then(|c| c.basic_header());
                self.execute(host.verify, direct, &mut req, auth.as_deref()).map_err(|e| e.context(what.clone()))?
            }
        };
        let status = resp.status().as_u16();
        if !(200..300).contains(&status) {
            let mut e = response_error(&mut resp, "");
            if status == 401 || status == 403 {
                let who = if cred.is_some() {
                    format!("the credentials for {} were rejected", host.registry)
                } else {
                    format!("no credentials for {} (berth-build login {})", host.registry, host.registry)
                };
                e = Error::new(e.kind(), format!("{}: {who}", e.detail()));
            }
            return Err(e.context(what));
        }
        let body = read_limited(&mut resp, 1 << 20).map_err(|e| e.context(what.clone()))?;
        let v: serde_json::Value = serde_json::from_slice(&body).map_err(|e| Error::new(ErrorKind::Protocol, format!("{what}: bad JSON answer: {e}")))?;
        let token = v
            .get("token")
            .or_else(|| v.get("access_token"))
            .and_then(|t| t.as_str())
            .filter(|t| !t.is_empty())
            .ok_or_else(|| Error::new(ErrorKind::Protocol, format!("{what}: answer has no token")))?;
        let expires_in = v.get("expires_in").and_then(|x| x.as_u64()).unwrap_or(60).max(60);
        // Renew a little early.
        Ok((token.to_string(), Duration::from_secs(expires_in.saturating_sub(10))))
    }

    fn base(&self, registry: &str) -> Result<String> {
        Ok(self.host(registry)?.base.clone())
    }

    /// Resolves an upload `Location` (absolute or relative to the registry).
    fn resolve_location(&self, registry: &str, loc: &str) -> Result<String> {
        if loc.starts_with("http://") || loc.starts_with("https://") {
            return Ok(loc.to_string());
        }
        let base = self.base(registry)?;
        Ok(if loc.starts_with('/') { format!("{base}{loc}") } else { format!("{base}/{loc}") })
    }

    // ---- endpoints ----

    /// Checks that the registry answers and that its credentials (those configured, or
    /// `cred`) are accepted: `GET /v2/` with basic auth, or a token request.
    pub fn check_auth(&self, registry: &str) -> Result<()> {
        let host = self.host(registry).map_err(|e| e.context(format!("login {registry}")))?;
        let ch = lock(&host.challenge).clone();
        let op = format!("login {registry}");
        match ch {
            None => Ok(()),
            Some(ch) if ch.scheme == "bearer" => {
                let cred = self.credential(registry)?;
                if cred.is_none() {
                    return Err(Error::new(ErrorKind::Unauthorized, "no credentials given").context(op));
                }
                let service = ch.param("service").unwrap_or("").to_string();
                self.fetch_token(&host, ch.param("realm").unwrap_or(""), &service, &Scope::default(), cred.as_ref()).map(|_| ()).map_err(|e| e.context(op))
            }
            Some(_) => {
                let url = format!("{}/v2/", host.base);
                let mut resp = self.send(registry, &Scope::default(), Req::new("GET", url)).map_err(|e| e.context(op.clone()))?;
                if resp.status().is_success() {
                    Ok(())
                } else {
                    Err(self.status_error(&mut resp, registry).context(op))
                }
            }
        }
    }

    /// `GET /v2/<name>/manifests/<ref>`: the bytes, media type and digest (verified
    /// against a pinned digest and `Docker-Content-Digest`).
    pub fn get_manifest(&self, r: &Reference, accept: &str) -> Result<(Vec<u8>, String, Digest)> {
        let url = format!("{}/v2/{}/manifests/{}", self.base(r.registry())?, r.repository(), r.manifest_ref());
        let mut resp = self.send(r.registry(), &Scope::pull(r.repository()), Req::new("GET", url).header("Accept", accept))?;
        if !resp.status().is_success() {
            return Err(self.status_error(&mut resp, r.registry()));
        }
        let header_digest = header(&resp, "docker-content-digest");
        let ct = header(&resp, "content-type").map(|c| c.split(';').next().unwrap_or("").trim().to_string());
        let bytes = read_limited(&mut resp, MAX_MANIFEST_SIZE)?;
        let digest = match r.digest() {
            Some(want) => {
                let got = want.same_algo_of(&bytes);
                if &got != want {
                    return Err(Error::new(ErrorKind::Digest, format!("manifest digest mismatch: got {got}, want {want}")));
                }
                got
            }
            None => Digest::sha256(&bytes),
        };
        if let Some(h) = header_digest.and_then(|h| Digest::parse(&h).ok()) {
            if h.algorithm() == digest.algorithm() && h != digest {
                return Err(Error::new(ErrorKind::Digest, format!("manifest digest mismatch: registry says {h}, content is {digest}")));
            }
        }
        let generic = |c: &str| c.is_empty() || c == "application/json" || c == "text/plain" || c == "application/octet-stream";
        let media_type = match ct {
            Some(c) if !generic(&c) => c,
            _ => media::sniff_media_type(&bytes).unwrap_or_else(|| berth_spec::image::MEDIA_TYPE_OCI_MANIFEST.into()),
        };
        Ok((bytes, media_type, digest))
    }

    /// `HEAD /v2/<name>/manifests/<ref>`: digest, media type and size, or None (404).
    /// Falls back to a GET when the registry sends no digest.
    pub fn head_manifest(&self, r: &Reference, accept: &str) -> Result<Option<(Digest, String, u64)>> {
        let url = format!("{}/v2/{}/manifests/{}", self.base(r.registry())?, r.repository(), r.manifest_ref());
        let mut resp = self.send(r.registry(), &Scope::pull(r.repository()), Req::new("HEAD", url).header("Accept", accept))?;
        let status = resp.status().as_u16();
        if status == 404 {
            return Ok(None);
        }
        if !resp.status().is_success() {
            return Err(self.status_error(&mut resp, r.registry()));
        }
        let d = header(&resp, "docker-content-digest").and_then(|h| Digest::parse(&h).ok());
        let ct = header(&resp, "content-type").map(|c| c.split(';').next().unwrap_or("").trim().to_string());
        let len = header(&resp, "content-length").and_then(|l| l.parse().ok()).unwrap_or(0);
        match (d, ct) {
            (Some(d), Some(ct)) => Ok(Some((d, ct, len))),
            _ => {
                let (bytes, mt, d) = self.get_manifest(r, accept)?;
                Ok(Some((d, mt, bytes.len() as u64)))
            }
        }
    }

    /// `PUT /v2/<name>/manifests/<tag or digest>` with the manifest's media type.
    /// Returns the digest (the registry's `Docker-Content-Digest`, checked against the
    /// content's).
    pub fn put_manifest(&self, r: &Reference, bytes: &[u8], media_type: &str) -> Result<Digest> {
        let computed = Digest::sha256(bytes);
        let target = match (r.tag(), r.digest()) {
            (Some(t), _) => t.to_string(),
            (None, Some(d)) => {
                if d.same_algo_of(bytes) != *d {
                    return Err(Error::new(ErrorKind::Digest, format!("manifest content does not match {d}")));
                }
                d.to_string()
            }
            (None, None) => "latest".into(),
        };
        let url = format!("{}/v2/{}/manifests/{}", self.base(r.registry())?, r.repository(), target);
        let req = Req::new("PUT", url).header("Content-Type", media_type).body(Payload::Bytes(bytes));
        let mut resp = self.send(r.registry(), &Scope::push(r.repository()), req)?;
        if !resp.status().is_success() {
            return Err(self.status_error(&mut resp, r.registry()));
        }
        self.count(Counter::ManifestsPushed, 1);
        let got = header(&resp, "docker-content-digest").and_then(|h| Digest::parse(&h).ok());
        match got {
            Some(h) if h.algorithm() == computed.algorithm() && h != computed => {
                Err(Error::new(ErrorKind::Digest, format!("registry stored the manifest as {h}, but its content is {computed}")))
            }
            Some(h) if h.algorithm() != computed.algorithm() => Ok(h),
            _ => Ok(computed),
        }
    }

    /// `HEAD /v2/<name>/blobs/<digest>`: the size when the repository has the blob.
    pub fn blob_exists(&self, r: &Reference, digest: &Digest) -> Result<Option<u64>> {
        self.blob_exists_scoped(r, digest, &Scope::pull(r.repository()))
    }

    pub(crate) fn blob_exists_scoped(&self, r: &Reference, digest: &Digest, scope: &Scope) -> Result<Option<u64>> {
        let url = format!("{}/v2/{}/blobs/{}", self.base(r.registry())?, r.repository(), digest);
        let mut resp = self.send(r.registry(), scope, Req::new("HEAD", url))?;
        match resp.status().as_u16() {
            200..=299 => Ok(Some(header(&resp, "content-length").and_then(|l| l.parse().ok()).unwrap_or(0))),
            404 => Ok(None),
            _ => Err(self.status_error(&mut resp, r.registry())),
        }
    }

    /// `GET /v2/<name>/blobs/<digest>` into memory (configs, cache records), verified.
    pub fn get_blob_bytes(&self, r: &Reference, digest: &Digest, max: u64) -> Result<Vec<u8>> {
        let url = format!("{}/v2/{}/blobs/{}", self.base(r.registry())?, r.repository(), digest);
        let mut resp = self.send(r.registry(), &Scope::pull(r.repository()), Req::new("GET", url))?;
        if !resp.status().is_success() {
            return Err(self.status_error(&mut resp, r.registry()).context(format!("blob {digest}")));
        }
        let bytes = read_limited(&mut resp, max)?;
        let got = digest.same_algo_of(&bytes);
        if &got != digest {
            return Err(Error::new(ErrorKind::Digest, format!("blob {digest}: content is {got}")));
        }
        self.count(Counter::BlobsDownloaded, 1);
        self.count(Counter::BytesDownloaded, bytes.len() as u64);
        Ok(bytes)
    }

    /// Downloads a blob into `store`, verifying digest and size while streaming;
    /// restarts a transfer cut off midway (bounded). Returns the size.
    pub fn fetch_blob(&self, r: &Reference, desc: &berth_spec::image::Descriptor, store: &dyn BlobStore, progress: Option<&ProgressFn<'_>>) -> Result<u64> {
        let mut attempt = 0;
        loop {
            match self.fetch_blob_once(r, desc, store, progress) {
                Ok(n) => {
                    self.note_location(r.registry(), r.repository(), &desc.digest);
                    return Ok(n);
                }
                Err(e) if e.is_transient() && attempt < self.opts.max_retries => {
                    emit(progress, Progress::Retry { what: desc.digest.to_string(), attempt: attempt + 1, error: e.to_string() });
                    self.backoff(attempt, None);
                    attempt += 1;
                }
                Err(e) => return Err(e.context(format!("blob {}", desc.digest))),
            }
        }
    }

    fn fetch_blob_once(&self, r: &Reference, desc: &berth_spec::image::Descriptor, store: &dyn BlobStore, progress: Option<&ProgressFn<'_>>) -> Result<u64> {
        let url = format!("{}/v2/{}/blobs/{}", self.base(r.registry())?, r.repository(), desc.digest);
        let mut resp = self.send(r.registry(), &Scope::pull(r.repository()), Req::new("GET", url))?;
        if !resp.status().is_success() {
            return Err(self.status_error(&mut resp, r.registry()));
        }
        emit(progress, Progress::BlobStart { digest: desc.digest.clone(), size: desc.size });
        let body = resp.into_body().into_reader();
        let mut reader = ProgressReader { inner: body, done: 0, last: 0, total: desc.size, digest: &desc.digest, progress };
        let mut v = VerifyingReader::new(&mut reader, Some(desc.digest.clone()), Some(desc.size));
        let n = store.put(&desc.digest, Some(desc.size), &mut v).map_err(|e| io_error(&e))?;
        if !v.verified() {
            // The store stopped at the expected size without reading to the end: check
            // that nothing follows and that the content matched.
            let mut one = [0u8; 1];
            match v.read(&mut one) {
                Ok(0) if v.verified() => {}
                Err(e) => return Err(io_error(&e)),
                _ => return Err(Error::new(ErrorKind::Digest, format!("blob {}: the store kept unverified content", desc.digest))),
            }
        }
        self.count(Counter::BlobsDownloaded, 1);
        self.count(Counter::BytesDownloaded, n);
        emit(progress, Progress::BlobDone { digest: desc.digest.clone(), size: n });
        Ok(n)
    }

    /// `POST /v2/<name>/blobs/uploads/?mount=<digest>&from=<repo>`.
    pub(crate) fn mount_blob(&self, r: &Reference, digest: &Digest, from: &str, scope: &Scope) -> Result<Mount> {
        let url = format!("{}/v2/{}/blobs/uploads/?mount={}&from={}", self.base(r.registry())?, r.repository(), digest, pct(from));
        let mut resp = self.send(r.registry(), scope, Req::new("POST", url).body(Payload::Bytes(&[])).retry(true))?;
        match resp.status().as_u16() {
            201 => Ok(Mount::Mounted),
            202 => match header(&resp, "location") {
                Some(loc) => Ok(Mount::Started(self.resolve_location(r.registry(), &loc)?)),
                None => Ok(Mount::Failed),
            },
            401 | 403 | 404 => Ok(Mount::Failed),
            _ => Err(self.status_error(&mut resp, r.registry())),
        }
    }

    /// `POST /v2/<name>/blobs/uploads/`: the upload session's URL.
    pub(crate) fn start_upload(&self, r: &Reference, scope: &Scope) -> Result<String> {
        let url = format!("{}/v2/{}/blobs/uploads/", self.base(r.registry())?, r.repository());
        let mut resp = self.send(r.registry(), scope, Req::new("POST", url).body(Payload::Bytes(&[])).retry(true))?;
        if resp.status().as_u16() != 202 {
            return Err(self.status_error(&mut resp, r.registry()));
        }
        let loc = header(&resp, "location").ok_or_else(|| Error::new(ErrorKind::Protocol, "upload started without a Location"))?;
        self.resolve_location(r.registry(), &loc)
    }

    /// Uploads a blob from `store` into an upload session: one PUT with the content
    /// (monolithic), or PATCHes of `chunk` bytes with Content-Range then a PUT.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn upload_blob(
        &self,
        r: &Reference,
        scope: &Scope,
        location: String,
        desc: &berth_spec::image::Descriptor,
        store: &dyn BlobStore,
        chunk: Option<u64>,
        progress: Option<&ProgressFn<'_>>,
    ) -> Result<()> {
        let mut src = store.open(&desc.digest).map_err(|e| io_error(&e))?;
        emit(progress, Progress::BlobStart { digest: desc.digest.clone(), size: desc.size });
        let mut location = location;
        let mut sent = 0u64;
        if let Some(chunk) = chunk.filter(|c| *c > 0) {
            let mut buf = vec![0u8; chunk.min(64 << 20) as usize];
            loop {
                let n = read_full(&mut src, &mut buf).map_err(|e| io_error(&e))?;
                if n == 0 {
                    break;
                }
                let req = Req::new("PATCH", location.clone())
                    .header("Content-Type", "application/octet-stream")
                    .header("Content-Range", format!("{}-{}", sent, sent + n as u64 - 1))
                    .body(Payload::Bytes(&buf[..n]))
                    .retry(false);
                let mut resp = self.send(r.registry(), scope, req)?;
                if resp.status().as_u16() != 202 {
                    return Err(self.status_error(&mut resp, r.registry()));
                }
                if let Some(loc) = header(&resp, "location") {
                    location = self.resolve_location(r.registry(), &loc)?;
                }
                sent += n as u64;
                emit(progress, Progress::BlobBytes { digest: desc.digest.clone(), done: sent, total: desc.size });
            }
            if sent != desc.size {
                return Err(Error::new(ErrorKind::Digest, format!("blob {} in the store has {sent} bytes, want {}", desc.digest, desc.size)));
            }
            let url = format!("{location}{}digest={}", if location.contains('?') { '&' } else { '?' }, desc.digest);
            let req = Req::new("PUT", url).header("Content-Type", "application/octet-stream").body(Payload::Bytes(&[])).retry(false);
            let mut resp = self.send(r.registry(), scope, req)?;
            if resp.status().as_u16() != 201 {
                return Err(self.status_error(&mut resp, r.registry()));
            }
        } else {
            let url = format!("{location}{}digest={}", if location.contains('?') { '&' } else { '?' }, desc.digest);
            let mut reader = ProgressReader { inner: src, done: 0, last: 0, total: desc.size, digest: &desc.digest, progress };
            let mut v = VerifyingReader::new(&mut reader, Some(desc.digest.clone()), Some(desc.size));
            let req = Req::new("PUT", url).header("Content-Type", "application/octet-stream").body(Payload::Stream(&mut v, desc.size));
            let result = self.send(r.registry(), scope, req);
            // A store blob that does not match its digest surfaces here, not as the
            // registry's complaint.
            if v.count() == desc.size && !v.verified() {
                let mut sink = [0u8; 1];
                if let Err(e) = v.read(&mut sink) {
                    return Err(Error::new(ErrorKind::Digest, format!("blob {} in the store: {e}", desc.digest)));
                }
            }
            let mut resp = result?;
            if resp.status().as_u16() != 201 {
                return Err(self.status_error(&mut resp, r.registry()));
            }
            sent = desc.size;
        }
        self.count(Counter::BlobsUploaded, 1);
        self.count(Counter::BytesUploaded, sent);
        self.note_location(r.registry(), r.repository(), &desc.digest);
        emit(progress, Progress::BlobDone { digest: desc.digest.clone(), size: sent });
        Ok(())
    }

    /// `GET /v2/<name>/tags/list`, following `Link` pagination (at most 100 pages).
    pub fn list_tags(&self, r: &Reference) -> Result<Vec<String>> {
        let base = self.base(r.registry())?;
        let mut url = format!("{base}/v2/{}/tags/list", r.repository());
        let mut tags = Vec::new();
        for _ in 0..100 {
            let mut resp = self.send(r.registry(), &Scope::pull(r.repository()), Req::new("GET", url.clone()))?;
            if !resp.status().is_success() {
                return Err(self.status_error(&mut resp, r.registry()));
            }
            let next = header(&resp, "link").and_then(|l| {
                let s = l.split(';').next()?.trim();
                let s = s.strip_prefix('<')?.strip_suffix('>')?;
                Some(s.to_string())
            });
            let body = read_limited(&mut resp, 16 << 20)?;
            let v: serde_json::Value = serde_json::from_slice(&body).map_err(|e| Error::new(ErrorKind::Protocol, format!("tags list: {e}")))?;
            if let Some(a) = v.get("tags").and_then(|t| t.as_array()) {
                tags.extend(a.iter().filter_map(|t| t.as_str().map(str::to_string)));
            }
            match next {
                Some(n) => url = self.resolve_location(r.registry(), &n)?,
                None => break,
            }
        }
        Ok(tags)
    }

    /// The error for a non-success response: the registry's own message (from its
    /// `errors` JSON) and the status, e.g. `manifest unknown (404)`.
    pub(crate) fn status_error(&self, resp: &mut Resp, registry: &str) -> Error {
        let status = resp.status().as_u16();
        let e = response_error(resp, "");
        if status == 401 {
            let has = self.credential(registry).ok().flatten().is_some();
            let hint = if has {
                format!("the credentials for {registry} were rejected")
            } else {
                format!("no credentials for {registry} (berth-build login {registry})")
            };
            return Error::new(e.kind(), format!("{}: {hint}", e.detail()));
        }
        e
    }
}

pub(crate) enum Mount {
    Mounted,
    /// Not mounted, but an upload session was started at this URL.
    Started(String),
    Failed,
}

/// Reports bytes read to a progress callback, at most every 256 KiB.
struct ProgressReader<'a, 'p, R> {
    inner: R,
    done: u64,
    last: u64,
    total: u64,
    digest: &'a Digest,
    progress: Option<&'a ProgressFn<'p>>,
}

impl<R: Read> Read for ProgressReader<'_, '_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.done += n as u64;
        if self.progress.is_some()
            && (self.done - self.last >= 256 << 10 || (n == 0 && self.done != self.last) || self.done == self.total && self.done != self.last)
        {
            self.last = self.done;
            emit(self.progress, Progress::BlobBytes { digest: self.digest.clone(), done: self.done, total: self.total });
        }
        Ok(n)
    }
}

fn read_full(r: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

fn header(resp: &Resp, name: &str) -> Option<String> {
    resp.headers().get(name).and_then(|v| v.to_str().ok()).map(|s| s.trim().to_string())
}

/// Prefers a bearer challenge over a basic one.
fn pick_challenge(resp: &Resp) -> Option<Challenge> {
    let mut all = Vec::new();
    for v in resp.headers().get_all("www-authenticate") {
        if let Ok(s) = v.to_str() {
            all.extend(parse_challenges(s));
        }
    }
    all.iter().find(|c| c.scheme == "bearer").or_else(|| all.iter().find(|c| c.scheme == "basic")).cloned()
}

pub(crate) fn read_limited(resp: &mut Resp, max: u64) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut r = resp.body_mut().as_reader().take(max + 1);
    r.read_to_end(&mut out).map_err(|e| io_error(&e))?;
    if out.len() as u64 > max {
        return Err(Error::new(ErrorKind::Protocol, format!("response larger than {max} bytes")));
    }
    Ok(out)
}

/// `manifest unknown (404)` from a registry's `{"errors":[{"code","message"}]}`.
fn response_error(resp: &mut Resp, what: &str) -> Error {
    let status = resp.status().as_u16();
    let body = read_limited(resp, 64 << 10).unwrap_or_default();
    let mut msg = String::new();
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&body) {
        if let Some(errs) = v.get("errors").and_then(|e| e.as_array()) {
            let parts: Vec<String> = errs
                .iter()
                .filter_map(|e| {
                    let m = e.get("message").and_then(|m| m.as_str()).filter(|m| !m.is_empty());
                    let c = e.get("code").and_then(|c| c.as_str());
                    m.map(str::to_string).or_else(|| c.map(|c| c.to_ascii_lowercase().replace('_', " ")))
                })
                .collect();
            msg = parts.join("; ");
        } else if let Some(m) = v.get("details").or_else(|| v.get("error_description")).or_else(|| v.get("error")).and_then(|m| m.as_str()) {
            msg = m.to_string();
        }
    } else {
        let t = String::from_utf8_lossy(&body);
        let t = t.trim();
        if !t.is_empty() && t.len() < 200 && !t.starts_with('<') {
            msg = t.to_string();
        }
    }
    if msg.is_empty() {
        msg = match status {
            401 => "unauthorized".into(),
            403 => "denied".into(),
            404 => "not found".into(),
            429 => "too many requests".into(),
            _ => resp.status().canonical_reason().unwrap_or("error").to_ascii_lowercase(),
        };
    }
    let kind = match status {
        401 => ErrorKind::Unauthorized,
        403 => ErrorKind::Denied,
        404 => ErrorKind::NotFound,
        s => ErrorKind::Status(s),
    };
    let detail = if what.is_empty() { format!("{msg} ({status})") } else { format!("{what}: {msg} ({status})") };
    Error::new(kind, detail)
}

fn io_error(e: &io::Error) -> Error {
    let kind = match e.kind() {
        io::ErrorKind::InvalidData => ErrorKind::Digest,
        io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::BrokenPipe
        | io::ErrorKind::UnexpectedEof
        | io::ErrorKind::TimedOut => ErrorKind::Network,
        _ => ErrorKind::Io,
    };
    // ureq wraps its own errors in io::Error when read through a body reader.
    let text = e.to_string();
    let kind =
        if kind == ErrorKind::Io && (text.contains("timeout") || text.contains("connection") || text.contains("Protocol")) { ErrorKind::Network } else { kind };
    Error::new(kind, text)
}

/// Maps a transport failure: `connect 127.0.0.1:5999: connection refused`.
/// Dropped connections and timeouts get kind `Network` (transient).
fn transport_error(url: &str, e: ureq::Error) -> Error {
    let hp = url_host_port(url);
    match e {
        ureq::Error::Io(io) => match io.kind() {
            io::ErrorKind::ConnectionRefused => Error::new(ErrorKind::Connect, format!("connect {hp}: connection refused")),
            io::ErrorKind::HostUnreachable | io::ErrorKind::NetworkUnreachable | io::ErrorKind::AddrNotAvailable => {
                Error::new(ErrorKind::Connect, format!("connect {hp}: {}", strip_os(&io.to_string())))
            }
            io::ErrorKind::TimedOut => Error::new(ErrorKind::Network, format!("{hp}: timed out")),
            io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted | io::ErrorKind::BrokenPipe | io::ErrorKind::UnexpectedEof => {
                Error::new(ErrorKind::Network, format!("{hp}: connection closed: {}", strip_os(&io.to_string())))
            }
            _ => {
                let t = io.to_string();
                if t.contains("certificate") || t.contains("Certificate") {
                    Error::new(ErrorKind::Tls, format!("tls {hp}: {t}{}", tls_hint()))
                } else if url.starts_with("https://") && (t.contains("corrupt message") || t.contains("InvalidContentType") || t.contains("tls")) {
                    Error::new(ErrorKind::Tls, format!("tls {hp}: {t} (is it an http registry?)"))
                } else {
                    Error::new(ErrorKind::Io, format!("{hp}: {t}"))
                }
            }
        },
        ureq::Error::HostNotFound => Error::new(ErrorKind::Connect, format!("lookup {}: no such host", hp.rsplit_once(':').map(|x| x.0).unwrap_or(&hp))),
        ureq::Error::Timeout(t) => Error::new(ErrorKind::Network, format!("{hp}: timed out ({t})")),
        ureq::Error::Rustls(r) => {
            let t = r.to_string();
            let hint = if t.contains("certificate") { tls_hint() } else { "" };
            Error::new(ErrorKind::Tls, format!("tls {hp}: {t}{hint}"))
        }
        ureq::Error::Tls(t) => Error::new(ErrorKind::Tls, format!("tls {hp}: {t}")),
        ureq::Error::ConnectionFailed => Error::new(ErrorKind::Connect, format!("connect {hp}: connection failed")),
        ureq::Error::Protocol(p) => Error::new(ErrorKind::Network, format!("{hp}: http protocol error: {p}")),
        other => Error::new(ErrorKind::Protocol, format!("{hp}: {other}")),
    }
}

fn tls_hint() -> &'static str {
    " (trust its CA, or use --tls-verify=false / the insecure registry list)"
}

fn strip_os(s: &str) -> String {
    let s = match s.find(" (os error") {
        Some(i) => &s[..i],
        None => s,
    };
    s.to_ascii_lowercase()
}

/// `https://h:5000/v2/...` → `h:5000` (the default port added when absent).
fn url_host_port(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("https", url));
    let hp = rest.split(['/', '?']).next().unwrap_or(rest);
    let has_port = if let Some(v6end) = hp.rfind(']') { hp[v6end..].contains(':') } else { hp.contains(':') };
    if has_port {
        hp.to_string()
    } else {
        format!("{hp}:{}", if scheme == "http" { 80 } else { 443 })
    }
}

/// The host (no port) of a URL.
fn url_host(url: &str) -> String {
    let rest = url.split_once("://").map(|x| x.1).unwrap_or(url);
    let hp = rest.split(['/', '?']).next().unwrap_or(rest);
    if let Some(v6) = hp.strip_prefix('[') {
        return v6.split(']').next().unwrap_or("").to_string();
    }
    hp.split(':').next().unwrap_or(hp).to_string()
}

/// localhost, 127.0.0.0/8, ::1 (with or without a port).
pub fn is_loopback(host_port: &str) -> bool {
    let h = if let Some(v6) = host_port.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        host_port.rsplit_once(':').filter(|(_, p)| p.bytes().all(|b| b.is_ascii_digit())).map(|x| x.0).unwrap_or(host_port)
    };
    h == "localhost" || h.ends_with(".localhost") || h == "::1" || h.parse::<std::net::Ipv4Addr>().map(|a| a.is_loopback()).unwrap_or(false)
}

/// Percent-encodes everything but unreserved characters.
pub(crate) fn pct(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            o.push(b as char);
        } else {
            o.push_str(&format!("%{b:02X}"));
        }
    }
    o
}

/// The system CA bundle (`$SSL_CERT_FILE` or the first of the usual paths) plus the
/// extra CA files; None (webpki's roots) when there is neither.
fn load_roots(extra: &[PathBuf]) -> Result<Option<Vec<ureq::tls::Certificate<'static>>>> {
    let mut certs = Vec::new();
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(f) = std::env::var_os("SSL_CERT_FILE").filter(|f| !f.is_empty()) {
        candidates.push(f.into());
    }
    for p in ["/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/ca-bundle.pem", "/etc/ssl/cert.pem"] {
        candidates.push(p.into());
    }
    for c in candidates {
        if let Ok(pem) = std::fs::read(&c) {
            let before = certs.len();
            certs.extend(pem_certs(&pem));
            if certs.len() > before {
                break;
            }
        }
    }
    let have_system = !certs.is_empty();
    for f in extra {
        let pem = std::fs::read(f).map_err(|e| Error::new(ErrorKind::Config, format!("CA file {}: {e}", f.display())))?;
        let got = pem_certs(&pem);
        if got.is_empty() {
            return Err(Error::new(ErrorKind::Config, format!("CA file {}: no PEM certificate in it", f.display())));
        }
        certs.extend(got);
    }
    if !have_system && extra.is_empty() {
        return Ok(None);
    }
    Ok(Some(certs))
}

fn pem_certs(pem: &[u8]) -> Vec<ureq::tls::Certificate<'static>> {
    ureq::tls::parse_pem(pem)
        .filter_map(|i| match i {
            Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
            _ => None,
        })
        .collect()
}
