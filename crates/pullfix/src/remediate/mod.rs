//! Guided remediation: `kubectl pullfix` and `kubectl pullfix fix`.
//!
//! The flow follows the runbook: scan → pick a workload → diagnose → plan →
//! for each step, show what will change (a redacted diff), the equivalent
//! kubectl command and a server-side dry-run of exactly that request, then
//! ask → apply (with a backup, the resourceVersion it was based on, and field
//! manager `kubectl-pullfix`) → restart → verify → summary.
//!
//! Pure parts: [`plan`] (finding → steps), [`verify`] (kubectl's rollout
//! completion rules), [`report`] (escalation, follow-ups, the incident
//! report). I/O: [`apply`], [`flow`], [`prompt`].

pub mod apply;
pub(crate) mod canary;
pub mod flow;
pub mod plan;
pub mod prompt;
pub mod report;
pub mod restore;
pub mod verify;

use chrono::{DateTime, Utc};
use serde::Serialize;

/// What happened to one planned step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum Outcome {
    /// Written to the cluster.
    Applied { detail: String },
    /// `--dry-run`: sent only as a server-side dry-run, which succeeded.
    Rehearsed { detail: String },
    /// The user said no.
    Declined,
    /// Not attempted (with why: no terminal and no --yes, a step it depends
    /// on did not happen, no working credential, ...).
    Skipped { reason: String },
    /// Nothing to do: the object is already as the step would make it
    /// ("regcred is already attached"); steps that depend on it still run.
    Unchanged { detail: String },
    /// The identity may not do this; the missing permission.
    NotPermitted { missing: String },
    /// Attempted and failed.
    Failed { error: String },
}

impl Outcome {
    /// A write that lost to a concurrent change: someone else wrote the
    /// object in between, perhaps fixing it. Not a failure to escalate:
    /// the fresh diagnosis after it says what is left.
    pub fn is_conflict(&self) -> bool {
        matches!(self, Outcome::Failed { error } if error.starts_with(crate::remediate::apply::CONFLICT))
    }
}

/// One step of the incident, as it went.
#[derive(Debug, Clone, Serialize)]
pub struct StepRecord {
    pub at: DateTime<Utc>,
    /// Short title ("update secret shop/regcred").
    pub title: String,
    /// The equivalent kubectl command (redacted).
    pub command: Option<String>,
    /// Backup file written before the change, and how to restore it.
    pub backup: Option<String>,
    pub restore_command: Option<String>,
    pub outcome: Outcome,
}

/// Everything the summary, the escalation and `--report` need.
#[derive(Debug, Clone, Serialize)]
pub struct Incident {
    pub started: DateTime<Utc>,
    pub finished: Option<DateTime<Utc>>,
    /// `deploy/checkout -n shop`.
    pub target: String,
    pub namespace: String,
    /// The findings that started it (first diagnosis).
    pub findings: Vec<crate::diagnose::finding::Finding>,
    /// Findings still present at the end, in every namespace the run
    /// looked at (empty when resolved).
    pub remaining: Vec<crate::diagnose::finding::Finding>,
    pub steps: Vec<StepRecord>,
    /// True only when every workload the run diagnosed, flagged or changed,
    /// in every namespace, was verified healthy after the rollout (never
    /// in a rehearsal).
    pub resolved: bool,
    /// One line: "resolved: every workload … verified healthy", or what
    /// still fails.
    pub verdict: String,
    /// Each workload the run diagnosed, flagged or changed, as verified at
    /// the end: one line each in the summary.
    pub workloads: Vec<WorkloadVerdict>,
    /// A rehearsal (`--dry-run`): nothing was written.
    pub dry_run: bool,
    /// Oldest failure's start, when known (for the 20-minute escalation window).
    pub failing_since: Option<DateTime<Utc>>,
}

/// How one workload the run diagnosed, flagged or changed ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WorkloadVerdict {
    pub workload: crate::scan::Workload,
    /// Verified after the rollout: all replicas ready and no pod failing to
    /// pull its image.
    pub healthy: bool,
    /// `2/2 ready, no pod in ImagePullBackOff`, or `0/2 ready, still
    /// failing (credentials-rejected)`.
    pub state: String,
    /// The command to continue with, when it is not healthy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}
