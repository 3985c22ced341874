//! The Job controller: pods, the backoff limit with exponential delay,
//! status and conditions (CronJobs are left alone).

use super::*;

pub(super) const JOB_CONTROLLER: &str = "job-controller";
pub(super) const JOB_STATUS_FIELDS: &[&str] = &[
    "active",
    "ready",
    "succeeded",
    "failed",
    "startTime",
    "completionTime",
    "conditions",
    "uncountedTerminatedPods",
];
pub(super) const JOB_BACKOFF: f64 = 10.0;
pub(super) const JOB_BACKOFF_MAX: f64 = 360.0;

pub(super) fn job_condition(type_: &str, reason: &str, message: &str, clock: &Clock) -> Value {
    json!({
        "type": type_, "status": "True",
        "lastProbeTime": clock.stamp(), "lastTransitionTime": clock.stamp(),
        "reason": reason, "message": message,
    })
}

/// When a failed pod failed: its containers' `finishedAt`, else its last
/// condition change, else its creation.
pub(super) fn failed_at(p: &Value) -> Option<DateTime<Utc>> {
    let finished = p["status"]["containerStatuses"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| time_of(&c["state"]["terminated"]["finishedAt"]))
        .max();
    finished
        .or_else(|| {
            p["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|c| time_of(&c["lastTransitionTime"]))
                .max()
        })
        .or_else(|| created(p))
}

/// Jobs → pods: parallelism and completions, backoff limit, status.
/// Finished jobs, and jobs managed by someone else (`spec.managedBy`), are
/// left alone.
pub fn plan_jobs(snap: &Snapshot, clock: &Clock) -> Vec<Action> {
    let by_owner = pods_by_controller(snap);
    let mut out = Vec::new();
    for job in snap.list(Kind::Job) {
        let managed_by = str_at(job, &["spec", "managedBy"]);
        let conditions = &job["status"]["conditions"];
        if (!managed_by.is_empty() && managed_by != "kubernetes.io/job-controller")
            || condition_true(conditions, "Complete")
            || condition_true(conditions, "Failed")
            || deleting(job)
        {
            continue;
        }
        out.extend(plan_job(
            job,
            by_owner.get(uid(job)).map_or(&[][..], Vec::as_slice),
            clock,
        ));
    }
    out
}

pub(super) fn plan_job(job: &Value, pods: &[&Value], clock: &Clock) -> Vec<Action> {
    let mut out = Vec::new();
    let spec = &job["spec"];
    let ns = namespace(job).to_string();
    let parallelism = int32(&spec["parallelism"], 1).max(0);
    let completions = int(&spec["completions"]).map(|c| c as i32);
    let backoff_limit = int32(&spec["backoffLimit"], 6);
    let suspended = spec["suspend"].as_bool() == Some(true);
    let active: Vec<&Value> = pods.iter().copied().filter(|p| pod_active(p)).collect();
    let ready = active.iter().filter(|p| pod_ready(p)).count() as i32;
    let status = &job["status"];
    let count = |phase: &str| pods.iter().filter(|p| pod_phase(p) == phase).count() as i32;
    let succeeded = count("Succeeded").max(int32(&status["succeeded"], 0));
    let failed_pods: Vec<&Value> = pods
        .iter()
        .copied()
        .filter(|p| pod_phase(p) == "Failed")
        .collect();
    let failed = (failed_pods.len() as i32).max(int32(&status["failed"], 0));
    let mut conditions: Vec<Value> = status["conditions"].as_array().cloned().unwrap_or_default();
    let start = status["startTime"]
        .as_str()
        .map_or_else(|| clock.stamp(), str::to_string);
    let mut completion_time = status["completionTime"].clone();
    let delete_active = |out: &mut Vec<Action>| {
        for p in &active {
            out.push(Action::Delete {
                kind: Kind::Pod,
                namespace: ns.clone(),
                name: name(p).to_string(),
                uid: uid(p).to_string(),
                event: Some(event(
                    Kind::Job,
                    job,
                    "Normal",
                    "SuccessfulDelete",
                    format!("Deleted pod: {}", name(p)),
                    JOB_CONTROLLER,
                )),
            });
        }
    };
    let deadline = int(&spec["activeDeadlineSeconds"])
        .and_then(|s| time_of(&json!(start)).map(|t| t + clock.scaled(s as f64)));
    let complete = match completions {
        Some(c) => succeeded >= c,
        None => succeeded >= 1 && active.is_empty(),
    };
    let mut active_count = active.len() as i32;
    let mut ready_count = ready;
    let mut failure: Option<(&str, &str)> = None;
    if complete {
        conditions.push(job_condition(
            "SuccessCriteriaMet",
            "CompletionsReached",
            "Reached expected number of succeeded pods",
            clock,
        ));
        conditions.push(job_condition(
            "Complete",
            "CompletionsReached",
            "Reached expected number of succeeded pods",
            clock,
        ));
        completion_time = json!(clock.stamp());
        delete_active(&mut out);
        active_count = 0;
        ready_count = 0;
        out.push(Action::Event(event(
            Kind::Job,
            job,
            "Normal",
            "Completed",
            "Job completed".into(),
            JOB_CONTROLLER,
        )));
    } else if failed > backoff_limit {
        failure = Some((
            "BackoffLimitExceeded",
            "Job has reached the specified backoff limit",
        ));
    } else if deadline.is_some_and(|d| d <= clock.now) && !suspended {
        failure = Some((
            "DeadlineExceeded",
            "Job was active longer than specified deadline",
        ));
    } else if suspended {
        if !condition_true(&Value::Array(conditions.clone()), "Suspended") {
            conditions.retain(|c| str_at(c, &["type"]) != "Suspended");
            conditions.push(job_condition(
                "Suspended",
                "JobSuspended",
                "Job suspended",
                clock,
            ));
            out.push(Action::Event(event(
                Kind::Job,
                job,
                "Normal",
                "Suspended",
                "Job suspended".into(),
                JOB_CONTROLLER,
            )));
        }
        delete_active(&mut out);
        active_count = 0;
        ready_count = 0;
    } else {
        if condition_true(&Value::Array(conditions.clone()), "Suspended") {
            conditions.retain(|c| str_at(c, &["type"]) != "Suspended");
            let mut c = job_condition("Suspended", "JobResumed", "Job resumed", clock);
            c["status"] = json!("False");
            conditions.push(c);
            out.push(Action::Event(event(
                Kind::Job,
                job,
                "Normal",
                "Resumed",
                "Job resumed".into(),
                JOB_CONTROLLER,
            )));
        }
        if let Some(d) = deadline {
            out.push(clock.wake_at(d));
        }
        let wanted = match completions {
            Some(c) => parallelism.min((c - succeeded).max(0)),
            None if succeeded == 0 => parallelism,
            None => 0,
        };
        let missing = wanted - active.len() as i32;
        if missing > 0 {
            // Exponential backoff after failures: 10 s doubling, at most 6 min.
            let retry_at = failed_pods
                .iter()
                .filter_map(|p| failed_at(p))
                .max()
                .map(|last| {
                    let exp = (failed_pods.len() as i32 - 1).clamp(0, 16);
                    let delay = (JOB_BACKOFF * 2f64.powi(exp)).min(JOB_BACKOFF_MAX);
                    last + clock.scaled(delay)
                });
            match retry_at {
                Some(at) if at > clock.now => out.push(clock.wake_at(at)),
                _ => {
                    let job_name = name(job);
                    let job_uid = uid(job);
                    let labels = [
                        ("batch.kubernetes.io/controller-uid", job_uid),
                        ("batch.kubernetes.io/job-name", job_name),
                        ("controller-uid", job_uid),
                        ("job-name", job_name),
                    ];
                    for _ in 0..missing {
                        out.push(Action::Create {
                            kind: Kind::Pod,
                            namespace: ns.clone(),
                            body: pod_from_template(&spec["template"], Kind::Job, job, &labels),
                            event: Some(event(
                                Kind::Job,
                                job,
                                "Normal",
                                "SuccessfulCreate",
                                "Created pod: {name}".into(),
                                JOB_CONTROLLER,
                            )),
                        });
                    }
                }
            }
        } else if missing < 0 {
            let mut extra = active.clone();
            extra.sort_by_cached_key(|p| deletion_rank(p));
            for p in extra.into_iter().take((-missing) as usize) {
                out.push(Action::Delete {
                    kind: Kind::Pod,
                    namespace: ns.clone(),
                    name: name(p).to_string(),
                    uid: uid(p).to_string(),
                    event: None,
                });
            }
        }
    }
    if let Some((reason, message)) = failure {
        conditions.push(job_condition("FailureTarget", reason, message, clock));
        conditions.push(job_condition("Failed", reason, message, clock));
        out.push(Action::Event(event(
            Kind::Job,
            job,
            "Warning",
            reason,
            message.into(),
            JOB_CONTROLLER,
        )));
        delete_active(&mut out);
        active_count = 0;
        ready_count = 0;
    }
    let mut desired = Map::new();
    desired.insert("active".into(), json!(active_count));
    desired.insert("ready".into(), json!(ready_count));
    desired.insert("succeeded".into(), json!(succeeded));
    desired.insert("failed".into(), json!(failed));
    if !(suspended && status["startTime"].is_null()) {
        desired.insert("startTime".into(), json!(start));
    }
    desired.insert("completionTime".into(), completion_time);
    desired.insert("conditions".into(), json!(conditions));
    desired.insert("uncountedTerminatedPods".into(), json!({}));
    if status_differs(status, &desired, JOB_STATUS_FIELDS) {
        let mut patch = status_patch(&desired, JOB_STATUS_FIELDS);
        patch["status"]["ready"] = json!(ready_count);
        patch["status"]["uncountedTerminatedPods"] = json!({});
        out.push(Action::PatchStatus {
            kind: Kind::Job,
            namespace: ns,
            name: name(job).to_string(),
            patch,
        });
    }
    out
}
