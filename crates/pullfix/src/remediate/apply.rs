//! Carrying out one planned step, safely:
//!
//! 1. a SelfSubjectAccessReview for each request (skipped in `--dry-run`,
//!    where the dry-run itself reports a denial and nothing may be POSTed);
//! 2. what will change, as a redacted diff, and the equivalent kubectl command;
//! 3. a server-side dry-run (`dryRun=All`) of exactly the request;
//! 4. confirmation (default No for destructive steps; an extra one for
//!    secrets another tool manages);
//! 5. a backup of the object (0600);
//! 6. the request, carrying the `resourceVersion` it was based on, with field
//!    manager `kubectl-pullfix`; a conflict is reported, never overwritten;
//! 7. the backup records the object as the write left it, so the printed
//!    restore is conditional on nothing having changed since
//!    ([`crate::remediate::restore`]); a write that did not happen offers
//!    no restore.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::Utc;
use k8s_openapi::api::core::v1::Secret;
use kube::Client;
use serde_json::{Value, json};

use crate::api::{self, ApiError, ListQuery, ObjectRef, Writable, Write};

use crate::diagnose::finding::Finding;
use crate::diagnose::secrets::Problem;
use crate::probe::Prober;
use crate::registry::keyring::{
    Credential, DOCKERCONFIGJSON, SecretProblem, decode_auth, entry_refusal, normalize_key,
};
use crate::registry::reference::ImageRef;
use crate::remediate::plan::{self, Action, CommandFacts, PlannedStep};
use crate::remediate::prompt::{Answer, Prompter};
use crate::remediate::restore::{self, Backup, Mode};
use crate::remediate::{Outcome, StepRecord};
use crate::scan::Workload;

/// Where a new credential comes from (flags).
#[derive(Debug, Clone, Default)]
pub struct CredentialFlags {
    pub username: Option<String>,
    /// Read from stdin (`--password-stdin`); never printed.
    pub password: Option<secrecy::SecretString>,
    pub docker_config: Option<PathBuf>,
    /// `NAMESPACE/NAME` of a secret whose credential to copy.
    pub from_secret: Option<String>,
    /// Use a fresh ECR token (`--from-ecr`; the default for ECR images when
    /// AWS credentials are available).
    pub from_ecr: bool,
    /// `--allow-untested`: write a credential that could not be tested from
    /// this machine (TLS trust, DNS, network), without asking.
    pub allow_untested: bool,
    /// `--probe-from-cluster`: test every credential with a canary pull on
    /// the node, not from this machine.
    pub probe_from_cluster: bool,
}

/// Everything a step needs.
pub(crate) struct Executor<'a> {
    pub client: &'a Client,
    pub dry_run: bool,
    pub prompter: &'a mut dyn Prompter,
    pub out: &'a mut dyn std::io::Write,
    pub backup_dir: PathBuf,
    pub creds: CredentialFlags,
    pub prober: Prober,
    pub ecr: Option<crate::diagnose::ecr::EcrClient>,
    /// The credential written by this run (reused for other namespaces).
    pub written: Option<Credential>,
    /// Internal test seam: a shell command run just before each real write.
    pub before_write_hook: Option<String>,
}

/// How a change's note begins when its credential was written untested
/// (the summary marks the step).
const UNTESTED: &str = "credential untested:";

/// How a change's note begins when a canary pod tested its credential.
const CANARY_TESTED: &str = "credential tested on the cluster:";

/// How the credential about to be written was tested.
enum Tested {
    /// From this machine: the registry resolved the image with it.
    Here,
    /// By a canary pull on this node.
    OnNode(String),
    /// `--dry-run`: the canary that would test it was only rehearsed.
    Rehearsed,
    /// Not at all, on purpose (why it could not be).
    Untested(String),
}

impl Tested {
    /// What the change says of it, when it is more than "tested from here".
    fn note(&self) -> Option<String> {
        match self {
            Tested::Here | Tested::Rehearsed => None,
            Tested::OnNode(node) => Some(format!(
                "{CANARY_TESTED} node {node} pulled the image with it (canary pod, deleted)"
            )),
            Tested::Untested(why) => Some(format!(
                "{UNTESTED} {why}; pullfix could not check it before writing"
            )),
        }
    }
}

/// One write to the API server, through [`crate::api`].
#[derive(Debug, Clone)]
struct Request {
    target: ObjectRef,
    write: Write,
}

impl Request {
    fn new(resource: Writable, namespace: &str, name: &str, write: Write) -> Request {
        Request {
            target: ObjectRef::new(resource, namespace, name),
            write,
        }
    }

    /// `update secrets shop/regcred`.
    fn describe(&self) -> String {
        format!(
            "{} {} {}/{}",
            self.write.verb(),
            self.target.resource.plural(),
            self.target.namespace,
            self.target.name
        )
    }

    /// `update (secrets in namespace shop)`.
    fn missing(&self) -> String {
        format!(
            "{} ({} in namespace {})",
            self.write.verb(),
            resource_name(self),
            self.target.namespace
        )
    }
}

/// A change shown, rehearsed and applied as one confirmation.
struct Change {
    title: String,
    diff: Vec<String>,
    kubectl: Vec<String>,
    requests: Vec<Request>,
    /// Objects to back up before applying (with how to restore each).
    backups: Vec<Backed>,
    destructive: bool,
    /// Set when another tool manages the object: (tool, source of truth).
    managed: Option<String>,
    /// Other `auths` entries a secret write keeps (the kubectl equivalent
    /// must keep them too).
    kept: usize,
    /// Said after the kubectl equivalent (a file it reads).
    notes: Vec<String>,
}

impl Change {
    /// A change with nothing in it yet, that others are [`absorb`]ed into.
    fn empty(title: &str) -> Change {
        Change {
            title: title.to_string(),
            diff: Vec::new(),
            kubectl: Vec::new(),
            requests: Vec::new(),
            backups: Vec::new(),
            destructive: false,
            managed: None,
            kept: 0,
            notes: Vec::new(),
        }
    }
}

/// An object to back up, how to put it back, and the requests that change
/// it (`requests.end - 1` leaves it as pullfix leaves it).
#[derive(Debug, Clone)]
struct Backed {
    object: Value,
    mode: Mode,
    requests: Range<usize>,
}

/// How a write that lost to a concurrent change begins its error: someone
/// else wrote the object in between ([`Outcome::is_conflict`]).
pub(crate) const CONFLICT: &str = "conflict: the object changed since pullfix read it";

/// What a failed write says: a conflict is explained, anything else is the
/// server's message and code (or what happened to the connection).
fn api_failure(e: &ApiError) -> String {
    match e.code {
        Some(409) if e.reason == "Conflict" => format!(
            "{CONFLICT} ({}); nothing was overwritten — run pullfix again to work from the current version",
            e.message
        ),
        Some(code) => format!("{} ({code})", e.message),
        None => format!("{} ({})", e.short(), e.message),
    }
}

/// The outcome of a step that could not be prepared (Ctrl-C at one of its
/// questions is not a failure: the step was simply not applied).
fn failed(e: anyhow::Error) -> Outcome {
    if crate::terminal::is_interrupted(&e) {
        return interrupted();
    }
    Outcome::Failed {
        error: format!("{e:#}"),
    }
}

/// A step stopped by Ctrl-C before anything was written.
fn interrupted() -> Outcome {
    Outcome::Skipped {
        reason: "interrupted (Ctrl-C) before it was written".into(),
    }
}

impl Executor<'_> {
    /// Prints a line; control characters in it (from a value the cluster
    /// or a registry supplied) are shown escaped, line feeds kept. Values
    /// that must stay on one line go through [`crate::sanitize::line`] too.
    pub(crate) fn say(&mut self, line: impl AsRef<str>) {
        let _ = writeln!(self.out, "{}", crate::sanitize::block(line.as_ref()));
    }

    /// Runs one step and records what happened.
    pub(crate) async fn execute(&mut self, step: &PlannedStep, finding: &Finding) -> StepRecord {
        self.say(format!("\n▶ {}", crate::sanitize::line(&step.title)));
        self.say(format!("  why: {}", crate::sanitize::line(&step.why)));
        // Preparing only reads and probes: Ctrl-C may cut it short.
        let prepared = crate::terminal::until_interrupted(Box::pin(self.prepare(step, finding)))
            .await
            .unwrap_or_else(|_| Err(interrupted()));
        let change = match prepared {
            Ok(c) => c,
            Err(outcome) => {
                self.say(format!("  {}", outcome_line(&outcome)));
                return record(step, None, None, None, outcome);
            }
        };
        let command = Some(change.kubectl.join(" && "));
        // The change's title names what was chosen (a tag from a menu).
        let title = change.title.clone();
        let (outcome, backup, restore) = self.run_change(change).await;
        self.say(format!("  {}", outcome_line(&outcome)));
        if let (Some(b), Some(r)) = (&backup, &restore) {
            self.say(format!("  backup: {b}\n  restore with: {r}"));
        }
        StepRecord {
            title,
            ..record(step, command, backup, restore, outcome)
        }
    }

    async fn run_change(&mut self, change: Change) -> (Outcome, Option<String>, Option<String>) {
        // 1. Permissions (not in a rehearsal: the dry-run answers that).
        if !self.dry_run
            && let Err(stop) = self.check_permissions(&change).await
        {
            return (stop, None, None);
        }
        // 2. What will change.
        self.say("  change:");
        for l in &change.diff {
            self.say(format!("    {}", crate::sanitize::line(l)));
        }
        for k in &change.kubectl {
            self.say(format!(
                "  kubectl equivalent: {}",
                crate::sanitize::line(k)
            ));
        }
        for n in &change.notes {
            self.say(format!("  {n}"));
        }
        // 3. Server-side dry-run of exactly these requests.
        if let Err(stop) = self.rehearse(&change).await {
            return (stop, None, None);
        }
        if self.dry_run {
            return (
                Outcome::Rehearsed {
                    detail: "server-side dry-run succeeded; nothing was written".into(),
                },
                None,
                None,
            );
        }
        // 4. Confirmation.
        if let Err(stop) = self.confirm(&change) {
            return (stop, None, None);
        }
        // 5. Backups, of the objects as read.
        let backups = match self.back_up(&change) {
            Ok(saved) => saved,
            Err(stop) => return (stop, None, None),
        };
        if let Some(hook) = &self.before_write_hook {
            let _ = std::process::Command::new("sh")
                .arg("-c")
                .arg(hook)
                .status();
        }
        // 6. The writes.
        let mut done = Vec::new();
        let mut left: Vec<Option<Value>> = Vec::new();
        let mut failure = None;
        for r in &change.requests {
            match api::write(self.client, &r.target, &r.write, false).await {
                Ok(obj) => {
                    done.push(r.describe());
                    left.push(obj);
                }
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        // 7. Each backup records the object as the writes left it; one
        // whose writes did not happen is removed, with no restore offered.
        let (backup, restore) = self.finish_backups(&backups, &left);
        let Some(e) = failure else {
            crate::terminal::record_write(&change.title, restore.as_deref());
            let untested = if change.notes.iter().any(|n| n.starts_with(UNTESTED)) {
                "; the credential was written untested"
            } else if change.notes.iter().any(|n| n.starts_with(CANARY_TESTED)) {
                "; the credential was tested by a canary pull on the node"
            } else {
                ""
            };
            return (
                Outcome::Applied {
                    detail: format!("{}{untested}", done.join(", ")),
                },
                backup,
                restore,
            );
        };
        let error = if done.is_empty() {
            api_failure(&e)
        } else {
            crate::terminal::record_write(
                &format!("{} (partly: {})", change.title, done.join(", ")),
                restore.as_deref(),
            );
            format!("{} (after {} succeeded)", api_failure(&e), done.join(", "))
        };
        (Outcome::Failed { error }, backup, restore)
    }

    /// Records, in each backup, the object as the writes left it; removes
    /// the backups of objects no write changed. The backups' paths and the
    /// commands that restore them.
    fn finish_backups(
        &mut self,
        backups: &[(Backup, Range<usize>)],
        left: &[Option<Value>],
    ) -> (Option<String>, Option<String>) {
        let mut paths = Vec::new();
        let mut restores = Vec::new();
        for (b, range) in backups {
            let written = range.end.min(left.len());
            if written <= range.start {
                b.discard();
                continue;
            }
            let last = left.get(written - 1).cloned().flatten();
            match b.finish(last.as_ref()) {
                Ok(mode) => {
                    paths.push(b.path.display().to_string());
                    restores.push(restore::restore_command(
                        mode,
                        b.before.get("kind").and_then(Value::as_str).unwrap_or_default(),
                        &b.path,
                    ));
                }
                Err(e) => self.say(format!(
                    "  ⚠ could not record the object as written in the backup ({e:#}): {} restores the object as it was read, and `kubectl replace` of it will conflict",
                    b.path.display()
                )),
            }
        }
        let backup = (!paths.is_empty()).then(|| paths.join(", "));
        let restore = (!restores.is_empty()).then(|| restores.join(" && "));
        (backup, restore)
    }

    /// A SelfSubjectAccessReview for each request.
    async fn check_permissions(&self, change: &Change) -> Result<(), Outcome> {
        for r in &change.requests {
            match api::can_i(self.client, &r.target, r.write.verb()).await {
                Ok(true) => {}
                Ok(false) => {
                    return Err(Outcome::NotPermitted {
                        missing: r.missing(),
                    });
                }
                Err(e) => {
                    return Err(Outcome::Failed {
                        error: format!("{e:#}"),
                    });
                }
            }
        }
        Ok(())
    }

    /// The server-side dry-run (`dryRun=All`) of each request.
    async fn rehearse(&mut self, change: &Change) -> Result<(), Outcome> {
        for r in &change.requests {
            match api::write(self.client, &r.target, &r.write, true).await {
                Ok(_) => self.say(format!("  server-side dry-run ({}): ok", r.describe())),
                Err(e) if e.is_forbidden() => {
                    return Err(Outcome::NotPermitted {
                        missing: format!("{}: {}", r.missing(), e.message),
                    });
                }
                Err(e)
                    if change.requests.len() > 1
                        && matches!(r.write, Write::Create(_))
                        && e.code == Some(409) =>
                {
                    // Recreate: the create cannot be rehearsed while the old object exists.
                    self.say("  server-side dry-run of the create: sent, answered 409 AlreadyExists, as expected while the old object exists (the delete is only rehearsed); the create itself is checked when applied");
                }
                Err(e) => {
                    return Err(Outcome::Failed {
                        error: format!("server-side dry-run refused it: {}", api_failure(&e)),
                    });
                }
            }
        }
        Ok(())
    }

    /// Asks before applying (and once more for a secret another tool manages).
    fn confirm(&mut self, change: &Change) -> Result<(), Outcome> {
        if let Some(managed) = &change.managed {
            self.say(format!("  ⚠ {managed}"));
            let answer = self
                .prompter
                .confirm_extra("  This secret is managed by another tool; edit it live anyway?");
            if let Some(stop) = unless_yes(
                answer,
                "managed secret: needs --allow-managed or a terminal",
            ) {
                return Err(stop);
            }
        }
        let question = format!("  Apply: {}?", change.title);
        let answer = self.prompter.confirm(&question, !change.destructive);
        match unless_yes(answer, "no terminal and no --yes: fix pending") {
            Some(stop) => Err(stop),
            None => Ok(()),
        }
    }

    /// Saves each object before it changes (0600); each backup with the
    /// requests that change its object.
    fn back_up(&self, change: &Change) -> Result<Vec<(Backup, Range<usize>)>, Outcome> {
        let mut saved: Vec<(Backup, Range<usize>)> = Vec::new();
        for b in &change.backups {
            match Backup::save(&self.backup_dir, &b.object, b.mode, &change.title) {
                Ok(backup) => saved.push((backup, b.requests.clone())),
                Err(e) => {
                    for (s, _) in &saved {
                        s.discard();
                    }
                    return Err(Outcome::Failed {
                        error: format!("could not save a backup, so nothing was changed: {e:#}"),
                    });
                }
            }
        }
        Ok(saved)
    }

    /// The whole new secret in a 0600 file, for the kubectl equivalent of
    /// a write that keeps other `auths` entries (a `kubectl create secret`
    /// would drop them). Written in a rehearsal too: the command printed
    /// there is the one a person runs instead, and it carries the
    /// resourceVersion the rehearsal was based on.
    fn object_file(&self, change: &Change) -> Result<Option<String>, Outcome> {
        if change.kept == 0 {
            return Ok(None);
        }
        let Some(body) = change.requests.iter().rev().find_map(|r| match &r.write {
            Write::Replace(b) | Write::Create(b) => Some(b),
            _ => None,
        }) else {
            return Ok(None);
        };
        let path = restore::backup_path(&self.backup_dir, body, ".new");
        let yaml = serde_saphyr::to_string(body)
            .context("render the new secret")
            .map_err(failed)?;
        restore::write_private(
            &path,
            &format!("# kubectl-pullfix: the secret as pullfix writes it (holds the new credential)\n{yaml}"),
        )
        .context("save the new secret for its kubectl equivalent")
        .map_err(failed)?;
        Ok(Some(path.display().to_string()))
    }

    /// Builds the change for a step, or says why there is none (an
    /// outcome: skipped, or failed to prepare).
    async fn prepare(&mut self, step: &PlannedStep, f: &Finding) -> Result<Change, Outcome> {
        let title = &step.title;
        match &step.action {
            Action::WriteSecret {
                namespace,
                name,
                server,
                exists,
                recreate,
            } => {
                let secret = SecretTarget {
                    namespace,
                    name,
                    server,
                    exists: *exists,
                    recreate: *recreate,
                };
                self.prepare_write_secret(title, &secret, f).await
            }
            Action::UpdateOtherNamespaces { server, secrets } => {
                self.prepare_other_namespaces(title, server, secrets, f)
                    .await
            }
            Action::AttachToServiceAccount {
                namespace,
                service_account,
                secret,
            } => {
                self.prepare_attach_to_service_account(title, namespace, service_account, secret)
                    .await
            }
            Action::AttachToWorkload { workload, secret } => {
                self.prepare_attach_to_workload(title, workload, secret)
                    .await
            }
            Action::SetImage {
                workload,
                container,
                image,
                choose_from,
            } => {
                let chosen;
                let image = if choose_from.is_empty() {
                    image
                } else {
                    chosen = self.choose_image(f, choose_from).await?;
                    &chosen
                };
                let title = if choose_from.is_empty() {
                    title.clone()
                } else {
                    format!(
                        "set image of {} container {container} to {image}",
                        workload.target()
                    )
                };
                self.prepare_set_image(&title, workload, container, image, f)
                    .await
            }
            Action::Restart { workload } => self.prepare_restart(title, workload).await,
            Action::RestartMany { workloads } => self.prepare_restart_many(title, workloads).await,
            Action::DeleteBarePod { namespace, pod } => {
                self.prepare_delete_bare_pod(title, namespace, pod).await
            }
        }
    }

    /// A new credential in the namespace's pull secret (updated, recreated
    /// or created).
    async fn prepare_write_secret(
        &mut self,
        title: &str,
        secret: &SecretTarget<'_>,
        f: &Finding,
    ) -> Result<Change, Outcome> {
        let SecretTarget {
            namespace,
            name,
            server,
            exists,
            recreate,
        } = *secret;
        let image = ImageRef::parse(&f.image)
            .context("the image reference does not parse")
            .map_err(failed)?;
        let (cred, tested) = self.credential(&image, namespace, name, f).await?;
        let current = if exists {
            self.get(&ObjectRef::new(Writable::Secret, namespace, name))
                .await
                .map_err(failed)?
        } else {
            None
        };
        let wrong_keys: Vec<String> = f
            .secrets
            .iter()
            .filter(|s| s.name == *name)
            .flat_map(|s| &s.problems)
            .filter_map(|p| match p {
                Problem::NoMatchingEntry {
                    closest: Some(c), ..
                } => Some(c.clone()),
                _ => None,
            })
            .collect();
        self.written = Some(cred.clone());
        let change = |file: Option<&str>| {
            secret_change(
                namespace,
                name,
                server,
                &cred,
                current.as_ref(),
                recreate,
                &wrong_keys,
                title,
                file,
            )
        };
        let first = change(None);
        let mut change = match self.object_file(&first)? {
            Some(file) => with_file_note(change(Some(&file)), &file),
            None => first,
        };
        change.notes.extend(tested.note());
        Ok(change)
    }

    /// The same credential in the other namespaces' stale copies.
    async fn prepare_other_namespaces(
        &mut self,
        title: &str,
        server: &str,
        secrets: &[(String, String)],
        f: &Finding,
    ) -> Result<Change, Outcome> {
        let image = ImageRef::parse(&f.image)
            .context("the image reference does not parse")
            .map_err(failed)?;
        let cred = match self.written.clone() {
            Some(c) => c,
            None => self.credential(&image, &f.namespace, "", f).await?.0,
        };
        let mut change = Change::empty(title);
        for (ns, name) in secrets {
            let Some(current) = self
                .get(&ObjectRef::new(Writable::Secret, ns, name))
                .await
                .map_err(failed)?
            else {
                continue;
            };
            let build = |file: Option<&str>| {
                secret_change(
                    ns,
                    name,
                    server,
                    &cred,
                    Some(&current),
                    false,
                    &[],
                    title,
                    file,
                )
            };
            let first = build(None);
            let c = match self.object_file(&first)? {
                Some(file) => with_file_note(build(Some(&file)), &file),
                None => first,
            };
            absorb(&mut change, c, Some(format!("{ns}/{name}:")));
        }
        Ok(change)
    }

    /// Many restarts as one change: one confirmation, a backup each. A
    /// paused or vanished workload is said and left out, not a reason to
    /// restart none of the others.
    async fn prepare_restart_many(
        &mut self,
        title: &str,
        workloads: &[Workload],
    ) -> Result<Change, Outcome> {
        let mut change = Change::empty(title);
        let mut left_out = Vec::new();
        for w in workloads {
            match self.prepare_restart(title, w).await {
                Ok(c) => absorb(
                    &mut change,
                    c,
                    Some(format!("{}/{}:", w.namespace, w.target())),
                ),
                Err(o) => left_out.push(format!(
                    "{}/{}: {}",
                    w.namespace,
                    w.target(),
                    outcome_line(&o)
                )),
            }
        }
        if change.requests.is_empty() {
            return Err(Outcome::Skipped {
                reason: format!("no workload could be restarted: {}", left_out.join("; ")),
            });
        }
        change.notes.extend(
            left_out
                .into_iter()
                .map(|l| format!("left out (restart it once it can be): {l}")),
        );
        Ok(change)
    }

    /// The pull secret added to the ServiceAccount's `imagePullSecrets`.
    async fn prepare_attach_to_service_account(
        &mut self,
        title: &str,
        namespace: &str,
        service_account: &str,
        secret: &str,
    ) -> Result<Change, Outcome> {
        let target = ObjectRef::new(Writable::ServiceAccount, namespace, service_account);
        let current = self
            .get(&target)
            .await
            .and_then(|c| {
                c.with_context(|| format!("ServiceAccount {namespace}/{service_account} not found"))
            })
            .map_err(failed)?;
        let mut list: Vec<Value> = current
            .get("imagePullSecrets")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if list.iter().any(|s| s["name"] == secret) {
            return Err(Outcome::Unchanged {
                detail: format!("{secret} is already attached"),
            });
        }
        let before: Vec<String> = list
            .iter()
            .filter_map(|s| s["name"].as_str().map(str::to_string))
            .collect();
        list.push(json!({"name": secret}));
        let kubectl = plan::commands(
            &Action::AttachToServiceAccount {
                namespace: namespace.to_string(),
                service_account: service_account.to_string(),
                secret: secret.to_string(),
            },
            &CommandFacts {
                service_account_secrets: &before,
                ..CommandFacts::default()
            },
        );
        Ok(Change {
            title: title.to_string(),
            diff: vec![format!(
                "imagePullSecrets: [{}] → [{}]",
                before.join(", "),
                before
                    .iter()
                    .map(String::as_str)
                    .chain([secret])
                    .collect::<Vec<_>>()
                    .join(", ")
            )],
            kubectl,
            requests: vec![Request {
                target,
                write: Write::MergePatch(
                    json!({"metadata": {"resourceVersion": current.pointer("/metadata/resourceVersion").unwrap_or(&Value::Null)}, "imagePullSecrets": list}),
                ),
            }],
            backups: vec![Backed {
                object: current,
                mode: Mode::Replace,
                requests: 0..1,
            }],
            destructive: false,
            managed: None,
            kept: 0,
            notes: Vec::new(),
        })
    }

    /// The pull secret added to the workload's pod template.
    async fn prepare_attach_to_workload(
        &mut self,
        title: &str,
        workload: &Workload,
        secret: &String,
    ) -> Result<Change, Outcome> {
        let (target, current) = self.workload(workload).await.map_err(failed)?;
        let existing: Vec<String> = current
            .pointer("/spec/template/spec/imagePullSecrets")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|s| s["name"].as_str().map(str::to_string))
            .collect();
        if existing.contains(secret) {
            return Err(Outcome::Unchanged {
                detail: format!("{secret} is already in the pod template"),
            });
        }
        let patch =
            json!({"spec": {"template": {"spec": {"imagePullSecrets": [{"name": secret}]}}}});
        let diff = format!(
            "spec.template.spec.imagePullSecrets: [{}] → [{}]",
            existing.join(", "),
            existing
                .iter()
                .cloned()
                .chain([secret.clone()])
                .collect::<Vec<_>>()
                .join(", ")
        );
        let kubectl = command(&Action::AttachToWorkload {
            workload: workload.clone(),
            secret: secret.clone(),
        });
        Ok(workload_change(
            title, target, current, patch, true, diff, kubectl,
        ))
    }

    /// Which of several tags to run, asked as a menu: each candidate with
    /// its digest and build date where the registry gives them, "type
    /// another" (checked against the registry before it is offered) and
    /// "none". Never guessed: without a person to ask, the step is skipped
    /// with the `--image` to pass.
    async fn choose_image(
        &mut self,
        f: &Finding,
        candidates: &[String],
    ) -> Result<String, Outcome> {
        let tags: Vec<&str> = candidates
            .iter()
            .map(|c| c.rsplit_once(':').map_or(c.as_str(), |(_, t)| t))
            .collect();
        let Some(first) = candidates.first() else {
            return Err(failed(anyhow::anyhow!("no tag to choose from")));
        };
        let repo = ImageRef::parse(first).map_err(|e| failed(anyhow::anyhow!("{e}")))?;
        if !self.prompter.chooses() {
            return Err(Outcome::Skipped {
                reason: format!(
                    "`{}` does not exist and {} tags could replace it ({}): pullfix does not guess; pass --image {}/{}:TAG with the one to run",
                    f.image,
                    candidates.len(),
                    tags.join(", "),
                    repo.domain,
                    repo.repository
                ),
            });
        }
        let cred = self.namespace_credential(&f.namespace, &repo).await;
        let infos = futures::future::join_all(candidates.iter().map(|c| {
            let prober = self.prober.clone();
            let cred = cred.clone();
            async move {
                let image = ImageRef::parse(c).ok()?;
                prober.tag_info(&image, cred.as_ref()).await
            }
        }));
        let infos = crate::terminal::spin(
            format!(
                "reading the digests of {} tags of {}/{}",
                candidates.len(),
                repo.domain,
                repo.repository
            ),
            infos,
        )
        .await;
        let mut items: Vec<String> = tags
            .iter()
            .zip(&infos)
            .map(|(t, info)| tag_item(t, info.as_ref()))
            .collect();
        let (another, none) = (items.len(), items.len() + 1);
        items.push("type another tag or image reference".into());
        items.push("none: leave the image as it is".into());
        let question = format!("  `{}` does not exist: run which tag instead?", f.image);
        for _ in 0..5 {
            match self.prompter.select(&question, &items).map_err(failed)? {
                // `another` is `candidates.len()`: the tags come first.
                Some(i) if i < another => {
                    return candidates.get(i).cloned().ok_or(Outcome::Declined);
                }
                Some(i) if i == another => {
                    let Some(typed) = self
                        .prompter
                        .text("  tag (or full image reference)", None)
                        .map_err(failed)?
                    else {
                        return Err(Outcome::Declined);
                    };
                    let wanted = typed_image(typed.trim(), &repo);
                    match self.image_exists(&wanted, cred.as_ref()).await {
                        Ok(()) => return Ok(wanted),
                        Err(why) => self.say(format!("  {why}: choose again")),
                    }
                }
                Some(i) if i == none => return Err(Outcome::Declined),
                _ => return Err(Outcome::Declined),
            }
        }
        Err(Outcome::Skipped {
            reason: "no tag chosen after 5 tries; pass --image with the one to run".into(),
        })
    }

    /// `Ok` when the reference resolves from here (with `cred`, the
    /// namespace's pull secret, if any), else why not.
    async fn image_exists(&self, reference: &str, cred: Option<&Credential>) -> Result<(), String> {
        let image = ImageRef::parse(reference)
            .map_err(|e| format!("`{reference}` is not a valid image reference: {e}"))?;
        let probe = self.prober.probe(&image, cred, "amd64").await;
        let attempt = probe.with_credential.as_ref().unwrap_or(&probe.anonymous);
        if attempt.ok() {
            return Ok(());
        }
        Err(format!(
            "`{reference}` does not resolve from here ({})",
            probe
                .failure
                .as_ref()
                .or(probe.anonymous_failure.as_ref())
                .map(crate::probe::describe_failure)
                .unwrap_or_else(|| "no answer".into())
        ))
    }

    /// A new image for the container, verified against the registry first.
    async fn prepare_set_image(
        &mut self,
        title: &str,
        workload: &Workload,
        container: &str,
        image: &str,
        f: &Finding,
    ) -> Result<Change, Outcome> {
        // Verified before it is offered, even when the user gave it.
        let new = ImageRef::parse(image)
            .map_err(|e| anyhow::anyhow!("--image `{image}` is not a valid reference: {e}"))
            .map_err(failed)?;
        let cred = self.namespace_credential(&workload.namespace, &new).await;
        let probe = self.prober.probe(&new, cred.as_ref(), "amd64").await;
        let ok = probe
            .with_credential
            .as_ref()
            .unwrap_or(&probe.anonymous)
            .ok();
        if !ok && probe.unreachable_here {
            // Not a verdict on the image: the node pulls it, or not.
            let why = crate::probe::local_failure(
                &new.domain,
                probe.failure.as_ref().or(probe.anonymous_failure.as_ref()),
            );
            self.say(format!("  ? {image} could not be checked from here: {why}"));
            let secrets: Vec<String> = f.secrets.iter().map(|s| s.name.clone()).collect();
            use crate::remediate::canary::{Auth, OnCluster};
            match self.canary(image, Auth::PodSecrets(&secrets), f).await {
                OnCluster::Pulled { .. } | OnCluster::Rehearsed => {}
                OnCluster::Refused(outcome) => return Err(outcome),
                OnCluster::NotRun(reason) => {
                    return Err(Outcome::Skipped {
                        reason: format!(
                            "{image} could not be checked ({why}; no canary: {reason}), so it is not set"
                        ),
                    });
                }
            }
        } else if !ok {
            return Err(Outcome::Failed {
                error: format!(
                    "{image} does not resolve from here, so it is not set: {}",
                    probe
                        .failure
                        .as_ref()
                        .or(probe.anonymous_failure.as_ref())
                        .map(crate::probe::describe_failure)
                        .unwrap_or_default()
                ),
            });
        }
        let (target, current) = self.workload(workload).await.map_err(failed)?;
        let key = if f.init_container {
            "initContainers"
        } else {
            "containers"
        };
        let old = current
            .pointer("/spec/template/spec")
            .and_then(|s| s.get(key))
            .and_then(Value::as_array)
            .and_then(|cs| cs.iter().find(|c| c["name"] == container))
            .and_then(|c| c["image"].as_str())
            .unwrap_or_default()
            .to_string();
        if old == image {
            // Already set (an earlier round, or someone else): writing it again
            // changes nothing, and the failing pods are the old ReplicaSet's,
            // kept while the new pods are not ready for another reason.
            return Err(Outcome::Unchanged {
                detail: format!(
                    "the template already uses {image}; the pods still failing are left from before it: `kubectl rollout status {} -n {}` shows what holds the rollout",
                    workload.target(),
                    workload.namespace
                ),
            });
        }
        let body =
            json!({"spec": {"template": {"spec": {key: [{"name": container, "image": image}]}}}});
        let diff = format!("{key}[{container}].image: {old} → {image}");
        let kubectl = command(&Action::SetImage {
            workload: workload.clone(),
            container: container.to_string(),
            image: image.to_string(),
            choose_from: Vec::new(),
        });
        Ok(workload_change(
            title, target, current, body, true, diff, kubectl,
        ))
    }

    /// `kubectl rollout restart`, unless the workload is paused.
    async fn prepare_restart(
        &mut self,
        title: &str,
        workload: &Workload,
    ) -> Result<Change, Outcome> {
        let (target, current) = self.workload(workload).await.map_err(failed)?;
        if current.pointer("/spec/paused").and_then(Value::as_bool) == Some(true) {
            return Err(Outcome::Skipped {
                reason: format!(
                    "{} is paused: resume it first (kubectl rollout resume {} -n {})",
                    workload.target(),
                    workload.target(),
                    workload.namespace
                ),
            });
        }
        let at = Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let body = json!({"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": at}}}}});
        let diff =
            format!("spec.template.metadata.annotations[kubectl.kubernetes.io/restartedAt]: {at}");
        let kubectl = command(&Action::Restart {
            workload: workload.clone(),
        });
        // Like kubectl's restart: not pinned to a resourceVersion.
        Ok(workload_change(
            title, target, current, body, false, diff, kubectl,
        ))
    }

    /// Deleting a bare pod (no controller recreates it).
    async fn prepare_delete_bare_pod(
        &mut self,
        title: &str,
        namespace: &str,
        pod: &str,
    ) -> Result<Change, Outcome> {
        let target = ObjectRef::new(Writable::Pod, namespace, pod);
        let current = self
            .get(&target)
            .await
            .and_then(|c| c.with_context(|| format!("pod {namespace}/{pod} not found")))
            .map_err(failed)?;
        self.say("  note: a bare pod is not recreated by any controller: after deleting it, recreate it from its manifest (the backup below works)");
        Ok(Change {
            title: title.to_string(),
            diff: vec![format!("pod {namespace}/{pod}: deleted")],
            kubectl: plan::commands(
                &Action::DeleteBarePod {
                    namespace: namespace.to_string(),
                    pod: pod.to_string(),
                },
                &CommandFacts::default(),
            ),
            requests: vec![Request {
                target,
                write: preconditioned_delete(&current),
            }],
            backups: vec![Backed {
                object: current,
                mode: Mode::Create,
                requests: 0..1,
            }],
            destructive: true,
            managed: None,
            kept: 0,
            notes: Vec::new(),
        })
    }

    async fn get(&self, target: &ObjectRef) -> anyhow::Result<Option<Value>> {
        Ok(target.get_opt(self.client).await?)
    }

    async fn workload(&self, w: &Workload) -> anyhow::Result<(ObjectRef, Value)> {
        let Some(resource) = Writable::workload(&w.kind) else {
            anyhow::bail!(
                "{} {}/{} cannot be changed by pullfix (only Deployments, StatefulSets and DaemonSets)",
                w.kind,
                w.namespace,
                w.name
            );
        };
        let target = ObjectRef::new(resource, &w.namespace, &w.name);
        let current = self
            .get(&target)
            .await?
            .with_context(|| format!("{} {}/{} not found", w.kind, w.namespace, w.name))?;
        Ok((target, current))
    }

    /// Finds a credential for `image`, from the flags, ECR, another
    /// namespace's secret that tests valid, or the terminal; tests it against
    /// the registry before returning it. A credential the registry rejects
    /// is the user's to correct, not an outage: typed at the terminal it can
    /// be typed again ([`TYPING_TRIES`] tries), and in the end the step is
    /// skipped, not failed.
    async fn credential(
        &mut self,
        image: &ImageRef,
        ns: &str,
        secret: &str,
        f: &Finding,
    ) -> Result<(Credential, Tested), Outcome> {
        let mut candidates = self.flag_credentials(image).await.map_err(failed)?;
        let is_ecr = crate::diagnose::secrets::is_ecr_host(&image.domain);
        if candidates.is_empty() && (self.creds.from_ecr || is_ecr) {
            // AWS is asked here, when an ECR token is wanted, and not before.
            let ecr = match &self.ecr {
                Some(e) if e.available().await => Some(e),
                _ => None,
            };
            match ecr {
                Some(ecr) => match ecr.login_password(image).await {
                    Ok(cred) => candidates.push((cred, "a fresh ECR token (GetAuthorizationToken)".into())),
                    Err(e) => self.say(format!("  ECR token: {e:#}")),
                },
                None if self.creds.from_ecr => return Err(Outcome::Failed { error: "--from-ecr: no AWS credentials are configured (AWS_PROFILE, AWS_ACCESS_KEY_ID, SSO...)".into() }),
                None => {}
            }
        }
        let undecodable = f
            .secrets
            .iter()
            .any(|r| r.name == secret && r.kubelet_refusal().is_some());
        if candidates.is_empty() && undecodable {
            // The secret's own credential for the registry: the kubelet never
            // sent it (it could not decode the secret), so it may well work.
            let own = self
                .get(&ObjectRef::new(Writable::Secret, ns, secret))
                .await
                .ok()
                .flatten()
                .and_then(|v| secret_credential(&v, image));
            if let Some(c) = own {
                candidates.push((
                    c,
                    format!("the credential already in {ns}/{secret} for {} (never sent: the kubelet could not decode the secret)", image.domain),
                ));
            }
        }
        if candidates.is_empty() {
            // A secret in another namespace for the same registry whose credential works.
            for o in self.other_secrets(image, ns, secret).await {
                candidates.push(o);
            }
        }
        if candidates.is_empty() && self.prompter.interactive() {
            return self.typed_until_it_works(image, f).await;
        }
        if candidates.is_empty() {
            return Err(Outcome::Skipped {
                reason: "no new credential: pass --username with --password-stdin, --from-docker-config, --from-secret NS/NAME or --from-ecr, or run in a terminal".into(),
            });
        }
        self.first_working(image, candidates, f).await
    }

    /// The credentials the flags give (`--username`/`--password-stdin`,
    /// `--from-docker-config`, `--from-secret`), each with where it came from.
    async fn flag_credentials(
        &self,
        image: &ImageRef,
    ) -> anyhow::Result<Vec<(Credential, String)>> {
        let mut candidates: Vec<(Credential, String)> = Vec::new();
        if let (Some(u), Some(p)) = (&self.creds.username, &self.creds.password) {
            candidates.push((
                Credential::new(u.clone(), secrecy::ExposeSecret::expose_secret(p)),
                "the credential from --username/--password-stdin".into(),
            ));
        }
        if let Some(path) = &self.creds.docker_config {
            candidates.push((
                docker_config_credential(path, image)?,
                format!(
                    "the credential from --from-docker-config {}",
                    path.display()
                ),
            ));
        }
        if let Some(src) = &self.creds.from_secret {
            let (sns, sname) = src
                .split_once('/')
                .with_context(|| format!("--from-secret `{src}` is not NAMESPACE/NAME"))?;
            let v = self
                .get(&ObjectRef::new(Writable::Secret, sns, sname))
                .await?
                .with_context(|| format!("secret {src} not found"))?;
            candidates.push((
                secret_credential(&v, image).with_context(|| {
                    format!("secret {src} has no credential for {}", image.domain)
                })?,
                format!("the credential in secret {src}"),
            ));
        }
        Ok(candidates)
    }

    /// A credential typed at the terminal; `None` when none was given.
    fn typed_credential(
        &mut self,
        image: &ImageRef,
        username: Option<&str>,
    ) -> anyhow::Result<Option<Credential>> {
        let user = self
            .prompter
            .text(&format!("  username for {}", image.domain), username)?;
        let Some(user) = user else {
            return Ok(None);
        };
        let pass = self.prompter.secret(&format!(
            "  password or token for {} (hidden)",
            image.domain
        ))?;
        Ok(pass.map(|p| Credential::new(user, p)))
    }

    /// Asks for a credential until the registry accepts one, up to
    /// [`TYPING_TRIES`] times (a mistyped password is typed again).
    async fn typed_until_it_works(
        &mut self,
        image: &ImageRef,
        f: &Finding,
    ) -> Result<(Credential, Tested), Outcome> {
        let mut username = f.secrets.iter().find_map(|s| s.username.clone());
        let mut tries = 0;
        loop {
            tries += 1;
            let Some(cred) = self
                .typed_credential(image, username.as_deref())
                .map_err(failed)?
            else {
                return Err(Outcome::Skipped {
                    reason: "no credential was typed; the secret was not changed".into(),
                });
            };
            username = Some(cred.username.clone());
            match self
                .test_credential(image, &cred, "the credential typed at the terminal")
                .await
            {
                Ok(()) => return Ok((cred, Tested::Here)),
                Err(r) if r.rejected && tries < TYPING_TRIES => self.say(format!(
                    "  type it again ({} tr{} left)",
                    TYPING_TRIES - tries,
                    if TYPING_TRIES - tries == 1 {
                        "y"
                    } else {
                        "ies"
                    }
                )),
                Err(r) if r.rejected => {
                    return Err(Outcome::Skipped {
                        reason: format!(
                            "the registry rejected the credential typed {TYPING_TRIES} times; the secret was not changed — check the user name, get the current password or token from whoever owns the registry account, then run pullfix again"
                        ),
                    });
                }
                Err(Untested {
                    local: Some(why), ..
                }) => return self.test_on_cluster(image, cred, why, f).await,
                Err(r) => {
                    return Err(Outcome::Failed {
                        error: format!("{}; the secret was not changed", r.text),
                    });
                }
            }
        }
    }

    /// Tests a credential against the registry (the image must resolve);
    /// says the result either way.
    async fn test_credential(
        &mut self,
        image: &ImageRef,
        cred: &Credential,
        source: &str,
    ) -> Result<(), Untested> {
        let probe = self.prober.probe(image, Some(cred), "amd64").await;
        match &probe.with_credential {
            Some(a) if a.ok() => {
                self.say(format!(
                    "  {source} (user `{}`): tested against {}: the image resolves",
                    crate::sanitize::line(&cred.username),
                    crate::sanitize::line(&image.domain)
                ));
                Ok(())
            }
            _ if probe.unreachable_here => {
                let why = crate::probe::local_failure(&image.domain, probe.failure.as_ref());
                self.say(format!(
                    "  ? {source} (user `{}`): could not be tested from here: {why}",
                    crate::sanitize::line(&cred.username),
                ));
                Err(Untested {
                    rejected: false,
                    local: Some(why),
                    text: String::new(),
                })
            }
            a => {
                let rejected = matches!(
                    a,
                    Some(crate::probe::Attempt::Failed {
                        status: Some(401 | 403),
                        ..
                    })
                );
                let text = format!(
                    "{source} (user `{}`) does not work against {}: {}",
                    crate::sanitize::line(&cred.username),
                    crate::sanitize::line(&image.domain),
                    probe
                        .failure
                        .as_ref()
                        .map(crate::probe::describe_failure)
                        .unwrap_or_else(|| "no answer".into())
                );
                self.say(format!("  ✘ {text}"));
                Err(Untested {
                    rejected,
                    local: None,
                    text,
                })
            }
        }
    }

    /// The first candidate the registry accepts for the image. When none
    /// works: skipped if the registry rejected the last one (the user can
    /// give the right one), failed if it could not be tested.
    async fn first_working(
        &mut self,
        image: &ImageRef,
        candidates: Vec<(Credential, String)>,
        f: &Finding,
    ) -> Result<(Credential, Tested), Outcome> {
        if self.creds.probe_from_cluster
            && let Some((cred, source)) = candidates.first().cloned()
        {
            self.say(format!(
                "  {source} (user `{}`): to be tested on the cluster (--probe-from-cluster)",
                crate::sanitize::line(&cred.username)
            ));
            return self
                .test_on_cluster(image, cred, "--probe-from-cluster".into(), f)
                .await;
        }
        let mut last = None;
        let mut untestable = None;
        for (cred, source) in candidates {
            match self.test_credential(image, &cred, &source).await {
                Ok(()) => return Ok((cred, Tested::Here)),
                Err(Untested {
                    local: Some(why), ..
                }) => {
                    untestable.get_or_insert((cred, why));
                }
                Err(r) => last = Some(r),
            }
        }
        let rejected = last.as_ref().is_some_and(|r| r.rejected);
        if let (Some((cred, why)), false) = (untestable, rejected) {
            return self.test_on_cluster(image, cred, why, f).await;
        }
        Err(match last {
            Some(r) if r.rejected => Outcome::Skipped {
                reason: "the registry rejected the credential given; the secret was not changed — give the current password or token (--password-stdin, --from-docker-config, --from-secret) and run again".into(),
            },
            Some(r) => Outcome::Failed {
                error: format!("{}; the secret was not changed", r.text),
            },
            None => Outcome::Skipped {
                reason: "no new credential; the secret was not changed".into(),
            },
        })
    }

    /// A credential this machine could not test: tested by a canary pod on
    /// a node where the workload failed; when no canary can run, written
    /// only on purpose ([`Executor::untested`]).
    async fn test_on_cluster(
        &mut self,
        image: &ImageRef,
        cred: Credential,
        why: String,
        f: &Finding,
    ) -> Result<(Credential, Tested), Outcome> {
        use crate::remediate::canary::{Auth, OnCluster};
        let auth = Auth::Candidate {
            server: &image.domain,
            cred: &cred,
        };
        match self.canary(&f.image, auth, f).await {
            OnCluster::Pulled { node } => Ok((cred, Tested::OnNode(node))),
            OnCluster::Rehearsed => Ok((cred, Tested::Rehearsed)),
            OnCluster::Refused(outcome) => Err(outcome),
            OnCluster::NotRun(reason) => {
                self.say(format!("  no canary: {reason}"));
                self.untested(cred, format!("{why}; no canary: {reason}"))
            }
        }
    }

    /// A credential this machine could not test: written only on purpose.
    /// `--allow-untested` writes it; a person at a terminal is asked, with
    /// no as the default; `--yes` alone does not cover it.
    fn untested(&mut self, cred: Credential, why: String) -> Result<(Credential, Tested), Outcome> {
        let question = "  write it untested? the nodes may reach and trust the registry where this machine does not";
        let yes = if self.creds.allow_untested {
            self.say(format!("{question} yes (--allow-untested)"));
            true
        } else if self.prompter.chooses() {
            matches!(
                self.prompter.confirm(question, false).map_err(failed)?,
                Answer::Yes
            )
        } else {
            false
        };
        if yes {
            return Ok((cred, Tested::Untested(why)));
        }
        Err(Outcome::Skipped {
            reason: format!(
                "the credential could not be tested from here ({why}); the secret was not changed — to write it untested, pass --allow-untested (--yes alone does not)"
            ),
        })
    }

    /// The credential the namespace's pull secrets hold for an image (used
    /// to verify a new image reference before setting it).
    async fn namespace_credential(&self, ns: &str, image: &ImageRef) -> Option<Credential> {
        let all = api::list_all_as::<Secret, Value>(self.client, Some(ns), &pull_secrets())
            .await
            .ok()?;
        all.iter().find_map(|v| secret_credential(v, image))
    }

    async fn other_secrets(
        &mut self,
        image: &ImageRef,
        ns: &str,
        secret: &str,
    ) -> Vec<(Credential, String)> {
        let Ok(all) = api::list_all_as::<Secret, Value>(self.client, None, &pull_secrets()).await
        else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for v in all {
            let (sns, sname) = (
                v.pointer("/metadata/namespace")
                    .and_then(Value::as_str)
                    .unwrap_or_default(),
                v.pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .unwrap_or_default(),
            );
            if sns == ns && sname == secret {
                continue;
            }
            if let Some(c) = secret_credential(&v, image) {
                let probe = self.prober.probe(image, Some(&c), "amd64").await;
                if probe
                    .with_credential
                    .as_ref()
                    .is_some_and(crate::probe::Attempt::ok)
                {
                    out.push((c, format!("the credential in secret {sns}/{sname}")));
                    break;
                }
            }
        }
        out
    }
}

/// How often a credential typed at the terminal may be typed again after
/// the registry rejected it.
const TYPING_TRIES: usize = 3;

/// A credential that did not resolve the image: why (as said), and whether
/// the registry answered with a rejection (401/403) rather than not at all.
struct Untested {
    rejected: bool,
    /// Why this machine could not test it (TLS trust, DNS, connect): no
    /// evidence against the credential.
    local: Option<String>,
    text: String,
}

/// One line of the tag menu: `v2.1.0  sha256:0123456789ab  built 2024-05-01 10:00`.
fn tag_item(tag: &str, info: Option<&crate::registry::client::TagInfo>) -> String {
    let mut item = tag.to_string();
    if let Some(d) = info.and_then(|i| i.digest.as_deref()) {
        let short = d.strip_prefix("sha256:").map_or(d.to_string(), |h| {
            format!("sha256:{}", &h[..h.len().min(12)])
        });
        item.push_str(&format!("  {short}"));
    }
    if let Some(c) = info.and_then(|i| i.created.as_deref()) {
        let when = chrono::DateTime::parse_from_rfc3339(c).map_or_else(
            |_| c.to_string(),
            |t| {
                t.with_timezone(&Utc)
                    .format("%Y-%m-%d %H:%M UTC")
                    .to_string()
            },
        );
        item.push_str(&format!("  built {when}"));
    }
    item
}

/// What was typed at "type another": a tag of the same repository, or a
/// whole reference (anything with a `/`, or a digest).
fn typed_image(typed: &str, repo: &ImageRef) -> String {
    if typed.contains('/') {
        typed.to_string()
    } else if typed.starts_with("sha256:") {
        format!("{}/{}@{typed}", repo.domain, repo.repository)
    } else {
        format!("{}/{}:{typed}", repo.domain, repo.repository)
    }
}

/// The outcome that stops a step when the answer is not yes.
fn unless_yes(answer: anyhow::Result<Answer>, pending: &str) -> Option<Outcome> {
    match answer {
        Ok(Answer::Yes) => None,
        Ok(Answer::No) => Some(Outcome::Declined),
        Ok(Answer::Pending) => Some(Outcome::Skipped {
            reason: pending.into(),
        }),
        Err(e) => Some(failed(e)),
    }
}

fn resource_name(r: &Request) -> String {
    let group = r.target.resource.group();
    let plural = r.target.resource.plural();
    if group.is_empty() {
        plural.to_string()
    } else {
        format!("{plural}.{group}")
    }
}

/// Pull secrets (`type=kubernetes.io/dockerconfigjson`).
fn pull_secrets() -> ListQuery {
    ListQuery::fields("type=kubernetes.io/dockerconfigjson")
}

/// A delete that only happens if the object is still the one read.
fn preconditioned_delete(current: &Value) -> Write {
    let field = |k: &str| {
        current
            .get("metadata")
            .and_then(|m| m.get(k))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    Write::Delete {
        uid: field("uid"),
        resource_version: field("resourceVersion"),
    }
}

/// The pull secret a [`Action::WriteSecret`] step writes.
struct SecretTarget<'a> {
    namespace: &'a str,
    name: &'a str,
    server: &'a str,
    exists: bool,
    recreate: bool,
}

/// The one kubectl command of a workload step (from the plan's rendering).
fn command(action: &Action) -> String {
    plan::commands(action, &CommandFacts::default()).join(" && ")
}

/// A strategic-merge patch of a workload, backed up before it is applied.
/// `pin` carries the resourceVersion the change was based on, so a
/// concurrent edit is a conflict rather than overwritten.
/// Adds one change's diff, commands, requests and backups to a larger one
/// (the backups' request ranges shifted to match), under a heading.
fn absorb(change: &mut Change, c: Change, heading: Option<String>) {
    let offset = change.requests.len();
    if let Some(h) = heading {
        change.diff.push(h);
        change
            .diff
            .extend(c.diff.into_iter().map(|l| format!("  {l}")));
    } else {
        change.diff.extend(c.diff);
    }
    change.kubectl.extend(c.kubectl);
    change.notes.extend(c.notes);
    change.requests.extend(c.requests);
    change.backups.extend(c.backups.into_iter().map(|b| Backed {
        requests: b.requests.start + offset..b.requests.end + offset,
        ..b
    }));
    if change.managed.is_none() {
        change.managed = c.managed;
    }
}

fn workload_change(
    title: &str,
    target: ObjectRef,
    current: Value,
    mut body: Value,
    pin: bool,
    diff: String,
    kubectl: String,
) -> Change {
    if pin {
        let rv = current
            .pointer("/metadata/resourceVersion")
            .cloned()
            .unwrap_or(Value::Null);
        if let Some(b) = body.as_object_mut() {
            b.insert("metadata".into(), json!({ "resourceVersion": rv }));
        }
    }
    Change {
        title: title.to_string(),
        diff: vec![diff],
        kubectl: vec![kubectl],
        requests: vec![Request {
            target,
            write: Write::StrategicPatch(body),
        }],
        backups: vec![Backed {
            object: current,
            mode: Mode::Replace,
            requests: 0..1,
        }],
        destructive: false,
        managed: None,
        kept: 0,
        notes: Vec::new(),
    }
}

/// The change, saying that its kubectl equivalent reads a file holding the
/// new credential.
fn with_file_note(mut change: Change, file: &str) -> Change {
    change.notes.push(format!(
        "{file} holds the whole new secret, the new credential included (mode 0600): the kubectl equivalent reads it; delete it once it is no longer needed"
    ));
    change
}

fn record(
    step: &PlannedStep,
    command: Option<String>,
    backup: Option<String>,
    restore: Option<String>,
    outcome: Outcome,
) -> StepRecord {
    StepRecord {
        at: Utc::now(),
        title: step.title.clone(),
        command,
        backup,
        restore_command: restore,
        outcome,
    }
}

/// One line for an outcome.
pub(crate) fn outcome_line(o: &Outcome) -> String {
    match o {
        Outcome::Applied { detail } => format!("✔ applied ({detail})"),
        Outcome::Rehearsed { detail } => format!("✔ rehearsed: {detail}"),
        Outcome::Declined => "✘ declined: not applied".into(),
        Outcome::Skipped { reason } => format!("– skipped: {reason}"),
        Outcome::Unchanged { detail } => format!("✔ unchanged: {detail}"),
        Outcome::NotPermitted { missing } => format!(
            "✘ not permitted: your identity lacks `{missing}`; ask for it or hand this step to someone who has it"
        ),
        Outcome::Failed { error } => format!("✘ failed: {error}"),
    }
}

/// The credential a secret holds for an image's registry (kubelet matching).
fn secret_credential(secret: &Value, image: &ImageRef) -> Option<Credential> {
    let data: BTreeMap<String, Vec<u8>> = secret["data"]
        .as_object()?
        .iter()
        .filter_map(|(k, v)| Some((k.clone(), STANDARD.decode(v.as_str()?).ok()?)))
        .collect();
    let entries = crate::registry::keyring::parse_pull_secret(DOCKERCONFIGJSON, &data)
        .or_else(|_| {
            crate::registry::keyring::parse_pull_secret(crate::registry::keyring::DOCKERCFG, &data)
        })
        .ok()?;
    let mut k = crate::registry::keyring::Keyring::default();
    k.add("source", &entries);
    k.lookup(&image.name()).first().map(|(c, _)| (*c).clone())
}

/// Reads a credential for `image` from a docker config file (`auths` only;
/// credential helpers are not run).
pub(crate) fn docker_config_credential(
    path: &Path,
    image: &ImageRef,
) -> anyhow::Result<Credential> {
    let text =
        std::fs::read(path).with_context(|| format!("read docker config {}", path.display()))?;
    let data = BTreeMap::from([(".dockerconfigjson".to_string(), text)]);
    let entries = crate::registry::keyring::parse_pull_secret(DOCKERCONFIGJSON, &data)
        .map_err(|e| anyhow::anyhow!("docker config {}: {e}", path.display()))?;
    let mut k = crate::registry::keyring::Keyring::default();
    k.add("docker-config", &entries);
    k.lookup(&image.name()).first().map(|(c, _)| (*c).clone()).with_context(|| {
        format!(
            "docker config {} has no `auths` entry for {} (credential helpers such as credsStore are not run)\nhelp: docker login {} first, or use --username with --password-stdin",
            path.display(),
            image.domain,
            image.domain
        )
    })
}

/// Builds the secret change: the new `.dockerconfigjson` keeps other
/// entries, replaces the registry's, and drops a wrong key for it. Pure.
#[allow(clippy::too_many_arguments)]
fn secret_change(
    ns: &str,
    name: &str,
    server: &str,
    cred: &Credential,
    current: Option<&Value>,
    recreate: bool,
    wrong_keys: &[String],
    title: &str,
    object_file: Option<&str>,
) -> Change {
    let MergedConfig {
        old_config,
        auths,
        same,
        encoded,
        rewritten,
        undecodable,
    } = merged_config(current, server, cred, wrong_keys);

    let mut diff = secret_diff(
        current,
        &old_config,
        &auths,
        server,
        cred,
        recreate,
        wrong_keys,
        &same,
    );
    if let Some(why) = rewritten {
        diff.insert(
            0,
            format!("~ .dockerconfigjson rewritten from scratch: {why} (nothing in it is kept)"),
        );
    }
    for (key, error) in &undecodable {
        diff.insert(
            0,
            format!(
                "- auths[{key}]: dropped, the kubelet cannot decode it ({error}) and then refuses the whole secret"
            ),
        );
    }
    let kept = auths.keys().filter(|k| k.as_str() != server).count();
    let kubectl = plan::commands(
        &Action::WriteSecret {
            namespace: ns.to_string(),
            name: name.to_string(),
            server: server.to_string(),
            exists: current.is_some(),
            recreate,
        },
        &CommandFacts {
            username: Some(&cred.username),
            other_entries: kept,
            object_file,
            ..CommandFacts::default()
        },
    );
    let managed = current.and_then(|c| managed_note(c, ns, name));
    let mut requests = Vec::new();
    let mut backups = Vec::new();
    match current {
        Some(cur) if !recreate => {
            let mut new = cur.clone();
            if let Some(obj) = new.as_object_mut() {
                let data = obj.entry("data").or_insert_with(|| json!({}));
                if !data.is_object() {
                    *data = json!({});
                }
                if let Some(d) = data.as_object_mut() {
                    d.insert(".dockerconfigjson".into(), json!(encoded));
                }
                if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
                    m.remove("managedFields");
                }
            }
            requests.push(Request::new(
                Writable::Secret,
                ns,
                name,
                Write::Replace(new),
            ));
            backups.push(Backed {
                object: cur.clone(),
                mode: Mode::Replace,
                requests: 0..1,
            });
        }
        Some(cur) => {
            requests.push(Request::new(
                Writable::Secret,
                ns,
                name,
                preconditioned_delete(cur),
            ));
            requests.push(Request::new(
                Writable::Secret,
                ns,
                name,
                Write::Create(json!({
                    "apiVersion": "v1", "kind": "Secret",
                    "metadata": {"name": name, "namespace": ns, "labels": cur.pointer("/metadata/labels").unwrap_or(&Value::Null), "annotations": cur.pointer("/metadata/annotations").unwrap_or(&Value::Null)},
                    "type": DOCKERCONFIGJSON, "data": {".dockerconfigjson": encoded},
                })),
            ));
            backups.push(Backed {
                object: cur.clone(),
                mode: Mode::Recreate,
                requests: 0..2,
            });
        }
        None => {
            requests.push(Request::new(
                Writable::Secret,
                ns,
                name,
                Write::Create(json!({
                    "apiVersion": "v1", "kind": "Secret",
                    "metadata": {"name": name, "namespace": ns},
                    "type": DOCKERCONFIGJSON, "data": {".dockerconfigjson": encoded},
                })),
            ));
        }
    }
    Change {
        title: title.into(),
        diff,
        kubectl,
        requests,
        backups,
        destructive: recreate,
        managed,
        kept,
        notes: Vec::new(),
    }
}

/// The secret's docker config with the new credential in it.
struct MergedConfig {
    /// As it was (`{"auths": {}}` when there was none).
    old_config: Value,
    /// The new `auths`.
    auths: serde_json::Map<String, Value>,
    /// The keys that named the same registry (replaced).
    same: Vec<String>,
    /// The new config, base64 for the secret's data.
    encoded: String,
    /// Why the old config was dropped and the new one written from
    /// scratch (`` `weird`'s `.dockerconfigjson` is a JSON array, not an object ``).
    rewritten: Option<String>,
    /// Entries for other registries the kubelet cannot decode (`auth` not
    /// base64, not an object, ...), with its error: dropped, since one of
    /// them makes it refuse the whole secret and every pull of the pod.
    undecodable: Vec<(String, String)>,
}

/// Keeps other entries, drops the wrong keys and any key naming the same
/// registry (scheme or /v1/ variants), and puts the credential in.
fn merged_config(
    current: Option<&Value>,
    server: &str,
    cred: &Credential,
    wrong_keys: &[String],
) -> MergedConfig {
    let (old_config, rewritten) = old_docker_config(current);
    let mut auths = old_config
        .get("auths")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    for k in wrong_keys {
        auths.remove(k);
    }
    // Replace any key that names the same registry (scheme or /v1/ variants).
    let same: Vec<String> = auths
        .keys()
        .filter(|k| normalize_key(k).as_deref() == Some(server))
        .cloned()
        .collect();
    for k in &same {
        auths.remove(k);
    }
    let undecodable: Vec<(String, String)> = auths
        .iter()
        .filter_map(|(k, v)| entry_refusal(v).map(|e| (k.clone(), e)))
        .collect();
    for (k, _) in &undecodable {
        auths.remove(k);
    }
    let auth = STANDARD.encode(format!("{}:{}", cred.username, cred.password()));
    auths.insert(
        server.to_string(),
        json!({"username": cred.username, "password": cred.password(), "auth": auth}),
    );
    let mut config = old_config.as_object().cloned().unwrap_or_default();
    config.insert("auths".into(), Value::Object(auths.clone()));
    let encoded = STANDARD.encode(serde_json::to_vec(&config).unwrap_or_default());
    MergedConfig {
        old_config,
        auths,
        same,
        encoded,
        rewritten,
        undecodable,
    }
}

/// The secret's `.dockerconfigjson` as a JSON object to merge into, and,
/// when it is there but cannot be merged into (not base64, not JSON, a
/// JSON array, `auths` not an object), why: it is then rewritten from
/// scratch (it is being replaced anyway). No secret or a secret without
/// the key starts from `{"auths": {}}` with nothing to say.
fn old_docker_config(current: Option<&Value>) -> (Value, Option<String>) {
    let empty = || json!({"auths": {}});
    let name = current
        .and_then(|c| c.pointer("/metadata/name"))
        .and_then(Value::as_str)
        .unwrap_or("the secret");
    let Some(raw) = current.and_then(|c| c.pointer("/data/.dockerconfigjson")) else {
        return (empty(), None);
    };
    let why = |what: String| Some(format!("`{name}`'s `.dockerconfigjson` {what}"));
    let Some(text) = raw.as_str() else {
        let kind = crate::registry::keyring::json_kind(raw);
        return (empty(), why(format!("is stored as {kind}, not a string")));
    };
    let Ok(bytes) = STANDARD.decode(text) else {
        return (empty(), why("is not valid base64".into()));
    };
    let value: Value = match serde_json::from_slice(&bytes) {
        Ok(v) => v,
        Err(_) => return (empty(), why("is not valid JSON".into())),
    };
    match crate::registry::keyring::config_shape(".dockerconfigjson", &value) {
        // Keep what is there (credHelpers, ...): `auths` is added.
        None | Some(SecretProblem::NoAuths) => (value, None),
        Some(problem) => (empty(), Some(format!("`{name}`'s {problem}"))),
    }
}

/// The warning for a secret another tool manages (its live edits are
/// reverted at the next sync).
fn managed_note(c: &Value, ns: &str, name: &str) -> Option<String> {
    let view = crate::diagnose::secrets::SecretView {
        name: name.into(),
        namespace: ns.into(),
        labels: serde_json::from_value(c.pointer("/metadata/labels").cloned().unwrap_or_default())
            .unwrap_or_default(),
        annotations: serde_json::from_value(
            c.pointer("/metadata/annotations")
                .cloned()
                .unwrap_or_default(),
        )
        .unwrap_or_default(),
        owners: c
            .pointer("/metadata/ownerReferences")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|o| {
                (
                    o["kind"].as_str().unwrap_or_default().to_string(),
                    o["name"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect(),
        ..Default::default()
    };
    crate::diagnose::secrets::detect_manager(&view).map(|m| {
        format!(
            "managed by {}{}: a live edit will be reverted at its next sync; the lasting fix is at the source of truth",
            m.tool,
            m.source.map(|s| format!(" ({s})")).unwrap_or_default()
        )
    })
}

/// A redacted view of the change: keys and usernames, never passwords.
#[allow(clippy::too_many_arguments)]
fn secret_diff(
    current: Option<&Value>,
    old: &Value,
    new: &serde_json::Map<String, Value>,
    server: &str,
    cred: &Credential,
    recreate: bool,
    wrong: &[String],
    same: &[String],
) -> Vec<String> {
    let mut lines = Vec::new();
    match current {
        None => lines.push(format!("+ secret (type {DOCKERCONFIGJSON})")),
        Some(c) if recreate => lines.push(format!(
            "~ type: {} → {DOCKERCONFIGJSON} (delete and create)",
            c["type"].as_str().unwrap_or("?")
        )),
        Some(_) => {}
    }
    let old_auths = old["auths"].as_object().cloned().unwrap_or_default();
    for k in wrong
        .iter()
        .chain(same.iter().filter(|k| k.as_str() != server))
    {
        lines.push(format!("- auths[{k}]"));
    }
    let old_cred = old_auths.get(server).and_then(|e| {
        e["auth"].as_str().and_then(decode_auth).or_else(|| {
            Some(Credential::new(
                e["username"].as_str()?,
                e["password"].as_str()?,
            ))
        })
    });
    match old_cred {
        Some(o) => lines.push(format!(
            "~ auths[{server}]: {}, password {} (not shown)",
            if o.username == cred.username {
                format!("username {} (unchanged)", cred.username)
            } else {
                format!("username {} → {}", o.username, cred.username)
            },
            if o.password() == cred.password() {
                "unchanged"
            } else {
                "changed"
            }
        )),
        None => lines.push(format!(
            "+ auths[{server}]: username {}, password (not shown)",
            cred.username
        )),
    }
    let kept = new.keys().filter(|k| k.as_str() != server).count();
    if kept > 0 {
        lines.push(format!(
            "  ({kept} other auths entr{} kept as they are)",
            if kept == 1 { "y" } else { "ies" }
        ));
    }
    lines
}

/// The default backup directory: `$XDG_STATE_HOME/kubectl-pullfix/backups`
/// or `~/.local/state/kubectl-pullfix/backups`.
pub fn default_backup_dir() -> PathBuf {
    let base = std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("kubectl-pullfix/backups")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cred(p: &str) -> Credential {
        Credential::new("u", p)
    }

    fn secret(auths: Value, type_: &str) -> Value {
        json!({"apiVersion": "v1", "kind": "Secret", "type": type_,
               "metadata": {"name": "regcred", "namespace": "shop", "resourceVersion": "42", "uid": "x"},
               "data": {".dockerconfigjson": STANDARD.encode(json!({"auths": auths}).to_string())}})
    }

    fn decoded(req: &Request) -> Value {
        let d = req.write.body().unwrap()["data"][".dockerconfigjson"]
            .as_str()
            .unwrap();
        serde_json::from_slice(&STANDARD.decode(d).unwrap()).unwrap()
    }

    #[test]
    fn update_keeps_other_entries_carries_resource_version_and_redacts() {
        let cur = secret(
            json!({"reg:5000": {"username": "u", "password": "old"}, "other.io": {"username": "x", "password": "y"}}),
            DOCKERCONFIGJSON,
        );
        let c = secret_change(
            "shop",
            "regcred",
            "reg:5000",
            &cred("n3w-s3cret"),
            Some(&cur),
            false,
            &[],
            "t",
            None,
        );
        assert_eq!(c.requests.len(), 1);
        assert!(matches!(c.requests[0].write, Write::Replace(_)));
        assert_eq!(c.requests[0].describe(), "update secrets shop/regcred");
        assert_eq!(
            c.requests[0].write.body().unwrap()["metadata"]["resourceVersion"],
            "42"
        );
        let cfg = decoded(&c.requests[0]);
        assert_eq!(cfg["auths"]["reg:5000"]["password"], "n3w-s3cret");
        assert_eq!(cfg["auths"]["other.io"]["password"], "y");
        let shown = format!("{:?}{:?}", c.diff, c.kubectl);
        assert!(
            !shown.contains("n3w-s3cret") && !shown.contains("old\""),
            "{shown}"
        );
        assert!(shown.contains("password changed (not shown)"), "{shown}");
        // A field is shown as changing only when it does.
        assert!(shown.contains("username u (unchanged)"), "{shown}");
        assert!(!shown.contains("u → u"), "{shown}");
        let renamed = secret_change(
            "shop",
            "regcred",
            "reg:5000",
            &Credential::new("robot", "n3w-s3cret"),
            Some(&cur),
            false,
            &[],
            "t",
            None,
        );
        assert!(
            renamed
                .diff
                .iter()
                .any(|l| l.contains("username u → robot")),
            "{:?}",
            renamed.diff
        );
        assert!(c.kubectl[0].contains("--docker-password=<password>"));
    }

    #[test]
    fn a_docker_config_of_the_wrong_shape_is_rewritten_and_the_diff_says_why() {
        let with_data = |data: Value, type_: &str| {
            json!({"apiVersion": "v1", "kind": "Secret", "type": type_,
                   "metadata": {"name": "weird", "namespace": "shop", "resourceVersion": "7"},
                   "data": data})
        };
        let b64 = |t: &str| json!({ ".dockerconfigjson": STANDARD.encode(t) });
        for (cur, why) in [
            (
                with_data(b64("[1,2]"), "Opaque"),
                "`weird`'s `.dockerconfigjson` is a JSON array, not an object",
            ),
            (
                with_data(b64(r#"{"auths":"x"}"#), DOCKERCONFIGJSON),
                "`weird`'s `.dockerconfigjson`'s `auths` is a JSON string, not an object",
            ),
            (
                with_data(b64("{not json"), DOCKERCONFIGJSON),
                "`weird`'s `.dockerconfigjson` is not valid JSON",
            ),
            (
                with_data(json!({".dockerconfigjson": "%%%"}), DOCKERCONFIGJSON),
                "`weird`'s `.dockerconfigjson` is not valid base64",
            ),
            (
                with_data(json!({".dockerconfigjson": [1]}), DOCKERCONFIGJSON),
                "`weird`'s `.dockerconfigjson` is stored as a JSON array, not a string",
            ),
        ] {
            for recreate in [false, true] {
                let c = secret_change(
                    "shop",
                    "weird",
                    "reg:5000",
                    &cred("n3w"),
                    Some(&cur),
                    recreate,
                    &[],
                    "t",
                    None,
                );
                assert!(
                    c.diff
                        .first()
                        .is_some_and(|l| l.contains(why) && l.contains("rewritten from scratch")),
                    "{:?}",
                    c.diff
                );
                let cfg = decoded(c.requests.last().unwrap());
                assert_eq!(cfg["auths"]["reg:5000"]["password"], "n3w");
                assert_eq!(cfg["auths"].as_object().unwrap().len(), 1);
            }
        }
        // `data` itself of the wrong shape: replaced, no panic.
        let c = secret_change(
            "shop",
            "weird",
            "reg:5000",
            &cred("n3w"),
            Some(&with_data(json!("x"), DOCKERCONFIGJSON)),
            false,
            &[],
            "t",
            None,
        );
        assert_eq!(
            decoded(&c.requests[0])["auths"]["reg:5000"]["password"],
            "n3w"
        );
        // A config without `auths` keeps its other keys, silently.
        let c = secret_change(
            "shop",
            "weird",
            "reg:5000",
            &cred("n3w"),
            Some(&with_data(b64(r#"{"credHelpers":{}}"#), DOCKERCONFIGJSON)),
            false,
            &[],
            "t",
            None,
        );
        assert!(
            !format!("{:?}", c.diff).contains("rewritten"),
            "{:?}",
            c.diff
        );
        assert!(decoded(&c.requests[0]).get("credHelpers").is_some());
    }

    mod props {
        use super::*;
        use crate::diagnose::secrets::props::{config, json_value, text};
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            /// Whatever the secret holds, the change is built, puts the
            /// credential in, and never shows the password.
            #[test]
            fn any_current_secret_gives_a_change(
                data in prop_oneof![
                    config().prop_map(|b| json!({".dockerconfigjson": STANDARD.encode(b)})),
                    json_value().prop_map(|v| json!({".dockerconfigjson": v})),
                    json_value(),
                ],
                type_ in prop_oneof![Just(DOCKERCONFIGJSON.to_string()), text()],
                metadata in prop_oneof![json_value(), Just(json!({"name": "s", "namespace": "shop"}))],
                recreate in any::<bool>(),
                wrong in prop::collection::vec(text(), 0..3),
            ) {
                let cur = json!({"kind": "Secret", "type": type_, "metadata": metadata, "data": data});
                let c = secret_change("shop", "s", "reg:5000", &cred("pa55-w0rd-x"), Some(&cur), recreate, &wrong, "t", None);
                let cfg = decoded(c.requests.last().unwrap());
                prop_assert_eq!(&cfg["auths"]["reg:5000"]["password"], "pa55-w0rd-x");
                let shown = format!("{:?}{:?}", c.diff, c.kubectl);
                prop_assert!(!shown.contains("pa55-w0rd-x"));
            }
        }
    }

    #[test]
    fn wrong_key_is_replaced_and_opaque_is_recreated() {
        let cur = secret(json!({"reg": {"username": "u", "password": "p"}}), "Opaque");
        let c = secret_change(
            "shop",
            "regcred",
            "reg:5000",
            &cred("p"),
            Some(&cur),
            true,
            &["reg".into()],
            "t",
            None,
        );
        assert_eq!(
            c.requests[0].write,
            Write::Delete {
                uid: Some("x".into()),
                resource_version: Some("42".into())
            }
        );
        assert!(matches!(c.requests[1].write, Write::Create(_)));
        assert_eq!(
            c.requests[1].write.body().unwrap()["type"],
            DOCKERCONFIGJSON
        );
        assert_eq!(resource_name(&c.requests[1]), "secrets");
        let cfg = decoded(&c.requests[1]);
        assert!(cfg["auths"].get("reg").is_none());
        assert!(cfg["auths"].get("reg:5000").is_some());
        assert!(c.destructive);
        assert!(
            c.diff
                .iter()
                .any(|l| l.contains("Opaque → kubernetes.io/dockerconfigjson"))
        );
    }

    #[test]
    fn managed_secret_is_flagged() {
        let mut cur = secret(json!({}), DOCKERCONFIGJSON);
        cur["metadata"]["ownerReferences"] = json!([{"kind": "ExternalSecret", "name": "regcred"}]);
        let c = secret_change(
            "shop",
            "regcred",
            "reg:5000",
            &cred("p"),
            Some(&cur),
            false,
            &[],
            "t",
            None,
        );
        assert!(c.managed.unwrap().contains("external-secrets"));
    }

    #[test]
    fn docker_config_lookup() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("config.json");
        std::fs::write(
            &p,
            json!({"auths": {"reg:5000": {"auth": STANDARD.encode("a:b")}}}).to_string(),
        )
        .unwrap();
        let img = ImageRef::parse("reg:5000/team/app:v1").unwrap();
        assert_eq!(docker_config_credential(&p, &img).unwrap().password(), "b");
        let other = ImageRef::parse("elsewhere.io/app:v1").unwrap();
        let err = docker_config_credential(&p, &other)
            .unwrap_err()
            .to_string();
        assert!(err.contains("no `auths` entry for elsewhere.io"), "{err}");
    }
}
