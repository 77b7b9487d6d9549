//! `pull`, `push`, `login`, `logout`, `load`, and the registry flags they share with
//! `build`.

use std::io::Read;
use std::path::{Path, PathBuf};

use super::args::{parse, switch, val, Flag, Parsed};
use super::Fail;
use crate::registry::{auth::AuthConfig, Reference};
use crate::remote::{self, RemoteOptions};
use crate::store::Store;

/// The registry flags (`build`, `pull`, `push`, `login` take them).
pub const REMOTE_FLAGS: &[Flag] =
    &[val("tls-verify", None), val("insecure-registry", None), val("cert-file", None), val("creds", None), val("authfile", None), val("platform", None)];

/// `--tls-verify` alone means true; the parser wants a value, so give it one.
pub fn normalize_bool_flags(args: &[String]) -> Vec<String> {
    args.iter().map(|a| if a == "--tls-verify" { "--tls-verify=true".to_string() } else { a.clone() }).collect()
}

pub fn remote_options(p: &Parsed) -> Result<RemoteOptions, Fail> {
    let tls_verify_off = match p.one("tls-verify").as_deref() {
        None | Some("true") => false,
        Some("false") => true,
        Some(v) => return Err(Fail::usage(format!("invalid --tls-verify {v:?}: want true or false"))),
    };
    let creds = p.one("creds").map(|c| remote::parse_creds(&c)).transpose().map_err(Fail::usage)?;
    let platform = p.one("platform");
    if let Some(pl) = &platform {
        crate::registry::Platform::parse(pl).map_err(|e| Fail::usage(format!("--platform: {e}")))?;
    }
    let chunk_size = match p.one("chunk-size") {
        Some(s) => {
            Some(s.parse::<u64>().ok().filter(|n| *n >= 1024).ok_or_else(|| Fail::usage(format!("invalid --chunk-size {s:?}: want bytes, at least 1024")))?)
        }
        None => None,
    };
    Ok(RemoteOptions {
        tls_verify_off,
        insecure_registries: p.all("insecure-registry"),
        ca_files: p.all("cert-file").into_iter().map(PathBuf::from).collect(),
        creds,
        authfile: p.one("authfile").map(PathBuf::from),
        platform,
        chunk_size,
    })
}

fn flags(extra: &[Flag]) -> Vec<Flag> {
    REMOTE_FLAGS.iter().chain(extra).copied().collect()
}

fn open(store: &Path) -> Result<Store, Fail> {
    Store::open(store).map_err(|e| Fail::err(e.to_string()))
}

fn reference(s: &str) -> Result<Reference, Fail> {
    Reference::parse(s).map_err(Fail::usage)
}

/// `pull [-q] REF`: the store's image if it has the reference's name, else from the
/// registry; prints the digest the reference resolved to.
pub fn pull(store: &Path, args: &[String]) -> Result<(), Fail> {
    let p = parse(&normalize_bool_flags(args), &flags(&[switch("quiet", Some('q'))])).map_err(Fail::usage)?;
    let [name] = p.positionals.as_slice() else { return Err(Fail::usage("pull needs exactly one argument: the image reference")) };
    let r = reference(name)?;
    let opts = remote_options(&p)?;
    let st = open(store)?;
    let client = opts.client(&[r.registry()]).map_err(Fail::err)?;
    let platform = opts.platform().map_err(Fail::usage)?;
    let cb = remote::stderr_progress("pulled");
    let quiet = p.has("quiet");
    let progress: Option<&crate::registry::ProgressFn<'_>> = if quiet { None } else { Some(&cb) };
    let pulled = remote::pull::pull_into(&st, &client, &r, &platform, progress).map_err(Fail::err)?;
    if !quiet {
        eprintln!("{}: {} blob(s) downloaded, {} already in the store; image id {}", r.familiar(), pulled.downloaded, pulled.cached, pulled.id);
    }
    println!("{}", pulled.digest);
    Ok(())
}

/// `push [--chunk-size N] [-q] NAME [REF]`: prints the pushed manifest's digest.
pub fn push(store: &Path, args: &[String]) -> Result<(), Fail> {
    let p = parse(&normalize_bool_flags(args), &flags(&[val("chunk-size", None), switch("quiet", Some('q'))])).map_err(Fail::usage)?;
    let (source, dest) = match p.positionals.as_slice() {
        [s] => (s, s),
        [s, d] => (s, d),
        _ => return Err(Fail::usage("push needs NAME [REF]")),
    };
    let dest = reference(dest)?;
    let opts = remote_options(&p)?;
    let st = open(store)?;
    let client = opts.client(&[dest.registry()]).map_err(Fail::err)?;
    let cb = remote::stderr_progress("pushed");
    let progress: Option<&crate::registry::ProgressFn<'_>> = if p.has("quiet") { None } else { Some(&cb) };
    let res = remote::push::push_image(&st, &client, source, &dest, opts.chunk_size, progress).map_err(Fail::err)?;
    let s = client.stats();
    if !p.has("quiet") {
        eprintln!(
            "pushed {}: {} blob(s) uploaded, {} already there, {} mounted",
            res.reference.familiar(),
            s.blobs_uploaded,
            s.blobs_existing,
            s.blobs_mounted
        );
    }
    println!("{}", res.digest);
    Ok(())
}

/// `login [-u USER] [-p PASS | --password-stdin] HOST`: checks the credentials against
/// the registry, then stores them in the login file (`--authfile`, else
/// `$BERTH_AUTH_FILE`, else ~/.config/berth/auth.json).
pub fn login(_store: &Path, args: &[String]) -> Result<(), Fail> {
    let extra = [val("username", Some('u')), val("password", Some('p')), switch("password-stdin", None)];
    let p = parse(&normalize_bool_flags(args), &flags(&extra)).map_err(Fail::usage)?;
    let [host] = p.positionals.as_slice() else { return Err(Fail::usage("login needs exactly one argument: the registry host")) };
    let host = registry_host(host);
    let user = p.one("username").ok_or_else(|| Fail::usage("login needs --username (-u)"))?;
    let pass = match (p.one("password"), p.has("password-stdin")) {
        (Some(_), true) => return Err(Fail::usage("--password and --password-stdin are mutually exclusive")),
        (Some(pw), false) => pw,
        (None, true) => {
            let mut s = String::new();
            std::io::stdin().read_to_string(&mut s).map_err(|e| Fail::err(format!("reading the password from stdin: {e}")))?;
            s.trim_end_matches(['\n', '\r']).to_string()
        }
        (None, false) => return Err(Fail::usage("login needs --password-stdin (or --password)")),
    };
    if pass.is_empty() {
        return Err(Fail::usage("login: the password is empty"));
    }
    let mut opts = remote_options(&p)?;
    opts.creds = Some((user.clone(), pass.clone()));
    let client = opts.client(&[&host]).map_err(Fail::err)?;
    client.check_auth(&host).map_err(|e| Fail::err(e.to_string()))?;
    let auth: AuthConfig = opts.auth();
    auth.store(&host, &user, &pass).map_err(|e| Fail::err(format!("login {host}: writing {}: {e}", auth.login_file.display())))?;
    println!("Login Succeeded");
    Ok(())
}

/// `logout HOST`: removes the stored credentials of HOST.
pub fn logout(_store: &Path, args: &[String]) -> Result<(), Fail> {
    let p = parse(args, &[val("authfile", None)]).map_err(Fail::usage)?;
    let [host] = p.positionals.as_slice() else { return Err(Fail::usage("logout needs exactly one argument: the registry host")) };
    let host = registry_host(host);
    let auth = match p.one("authfile") {
        Some(f) => AuthConfig::with_files(vec![PathBuf::from(f)]),
        None => AuthConfig::from_env(),
    };
    match auth.remove(&host) {
        Ok(true) => {
            println!("Removed login credentials for {host}");
            Ok(())
        }
        Ok(false) => Err(Fail::err(format!("not logged in to {host} (in {})", auth.login_file.display()))),
        Err(e) => Err(Fail::err(format!("logout {host}: {}: {e}", auth.login_file.display()))),
    }
}

/// `https://host/v1/` and `host/` are `host`; a docker.io alias is docker.io.
fn registry_host(s: &str) -> String {
    let s = s.trim_start_matches("https://").trim_start_matches("http://");
    let h = s.split('/').next().unwrap_or(s);
    match h {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => "docker.io".to_string(),
        h => h.to_string(),
    }
}

/// `load [-i] FILE [NAME]`: an oci-archive or docker-archive into the store.
pub fn load(store: &Path, args: &[String]) -> Result<(), Fail> {
    let p = parse(args, &[val("input", Some('i')), val("platform", None)]).map_err(Fail::usage)?;
    let (file, name) = match (p.one("input"), p.positionals.as_slice()) {
        (Some(f), []) => (f, None),
        (Some(f), [n]) => (f, Some(n.clone())),
        (None, [f]) => (f.clone(), None),
        (None, [f, n]) => (f.clone(), Some(n.clone())),
        _ => return Err(Fail::usage("load needs FILE [NAME]")),
    };
    if let Some(n) = &name {
        crate::store::normalize_name(n).map_err(|e| Fail::usage(e.to_string()))?;
    }
    let platform = match p.one("platform") {
        Some(pl) => crate::registry::Platform::parse(&pl).map_err(|e| Fail::usage(format!("--platform: {e}")))?,
        None => crate::registry::Platform::host(),
    };
    let st = open(store)?;
    let loaded = remote::load::load(&st, Path::new(&file), name.as_deref(), &platform).map_err(Fail::err)?;
    for (n, id) in loaded {
        match n {
            Some(n) => println!("Loaded image: {n} ({id})"),
            None => println!("Loaded image ID: {id}"),
        }
    }
    Ok(())
}
