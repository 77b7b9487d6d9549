//! `RUN --mount=...` specifications.

use berth_spec::rootfs_path::clean_abs;
use std::fmt;

use super::expand::{Env, Lexer};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MountType {
    Bind,
    Cache,
    Tmpfs,
    Secret,
    Ssh,
}

impl MountType {
    pub fn as_str(self) -> &'static str {
        match self {
            MountType::Bind => "bind",
            MountType::Cache => "cache",
            MountType::Tmpfs => "tmpfs",
            MountType::Secret => "secret",
            MountType::Ssh => "ssh",
        }
    }
}

impl fmt::Display for MountType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Cache mount sharing mode (`sharing=`); `shared` when not given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Sharing {
    Shared,
    Private,
    Locked,
}

/// One parsed `--mount` value. Relative targets are relative to the working
/// directory at the RUN (the planner resolves them; see [`MountSpec::resolved_target`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountSpec {
    pub kind: MountType,
    /// `target=`/`dst=`/`destination=`.
    pub target: Option<String>,
    /// `source=`/`src=`: a path in `from` (or the build context); for secrets, the secret id.
    pub source: Option<String>,
    /// `from=`: a stage name or image for bind/cache mounts.
    pub from: Option<String>,
    /// `id=`: cache id or secret/ssh id.
    pub id: Option<String>,
    pub sharing: Option<Sharing>,
    /// Effective read-only flag: explicit `ro`/`readonly`/`rw`, else read-only for
    /// bind/secret/ssh and read-write for cache/tmpfs.
    pub readonly: bool,
    /// `mode=` (octal), `uid=`, `gid=`: cache, secret and ssh mounts only.
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    /// `size=` for tmpfs, in bytes.
    pub size: Option<u64>,
    /// `required` for secret/ssh mounts.
    pub required: bool,
    /// `env=` for secrets: expose the secret as this environment variable.
    pub env: Option<String>,
}

const ALL_KEYS: &[&str] = &[
    "type",
    "from",
    "source",
    "target",
    "readonly",
    "id",
    "sharing",
    "required",
    "size",
    "mode",
    "uid",
    "gid",
    "src",
    "dst",
    "destination",
    "ro",
    "rw",
    "readwrite",
    "env",
];

impl MountSpec {
    /// Parse a `--mount` value as written (no variable expansion). Values holding a
    /// `$` are kept as written and not validated (they are checked again by
    /// [`MountSpec::parse_expanded`] once expanded).
    pub fn parse(spec: &str) -> crate::Result<MountSpec> {
        parse_mount(spec, None)
    }

    /// Parse a `--mount` value, expanding each value with `lex`/`env` first.
    pub fn parse_expanded(spec: &str, lex: &Lexer, env: &dyn Env) -> crate::Result<MountSpec> {
        let f = |v: &str| lex.expand_word(v, env).map_err(crate::Error::from);
        parse_mount(spec, Some(&f))
    }

    /// The cache id: `id=` or the cleaned target.
    pub fn cache_id(&self) -> String {
        match &self.id {
            Some(id) if !id.is_empty() => id.clone(),
            _ => clean_abs(self.target.as_deref().unwrap_or("/")),
        }
    }

    /// The secret id: `id=`, else `source=`, else the target's file name.
    pub fn secret_id(&self) -> Option<String> {
        self.id
            .clone()
            .filter(|s| !s.is_empty())
            .or_else(|| self.source.clone().filter(|s| !s.is_empty()))
            .or_else(|| self.target.as_deref().and_then(|t| t.rsplit('/').find(|s| !s.is_empty())).map(str::to_string))
    }

    /// The absolute mount point given the working directory: a relative target is
    /// joined to `workdir`; secrets default to `/run/secrets/<id>` and ssh to
    /// `/run/buildkit/ssh_agent.0`. Errors for a missing target or `/`.
    pub fn resolved_target(&self, workdir: &str) -> crate::Result<String> {
        let t = match (&self.target, self.kind) {
            (Some(t), _) if !t.is_empty() => t.clone(),
            (_, MountType::Secret) => format!("/run/secrets/{}", self.secret_id().unwrap_or_default()),
            (_, MountType::Ssh) => "/run/buildkit/ssh_agent.0".to_string(),
            _ => return Err(format!("mount target must be set for {} mounts", self.kind).into()),
        };
        let abs = if t.starts_with('/') { clean_abs(&t) } else { clean_abs(&format!("{workdir}/{t}")) };
        if abs == "/" {
            return Err(format!("invalid mount target {abs:?}").into());
        }
        Ok(abs)
    }
}

/// CSV fields as Go's csv reader splits them (quotes with `""` escapes).
pub(crate) fn csv_fields(s: &str) -> crate::Result<Vec<String>> {
    let mut out = Vec::new();
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    loop {
        let mut field = String::new();
        if chars.get(i) == Some(&'"') {
            i += 1;
            loop {
                match chars.get(i) {
                    None => return Err(format!("failed to parse csv mounts: extraneous or missing \" in quoted-field: {s}").into()),
                    Some('"') if chars.get(i + 1) == Some(&'"') => {
                        field.push('"');
                        i += 2;
                    }
                    Some('"') => {
                        i += 1;
                        break;
                    }
                    Some(&c) => {
                        field.push(c);
                        i += 1;
                    }
                }
            }
            // Go's reader is strict about what follows a closing quote.
            if let Some(&c) = chars.get(i) {
                if c != ',' {
                    return Err(format!("failed to parse csv mounts: extraneous or missing \" in quoted-field: {s}").into());
                }
            }
        } else {
            while let Some(&c) = chars.get(i) {
                if c == ',' {
                    break;
                }
                if c == '"' {
                    return Err(format!("failed to parse csv mounts: bare \" in non-quoted-field: {s}").into());
                }
                field.push(c);
                i += 1;
            }
        }
        out.push(field);
        if chars.get(i) == Some(&',') {
            i += 1;
            continue;
        }
        break;
    }
    Ok(out)
}

fn parse_bool(key: &str, v: &str) -> crate::Result<bool> {
    match v {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err(format!("invalid value for {key}: {v}").into()),
    }
}

/// docker/go-units RAMInBytes: `64m`, `1g`, `512k`, `100` (bytes), `1.5GiB`.
pub(crate) fn ram_in_bytes(s: &str) -> crate::Result<u64> {
    let t = s.trim();
    let idx = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (num, unit) = t.split_at(idx);
    let n: f64 = num.parse().map_err(|_| format!("invalid size: '{s}'"))?;
    let unit = unit.trim().to_ascii_lowercase();
    let unit = unit.strip_suffix("ib").or_else(|| unit.strip_suffix('b')).unwrap_or(&unit);
    let mul: f64 = match unit {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024.0 * 1024.0,
        "g" => 1024.0 * 1024.0 * 1024.0,
        "t" => 1024f64.powi(4),
        "p" => 1024f64.powi(5),
        _ => return Err(format!("invalid size: '{s}'").into()),
    };
    Ok((n * mul) as u64)
}

type Expander<'a> = &'a dyn Fn(&str) -> crate::Result<String>;

fn parse_mount(val: &str, expander: Option<Expander>) -> crate::Result<MountSpec> {
    let fields = csv_fields(val)?;
    let mut m = MountSpec {
        kind: MountType::Bind,
        target: None,
        source: None,
        from: None,
        id: None,
        sharing: None,
        readonly: false,
        mode: None,
        uid: None,
        gid: None,
        size: None,
        required: false,
        env: None,
    };
    let mut ro_auto = true;
    for field in &fields {
        let (key, value) = match field.split_once('=') {
            Some((k, v)) => (k.to_ascii_lowercase(), Some(v)),
            None => (field.to_ascii_lowercase(), None),
        };
        let Some(value) = value else {
            match key.as_str() {
                "readonly" | "ro" => {
                    m.readonly = true;
                    ro_auto = false;
                }
                "readwrite" | "rw" => {
                    m.readonly = false;
                    ro_auto = false;
                }
                "required" => {
                    if matches!(m.kind, MountType::Secret | MountType::Ssh) {
                        m.required = true;
                    } else {
                        return Err(format!("unexpected key '{key}' for mount type '{}'", m.kind).into());
                    }
                }
                _ => return Err(format!("invalid field '{field}' must be a key=value pair").into()),
            }
            continue;
        };
        let value = match expander {
            Some(f) => f(value)?,
            None => {
                if key == "from" {
                    if let Some(i) = value.find('$') {
                        if i != value.len() - 1 {
                            return Err(format!("'{key}' doesn't support variable expansion, define alias stage instead").into());
                        }
                    }
                }
                value.to_string()
            }
        };
        // Without an expander, values that still hold a variable are kept, unchecked.
        let deferred = expander.is_none() && value.contains('$');
        match key.as_str() {
            "type" => {
                if deferred {
                    continue;
                }
                m.kind = match value.to_ascii_lowercase().as_str() {
                    "bind" => MountType::Bind,
                    "cache" => MountType::Cache,
                    "tmpfs" => MountType::Tmpfs,
                    "secret" => MountType::Secret,
                    "ssh" => MountType::Ssh,
                    _ => {
                        let hint = super::words::suggest(&value, ["bind", "cache", "tmpfs", "secret", "ssh"])
                            .map(|s| format!(" (did you mean {s}?)"))
                            .unwrap_or_default();
                        return Err(format!("unsupported mount type {value:?}{hint}").into());
                    }
                }
            }
            "from" => m.from = Some(value),
            "source" | "src" => m.source = Some(value),
            "target" | "dst" | "destination" => m.target = Some(value),
            "readonly" | "ro" => {
                ro_auto = false;
                if !deferred {
                    m.readonly = parse_bool(&key, &value)?;
                }
            }
            "readwrite" | "rw" => {
                ro_auto = false;
                if !deferred {
                    m.readonly = !parse_bool(&key, &value)?;
                }
            }
            "required" => {
                if !matches!(m.kind, MountType::Secret | MountType::Ssh) {
                    return Err(format!("unexpected key '{key}' for mount type '{}'", m.kind).into());
                }
                if !deferred {
                    m.required = parse_bool(&key, &value)?;
                }
            }
            "size" => {
                if m.kind != MountType::Tmpfs {
                    return Err(format!("unexpected key '{key}' for mount type '{}'", m.kind).into());
                }
                if !deferred {
                    m.size = Some(ram_in_bytes(&value).map_err(|_| format!("invalid value for {key}: {value}"))?);
                }
            }
            "id" => m.id = Some(value),
            "sharing" => {
                if deferred {
                    continue;
                }
                m.sharing = Some(match value.to_ascii_lowercase().as_str() {
                    "shared" => Sharing::Shared,
                    "private" => Sharing::Private,
                    "locked" => Sharing::Locked,
                    _ => return Err(format!("unsupported sharing value {value:?}").into()),
                });
            }
            "mode" => {
                if !deferred {
                    m.mode = Some(u32::from_str_radix(&value, 8).map_err(|_| format!("invalid value {value} for mode"))?);
                }
            }
            "uid" => {
                if !deferred {
                    m.uid = Some(value.parse().map_err(|_| format!("invalid value {value} for uid"))?);
                }
            }
            "gid" => {
                if !deferred {
                    m.gid = Some(value.parse().map_err(|_| format!("invalid value {value} for gid"))?);
                }
            }
            "env" => m.env = Some(value),
            _ => {
                let hint = super::words::suggest(&key, ALL_KEYS.iter().copied()).map(|s| format!(" (did you mean {s}?)")).unwrap_or_default();
                return Err(format!("unexpected key '{key}' in '{field}'{hint}").into());
            }
        }
    }

    let file_info_allowed = matches!(m.kind, MountType::Secret | MountType::Ssh | MountType::Cache);
    if !file_info_allowed {
        if m.mode.is_some() {
            return Err(format!("mode not allowed for {:?} type mounts", m.kind.as_str()).into());
        }
        if m.uid.is_some() {
            return Err(format!("uid not allowed for {:?} type mounts", m.kind.as_str()).into());
        }
        if m.gid.is_some() {
            return Err(format!("gid not allowed for {:?} type mounts", m.kind.as_str()).into());
        }
    }
    if ro_auto {
        m.readonly = !matches!(m.kind, MountType::Cache | MountType::Tmpfs);
    }
    if m.kind == MountType::Secret {
        if m.from.is_some() {
            return Err("secret mount should not have a from".into());
        }
        if m.sharing.is_some() {
            return Err("secret mount should not define sharing".into());
        }
        if m.source.is_none() && m.target.is_none() && m.id.is_none() {
            return Err("invalid secret mount. one of source, target required".into());
        }
        if m.source.is_some() && m.id.is_some() {
            return Err("both source and id can't be set".into());
        }
    }
    if m.sharing.is_some() && m.kind != MountType::Cache {
        return Err(format!("invalid cache sharing set for {} mount", m.kind).into());
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_mount() {
        let m = MountSpec::parse("type=cache,target=/root/.cache,id=pip,sharing=locked,mode=0755,uid=1000").unwrap();
        assert_eq!(m.kind, MountType::Cache);
        assert_eq!(m.target.as_deref(), Some("/root/.cache"));
        assert_eq!(m.id.as_deref(), Some("pip"));
        assert_eq!(m.sharing, Some(Sharing::Locked));
        assert_eq!(m.mode, Some(0o755));
        assert_eq!(m.uid, Some(1000));
        assert!(!m.readonly);
        assert_eq!(m.cache_id(), "pip");
        let m = MountSpec::parse("type=cache,target=/var/cache/apt/").unwrap();
        assert_eq!(m.cache_id(), "/var/cache/apt");
    }

    #[test]
    fn bind_mount_defaults() {
        let m = MountSpec::parse("target=/src,from=build,source=/out").unwrap();
        assert_eq!(m.kind, MountType::Bind);
        assert!(m.readonly);
        assert_eq!(m.from.as_deref(), Some("build"));
        assert_eq!(m.source.as_deref(), Some("/out"));
        let m = MountSpec::parse("type=bind,target=/src,rw").unwrap();
        assert!(!m.readonly);
        let m = MountSpec::parse("type=bind,dst=src,readonly=false").unwrap();
        assert!(!m.readonly);
        assert_eq!(m.resolved_target("/app").unwrap(), "/app/src");
    }

    #[test]
    fn tmpfs_and_secret() {
        let m = MountSpec::parse("type=tmpfs,target=/tmp,size=64m").unwrap();
        assert_eq!(m.size, Some(64 << 20));
        let m = MountSpec::parse("type=secret,id=aws,required,env=AWS_KEY").unwrap();
        assert!(m.required);
        assert!(m.readonly);
        assert_eq!(m.env.as_deref(), Some("AWS_KEY"));
        assert_eq!(m.resolved_target("/").unwrap(), "/run/secrets/aws");
        let m = MountSpec::parse("type=secret,target=/etc/token").unwrap();
        assert_eq!(m.secret_id().as_deref(), Some("token"));
        let m = MountSpec::parse("type=ssh").unwrap();
        assert_eq!(m.resolved_target("/").unwrap(), "/run/buildkit/ssh_agent.0");
    }

    #[test]
    fn errors() {
        assert!(MountSpec::parse("type=volume,target=/x").unwrap_err().to_string().contains("unsupported mount type \"volume\""));
        assert!(MountSpec::parse("type=cahce,target=/x").unwrap_err().to_string().contains("did you mean cache?"));
        assert!(MountSpec::parse("type=bind,target=/x,mode=0700").unwrap_err().to_string().contains("mode not allowed"));
        assert!(MountSpec::parse("type=bind,target=/x,size=1m").unwrap_err().to_string().contains("unexpected key 'size'"));
        assert!(MountSpec::parse("type=secret").unwrap_err().to_string().contains("one of source, target required"));
        assert!(MountSpec::parse("type=bind,target=/x,sharing=locked").unwrap_err().to_string().contains("invalid cache sharing"));
        assert!(MountSpec::parse("type=cache,target=/x,foo=bar").unwrap_err().to_string().contains("unexpected key 'foo'"));
        assert!(MountSpec::parse("type=cache,target").unwrap_err().to_string().contains("must be a key=value pair"));
        assert!(MountSpec::parse("type=bind,from=$STAGE,target=/x").unwrap_err().to_string().contains("variable expansion"));
        assert!(MountSpec::parse("type=bind,target=/").unwrap().resolved_target("/").is_err());
    }

    #[test]
    fn expansion() {
        let env = vec![("T".to_string(), "cache".to_string()), ("D".to_string(), "/go/pkg".to_string())];
        assert_eq!(MountSpec::parse("type=$T,target=$D").unwrap().kind, MountType::Bind);
        let m = MountSpec::parse_expanded("type=$T,target=$D", &Lexer::new('\\'), &env).unwrap();
        assert_eq!(m.kind, MountType::Cache);
        assert_eq!(m.target.as_deref(), Some("/go/pkg"));
    }

    #[test]
    fn csv() {
        assert_eq!(csv_fields(r#"a=1,"b=x,y",c"#).unwrap(), ["a=1", "b=x,y", "c"]);
        assert_eq!(csv_fields(r#""a=""q""""#).unwrap(), [r#"a="q""#]);
        assert!(csv_fields(r#"a="x"#).is_err());
    }
}
