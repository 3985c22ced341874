//! The guided flow: scan → pick → diagnose → plan → steps → verify →
//! summary, round again when the error changed, escalate when it will not
//! resolve. Narrative on stdout (stderr with `-o json|yaml`, where stdout
//! carries the incident), questions on stderr.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use chrono::Utc;
use kube::Client;

use crate::collect::Scope;
use crate::diagnose::finding::Finding;
use crate::diagnose::run::{self as diagnose, Target};
use crate::probe::Prober;
use crate::remediate::apply::{CredentialFlags, Executor};
use crate::remediate::plan::{self, Action, AttachTo, PlanOptions};
use crate::remediate::prompt::Prompter;
use crate::remediate::report;
use crate::remediate::verify::{Progress, RolloutState, wait_for_rollout};
use crate::remediate::{Incident, Outcome};
use crate::render::{self, Palette};
use crate::scan::{self, Workload};

/// Everything `fix` can be told.
#[derive(Debug, Clone)]
pub struct FixOptions {
    pub dry_run: bool,
    pub timeout: Duration,
    pub report: Option<PathBuf>,
    pub creds: CredentialFlags,
    pub image: Option<String>,
    pub attach_to: Option<AttachTo>,
    pub secret_name: Option<String>,
    pub backup_dir: PathBuf,
    pub probe_timeout: Duration,
    pub max_rounds: usize,
    pub color: bool,
    pub before_write_hook: Option<String>,
    /// `--registry-hosts`: where the nodes' containerd sends each registry's
    /// requests.
    pub registry_hosts: Option<crate::registry::hosts::RegistryHosts>,
}

/// Runs the flow; returns the exit code and the incident record.
pub async fn run(
    client: &Client,
    scope: &Scope,
    target: Option<Target>,
    opts: &FixOptions,
    prompter: &mut dyn Prompter,
    out: &mut dyn std::io::Write,
) -> anyhow::Result<(u8, Option<Incident>)> {
    let palette = Palette::new(opts.color);
    // 1. Which workload.
    let (ns, target) = match target {
        Some(t) => match scope {
            Scope::Namespace(ns) => (ns.clone(), t),
            Scope::All => {
                anyhow::bail!("a TARGET needs one namespace: use -n NAMESPACE instead of -A")
            }
        },
        None => {
            writeln!(
                out,
                "{}",
                palette.bold.apply_to("Step 0 — quick assessment")
            )?;
            let assessment = scan::run(client, scope).await?;
            render::scan_text(out, &assessment, &palette)?;
            if assessment.groups.is_empty() {
                return Ok((crate::EXIT_OK, None));
            }
            let chosen = if assessment.groups.len() == 1 {
                Some(0)
            } else {
                let items: Vec<String> = assessment
                    .groups
                    .iter()
                    .map(|g| {
                        format!(
                            "{:?} {} -n {} ({}, {}/{} ready)",
                            g.severity,
                            g.workload.target(),
                            g.workload.namespace,
                            g.cause.id(),
                            g.ready,
                            g.desired
                        )
                    })
                    .collect();
                prompter.select("Which workload first?", &items)?
            };
            let Some(i) = chosen else {
                writeln!(
                    out,
                    "several workloads fail: name one (kubectl pullfix fix TARGET -n NAMESPACE) or run in a terminal"
                )?;
                return Ok((crate::EXIT_FAILURES, None));
            };
            let g = &assessment.groups[i];
            (
                g.workload.namespace.clone(),
                Target::Named {
                    kind: g.workload.kind.clone(),
                    name: if g.workload.kind == "Pod" {
                        g.pods[0].clone()
                    } else {
                        g.workload.name.clone()
                    },
                },
            )
        }
    };
    let target_text = match &target {
        Target::Named { kind, name } => format!(
            "{} -n {ns}",
            Workload {
                kind: kind.clone(),
                namespace: ns.clone(),
                name: name.clone()
            }
            .target()
        ),
        Target::All => format!("everything failing in {ns}"),
    };
    let scope = Scope::Namespace(ns.clone());
    let mut incident = Incident {
        started: Utc::now(),
        finished: None,
        target: target_text.clone(),
        namespace: ns.clone(),
        findings: Vec::new(),
        remaining: Vec::new(),
        steps: Vec::new(),
        resolved: false,
        verdict: String::new(),
        dry_run: opts.dry_run,
        failing_since: None,
    };
    let diag_opts = diagnose::Options {
        probe: true,
        probe_timeout: opts.probe_timeout,
        registry_hosts: opts.registry_hosts.clone(),
    };
    let registry = crate::probe::config(opts.probe_timeout, opts.registry_hosts.as_ref());
    let prober = Prober::new(&registry, opts.probe_timeout)?;
    let ecr = crate::diagnose::ecr::EcrClient::from_env(true).await;
    let mut executor = Executor {
        client,
        dry_run: opts.dry_run,
        prompter,
        out,
        backup_dir: opts.backup_dir.clone(),
        creds: opts.creds.clone(),
        prober,
        ecr,
        written: None,
        before_write_hook: opts.before_write_hook.clone(),
    };
    let mut pending = false;
    let mut unfixable = false;
    let mut scan_notes: Vec<String> = Vec::new();
    let mut last_findings: Vec<Finding> = Vec::new();
    let mut changed_since_diagnosis = false;
    for round in 1..=opts.max_rounds.max(1) {
        // 2. Diagnose.
        writeln!(
            executor.out,
            "\n{}",
            palette.bold.apply_to(format!(
                "Diagnosis of {target_text}{}",
                if round > 1 {
                    format!(" (round {round})")
                } else {
                    String::new()
                }
            ))
        )?;
        let report = diagnose::run(client, &scope, &target, &diag_opts).await?;
        scan_notes.clone_from(&report.notes);
        last_findings.clone_from(&report.findings);
        changed_since_diagnosis = false;
        if report.findings.is_empty() {
            writeln!(
                executor.out,
                "{} {}",
                palette.good.apply_to("ok:"),
                if round == 1 {
                    format!("nothing in {target_text} is failing to pull its image")
                } else {
                    "no pod fails to pull its image any more".to_string()
                }
            )?;
            break;
        }
        render::diagnose_text(executor.out, &report, &palette)?;
        if round == 1 {
            incident.findings = report.findings.clone();
            incident.failing_since = failing_since(&report.findings);
        }
        // 3. Plan.
        let mut any_applied = false;
        let mut workloads_changed: Vec<Workload> = Vec::new();
        for f in &report.findings {
            let sa = service_account(client, f).await;
            let plan_opts = PlanOptions {
                attach_to: opts
                    .attach_to
                    .or_else(|| choose_attach(executor.prompter, f)),
                image: opts.image.clone(),
                secret_name: opts.secret_name.clone(),
                service_account: sa,
            };
            let steps = plan::plan(f, &report.other_namespaces, &plan_opts);
            if steps.is_empty() {
                unfixable = true;
                writeln!(
                    executor.out,
                    "{} {}",
                    palette.warn.apply_to("no fix pullfix can apply:"),
                    plan::no_plan_reason(f.cause).unwrap_or("see the next steps above")
                )?;
                continue;
            }
            writeln!(
                executor.out,
                "{}",
                palette.bold.apply_to(format!(
                    "Plan for {} ({})",
                    f.workload
                        .as_ref()
                        .map_or_else(|| format!("pod/{}", f.pod), Workload::target),
                    f.cause.id()
                ))
            )?;
            for (i, s) in steps.iter().enumerate() {
                writeln!(
                    executor.out,
                    "  {}. {}{}",
                    i + 1,
                    s.title,
                    if s.destructive { " [destructive]" } else { "" }
                )?;
            }
            // 4. Each step, skipping what no longer makes sense.
            let mut secret_failed = false;
            for s in &steps {
                if secret_failed
                    && matches!(
                        s.action,
                        Action::Restart { .. }
                            | Action::UpdateOtherNamespaces { .. }
                            | Action::DeleteBarePod { .. }
                    )
                {
                    let rec = crate::remediate::StepRecord {
                        at: Utc::now(),
                        title: s.title.clone(),
                        command: None,
                        backup: None,
                        restore_command: None,
                        outcome: Outcome::Skipped {
                            reason: "the secret was not changed, so this would not help".into(),
                        },
                    };
                    writeln!(
                        executor.out,
                        "\n▶ {}\n  {}",
                        s.title,
                        crate::remediate::apply::outcome_line(&rec.outcome)
                    )?;
                    incident.steps.push(rec);
                    continue;
                }
                let rec = executor.execute(s, f).await;
                match &rec.outcome {
                    Outcome::Applied { .. } => {
                        any_applied = true;
                        changed_since_diagnosis = true;
                        if let Some(w) = touched_workload(&s.action) {
                            workloads_changed.push(w);
                        }
                    }
                    Outcome::Rehearsed { .. } => {}
                    Outcome::Skipped { reason } if reason.contains("no terminal") => pending = true,
                    _ => {}
                }
                if matches!(s.action, Action::WriteSecret { .. })
                    && !matches!(
                        rec.outcome,
                        Outcome::Applied { .. } | Outcome::Rehearsed { .. }
                    )
                {
                    secret_failed = true;
                }
                incident.steps.push(rec);
            }
        }
        if opts.dry_run || !any_applied {
            break;
        }
        // 5. Verify the rollout, then diagnose again (next round).
        workloads_changed.dedup();
        let tty = std::io::IsTerminal::is_terminal(&std::io::stderr());
        for w in &workloads_changed {
            writeln!(
                executor.out,
                "\n{}",
                palette.bold.apply_to(format!(
                    "Verify: kubectl rollout status {} -n {}",
                    w.target(),
                    w.namespace
                ))
            )?;
            let progress = Progress::new(&w.target(), tty);
            match wait_for_rollout(client, w, opts.timeout, &progress).await? {
                RolloutState::Done(m) => {
                    writeln!(executor.out, "  {} {m}", palette.good.apply_to("✔"))?
                }
                RolloutState::Waiting(m) => writeln!(
                    executor.out,
                    "  {} still waiting after {:?}: {m}",
                    palette.warn.apply_to("…"),
                    opts.timeout
                )?,
                RolloutState::Failed(m) => {
                    writeln!(executor.out, "  {} {m}", palette.bad.apply_to("✘"))?
                }
            }
        }
    }
    // 6. Verdict.
    // What still fails: the last diagnosis when nothing changed since, else a fresh one.
    let remaining = if opts.dry_run || !changed_since_diagnosis {
        last_findings
    } else {
        diagnose::run(client, &scope, &target, &diag_opts)
            .await?
            .findings
    };
    incident.remaining = remaining;
    incident.resolved =
        !opts.dry_run && incident.remaining.is_empty() && !incident.findings.is_empty();
    incident.verdict = verdict(client, &target, &ns, &incident).await;
    incident.finished = Some(Utc::now());
    let out = executor.out;
    writeln!(out, "\n{}", palette.bold.apply_to("Summary"))?;
    writeln!(out, "  {}", incident.verdict)?;
    writeln!(out, "  {}", report::summary_line(&incident))?;
    for s in &incident.steps {
        writeln!(
            out,
            "  - {}: {}",
            s.title,
            crate::remediate::apply::outcome_line(&s.outcome)
        )?;
        if let Some(r) = &s.restore_command {
            writeln!(out, "      undo: {r}")?;
        }
    }
    let escalations = report::escalations_with_notes(&incident, &scan_notes, Utc::now());
    for e in &escalations {
        writeln!(
            out,
            "\n{} page {} — {}",
            palette.bad.apply_to("escalate:"),
            e.page,
            e.reason
        )?;
        writeln!(out, "  message: {}", e.message)?;
    }
    let follow_ups = report::follow_ups(&incident.findings, &incident);
    if !follow_ups.is_empty() && !incident.findings.is_empty() {
        writeln!(out, "\n{}", palette.bold.apply_to("After the incident"))?;
        for f in &follow_ups {
            writeln!(out, "  - [ ] {f}")?;
        }
    }
    if let Some(path) = &opts.report {
        let md = report::markdown(&incident, &escalations, &follow_ups);
        crate::write_private(path, &md)
            .with_context(|| format!("write the report to {}", path.display()))?;
        writeln!(out, "\nreport written to {}", path.display())?;
    }
    let _ = unfixable;
    let code = if incident.resolved || incident.findings.is_empty() {
        crate::EXIT_OK
    } else {
        let _ = pending;
        crate::EXIT_FAILURES
    };
    Ok((code, Some(incident)))
}

fn touched_workload(a: &Action) -> Option<Workload> {
    match a {
        Action::SetImage { workload, .. }
        | Action::AttachToWorkload { workload, .. }
        | Action::Restart { workload } => Some(workload.clone()),
        _ => None,
    }
}

fn failing_since(findings: &[Finding]) -> Option<chrono::DateTime<Utc>> {
    findings
        .iter()
        .filter_map(|f| f.failing_for_seconds)
        .max()
        .map(|s| Utc::now() - chrono::Duration::seconds(s))
}

/// The ServiceAccount the failing pod runs as.
async fn service_account(client: &Client, f: &Finding) -> String {
    let pod: Option<crate::collect::PodLite> = crate::collect::get_opt(
        client,
        &format!("/api/v1/namespaces/{}/pods/{}", f.namespace, f.pod),
        "pod",
    )
    .await
    .ok()
    .flatten();
    pod.and_then(|p| p.spec.service_account_name)
        .unwrap_or_else(|| "default".into())
}

/// Asks where to attach a new pull secret, when it matters and a person is there.
fn choose_attach(prompter: &mut dyn Prompter, f: &Finding) -> Option<AttachTo> {
    let needs = f.cause == crate::diagnose::Cause::CredentialsMissing
        && (f.secrets.is_empty())
        && f.workload.is_some();
    if !needs || !prompter.interactive() {
        return None;
    }
    let items = vec![
        "the workload's pod template (only this workload; rolls out new pods)".to_string(),
        "the ServiceAccount (every pod using it; needs a restart)".to_string(),
    ];
    match prompter.select("Attach the pull secret to", &items) {
        Ok(Some(1)) => Some(AttachTo::ServiceAccount),
        Ok(Some(_)) => Some(AttachTo::Workload),
        _ => None,
    }
}

async fn verdict(client: &Client, target: &Target, ns: &str, incident: &Incident) -> String {
    let Target::Named { kind, name } = target else {
        return if incident.remaining.is_empty() {
            format!("{ns}: no pod in ImagePullBackOff")
        } else {
            format!(
                "{ns}: {} workload(s) still failing",
                incident.remaining.len()
            )
        };
    };
    let plural = match kind.as_str() {
        "Deployment" => Some("deployments"),
        "StatefulSet" => Some("statefulsets"),
        "DaemonSet" => Some("daemonsets"),
        _ => None,
    };
    let counts = match plural {
        Some(p) => crate::collect::get_opt::<serde_json::Value>(
            client,
            &format!("/apis/apps/v1/namespaces/{ns}/{p}/{name}"),
            "workload",
        )
        .await
        .ok()
        .flatten()
        .map(|w| {
            let s = &w["status"];
            if kind == "DaemonSet" {
                (
                    s["numberReady"].as_i64().unwrap_or(0),
                    s["desiredNumberScheduled"].as_i64().unwrap_or(0),
                )
            } else {
                (
                    s["readyReplicas"].as_i64().unwrap_or(0),
                    w["spec"]["replicas"].as_i64().unwrap_or(1),
                )
            }
        }),
        None => None,
    };
    let ready = counts
        .map(|(r, d)| format!("{r}/{d} ready, "))
        .unwrap_or_default();
    let applied = incident
        .steps
        .iter()
        .filter(|s| matches!(s.outcome, Outcome::Applied { .. }))
        .count();
    if incident.dry_run {
        let rehearsed = incident
            .steps
            .iter()
            .filter(|s| matches!(s.outcome, Outcome::Rehearsed { .. }))
            .count();
        format!(
            "{name}: rehearsal only — {rehearsed} step(s) passed a server-side dry-run; nothing was written"
        )
    } else if incident.findings.is_empty() {
        format!("{name}: {ready}no pod in ImagePullBackOff")
    } else if incident.remaining.is_empty() {
        format!("{name}: {ready}no pod in ImagePullBackOff: resolved in {applied} step(s)")
    } else {
        let causes: Vec<&str> = incident.remaining.iter().map(|f| f.cause.id()).collect();
        format!("{name}: {ready}still failing ({})", causes.join(", "))
    }
}
