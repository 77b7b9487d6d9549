//! `--platform` and `FROM --platform=`: never silently wrong. A build is for one
//! platform, which the host must run (RUN steps execute here, without emulation), and
//! every base image must be for it; anything else is refused before any step runs,
//! naming the platform and the image. (Multi-platform builds are an issue of their own.)

use berth_spec::image::ImageConfig;

use super::Builder;
use crate::dockerfile::{ArgScope, Dockerfile};
use crate::registry::{media, Platform};
use crate::Context;

/// The build's platform: `--platform` (validated), else the host's.
pub fn target(flag: Option<&str>) -> Result<Platform, String> {
    match flag {
        None => Ok(Platform::host()),
        Some(s) => runnable(s, "--platform"),
    }
}

/// `s` parsed, if this host runs it; `what` names where it was given.
fn runnable(s: &str, what: &str) -> Result<Platform, String> {
    if s.contains(',') {
        return Err(format!("{what} {s}: multi-platform builds are not supported; build one platform at a time"));
    }
    let p = Platform::parse(s).map_err(|e| format!("{what}: {e}"))?;
    let host = Platform::host();
    // The variant must be the host's or none: an arm/v6 host cannot run arm/v7.
    let variant_ok = p.variant.is_none() || p.variant == host.variant;
    if p.os != host.os || p.architecture != host.architecture || !variant_ok {
        return Err(format!("{what} {p}: this host runs {host} and cannot build for {p} (RUN steps execute on the host, without emulation)"));
    }
    Ok(p)
}

/// The platform an image config says it is for; None when it does not say.
pub fn of_config(c: &ImageConfig) -> Option<Platform> {
    if c.os.is_empty() || c.architecture.is_empty() {
        return None;
    }
    let s = match &c.variant {
        Some(v) if !v.is_empty() => format!("{}/{}/{v}", c.os, c.architecture),
        _ => format!("{}/{}", c.os, c.architecture),
    };
    Platform::parse(&s).ok()
}

/// Checks that the image config of base `name` is for `want`.
pub fn check_config(name: &str, c: &ImageConfig, want: &Platform) -> crate::Result<()> {
    match of_config(c) {
        Some(have) if !want.matches(&have) => {
            Err(crate::Error::new(crate::ErrorKind::Platform, format!("base image {name:?} is for {have}, not for the build's platform {want}")))
        }
        _ => Ok(()),
    }
}

/// Before any step: the platform of every needed stage (`FROM --platform=`, expanded
/// with the global args, else the build's), and every base image resolved (pulled if
/// needed; with `--pull` always looked up in its registry) and checked against it. A
/// stored index without the platform is named as such.
pub fn check_stages(b: &Builder, df: &Dockerfile, globals: &ArgScope, needed: &[usize], target: &Platform) -> crate::Result<()> {
    let lex = df.lexer();
    let mut pulled = std::collections::HashSet::new();
    for &i in needed {
        let stage = &df.stages[i];
        // The FROM's line goes with the error, so the excerpt shows it.
        let at = |msg: String| crate::Error::msg(msg).at(&df.file, stage.line);
        let from = stage.from_instr();
        let want = match from.expand_platform(&lex, globals).map_err(|e| at(e.to_string()))? {
            Some(p) => runnable(&p, "FROM --platform").map_err(at)?,
            None => target.clone(),
        };
        let mut name = from.expand_image(&lex, globals).map_err(|e| at(e.to_string()))?;
        let mut lower = name.to_ascii_lowercase();
        match b.opts.extra.contexts.get(&lower) {
            Some(super::extras::NamedContext::Image(r)) => {
                name = r.clone();
                lower = String::new();
            }
            Some(c) => return Err(at(format!("FROM {name}: {} is a directory, which cannot be a base image (use docker-image://REF)", c.describe(&name)))),
            None => {}
        }
        if name.eq_ignore_ascii_case("scratch") || df.stages[..i].iter().any(|s| s.name.as_deref() == Some(lower.as_str())) {
            continue;
        }
        let mut remote = b.opts.remote.clone();
        remote.platform = Some(want.to_string());
        if b.opts.extra.pull && pulled.insert((name.clone(), want.to_string())) {
            pull(b, &name, &remote, &want).map_err(|e| e.at(&df.file, stage.line))?;
        }
        stored_index_has(b, &name, &want).map_err(|e| e.at(&df.file, stage.line))?;
        let id = crate::remote::pull::local_or_pull(&b.store, &name, &remote, Some(&pull_progress(b)))
            .map_err(|e| at(format!("base image {name:?} is not in the store {}, and {e}", b.store.root().display())))?;
        let img = b.store.inspect(id.as_str()).map_err(|e| at(e.to_string()))?;
        check_config(&name, &img.config, &want).map_err(|e| e.at(&df.file, stage.line))?;
    }
    Ok(())
}

/// `--pull`: `name` resolved in its registry and what changed downloaded (blobs the
/// store has are not), tagged in the store so the stage finds it.
fn pull(b: &Builder, name: &str, remote: &crate::remote::RemoteOptions, want: &Platform) -> crate::Result<()> {
    let r = crate::registry::Reference::parse(name).map_err(|e| format!("--pull: base image {name:?}: {e}"))?;
    let client = remote.client(&[r.registry()]).map_err(|e| format!("--pull: base image {name:?}: {e}"))?;
    let p = crate::remote::pull::pull_into(&b.store, &client, &r, want, Some(&pull_progress(b))).map_err(|e| format!("--pull: base image {name:?}: {e}"))?;
    b.progress.message(&format!("[info] --pull: {name} is {} ({} blob(s) downloaded)", p.digest, p.downloaded));
    Ok(())
}

/// Pull progress as messages of the build's display.
fn pull_progress(b: &Builder) -> impl Fn(&crate::registry::Progress) {
    let progress = b.progress.clone();
    move |p: &crate::registry::Progress| {
        if let Some(line) = crate::remote::describe("pulled", p) {
            progress.message(&line);
        }
    }
}

/// When `name` is an index in the store: an error unless it has an entry for `want`.
fn stored_index_has(b: &Builder, name: &str, want: &Platform) -> crate::Result<()> {
    let Ok(d) = b.store.resolve(name) else { return Ok(()) };
    let Ok(bytes) = b.store.read_blob(&d) else { return Ok(()) };
    if !media::sniff_media_type(&bytes).is_some_and(|m| berth_spec::image::is_index(&m)) {
        return Ok(());
    }
    let index: berth_spec::image::Index = serde_json::from_slice(&bytes).map_err(|e| format!("base image {name:?}: index {d}: {e}"))?;
    crate::registry::pull::choose_platform(&index, want).map(drop).context(format!("base image {name:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_hosts_platform_is_a_target() {
        let host = Platform::host();
        assert_eq!(target(None).unwrap(), host);
        assert_eq!(target(Some(&host.to_string())).unwrap(), host);
        let other = if host.architecture == "amd64" { "linux/arm64" } else { "linux/amd64" };
        let e = target(Some(other)).unwrap_err();
        assert!(e.contains(other) && e.contains("--platform") && e.contains(&host.to_string()), "{e}");
        let e = target(Some("windows/amd64")).unwrap_err();
        assert!(e.contains("windows/amd64"), "{e}");
        let e = target(Some("linux/amd64,linux/arm64")).unwrap_err();
        assert!(e.contains("multi-platform"), "{e}");
        assert!(target(Some("linux//")).unwrap_err().contains("--platform"));
    }

    #[test]
    fn a_base_config_for_another_platform_is_refused() {
        let host = Platform::host();
        let mut c = ImageConfig { os: host.os.clone(), architecture: host.architecture.clone(), ..Default::default() };
        check_config("base", &c, &host).unwrap();
        c.architecture = if host.architecture == "s390x" { "amd64".into() } else { "s390x".into() };
        let e = check_config("base", &c, &host).unwrap_err().to_string();
        assert!(e.contains("\"base\"") && e.contains(&format!("linux/{}", c.architecture)) && e.contains(&host.to_string()), "{e}");
        // A config that does not say is taken as it is.
        c.architecture.clear();
        check_config("base", &c, &host).unwrap();
    }
}
