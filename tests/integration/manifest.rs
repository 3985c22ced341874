//! Krew packaging: plugin-manifest/pullfix.yaml follows krew's rules, and the
//! archive scripts/release makes installs the way krew installs it and runs
//! as `kubectl pullfix`.
//!
//! The rules mirror kubernetes-sigs/krew:
//! - internal/index/validation/validate.go: ValidatePlugin, validatePlatform,
//!   validateFiles, validateSelector;
//! - internal/installation/semver: Parse (a leading `v`, then a semantic
//!   version);
//! - cmd/validate-krew-manifest (what krew-index CI runs): the `.yaml`
//!   extension, the plugin name taken from the file name, every platform
//!   selecting a supported os/arch, no os/arch selected by two platforms, and
//!   its line-length warnings (treated here as violations);
//! - items of the krew docs' checklist that the code does not enforce: a
//!   description, and a `.tar.gz` or `.zip` archive.
//!
//! Krew stops at the first error; `krew_violations` lists them all.
//! `project_violations` adds this project's own rules (the platforms we ship,
//! version and homepage agreeing with Cargo.toml, the archive naming that
//! scripts/release uses).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use sha2::{Digest, Sha256};

const API_VERSION: &str = "krew.googlecontainertools.github.com/v1alpha2";
const KIND: &str = "Plugin";
const MANIFEST_EXTENSION: &str = ".yaml";

/// validation.windowsForbidden (compared case-insensitively).
const WINDOWS_FORBIDDEN: [&str; 22] = [
    "CON", "PRN", "AUX", "NUL", "COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7", "COM8",
    "COM9", "LPT1", "LPT2", "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9",
];

/// validate-krew-manifest's allPlatforms(): the os/arch pairs krew supports.
const KREW_PLATFORMS: [(&str, &str); 11] = [
    ("windows", "386"),
    ("windows", "amd64"),
    ("windows", "arm64"),
    ("linux", "386"),
    ("linux", "amd64"),
    ("linux", "arm"),
    ("linux", "arm64"),
    ("linux", "ppc64le"),
    ("darwin", "386"),
    ("darwin", "amd64"),
    ("darwin", "arm64"),
];

/// The platforms kubectl-pullfix ships for.
const REQUIRED_PLATFORMS: [(&str, &str); 5] = [
    ("linux", "amd64"),
    ("linux", "arm64"),
    ("darwin", "amd64"),
    ("darwin", "arm64"),
    ("windows", "amd64"),
];

// ---------------------------------------------------------------------------
// The manifest, decoded the way krew decodes it (YAML to JSON to Go structs):
// a field of the wrong type is an error, an absent or null field is empty.

#[derive(Debug, Default)]
struct Manifest {
    api_version: String,
    kind: String,
    name: String,
    version: String,
    short_description: String,
    description: String,
    caveats: String,
    homepage: String,
    platforms: Vec<Platform>,
}

#[derive(Debug, Default)]
struct Platform {
    uri: String,
    sha256: String,
    bin: String,
    /// `None` when absent (krew then extracts everything).
    files: Option<Vec<(String, String)>>,
    /// `None` is a nil selector.
    selector: Option<Selector>,
}

/// metav1.LabelSelector: `None` fields are nil, `Some(empty)` are present
/// but empty, which validateSelector tells apart.
#[derive(Debug, Default)]
struct Selector {
    match_labels: Option<BTreeMap<String, String>>,
    match_expressions: Option<Vec<Requirement>>,
}

#[derive(Debug, Default)]
struct Requirement {
    key: String,
    operator: String,
    values: Vec<String>,
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a map",
    }
}

/// The field `key` of a map, `None` when absent or null.
fn field<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    v.as_object()?.get(key).filter(|x| !x.is_null())
}

fn string_at(v: &Value, key: &str, path: &str, errs: &mut Vec<String>) -> String {
    match field(v, key) {
        None => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => {
            errs.push(format!("{path} must be a string, not {}", type_name(other)));
            String::new()
        }
    }
}

fn map_at<'a>(v: &'a Value, key: &str, path: &str, errs: &mut Vec<String>) -> Option<&'a Value> {
    match field(v, key) {
        None => None,
        Some(m @ Value::Object(_)) => Some(m),
        Some(other) => {
            errs.push(format!("{path} must be a map, not {}", type_name(other)));
            None
        }
    }
}

fn list_at<'a>(
    v: &'a Value,
    key: &str,
    path: &str,
    errs: &mut Vec<String>,
) -> Option<&'a Vec<Value>> {
    match field(v, key) {
        None => None,
        Some(Value::Array(s)) => Some(s),
        Some(other) => {
            errs.push(format!("{path} must be a list, not {}", type_name(other)));
            None
        }
    }
}

/// Decodes a manifest; type errors are returned as violations.
fn parse_manifest(text: &str) -> Result<(Manifest, Vec<String>), String> {
    let doc: Value =
        serde_saphyr::from_str(text).map_err(|e| format!("manifest is not valid YAML: {e}"))?;
    if !doc.is_object() {
        return Err(format!("manifest must be a map, not {}", type_name(&doc)));
    }
    let mut errs = Vec::new();
    let mut m = Manifest {
        api_version: string_at(&doc, "apiVersion", "apiVersion", &mut errs),
        kind: string_at(&doc, "kind", "kind", &mut errs),
        ..Manifest::default()
    };
    if let Some(meta) = map_at(&doc, "metadata", "metadata", &mut errs) {
        m.name = string_at(meta, "name", "metadata.name", &mut errs);
    }
    let Some(spec) = map_at(&doc, "spec", "spec", &mut errs) else {
        return Ok((m, errs));
    };
    m.version = string_at(spec, "version", "spec.version", &mut errs);
    m.short_description = string_at(spec, "shortDescription", "spec.shortDescription", &mut errs);
    m.description = string_at(spec, "description", "spec.description", &mut errs);
    m.caveats = string_at(spec, "caveats", "spec.caveats", &mut errs);
    m.homepage = string_at(spec, "homepage", "spec.homepage", &mut errs);
    for (i, p) in list_at(spec, "platforms", "spec.platforms", &mut errs)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let at = format!("spec.platforms[{i}]");
        if !p.is_object() {
            errs.push(format!("{at} must be a map, not {}", type_name(p)));
            m.platforms.push(Platform::default());
            continue;
        }
        let mut pl = Platform {
            uri: string_at(p, "uri", &format!("{at}.uri"), &mut errs),
            sha256: string_at(p, "sha256", &format!("{at}.sha256"), &mut errs),
            bin: string_at(p, "bin", &format!("{at}.bin"), &mut errs),
            ..Platform::default()
        };
        if let Some(files) = list_at(p, "files", &format!("{at}.files"), &mut errs) {
            let mut ops = Vec::new();
            for (j, op) in files.iter().enumerate() {
                let op_at = format!("{at}.files[{j}]");
                ops.push((
                    string_at(op, "from", &format!("{op_at}.from"), &mut errs),
                    string_at(op, "to", &format!("{op_at}.to"), &mut errs),
                ));
            }
            pl.files = Some(ops);
        }
        if let Some(sel) = map_at(p, "selector", &format!("{at}.selector"), &mut errs) {
            pl.selector = Some(parse_selector(sel, &format!("{at}.selector"), &mut errs));
        }
        m.platforms.push(pl);
    }
    Ok((m, errs))
}

fn parse_selector(sel: &Value, at: &str, errs: &mut Vec<String>) -> Selector {
    let mut out = Selector::default();
    if let Some(labels) = map_at(sel, "matchLabels", &format!("{at}.matchLabels"), errs) {
        let mut map = BTreeMap::new();
        for (k, v) in labels.as_object().into_iter().flatten() {
            let key = k.clone();
            let value = match v {
                Value::String(s) => s.clone(),
                Value::Null => String::new(),
                other => {
                    errs.push(format!(
                        "{at}.matchLabels.{key} must be a string (quote it), not {}",
                        type_name(other)
                    ));
                    continue;
                }
            };
            map.insert(key, value);
        }
        out.match_labels = Some(map);
    }
    if let Some(exprs) = list_at(
        sel,
        "matchExpressions",
        &format!("{at}.matchExpressions"),
        errs,
    ) {
        let mut reqs = Vec::new();
        for (j, e) in exprs.iter().enumerate() {
            let e_at = format!("{at}.matchExpressions[{j}]");
            let mut r = Requirement {
                key: string_at(e, "key", &format!("{e_at}.key"), errs),
                operator: string_at(e, "operator", &format!("{e_at}.operator"), errs),
                values: Vec::new(),
            };
            for (k, v) in list_at(e, "values", &format!("{e_at}.values"), errs)
                .into_iter()
                .flatten()
                .enumerate()
            {
                match v {
                    Value::String(s) => r.values.push(s.clone()),
                    other => errs.push(format!(
                        "{e_at}.values[{k}] must be a string (quote it), not {}",
                        type_name(other)
                    )),
                }
            }
            reqs.push(r);
        }
        out.match_expressions = Some(reqs);
    }
    out
}

// ---------------------------------------------------------------------------
// The rules.

/// semver.org 2.0.0: MAJOR.MINOR.PATCH, numbers without leading zeros, then
/// an optional `-PRE` and `+BUILD` of dot-separated [0-9A-Za-z-] identifiers,
/// numeric PRE identifiers without leading zeros.
fn is_semver(s: &str) -> bool {
    let (rest, build) = match s.split_once('+') {
        Some((r, b)) => (r, Some(b)),
        None => (s, None),
    };
    let (core, pre) = match rest.split_once('-') {
        Some((c, p)) => (c, Some(p)),
        None => (rest, None),
    };
    let numeric = |id: &str| !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit());
    let no_leading_zero = |id: &str| id.len() == 1 || !id.starts_with('0');
    let ident =
        |id: &str| !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    let parts: Vec<&str> = core.split('.').collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|p| numeric(p) && no_leading_zero(p) && p.parse::<u64>().is_ok())
        && pre.is_none_or(|p| {
            p.split('.')
                .all(|id| ident(id) && (!numeric(id) || no_leading_zero(id)))
        })
        && build.is_none_or(|b| b.split('.').all(ident))
}

/// krew's semver.Parse: a leading `v`, then a semantic version.
fn is_krew_version(s: &str) -> bool {
    s.strip_prefix('v').is_some_and(is_semver)
}

/// validation.IsSafePluginName: `^[\w-]+$` (Go's \w is ASCII) and not a
/// reserved Windows file name.
fn name_violations(name: &str) -> Vec<String> {
    let mut v = Vec::new();
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        v.push(format!("plugin name {name:?} must match ^[\\w-]+$"));
    }
    if WINDOWS_FORBIDDEN
        .iter()
        .any(|f| f.eq_ignore_ascii_case(name))
    {
        v.push(format!(
            "plugin name {name:?} is a reserved file name on Windows"
        ));
    }
    v
}

/// metav1.LabelSelectorAsSelector(sel).Matches({os, arch}). A nil selector
/// selects nothing, one without requirements everything, and an invalid
/// requirement makes the whole selector select nothing.
fn selector_matches(sel: Option<&Selector>, os: &str, arch: &str) -> bool {
    let Some(sel) = sel else { return false };
    let label = |k: &str| match k {
        "os" => Some(os),
        "arch" => Some(arch),
        _ => None,
    };
    for (k, want) in sel.match_labels.iter().flatten() {
        if label(k) != Some(want.as_str()) {
            return false;
        }
    }
    for r in sel.match_expressions.iter().flatten() {
        let have = label(&r.key);
        let ok = match r.operator.as_str() {
            "In" => !r.values.is_empty() && have.is_some_and(|h| r.values.iter().any(|v| v == h)),
            "NotIn" => !r.values.is_empty() && have.is_none_or(|h| r.values.iter().all(|v| v != h)),
            "Exists" => r.values.is_empty() && have.is_some(),
            "DoesNotExist" => r.values.is_empty() && have.is_none(),
            _ => false,
        };
        if !ok {
            return false;
        }
    }
    true
}

/// validateSelector.
fn selector_violations(sel: Option<&Selector>, at: &str) -> Vec<String> {
    let Some(sel) = sel else {
        return vec![format!(
            "{at}.selector is missing (a nil selector is not supported)"
        )];
    };
    let mut v = Vec::new();
    if sel.match_labels.is_none() && sel.match_expressions.as_ref().is_none_or(|e| e.is_empty()) {
        v.push(format!("{at}.selector is empty"));
    }
    let keys = sel
        .match_labels
        .iter()
        .flat_map(|m| m.keys().cloned())
        .chain(
            sel.match_expressions
                .iter()
                .flatten()
                .map(|r| r.key.clone()),
        );
    for key in keys {
        if key != "os" && key != "arch" {
            v.push(format!(
                "{at}.selector uses the key {key:?}; only \"os\" and \"arch\" are supported"
            ));
        }
    }
    if sel.match_labels.as_ref().is_some_and(|m| m.is_empty()) {
        v.push(format!("{at}.selector.matchLabels is specified but empty"));
    }
    if sel.match_expressions.as_ref().is_some_and(|e| e.is_empty()) {
        v.push(format!(
            "{at}.selector.matchExpressions is specified but empty"
        ));
    }
    v
}

/// validate-krew-manifest's validateLineLength: no line longer than max
/// bytes, unless the line is a single word.
fn has_long_line(s: &str, max: usize) -> bool {
    s.split('\n')
        .any(|line| line.len() > max && line.trim().contains(' '))
}

/// Every krew rule the manifest text `text`, in a file named `file_name`,
/// breaks. Empty means krew (and krew-index CI, short of installing) accepts it.
fn krew_violations(file_name: &str, text: &str) -> Vec<String> {
    let mut v = Vec::new();
    let name = match file_name.strip_suffix(MANIFEST_EXTENSION) {
        Some(stem) => stem,
        None => {
            v.push(format!(
                "manifest file {file_name:?} must be NAME{MANIFEST_EXTENSION}"
            ));
            Path::new(file_name)
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or("")
        }
    };
    let (m, type_errors) = match parse_manifest(text) {
        Ok(parsed) => parsed,
        Err(e) => {
            v.push(e);
            return v;
        }
    };
    v.extend(type_errors);

    // ValidatePlugin
    if m.api_version != API_VERSION {
        v.push(format!(
            "apiVersion is {:?}; krew supports only {API_VERSION:?}",
            m.api_version
        ));
    }
    if m.kind != KIND {
        v.push(format!("kind is {:?}; krew supports only {KIND:?}", m.kind));
    }
    v.extend(name_violations(name));
    if m.name != name {
        v.push(format!(
            "metadata.name is {:?} but the file name says {name:?}",
            m.name
        ));
    }
    if m.short_description.is_empty() {
        v.push("spec.shortDescription is required".to_string());
    } else if m.short_description.contains(['\r', '\n']) {
        v.push("spec.shortDescription must not contain line breaks".to_string());
    }
    if m.platforms.is_empty() {
        v.push("spec.platforms must not be empty".to_string());
    }
    if m.version.is_empty() {
        v.push("spec.version is required".to_string());
    } else if !m.version.starts_with('v') {
        v.push(format!("spec.version {:?} must start with 'v'", m.version));
    } else if !is_krew_version(&m.version) {
        v.push(format!(
            "spec.version {:?} is not v + a semantic version (MAJOR.MINOR.PATCH[-PRE][+BUILD])",
            m.version
        ));
    }

    // validatePlatform, for each platform
    for (i, p) in m.platforms.iter().enumerate() {
        let at = format!("spec.platforms[{i}]");
        if p.uri.is_empty() {
            v.push(format!("{at}.uri is required"));
        } else if !(p.uri.ends_with(".tar.gz") || p.uri.ends_with(".zip")) {
            // krew docs; krew itself sniffs the archive type from its content
            v.push(format!(
                "{at}.uri {:?} must be a .tar.gz or .zip archive",
                p.uri
            ));
        }
        if p.sha256.is_empty() {
            v.push(format!("{at}.sha256 is required"));
        } else if !(p.sha256.len() == 64
            && p.sha256
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
        {
            v.push(format!(
                "{at}.sha256 {:?} must match ^[a-f0-9]{{64}}$",
                p.sha256
            ));
        }
        if p.bin.is_empty() {
            v.push(format!("{at}.bin is required"));
        }
        match &p.files {
            Some(ops) if ops.is_empty() => {
                v.push(format!("{at}.files must be left out or non-empty"));
            }
            Some(ops) => {
                for (j, (from, to)) in ops.iter().enumerate() {
                    if from.is_empty() {
                        v.push(format!("{at}.files[{j}].from is required"));
                    }
                    if to.is_empty() {
                        v.push(format!("{at}.files[{j}].to is required"));
                    }
                }
            }
            None => {}
        }
        v.extend(selector_violations(p.selector.as_ref(), &at));
    }

    // validate-krew-manifest
    for (i, p) in m.platforms.iter().enumerate() {
        if !KREW_PLATFORMS
            .iter()
            .any(|(os, arch)| selector_matches(p.selector.as_ref(), os, arch))
        {
            v.push(format!(
                "spec.platforms[{i}].selector selects no os/arch that krew supports"
            ));
        }
    }
    for (os, arch) in KREW_PLATFORMS {
        let hits: Vec<usize> = (0..m.platforms.len())
            .filter(|&i| selector_matches(m.platforms[i].selector.as_ref(), os, arch))
            .collect();
        if hits.len() > 1 {
            v.push(format!(
                "spec.platforms {hits:?} have overlapping selectors: all select os={os} arch={arch}"
            ));
        }
    }
    if has_long_line(&m.short_description, 70) {
        v.push("spec.shortDescription has a line longer than 70 characters".to_string());
    }
    if has_long_line(&m.description, 80) {
        v.push("spec.description has a line longer than 80 characters".to_string());
    }
    if has_long_line(&m.caveats, 80) {
        v.push("spec.caveats has a line longer than 80 characters".to_string());
    }

    // krew docs checklist
    if m.description.trim().is_empty() {
        v.push("spec.description is required (krew docs)".to_string());
    }
    v
}

/// The platforms (os, arch) a platform entry selects.
fn selected(p: &Platform) -> Vec<(&'static str, &'static str)> {
    KREW_PLATFORMS
        .into_iter()
        .filter(|(os, arch)| selector_matches(p.selector.as_ref(), os, arch))
        .collect()
}

/// This project's rules, on top of krew's.
fn project_violations(m: &Manifest) -> Vec<String> {
    let mut v = Vec::new();
    let version = format!("v{}", env!("CARGO_PKG_VERSION"));
    if m.version != version {
        v.push(format!(
            "spec.version is {:?} but Cargo.toml says {version:?}",
            m.version
        ));
    }
    let homepage = env!("CARGO_PKG_HOMEPAGE");
    if m.homepage != homepage {
        v.push(format!(
            "spec.homepage is {:?} but Cargo.toml says {homepage:?}",
            m.homepage
        ));
    }
    for (os, arch) in REQUIRED_PLATFORMS {
        if !m
            .platforms
            .iter()
            .any(|p| selected(p).contains(&(os, arch)))
        {
            v.push(format!("no platform selects os={os} arch={arch}"));
        }
    }
    for (i, p) in m.platforms.iter().enumerate() {
        let at = format!("spec.platforms[{i}]");
        let sel = selected(p);
        let &[(os, arch)] = sel.as_slice() else {
            v.push(format!(
                "{at} should select exactly one os/arch, not {sel:?}"
            ));
            continue;
        };
        let (ext, bin) = if os == "windows" {
            ("zip", "kubectl-pullfix.exe")
        } else {
            ("tar.gz", "./kubectl-pullfix")
        };
        let uri = format!(
            "{homepage}/releases/download/{version}/kubectl-pullfix_{version}_{os}_{arch}.{ext}"
        );
        if p.uri != uri {
            v.push(format!("{at}.uri is {:?}, expected {uri:?}", p.uri));
        }
        if p.bin != bin {
            v.push(format!("{at}.bin is {:?}, expected {bin:?}", p.bin));
        }
    }
    v
}

fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn template_path() -> PathBuf {
    repo_root().join("plugin-manifest").join("pullfix.yaml")
}

// ---------------------------------------------------------------------------
// Tests.

#[test]
fn manifest_passes_krew_rules() {
    let path = template_path();
    let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let file_name = path.file_name().unwrap().to_str().unwrap();
    let mut violations = krew_violations(file_name, &text);
    let (m, _) = parse_manifest(&text).expect("manifest parses");
    violations.extend(project_violations(&m));
    assert!(
        violations.is_empty(),
        "{} breaks krew's or the project's rules:\n  {}",
        path.display(),
        violations.join("\n  ")
    );
}

#[test]
fn semver_check_follows_semver_org() {
    for good in [
        "0.1.0",
        "1.0.0",
        "10.20.30",
        "1.0.0-alpha",
        "1.0.0-alpha.1",
        "1.0.0-0.3.7",
        "1.0.0-x.7.z.92",
        "1.0.0-x-y-z.--",
        "1.0.0-alpha+001",
        "1.0.0+20130313144700",
        "1.0.0-beta+exp.sha.5114f85",
        "1.0.0+21AF26D3----117B344092BD",
    ] {
        assert!(is_semver(good), "{good} should be semver");
    }
    for bad in [
        "",
        "1",
        "1.2",
        "1.2.3.4",
        "01.1.1",
        "1.01.1",
        "1.1.01",
        "1.2.3-0123",
        "1.2.3-",
        "1.2.3+",
        "1.2.3-alpha..1",
        "1.2.3-alpha_beta",
        "1.2.3+a+b",
        "v1.2.3",
        " 1.2.3",
        "1.2.x",
        "99999999999999999999.0.0",
    ] {
        assert!(!is_semver(bad), "{bad:?} should not be semver");
    }
    assert!(is_krew_version("v0.1.0"));
    assert!(!is_krew_version("0.1.0"));
    assert!(!is_krew_version("V0.1.0"));
}

fn assert_has(violations: &[String], needle: &str) {
    assert!(
        violations.iter().any(|v| v.contains(needle)),
        "expected a violation containing {needle:?}, got:\n  {}",
        violations.join("\n  ")
    );
}

#[test]
fn krew_checker_rejects_broken_manifests() {
    // The faults the brief names: uppercase sha256, version without v,
    // multi-line shortDescription, empty selector.
    let broken = r#"
apiVersion: krew.googlecontainertools.github.com/v1alpha2
kind: Plugin
metadata:
  name: pullfix
spec:
  version: "0.1.0"
  shortDescription: |
    Diagnose and fix
    ImagePullBackOff
  description: Finds pods stuck in ImagePullBackOff.
  platforms:
  - selector: {}
    uri: https://example.invalid/kubectl-pullfix_v0.1.0_linux_amd64.tar.gz
    sha256: E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855
    bin: ./kubectl-pullfix
"#;
    let v = krew_violations("pullfix.yaml", broken);
    assert_has(&v, "spec.version \"0.1.0\" must start with 'v'");
    assert_has(&v, "spec.shortDescription must not contain line breaks");
    assert_has(&v, "spec.platforms[0].selector is empty");
    assert_has(&v, "spec.platforms[0].sha256 \"E3B0C4");
    // Nothing else is wrong with it.
    assert_eq!(v.len(), 4, "unexpected violations:\n  {}", v.join("\n  "));

    // The same manifest with those four faults fixed passes: the checker
    // flags the faults, not the rest.
    let fixed = broken
        .replace("version: \"0.1.0\"", "version: \"v0.1.0\"")
        .replace(
            "|\n    Diagnose and fix\n    ImagePullBackOff",
            "Diagnose and fix ImagePullBackOff",
        )
        .replace(
            "selector: {}",
            "selector:\n      matchLabels:\n        os: linux\n        arch: amd64",
        )
        .replace(
            "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        );
    let v = krew_violations("pullfix.yaml", &fixed);
    assert!(
        v.is_empty(),
        "fixed manifest still fails:\n  {}",
        v.join("\n  ")
    );

    // Other rules: the file name, reserved names, selector keys and shapes,
    // files, a platform krew does not know, overlapping platforms, the
    // archive type, missing fields, and fields of the wrong type.
    let broken2 = r#"
apiVersion: krew.googlecontainertools.github.com/v1alpha1
kind: Plugins
metadata:
  name: pullfix
spec:
  version: v1.02.0
  shortDescription: Diagnose and fix ImagePullBackOff
  platforms:
  - selector:
      matchLabels:
        os: linux
        arch: amd64
    uri: https://example.invalid/a.tar.gz
    sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
    bin: ./kubectl-pullfix
  - selector:
      matchExpressions:
      - key: os
        operator: In
        values: [linux, darwin]
    uri: https://example.invalid/b.tar.gz
    sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
    bin: ./kubectl-pullfix
    files: []
  - selector:
      matchLabels:
        os: plan9
        arch: amd64
        distro: labs
    uri: https://example.invalid/c.exe
    sha256: e3b0c442
    bin: ""
    files:
    - from: "*"
  - selector:
      matchLabels: {}
      matchExpressions: []
    uri: https://example.invalid/d.zip
    sha256: 123
"#;
    let v = krew_violations("con.yml", broken2);
    for needle in [
        "manifest file \"con.yml\" must be NAME.yaml",
        "plugin name \"con\" is a reserved file name on Windows",
        "metadata.name is \"pullfix\" but the file name says \"con\"",
        "apiVersion is \"krew.googlecontainertools.github.com/v1alpha1\"",
        "kind is \"Plugins\"",
        "spec.version \"v1.02.0\" is not v + a semantic version",
        "spec.description is required",
        "spec.platforms[1].files must be left out or non-empty",
        "spec.platforms[2].uri \"https://example.invalid/c.exe\" must be a .tar.gz or .zip",
        "spec.platforms[2].sha256 \"e3b0c442\" must match",
        "spec.platforms[2].bin is required",
        "spec.platforms[2].files[0].to is required",
        "spec.platforms[2].selector uses the key \"distro\"",
        "spec.platforms[2].selector selects no os/arch that krew supports",
        "spec.platforms[3].selector.matchLabels is specified but empty",
        "spec.platforms[3].selector.matchExpressions is specified but empty",
        "spec.platforms[3].sha256 must be a string, not a number",
        "spec.platforms[3].bin is required",
        // [3] has no requirements, so it selects everything.
        "spec.platforms [0, 1, 3] have overlapping selectors: all select os=linux arch=amd64",
        "spec.platforms [1, 3] have overlapping selectors: all select os=darwin arch=arm64",
    ] {
        assert_has(&v, needle);
    }

    // A plugin name krew refuses, and a manifest with nothing in it.
    let v = krew_violations(
        "pull.fix.yaml",
        &fixed.replace("name: pullfix", "name: pull.fix"),
    );
    assert_has(&v, "plugin name \"pull.fix\" must match");
    let v = krew_violations(
        "pullfix.yaml",
        "apiVersion: krew.googlecontainertools.github.com/v1alpha2\nkind: Plugin\n",
    );
    for needle in [
        "metadata.name is \"\"",
        "spec.shortDescription is required",
        "spec.platforms must not be empty",
        "spec.version is required",
    ] {
        assert_has(&v, needle);
    }

    // The project's own rules catch a missing platform and a wrong uri.
    let (m, _) = parse_manifest(&fixed).unwrap();
    let v = project_violations(&m);
    assert_has(&v, "no platform selects os=darwin arch=arm64");
    assert_has(&v, "spec.platforms[0].uri is \"https://example.invalid/");
}

/// This machine as krew names it (Go's GOOS/GOARCH).
fn this_platform() -> (&'static str, &'static str) {
    let os = match std::env::consts::OS {
        "macos" => "darwin",
        other => other,
    };
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        other => other,
    };
    (os, arch)
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[cfg(unix)]
#[test]
fn release_archive_installs_and_resolves_via_kubectl() {
    use std::os::unix::fs::PermissionsExt;

    let binary = Path::new(env!("CARGO_BIN_EXE_kubectl-pullfix"));
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("dist");

    // Package the binary cargo test already built.
    let script = repo_root().join("scripts").join("release");
    let run = Command::new("bash")
        .arg(&script)
        .args(["--profile", "debug", "--binary"])
        .arg(binary)
        .arg("--out")
        .arg(&out)
        .output()
        .expect("run scripts/release");
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        run.status.success(),
        "scripts/release failed ({}):\n{stdout}\n{stderr}",
        run.status
    );
    let printed = |key: &str| {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{key}: ")))
            .unwrap_or_else(|| panic!("scripts/release printed no {key:?} line:\n{stdout}"))
            .to_string()
    };

    // The archive: named for this version and platform, and its sum is the
    // one printed and the one in the rendered manifest.
    let (os, arch) = this_platform();
    let tag = format!("v{}", env!("CARGO_PKG_VERSION"));
    let archive_name = format!("kubectl-pullfix_{tag}_{os}_{arch}.tar.gz");
    let archive = out.join(&archive_name);
    assert_eq!(Path::new(&printed("archive")), archive);
    let archive_bytes = fs::read(&archive).expect("read the archive");
    let sha = sha256_hex(&archive_bytes);
    assert_eq!(printed("sha256"), sha);

    let rendered_path = out.join("pullfix.yaml");
    assert_eq!(Path::new(&printed("manifest")), rendered_path);
    let rendered = fs::read_to_string(&rendered_path).unwrap();
    let violations = krew_violations("pullfix.yaml", &rendered);
    assert!(
        violations.is_empty(),
        "rendered manifest breaks krew's rules:\n  {}",
        violations.join("\n  ")
    );
    let (m, _) = parse_manifest(&rendered).unwrap();
    let violations = project_violations(&m);
    assert!(
        violations.is_empty(),
        "rendered manifest breaks the project's rules:\n  {}",
        violations.join("\n  ")
    );
    let entries: Vec<usize> = (0..m.platforms.len())
        .filter(|&i| selector_matches(m.platforms[i].selector.as_ref(), os, arch))
        .collect();
    let &[entry] = entries.as_slice() else {
        panic!(
            "rendered manifest has {} entries for {os}/{arch}",
            entries.len()
        );
    };
    let platform = &m.platforms[entry];
    assert_eq!(platform.sha256, sha, "rendered sha256 for {os}/{arch}");
    assert!(
        platform.uri.ends_with(&format!("/{archive_name}")),
        "uri {}",
        platform.uri
    );

    // Apart from that sum, the rendered manifest is the template.
    let mut expected: Value =
        serde_saphyr::from_str(&fs::read_to_string(template_path()).unwrap()).unwrap();
    expected["spec"]["platforms"][entry]["sha256"] = Value::String(sha.clone());
    let rendered_value: Value = serde_saphyr::from_str(&rendered).unwrap();
    assert_eq!(
        rendered_value, expected,
        "rendered manifest differs from the template beyond the sha256"
    );

    // Install as krew does: extract into $KREW_ROOT/store/NAME/VERSION (no
    // `files`, so everything), then link $KREW_ROOT/bin/kubectl-NAME to `bin`.
    let krew_root = work.path().join("krew");
    let install = krew_root.join("store").join("pullfix").join(&tag);
    let bin_dir = krew_root.join("bin");
    fs::create_dir_all(&install).unwrap();
    fs::create_dir_all(&bin_dir).unwrap();
    let listing = Command::new("tar")
        .arg("-tzf")
        .arg(&archive)
        .output()
        .expect("run tar -t");
    assert!(
        listing.status.success(),
        "tar -t: {}",
        String::from_utf8_lossy(&listing.stderr)
    );
    let mut names: Vec<String> = String::from_utf8_lossy(&listing.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["LICENSE", "kubectl-pullfix"],
        "archive should hold exactly these, at its root"
    );
    let untar = Command::new("tar")
        .arg("-xzf")
        .arg(&archive)
        .arg("-C")
        .arg(&install)
        .output()
        .expect("run tar -x");
    assert!(
        untar.status.success(),
        "tar -x: {}",
        String::from_utf8_lossy(&untar.stderr)
    );

    // validate-krew-manifest wants a LICENSE among the installed files.
    assert_eq!(
        fs::read(install.join("LICENSE")).unwrap(),
        fs::read(repo_root().join("LICENSE")).unwrap(),
        "LICENSE in the archive is not the repository's"
    );
    let installed_bin = install.join(platform.bin.trim_start_matches("./"));
    assert!(
        installed_bin.is_file(),
        "bin {:?} is not in the archive",
        platform.bin
    );
    assert_eq!(
        fs::read(&installed_bin).unwrap(),
        fs::read(binary).unwrap(),
        "packaged binary differs"
    );
    let mode = fs::metadata(&installed_bin).unwrap().permissions().mode();
    assert!(
        mode & 0o111 != 0,
        "packaged binary is not executable (mode {mode:o})"
    );
    std::os::unix::fs::symlink(&installed_bin, bin_dir.join("kubectl-pullfix")).unwrap();

    // kubectl finds plugins on PATH by the name kubectl-NAME.
    let path = std::env::join_paths(
        std::iter::once(bin_dir.clone()).chain(std::env::split_paths(
            &std::env::var_os("PATH").unwrap_or_default(),
        )),
    )
    .unwrap();
    let kubectl = |args: &[&str]| {
        Command::new("kubectl")
            .args(args)
            .env("PATH", &path)
            .env("KUBECONFIG", work.path().join("no-kubeconfig"))
            .output()
            .unwrap_or_else(|e| panic!("run kubectl (Debian package kubectl) {args:?}: {e}"))
    };
    let list = kubectl(&["plugin", "list"]);
    let list_out = String::from_utf8_lossy(&list.stdout);
    let link = bin_dir.join("kubectl-pullfix");
    assert!(
        list_out.lines().any(|l| l.trim() == link.to_str().unwrap()),
        "kubectl plugin list does not show {}:\n{list_out}\n{}",
        link.display(),
        String::from_utf8_lossy(&list.stderr)
    );
    let help = kubectl(&["pullfix", "--help"]);
    let help_out = format!(
        "{}{}",
        String::from_utf8_lossy(&help.stdout),
        String::from_utf8_lossy(&help.stderr)
    );
    assert!(
        help.status.success(),
        "kubectl pullfix --help failed ({}):\n{help_out}",
        help.status
    );
    assert!(
        help_out.contains("kubectl pullfix"),
        "kubectl pullfix --help does not mention `kubectl pullfix`:\n{help_out}"
    );
}
