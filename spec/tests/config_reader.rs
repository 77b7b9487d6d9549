//! The config.json reader against hostile input: arbitrary bytes, arbitrary JSON and
//! mutations of a valid config. It never panics; a config it refuses is refused with a
//! message that names the field (or, for text that is not JSON, the position).

use berth_spec::bundle::{parse_config, validate};
use berth_spec::default_config::default_spec_json;
use proptest::prelude::*;
use serde_json::{Map, Value};

/// Names the reader knows, and one it does not: generated objects hit real fields.
const KEYS: &[&str] = &[
    "ociVersion",
    "process",
    "root",
    "mounts",
    "linux",
    "hostname",
    "hooks",
    "annotations",
    "user",
    "uid",
    "gid",
    "args",
    "env",
    "cwd",
    "terminal",
    "consoleSize",
    "capabilities",
    "bounding",
    "rlimits",
    "type",
    "hard",
    "soft",
    "path",
    "readonly",
    "destination",
    "source",
    "options",
    "namespaces",
    "devices",
    "major",
    "minor",
    "fileMode",
    "resources",
    "memory",
    "limit",
    "cpu",
    "shares",
    "pids",
    "uidMappings",
    "containerID",
    "hostID",
    "size",
    "seccomp",
    "defaultAction",
    "syscalls",
    "names",
    "action",
    "cgroupsPath",
    "sysctl",
    "maskedPaths",
    "prestart",
    "timeout",
    "unknownField",
];

/// Words the reader gives meaning to, and a few it must refuse.
const WORDS: &[&str] =
    &["", "1.0.2", "/", "/dev/null", "/dev/../etc/x", "..", "c", "b", "pid", "mount", "rw", "bind", "tmpfs", "sh", "SCMP_ACT_ERRNO", "\u{0}", "é"];

fn key() -> impl Strategy<Value = String> {
    prop::sample::select(KEYS).prop_map(String::from)
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![prop::sample::select(WORDS).prop_map(String::from), prop::collection::vec(any::<char>(), 0..12).prop_map(|c| c.into_iter().collect()),]
}

fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter("JSON has no NaN or infinity", |f| f.is_finite()).prop_map(Value::from),
        text().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..6).prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// Every value in `v` as (JSON pointer, the path the reader's messages use).
fn paths(v: &Value, pointer: String, shown: String, out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                let s = if shown.is_empty() { k.clone() } else { format!("{shown}.{k}") };
                paths(x, format!("{pointer}/{}", k.replace('~', "~0").replace('/', "~1")), s, out);
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                paths(x, format!("{pointer}/{i}"), format!("{shown}[{i}]"), out);
            }
        }
        _ => {}
    }
    if !pointer.is_empty() {
        out.push((pointer, shown));
    }
}

fn default_paths() -> (Value, Vec<(String, String)>) {
    let base = default_spec_json(false);
    let mut out = Vec::new();
    paths(&base, String::new(), String::new(), &mut out);
    (base, out)
}

/// The field a refusal of the reader names, if it names one.
fn named_field(msg: &str) -> Option<&str> {
    let rest = msg.strip_prefix("invalid config: ")?;
    let (path, _) = rest.split_once(": ")?;
    (!path.contains(' ')).then_some(path)
}

/// A refusal of `validate` names the part of the config it is about.
fn names_a_field(msg: &str) -> bool {
    ["ociVersion", "root", "process", "mounts", "linux", "hostname"].iter().any(|f| msg.contains(f))
}

/// Reads `raw` as the runtime does; panics only if the reader does.
fn read(raw: &[u8]) -> Result<(), String> {
    let spec = parse_config(raw)?;
    validate(&spec).map_err(|e| {
        assert!(names_a_field(&e), "validate refused without naming a field: {e}");
        e
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_are_refused_with_a_message_never_a_panic(raw in prop::collection::vec(any::<u8>(), 0..512)) {
        if let Err(e) = parse_config(&raw) {
            prop_assert!(e.starts_with("invalid config: ") && e.len() > 16, "{e}");
        }
        let _ = read(&raw);
    }

    #[test]
    fn arbitrary_json_objects_are_refused_naming_the_field(fields in prop::collection::vec((key(), json()), 0..8)) {
        let v = Value::Object(fields.into_iter().collect());
        let raw = serde_json::to_vec(&v).unwrap();
        if let Err(e) = parse_config(&raw) {
            // Valid JSON, so the fault is a value, inside the top-level object.
            prop_assert!(named_field(&e).is_some_and(|p| p != "."), "no field named: {e}\n{v}");
        }
        let _ = read(&raw);
    }

    #[test]
    fn a_valid_config_with_one_value_replaced_is_refused_at_that_value(pick in any::<prop::sample::Index>(), new in json()) {
        let (mut config, all) = default_paths();
        let (pointer, shown) = &all[pick.index(all.len())];
        *config.pointer_mut(pointer).unwrap() = new.clone();
        let raw = serde_json::to_vec(&config).unwrap();
        match parse_config(&raw) {
            Ok(spec) => {
                if let Err(e) = validate(&spec) {
                    prop_assert!(names_a_field(&e), "validate refused without naming a field: {e}");
                }
            }
            Err(e) => {
                let field = named_field(&e);
                prop_assert!(field.is_some_and(|f| f.starts_with(shown.as_str())), "replaced {shown} with {new}: the error names {field:?}: {e}");
            }
        }
    }

    #[test]
    fn a_valid_config_cut_short_or_with_bytes_flipped_never_panics(cut in any::<prop::sample::Index>(), flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4)) {
        let mut raw = serde_json::to_vec_pretty(&default_spec_json(false)).unwrap();
        raw.truncate(cut.index(raw.len() + 1));
        for (at, b) in flips {
            if !raw.is_empty() {
                let i = at.index(raw.len());
                raw[i] = b;
            }
        }
        if let Err(e) = parse_config(&raw) {
            prop_assert!(e.starts_with("invalid config: "), "{e}");
        }
        let _ = read(&raw);
    }
}

#[test]
fn the_default_config_reads_and_every_value_has_a_path() {
    let (config, all) = default_paths();
    read(&serde_json::to_vec(&config).unwrap()).unwrap();
    assert!(all.iter().any(|(_, s)| s == "process.user.uid"), "{all:?}");
    assert!(all.iter().any(|(_, s)| s.starts_with("mounts[0].")), "{all:?}");
}
