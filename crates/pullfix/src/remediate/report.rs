//! After the fix: who to page, what to improve, and the incident report.
//!
//! Everything here is pure: it reads an [`Incident`] (and the findings) and
//! returns text; the caller prints it or writes `--report FILE`.
//!
//! - [`escalations`] applies the runbook's escalation table: not fixed
//!   within [`ESCALATION_TIMEOUT_MINUTES`] of the first failure (or a fix
//!   step failed), the registry itself looks down, or the failures span
//!   many namespaces. Each [`Escalation`] carries a message ready to paste
//!   into the page. [`security_escalation`] covers the one row pullfix
//!   cannot observe (pulls nobody on the team made).
//! - [`follow_ups`] lists the post-incident work that fits the causes seen.
//! - [`summary_line`] is the last line of an interactive run.
//! - [`markdown`] renders the whole incident for `--report FILE`.
//!
//! Secrets: nothing here reads a credential. The text is built only from
//! fields that are redacted where they are produced (evidence, step titles
//! and commands carry `<password>`-style placeholders, secrets are named by
//! namespace/name), so these functions cannot add secret material of their own.

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use super::{Incident, Outcome, StepRecord};
use crate::diagnose::finding::{Evidence, Finding};
use crate::diagnose::secrets::is_ecr_host;
use crate::diagnose::{Cause, Confidence};
use crate::probe::Attempt;
use crate::registry::client::PullFailure;
use crate::registry::reference::ImageRef;
use crate::sanitize;
use crate::scan::Severity;

/// The runbook's escalation timeout: page when the failure is not fixed
/// this many minutes after it began.
pub(crate) const ESCALATION_TIMEOUT_MINUTES: i64 = 20;

/// Who owns the cluster, the registry and its network.
pub(crate) const PAGE_PLATFORM: &str = "Platform/Infra on-call";

/// Who handles a suspected credential compromise.
#[cfg(test)]
pub(crate) const PAGE_SECURITY: &str = "Security on-call";

/// Failures in this many namespaces or more suggest a cluster-wide problem.
pub(crate) const SCOPE_NAMESPACES: usize = 3;

/// The wording of the scan's scope notes that calls for a cluster-wide page.
const OUTAGE_NOTE: &str = "possible registry outage";

/// One page to send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Escalation {
    /// Who to page ([`PAGE_PLATFORM`] or [`PAGE_SECURITY`]).
    pub page: String,
    /// Which condition of the escalation table applies, and the facts behind it.
    pub reason: String,
    /// The message to send, ready to paste. Names secrets by namespace/name only.
    pub message: String,
}

/// The runbook's escalations that apply to `incident` at `now`, in the order
/// they should be sent (the P1 page first). Same as
/// [`escalations_with_notes`] without scan notes.
#[cfg(test)]
pub(crate) fn escalations(incident: &Incident, now: DateTime<Utc>) -> Vec<Escalation> {
    escalations_with_notes(incident, &[], now)
}

/// [`escalations`], also weighing the scan's scope notes
/// (`Assessment::notes`): a note that mentions a possible registry outage
/// raises the cluster-wide page even when this incident saw one namespace.
///
/// Conditions:
/// - not resolved [`ESCALATION_TIMEOUT_MINUTES`] after the failure began
///   (`failing_since`, else `started`), or a step failed while the
///   workload is still broken → a P1 page to [`PAGE_PLATFORM`] naming the
///   namespace, workload, image, cause and what was tried;
/// - the registry looks down: the node could not reach it, or it answered
///   5xx, and pullfix's own probe failed the same way → [`PAGE_PLATFORM`],
///   once per registry host;
/// - the failures the engineer cannot fix from the cluster (not a
///   credential or an image reference) span [`SCOPE_NAMESPACES`]
///   namespaces or more, or a scan
///   note says "possible registry outage" → a cluster-wide page to
///   [`PAGE_PLATFORM`].
///
/// A resolved incident raises nothing. A rehearsal (`--dry-run`) is
/// judged the same way: the failure is still live.
pub(crate) fn escalations_with_notes(
    incident: &Incident,
    scan_notes: &[String],
    now: DateTime<Utc>,
) -> Vec<Escalation> {
    let mut out = Vec::new();
    if incident.resolved {
        return out;
    }
    let live = live_findings(incident);

    // Not resolved in time, or a step failed.
    let since = incident.failing_since.unwrap_or(incident.started);
    let elapsed = now - since;
    let timed_out = elapsed >= Duration::minutes(ESCALATION_TIMEOUT_MINUTES);
    // A write that lost a conflict is someone else's change, not an
    // outage: what is left is in the verdict's `continue:` line.
    let failed: Vec<&StepRecord> = incident
        .steps
        .iter()
        .filter(|s| matches!(s.outcome, Outcome::Failed { .. }) && !s.outcome.is_conflict())
        .collect();
    if timed_out || !failed.is_empty() {
        let mut reasons = Vec::new();
        if timed_out {
            reasons.push(format!(
                "not resolved {} after the failure began (runbook timeout: {ESCALATION_TIMEOUT_MINUTES} min)",
                human_duration(elapsed)
            ));
        }
        if !failed.is_empty() {
            reasons.push(format!(
                "fix step failed: {}",
                failed
                    .iter()
                    .map(|s| s.title.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        let headline = if timed_out {
            format!("not resolved after {}", human_duration(elapsed))
        } else {
            "a fix step failed and pods still cannot pull".to_string()
        };
        let mut message = format!(
            "P1: container image pull failure in namespace {}, {headline}. Workload: {}. Image: {}. Cause: {}. Tried: {}. Now: {}.",
            incident.namespace,
            incident.target,
            images(&live),
            causes(&live),
            tried(incident),
            if incident.verdict.is_empty() {
                "still failing"
            } else {
                incident.verdict.as_str()
            },
        );
        let secrets = secret_names(&live);
        if !secrets.is_empty() {
            message.push_str(&format!(" Pull secrets involved: {}.", secrets.join(", ")));
        }
        message.push_str(" Need Platform/Infra help to unblock it.");
        out.push(Escalation {
            page: PAGE_PLATFORM.into(),
            reason: reasons.join("; "),
            message,
        });
    }

    // The registry itself looks down.
    let mut hosts: Vec<String> = Vec::new();
    for f in &live {
        let Some(why) = registry_down(f) else {
            continue;
        };
        let host = registry_host(f);
        if hosts.contains(&host) {
            continue;
        }
        hosts.push(host.clone());
        out.push(Escalation {
            page: PAGE_PLATFORM.into(),
            reason: format!(
                "registry appears down: {} ({}), and pullfix's own probe failed too",
                f.cause.id(),
                why
            ),
            message: format!(
                "Registry {host} appears down or unreachable: pulls fail from the nodes and from outside them ({why}). Affected: {}. Please check the registry's health and the network path to it.",
                affected(f, incident),
            ),
        });
    }

    // Downloads from a registry that answers break: cut off, or content
    // that does not match its digest. Nothing in the cluster fixes that;
    // the verdict says "see the escalation", so there is one.
    for f in &live {
        let what = match f.cause {
            Cause::LayerCorrupt => {
                "serves blobs that do not match their digests (its storage, a pull-through cache or a proxy in front of it)"
            }
            Cause::PullInterrupted => {
                "answers, but layer downloads from it are cut off before they finish (the network path, a proxy, or its blob backend)"
            }
            _ => continue,
        };
        let host = registry_host(f);
        if hosts.contains(&host) {
            continue;
        }
        hosts.push(host.clone());
        out.push(Escalation {
            page: PAGE_PLATFORM.into(),
            reason: format!("{} on {host}: nothing in the cluster fixes it", f.cause.id()),
            message: format!(
                "Registry {host} {what}. Affected: {}. Please check the registry and the path from the nodes to it.",
                affected(f, incident),
            ),
        });
    }

    // Scope expanding across namespaces: failures the on-call engineer
    // cannot fix from here (the same stale secret or a bad tag in several
    // namespaces is theirs to fix, and the guided fix plans it).
    let mut namespaces: Vec<&str> = Vec::new();
    for f in incident
        .findings
        .iter()
        .chain(&incident.remaining)
        .filter(|f| !fixable_here(f.cause))
    {
        if !namespaces.contains(&f.namespace.as_str()) {
            namespaces.push(&f.namespace);
        }
    }
    let outage_note = scan_notes
        .iter()
        .chain(
            incident
                .findings
                .iter()
                .chain(&incident.remaining)
                .flat_map(|f| f.evidence.iter().map(|e| &e.text)),
        )
        .find(|n| n.to_lowercase().contains(OUTAGE_NOTE));
    if namespaces.len() >= SCOPE_NAMESPACES || outage_note.is_some() {
        let reason = if namespaces.len() >= SCOPE_NAMESPACES {
            format!(
                "scope expanding: failures in {} namespaces ({})",
                namespaces.len(),
                namespaces.join(", ")
            )
        } else {
            format!(
                "scope expanding: scan note \"{}\"",
                outage_note.map_or("", |s| s)
            )
        };
        let mut registries: Vec<String> = Vec::new();
        for f in incident.findings.iter().chain(&incident.remaining) {
            let h = registry_host(f);
            if !registries.contains(&h) {
                registries.push(h);
            }
        }
        let spread = if namespaces.len() >= SCOPE_NAMESPACES {
            format!(
                "{} namespaces ({})",
                namespaces.len(),
                namespaces.join(", ")
            )
        } else {
            "many namespaces".to_string()
        };
        out.push(Escalation {
            page: PAGE_PLATFORM.into(),
            reason,
            message: format!(
                "Cluster-wide ImagePullBackOff: image pulls fail in {spread}. Possible registry outage or cluster networking problem. Registries involved: {}. First investigated: {} in namespace {}.",
                if registries.is_empty() {
                    "unknown".to_string()
                } else {
                    registries.join(", ")
                },
                incident.target,
                incident.namespace,
            ),
        });
    }
    out
}

/// `deploy/x in namespace ns (image i)`, for a registry page.
fn affected(f: &Finding, incident: &Incident) -> String {
    format!(
        "{} in namespace {} (image {})",
        f.workload
            .as_ref()
            .map_or_else(|| incident.target.clone(), |w| w.target()),
        f.namespace,
        f.image
    )
}

/// The page for a suspected credential compromise: pulls from the registry
/// that nobody on the team made. pullfix cannot see the registry's access
/// logs, so it never raises this by itself; the caller offers it when the
/// user reports unauthorized pulls (for example after reading the
/// registry's audit log during a credentials-rejected incident).
#[cfg(test)]
pub(crate) fn security_escalation(registry: &str) -> Escalation {
    Escalation {
        page: PAGE_SECURITY.into(),
        reason: "reported unauthorized pulls: the registry credentials may be compromised".into(),
        message: format!(
            "Security incident: the pull credentials for registry {registry} may be compromised (pulls nobody on the team made were reported). Please revoke and rotate the credential at the registry, then update the pull secrets that hold it. Secret values are not included here; ask for them by namespace/name."
        ),
    }
}

/// Post-incident actions that fit the causes in `findings` and the
/// incident (its findings, the ones that remain, and what happened to its
/// steps). Deduplicated; causes in the order they were first seen, then
/// the actions every incident gets.
pub(crate) fn follow_ups(findings: &[Finding], incident: &Incident) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut push = |s: String| {
        if !out.contains(&s) {
            out.push(s);
        }
    };
    let all: Vec<&Finding> = findings
        .iter()
        .chain(&incident.findings)
        .chain(&incident.remaining)
        .collect();
    let cronjobs = cronjob_names(&all, incident);
    for f in &all {
        match f.cause {
            Cause::CredentialsExpired => {
                if is_ecr(f) {
                    push("Stop depending on a token copied into a secret: have the kubelet fetch ECR credentials itself (the ECR kubelet credential provider) or move to IRSA / EKS Pod Identity; until then, automate the token refresh well inside its 12-hour life".into());
                    if cronjobs.is_empty() {
                        push("Alert when the ECR token refresh job fails, so a broken refresh pages someone hours before pulls stop".into());
                    }
                } else {
                    push("Automate the renewal of this registry's expiring token, before it expires, and alert when the renewal fails".into());
                }
                for c in &cronjobs {
                    push(format!(
                        "Alert on failures of the refresh CronJob `{c}` (it did not keep the credential fresh this time); fix the identity or permissions it runs with"
                    ));
                }
            }
            Cause::CredentialsRejected => {
                push("Sync pull secrets from the credential's source of truth (External Secrets Operator, or a sealed/GitOps-managed secret) instead of editing them by hand".into());
                push("Rotate registry credentials with automation that updates every namespace's pull secret in the same change".into());
            }
            Cause::CredentialsMissing => {
                push("Provision pull secrets (and the ServiceAccount's imagePullSecrets) as part of namespace creation".into());
                push("Document which registries need pull secrets and how often their credentials rotate".into());
            }
            Cause::AccessDenied => {
                push("Manage the registry's pull permissions (IAM policies, robot accounts, project membership) as code and review them when repositories move".into());
            }
            Cause::ImageNotFound => {
                push("Pin images by digest in deploy manifests, so a moved or deleted tag cannot break a rollout".into());
                push("Validate image references in CI before deploying (the tag or digest exists in the target registry)".into());
            }
            Cause::RepositoryNotFound | Cause::InvalidImageName => {
                push("Validate image references in CI before deploying (the tag or digest exists in the target registry)".into());
            }
            Cause::WrongRegistry => {
                push("Validate image references in CI before deploying (the tag or digest exists in the target registry)".into());
                push("Add an admission policy that only admits images from approved registry prefixes (no bare Docker Hub names)".into());
                push("Pin images by digest in deploy manifests, so a moved or deleted tag cannot break a rollout".into());
            }
            Cause::RateLimited => {
                push("Mirror the public images you depend on into your own registry, or put a pull-through cache in front of Docker Hub".into());
                push(
                    "Authenticate pulls from public registries so they get the higher rate limit"
                        .into(),
                );
            }
            Cause::RegistryUnreachable => {
                push("Make the registry highly available and monitor it from inside the cluster (reachability and pull latency)".into());
            }
            Cause::TlsError => {
                push("Make the registry highly available and monitor it from inside the cluster (reachability and pull latency)".into());
                push("Distribute the registry's CA to every node through node provisioning, and alert well before the registry certificate expires".into());
            }
            Cause::PlatformMismatch => {
                push("Build multi-architecture images in CI for every node architecture the cluster runs".into());
            }
            Cause::PullInterrupted => {
                push("Monitor pull latency and failures between the nodes and the registry (proxies, NAT gateways, MTU), and mirror large images close to the cluster".into());
            }
            Cause::LayerCorrupt => {
                push("Verify the registry's storage and any pull-through cache or proxy in front of it; re-push the image so every blob matches its digest".into());
            }
            Cause::NeverPull => {
                push("Avoid `imagePullPolicy: Never` outside development, or preload the image on every node that may run the pod".into());
            }
            Cause::Unknown => {
                push("Record this failure's exact error text so pullfix and the runbook can recognize it next time".into());
            }
        }
    }
    push("Alert on pods in ImagePullBackOff / ErrImagePull (for example on kube_pod_container_status_waiting_reason), and tune the alert if it was noisy or missing this time".into());
    if let Some(sev) = all.iter().map(|f| f.severity).min() {
        push(format!(
            "File a postmortem ({} incident)",
            match sev {
                Severity::P1 => "P1",
                Severity::P2 => "P2",
            }
        ));
    }
    let failed: Vec<&str> = incident
        .steps
        .iter()
        .filter(|s| matches!(s.outcome, Outcome::Failed { .. }) && !s.outcome.is_conflict())
        .map(|s| s.title.as_str())
        .collect();
    if !failed.is_empty() {
        push(format!(
            "Update the runbook: these steps failed during the incident: {}",
            failed.join(", ")
        ));
    } else if !incident.resolved
        && !incident.dry_run
        && incident
            .steps
            .iter()
            .any(|s| matches!(s.outcome, Outcome::Applied { .. }))
        // Steps the engineer declined or that were skipped say nothing
        // about the runbook.
        && !incident.steps.iter().any(|s| {
            matches!(s.outcome, Outcome::Declined | Outcome::Skipped { .. })
        })
    {
        push("Update the runbook: its steps did not resolve this incident".into());
    } else {
        push("Update the runbook if any step was wrong, missing or unclear".into());
    }
    out
}

/// One line for the report: "checkout: resolved in 3 steps (4m12s)",
/// "checkout: not resolved, 0 of 2 steps applied", or a rehearsal's
/// "checkout: rehearsed 2 steps (rehearsal: nothing was written)". Whether
/// to page someone is the escalations' call, not this line's.
pub(crate) fn summary_line(incident: &Incident) -> String {
    let name = workload_name(incident);
    let n = incident.steps.len();
    let applied = incident
        .steps
        .iter()
        .filter(|s| matches!(s.outcome, Outcome::Applied { .. }))
        .count();
    let steps = format!("{n} step{}", if n == 1 { "" } else { "s" });
    let took = incident
        .finished
        .map(|f| format!(" ({})", compact_duration(f - incident.started)))
        .unwrap_or_default();
    if incident.dry_run {
        format!("{name}: rehearsed {steps}{took} (rehearsal: nothing was written)")
    } else if incident.resolved && applied == n {
        format!("{name}: resolved in {steps}{took}")
    } else if incident.resolved {
        format!("{name}: resolved, {applied} of {steps} applied{took}")
    } else {
        format!("{name}: not resolved, {applied} of {steps} applied{took}")
    }
}

/// The incident report for `--report FILE`, in Markdown: verdict, the
/// timeline of steps (commands, outcomes, backups and how to restore them),
/// the evidence behind each finding, what still fails, the pages to send
/// and the follow-ups as a checklist.
pub(crate) fn markdown(
    incident: &Incident,
    escalations: &[Escalation],
    follow_ups: &[String],
) -> String {
    let mut md = String::new();
    let state = if incident.dry_run {
        "rehearsal, not resolved"
    } else if incident.resolved {
        "resolved"
    } else {
        "not resolved"
    };
    md.push_str(&format!(
        "# Image pull incident: {} — {state}\n\n",
        text(&incident.target)
    ));
    if incident.dry_run {
        md.push_str("> **Rehearsal (`--dry-run`): nothing was written to the cluster.** Every change below was only sent as a server-side dry-run.\n\n");
    }
    md.push_str(&format!(
        "- **Summary:** {}\n",
        text(&summary_line(incident))
    ));
    if !incident.verdict.is_empty() {
        md.push_str(&format!("- **Verdict:** {}\n", text(&incident.verdict)));
    }
    md.push_str(&format!("- **Namespace:** {}\n", code(&incident.namespace)));
    let mut namespaces: Vec<&str> = incident
        .workloads
        .iter()
        .map(|w| w.workload.namespace.as_str())
        .filter(|n| *n != incident.namespace)
        .collect();
    namespaces.dedup();
    if !namespaces.is_empty() {
        md.push_str(&format!(
            "- **Also checked:** {}\n",
            namespaces
                .iter()
                .map(|n| code(n))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if let Some(since) = incident.failing_since {
        md.push_str(&format!("- **Failing since:** {}\n", stamp(since)));
    }
    md.push_str(&format!("- **Started:** {}\n", stamp(incident.started)));
    if let Some(f) = incident.finished {
        md.push_str(&format!(
            "- **Finished:** {} ({})\n",
            stamp(f),
            compact_duration(f - incident.started)
        ));
    }
    md.push('\n');

    if !incident.workloads.is_empty() {
        md.push_str("## Workloads\n\n");
        for w in &incident.workloads {
            md.push_str(&format!(
                "- {} {}: {}{}\n",
                if w.healthy { "✔" } else { "✘" },
                code(&format!(
                    "{} -n {}",
                    w.workload.target(),
                    w.workload.namespace
                )),
                text(&w.state),
                w.next
                    .as_ref()
                    .map(|n| format!(" — continue: {}", code(n)))
                    .unwrap_or_default()
            ));
        }
        md.push('\n');
    }

    md.push_str("## Timeline\n\n");
    if incident.steps.is_empty() {
        md.push_str("No step was taken.\n\n");
    } else {
        let full_dates = incident
            .steps
            .iter()
            .any(|s| s.at.date_naive() != incident.started.date_naive());
        md.push_str("| Time (UTC) | Step | Command | Outcome |\n|---|---|---|---|\n");
        for s in &incident.steps {
            let time = if full_dates {
                s.at.format("%Y-%m-%d %H:%M:%S").to_string()
            } else {
                s.at.format("%H:%M:%S").to_string()
            };
            let command = s.command.as_deref().map_or_else(|| "—".to_string(), code);
            md.push_str(&format!(
                "| {} | {} | {} | {} |\n",
                cell(&time),
                cell(&text(&s.title)),
                cell(&command),
                cell(&outcome_text(s)),
            ));
        }
        md.push('\n');
    }

    md.push_str("## Findings\n\n");
    if incident.findings.is_empty() {
        md.push_str("No finding was recorded.\n\n");
    }
    for (i, f) in incident.findings.iter().enumerate() {
        finding_md(&mut md, i + 1, f);
    }

    if !incident.remaining.is_empty() {
        md.push_str("## Still failing\n\n");
        for (i, f) in incident.remaining.iter().enumerate() {
            finding_md(&mut md, i + 1, f);
        }
    }

    if !escalations.is_empty() {
        md.push_str("## Escalation\n\n");
        for e in escalations {
            md.push_str(&format!(
                "- **Page {}**: {}\n\n{}\n\n",
                text(&e.page),
                text(&e.reason),
                indent(&fenced(&e.message), "  ")
            ));
        }
    }

    if !follow_ups.is_empty() {
        md.push_str("## Follow-ups\n\n");
        for f in follow_ups {
            md.push_str(&format!(
                "- [ ] {}\n",
                indent_rest(&sanitize::md_block(f), "  ")
            ));
        }
        md.push('\n');
    }
    if incident.dry_run {
        md.push_str("_This was a rehearsal: no change was written to the cluster._\n");
    }
    md
}

// ---------------------------------------------------------------------------
// Helpers.

/// The findings that describe the failure as it stands: the remaining ones,
/// or the first diagnosis when nothing remains recorded.
fn live_findings(incident: &Incident) -> Vec<&Finding> {
    if incident.remaining.is_empty() {
        incident.findings.iter().collect()
    } else {
        incident.remaining.iter().collect()
    }
}

fn images(findings: &[&Finding]) -> String {
    let mut v: Vec<&str> = Vec::new();
    for f in findings {
        if !v.contains(&f.image.as_str()) {
            v.push(&f.image);
        }
    }
    if v.is_empty() {
        "unknown".into()
    } else {
        v.join(", ")
    }
}

fn causes(findings: &[&Finding]) -> String {
    let mut v: Vec<Cause> = Vec::new();
    for f in findings {
        if !v.contains(&f.cause) {
            v.push(f.cause);
        }
    }
    if v.is_empty() {
        return "not determined".into();
    }
    v.iter()
        .map(|c| format!("{} ({})", c.id(), c.summary()))
        .collect::<Vec<_>>()
        .join("; ")
}

fn secret_names(findings: &[&Finding]) -> Vec<String> {
    let mut v = Vec::new();
    for f in findings {
        for s in &f.secrets {
            let n = format!("{}/{}", f.namespace, s.name);
            if !v.contains(&n) {
                v.push(n);
            }
        }
    }
    v
}

/// "update secret shop/regcred (applied), restart deploy/checkout (failed: ...)".
fn tried(incident: &Incident) -> String {
    if incident.steps.is_empty() {
        return "nothing yet (diagnosis only)".into();
    }
    incident
        .steps
        .iter()
        .map(|s| {
            let o = match &s.outcome {
                Outcome::Applied { .. } => "applied".to_string(),
                Outcome::Rehearsed { .. } => "rehearsed only, not written".to_string(),
                Outcome::Declined => "declined".to_string(),
                Outcome::Skipped { reason } => format!("skipped: {}", first_line(reason)),
                Outcome::Unchanged { .. } => "already in place".to_string(),
                Outcome::NotPermitted { missing } => {
                    format!("not permitted: missing {}", first_line(missing))
                }
                Outcome::Failed { error } => format!("failed: {}", first_line(error)),
            };
            format!("{} ({o})", s.title)
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Causes the engineer fixes in the cluster with the guided fix (a
/// credential, an image reference): not a reason to page anyone by
/// themselves, however many namespaces they span.
fn fixable_here(cause: Cause) -> bool {
    matches!(
        cause,
        Cause::CredentialsMissing
            | Cause::CredentialsRejected
            | Cause::CredentialsExpired
            | Cause::ImageNotFound
            | Cause::WrongRegistry
            | Cause::InvalidImageName
    )
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("").trim()
}

/// Why the registry looks down for everyone, when it does: the node's
/// failure is a network, TLS or 5xx one and pullfix's probe got no answer
/// either.
fn registry_down(f: &Finding) -> Option<String> {
    let probe_says_unreachable = f
        .evidence
        .iter()
        .any(|e| e.source == "registry" && e.text.contains("not reachable from this machine"));
    let Some(p) = &f.registry else {
        return (probe_says_unreachable
            && matches!(f.cause, Cause::RegistryUnreachable | Cause::TlsError))
        .then(|| "no answer from the registry".to_string());
    };
    let any_ok = p.anonymous.ok() || p.with_credential.as_ref().is_some_and(Attempt::ok);
    if any_ok {
        return None;
    }
    let attempts = std::iter::once(&p.anonymous).chain(p.with_credential.as_ref());
    let server_error = attempts.clone().find_map(|a| match a {
        Attempt::Failed {
            status: Some(s), ..
        } if *s >= 500 => Some(format!("HTTP {s}")),
        _ => None,
    });
    let failures = p.failure.iter().chain(p.anonymous_failure.iter());
    let server_error = server_error.or_else(|| {
        failures.clone().find_map(|x| match x {
            PullFailure::Status { status, .. } | PullFailure::TokenFetch { status, .. }
                if *status >= 500 =>
            {
                Some(format!("HTTP {status}"))
            }
            _ => None,
        })
    });
    if let Some(s) = server_error {
        return Some(format!("the registry answers {s}"));
    }
    let network = matches!(f.cause, Cause::RegistryUnreachable | Cause::TlsError);
    if network && (p.unreachable_here || probe_says_unreachable) {
        let what = failures
            .clone()
            .find_map(|x| match x {
                PullFailure::Dns { .. } => Some("the name does not resolve"),
                PullFailure::Refused { .. } => Some("connections are refused"),
                PullFailure::Timeout { .. } => Some("requests time out"),
                PullFailure::Tls { .. } => Some("the TLS handshake fails"),
                _ => None,
            })
            .or_else(|| {
                attempts
                    .clone()
                    .any(|a| matches!(a, Attempt::TimedOut))
                    .then_some("requests time out")
            })
            .unwrap_or("no answer from the registry");
        return Some(what.to_string());
    }
    None
}

fn registry_host(f: &Finding) -> String {
    if let Some(p) = &f.registry
        && !p.registry.is_empty()
    {
        return p.registry.clone();
    }
    ImageRef::parse(&f.image).map_or_else(|_| f.image.clone(), |i| i.domain)
}

fn is_ecr(f: &Finding) -> bool {
    f.secrets.iter().any(|s| s.ecr.is_some())
        || ImageRef::parse(&f.image).is_ok_and(|i| is_ecr_host(&i.domain))
        || f.registry
            .as_ref()
            .is_some_and(|p| is_ecr_host(&p.registry))
}

/// Refresh CronJobs the incident points at, as `namespace/name`: evidence
/// from the `cronjob` source (the first name in backticks), or
/// `cronjob/NAME` in any evidence, step title or step command.
fn cronjob_names(findings: &[&Finding], incident: &Incident) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for f in findings {
        for e in &f.evidence {
            if e.source == "cronjob"
                && let Some(name) = e.text.split('`').nth(1)
                && !name.contains(' ')
            {
                add_cronjob(&mut out, &f.namespace, name.trim_start_matches("cronjob/"));
            }
            scan_cronjobs(&mut out, &f.namespace, &e.text);
        }
    }
    for s in &incident.steps {
        scan_cronjobs(&mut out, &incident.namespace, &s.title);
        if let Some(c) = &s.command {
            scan_cronjobs(&mut out, &incident.namespace, c);
        }
    }
    out
}

/// Every `cronjob/NAME` in `s` (case-insensitive).
fn scan_cronjobs(out: &mut Vec<String>, ns: &str, s: &str) {
    const MARK: &str = "cronjob/";
    let lower = s.to_ascii_lowercase();
    let mut from = 0;
    while let Some(i) = lower[from..].find(MARK) {
        let start = from + i + MARK.len();
        let name: String = s[start..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '.')
            .collect();
        add_cronjob(out, ns, name.trim_end_matches('.'));
        from = start;
    }
}

fn add_cronjob(out: &mut Vec<String>, ns: &str, name: &str) {
    if name.is_empty() {
        return;
    }
    let full = if name.contains('/') {
        name.to_string()
    } else {
        format!("{ns}/{name}")
    };
    if !out.contains(&full) {
        out.push(full);
    }
}

fn workload_name(incident: &Incident) -> String {
    let first = incident.target.split_whitespace().next().unwrap_or("");
    let name = first.rsplit('/').next().unwrap_or(first);
    if name.is_empty() {
        incident.namespace.clone()
    } else {
        name.to_string()
    }
}

/// "45s", "4m12s", "1h02m".
fn compact_duration(d: Duration) -> String {
    let s = d.num_seconds().max(0);
    if s < 60 {
        format!("{s}s")
    } else if s < 3600 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    }
}

/// "27 min", "2 h 5 min".
fn human_duration(d: Duration) -> String {
    let m = d.num_minutes().max(0);
    if m < 60 {
        format!("{m} min")
    } else {
        format!("{} h {} min", m / 60, m % 60)
    }
}

fn stamp(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

fn confidence(c: Confidence) -> &'static str {
    match c {
        Confidence::Low => "low",
        Confidence::Medium => "medium",
        Confidence::High => "high",
    }
}

fn outcome_text(s: &StepRecord) -> String {
    let mut o = match &s.outcome {
        Outcome::Applied { detail } => with_detail("applied", detail),
        Outcome::Rehearsed { detail } => with_detail("rehearsed (server-side dry-run)", detail),
        Outcome::Declined => "declined".to_string(),
        Outcome::Skipped { reason } => with_detail("skipped", reason),
        Outcome::Unchanged { detail } => with_detail("unchanged", detail),
        Outcome::NotPermitted { missing } => format!("not permitted: missing {}", text(missing)),
        Outcome::Failed { error } => with_detail("**failed**", error),
    };
    if let Some(b) = &s.backup {
        o.push_str(&format!("; backup: {}", code(b)));
    }
    if let Some(r) = &s.restore_command {
        o.push_str(&format!("; restore: {}", code(r)));
    }
    o
}

fn with_detail(label: &str, detail: &str) -> String {
    if detail.trim().is_empty() {
        label.to_string()
    } else {
        format!("{label}: {}", sanitize::md_block(detail))
    }
}

fn finding_md(md: &mut String, n: usize, f: &Finding) {
    let workload = f
        .workload
        .as_ref()
        .map_or_else(|| format!("pod/{}", f.pod), |w| w.target());
    md.push_str(&format!(
        "### {n}. {} — {} confidence, {}\n\n",
        code(f.cause.id()),
        confidence(f.confidence),
        match f.severity {
            Severity::P1 => "P1",
            Severity::P2 => "P2",
        }
    ));
    if !f.summary.is_empty() {
        md.push_str(&format!("{}\n\n", text(&f.summary)));
    }
    md.push_str(&format!(
        "- **Workload:** {} in {}, {}container {}\n",
        code(&workload),
        code(&f.namespace),
        if f.init_container { "init " } else { "" },
        code(&f.container)
    ));
    md.push_str(&format!("- **Image:** {}\n", code(&f.image)));
    if !f.decision.because.is_empty() {
        md.push_str(&format!("- **Why:** {}\n", text(&f.decision.because)));
    }
    if !f.pods.is_empty() {
        md.push_str(&format!(
            "- **Pods:** {}\n",
            f.pods
                .iter()
                .map(|p| code(p))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if f.evidence.is_empty() {
        md.push_str("- **Evidence:** none recorded\n\n");
        return;
    }
    md.push_str("- **Evidence:**\n");
    for e in &f.evidence {
        md.push_str(&format!("  - {}\n", evidence_line(e)));
    }
    md.push('\n');
}

fn evidence_line(e: &Evidence) -> String {
    format!(
        "[{}] {}",
        text(&e.source),
        indent_rest(&text(&e.text), "    ")
    )
}

/// Free text for Markdown ([`crate::sanitize::md_text`]).
fn text(s: &str) -> String {
    sanitize::md_text(s)
}

/// An inline code span holding a value ([`crate::sanitize::md_code`]).
fn code(s: &str) -> String {
    sanitize::md_code(s)
}

/// A fenced code block ([`crate::sanitize::md_fenced`]).
fn fenced(s: &str) -> String {
    sanitize::md_fenced(s)
}

/// A table cell ([`crate::sanitize::md_cell`]).
fn cell(s: &str) -> String {
    sanitize::md_cell(s)
}

fn indent(s: &str, prefix: &str) -> String {
    s.lines()
        .map(|l| {
            if l.is_empty() {
                String::new()
            } else {
                format!("{prefix}{l}")
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Indents every line after the first (continuation lines of a list item).
fn indent_rest(s: &str, prefix: &str) -> String {
    let mut lines = s.lines();
    let first = lines.next().unwrap_or("").to_string();
    lines.fold(first, |mut acc, l| {
        acc.push('\n');
        acc.push_str(prefix);
        acc.push_str(l);
        acc
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnose::Detail;
    use crate::diagnose::decide::Decision;
    use crate::diagnose::finding::Step;
    use crate::diagnose::secrets::{EcrExpiry, Origin, SecretReport};
    use crate::probe::ProbeResult;
    use crate::scan::Workload;
    use chrono::TimeZone;

    const ECR_IMAGE: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com/shop/checkout:1.8.0";

    fn t(h: u32, m: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 19, h, m, s).unwrap()
    }

    fn finding(ns: &str, name: &str, cause: Cause, image: &str) -> Finding {
        Finding {
            workload: Some(Workload {
                kind: "Deployment".into(),
                namespace: ns.into(),
                name: name.into(),
            }),
            pod: format!("{name}-7d9f-abcde"),
            pods: vec![format!("{name}-7d9f-abcde"), format!("{name}-7d9f-fghij")],
            summary: cause.summary().into(),
            decision: Decision {
                rule: "registry-agrees",
                because: "the node says `HTTP 401`, and your machine's probe got HTTP 401".into(),
                readings: Vec::new(),
            },
            evidence: vec![Evidence {
                source: "kubelet".into(),
                text: "ErrImagePull: 401 Unauthorized".into(),
            }],
            next_steps: vec![Step {
                text: "refresh the token".into(),
                command: None,
            }],
            secrets: vec![SecretReport {
                name: "regcred".into(),
                origin: Origin::PodSpec,
                problems: vec![],
                matched_key: Some("123456789012.dkr.ecr.us-east-1.amazonaws.com".into()),
                username: Some("AWS".into()),
                age_seconds: Some(26 * 3600),
                manager: None,
                ecr: Some(EcrExpiry {
                    expires_at: t(2, 0, 0),
                    expired: true,
                    basis: "token".into(),
                }),
                other_entries: 0,
            }],
            ..Finding::sample(ns, cause, image)
        }
    }

    fn step(at: DateTime<Utc>, title: &str, command: &str, outcome: Outcome) -> StepRecord {
        StepRecord {
            at,
            title: title.into(),
            command: Some(command.into()),
            backup: None,
            restore_command: None,
            outcome,
        }
    }

    fn incident(findings: Vec<Finding>, resolved: bool) -> Incident {
        Incident {
            started: t(8, 30, 0),
            finished: Some(t(8, 34, 12)),
            target: "deploy/checkout -n shop".into(),
            namespace: "shop".into(),
            remaining: if resolved { vec![] } else { findings.clone() },
            findings,
            steps: vec![
                step(
                    t(8, 31, 0),
                    "update secret shop/regcred",
                    "kubectl create secret docker-registry regcred --docker-password=<password> -n shop --dry-run=client -o yaml | kubectl apply -f -",
                    Outcome::Applied {
                        detail: "secret/regcred configured".into(),
                    },
                ),
                step(
                    t(8, 32, 0),
                    "restart deploy/checkout",
                    "kubectl rollout restart deploy/checkout -n shop",
                    Outcome::Applied {
                        detail: "restarted".into(),
                    },
                ),
                step(
                    t(8, 34, 0),
                    "verify rollout",
                    "kubectl rollout status deploy/checkout -n shop",
                    Outcome::Applied {
                        detail: "5/5 ready".into(),
                    },
                ),
            ],
            resolved,
            workloads: vec![],
            verdict: if resolved {
                "checkout: 5/5 ready, no pod in ImagePullBackOff".into()
            } else {
                "checkout: 0/5 ready, 5 pods in ImagePullBackOff".into()
            },
            dry_run: false,
            failing_since: Some(t(8, 20, 0)),
        }
    }

    fn probe(registry: &str, unreachable: bool, anonymous: Attempt) -> ProbeResult {
        ProbeResult {
            registry: registry.into(),
            from: "this machine (not the node)",
            with_credential: None,
            username: None,
            anonymous,
            tags: None,
            rate_limit: None,
            unreachable_here: unreachable,
            failure: None,
            anonymous_failure: None,
        }
    }

    // --- escalations -----------------------------------------------------

    #[test]
    fn resolved_incident_raises_nothing() {
        let inc = incident(
            vec![finding(
                "shop",
                "checkout",
                Cause::CredentialsExpired,
                ECR_IMAGE,
            )],
            true,
        );
        assert!(escalations(&inc, t(10, 0, 0)).is_empty());
    }

    #[test]
    fn unresolved_within_twenty_minutes_raises_nothing() {
        let inc = incident(
            vec![finding(
                "shop",
                "checkout",
                Cause::CredentialsExpired,
                ECR_IMAGE,
            )],
            false,
        );
        // failing since 08:20; 19m59s later.
        assert!(escalations(&inc, t(8, 39, 59)).is_empty());
    }

    #[test]
    fn unresolved_after_twenty_minutes_pages_platform_with_p1_message() {
        let inc = incident(
            vec![finding(
                "shop",
                "checkout",
                Cause::CredentialsExpired,
                ECR_IMAGE,
            )],
            false,
        );
        let e = escalations(&inc, t(8, 47, 0));
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!(e[0].page, PAGE_PLATFORM);
        assert!(e[0].reason.contains("27 min"), "{}", e[0].reason);
        let m = &e[0].message;
        assert!(m.starts_with("P1:"), "{m}");
        for needle in [
            "namespace shop",
            "deploy/checkout -n shop",
            ECR_IMAGE,
            "credentials-expired",
            "update secret shop/regcred (applied)",
            "restart deploy/checkout (applied)",
            "shop/regcred",
            "0/5 ready",
        ] {
            assert!(m.contains(needle), "missing {needle:?} in {m}");
        }
        assert!(
            !m.contains("<password>"),
            "commands stay out of the page: {m}"
        );
    }

    #[test]
    fn window_starts_at_started_without_failing_since() {
        let mut inc = incident(
            vec![finding(
                "shop",
                "checkout",
                Cause::ImageNotFound,
                "registry.example.com/shop/checkout:9.9",
            )],
            false,
        );
        inc.failing_since = None;
        // started 08:30 → 08:49 is 19 minutes: nothing; 08:50 is 20: page.
        assert!(escalations(&inc, t(8, 49, 0)).is_empty());
        assert_eq!(escalations(&inc, t(8, 50, 0)).len(), 1);
    }

    /// A password the registry rejected is the user's to correct: the step
    /// is skipped, not failed, and nobody is paged for it.
    #[test]
    fn a_rejected_credential_pages_nobody() {
        let mut inc = incident(
            vec![finding(
                "shop",
                "checkout",
                Cause::CredentialsRejected,
                "reg.example.com/team/app:v1",
            )],
            false,
        );
        inc.steps.truncate(1);
        inc.steps[0].outcome = Outcome::Skipped {
            reason:
                "the registry rejected the credential typed 3 times; the secret was not changed"
                    .into(),
        };
        assert!(escalations(&inc, t(8, 35, 0)).is_empty());
    }

    #[test]
    fn failed_step_pages_before_the_timeout() {
        let mut inc = incident(
            vec![finding(
                "shop",
                "checkout",
                Cause::CredentialsRejected,
                "registry.example.com/shop/checkout:1.0",
            )],
            false,
        );
        inc.steps[1].outcome = Outcome::Failed {
            error: "deployments.apps \"checkout\" is forbidden\nmore detail".into(),
        };
        let e = escalations(&inc, t(8, 25, 0));
        assert_eq!(e.len(), 1);
        assert!(
            e[0].reason
                .contains("fix step failed: restart deploy/checkout")
        );
        assert!(e[0].message.contains("a fix step failed"));
        assert!(e[0].message.contains(
            "restart deploy/checkout (failed: deployments.apps \"checkout\" is forbidden)"
        ));
        assert!(!e[0].message.contains("more detail"));
    }

    #[test]
    fn registry_down_when_node_and_probe_both_fail() {
        let mut f = finding(
            "shop",
            "checkout",
            Cause::RegistryUnreachable,
            "registry.example.com/shop/checkout:1.0",
        );
        f.detail = Some(Detail::Timeout);
        f.registry = Some(ProbeResult {
            failure: None,
            anonymous_failure: Some(PullFailure::Timeout {
                url: "https://registry.example.com/v2/".into(),
                addr: "10.0.0.5:443".into(),
                plain_http: false,
            }),
            ..probe("registry.example.com", true, Attempt::TimedOut)
        });
        let inc = incident(vec![f.clone(), f], false);
        let e = escalations(&inc, t(8, 25, 0));
        assert_eq!(e.len(), 1, "one page per host: {e:?}");
        assert_eq!(e[0].page, PAGE_PLATFORM);
        assert!(e[0].reason.contains("registry appears down"));
        assert!(
            e[0].message
                .contains("Registry registry.example.com appears down")
        );
        assert!(e[0].message.contains("requests time out"));
    }

    #[test]
    fn broken_downloads_are_escalated_once_per_registry() {
        let corrupt = finding(
            "shop",
            "checkout",
            Cause::LayerCorrupt,
            "registry.example.com/shop/checkout:1.0",
        );
        let cut = finding(
            "shop",
            "worker",
            Cause::PullInterrupted,
            "mirror.example.com/shop/worker:1.0",
        );
        let inc = incident(vec![corrupt.clone(), corrupt, cut], false);
        let e = escalations(&inc, t(8, 25, 0));
        assert_eq!(e.len(), 2, "one page per host: {e:?}");
        assert!(e.iter().all(|e| e.page == PAGE_PLATFORM));
        assert!(
            e[0].reason
                .starts_with("layer-corrupt on registry.example.com"),
            "{e:?}"
        );
        assert!(e[0].message.contains("do not match their digests"), "{e:?}");
        assert!(
            e[1].reason
                .starts_with("pull-interrupted on mirror.example.com"),
            "{e:?}"
        );
        assert!(e[1].message.contains("cut off before they finish"), "{e:?}");
        // Resolved: no page.
        let inc = incident(
            vec![finding(
                "shop",
                "checkout",
                Cause::LayerCorrupt,
                "r.example.com/a:1",
            )],
            true,
        );
        assert!(escalations(&inc, t(8, 25, 0)).is_empty());
    }

    #[test]
    fn registry_5xx_is_down_whatever_the_cause() {
        let mut f = finding(
            "shop",
            "checkout",
            Cause::Unknown,
            "registry.example.com/shop/checkout:1.0",
        );
        f.registry = Some(probe(
            "registry.example.com",
            false,
            Attempt::Failed {
                failure: "GET https://registry.example.com/v2/: HTTP 503".into(),
                status: Some(503),
            },
        ));
        let e = escalations(&incident(vec![f], false), t(8, 25, 0));
        assert_eq!(e.len(), 1);
        assert!(e[0].message.contains("HTTP 503"), "{}", e[0].message);
    }

    #[test]
    fn unreachable_from_node_only_is_not_registry_down() {
        let mut f = finding(
            "shop",
            "checkout",
            Cause::RegistryUnreachable,
            "registry.example.com/shop/checkout:1.0",
        );
        f.registry = Some(probe(
            "registry.example.com",
            false,
            Attempt::Ok {
                digest: "sha256:abc".into(),
            },
        ));
        assert!(escalations(&incident(vec![f.clone()], false), t(8, 25, 0)).is_empty());
        // No probe at all: no evidence the registry is down for everyone.
        f.registry = None;
        assert!(escalations(&incident(vec![f], false), t(8, 25, 0)).is_empty());
    }

    #[test]
    fn tls_error_with_inconclusive_probe_evidence_is_registry_down() {
        let mut f = finding(
            "shop",
            "checkout",
            Cause::TlsError,
            "registry.example.com/shop/checkout:1.0",
        );
        f.evidence.push(Evidence {
            source: "registry".into(),
            text: "inconclusive: the registry is not reachable from this machine either; the node's view stands".into(),
        });
        let e = escalations(&incident(vec![f], false), t(8, 25, 0));
        assert_eq!(e.len(), 1);
        assert!(e[0].message.contains("registry.example.com"));
    }

    #[test]
    fn three_namespaces_page_cluster_wide() {
        let img = "registry.example.com/shop/checkout:1.0";
        let inc = incident(
            vec![
                finding("shop", "checkout", Cause::AccessDenied, img),
                finding("billing", "invoices", Cause::AccessDenied, img),
                finding("search", "indexer", Cause::AccessDenied, img),
            ],
            false,
        );
        let e = escalations(&inc, t(8, 25, 0));
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(e[0].reason.contains("3 namespaces (shop, billing, search)"));
        assert!(e[0].message.starts_with("Cluster-wide ImagePullBackOff"));
        assert!(e[0].message.contains("registry.example.com"));
    }

    /// The same stale secret in three namespaces (`stale-secret-many-namespaces`)
    /// is the engineer's to fix: no cluster-wide page, no "outage".
    #[test]
    fn the_same_stale_secret_in_three_namespaces_pages_nobody() {
        let img = "registry.example.com/shop/checkout:1.0";
        let inc = incident(
            vec![
                finding("shop", "checkout", Cause::CredentialsRejected, img),
                finding("shop-b", "checkout", Cause::CredentialsRejected, img),
                finding("shop-c", "checkout", Cause::CredentialsRejected, img),
            ],
            false,
        );
        assert!(escalations(&inc, t(8, 25, 0)).is_empty());
    }

    #[test]
    fn scan_note_pages_cluster_wide() {
        let inc = incident(
            vec![finding(
                "shop",
                "checkout",
                Cause::CredentialsRejected,
                "registry.example.com/a:1",
            )],
            false,
        );
        assert!(escalations(&inc, t(8, 25, 0)).is_empty());
        let notes = vec![
            "failures in 4 namespaces all pull from registry.example.com: possible registry outage or cluster networking issue".to_string(),
        ];
        let e = escalations_with_notes(&inc, &notes, t(8, 25, 0));
        assert_eq!(e.len(), 1);
        assert!(e[0].reason.contains("scan note"));
        assert!(e[0].message.contains("many namespaces"));
    }

    #[test]
    fn p1_page_comes_first_when_several_apply() {
        let img = "registry.example.com/shop/checkout:1.0";
        let mut f = finding("shop", "checkout", Cause::RegistryUnreachable, img);
        f.registry = Some(probe("registry.example.com", true, Attempt::TimedOut));
        let inc = incident(
            vec![
                f,
                finding("billing", "invoices", Cause::RegistryUnreachable, img),
                finding("search", "indexer", Cause::RegistryUnreachable, img),
            ],
            false,
        );
        let e = escalations(&inc, t(9, 0, 0));
        assert_eq!(e.len(), 3, "{e:?}");
        assert!(e[0].message.starts_with("P1:"));
        assert!(e[1].message.starts_with("Registry "));
        assert!(e[2].message.starts_with("Cluster-wide"));
    }

    #[test]
    fn security_escalation_pages_security() {
        let e = security_escalation("registry.example.com");
        assert_eq!(e.page, PAGE_SECURITY);
        assert!(e.message.starts_with("Security incident:"));
        assert!(e.message.contains("registry.example.com"));
        assert!(e.message.contains("rotate"));
    }

    // --- follow_ups ------------------------------------------------------

    #[test]
    fn ecr_expiry_follow_ups_name_the_failing_cronjob() {
        let mut f = finding("shop", "checkout", Cause::CredentialsExpired, ECR_IMAGE);
        f.evidence.push(Evidence {
            source: "cronjob".into(),
            text: "`ecr-token-refresh`: last success 26 h ago, 2 failed Jobs".into(),
        });
        let inc = incident(vec![f.clone()], true);
        let fu = follow_ups(&[f], &inc);
        assert!(
            fu[0].contains("ECR kubelet credential provider") && fu[0].contains("IRSA"),
            "{fu:#?}"
        );
        assert!(
            fu.iter().any(|s| s.contains("`shop/ecr-token-refresh`")),
            "{fu:#?}"
        );
        assert!(
            !fu.iter()
                .any(|s| s.starts_with("Alert when the ECR token refresh job fails"))
        );
        assert!(fu.iter().any(|s| s.contains("ImagePullBackOff")));
        assert!(fu.iter().any(|s| s == "File a postmortem (P1 incident)"));
        assert!(fu.iter().any(|s| s.starts_with("Update the runbook")));
        let mut dedup = fu.clone();
        dedup.dedup();
        assert_eq!(dedup.len(), fu.len());
    }

    #[test]
    fn cronjob_found_in_incident_steps() {
        let f = finding("shop", "checkout", Cause::CredentialsExpired, ECR_IMAGE);
        let mut inc = incident(vec![f.clone()], true);
        inc.steps.push(step(
            t(8, 34, 5),
            "test the refresh job",
            "kubectl create job --from=cronjob/ecr-token-refresh pullfix-test -n shop",
            Outcome::Failed {
                error: "job failed".into(),
            },
        ));
        let fu = follow_ups(&[f], &inc);
        assert!(
            fu.iter().any(|s| s.contains("`shop/ecr-token-refresh`")),
            "{fu:#?}"
        );
        assert!(
            fu.iter()
                .any(|s| s.contains("these steps failed") && s.contains("test the refresh job"))
        );
    }

    #[test]
    fn ecr_expiry_without_cronjob_asks_for_refresh_alerting() {
        let f = finding("shop", "checkout", Cause::CredentialsExpired, ECR_IMAGE);
        let fu = follow_ups(std::slice::from_ref(&f), &incident(vec![f.clone()], true));
        assert!(
            fu.iter()
                .any(|s| s.starts_with("Alert when the ECR token refresh job fails"))
        );
    }

    #[test]
    fn follow_ups_fit_each_cause_in_first_seen_order_without_duplicates() {
        let a = finding("shop", "a", Cause::WrongRegistry, "nginx:1.25");
        let b = finding(
            "shop",
            "b",
            Cause::ImageNotFound,
            "registry.example.com/b:2",
        );
        let c = finding("shop", "c", Cause::RateLimited, "docker.io/library/redis:7");
        let d = finding(
            "shop",
            "d",
            Cause::CredentialsRejected,
            "registry.example.com/d:1",
        );
        let e = finding("shop", "e", Cause::TlsError, "registry.example.com/e:1");
        let mut p2 = a.clone();
        p2.severity = Severity::P2;
        let inc = incident(vec![p2], true);
        let fu = follow_ups(&[a, b.clone(), b, c, d, e], &inc);
        let pos = |needle: &str| {
            fu.iter()
                .position(|s| s.contains(needle))
                .unwrap_or_else(|| panic!("no {needle:?} in {fu:#?}"))
        };
        assert!(pos("Validate image references in CI") < pos("admission policy"));
        assert!(pos("admission policy") < pos("Pin images by digest"));
        assert!(pos("Pin images by digest") < pos("pull-through cache"));
        pos("Authenticate pulls");
        pos("External Secrets");
        pos("Rotate registry credentials with automation");
        pos("highly available");
        pos("registry's CA");
        assert!(pos("pull-through cache") < pos("External Secrets"));
        assert_eq!(
            fu.iter()
                .filter(|s| s.contains("Validate image references"))
                .count(),
            1
        );
        assert_eq!(
            fu.iter()
                .filter(|s| s.contains("Pin images by digest"))
                .count(),
            1
        );
        // P1 among the findings wins over the incident's P2.
        assert!(fu.contains(&"File a postmortem (P1 incident)".to_string()));
        // Always-on items come last.
        assert!(fu[fu.len() - 3].contains("ImagePullBackOff"));
    }

    #[test]
    fn unresolved_incident_asks_to_update_the_runbook() {
        let f = finding(
            "shop",
            "checkout",
            Cause::CredentialsMissing,
            "registry.example.com/c:1",
        );
        let fu = follow_ups(&[], &incident(vec![f], false));
        assert!(fu.iter().any(|s| s.contains("namespace creation")));
        assert_eq!(
            fu.last().unwrap(),
            "Update the runbook: its steps did not resolve this incident"
        );
    }

    #[test]
    fn follow_ups_without_findings_still_cover_alerting_and_runbook() {
        let mut inc = incident(vec![], true);
        inc.steps.clear();
        let fu = follow_ups(&[], &inc);
        assert_eq!(fu.len(), 2, "{fu:#?}");
        assert!(fu[0].contains("ImagePullBackOff"));
    }

    // --- summary_line ----------------------------------------------------

    #[test]
    fn summary_lines() {
        let f = finding("shop", "checkout", Cause::CredentialsExpired, ECR_IMAGE);
        let mut inc = incident(vec![f.clone()], true);
        assert_eq!(summary_line(&inc), "checkout: resolved in 3 steps (4m12s)");

        let mut bad = incident(vec![f], false);
        bad.steps.truncate(2);
        bad.finished = None;
        assert_eq!(
            summary_line(&bad),
            "checkout: not resolved, 2 of 2 steps applied"
        );
        bad.steps.truncate(1);
        assert_eq!(
            summary_line(&bad),
            "checkout: not resolved, 1 of 1 step applied"
        );
        bad.steps[0].outcome = Outcome::Declined;
        assert_eq!(
            summary_line(&bad),
            "checkout: not resolved, 0 of 1 step applied"
        );

        inc.dry_run = true;
        inc.resolved = false;
        assert_eq!(
            summary_line(&inc),
            "checkout: rehearsed 3 steps (4m12s) (rehearsal: nothing was written)"
        );

        inc.dry_run = false;
        inc.resolved = true;
        inc.finished = Some(inc.started + Duration::seconds(3725));
        assert_eq!(summary_line(&inc), "checkout: resolved in 3 steps (1h02m)");
        inc.finished = Some(inc.started + Duration::seconds(45));
        assert_eq!(summary_line(&inc), "checkout: resolved in 3 steps (45s)");
    }

    #[test]
    fn summary_line_for_bare_targets() {
        let mut inc = incident(vec![], true);
        inc.target = "pod/batch-1".into();
        assert!(summary_line(&inc).starts_with("batch-1: "));
        inc.target = String::new();
        assert!(summary_line(&inc).starts_with("shop: "));
    }

    // --- markdown --------------------------------------------------------

    #[test]
    fn markdown_has_every_section() {
        let mut f = finding("shop", "checkout", Cause::CredentialsExpired, ECR_IMAGE);
        f.decision.because = "the node says `HTTP 403`; the ECR token in `regcred` expired".into();
        let mut inc = incident(vec![f], false);
        inc.steps[0].backup = Some("/tmp/pullfix/shop-regcred.yaml".into());
        inc.steps[0].restore_command =
            Some("kubectl replace -f /tmp/pullfix/shop-regcred.yaml".into());
        inc.steps[2].outcome = Outcome::Failed {
            error: "timed out waiting for rollout".into(),
        };
        let esc = escalations(&inc, t(9, 0, 0));
        let fu = follow_ups(&inc.findings, &inc);
        let md = markdown(&inc, &esc, &fu);

        assert!(
            md.starts_with("# Image pull incident: deploy/checkout -n shop — not resolved\n"),
            "{md}"
        );
        assert!(md.contains("checkout: 0/5 ready"));
        assert!(md.contains("| Time (UTC) | Step | Command | Outcome |"));
        assert!(md.contains("| 08:31:00 | update secret shop/regcred | `kubectl create secret docker-registry regcred --docker-password=<password> -n shop --dry-run=client -o yaml \\| kubectl apply -f -` | applied: secret/regcred configured; backup: `/tmp/pullfix/shop-regcred.yaml`; restore: `kubectl replace -f /tmp/pullfix/shop-regcred.yaml` |"), "{md}");
        assert!(md.contains("**failed**: timed out waiting for rollout"));
        assert!(md.contains("### 1. `credentials-expired` — high confidence, P1"));
        assert!(md.contains("- [kubelet] ErrImagePull: 401 Unauthorized"));
        assert!(
            md.contains("- **Why:** the node says `HTTP 403`; the ECR token in `regcred` expired")
        );
        assert!(!md.contains("disagrees"));
        assert!(md.contains("## Still failing"));
        assert!(md.contains("## Escalation"));
        assert!(!md.contains("NOT resolved"), "{md}");
        assert!(md.contains("- **Page Platform/Infra on-call**"));
        assert!(md.contains("  ```text\n  P1: "));
        assert!(md.contains("## Follow-ups"));
        assert!(md.contains("- [ ] File a postmortem (P1 incident)"));
        assert!(!md.contains("Rehearsal"));
        // Every table row has exactly the 5 unescaped pipes of 4 cells.
        for line in md.lines().filter(|l| l.starts_with("| 08:")) {
            let bare = line.replace("\\|", "");
            assert_eq!(bare.matches('|').count(), 5, "{line}");
        }
    }

    #[test]
    fn markdown_resolved_omits_remaining_and_escalation() {
        let inc = incident(
            vec![finding(
                "shop",
                "checkout",
                Cause::CredentialsExpired,
                ECR_IMAGE,
            )],
            true,
        );
        let md = markdown(&inc, &[], &[]);
        assert!(md.starts_with("# Image pull incident: deploy/checkout -n shop — resolved\n"));
        assert!(!md.contains("## Workloads"), "none recorded: {md}");
        assert!(!md.contains("## Still failing"));
        assert!(!md.contains("## Escalation"));
        assert!(!md.contains("## Follow-ups"));
        assert!(md.contains("- **Finished:** 2026-03-19 08:34:12 UTC (4m12s)"));
    }

    #[test]
    fn markdown_lists_each_workload_and_the_other_namespaces() {
        use crate::remediate::WorkloadVerdict;
        let mut inc = incident(vec![], false);
        let w = |ns: &str| Workload {
            kind: "Deployment".into(),
            namespace: ns.into(),
            name: "checkout".into(),
        };
        inc.workloads = vec![
            WorkloadVerdict {
                workload: w("shop"),
                healthy: true,
                state: "2/2 ready, no pod in ImagePullBackOff".into(),
                next: None,
            },
            WorkloadVerdict {
                workload: w("shop-c"),
                healthy: false,
                state: "0/2 ready, still failing (credentials-rejected)".into(),
                next: Some("kubectl pullfix fix deploy/checkout -n shop-c".into()),
            },
        ];
        let md = markdown(&inc, &[], &[]);
        assert!(md.starts_with("# Image pull incident: deploy/checkout -n shop — not resolved\n"));
        assert!(md.contains("- **Also checked:** `shop-c`\n"), "{md}");
        assert!(md.contains("## Workloads\n\n- ✔ `deploy/checkout -n shop`: 2/2 ready, no pod in ImagePullBackOff\n- ✘ `deploy/checkout -n shop-c`: 0/2 ready, still failing (credentials-rejected) — continue: `kubectl pullfix fix deploy/checkout -n shop-c`\n"), "{md}");
    }

    #[test]
    fn markdown_marks_a_rehearsal() {
        let mut inc = incident(
            vec![finding(
                "shop",
                "checkout",
                Cause::CredentialsExpired,
                ECR_IMAGE,
            )],
            false,
        );
        inc.dry_run = true;
        for s in &mut inc.steps {
            s.outcome = Outcome::Rehearsed {
                detail: "server accepted".into(),
            };
        }
        let md = markdown(&inc, &[], &[]);
        assert!(md.starts_with(
            "# Image pull incident: deploy/checkout -n shop — rehearsal, not resolved\n"
        ));
        assert!(md.contains("nothing was written to the cluster"));
        assert!(md.contains("rehearsed (server-side dry-run): server accepted"));
        assert!(
            md.trim_end()
                .ends_with("_This was a rehearsal: no change was written to the cluster._")
        );
    }

    #[test]
    fn markdown_escapes_pipes_and_backticks_in_cells() {
        let mut inc = incident(vec![], true);
        inc.steps = vec![StepRecord {
            at: t(8, 31, 0),
            title: "a | b".into(),
            command: Some("kubectl get deploy -o jsonpath='{`x`}' | head".into()),
            backup: None,
            restore_command: None,
            outcome: Outcome::Skipped {
                reason: "line one\nline two".into(),
            },
        }];
        let md = markdown(&inc, &[], &[]);
        assert!(md.contains("| a \\| b | ``kubectl get deploy -o jsonpath='{`x`}' \\| head`` | skipped: line one<br>line two |"), "{md}");
    }

    #[test]
    fn markdown_keeps_placeholders_and_adds_no_secret() {
        const SECRET: &str = "s3cr3t-T0ken-never-shown";
        let mut f = finding(
            "shop",
            "checkout",
            Cause::CredentialsRejected,
            "registry.example.com/shop/checkout:1.0",
        );
        f.evidence.push(Evidence {
            source: "secret".into(),
            text: "secret `regcred` entry `registry.example.com`: user `svc-pull`, password <password>, auth `<auth>`".into(),
        });
        f.next_steps.push(Step {
            text: "update the secret".into(),
            command: Some(
                "kubectl create secret docker-registry regcred --docker-password=<password>".into(),
            ),
        });
        let mut inc = incident(vec![f], false);
        inc.steps[0].restore_command = Some("kubectl apply -f backup.yaml # token=<token>".into());
        let esc = {
            let mut e = escalations(&inc, t(9, 0, 0));
            e.push(security_escalation("registry.example.com"));
            e
        };
        let fu = follow_ups(&inc.findings, &inc);
        let md = markdown(&inc, &esc, &fu);

        // Placeholders survive: literally in code spans, as entities in prose.
        assert!(md.contains(
            "`kubectl create secret docker-registry regcred --docker-password=<password> -n shop"
        ));
        assert!(md.contains("password &lt;password&gt;"), "{md}");
        assert!(md.contains("auth `<auth>`"));
        assert!(md.contains("token=<token>"));
        // Nothing that was not in the input appears.
        assert!(!md.contains(SECRET));
        for e in &esc {
            assert!(!e.message.contains(SECRET));
        }
        // And the input carried no credential value to begin with: the only
        // "password" text is the placeholder or the word itself.
        for (i, _) in md.match_indices("password") {
            let before = &md[..i];
            assert!(
                before.ends_with('<')
                    || before.ends_with("&lt;")
                    || before.ends_with("docker-")
                    || before.ends_with(' '),
                "unexpected password text near {}",
                &md[i.saturating_sub(20)..(i + 20).min(md.len())]
            );
        }
    }

    #[test]
    fn markdown_text_escapes_only_outside_code_spans() {
        assert_eq!(text("a <b> `<c>` d"), "a &lt;b&gt; `<c>` d");
        assert_eq!(text("odd ` <x>"), "odd \\` &lt;x&gt;");
        assert_eq!(code("plain"), "`plain`");
        assert_eq!(code("has `tick`"), "`` has `tick` ``");
        assert_eq!(fenced("x"), "```text\nx\n```");
        assert_eq!(fenced("a ``` b"), "````text\na ``` b\n````");
    }
}
