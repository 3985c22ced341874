//! Pull-secret parsing and credential matching, as the kubelet does it.
//!
//! The kubelet reads only secrets of type `kubernetes.io/dockerconfigjson`
//! (key `.dockerconfigjson`, `{"auths": {...}}`) and `kubernetes.io/dockercfg`
//! (key `.dockercfg`, a bare map). Each entry's key becomes a keyring index
//! entry (scheme dropped, `/v1/` and `/v2/` prefixes dropped); images are
//! matched by host-label globs, equal ports and path prefix, and the index is
//! reverse-sorted so the most specific key is tried first. Docker Hub images
//! fall back to the `index.docker.io` entry.
//!
//! Pure code: the caller fetches the secrets.

use std::collections::BTreeMap;
use std::fmt;

use secrecy::{ExposeSecret as _, SecretString};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;

/// The secret type the kubelet reads as a docker config JSON.
pub(crate) const DOCKERCONFIGJSON: &str = "kubernetes.io/dockerconfigjson";
/// The legacy secret type holding a bare `.dockercfg` map.
pub(crate) const DOCKERCFG: &str = "kubernetes.io/dockercfg";

/// A username and password for one registry. The password is a
/// [`SecretString`]: no `Debug` or `Display` prints it, and its memory is
/// zeroed when dropped; read it with [`Credential::password`] only where it
/// goes on the wire or into a secret.
#[derive(Clone)]
pub struct Credential {
    pub username: String,
    secret: SecretString,
}

impl Credential {
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Credential {
        Credential {
            username: username.into(),
            secret: SecretString::from(password.into()),
        }
    }

    /// The password or token, for the request or the secret it goes into.
    pub fn password(&self) -> &str {
        self.secret.expose_secret()
    }
}

impl PartialEq for Credential {
    fn eq(&self, other: &Credential) -> bool {
        self.username == other.username && self.password() == other.password()
    }
}

impl Eq for Credential {}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credential")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// One `auths` entry of a pull secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthEntry {
    /// The key as written (`https://index.docker.io/v1/`, `reg.example.com:5000`).
    pub key: String,
    /// The credential the kubelet would use, `None` when the entry has none.
    pub credential: Option<Credential>,
    /// True when both `auth` and `username`/`password` are present and disagree.
    pub auth_disagrees: bool,
}

/// Why the kubelet would not use a secret's contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretProblem {
    /// The type is not one the kubelet reads (often `Opaque`).
    WrongType { found: String },
    /// The expected data key is missing; `present` lists the keys that are there.
    MissingKey {
        expected: &'static str,
        present: Vec<String>,
    },
    /// The data is not valid JSON.
    InvalidJson { detail: String },
    /// `.dockerconfigjson` without an `auths` key.
    NoAuths,
    /// A value that must be a JSON object is something else: `what` names
    /// it (`` `.dockerconfigjson` ``, `` `.dockerconfigjson`'s `auths` ``),
    /// `found` says what it is (`a JSON array`).
    NotAnObject { what: String, found: &'static str },
}

/// What a JSON value is, for messages: `a JSON array`, `a JSON string`, ...
pub(crate) fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "JSON null",
        Value::Bool(_) => "a JSON boolean",
        Value::Number(_) => "a JSON number",
        Value::String(_) => "a JSON string",
        Value::Array(_) => "a JSON array",
        Value::Object(_) => "a JSON object",
    }
}

/// Why a parsed docker config cannot hold entries (`None` when it can):
/// `.dockerconfigjson` must be an object whose `auths` is an object,
/// `.dockercfg` an object. A `.dockerconfigjson` without `auths` is
/// [`SecretProblem::NoAuths`].
pub(crate) fn config_shape(key: &str, value: &Value) -> Option<SecretProblem> {
    let Some(obj) = value.as_object() else {
        return Some(SecretProblem::NotAnObject {
            what: format!("`{key}`"),
            found: json_kind(value),
        });
    };
    if key != ".dockerconfigjson" {
        return None;
    }
    match obj.get("auths") {
        None => Some(SecretProblem::NoAuths),
        Some(Value::Object(_)) => None,
        Some(other) => Some(SecretProblem::NotAnObject {
            what: format!("`{key}`'s `auths`"),
            found: json_kind(other),
        }),
    }
}

impl fmt::Display for SecretProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretProblem::WrongType { found } => write!(
                f,
                "type is `{found}`; the kubelet only reads `{DOCKERCONFIGJSON}` and `{DOCKERCFG}`"
            ),
            SecretProblem::MissingKey { expected, present } => write!(
                f,
                "key `{expected}` is missing (keys present: {})",
                if present.is_empty() {
                    "none".to_string()
                } else {
                    present.join(", ")
                }
            ),
            SecretProblem::InvalidJson { detail } => write!(f, "data is not valid JSON: {detail}"),
            SecretProblem::NoAuths => f.write_str("JSON has no `auths` object"),
            SecretProblem::NotAnObject { what, found } => {
                write!(f, "{what} is {found}, not an object")
            }
        }
    }
}

/// Parses a secret's `type` and decoded `data` into its auth entries.
pub fn parse_pull_secret(
    secret_type: &str,
    data: &BTreeMap<String, Vec<u8>>,
) -> Result<Vec<AuthEntry>, SecretProblem> {
    let (key, nested) = match secret_type {
        DOCKERCONFIGJSON => (".dockerconfigjson", true),
        DOCKERCFG => (".dockercfg", false),
        other => {
            return Err(SecretProblem::WrongType {
                found: other.to_string(),
            });
        }
    };
    let raw = data.get(key).ok_or_else(|| SecretProblem::MissingKey {
        expected: key,
        present: data.keys().cloned().collect(),
    })?;
    let value: Value = serde_json::from_slice(raw).map_err(|e| SecretProblem::InvalidJson {
        detail: e.to_string(),
    })?;
    if let Some(problem) = config_shape(key, &value) {
        return Err(problem);
    }
    let auths = if nested {
        value.get("auths")
    } else {
        Some(&value)
    };
    let Some(map) = auths.and_then(Value::as_object) else {
        return Err(SecretProblem::NoAuths);
    };
    Ok(map
        .iter()
        .map(|(key, entry)| parse_entry(key, entry))
        .collect())
}

fn parse_entry(key: &str, entry: &Value) -> AuthEntry {
    let field = |name: &str| entry.get(name).and_then(Value::as_str).map(str::to_string);
    let from_fields = match (field("username"), field("password")) {
        (Some(u), Some(p)) if !u.is_empty() || !p.is_empty() => Some(Credential::new(u, p)),
        _ => None,
    };
    let from_auth = field("auth").and_then(|a| decode_auth(&a));
    let auth_disagrees = matches!((&from_fields, &from_auth), (Some(a), Some(b)) if a != b);
    // The kubelet decodes `auth` over the separate fields when both exist.
    AuthEntry {
        key: key.to_string(),
        credential: from_auth.or(from_fields),
        auth_disagrees,
    }
}

/// A pull secret the kubelet refuses as a whole: decoding it fails, and the
/// kubelet then fails every image pull of the pod (whichever registry, even
/// images that need no credential) with the decoder's error, before any
/// request. `error` is that error as the kubelet words it (Go's
/// `encoding/json` and `encoding/base64`); `entry` is the `auths` key it is
/// about, when it is about one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub entry: Option<String>,
    pub error: String,
}

/// A struct field as Go's `encoding/json` finds it: the exact key, else the
/// first key equal to it ignoring ASCII case (`Auths`, `USERNAME`).
fn go_field<'a>(obj: &'a serde_json::Map<String, Value>, name: &str) -> Option<&'a Value> {
    obj.get(name).or_else(|| {
        obj.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    })
}

/// Whether the kubelet refuses this secret as a whole (see [`Refusal`]):
/// only secrets of a type it reads, with the key present and not empty.
/// `None` also when pullfix cannot tell (JSON nested deeper than it
/// parses, which Go reads): it never claims a refusal that does not happen.
pub fn kubelet_refusal(secret_type: &str, data: &BTreeMap<String, Vec<u8>>) -> Option<Refusal> {
    let (key, go_type) = match secret_type {
        DOCKERCONFIGJSON => (".dockerconfigjson", "credentialprovider.DockerConfigJSON"),
        DOCKERCFG => (".dockercfg", "credentialprovider.DockerConfig"),
        _ => return None,
    };
    let raw = data.get(key).filter(|r| !r.is_empty())?;
    let whole = |error: String| Some(Refusal { entry: None, error });
    // Go reads invalid UTF-8 inside strings as U+FFFD; serde would refuse it.
    let text = String::from_utf8_lossy(raw);
    let value: Value = match serde_json::from_str(&text) {
        Ok(v) => v,
        Err(e) if e.is_eof() => return whole("unexpected end of JSON input".into()),
        Err(e) if e.is_syntax() && !e.to_string().contains("recursion limit") => {
            let c = text.trim_start().chars().next().unwrap_or(' ');
            return whole(format!(
                "invalid character {c:?} looking for beginning of value"
            ));
        }
        Err(_) => return None,
    };
    let entries = match (&value, secret_type) {
        (Value::Null, _) => return None,
        (Value::Object(obj), DOCKERCONFIGJSON) => match go_field(obj, "auths") {
            None | Some(Value::Null) => return None,
            Some(Value::Object(auths)) => auths,
            Some(other) => {
                return whole(format!(
                    "json: cannot unmarshal {} into Go struct field DockerConfigJSON.auths of type credentialprovider.DockerConfig",
                    crate::encoding::go_json_kind(other)
                ));
            }
        },
        (Value::Object(obj), _) => obj,
        (other, _) => {
            return whole(format!(
                "json: cannot unmarshal {} into Go value of type {go_type}",
                crate::encoding::go_json_kind(other)
            ));
        }
    };
    entries.iter().find_map(|(k, v)| {
        entry_refusal(v).map(|error| Refusal {
            entry: Some(k.clone()),
            error,
        })
    })
}

/// Why the kubelet's decoder fails on one `auths` entry, if it does (its
/// words, as in [`Refusal::error`]).
pub fn entry_refusal(entry: &Value) -> Option<String> {
    let obj = match entry {
        Value::Null => return None,
        Value::Object(o) => o,
        other => {
            return Some(format!(
                "json: cannot unmarshal {} into Go value of type credentialprovider.dockerConfigEntryWithAuth",
                crate::encoding::go_json_kind(other)
            ));
        }
    };
    for field in ["username", "password", "email", "auth"] {
        if let Some(v) = go_field(obj, field).filter(|v| !v.is_null() && !v.is_string()) {
            return Some(format!(
                "json: cannot unmarshal {} into Go struct field dockerConfigEntryWithAuth.{field} of type string",
                crate::encoding::go_json_kind(v)
            ));
        }
    }
    let auth = go_field(obj, "auth")
        .and_then(Value::as_str)
        .filter(|a| !a.is_empty())?;
    // Go's StdEncoding: padding required, line breaks skipped, nothing trimmed.
    let stripped: String = auth.chars().filter(|c| !matches!(c, '\r' | '\n')).collect();
    let engine = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_allow_trailing_bits(true)
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::RequireCanonical),
    );
    match engine.decode(stripped.as_bytes()) {
        Err(e) => {
            let at = match e {
                base64::DecodeError::InvalidByte(i, _)
                | base64::DecodeError::InvalidLastSymbol(i, _) => i,
                // Go stops at the start of the incomplete last quantum.
                base64::DecodeError::InvalidLength(_) | base64::DecodeError::InvalidPadding => {
                    stripped.len() - stripped.len() % 4
                }
            };
            Some(format!("illegal base64 data at input byte {at}"))
        }
        Ok(bytes) if !bytes.contains(&b':') => Some(
            "unable to parse auth field, must be formatted as base64(username:password)".into(),
        ),
        Ok(_) => None,
    }
}

/// Decodes a docker config `auth` value (base64 of `user:password`).
pub fn decode_auth(auth: &str) -> Option<Credential> {
    let bytes = STANDARD.decode(auth.trim()).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (u, p) = text.split_once(':')?;
    Some(Credential::new(u.to_string(), p.to_string()))
}

/// Encodes a credential the way `kubectl create secret docker-registry` does.
pub fn dockerconfigjson(server: &str, cred: &Credential) -> String {
    let auth = STANDARD.encode(format!("{}:{}", cred.username, cred.password()));
    serde_json::json!({
        "auths": {
            server: {
                "username": cred.username,
                "password": cred.password(),
                "auth": auth,
            }
        }
    })
    .to_string()
}

/// Where a credential came from, for reporting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub secret: String,
    pub key: String,
}

/// The kubelet's `BasicDockerKeyring`.
#[derive(Debug, Default, Clone)]
pub struct Keyring {
    /// Normalized key → credentials in insertion order; read in reverse
    /// key order (a map, so adding n entries is n·log n, not n²).
    index: BTreeMap<String, Vec<(Credential, Source)>>,
}

impl Keyring {
    /// Adds every entry of one secret.
    pub fn add(&mut self, secret: &str, entries: &[AuthEntry]) {
        for entry in entries {
            let Some(cred) = &entry.credential else {
                continue;
            };
            let Some(key) = normalize_key(&entry.key) else {
                continue;
            };
            let source = Source {
                secret: secret.to_string(),
                key: entry.key.clone(),
            };
            self.index
                .entry(key)
                .or_default()
                .push((cred.clone(), source));
        }
    }

    /// Credentials for an image name (`domain/repository`, normalized), most
    /// specific first. Empty when nothing matches.
    pub fn lookup(&self, image_name: &str) -> Vec<(&Credential, &Source)> {
        let mut out: Vec<(&Credential, &Source)> = Vec::new();
        for (key, creds) in self.index.iter().rev() {
            if urls_match(key, image_name) {
                out.extend(creds.iter().map(|(c, s)| (c, s)));
            }
        }
        if out.is_empty()
            && is_default_registry_match(image_name)
            && let Some(creds) = self.index.get("index.docker.io")
        {
            out.extend(creds.iter().map(|(c, s)| (c, s)));
        }
        out
    }
}

/// The keyring key for a config entry key: scheme removed, `/v1/` and `/v2/`
/// path prefixes removed, trailing `/` dropped.
pub(crate) fn normalize_key(key: &str) -> Option<String> {
    let rest = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let (host, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    if host.is_empty() {
        return None;
    }
    let mut path = path;
    if path.starts_with("/v2/") || path.starts_with("/v1/") {
        path = &path[3..];
    }
    if path.is_empty() || path == "/" {
        Some(host.to_string())
    } else {
        Some(format!("{host}{path}"))
    }
}

fn split_host(hostpath: &str) -> (&str, &str) {
    match hostpath.find('/') {
        Some(i) => (&hostpath[..i], &hostpath[i..]),
        None => (hostpath, ""),
    }
}

fn split_port(host: &str) -> (&str, &str) {
    match host.rsplit_once(':') {
        Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) => (h, p),
        _ => (host, ""),
    }
}

/// The kubelet's `URLsMatchStr`: same port, same number of host labels, each
/// label matching as a glob, path a prefix.
pub(crate) fn urls_match(glob: &str, target: &str) -> bool {
    let (ghost, gpath) = split_host(glob);
    let (thost, tpath) = split_host(target);
    let (ghost, gport) = split_port(ghost);
    let (thost, tport) = split_port(thost);
    if gport != tport {
        return false;
    }
    let glabels: Vec<&str> = ghost.split('.').collect();
    let tlabels: Vec<&str> = thost.split('.').collect();
    if glabels.len() != tlabels.len() || !tpath.starts_with(gpath) {
        return false;
    }
    glabels
        .iter()
        .zip(&tlabels)
        .all(|(g, t)| glob_match(g.as_bytes(), t.as_bytes()))
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum GlobToken {
    Star,
    Any,
    Class { negate: bool, items: Vec<(u8, u8)> },
    Lit(u8),
}

/// Compiles a glob; `None` for a malformed pattern (an unterminated class),
/// which `filepath.Match` rejects and the kubelet then treats as no match.
fn compile_glob(pattern: &[u8]) -> Option<Vec<GlobToken>> {
    let mut out = Vec::new();
    let mut rest = pattern;
    while let Some((&b, after)) = rest.split_first() {
        rest = after;
        match b {
            b'*' => {
                if out.last() != Some(&GlobToken::Star) {
                    out.push(GlobToken::Star);
                }
            }
            b'?' => out.push(GlobToken::Any),
            b'[' => {
                let end = rest.iter().position(|&b| b == b']')?;
                let (mut class, after) = rest.split_at(end);
                rest = after.get(1..).unwrap_or_default();
                let negate = class.first() == Some(&b'^');
                if negate {
                    class = class.get(1..).unwrap_or_default();
                }
                let mut items = Vec::new();
                loop {
                    match class {
                        [lo, b'-', hi, tail @ ..] => {
                            items.push((*lo, *hi));
                            class = tail;
                        }
                        [c, tail @ ..] => {
                            items.push((*c, *c));
                            class = tail;
                        }
                        [] => break,
                    }
                }
                out.push(GlobToken::Class { negate, items });
            }
            b => out.push(GlobToken::Lit(b)),
        }
    }
    Some(out)
}

fn token_matches(tok: &GlobToken, c: u8) -> bool {
    match tok {
        GlobToken::Star => false,
        GlobToken::Any => true,
        GlobToken::Lit(b) => *b == c,
        GlobToken::Class { negate, items } => {
            items.iter().any(|(lo, hi)| *lo <= c && c <= *hi) != *negate
        }
    }
}

/// `filepath.Match` for one host label: `*`, `?` and `[...]` classes.
/// Iterative with single-star backtracking, so time is at most
/// O(pattern × text) even for hostile patterns like `************x`.
fn glob_match(pattern: &[u8], text: &[u8]) -> bool {
    let Some(toks) = compile_glob(pattern) else {
        return false;
    };
    let (mut p, mut t) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while let Some(&c) = text.get(t) {
        let tok = toks.get(p);
        if tok == Some(&GlobToken::Star) {
            star = Some((p, t));
            p += 1;
        } else if tok.is_some_and(|tok| token_matches(tok, c)) {
            p += 1;
            t += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    while toks.get(p) == Some(&GlobToken::Star) {
        p += 1;
    }
    p == toks.len()
}

/// The kubelet's `isDefaultRegistryMatch`.
pub(crate) fn is_default_registry_match(image: &str) -> bool {
    let mut parts = image.splitn(2, '/');
    let first = parts.next().unwrap_or("");
    if first.is_empty() {
        return false;
    }
    if parts.next().is_none() {
        return true;
    }
    if first == "docker.io" || first == "index.docker.io" {
        return true;
    }
    !first.contains(['.', ':'])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(json: &str) -> BTreeMap<String, Vec<u8>> {
        BTreeMap::from([(".dockerconfigjson".to_string(), json.as_bytes().to_vec())])
    }

    #[test]
    fn the_kubelet_refuses_what_its_decoder_fails_on() {
        let refusal = |json: &str| kubelet_refusal(DOCKERCONFIGJSON, &secret(json));
        let on_entry = |json: &str| {
            let r = refusal(json).expect(json);
            (r.entry.unwrap_or_default(), r.error)
        };
        assert_eq!(
            on_entry(r#"{"auths":{"a.io":{"auth":"not base64!!"}}}"#),
            ("a.io".into(), "illegal base64 data at input byte 3".into())
        );
        // A raw password: Go stops at its last, incomplete quantum.
        assert_eq!(
            on_entry(r#"{"auths":{"a.io":{"auth":"hunter2"}}}"#).1,
            "illegal base64 data at input byte 4"
        );
        assert_eq!(
            on_entry(r#"{"auths":{"a.io":{"auth":"bm9jb2xvbg=="}}}"#).1,
            "unable to parse auth field, must be formatted as base64(username:password)"
        );
        assert_eq!(
            on_entry(r#"{"auths":{"a.io":"str"}}"#).1,
            "json: cannot unmarshal string into Go value of type credentialprovider.dockerConfigEntryWithAuth"
        );
        assert_eq!(
            on_entry(r#"{"auths":{"a.io":{"username":5}}}"#).1,
            "json: cannot unmarshal number into Go struct field dockerConfigEntryWithAuth.username of type string"
        );
        // Go matches field names ignoring case.
        assert!(refusal(r#"{"Auths":{"a.io":{"AUTH":"!!"}}}"#).is_some());
        let whole = |json: &str| refusal(json).expect(json).error;
        assert_eq!(
            whole("[1,2]"),
            "json: cannot unmarshal array into Go value of type credentialprovider.DockerConfigJSON"
        );
        assert_eq!(
            whole(r#"{"auths":[]}"#),
            "json: cannot unmarshal array into Go struct field DockerConfigJSON.auths of type credentialprovider.DockerConfig"
        );
        assert_eq!(
            whole("not json"),
            "invalid character 'n' looking for beginning of value"
        );
        assert_eq!(whole(r#"{"auths":"#), "unexpected end of JSON input");
        // What Go reads without complaint.
        for fine in [
            r#"{"auths":{"a.io":{"auth":"dTpw"}}}"#,
            r#"{"auths":{"a.io":{"username":"u","password":"p"}}}"#,
            r#"{"auths":{"a.io":null,"b.io":{}}}"#,
            r#"{"auths":null}"#,
            "{}",
            "null",
            "",
        ] {
            assert_eq!(refusal(fine), None, "{fine}");
        }
        // Invalid UTF-8 inside a string: Go reads it as U+FFFD.
        let mut bytes = br#"{"auths":{"a.io":{"username":"u"#.to_vec();
        bytes.extend([0xff, b'"', b'}', b'}', b'}']);
        let data = BTreeMap::from([(".dockerconfigjson".to_string(), bytes)]);
        assert_eq!(kubelet_refusal(DOCKERCONFIGJSON, &data), None);
        // Deeper than serde parses, which Go reads: not claimed.
        let deep = format!(
            r#"{{"auths":{{}},"x":{}{}}}"#,
            "[".repeat(300),
            "]".repeat(300)
        );
        assert_eq!(refusal(&deep), None);
        // A type the kubelet does not read is ignored, not refused.
        assert_eq!(kubelet_refusal("Opaque", &secret("[1,2]")), None);
        let cfg = BTreeMap::from([(".dockercfg".to_string(), br#"{"a.io":5}"#.to_vec())]);
        assert!(kubelet_refusal(DOCKERCFG, &cfg).is_some());
    }

    fn cred(u: &str, p: &str) -> Credential {
        Credential::new(u, p)
    }

    #[test]
    fn parses_auth_and_fields() {
        let json = format!(
            r#"{{"auths":{{"reg.example.com":{{"auth":"{}"}},"b.example.com":{{"username":"u","password":"p","auth":"{}"}}}}}}"#,
            STANDARD.encode("alice:s3cret"),
            STANDARD.encode("u:other")
        );
        let entries = parse_pull_secret(DOCKERCONFIGJSON, &secret(&json)).unwrap();
        assert_eq!(entries.len(), 2);
        let a = entries.iter().find(|e| e.key == "reg.example.com").unwrap();
        assert_eq!(a.credential, Some(cred("alice", "s3cret")));
        assert!(!a.auth_disagrees);
        let b = entries.iter().find(|e| e.key == "b.example.com").unwrap();
        assert!(b.auth_disagrees);
        assert_eq!(b.credential, Some(cred("u", "other")));
    }

    #[test]
    fn secret_problems() {
        assert!(matches!(
            parse_pull_secret("Opaque", &secret("{}")),
            Err(SecretProblem::WrongType { .. })
        ));
        let data = BTreeMap::from([("config.json".to_string(), b"{}".to_vec())]);
        let err = parse_pull_secret(DOCKERCONFIGJSON, &data).unwrap_err();
        assert_eq!(
            err.to_string(),
            "key `.dockerconfigjson` is missing (keys present: config.json)"
        );
        assert!(matches!(
            parse_pull_secret(DOCKERCONFIGJSON, &secret("{not json")),
            Err(SecretProblem::InvalidJson { .. })
        ));
        assert_eq!(
            parse_pull_secret(DOCKERCONFIGJSON, &secret(r#"{"x":1}"#)),
            Err(SecretProblem::NoAuths)
        );
        let dockercfg = BTreeMap::from([(
            ".dockercfg".to_string(),
            br#"{"reg.example.com":{"username":"u","password":"p"}}"#.to_vec(),
        )]);
        assert_eq!(parse_pull_secret(DOCKERCFG, &dockercfg).unwrap().len(), 1);
    }

    #[test]
    fn wrong_shapes_say_what_they_are() {
        let err = |json: &str| {
            parse_pull_secret(DOCKERCONFIGJSON, &secret(json))
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            err("[1,2]"),
            "`.dockerconfigjson` is a JSON array, not an object"
        );
        assert_eq!(
            err(r#"{"auths":"x"}"#),
            "`.dockerconfigjson`'s `auths` is a JSON string, not an object"
        );
        assert_eq!(
            err("null"),
            "`.dockerconfigjson` is JSON null, not an object"
        );
        let dockercfg = BTreeMap::from([(".dockercfg".to_string(), b"7".to_vec())]);
        assert_eq!(
            parse_pull_secret(DOCKERCFG, &dockercfg)
                .unwrap_err()
                .to_string(),
            "`.dockercfg` is a JSON number, not an object"
        );
        // Entries of the wrong shape hold no credential; they are not an error.
        let entries = parse_pull_secret(
            DOCKERCONFIGJSON,
            &secret(r#"{"auths":{"a":[1],"b":{"auth":7}}}"#),
        )
        .unwrap();
        assert!(entries.iter().all(|e| e.credential.is_none()));
    }

    #[test]
    fn debug_redacts_password() {
        let text = format!("{:?}", cred("alice", "hunter2"));
        assert!(!text.contains("hunter2"), "{text}");
    }

    #[test]
    fn key_normalization() {
        assert_eq!(
            normalize_key("https://index.docker.io/v1/").unwrap(),
            "index.docker.io"
        );
        assert_eq!(normalize_key("reg:5000/team").unwrap(), "reg:5000/team");
        assert_eq!(normalize_key("http://reg/v2/").unwrap(), "reg");
    }

    #[test]
    fn matching_rules() {
        assert!(urls_match("*.example.com", "reg.example.com/team/app"));
        assert!(!urls_match("*.example.com", "a.reg.example.com/team/app"));
        assert!(!urls_match("reg.example.com", "reg.example.com:5000/app"));
        assert!(urls_match(
            "reg.example.com:5000",
            "reg.example.com:5000/app"
        ));
        assert!(urls_match(
            "reg.example.com/team",
            "reg.example.com/team/app"
        ));
        assert!(!urls_match(
            "reg.example.com/team",
            "reg.example.com/other/app"
        ));
        assert!(urls_match("reg-[0-9].example.com", "reg-3.example.com/x"));
        assert!(
            urls_match("r*g.example.com", "registry-long.example.com/x")
                == glob_match(b"r*g", b"registry-long")
        );
        assert!(glob_match(b"a*b*c", b"axxbyyc"));
        assert!(!glob_match(b"a*b*c", b"axxbyy"));
        assert!(glob_match(b"[^0-9]x", b"ax"));
        assert!(!glob_match(b"[ab", b"a"), "malformed class never matches");
        // A hostile key must not take exponential time.
        let hostile = "*".repeat(40) + "x";
        let started = std::time::Instant::now();
        assert!(!glob_match(hostile.as_bytes(), "y".repeat(60).as_bytes()));
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
    }

    #[test]
    fn most_specific_first_and_hub_fallback() {
        let mut k = Keyring::default();
        let entries = |key: &str, u: &str| {
            vec![AuthEntry {
                key: key.into(),
                credential: Some(cred(u, "p")),
                auth_disagrees: false,
            }]
        };
        k.add("a", &entries("reg.example.com", "host"));
        k.add("b", &entries("reg.example.com/team", "team"));
        k.add("c", &entries("https://index.docker.io/v1/", "hub"));
        let found = k.lookup("reg.example.com/team/app");
        assert_eq!(found[0].0.username, "team");
        assert_eq!(found[1].0.username, "host");
        assert_eq!(k.lookup("docker.io/library/nginx")[0].0.username, "hub");
        assert!(k.lookup("other.example.com/app").is_empty());
    }
}
