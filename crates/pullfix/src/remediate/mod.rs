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
pub mod flow;
pub mod plan;
pub mod prompt;
pub mod report;
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
    /// Not attempted (with why: no terminal and no --yes, not needed any more, ...).
    Skipped { reason: String },
    /// The identity may not do this; the missing permission.
    NotPermitted { missing: String },
    /// Attempted and failed.
    Failed { error: String },
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
    /// Findings still present at the end (empty when resolved).
    pub remaining: Vec<crate::diagnose::finding::Finding>,
    pub steps: Vec<StepRecord>,
    /// True when every pod of the workload is ready and none fails to pull.
    pub resolved: bool,
    /// One line: "checkout: 5/5 ready, no pod in ImagePullBackOff".
    pub verdict: String,
    /// A rehearsal (`--dry-run`): nothing was written.
    pub dry_run: bool,
    /// Oldest failure's start, when known (for the 20-minute escalation window).
    pub failing_since: Option<DateTime<Utc>>,
}
