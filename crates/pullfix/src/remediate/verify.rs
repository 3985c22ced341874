//! Verify a fix: wait for the workload's rollout the way `kubectl rollout
//! status` does.
//!
//! [`rollout_state`] is pure and mirrors kubectl's status viewers
//! (`kubectl/pkg/polymorphichelpers/rollout_status.go`) rule for rule and
//! message for message (without kubectl's trailing newline). [`Progress`]
//! shows the messages on stderr: a spinner on a terminal, plain changed
//! lines otherwise. [`wait_for_rollout`] does the I/O: it polls the object
//! once a second until the rollout is done, has failed, or time runs out.

use std::io::Write;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;

/// Where a rollout stands, with kubectl's message for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RolloutState {
    /// Complete (`kubectl rollout status` exits 0 with this message).
    Done(String),
    /// Still in progress.
    Waiting(String),
    /// Will not complete by itself, or cannot be watched (kubectl exits
    /// with this as its error).
    Failed(String),
}

impl RolloutState {
    /// The message, whatever the state.
    pub(crate) fn message(&self) -> &str {
        match self {
            Self::Done(m) | Self::Waiting(m) | Self::Failed(m) => m,
        }
    }
}

/// kubectl's message for kinds without a status viewer (Pod, Job, CronJob,
/// ReplicaSet): there is nothing to wait for.
fn nothing_to_roll_out(kind: &str) -> RolloutState {
    RolloutState::Done(format!("nothing to roll out for {kind}"))
}

/// The rollout state of a Deployment, StatefulSet or DaemonSet, as
/// `kubectl rollout status` judges it from one read of the object. Other
/// kinds are `Done("nothing to roll out for KIND")`. Missing integer fields
/// count as 0, as in kubectl's typed conversion. Pure.
pub(crate) fn rollout_state(kind: &str, obj: &Value) -> RolloutState {
    match kind {
        "Deployment" => deployment_state(obj),
        "StatefulSet" => statefulset_state(obj),
        "DaemonSet" => daemonset_state(obj),
        other => nothing_to_roll_out(other),
    }
}

/// True when a Deployment is paused (`spec.paused`): its rollout will not
/// progress until it is resumed (`kubectl rollout resume`). Pure.
#[cfg(test)]
pub(crate) fn is_paused(obj: &Value) -> bool {
    obj.pointer("/spec/paused")
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

/// An integer field, absent when missing or null.
fn int_opt(obj: &Value, pointer: &str) -> Option<i64> {
    obj.pointer(pointer).and_then(Value::as_i64)
}

/// An integer field, 0 when missing (Go's zero value).
fn int(obj: &Value, pointer: &str) -> i64 {
    int_opt(obj, pointer).unwrap_or(0)
}

/// A string field, "" when missing (Go's zero value).
fn string<'a>(obj: &'a Value, pointer: &str) -> &'a str {
    obj.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

fn name(obj: &Value) -> &str {
    string(obj, "/metadata/name")
}

/// `DeploymentStatusViewer.Status`.
fn deployment_state(obj: &Value) -> RolloutState {
    let name = name(obj);
    if int(obj, "/metadata/generation") > int(obj, "/status/observedGeneration") {
        return RolloutState::Waiting(
            "Waiting for deployment spec update to be observed...".into(),
        );
    }
    // deploymentutil.GetDeploymentCondition: the first Progressing condition;
    // its reason alone decides (TimedOutReason), whatever its status.
    let progressing = obj
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|conds| {
            conds
                .iter()
                .find(|c| c.get("type").and_then(Value::as_str) == Some("Progressing"))
        });
    if progressing.is_some_and(|c| {
        c.get("reason").and_then(Value::as_str) == Some("ProgressDeadlineExceeded")
    }) {
        return RolloutState::Failed(format!(
            "deployment \"{name}\" exceeded its progress deadline"
        ));
    }
    let updated = int(obj, "/status/updatedReplicas");
    let replicas = int(obj, "/status/replicas");
    let available = int(obj, "/status/availableReplicas");
    if let Some(desired) = int_opt(obj, "/spec/replicas")
        && updated < desired
    {
        return RolloutState::Waiting(format!(
            "Waiting for deployment \"{name}\" rollout to finish: {updated} out of {desired} new replicas have been updated..."
        ));
    }
    if replicas > updated {
        return RolloutState::Waiting(format!(
            "Waiting for deployment \"{name}\" rollout to finish: {} old replicas are pending termination...",
            replicas - updated
        ));
    }
    if available < updated {
        return RolloutState::Waiting(format!(
            "Waiting for deployment \"{name}\" rollout to finish: {available} of {updated} updated replicas are available..."
        ));
    }
    RolloutState::Done(format!("deployment \"{name}\" successfully rolled out"))
}

/// kubectl's error for OnDelete StatefulSets and DaemonSets (it names the
/// StatefulSet strategy constant for both; the text is the same).
const ONLY_ROLLING_UPDATE: &str =
    "rollout status is only available for RollingUpdate strategy type";

/// `StatefulSetStatusViewer.Status`.
fn statefulset_state(obj: &Value) -> RolloutState {
    if string(obj, "/spec/updateStrategy/type") != "RollingUpdate" {
        return RolloutState::Failed(ONLY_ROLLING_UPDATE.into());
    }
    let observed = int(obj, "/status/observedGeneration");
    if observed == 0 || int(obj, "/metadata/generation") > observed {
        return RolloutState::Waiting(
            "Waiting for statefulset spec update to be observed...".into(),
        );
    }
    let desired = int_opt(obj, "/spec/replicas");
    let ready = int(obj, "/status/readyReplicas");
    if let Some(desired) = desired
        && ready < desired
    {
        return RolloutState::Waiting(format!(
            "Waiting for {} pods to be ready...",
            desired - ready
        ));
    }
    let updated = int(obj, "/status/updatedReplicas");
    // The API server defaults rollingUpdate (partition 0) for RollingUpdate
    // StatefulSets, so on a live object this branch decides.
    if obj
        .pointer("/spec/updateStrategy/rollingUpdate")
        .is_some_and(|r| !r.is_null())
    {
        if let (Some(desired), Some(partition)) = (
            desired,
            int_opt(obj, "/spec/updateStrategy/rollingUpdate/partition"),
        ) && updated < desired - partition
        {
            return RolloutState::Waiting(format!(
                "Waiting for partitioned roll out to finish: {updated} out of {} new pods have been updated...",
                desired - partition
            ));
        }
        return RolloutState::Done(format!(
            "partitioned roll out complete: {updated} new pods have been updated..."
        ));
    }
    let update_revision = string(obj, "/status/updateRevision");
    let current_revision = string(obj, "/status/currentRevision");
    if update_revision != current_revision {
        return RolloutState::Waiting(format!(
            "waiting for statefulset rolling update to complete {updated} pods at revision {update_revision}..."
        ));
    }
    RolloutState::Done(format!(
        "statefulset rolling update complete {} pods at revision {current_revision}...",
        int(obj, "/status/currentReplicas")
    ))
}

/// `DaemonSetStatusViewer.Status`.
fn daemonset_state(obj: &Value) -> RolloutState {
    let name = name(obj);
    if string(obj, "/spec/updateStrategy/type") != "RollingUpdate" {
        return RolloutState::Failed(ONLY_ROLLING_UPDATE.into());
    }
    if int(obj, "/metadata/generation") > int(obj, "/status/observedGeneration") {
        return RolloutState::Waiting(
            "Waiting for daemon set spec update to be observed...".into(),
        );
    }
    let desired = int(obj, "/status/desiredNumberScheduled");
    let updated = int(obj, "/status/updatedNumberScheduled");
    let available = int(obj, "/status/numberAvailable");
    if updated < desired {
        return RolloutState::Waiting(format!(
            "Waiting for daemon set \"{name}\" rollout to finish: {updated} out of {desired} new pods have been updated..."
        ));
    }
    if available < desired {
        return RolloutState::Waiting(format!(
            "Waiting for daemon set \"{name}\" rollout to finish: {available} of {desired} updated pods are available..."
        ));
    }
    RolloutState::Done(format!("daemon set \"{name}\" successfully rolled out"))
}

/// Shows rollout progress on stderr: a spinner with the latest message on a
/// terminal; otherwise one plain line per changed message, prefixed with the
/// workload (`deploy/checkout: ...`), with no escape codes.
pub(crate) struct Progress {
    label: String,
    bar: Option<ProgressBar>,
    /// Plain-line mode: where lines go, and the last message written.
    plain: Mutex<Plain>,
}

struct Plain {
    out: Box<dyn Write + Send>,
    last: Option<String>,
}

impl Progress {
    /// `label` names the workload (`deploy/checkout`); `tty` says whether
    /// stderr is a terminal (a spinner) or not (plain lines).
    pub fn new(label: &str, tty: bool) -> Self {
        let label: &str = &crate::sanitize::line(label);
        if tty {
            let bar = ProgressBar::with_draw_target(None, crate::terminal::spinner_target());
            if let Ok(style) =
                ProgressStyle::with_template("{spinner} {prefix}: {wide_msg} [{elapsed}]")
            {
                bar.set_style(style);
            }
            bar.set_prefix(label.to_string());
            bar.enable_steady_tick(Duration::from_millis(120));
            Self {
                label: label.to_string(),
                bar: Some(bar),
                plain: Mutex::new(Plain {
                    out: Box::new(std::io::sink()),
                    last: None,
                }),
            }
        } else {
            Self::plain_to(label, Box::new(std::io::stderr()))
        }
    }

    /// Plain-line mode writing to `out` (stderr in [`Progress::new`]).
    fn plain_to(label: &str, out: Box<dyn Write + Send>) -> Self {
        let label: &str = &crate::sanitize::line(label);
        Self {
            label: label.to_string(),
            bar: None,
            plain: Mutex::new(Plain { out, last: None }),
        }
    }

    /// Says how long the wait lasts at most (`deploy/checkout (up to 1m)`).
    pub(crate) fn limit(&self, timeout: Duration) {
        if let Some(bar) = &self.bar {
            bar.set_prefix(format!(
                "{} ({})",
                self.label,
                crate::terminal::at_most(timeout)
            ));
        }
    }

    /// Shows the current state (a line only when it changed, without a terminal).
    pub(crate) fn update(&self, msg: &str) {
        match &self.bar {
            Some(bar) => bar.set_message(
                crate::sanitize::line(&console::strip_ansi_codes(msg.trim_end())).into_owned(),
            ),
            None => self.line(msg),
        }
    }

    /// Stops: on a terminal the spinner is cleared (the caller prints the
    /// outcome, and no spinner line stays above it); without one, prints
    /// `msg` unless it was the last line printed.
    pub(crate) fn finish(&self, msg: &str) {
        match &self.bar {
            Some(bar) => bar.finish_and_clear(),
            None => self.line(msg),
        }
    }

    fn line(&self, msg: &str) {
        // Rollout messages quote the cluster: shown inert, on one line.
        let msg = crate::sanitize::line(&console::strip_ansi_codes(msg.trim_end())).into_owned();
        let mut plain = self.plain.lock().unwrap_or_else(|p| p.into_inner());
        if plain.last.as_deref() == Some(msg.as_str()) {
            return;
        }
        // Progress output is best-effort: a closed stderr must not fail a fix.
        let _ = writeln!(plain.out, "{}: {msg}", self.label);
        let _ = plain.out.flush();
        plain.last = Some(msg);
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(bar) = &self.bar
            && !bar.is_finished()
        {
            bar.finish_and_clear();
        }
    }
}

/// How often the object is read.
const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// Waits for the workload's rollout: reads it once a second, shows each
/// state on `progress`, and returns as soon as it is Done or Failed, or
/// `Waiting(last message)` when `timeout` runs out (not an error: the caller
/// decides). The object is read at least once. Kinds without a rollout
/// (Pod, Job, CronJob, ReplicaSet) are Done at once, without a request.
/// `progress` is finished with the final message before returning Ok.
/// Ctrl-C ends the wait with [`crate::terminal::Interrupted`].
pub(crate) async fn wait_for_rollout(
    client: &kube::Client,
    workload: &crate::scan::Workload,
    timeout: Duration,
    progress: &Progress,
) -> anyhow::Result<RolloutState> {
    let crate::scan::Workload {
        kind,
        namespace: ns,
        name,
    } = workload;
    let Some(resource) = crate::api::Writable::workload(kind) else {
        let state = nothing_to_roll_out(kind);
        progress.finish(state.message());
        return Ok(state);
    };
    progress.limit(timeout);
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let obj: Value = crate::api::ObjectRef::new(resource, ns, name)
            .get_opt(client)
            .await?
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "{kind} {ns}/{name} was deleted while its rollout was watched\nhelp: check who deleted it (kubectl get events -n {ns})"
                )
            })?;
        let state = rollout_state(kind, &obj);
        let waiting = match &state {
            RolloutState::Done(m) | RolloutState::Failed(m) => {
                progress.finish(m);
                return Ok(state);
            }
            RolloutState::Waiting(m) => m,
        };
        let now = tokio::time::Instant::now();
        if now >= deadline {
            progress.finish(&format!(
                "{waiting} (stopped waiting after {})",
                human_duration(timeout)
            ));
            return Ok(state);
        }
        progress.update(waiting);
        // Ctrl-C ends the wait at once (the flow then reports what was written).
        if crate::terminal::until_interrupted(tokio::time::sleep(POLL_INTERVAL.min(deadline - now)))
            .await
            .is_err()
        {
            progress.finish(&format!("{waiting} (interrupted: stopped waiting)"));
            return Err(crate::terminal::Interrupted.into());
        }
    }
}

/// How ready a workload is, as read after its rollout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Readiness {
    /// Ready and desired replicas (a bare pod: ready and all containers).
    Counts(i64, i64),
    /// The object no longer exists.
    Gone,
    /// Not counted (a Job or CronJob, or the read failed).
    Unknown,
}

/// Causes no change in the cluster fixes: the network, the registry, the
/// rights the registry grants, the image's platforms.
fn outside_the_cluster(cause: crate::diagnose::Cause) -> bool {
    use crate::diagnose::Cause;
    matches!(
        cause,
        Cause::RegistryUnreachable
            | Cause::TlsError
            | Cause::AccessDenied
            | Cause::RepositoryNotFound
            | Cause::PlatformMismatch
            | Cause::RateLimited
            | Cause::PullInterrupted
            | Cause::LayerCorrupt
    )
}

/// The verdict for one workload the run diagnosed, flagged or changed:
/// healthy only when none of its pods fails to pull (`failing`, from the
/// re-diagnosis after the rollout), every replica is ready, and its
/// namespace could be re-diagnosed (`unverified` says why not). An
/// unhealthy one gets the command to continue with. Pure.
pub(crate) fn judge(
    w: &crate::scan::Workload,
    failing: &[&crate::diagnose::finding::Finding],
    readiness: &Readiness,
    unverified: Option<&str>,
) -> crate::remediate::WorkloadVerdict {
    let target = format!("{} -n {}", w.target(), w.namespace);
    let ready = match readiness {
        Readiness::Counts(r, d) => format!("{r}/{d} ready, "),
        Readiness::Gone | Readiness::Unknown => String::new(),
    };
    let (healthy, state, next) = if let Some(why) = unverified {
        (
            false,
            format!("not verified: its namespace could not be diagnosed again ({why})"),
            Some(format!("kubectl pullfix diagnose {target}")),
        )
    } else if !failing.is_empty() {
        let mut causes: Vec<&str> = failing.iter().map(|f| f.cause.id()).collect();
        causes.dedup();
        // Fixed outside the cluster (network, registry, rights): nothing
        // for `fix` to continue with; check again once that is done.
        let outside = failing.iter().all(|f| outside_the_cluster(f.cause));
        if outside {
            (
                false,
                format!(
                    "{ready}still failing ({}): fixed outside the cluster, see the escalation",
                    causes.join(", ")
                ),
                Some(format!("kubectl pullfix diagnose {target}")),
            )
        } else {
            // The secret changed under the pods (a concurrent fix, or one
            // whose restart did not happen): no credential to look for.
            let restart_only = if failing.iter().all(|f| f.credential_works_now()) {
                ", but the pull secret's credential now works against the registry: the pods only need a restart"
            } else {
                ""
            };
            (
                false,
                format!("{ready}still failing ({}){restart_only}", causes.join(", ")),
                Some(format!("kubectl pullfix fix {target}")),
            )
        }
    } else {
        match readiness {
            Readiness::Gone => (
                false,
                "gone: it no longer exists (recreate it from its manifest)".to_string(),
                None,
            ),
            Readiness::Counts(r, d) if r < d => (
                false,
                format!("{ready}no pod in ImagePullBackOff, but not every replica is ready"),
                Some(if w.kind == "Pod" {
                    format!("kubectl describe pod {} -n {}", w.name, w.namespace)
                } else {
                    format!("kubectl rollout status {target}")
                }),
            ),
            _ => (true, format!("{ready}no pod in ImagePullBackOff"), None),
        }
    };
    crate::remediate::WorkloadVerdict {
        workload: w.clone(),
        healthy,
        state,
        next,
    }
}

/// Whether the run resolved the incident, and the one line that says so:
/// only when every workload it diagnosed, flagged or changed is verified
/// healthy — never in a rehearsal, where nothing was written. `applied`
/// and `rehearsed` count the steps. Pure.
pub(crate) fn verdict(
    workloads: &[crate::remediate::WorkloadVerdict],
    dry_run: bool,
    applied: usize,
    rehearsed: usize,
) -> (bool, String) {
    let failing = workloads.iter().filter(|w| !w.healthy).count();
    let n = workloads.len();
    let plural = |k: usize| if k == 1 { "" } else { "s" };
    if dry_run {
        return (
            false,
            format!(
                "rehearsal only: {rehearsed} step{} passed a server-side dry-run; nothing was written, so nothing is resolved ({failing} of {n} workload{} failing now)",
                plural(rehearsed),
                plural(n)
            ),
        );
    }
    if n == 0 {
        return (false, "nothing was failing to pull its image".into());
    }
    if failing == 0 {
        (
            true,
            format!(
                "resolved: every workload this run diagnosed or changed is verified healthy ({n} workload{}, {applied} step{} applied)",
                plural(n),
                plural(applied)
            ),
        )
    } else {
        (
            false,
            format!(
                "NOT resolved: {failing} of {n} workload{} still not healthy",
                plural(n)
            ),
        )
    }
}

/// `90s` → `1m30s`, the way kubectl prints short durations.
fn human_duration(d: Duration) -> String {
    crate::duration::format(d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::sync::Arc;

    fn waiting(s: &str) -> RolloutState {
        RolloutState::Waiting(s.into())
    }
    fn done(s: &str) -> RolloutState {
        RolloutState::Done(s.into())
    }
    fn failed(s: &str) -> RolloutState {
        RolloutState::Failed(s.into())
    }

    fn deploy(generation: i64, replicas: Option<i64>, status: Value) -> Value {
        let mut spec = json!({});
        if let Some(r) = replicas {
            spec["replicas"] = json!(r);
        }
        json!({
            "metadata": {"name": "checkout", "namespace": "shop", "generation": generation},
            "spec": spec,
            "status": status,
        })
    }

    #[test]
    fn deployment_rules() {
        let progressing = |reason: &str, status: &str| {
            json!([
                {"type": "Available", "status": "False", "reason": "MinimumReplicasUnavailable"},
                {"type": "Progressing", "status": status, "reason": reason},
            ])
        };
        let cases: Vec<(&str, Value, RolloutState)> = vec![
            (
                "generation not observed",
                deploy(
                    3,
                    Some(3),
                    json!({"observedGeneration": 2, "replicas": 3, "updatedReplicas": 3, "availableReplicas": 3}),
                ),
                waiting("Waiting for deployment spec update to be observed..."),
            ),
            (
                "generation not observed wins over a progress deadline",
                deploy(
                    3,
                    Some(3),
                    json!({"observedGeneration": 2, "conditions": progressing("ProgressDeadlineExceeded", "False")}),
                ),
                waiting("Waiting for deployment spec update to be observed..."),
            ),
            (
                "no status at all",
                json!({"metadata": {"name": "checkout", "generation": 1}, "spec": {"replicas": 1}}),
                waiting("Waiting for deployment spec update to be observed..."),
            ),
            (
                "progress deadline exceeded",
                deploy(
                    2,
                    Some(3),
                    json!({"observedGeneration": 2, "replicas": 4, "updatedReplicas": 1, "availableReplicas": 3,
                    "conditions": progressing("ProgressDeadlineExceeded", "False")}),
                ),
                failed("deployment \"checkout\" exceeded its progress deadline"),
            ),
            (
                "progressing normally",
                deploy(
                    2,
                    Some(3),
                    json!({"observedGeneration": 2, "replicas": 4, "updatedReplicas": 1, "availableReplicas": 3,
                    "conditions": progressing("ReplicaSetUpdated", "True")}),
                ),
                waiting(
                    "Waiting for deployment \"checkout\" rollout to finish: 1 out of 3 new replicas have been updated...",
                ),
            ),
            (
                "observed generation ahead counts as observed",
                deploy(
                    2,
                    Some(3),
                    json!({"observedGeneration": 5, "replicas": 3, "updatedReplicas": 0}),
                ),
                waiting(
                    "Waiting for deployment \"checkout\" rollout to finish: 0 out of 3 new replicas have been updated...",
                ),
            ),
            (
                "old replicas pending termination",
                deploy(
                    2,
                    Some(3),
                    json!({"observedGeneration": 2, "replicas": 5, "updatedReplicas": 3, "availableReplicas": 3}),
                ),
                waiting(
                    "Waiting for deployment \"checkout\" rollout to finish: 2 old replicas are pending termination...",
                ),
            ),
            (
                "spec.replicas missing skips the updated check",
                deploy(
                    2,
                    None,
                    json!({"observedGeneration": 2, "replicas": 2, "updatedReplicas": 1, "availableReplicas": 1}),
                ),
                waiting(
                    "Waiting for deployment \"checkout\" rollout to finish: 1 old replicas are pending termination...",
                ),
            ),
            (
                "updated replicas not yet available",
                deploy(
                    2,
                    Some(3),
                    json!({"observedGeneration": 2, "replicas": 3, "updatedReplicas": 3, "availableReplicas": 1}),
                ),
                waiting(
                    "Waiting for deployment \"checkout\" rollout to finish: 1 of 3 updated replicas are available...",
                ),
            ),
            (
                "complete",
                deploy(
                    2,
                    Some(3),
                    json!({"observedGeneration": 2, "replicas": 3, "updatedReplicas": 3, "availableReplicas": 3,
                    "conditions": progressing("NewReplicaSetAvailable", "True")}),
                ),
                done("deployment \"checkout\" successfully rolled out"),
            ),
            (
                "scaled to zero",
                deploy(4, Some(0), json!({"observedGeneration": 4})),
                done("deployment \"checkout\" successfully rolled out"),
            ),
        ];
        for (what, obj, want) in cases {
            assert_eq!(rollout_state("Deployment", &obj), want, "{what}");
        }
    }

    fn sts(generation: i64, replicas: i64, strategy: Value, status: Value) -> Value {
        json!({
            "metadata": {"name": "db", "namespace": "shop", "generation": generation},
            "spec": {"replicas": replicas, "updateStrategy": strategy},
            "status": status,
        })
    }

    #[test]
    fn statefulset_rules() {
        let rolling = json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}});
        let bare_rolling = json!({"type": "RollingUpdate"});
        let cases: Vec<(&str, Value, RolloutState)> = vec![
            (
                "OnDelete",
                sts(
                    2,
                    3,
                    json!({"type": "OnDelete"}),
                    json!({"observedGeneration": 2, "readyReplicas": 3}),
                ),
                failed("rollout status is only available for RollingUpdate strategy type"),
            ),
            (
                "strategy missing",
                sts(2, 3, json!({}), json!({"observedGeneration": 2})),
                failed("rollout status is only available for RollingUpdate strategy type"),
            ),
            (
                "never observed",
                sts(1, 3, rolling.clone(), json!({"readyReplicas": 3})),
                waiting("Waiting for statefulset spec update to be observed..."),
            ),
            (
                "generation not observed",
                sts(
                    3,
                    3,
                    rolling.clone(),
                    json!({"observedGeneration": 2, "readyReplicas": 3}),
                ),
                waiting("Waiting for statefulset spec update to be observed..."),
            ),
            (
                "pods not ready",
                sts(
                    2,
                    3,
                    rolling.clone(),
                    json!({"observedGeneration": 2, "readyReplicas": 1}),
                ),
                waiting("Waiting for 2 pods to be ready..."),
            ),
            (
                "partitioned, not all updated",
                sts(
                    2,
                    5,
                    json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 2}}),
                    json!({"observedGeneration": 2, "readyReplicas": 5, "updatedReplicas": 1}),
                ),
                waiting(
                    "Waiting for partitioned roll out to finish: 1 out of 3 new pods have been updated...",
                ),
            ),
            (
                "partitioned, done",
                sts(
                    2,
                    5,
                    json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 2}}),
                    json!({"observedGeneration": 2, "readyReplicas": 5, "updatedReplicas": 3}),
                ),
                done("partitioned roll out complete: 3 new pods have been updated..."),
            ),
            (
                "defaulted partition 0 (a live object): partition rule decides",
                sts(
                    2,
                    3,
                    rolling.clone(),
                    json!({"observedGeneration": 2, "readyReplicas": 3, "updatedReplicas": 3,
                    "currentRevision": "db-1", "updateRevision": "db-2"}),
                ),
                done("partitioned roll out complete: 3 new pods have been updated..."),
            ),
            (
                "rollingUpdate without partition",
                sts(
                    2,
                    3,
                    json!({"type": "RollingUpdate", "rollingUpdate": {}}),
                    json!({"observedGeneration": 2, "readyReplicas": 3, "updatedReplicas": 2}),
                ),
                done("partitioned roll out complete: 2 new pods have been updated..."),
            ),
            (
                "revisions differ",
                sts(
                    2,
                    3,
                    bare_rolling.clone(),
                    json!({"observedGeneration": 2, "readyReplicas": 3, "updatedReplicas": 1,
                    "currentReplicas": 2, "currentRevision": "db-6f9c", "updateRevision": "db-7d4b"}),
                ),
                waiting(
                    "waiting for statefulset rolling update to complete 1 pods at revision db-7d4b...",
                ),
            ),
            (
                "revisions equal",
                sts(
                    2,
                    3,
                    bare_rolling,
                    json!({"observedGeneration": 2, "readyReplicas": 3, "updatedReplicas": 3,
                    "currentReplicas": 3, "currentRevision": "db-7d4b", "updateRevision": "db-7d4b"}),
                ),
                done("statefulset rolling update complete 3 pods at revision db-7d4b..."),
            ),
        ];
        for (what, obj, want) in cases {
            assert_eq!(rollout_state("StatefulSet", &obj), want, "{what}");
        }
    }

    fn ds(generation: i64, strategy: &str, status: Value) -> Value {
        json!({
            "metadata": {"name": "node-agent", "namespace": "kube-system", "generation": generation},
            "spec": {"updateStrategy": {"type": strategy}},
            "status": status,
        })
    }

    #[test]
    fn daemonset_rules() {
        let cases: Vec<(&str, Value, RolloutState)> = vec![
            (
                "OnDelete",
                ds(2, "OnDelete", json!({"observedGeneration": 2})),
                failed("rollout status is only available for RollingUpdate strategy type"),
            ),
            (
                "generation not observed",
                ds(
                    3,
                    "RollingUpdate",
                    json!({"observedGeneration": 2, "desiredNumberScheduled": 4, "updatedNumberScheduled": 4, "numberAvailable": 4}),
                ),
                waiting("Waiting for daemon set spec update to be observed..."),
            ),
            (
                "not all updated",
                ds(
                    2,
                    "RollingUpdate",
                    json!({"observedGeneration": 2, "desiredNumberScheduled": 4, "updatedNumberScheduled": 1, "numberAvailable": 4}),
                ),
                waiting(
                    "Waiting for daemon set \"node-agent\" rollout to finish: 1 out of 4 new pods have been updated...",
                ),
            ),
            (
                "not all available",
                ds(
                    2,
                    "RollingUpdate",
                    json!({"observedGeneration": 2, "desiredNumberScheduled": 4, "updatedNumberScheduled": 4, "numberAvailable": 2}),
                ),
                waiting(
                    "Waiting for daemon set \"node-agent\" rollout to finish: 2 of 4 updated pods are available...",
                ),
            ),
            (
                "complete",
                ds(
                    2,
                    "RollingUpdate",
                    json!({"observedGeneration": 2, "desiredNumberScheduled": 4, "updatedNumberScheduled": 4, "numberAvailable": 4}),
                ),
                done("daemon set \"node-agent\" successfully rolled out"),
            ),
        ];
        for (what, obj, want) in cases {
            assert_eq!(rollout_state("DaemonSet", &obj), want, "{what}");
        }
    }

    #[test]
    fn other_kinds_have_nothing_to_roll_out() {
        for kind in ["Pod", "Job", "CronJob", "ReplicaSet"] {
            assert_eq!(
                rollout_state(kind, &json!({})),
                done(&format!("nothing to roll out for {kind}"))
            );
        }
    }

    #[test]
    fn paused() {
        assert!(is_paused(&json!({"spec": {"paused": true}})));
        assert!(!is_paused(&json!({"spec": {"paused": false}})));
        assert!(!is_paused(&json!({"spec": {}})));
        assert!(!is_paused(&json!({})));
    }

    /// A `Write` the test can read back.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);
    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    impl Captured {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    #[test]
    fn plain_progress_prints_changed_lines_only() {
        let out = Captured::default();
        let p = Progress::plain_to("deploy/checkout", Box::new(out.clone()));
        p.update("Waiting for 1 of 3");
        p.update("Waiting for 1 of 3");
        p.update("\u{1b}[31mWaiting for 2 of 3\u{1b}[0m");
        p.finish("done");
        p.finish("done");
        assert_eq!(
            out.text(),
            "deploy/checkout: Waiting for 1 of 3\ndeploy/checkout: Waiting for 2 of 3\ndeploy/checkout: done\n"
        );
    }

    #[test]
    fn tty_progress_does_not_panic() {
        // Drawn to stderr, which indicatif hides when it is not a terminal.
        let p = Progress::new("deploy/checkout", true);
        p.update("Waiting");
        p.finish("done");
        let q = Progress::new("sts/db", true);
        q.update("dropped unfinished");
    }

    #[test]
    fn durations() {
        assert_eq!(human_duration(Duration::from_secs(0)), "0s");
        assert_eq!(human_duration(Duration::from_secs(45)), "45s");
        assert_eq!(human_duration(Duration::from_secs(300)), "5m");
        assert_eq!(human_duration(Duration::from_secs(90)), "1m30s");
    }

    /// A one-request-per-connection HTTP server answering GETs with the
    /// given (status, body) responses in turn (the last one repeats), and
    /// recording the request lines.
    async fn fake_apiserver(
        responses: Vec<(u16, Value)>,
    ) -> (kube::Client, Arc<Mutex<Vec<String>>>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        tokio::spawn(async move {
            let mut i = 0;
            loop {
                let Ok((mut sock, _)) = listener.accept().await else {
                    return;
                };
                let mut buf = Vec::new();
                let mut chunk = [0u8; 1024];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut chunk).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&buf);
                log.lock()
                    .unwrap()
                    .push(head.lines().next().unwrap_or("").to_string());
                let (code, body) = &responses[i.min(responses.len() - 1)];
                i += 1;
                let body = body.to_string();
                let resp = format!(
                    "HTTP/1.1 {code} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = sock.write_all(resp.as_bytes()).await;
                let _ = sock.shutdown().await;
            }
        });
        let config = kube::Config::new(format!("http://{addr}").parse().unwrap());
        (kube::Client::try_from(config).unwrap(), seen)
    }

    fn workload(kind: &str) -> crate::scan::Workload {
        crate::scan::Workload {
            kind: kind.into(),
            namespace: "shop".into(),
            name: "checkout".into(),
        }
    }

    fn quiet() -> (Progress, Captured) {
        let out = Captured::default();
        (
            Progress::plain_to("deploy/checkout", Box::new(out.clone())),
            out,
        )
    }

    #[tokio::test]
    async fn waits_until_done() {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let rolling = deploy(
            2,
            Some(3),
            json!({"observedGeneration": 2, "replicas": 3, "updatedReplicas": 3, "availableReplicas": 1}),
        );
        let complete = deploy(
            2,
            Some(3),
            json!({"observedGeneration": 2, "replicas": 3, "updatedReplicas": 3, "availableReplicas": 3}),
        );
        let (client, seen) = fake_apiserver(vec![(200, rolling), (200, complete)]).await;
        let (progress, out) = quiet();
        let state = wait_for_rollout(
            &client,
            &workload("Deployment"),
            Duration::from_secs(30),
            &progress,
        )
        .await
        .unwrap();
        assert_eq!(
            state,
            done("deployment \"checkout\" successfully rolled out")
        );
        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 2);
        assert!(
            seen[0].starts_with("GET /apis/apps/v1/namespaces/shop/deployments/checkout "),
            "{seen:?}"
        );
        assert_eq!(
            out.text(),
            "deploy/checkout: Waiting for deployment \"checkout\" rollout to finish: 1 of 3 updated replicas are available...\n\
             deploy/checkout: deployment \"checkout\" successfully rolled out\n"
        );
    }

    #[tokio::test]
    async fn returns_failed_at_once() {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let stuck = json!({
            "metadata": {"name": "checkout", "generation": 2},
            "spec": {"replicas": 3},
            "status": {"observedGeneration": 2, "conditions": [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}]},
        });
        let (client, seen) = fake_apiserver(vec![(200, stuck)]).await;
        let (progress, _) = quiet();
        let state = wait_for_rollout(
            &client,
            &workload("Deployment"),
            Duration::from_secs(30),
            &progress,
        )
        .await
        .unwrap();
        assert_eq!(
            state,
            failed("deployment \"checkout\" exceeded its progress deadline")
        );
        assert_eq!(seen.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn timeout_returns_last_waiting_message() {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let obj = json!({
            "metadata": {"name": "db", "generation": 2},
            "spec": {"replicas": 3, "updateStrategy": {"type": "RollingUpdate"}},
            "status": {"observedGeneration": 2, "readyReplicas": 1},
        });
        let (client, seen) = fake_apiserver(vec![(200, obj)]).await;
        let (progress, out) = quiet();
        let state = wait_for_rollout(
            &client,
            &workload("StatefulSet"),
            Duration::from_millis(1500),
            &progress,
        )
        .await
        .unwrap();
        assert_eq!(state, waiting("Waiting for 2 pods to be ready..."));
        let seen = seen.lock().unwrap().clone();
        assert!(seen.len() >= 2 && seen.len() <= 3, "{seen:?}");
        assert!(seen[0].starts_with("GET /apis/apps/v1/namespaces/shop/statefulsets/checkout "));
        assert_eq!(
            out.text(),
            "deploy/checkout: Waiting for 2 pods to be ready...\n\
             deploy/checkout: Waiting for 2 pods to be ready... (stopped waiting after 1s)\n"
        );
    }

    #[tokio::test]
    async fn api_errors_name_the_object() {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let status = json!({
            "kind": "Status", "apiVersion": "v1", "status": "Failure",
            "message": "daemonsets.apps \"checkout\" is forbidden: User \"dev\" cannot get resource",
            "reason": "Forbidden", "code": 403,
        });
        let (client, _) = fake_apiserver(vec![(403, status)]).await;
        let (progress, _) = quiet();
        let err = wait_for_rollout(
            &client,
            &workload("DaemonSet"),
            Duration::from_secs(5),
            &progress,
        )
        .await
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with("get daemonset shop/checkout: forbidden: "),
            "{err}"
        );
        assert!(
            err.contains("help: your identity may not get daemonsets.apps in namespace shop; check with `kubectl auth can-i get daemonsets.apps/checkout -n shop`"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn kinds_without_rollout_need_no_request() {
        // Nothing listens here: any request would fail.
        let client =
            kube::Client::try_from(kube::Config::new("http://127.0.0.1:9".parse().unwrap()))
                .unwrap();
        for kind in ["Pod", "Job", "CronJob"] {
            let (progress, out) = quiet();
            let state =
                wait_for_rollout(&client, &workload(kind), Duration::from_secs(5), &progress)
                    .await
                    .unwrap();
            assert_eq!(state, done(&format!("nothing to roll out for {kind}")));
            assert_eq!(
                out.text(),
                format!("deploy/checkout: nothing to roll out for {kind}\n")
            );
        }
    }

    // --- the verdict -----------------------------------------------------

    fn checkout_in(ns: &str) -> crate::scan::Workload {
        crate::scan::Workload {
            kind: "Deployment".into(),
            namespace: ns.into(),
            name: "checkout".into(),
        }
    }

    fn failing(ns: &str, cause: crate::diagnose::Cause) -> crate::diagnose::finding::Finding {
        crate::diagnose::finding::Finding::sample(ns, cause, "reg.example.com/team/app:v1")
    }

    #[test]
    fn a_workload_is_healthy_only_when_nothing_fails_and_every_replica_is_ready() {
        let w = checkout_in("shop");
        let ok = judge(&w, &[], &Readiness::Counts(2, 2), None);
        assert!(ok.healthy);
        assert_eq!(ok.state, "2/2 ready, no pod in ImagePullBackOff");
        assert_eq!(ok.next, None);

        let f = failing("shop-c", crate::diagnose::Cause::CredentialsRejected);
        let bad = judge(
            &checkout_in("shop-c"),
            &[&f],
            &Readiness::Counts(0, 2),
            None,
        );
        assert!(!bad.healthy);
        assert_eq!(bad.state, "0/2 ready, still failing (credentials-rejected)");
        assert_eq!(
            bad.next.as_deref(),
            Some("kubectl pullfix fix deploy/checkout -n shop-c")
        );

        let slow = judge(&w, &[], &Readiness::Counts(1, 2), None);
        assert!(!slow.healthy, "{slow:?}");
        assert_eq!(
            slow.next.as_deref(),
            Some("kubectl rollout status deploy/checkout -n shop")
        );

        let gone = judge(&w, &[], &Readiness::Gone, None);
        assert!(!gone.healthy);

        let unknown = judge(&w, &[], &Readiness::Unknown, Some("forbidden"));
        assert!(!unknown.healthy);
        assert!(unknown.state.contains("not verified"), "{unknown:?}");

        // An outage: `fix` has nothing to continue with.
        let down = failing("shop", crate::diagnose::Cause::RegistryUnreachable);
        let outage = judge(&w, &[&down], &Readiness::Counts(0, 1), None);
        assert!(!outage.healthy);
        assert_eq!(
            outage.state,
            "0/1 ready, still failing (registry-unreachable): fixed outside the cluster, see the escalation"
        );
        assert_eq!(
            outage.next.as_deref(),
            Some("kubectl pullfix diagnose deploy/checkout -n shop")
        );
    }

    #[test]
    fn resolved_only_when_every_workload_in_every_namespace_is_healthy() {
        let shop = judge(&checkout_in("shop"), &[], &Readiness::Counts(2, 2), None);
        let f = failing("shop-c", crate::diagnose::Cause::CredentialsRejected);
        let shop_c = judge(
            &checkout_in("shop-c"),
            &[&f],
            &Readiness::Counts(0, 2),
            None,
        );

        let (resolved, line) = verdict(std::slice::from_ref(&shop), false, 2, 0);
        assert!(resolved);
        assert!(line.starts_with("resolved: "), "{line}");

        // `rotated-password-partial`, answered y / n / y: shop is fine,
        // shop-c (flagged, its update declined) is not.
        let (resolved, line) = verdict(&[shop.clone(), shop_c.clone()], false, 2, 0);
        assert!(!resolved);
        assert_eq!(line, "NOT resolved: 1 of 2 workloads still not healthy");

        // A rehearsal resolves nothing, even when all is well already.
        let (resolved, line) = verdict(&[shop], true, 0, 3);
        assert!(!resolved);
        assert!(line.starts_with("rehearsal only: 3 steps passed"), "{line}");
        assert!(!line.contains("resolved:"), "{line}");

        // Nothing diagnosed: nothing to resolve.
        assert!(!verdict(&[], false, 0, 0).0);
    }
}
