//! Pull-secret analysis: which secrets apply to a pod (its own
//! `imagePullSecrets` and its ServiceAccount's), what is wrong with each of
//! them as the kubelet would read it, which credential the kubelet would use
//! for the image, who manages the secret, and when an ECR token expires.
//!
//! Pure code: the caller fetches the secrets (and says which it could not).

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use crate::registry::keyring::{
    AuthEntry, Credential, DOCKERCFG, DOCKERCONFIGJSON, Keyring, SecretProblem, kubelet_refusal,
    normalize_key, parse_pull_secret, urls_match,
};
use crate::registry::reference::ImageRef;

/// ECR authorization tokens last 12 hours.
pub(crate) const ECR_TOKEN_LIFETIME_HOURS: i64 = 12;

/// Where a pull secret reference comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Origin {
    /// `pod.spec.imagePullSecrets`.
    PodSpec,
    /// The pod's ServiceAccount's `imagePullSecrets`.
    ServiceAccount { name: String },
}

/// A secret as read from the API, reduced to what the analysis needs.
#[derive(Debug, Clone, Default)]
pub(crate) struct SecretView {
    pub name: String,
    pub namespace: String,
    pub type_: String,
    pub data: BTreeMap<String, Vec<u8>>,
    pub created: Option<DateTime<Utc>>,
    /// Last write (newest `managedFields[].time`), when known.
    pub updated: Option<DateTime<Utc>>,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    /// `(kind, name)` of each ownerReference.
    pub owners: Vec<(String, String)>,
}

/// What reading a referenced secret gave.
#[derive(Debug, Clone)]
pub(crate) enum Lookup {
    Found(SecretView),
    NotFound,
    /// RBAC denied `get secrets` (a real 403): analysis continues without it.
    Forbidden,
    /// The read failed for another reason (timed out, API server
    /// unreachable or failing), said in a few words: analysis continues
    /// without it.
    Failed(String),
}

/// One referenced pull secret.
#[derive(Debug, Clone)]
pub(crate) struct SecretRef {
    pub name: String,
    pub origin: Origin,
    pub lookup: Lookup,
}

/// A problem with one pull secret, as the kubelet would experience it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "problem", rename_all = "kebab-case")]
pub enum Problem {
    /// Referenced but absent from the namespace.
    Missing,
    /// Could not be read (RBAC); nothing is known about its content.
    Unreadable,
    /// Could not be read for another reason (`timed out`, ...); nothing is
    /// known about its content.
    ReadFailed { error: String },
    /// Not of a type the kubelet reads (usually `Opaque`).
    WrongType { found: String },
    /// The data key the type requires is absent.
    MissingKey {
        expected: String,
        present: Vec<String>,
    },
    /// The data is not valid JSON.
    InvalidJson { detail: String },
    /// `.dockerconfigjson` without an `auths` object.
    NoAuths,
    /// A value that must be a JSON object is not one (`what`:
    /// `` `.dockerconfigjson` ``; `found`: `a JSON array`).
    WrongShape { what: String, found: String },
    /// The kubelet cannot decode the secret, and then fails every image
    /// pull of the pod, whichever registry, before any request. `error` is
    /// its decoder's error; `entry` the `auths` key it is about, if one.
    KubeletRefuses {
        entry: Option<String>,
        error: String,
    },
    /// An entry's `auth` is not base64 of `user:password`.
    InvalidAuth { key: String },
    /// An entry has no credential at all.
    EmptyCredential { key: String },
    /// `auth` and `username`/`password` disagree (the kubelet uses `auth`).
    AuthDisagrees { key: String },
    /// No `auths` key matches the image's registry; `closest` is the nearest key.
    NoMatchingEntry {
        registry: String,
        closest: Option<String>,
    },
}

impl Problem {
    /// A short sentence for text output.
    pub(crate) fn describe(&self, secret: &str) -> String {
        match self {
            Problem::Missing => format!("secret `{secret}` does not exist in this namespace"),
            Problem::Unreadable => {
                format!("secret `{secret}` could not be read (no `get secrets` permission)")
            }
            Problem::ReadFailed { error } => {
                format!("secret `{secret}` could not be read ({error})")
            }
            Problem::WrongType { found } => format!(
                "secret `{secret}` has type `{found}`; the kubelet ignores it (needs `{DOCKERCONFIGJSON}`)"
            ),
            Problem::MissingKey { expected, present } => format!(
                "secret `{secret}` has no `{expected}` key (keys: {})",
                if present.is_empty() {
                    "none".into()
                } else {
                    present.join(", ")
                }
            ),
            Problem::InvalidJson { detail } => {
                format!("secret `{secret}` is not valid JSON: {detail}")
            }
            Problem::NoAuths => format!("secret `{secret}` has no `auths` object"),
            Problem::WrongShape { what, found } => {
                format!("secret `{secret}`'s {what} is {found}, not an object")
            }
            Problem::KubeletRefuses { entry, error } => format!(
                "the kubelet cannot decode secret `{secret}`{} ({error}), so it fails every image pull of this pod, for any registry",
                entry
                    .as_ref()
                    .map(|k| format!(" because of entry `{k}`"))
                    .unwrap_or_default()
            ),
            Problem::InvalidAuth { key } => {
                format!("secret `{secret}` entry `{key}`: `auth` is not base64 of user:password")
            }
            Problem::EmptyCredential { key } => {
                format!("secret `{secret}` entry `{key}` holds no credential")
            }
            Problem::AuthDisagrees { key } => format!(
                "secret `{secret}` entry `{key}`: `auth` and `username`/`password` disagree (the kubelet uses `auth`)"
            ),
            Problem::NoMatchingEntry { registry, closest } => match closest {
                Some(c) => {
                    format!("secret `{secret}` has no entry for `{registry}` (closest key: `{c}`)")
                }
                None => format!("secret `{secret}` has no entry for `{registry}`"),
            },
        }
    }
}

/// A tool that owns the secret and would revert a live edit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Manager {
    /// `helm`, `argo-cd`, `flux`, `external-secrets`, `sealed-secrets`, `reflector`, `replicator`.
    pub tool: String,
    /// Where the truth lives (release, application, source object), when known.
    pub source: Option<String>,
}

/// When an ECR token stops working.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EcrExpiry {
    pub expires_at: DateTime<Utc>,
    pub expired: bool,
    /// `token` when decoded from the token itself, `age` when estimated from
    /// the secret's last write plus 12 hours.
    pub basis: String,
}

/// The analysis of one referenced secret.
#[derive(Debug, Clone, Serialize)]
pub struct SecretReport {
    pub name: String,
    pub origin: Origin,
    pub problems: Vec<Problem>,
    /// The `auths` key that matches the image (as the kubelet matches).
    pub matched_key: Option<String>,
    /// The matched entry's username (never the password).
    pub username: Option<String>,
    pub age_seconds: Option<i64>,
    pub manager: Option<Manager>,
    pub ecr: Option<EcrExpiry>,
    /// The `auths` entries for other registries, which a fix keeps (and a
    /// `kubectl create secret docker-registry` would drop).
    #[serde(skip)]
    pub other_entries: usize,
}

/// Everything about the pull secrets that apply to one image.
#[derive(Debug, Clone)]
pub(crate) struct Analysis {
    pub reports: Vec<SecretReport>,
    /// Credentials the kubelet would try, in order, with the secret and key
    /// they came from.
    pub credentials: Vec<(Credential, String, String)>,
    /// True when some referenced secret could not be read.
    pub incomplete: bool,
}

impl SecretReport {
    /// Why the kubelet cannot decode this secret, when it cannot: the
    /// `auths` key it is about (if one) and the kubelet's words.
    pub(crate) fn kubelet_refusal(&self) -> Option<(Option<&str>, &str)> {
        self.problems.iter().find_map(|p| match p {
            Problem::KubeletRefuses { entry, error } => Some((entry.as_deref(), error.as_str())),
            _ => None,
        })
    }
}

impl Analysis {
    /// The first referenced secret the kubelet cannot decode, with its
    /// refusal: the kubelet then sends no credential at all (`credentials`
    /// is empty).
    pub(crate) fn refused(&self) -> Option<(&str, Option<&str>, &str)> {
        self.reports.iter().find_map(|r| {
            r.kubelet_refusal()
                .map(|(entry, error)| (r.name.as_str(), entry, error))
        })
    }
}

/// Analyzes the secrets that apply to `image`, at time `now`.
pub(crate) fn analyze(refs: &[SecretRef], image: &ImageRef, now: DateTime<Utc>) -> Analysis {
    let mut keyring = Keyring::default();
    let mut reports = Vec::new();
    let mut incomplete = false;
    let target = image.name();
    for r in refs {
        let mut report = SecretReport {
            name: r.name.clone(),
            origin: r.origin.clone(),
            problems: Vec::new(),
            matched_key: None,
            username: None,
            age_seconds: None,
            manager: None,
            ecr: None,
            other_entries: 0,
        };
        match &r.lookup {
            Lookup::NotFound => report.problems.push(Problem::Missing),
            Lookup::Forbidden => {
                incomplete = true;
                report.problems.push(Problem::Unreadable);
            }
            Lookup::Failed(error) => {
                incomplete = true;
                report.problems.push(Problem::ReadFailed {
                    error: error.clone(),
                });
            }
            Lookup::Found(secret) => {
                let written = secret.updated.or(secret.created);
                report.age_seconds = written.map(|t| (now - t).num_seconds());
                report.manager = detect_manager(secret);
                analyze_content(
                    secret,
                    image,
                    &target,
                    now,
                    written,
                    &mut report,
                    &mut keyring,
                );
            }
        }
        reports.push(report);
    }
    // A secret the kubelet cannot decode ends the pull before any lookup.
    let refused = reports.iter().any(|r| r.kubelet_refusal().is_some());
    let credentials = if refused {
        Vec::new()
    } else {
        keyring
            .lookup(&target)
            .into_iter()
            .map(|(c, s)| (c.clone(), s.secret.clone(), s.key.clone()))
            .collect()
    };
    Analysis {
        reports,
        credentials,
        incomplete,
    }
}

fn analyze_content(
    secret: &SecretView,
    image: &ImageRef,
    target: &str,
    now: DateTime<Utc>,
    written: Option<DateTime<Utc>>,
    report: &mut SecretReport,
    keyring: &mut Keyring,
) {
    let refusal = kubelet_refusal(&secret.type_, &secret.data);
    if let Some(r) = &refusal {
        report.problems.push(Problem::KubeletRefuses {
            entry: r.entry.clone(),
            error: r.error.clone(),
        });
    }
    let (entries, readable_type) = match parse_pull_secret(&secret.type_, &secret.data) {
        Ok(entries) => (entries, true),
        Err(SecretProblem::WrongType { found }) => {
            report.problems.push(Problem::WrongType { found });
            // Look inside anyway: an Opaque secret often holds a good config.
            let as_json = parse_pull_secret(DOCKERCONFIGJSON, &secret.data)
                .or_else(|_| parse_pull_secret(DOCKERCFG, &secret.data));
            match as_json {
                Ok(entries) => (entries, false),
                Err(_) => {
                    // Say so when a docker config key is there but of the
                    // wrong shape (`[1,2]`): fixing the type alone would not do.
                    if let Err(SecretProblem::NotAnObject { what, found }) =
                        parse_pull_secret(DOCKERCONFIGJSON, &secret.data)
                    {
                        report.problems.push(Problem::WrongShape {
                            what,
                            found: found.to_string(),
                        });
                    }
                    return;
                }
            }
        }
        Err(e) => {
            report.problems.push(match e {
                SecretProblem::MissingKey { expected, present } => Problem::MissingKey {
                    expected: expected.to_string(),
                    present,
                },
                SecretProblem::InvalidJson { detail } => Problem::InvalidJson { detail },
                SecretProblem::NoAuths => Problem::NoAuths,
                SecretProblem::NotAnObject { what, found } => Problem::WrongShape {
                    what,
                    found: found.to_string(),
                },
                SecretProblem::WrongType { found } => Problem::WrongType { found },
            });
            return;
        }
    };
    // The raw `auths` map, parsed once for every entry's checks (parsing
    // it per entry made a 10,000-entry secret cost minutes).
    let raw = raw_auths(secret);
    for entry in &entries {
        let raw_entry = raw
            .as_ref()
            .and_then(|m| m.as_object())
            .and_then(|m| m.get(&entry.key));
        // The refusal says it of its entry already, with the kubelet's words.
        if refusal
            .as_ref()
            .is_some_and(|r| r.entry.as_deref() == Some(entry.key.as_str()))
        {
            continue;
        }
        entry_problems(entry, raw_entry, report);
    }

    if readable_type {
        keyring.add(&secret.name, &entries);
    }
    // Which key would match, under the kubelet's rules.
    let mut own = Keyring::default();
    own.add(&secret.name, &entries);
    let found = own.lookup(target);
    if let Some((cred, source)) = found.first() {
        report.matched_key = Some(source.key.clone());
        report.username = Some(cred.username.clone());
        if is_ecr_host(&image.domain) {
            report.ecr = Some(ecr_expiry(cred.password(), written, now));
        }
    } else if !entries.iter().any(|e| key_matches(&e.key, image)) {
        // (An entry for the registry that holds no usable credential has
        // its own line already: `auth` not base64, or no credential.)
        let keys: Vec<&str> = entries.iter().map(|e| e.key.as_str()).collect();
        report.problems.push(Problem::NoMatchingEntry {
            registry: image.domain.clone(),
            closest: closest_key(&image.domain, &keys),
        });
    }
    // What a fix keeps: entries for other registries, less a wrong key it
    // replaces and the entries the kubelet cannot decode (it drops them).
    let replaced = report.problems.iter().find_map(|p| match p {
        Problem::NoMatchingEntry { closest, .. } => closest.clone(),
        _ => None,
    });
    let undecodable = |key: &str| {
        raw.as_ref()
            .and_then(|m| m.as_object())
            .and_then(|m| m.get(key))
            .is_some_and(|v| crate::registry::keyring::entry_refusal(v).is_some())
    };
    report.other_entries = entries
        .iter()
        .filter(|e| {
            crate::registry::keyring::normalize_key(&e.key).as_deref()
                != Some(image.domain.as_str())
                && replaced.as_deref() != Some(e.key.as_str())
                && !undecodable(&e.key)
        })
        .count();
}

fn entry_problems(entry: &AuthEntry, raw: Option<&serde_json::Value>, report: &mut SecretReport) {
    let auth = raw.and_then(|v| v.get("auth")).and_then(|a| a.as_str());
    if let Some(auth) = auth
        && !auth.is_empty()
        && crate::registry::keyring::decode_auth(auth).is_none()
    {
        report.problems.push(Problem::InvalidAuth {
            key: entry.key.clone(),
        });
    }
    if entry.credential.is_none() && auth.is_none_or(str::is_empty) {
        report.problems.push(Problem::EmptyCredential {
            key: entry.key.clone(),
        });
    }
    if entry.auth_disagrees {
        report.problems.push(Problem::AuthDisagrees {
            key: entry.key.clone(),
        });
    }
}

/// The secret's raw entry map (`auths` of `.dockerconfigjson`, or the bare
/// `.dockercfg` map), parsed once.
fn raw_auths(secret: &SecretView) -> Option<serde_json::Value> {
    let (data, nested) = match secret.data.get(".dockerconfigjson") {
        Some(d) => (d, true),
        None => (secret.data.get(".dockercfg")?, false),
    };
    let mut v: serde_json::Value = serde_json::from_slice(data).ok()?;
    if nested {
        v.get_mut("auths").map(serde_json::Value::take)
    } else {
        Some(v)
    }
}

/// Private ECR hosts and their region, every form (`registry::ecr`).
pub use crate::registry::ecr::{is_private_host as is_ecr_host, region as ecr_region};

/// Decodes an ECR token's expiry (the password is base64 of JSON with an
/// `expiration` in Unix seconds); otherwise estimates it from when the
/// secret was last written.
pub(crate) fn ecr_expiry(
    password: &str,
    written: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> EcrExpiry {
    let decoded = STANDARD
        .decode(password.trim())
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| v.get("expiration").and_then(serde_json::Value::as_i64))
        .and_then(|secs| DateTime::<Utc>::from_timestamp(secs, 0));
    let (expires_at, basis) = match (decoded, written) {
        (Some(t), _) => (t, "token"),
        (None, Some(w)) => (w + Duration::hours(ECR_TOKEN_LIFETIME_HOURS), "age"),
        (None, None) => (now, "unknown"),
    };
    EcrExpiry {
        expires_at,
        expired: expires_at <= now,
        basis: basis.to_string(),
    }
}

/// Who manages the secret, from labels, annotations and ownerReferences.
pub(crate) fn detect_manager(s: &SecretView) -> Option<Manager> {
    let label = |k: &str| s.labels.get(k).cloned();
    let ann = |k: &str| s.annotations.get(k).cloned();
    let owner = |kind: &str| {
        s.owners
            .iter()
            .find(|(k, _)| k == kind)
            .map(|(_, n)| n.clone())
    };
    let m = |tool: &str, source: Option<String>| {
        Some(Manager {
            tool: tool.into(),
            source,
        })
    };
    if let Some(n) = owner("ExternalSecret") {
        return m(
            "external-secrets",
            Some(format!("ExternalSecret {}/{n}", s.namespace)),
        );
    }
    if let Some(n) = owner("SealedSecret") {
        return m(
            "sealed-secrets",
            Some(format!("SealedSecret {}/{n}", s.namespace)),
        );
    }
    if let Some(from) = ann("reflector.v1.k8s.emberstack.com/reflected-from") {
        return m("reflector", Some(format!("Secret {from}")));
    }
    if let Some(from) = ann("replicator.v1.mittwald.de/replicated-from-annotation") {
        return m("replicator", Some(format!("Secret {from}")));
    }
    if label("app.kubernetes.io/managed-by").as_deref() == Some("Helm")
        || ann("meta.helm.sh/release-name").is_some()
    {
        let release = ann("meta.helm.sh/release-name");
        let rns = ann("meta.helm.sh/release-namespace").unwrap_or_else(|| s.namespace.clone());
        if let Some(n) = label("helm.toolkit.fluxcd.io/name") {
            return m(
                "flux",
                Some(format!(
                    "HelmRelease {}/{n}",
                    label("helm.toolkit.fluxcd.io/namespace").unwrap_or(rns)
                )),
            );
        }
        return m("helm", release.map(|r| format!("Helm release {rns}/{r}")));
    }
    if let Some(n) = label("kustomize.toolkit.fluxcd.io/name") {
        let ns = label("kustomize.toolkit.fluxcd.io/namespace").unwrap_or_default();
        return m("flux", Some(format!("Kustomization {ns}/{n}")));
    }
    if let Some(id) = ann("argocd.argoproj.io/tracking-id") {
        let app = id.split(':').next().unwrap_or(&id).to_string();
        return m("argo-cd", Some(format!("Application {app}")));
    }
    if let Some(app) = label("argocd.argoproj.io/instance") {
        return m("argo-cd", Some(format!("Application {app}")));
    }
    None
}

/// The `auths` key nearest to the image's registry (for "did you mean").
/// Hosts longer than a DNS name can be are never the closest key (and an
/// edit distance to a hostile 1 MB key would cost seconds).
const CLOSEST_KEY_MAX_HOST: usize = 255;

/// The key whose host is nearest `registry` by edit distance (the smallest
/// key on a tie). Linear in the keys: a key whose host length alone
/// puts it farther than the best so far is skipped without computing the
/// distance, as is one whose host is longer than [`CLOSEST_KEY_MAX_HOST`].
pub(crate) fn closest_key(registry: &str, keys: &[&str]) -> Option<String> {
    let wanted = registry.chars().count();
    let mut best: Option<(usize, &str)> = None;
    for k in keys {
        let Some(n) = normalize_key(k) else { continue };
        let host = n.split('/').next().unwrap_or(&n);
        let len = host.chars().count();
        if len > CLOSEST_KEY_MAX_HOST {
            continue;
        }
        // |len(a) - len(b)| is a lower bound of the edit distance.
        if best.is_some_and(|(d, _)| len.abs_diff(wanted) > d) {
            continue;
        }
        let d = levenshtein(host, registry);
        if best.is_none_or(|(bd, bk)| (d, *k) < (bd, bk)) {
            best = Some((d, k));
        }
    }
    best.map(|(_, k)| k.to_string())
}

/// Edit distance between two strings (for "did you mean").
pub(crate) fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = Vec::with_capacity(prev.len());
        let mut left = i + 1;
        cur.push(left);
        // `diag` is prev[j], `up` is prev[j + 1], `left` is cur[j].
        for (cb, (diag, up)) in b.iter().zip(prev.iter().zip(prev.iter().skip(1))) {
            let cost = usize::from(ca != *cb);
            left = (diag + cost).min(up + 1).min(left + 1);
            cur.push(left);
        }
        prev = cur;
    }
    prev.last().copied().unwrap_or_default()
}

/// True when a key (as written in a secret) matches a registry host under
/// the kubelet's rules.
pub(crate) fn key_matches(key: &str, image: &ImageRef) -> bool {
    normalize_key(key).is_some_and(|k| urls_match(&k, &image.name()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-22T08:30:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn view(name: &str, type_: &str, json: &str) -> SecretView {
        SecretView {
            name: name.into(),
            namespace: "shop".into(),
            type_: type_.into(),
            data: BTreeMap::from([(".dockerconfigjson".into(), json.as_bytes().to_vec())]),
            created: Some(now() - Duration::hours(14)),
            ..SecretView::default()
        }
    }

    fn cfg(key: &str, user: &str, pass: &str) -> String {
        let auth = STANDARD.encode(format!("{user}:{pass}"));
        format!(
            r#"{{"auths":{{"{key}":{{"username":"{user}","password":"{pass}","auth":"{auth}"}}}}}}"#
        )
    }

    fn found(v: SecretView, origin: Origin) -> SecretRef {
        SecretRef {
            name: v.name.clone(),
            origin,
            lookup: Lookup::Found(v),
        }
    }

    #[test]
    fn good_secret_matches_and_yields_a_credential() {
        let img = ImageRef::parse("reg.example.com:5000/team/app:v1").unwrap();
        let refs = [found(
            view(
                "regcred",
                DOCKERCONFIGJSON,
                &cfg("reg.example.com:5000", "u", "p"),
            ),
            Origin::PodSpec,
        )];
        let a = analyze(&refs, &img, now());
        assert!(
            a.reports[0].problems.is_empty(),
            "{:?}",
            a.reports[0].problems
        );
        assert_eq!(
            a.reports[0].matched_key.as_deref(),
            Some("reg.example.com:5000")
        );
        assert_eq!(a.reports[0].username.as_deref(), Some("u"));
        assert_eq!(a.reports[0].age_seconds, Some(14 * 3600));
        assert_eq!(a.credentials.len(), 1);
    }

    #[test]
    fn an_entry_without_a_usable_credential_is_one_line() {
        let img = ImageRef::parse("reg.example.com:5000/team/app:v1").unwrap();
        let refused = |error: &str| {
            format!(
                "the kubelet cannot decode secret `s` because of entry `reg.example.com:5000` ({error}), so it fails every image pull of this pod, for any registry"
            )
        };
        for (json, expect) in [
            (
                r#"{"auths":{"reg.example.com:5000":{"auth":"not base64!!"}}}"#,
                refused("illegal base64 data at input byte 3"),
            ),
            (
                // base64, but of no `user:password`
                r#"{"auths":{"reg.example.com:5000":{"auth":"dXNlcm5vY29sb24="}}}"#,
                refused(
                    "unable to parse auth field, must be formatted as base64(username:password)",
                ),
            ),
            (
                r#"{"auths":{"reg.example.com:5000":{"auth":7}}}"#,
                refused(
                    "json: cannot unmarshal number into Go struct field dockerConfigEntryWithAuth.auth of type string",
                ),
            ),
            (
                // An empty entry decodes: nothing refused, nothing sent.
                r#"{"auths":{"reg.example.com:5000":{}}}"#,
                "secret `s` entry `reg.example.com:5000` holds no credential".to_string(),
            ),
        ] {
            let refs = [found(view("s", DOCKERCONFIGJSON, json), Origin::PodSpec)];
            let a = analyze(&refs, &img, now());
            let lines: Vec<String> = a.reports[0]
                .problems
                .iter()
                .map(|p| p.describe("s"))
                .collect();
            assert_eq!(lines, [expect], "{json}");
            assert!(a.credentials.is_empty());
        }
    }

    #[test]
    fn a_docker_config_of_the_wrong_shape_is_named() {
        let img = ImageRef::parse("reg.example.com:5000/team/app:v1").unwrap();
        let refs = [found(view("weird", "Opaque", "[1,2]"), Origin::PodSpec)];
        let a = analyze(&refs, &img, now());
        let lines: Vec<String> = a.reports[0]
            .problems
            .iter()
            .map(|p| p.describe("weird"))
            .collect();
        assert!(
            lines.contains(
                &"secret `weird`'s `.dockerconfigjson` is a JSON array, not an object".to_string()
            ),
            "{lines:?}"
        );
        let refs = [found(
            view("weird", DOCKERCONFIGJSON, r#"{"auths":[]}"#),
            Origin::PodSpec,
        )];
        let a = analyze(&refs, &img, now());
        assert_eq!(
            a.reports[0].problems,
            [
                Problem::KubeletRefuses {
                    entry: None,
                    error: "json: cannot unmarshal array into Go struct field DockerConfigJSON.auths of type credentialprovider.DockerConfig".into()
                },
                Problem::WrongShape {
                    what: "`.dockerconfigjson`'s `auths`".into(),
                    found: "a JSON array".into()
                }
            ]
        );
    }

    #[test]
    fn opaque_secret_is_ignored_but_inspected() {
        let img = ImageRef::parse("reg.example.com/team/app:v1").unwrap();
        let refs = [found(
            view("regcred", "Opaque", &cfg("reg.example.com", "u", "p")),
            Origin::PodSpec,
        )];
        let a = analyze(&refs, &img, now());
        assert_eq!(
            a.reports[0].problems,
            [Problem::WrongType {
                found: "Opaque".into()
            }]
        );
        assert_eq!(a.reports[0].matched_key.as_deref(), Some("reg.example.com"));
        assert!(
            a.credentials.is_empty(),
            "the kubelet would not use an Opaque secret"
        );
    }

    #[test]
    fn wrong_port_reports_the_closest_key() {
        let img = ImageRef::parse("reg.example.com:5000/team/app:v1").unwrap();
        let refs = [found(
            view(
                "regcred",
                DOCKERCONFIGJSON,
                &cfg("reg.example.com", "u", "p"),
            ),
            Origin::PodSpec,
        )];
        let a = analyze(&refs, &img, now());
        assert_eq!(
            a.reports[0].problems,
            [Problem::NoMatchingEntry {
                registry: "reg.example.com:5000".into(),
                closest: Some("reg.example.com".into())
            }]
        );
    }

    #[test]
    fn a_read_that_timed_out_is_not_a_missing_permission() {
        let img = ImageRef::parse("reg.example.com/app:v1").unwrap();
        let refs = [SecretRef {
            name: "regcred".into(),
            origin: Origin::PodSpec,
            lookup: Lookup::Failed("timed out".into()),
        }];
        let a = analyze(&refs, &img, now());
        assert!(a.incomplete);
        assert_eq!(
            a.reports[0].problems,
            [Problem::ReadFailed {
                error: "timed out".into()
            }]
        );
        let text = a.reports[0].problems[0].describe("regcred");
        assert_eq!(text, "secret `regcred` could not be read (timed out)");
        assert!(!text.contains("permission"));
    }

    #[test]
    fn missing_unreadable_and_broken() {
        let img = ImageRef::parse("reg.example.com/app:v1").unwrap();
        let bad_auth = r#"{"auths":{"reg.example.com":{"auth":"!!!"}}}"#;
        let disagree = format!(
            r#"{{"auths":{{"reg.example.com":{{"username":"a","password":"b","auth":"{}"}}}}}}"#,
            STANDARD.encode("a:c")
        );
        let refs = [
            SecretRef {
                name: "gone".into(),
                origin: Origin::PodSpec,
                lookup: Lookup::NotFound,
            },
            SecretRef {
                name: "hidden".into(),
                origin: Origin::ServiceAccount {
                    name: "default".into(),
                },
                lookup: Lookup::Forbidden,
            },
            found(view("badauth", DOCKERCONFIGJSON, bad_auth), Origin::PodSpec),
            found(
                view("disagree", DOCKERCONFIGJSON, &disagree),
                Origin::PodSpec,
            ),
            found(view("nojson", DOCKERCONFIGJSON, "{"), Origin::PodSpec),
        ];
        let a = analyze(&refs, &img, now());
        assert_eq!(a.reports[0].problems, [Problem::Missing]);
        assert_eq!(a.reports[1].problems, [Problem::Unreadable]);
        assert!(a.incomplete);
        assert!(a.reports[2].problems.contains(&Problem::KubeletRefuses {
            entry: Some("reg.example.com".into()),
            error: "illegal base64 data at input byte 0".into(),
        }));
        // The first secret the kubelet cannot decode: it sends nothing.
        assert_eq!(a.refused().map(|(s, _, _)| s), Some("badauth"));
        assert!(a.credentials.is_empty());
        assert!(a.reports[3].problems.contains(&Problem::AuthDisagrees {
            key: "reg.example.com".into()
        }));
        assert_eq!(
            a.reports[4].problems[0],
            Problem::KubeletRefuses {
                entry: None,
                error: "unexpected end of JSON input".into()
            }
        );
        assert!(
            a.reports[4].problems[1]
                .describe("nojson")
                .starts_with("secret `nojson` is not valid JSON")
        );
    }

    #[test]
    fn ecr_token_expiry_decoded_or_estimated() {
        let exp = now().timestamp() - 3600;
        let token = STANDARD.encode(format!(
            r#"{{"payload":"x","version":"2","expiration":{exp}}}"#
        ));
        let e = ecr_expiry(&token, None, now());
        assert!(e.expired);
        assert_eq!(e.basis, "token");
        let moto = ecr_expiry(
            "123456789012-auth-token",
            Some(now() - Duration::hours(14)),
            now(),
        );
        assert!(moto.expired);
        assert_eq!(moto.basis, "age");
        let fresh = ecr_expiry("x", Some(now() - Duration::hours(1)), now());
        assert!(!fresh.expired);
        assert!(is_ecr_host("123456789012.dkr.ecr.us-east-1.amazonaws.com"));
        assert!(!is_ecr_host("registry.example.com"));
        assert_eq!(
            ecr_region("123456789012.dkr.ecr.eu-west-1.amazonaws.com").as_deref(),
            Some("eu-west-1")
        );
    }

    #[test]
    fn ecr_secret_reports_expiry() {
        let img =
            ImageRef::parse("123456789012.dkr.ecr.us-east-1.amazonaws.com/team/app:v1").unwrap();
        let refs = [found(
            view(
                "regcred",
                DOCKERCONFIGJSON,
                &cfg("123456789012.dkr.ecr.us-east-1.amazonaws.com", "AWS", "tok"),
            ),
            Origin::PodSpec,
        )];
        let a = analyze(&refs, &img, now());
        let ecr = a.reports[0].ecr.as_ref().unwrap();
        assert!(ecr.expired);
        assert_eq!(ecr.basis, "age");
    }

    #[test]
    fn managers() {
        let mut s = SecretView {
            namespace: "shop".into(),
            ..SecretView::default()
        };
        assert_eq!(detect_manager(&s), None);
        s.annotations
            .insert("meta.helm.sh/release-name".into(), "checkout".into());
        s.labels
            .insert("app.kubernetes.io/managed-by".into(), "Helm".into());
        assert_eq!(detect_manager(&s).unwrap().tool, "helm");
        s.owners.push(("ExternalSecret".into(), "regcred".into()));
        let m = detect_manager(&s).unwrap();
        assert_eq!(m.tool, "external-secrets");
        assert_eq!(m.source.as_deref(), Some("ExternalSecret shop/regcred"));
        let mut a = SecretView::default();
        a.annotations.insert(
            "argocd.argoproj.io/tracking-id".into(),
            "shop-app:/Secret:shop/regcred".into(),
        );
        assert_eq!(
            detect_manager(&a).unwrap().source.as_deref(),
            Some("Application shop-app")
        );
        let mut r = SecretView::default();
        r.annotations.insert(
            "reflector.v1.k8s.emberstack.com/reflected-from".into(),
            "infra/regcred".into(),
        );
        assert_eq!(detect_manager(&r).unwrap().tool, "reflector");
    }

    #[test]
    fn closest() {
        assert_eq!(
            closest_key(
                "registry.example.com",
                &["https://index.docker.io/v1/", "registry.exmple.com"]
            )
            .as_deref(),
            Some("registry.exmple.com")
        );
        assert_eq!(closest_key("x", &[]), None);
    }

    /// A pull secret with `n` `auths` entries, none for the image's registry
    /// (the worst case: every entry is checked, and a closest key is sought).
    fn large_secret(n: usize) -> SecretRef {
        let mut auths = serde_json::Map::new();
        for i in 0..n {
            let auth = STANDARD.encode(format!("user{i}:pass{i}"));
            auths.insert(
                format!("https://reg{i}.example.com/v1/"),
                serde_json::json!({"username": format!("user{i}"), "password": format!("pass{i}"), "auth": auth}),
            );
        }
        let json = serde_json::json!({ "auths": auths }).to_string();
        found(view("huge", DOCKERCONFIGJSON, &json), Origin::PodSpec)
    }

    /// The secrets benchmark (docs/performance.md, `scripts/bench-secrets`):
    /// the pure analysis of one pull secret with 1k–10k entries. Not a
    /// timed test: it prints the numbers and asserts nothing about them.
    #[test]
    #[ignore = "benchmark: scripts/bench-secrets"]
    fn bench_large_secret() {
        let img = ImageRef::parse("other.example.org/team/app:v1").unwrap();
        // PULLFIX_BENCH_SIZES=1000,2000 measures other sizes.
        let sizes: Vec<usize> = std::env::var("PULLFIX_BENCH_SIZES")
            .unwrap_or_else(|_| "1000,2000,4000,10000".into())
            .split(',')
            .filter_map(|n| n.trim().parse().ok())
            .collect();
        for n in sizes {
            let refs = [large_secret(n)];
            let bytes = match &refs[0].lookup {
                Lookup::Found(v) => v.data.values().map(Vec::len).sum::<usize>(),
                _ => 0,
            };
            let runs = 3;
            let mut best = std::time::Duration::MAX;
            for _ in 0..runs {
                let start = std::time::Instant::now();
                let a = analyze(&refs, &img, now());
                best = best.min(start.elapsed());
                assert_eq!(a.reports.len(), 1);
            }
            println!(
                "bench-secrets: {n} entries ({} KB): analyze {:.3} s (best of {runs})",
                bytes / 1000,
                best.as_secs_f64()
            );
        }
    }
}

/// Property tests: any bytes or JSON shape in a pull secret, through
/// parsing, the analysis, the other-namespace match and fix's planning,
/// gives findings, never a panic.
#[cfg(test)]
pub(crate) mod props {
    use super::*;
    use crate::diagnose::Cause;
    use crate::diagnose::finding::Finding;
    use crate::remediate::plan::{PlanOptions, advice, plan};
    use proptest::prelude::*;
    use serde_json::{Value, json};

    /// Strings that stress parsers: base64-ish, keys, unicode, control
    /// characters, long values.
    pub(crate) fn text() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-zA-Z0-9+/=:]{0,24}",
            "(https?://)?[a-z0-9.-]{0,20}(:[0-9]{1,6})?(/v[12]/)?",
            any::<String>(),
            "\\PC{0,12}",
            "[\\x00-\\x1f\\x7f]{0,8}",
            (0usize..20_000).prop_map(|n| "A".repeat(n)),
            Just("reg.example.com:5000".to_string()),
            Just(STANDARD.encode("u:p")),
            Just(STANDARD.encode("no colon")),
            Just(STANDARD.encode([0xff, 0xfe, b':', 0x80])),
        ]
    }

    pub(crate) fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(|f| json!(f)),
            text().prop_map(Value::from),
        ];
        leaf.prop_recursive(3, 24, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
                prop::collection::btree_map(text(), inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// An `auths` entry: right-looking fields with values of any shape.
    fn entry() -> impl Strategy<Value = Value> {
        (
            prop::option::of(json_value()),
            prop::option::of(prop_oneof![text().prop_map(Value::from), json_value()]),
            prop::option::of(json_value()),
            prop::option::of(prop_oneof![text().prop_map(Value::from), json_value()]),
        )
            .prop_map(|(u, a, p, e)| {
                let mut m = serde_json::Map::new();
                for (k, v) in [("username", u), ("auth", a), ("password", p), ("email", e)] {
                    if let Some(v) = v {
                        m.insert(k.into(), v);
                    }
                }
                Value::Object(m)
            })
    }

    /// A docker config: well-formed, with odd entries, or any JSON at all.
    pub(crate) fn config() -> impl Strategy<Value = Vec<u8>> {
        let entries = || {
            prop::collection::btree_map(text(), prop_oneof![entry(), json_value()], 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect()))
        };
        prop_oneof![
            entries().prop_map(|a| json!({ "auths": a }).to_string().into_bytes()),
            entries().prop_map(|a| a.to_string().into_bytes()),
            json_value().prop_map(|v| json!({ "auths": v }).to_string().into_bytes()),
            json_value().prop_map(|v| v.to_string().into_bytes()),
            prop::collection::vec(any::<u8>(), 0..64),
        ]
    }

    fn secret() -> impl Strategy<Value = SecretView> {
        (
            prop_oneof![
                Just(DOCKERCONFIGJSON.to_string()),
                Just(DOCKERCFG.to_string()),
                Just("Opaque".to_string()),
                text(),
            ],
            prop_oneof![
                Just(".dockerconfigjson".to_string()),
                Just(".dockercfg".to_string()),
                text(),
            ],
            config(),
        )
            .prop_map(|(type_, key, bytes)| SecretView {
                name: "s".into(),
                namespace: "shop".into(),
                type_,
                data: BTreeMap::from([(key, bytes)]),
                ..SecretView::default()
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn any_secret_is_diagnosed_and_planned_without_panic(
            secrets in prop::collection::vec(secret(), 1..3),
            image in prop_oneof![
                Just("reg.example.com:5000/team/app:v1"),
                Just("nginx"),
                Just("123456789012.dkr.ecr.us-east-1.amazonaws.com/app:v1"),
            ],
        ) {
            let img = ImageRef::parse(image).unwrap();
            for s in &secrets {
                let _ = parse_pull_secret(&s.type_, &s.data);
                let _ = parse_pull_secret(DOCKERCONFIGJSON, &s.data);
                let _ = parse_pull_secret(DOCKERCFG, &s.data);
            }
            let refs: Vec<SecretRef> = secrets
                .iter()
                .map(|s| SecretRef {
                    name: s.name.clone(),
                    origin: Origin::PodSpec,
                    lookup: Lookup::Found(s.clone()),
                })
                .collect();
            let a = analyze(&refs, &img, Utc::now());
            for r in &a.reports {
                for p in &r.problems {
                    prop_assert!(!p.describe(&r.name).is_empty());
                }
            }
            let regs = std::collections::BTreeSet::from([img.domain.clone()]);
            let others: Vec<_> = secrets
                .iter()
                .flat_map(|s| crate::diagnose::run::other_secret_entries_for_tests(s, &regs))
                .collect();
            for cause in [
                Cause::CredentialsMissing,
                Cause::CredentialsRejected,
                Cause::CredentialsExpired,
                Cause::AccessDenied,
                Cause::Unknown,
            ] {
                let f = Finding {
                    secrets: a.reports.clone(),
                    ..Finding::sample("shop", cause, image)
                };
                let opts = PlanOptions { service_account: "default".into(), ..PlanOptions::default() };
                let _ = plan(&f, &others, &opts);
                let _ = advice(&f, &others);
            }
        }
    }
}
