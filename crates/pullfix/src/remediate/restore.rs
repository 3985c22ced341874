//! Undo that cannot clobber: the backup files `fix` writes, and
//! `kubectl pullfix restore BACKUP`.
//!
//! A backup is the object as it was before pullfix changed it, as YAML
//! (mode 0600, in a 0700 directory), with a header of `#` lines that kubectl
//! ignores. The header records the object *as pullfix left it*: its
//! `resourceVersion` and uid, and a redacted view of its fields (secret
//! values only as salted digests), so that
//!
//! - `kubectl replace -f BACKUP` carries that `resourceVersion` and fails
//!   with a Conflict if anything changed since pullfix wrote it;
//! - `kubectl pullfix restore BACKUP` checks the same before writing, and
//!   when the object moved on refuses with a diff of what changed since
//!   (keys and usernames; a password only as "changed (not shown)").
//!
//! Three ways back ([`Mode`]): `replace` (the object was updated or
//! patched), `recreate` (pullfix deleted and created it to change its type:
//! the restore deletes the object pullfix created, only if it is still that
//! uid and resourceVersion, then creates the old one), `create` (pullfix
//! deleted it: the restore creates it, which fails if it exists again).
//!
//! Pure: the file format, the redacted views and their diff. I/O:
//! [`save`], [`finish`], [`run`].

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use kube::Client;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::Digest as _;

use crate::api::{self, ObjectRef, Writable, Write};
use crate::remediate::prompt::{Answer, Prompter};

/// Annotations the workload controllers keep up to date themselves: their
/// changes are not someone else's edit.
const CONTROLLER_ANNOTATIONS: &[&str] = &[
    "deployment.kubernetes.io/revision",
    "deprecated.daemonset.template.generation",
];

/// The header line that carries the machine-readable record.
const MARK: &str = "# pullfix-restore: ";

/// How a backup is put back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Mode {
    /// `kubectl replace -f BACKUP`: conditional on the recorded resourceVersion.
    Replace,
    /// Delete the object pullfix created (only if unchanged), create the old one.
    Recreate,
    /// `kubectl create -f BACKUP`: fails if the object exists again.
    Create,
}

/// What a backup records about the object as pullfix left it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Record {
    pub mode: Mode,
    /// `Secret`, `Deployment`, ...
    pub kind: String,
    pub namespace: String,
    pub name: String,
    /// The resourceVersion and uid of the object as pullfix left it (none
    /// when it left none: `create`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    /// A redacted view of the object as pullfix left it ([`view`]).
    #[serde(default)]
    pub left: BTreeMap<String, String>,
    /// Salt of the digests in `left`.
    #[serde(default)]
    pub salt: String,
}

/// The command printed as "restore with". `replace` and `create` are
/// conditional as kubectl runs them; a recreate is not expressible in
/// kubectl conditionally (`kubectl replace --force` deletes whatever is
/// there), so it is pullfix's own `restore`. So is a workload's: its
/// controller updates its status (and resourceVersion) after every change,
/// so a `kubectl replace` pinned to the version pullfix left would always
/// conflict; `restore` compares the fields instead (status left out).
pub(crate) fn restore_command(mode: Mode, kind: &str, path: &Path) -> String {
    let p = crate::remediate::plan::shell_word(&path.display().to_string());
    let has_status = Writable::workload(kind).is_some();
    match mode {
        Mode::Replace if !has_status => format!("kubectl replace -f {p}"),
        Mode::Create => format!("kubectl create -f {p}"),
        Mode::Replace | Mode::Recreate => format!("kubectl pullfix restore {p}"),
    }
}

/// The object to send back: the backup without the fields the server
/// owns, pinned to the object as pullfix left it for a `replace` (so a
/// change since is a Conflict), and with no resourceVersion for a create.
pub(crate) fn restorable(before: &Value, record: &Record) -> Value {
    let mut clean = before.clone();
    if let Some(m) = clean.get_mut("metadata").and_then(Value::as_object_mut) {
        for k in [
            "resourceVersion",
            "uid",
            "managedFields",
            "creationTimestamp",
            "generation",
            "selfLink",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
        ] {
            m.remove(k);
        }
        if record.mode == Mode::Replace {
            if let Some(rv) = &record.resource_version {
                m.insert("resourceVersion".into(), Value::String(rv.clone()));
            }
            if let Some(uid) = &record.uid {
                m.insert("uid".into(), Value::String(uid.clone()));
            }
        }
    }
    if let Some(o) = clean.as_object_mut() {
        o.remove("status");
    }
    clean
}

/// The backup file's text: the header, then the object as YAML.
pub(crate) fn render(record: &Record, body: &Value, path: &Path, title: &str) -> String {
    let what = format!(
        "{} {}/{}",
        record.kind.to_ascii_lowercase(),
        record.namespace,
        record.name
    );
    let cmd = restore_command(record.mode, &record.kind, path);
    let condition = match (record.mode, &record.resource_version) {
        (Mode::Replace, Some(_)) if cmd.starts_with("kubectl pullfix") => {
            "refuses if anything but the status changed since pullfix wrote it".into()
        }
        (Mode::Replace, Some(rv)) => format!(
            "carries resourceVersion {rv}: a Conflict, not an overwrite, if it changed since pullfix wrote it"
        ),
        (Mode::Replace, None) => "carries no resourceVersion: it overwrites".into(),
        (Mode::Create, _) => "fails if the object exists again".into(),
        (Mode::Recreate, _) => {
            "deletes the object pullfix created only if it is unchanged; not `kubectl replace --force`, which deletes whatever is there".into()
        }
    };
    let record_json = serde_json::to_string(record).unwrap_or_default();
    let yaml = serde_saphyr::to_string(body).unwrap_or_default();
    format!(
        "# kubectl-pullfix backup of {what}, before: {}\n# restore with: {cmd} ({condition})\n{MARK}{record_json}\n{yaml}",
        one_line(title)
    )
}

/// A line as the terminal may show it ([`crate::sanitize::line`]): keys
/// and usernames come from the cluster.
fn escaped(s: &str) -> String {
    crate::sanitize::line(s).into_owned()
}

/// A header value on one line.
fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// Reads a backup: its record and the object to send back.
pub(crate) fn parse(text: &str) -> anyhow::Result<(Record, Value)> {
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix(MARK))
        .context("no `# pullfix-restore:` header: not a backup written by kubectl pullfix fix (restore it with kubectl, checking what changed first)")?;
    let record: Record =
        serde_json::from_str(line).context("the `# pullfix-restore:` header does not parse")?;
    let body: Value = serde_saphyr::from_str(text).context("the backup's object does not parse")?;
    if !body.is_object() {
        anyhow::bail!("the backup holds no object");
    }
    Ok((record, body))
}

/// A flat, redacted view of an object: `path → value`, without the fields
/// the server keeps changing; a secret's values are salted digests
/// (`secret:…`), its docker config expanded to `auths[KEY].username` (shown)
/// and `auths[KEY].password` (a digest). Pure.
pub(crate) fn view(obj: &Value, salt: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let secret = obj.get("kind").and_then(Value::as_str) == Some("Secret");
    let Some(map) = obj.as_object() else {
        return out;
    };
    for (k, v) in map {
        match k.as_str() {
            "status" => {}
            "data" | "stringData" if secret => secret_view(&mut out, k, v, salt),
            "metadata" => {
                let mut meta = v.clone();
                if let Some(m) = meta.as_object_mut() {
                    for skip in [
                        "resourceVersion",
                        "managedFields",
                        "generation",
                        "creationTimestamp",
                        "uid",
                        "selfLink",
                    ] {
                        m.remove(skip);
                    }
                    if let Some(a) = m.get_mut("annotations").and_then(Value::as_object_mut) {
                        for owned in CONTROLLER_ANNOTATIONS {
                            a.remove(*owned);
                        }
                    }
                }
                flatten(&mut out, "metadata", &meta);
            }
            _ => flatten(&mut out, k, v),
        }
    }
    out
}

fn flatten(out: &mut BTreeMap<String, String>, path: &str, v: &Value) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, v) in m {
                flatten(out, &format!("{path}.{k}"), v);
            }
        }
        Value::Array(a) if !a.is_empty() => {
            for (i, v) in a.iter().enumerate() {
                // Named items (containers, env) by name, else by index.
                let key = v
                    .get("name")
                    .and_then(Value::as_str)
                    .map_or_else(|| i.to_string(), str::to_string);
                flatten(out, &format!("{path}[{key}]"), v);
            }
        }
        // `{}`, `[]` and absent say the same.
        Value::Object(_) | Value::Array(_) => {}
        Value::String(s) => {
            out.insert(path.to_string(), s.clone());
        }
        other => {
            out.insert(path.to_string(), other.to_string());
        }
    }
}

fn digest(salt: &str, value: &[u8]) -> String {
    let mut h = sha2::Sha256::new();
    h.update(salt.as_bytes());
    h.update(value);
    format!("secret:{}", &hex::encode(h.finalize())[..16])
}

fn secret_view(out: &mut BTreeMap<String, String>, field: &str, data: &Value, salt: &str) {
    let Some(map) = data.as_object() else {
        return;
    };
    for (key, v) in map {
        let raw = v.as_str().unwrap_or_default();
        let bytes = if field == "data" {
            STANDARD
                .decode(raw)
                .unwrap_or_else(|_| raw.as_bytes().to_vec())
        } else {
            raw.as_bytes().to_vec()
        };
        let config: Option<serde_json::Map<String, Value>> =
            if key == ".dockerconfigjson" || key == ".dockercfg" {
                serde_json::from_slice::<Value>(&bytes).ok().and_then(|c| {
                    let auths = if key == ".dockerconfigjson" {
                        c.get("auths").cloned()
                    } else {
                        Some(c)
                    };
                    auths.and_then(|a| a.as_object().cloned())
                })
            } else {
                None
            };
        let Some(auths) = config else {
            out.insert(format!("{field}[{key}]"), digest(salt, &bytes));
            continue;
        };
        for (server, entry) in &auths {
            let base = format!("{field}[{key}].auths[{server}]");
            let from_auth = entry
                .get("auth")
                .and_then(Value::as_str)
                .and_then(crate::registry::keyring::decode_auth);
            let user = entry
                .get("username")
                .and_then(Value::as_str)
                .map(str::to_string)
                .or_else(|| from_auth.as_ref().map(|c| c.username.clone()))
                .unwrap_or_default();
            let pass = entry
                .get("password")
                .and_then(Value::as_str)
                .map(str::to_string)
                .or_else(|| from_auth.as_ref().map(|c| c.password().to_string()))
                .unwrap_or_default();
            out.insert(format!("{base}.username"), user);
            out.insert(format!("{base}.password"), digest(salt, pass.as_bytes()));
        }
    }
}

/// What changed from `old` to `new` (two [`view`]s), one line each; a
/// secret value is never shown, only that it changed. Pure.
pub(crate) fn diff(old: &BTreeMap<String, String>, new: &BTreeMap<String, String>) -> Vec<String> {
    let hidden = |v: &str| v.starts_with("secret:");
    let mut lines = Vec::new();
    for (k, o) in old {
        match new.get(k) {
            None if hidden(o) => lines.push(format!("- {k} (removed, not shown)")),
            None => lines.push(format!("- {k}: {o}")),
            Some(n) if n == o => {}
            Some(n) if hidden(n) || hidden(o) => lines.push(format!("~ {k} changed (not shown)")),
            Some(n) => lines.push(format!("~ {k}: {o} → {n}")),
        }
    }
    for (k, n) in new {
        if !old.contains_key(k) {
            lines.push(if hidden(n) {
                format!("+ {k} (added, not shown)")
            } else {
                format!("+ {k}: {n}")
            });
        }
    }
    lines
}

/// A file made private before anything is written to it: 0600 in a 0700
/// directory, replacing (not following) anything at `path`.
pub(crate) fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    if let Some(dir) = path.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("create directory {}", dir.display()))?;
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("create {}", tmp.display()))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("rename to {}", path.display()))?;
    Ok(())
}

/// A backup path: `STAMP-NS-KIND-NAME.yaml` in `dir`.
pub(crate) fn backup_path(dir: &Path, obj: &Value, suffix: &str) -> PathBuf {
    let field = |k: &str, d: &'static str| {
        obj.get("metadata")
            .and_then(|m| m.get(k))
            .and_then(Value::as_str)
            .unwrap_or(d)
            .to_string()
    };
    let kind = obj
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or("object")
        .to_ascii_lowercase();
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ");
    let safe = |s: String| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "-.".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    };
    dir.join(format!(
        "{stamp}-{}-{}-{}{suffix}.yaml",
        safe(field("namespace", "cluster")),
        safe(kind),
        safe(field("name", "unnamed"))
    ))
}

/// A backup taken before a write: the object as read.
#[derive(Debug, Clone)]
pub(crate) struct Backup {
    pub path: PathBuf,
    pub before: Value,
    pub mode: Mode,
    pub title: String,
}

impl Backup {
    /// Saves the object before it changes. Until the write is done, the
    /// record is the object as read: its restore is a no-op if nothing was
    /// written, and a Conflict if anything was.
    pub(crate) fn save(
        dir: &Path,
        before: &Value,
        mode: Mode,
        title: &str,
    ) -> anyhow::Result<Backup> {
        let path = unique(backup_path(dir, before, ""));
        let b = Backup {
            path,
            before: before.clone(),
            mode,
            title: title.to_string(),
        };
        b.write(mode, before)?;
        Ok(b)
    }

    /// Records the object as pullfix left it (`None`: pullfix deleted it).
    pub(crate) fn finish(&self, left: Option<&Value>) -> anyhow::Result<Mode> {
        let mode = match (self.mode, left) {
            // Deleted and not created again: put it back by creating it.
            (_, None) => Mode::Create,
            (m, Some(_)) => m,
        };
        self.write(mode, left.unwrap_or(&Value::Null))?;
        Ok(mode)
    }

    fn write(&self, mode: Mode, left: &Value) -> anyhow::Result<()> {
        let meta = |k: &str| {
            left.get("metadata")
                .and_then(|m| m.get(k))
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        let of = |k: &str| {
            self.before
                .get("metadata")
                .and_then(|m| m.get(k))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let salt = hex::encode(
            sha2::Sha256::digest(format!(
                "{}{:?}",
                self.path.display(),
                std::time::SystemTime::now()
            ))
            .get(..8)
            .unwrap_or_default(),
        );
        let record = Record {
            mode,
            kind: self
                .before
                .get("kind")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            namespace: of("namespace"),
            name: of("name"),
            resource_version: meta("resourceVersion"),
            uid: meta("uid"),
            left: if left.is_null() {
                BTreeMap::new()
            } else {
                view(left, &salt)
            },
            salt,
        };
        let body = restorable(&self.before, &record);
        write_private(&self.path, &render(&record, &body, &self.path, &self.title))
            .with_context(|| format!("save the backup {}", self.path.display()))
    }

    /// The write did not happen: the backup holds nothing to undo.
    pub(crate) fn discard(&self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// `path`, or `path` with a counter when it exists.
fn unique(path: PathBuf) -> PathBuf {
    if !path.exists() {
        return path;
    }
    let stem = path.with_extension("");
    (1..)
        .map(|i| PathBuf::from(format!("{}-{i}.yaml", stem.display())))
        .find(|p| !p.exists())
        .unwrap_or(path)
}

fn writable(kind: &str) -> Option<Writable> {
    match kind {
        "Secret" => Some(Writable::Secret),
        "ServiceAccount" => Some(Writable::ServiceAccount),
        "Pod" => Some(Writable::Pod),
        k => Writable::workload(k),
    }
}

/// Why a restore was refused (exit 1) rather than failed (exit 2).
#[derive(Debug)]
pub(crate) struct Refused(pub String);

/// The check before a restore: `Ok` when the object is still as pullfix
/// left it (or, for `create`, absent), else what moved on. Pure.
pub(crate) fn check(record: &Record, current: Option<&Value>) -> Result<(), Refused> {
    let what = format!(
        "{} {}/{}",
        record.kind.to_ascii_lowercase(),
        record.namespace,
        record.name
    );
    let meta = |c: &Value, k: &str| {
        c.get("metadata")
            .and_then(|m| m.get(k))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    match (record.mode, current) {
        (Mode::Create, None) => Ok(()),
        (Mode::Create, Some(c)) => Err(Refused(format!(
            "{what} exists again (uid {}): it was created since pullfix deleted it; restoring would replace it — compare it with the backup and restore by hand if you mean to",
            meta(c, "uid").unwrap_or_default()
        ))),
        (_, None) => Err(Refused(format!(
            "{what} no longer exists: it was deleted since pullfix wrote it; `kubectl create -f` the backup if you mean to bring the old one back"
        ))),
        (_, Some(c)) => {
            let rv = meta(c, "resourceVersion");
            let uid = meta(c, "uid");
            if record.uid.is_some() && uid != record.uid {
                return Err(Refused(format!(
                    "{what} was deleted and created again since pullfix wrote it (uid {} → {}): restoring would overwrite someone else's object",
                    record.uid.as_deref().unwrap_or_default(),
                    uid.unwrap_or_default()
                )));
            }
            let lines = diff(&record.left, &view(c, &record.salt));
            // Only the status moved on (a controller's update): nothing to lose.
            if rv != record.resource_version && !lines.is_empty() {
                let mut text = format!(
                    "{what} changed since pullfix wrote it (resourceVersion {} → {}): restoring would overwrite that change",
                    record.resource_version.as_deref().unwrap_or("?"),
                    rv.unwrap_or_default()
                );
                text.push_str("\n  changed since:");
                for l in lines {
                    text.push_str(&format!("\n    {}", escaped(&l)));
                }
                return Err(Refused(text));
            }
            Ok(())
        }
    }
}

/// Options of `kubectl pullfix restore`.
pub struct RestoreOptions {
    pub backup: PathBuf,
    pub dry_run: bool,
}

/// `kubectl pullfix restore BACKUP`: puts the object back only if it is
/// still as pullfix left it. Exit 0 restored (or rehearsed), 1 refused,
/// declined or pending, 2 error.
pub async fn run(
    client: &Client,
    opts: &RestoreOptions,
    prompter: &mut dyn Prompter,
    out: &mut dyn std::io::Write,
) -> anyhow::Result<u8> {
    use std::os::unix::fs::PermissionsExt;
    let path = &opts.backup;
    let meta =
        std::fs::metadata(path).with_context(|| format!("read backup {}", path.display()))?;
    if meta.permissions().mode() & 0o077 != 0 {
        writeln!(
            out,
            "note: {} is readable by others (mode {:o}); backups may hold credentials: chmod 600 it",
            path.display(),
            meta.permissions().mode() & 0o777
        )?;
    }
    let text =
        std::fs::read_to_string(path).with_context(|| format!("read backup {}", path.display()))?;
    let (record, body) = parse(&text).with_context(|| format!("backup {}", path.display()))?;
    let resource = writable(&record.kind).with_context(|| {
        format!(
            "backup {}: kind `{}` is not one pullfix writes",
            path.display(),
            record.kind
        )
    })?;
    let target = ObjectRef::new(resource, &record.namespace, &record.name);
    let what = format!(
        "{} {}/{}",
        resource.singular(),
        record.namespace,
        record.name
    );
    let current = target.get_opt(client).await?;
    if let Err(Refused(why)) = check(&record, current.as_ref()) {
        writeln!(out, "refused: {why}")?;
        writeln!(out, "nothing was written")?;
        return Ok(crate::EXIT_FAILURES);
    }
    // What the restore changes, redacted.
    let salt = record.salt.clone();
    let now = current.as_ref().map(|c| view(c, &salt)).unwrap_or_default();
    writeln!(out, "restore {what} from {}:", path.display())?;
    let lines = diff(&now, &view(&body, &salt));
    if lines.is_empty() {
        writeln!(out, "  (no field pullfix compares differs)")?;
    }
    for l in lines {
        writeln!(out, "  {}", escaped(&l))?;
    }
    // Pinned to the version just compared: a change in between is a Conflict.
    let mut body = body;
    if let (Some(c), Some(m)) = (
        current.as_ref(),
        body.get_mut("metadata").and_then(Value::as_object_mut),
    ) && record.mode == Mode::Replace
        && let Some(rv) = c.get("metadata").and_then(|m| m.get("resourceVersion"))
    {
        m.insert("resourceVersion".into(), rv.clone());
    }
    let writes: Vec<Write> = match record.mode {
        Mode::Replace => vec![Write::Replace(body.clone())],
        Mode::Create => vec![Write::Create(body.clone())],
        Mode::Recreate => vec![
            Write::Delete {
                uid: record.uid.clone(),
                resource_version: record.resource_version.clone(),
            },
            Write::Create(body.clone()),
        ],
    };
    if opts.dry_run {
        // A recreate's create cannot be rehearsed while the object exists.
        let first = writes.first().into_iter();
        for w in first {
            if let Err(e) = api::write(client, &target, w, true).await {
                writeln!(out, "✘ the server-side dry-run refused it: {}", e.message)?;
                return Ok(if e.code == Some(409) {
                    crate::EXIT_FAILURES
                } else {
                    crate::EXIT_ERROR
                });
            }
        }
        writeln!(
            out,
            "✔ rehearsed: server-side dry-run succeeded; nothing was written"
        )?;
        return Ok(crate::EXIT_OK);
    }
    let question = format!("Restore {what} from the backup?");
    match prompter.confirm(&question, record.mode == Mode::Replace)? {
        Answer::Yes => {}
        Answer::No => {
            writeln!(out, "✘ declined: nothing was written")?;
            return Ok(crate::EXIT_FAILURES);
        }
        Answer::Pending => {
            writeln!(
                out,
                "– pending: no terminal and no --yes; nothing was written"
            )?;
            return Ok(crate::EXIT_FAILURES);
        }
    }
    for w in &writes {
        if let Err(e) = api::write(client, &target, w, false).await {
            if e.code == Some(409) || e.code == Some(404) {
                writeln!(
                    out,
                    "refused: {what} changed while restoring ({}); nothing was overwritten",
                    e.message
                )?;
                return Ok(crate::EXIT_FAILURES);
            }
            anyhow::bail!("restore {what}: {} ({})", e.message, e.short());
        }
    }
    writeln!(out, "✔ restored {what}")?;
    Ok(crate::EXIT_OK)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn secret(rv: &str, auths: &Value) -> Value {
        json!({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/dockerconfigjson",
               "metadata": {"name": "regcred", "namespace": "shop", "resourceVersion": rv, "uid": "u1"},
               "data": {".dockerconfigjson": STANDARD.encode(json!({"auths": auths}).to_string())}})
    }

    /// regcred before pullfix's write (resourceVersion 10, `old-pass`) and
    /// as the write left it (11, `n3w-pass`).
    fn rotated() -> (Value, Value) {
        (
            secret(
                "10",
                &json!({"reg": {"username": "u", "password": "old-pass"}}),
            ),
            secret(
                "11",
                &json!({"reg": {"username": "u", "password": "n3w-pass"}}),
            ),
        )
    }

    #[test]
    fn a_replace_backup_is_pinned_to_the_object_as_left() {
        let (before, left) = rotated();
        let dir = tempfile::tempdir().unwrap();
        let b = Backup::save(dir.path(), &before, Mode::Replace, "update secret").unwrap();
        assert_eq!(b.finish(Some(&left)).unwrap(), Mode::Replace);
        let text = std::fs::read_to_string(&b.path).unwrap();
        let (record, body) = parse(&text).unwrap();
        assert_eq!(record.resource_version.as_deref(), Some("11"));
        assert_eq!(body["metadata"]["resourceVersion"], "11");
        assert_eq!(body["metadata"]["uid"], "u1");
        // The old credential is the object restored; the new one is not in the file.
        assert!(!text.contains("n3w-pass"), "{text}");
        assert!(
            text.contains("# restore with: kubectl replace -f"),
            "{text}"
        );
        assert!(check(&record, Some(&left)).is_ok());
    }

    #[test]
    fn a_change_since_is_refused_with_a_redacted_diff() {
        let (before, left) = rotated();
        let dir = tempfile::tempdir().unwrap();
        let b = Backup::save(dir.path(), &before, Mode::Replace, "t").unwrap();
        b.finish(Some(&left)).unwrap();
        let (record, _) = parse(&std::fs::read_to_string(&b.path).unwrap()).unwrap();
        let mut moved = secret(
            "12",
            &json!({"reg": {"username": "robot", "password": "th1rd-pass"}, "other.io": {"username": "x", "password": "y"}}),
        );
        moved["metadata"]["annotations"] = json!({"team": "pay"});
        let Err(Refused(why)) = check(&record, Some(&moved)) else {
            panic!("not refused")
        };
        assert!(why.contains("resourceVersion 11 → 12"), "{why}");
        assert!(why.contains("+ metadata.annotations.team: pay"), "{why}");
        assert!(
            why.contains("~ data[.dockerconfigjson].auths[reg].username: u → robot"),
            "{why}"
        );
        assert!(
            why.contains("~ data[.dockerconfigjson].auths[reg].password changed (not shown)"),
            "{why}"
        );
        assert!(
            why.contains("+ data[.dockerconfigjson].auths[other.io].password (added, not shown)"),
            "{why}"
        );
        for p in ["old-pass", "n3w-pass", "th1rd-pass", "secret:"] {
            assert!(!why.contains(p), "{p} in {why}");
        }
        // Deleted since, or recreated under the same name: refused too.
        assert!(check(&record, None).is_err());
        let mut other = left.clone();
        other["metadata"]["uid"] = json!("u2");
        assert!(
            check(&record, Some(&other))
                .unwrap_err()
                .0
                .contains("uid u1 → u2")
        );
    }

    #[test]
    fn deleted_objects_come_back_by_create_and_recreates_by_restore() {
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "shop", "resourceVersion": "5", "uid": "u"}, "status": {"phase": "Pending"}});
        let dir = tempfile::tempdir().unwrap();
        let b = Backup::save(dir.path(), &pod, Mode::Create, "delete pod").unwrap();
        assert_eq!(b.finish(None).unwrap(), Mode::Create);
        let (record, body) = parse(&std::fs::read_to_string(&b.path).unwrap()).unwrap();
        assert!(body["metadata"].get("resourceVersion").is_none());
        assert!(body.get("status").is_none());
        assert!(check(&record, None).is_ok());
        assert!(check(&record, Some(&pod)).is_err());
        // A recreate whose create failed: only the delete happened.
        let s = secret("10", &json!({}));
        let r = Backup::save(dir.path(), &s, Mode::Recreate, "t").unwrap();
        assert_eq!(r.finish(None).unwrap(), Mode::Create);
        let created = secret("20", &json!({}));
        let r = Backup::save(dir.path(), &s, Mode::Recreate, "t").unwrap();
        assert_eq!(r.finish(Some(&created)).unwrap(), Mode::Recreate);
        let text = std::fs::read_to_string(&r.path).unwrap();
        assert!(text.contains("kubectl pullfix restore"), "{text}");
        let (record, body) = parse(&text).unwrap();
        assert!(body["metadata"].get("resourceVersion").is_none());
        assert_eq!(record.resource_version.as_deref(), Some("20"));
    }

    #[test]
    fn backups_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("b");
        let b = Backup::save(&d, &secret("1", &json!({})), Mode::Replace, "t").unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&b.path), 0o600);
        assert_eq!(mode(&d), 0o700);
        b.discard();
        assert!(!b.path.exists());
    }
}
