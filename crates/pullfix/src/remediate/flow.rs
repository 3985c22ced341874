//! The guided flow: scan → pick → diagnose → plan → steps → verify →
//! summary, round again when the error changed, escalate when it will not
//! resolve. Narrative on stdout (stderr with `-o json|yaml`, where stdout
//! carries the incident), questions on stderr.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use chrono::Utc;
use kube::Client;

use crate::api::{ObjectRef, Writable};
use crate::collect::Scope;
use crate::diagnose::finding::Finding;
use crate::diagnose::run::{self as diagnose, Target};
use crate::probe::Prober;
use crate::remediate::apply::{CredentialFlags, Executor};
use crate::remediate::plan::{self, Action, AttachTo, PlanOptions, PlannedStep};
use crate::remediate::prompt::Prompter;
use crate::remediate::report;
use crate::remediate::verify::{self, Progress, Readiness, RolloutState, wait_for_rollout};
use crate::remediate::{Incident, Outcome};
use crate::render::{self, Palette};
use crate::sanitize::{indented, line};
use crate::scan::{self, Workload};

/// Everything `fix` can be told.
#[derive(Debug, Clone)]
pub struct FixOptions {
    pub dry_run: bool,
    /// `--no-probe`: the diagnosis reads the cluster only.
    pub no_probe: bool,
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
    /// `--registry-ca`: CA certificates (PEM) trusted for every registry.
    pub registry_ca: Vec<Vec<u8>>,
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
    // Ctrl-C from here on is reported, not fatal (see crate::terminal).
    crate::terminal::install_guard();
    // 1. Which workload.
    let (ns, target) = match pick_target(client, scope, target, prompter, out, &palette).await? {
        Picked::Target(ns, target) => (ns, target),
        Picked::Exit(code) => return Ok((code, None)),
    };
    let mut flow = Flow::new(client, ns, target, opts, palette, prompter, out)?;
    let mut incident = flow.new_incident();
    let mut rounds = Rounds::default();
    let rounds_done: anyhow::Result<()> = async {
        for round in 1..=opts.max_rounds.max(1) {
            // 2. Diagnose.
            let Some(report) = flow.diagnose(round, &mut rounds).await? else {
                break;
            };
            if round == 1 {
                incident.findings = report.findings.clone();
                incident.failing_since = failing_since(&report.findings);
            }
            rounds.track(&report);
            // 3. Plan, and 4. apply each step.
            let applied = flow.fix(&report, &mut incident, &mut rounds).await?;
            if opts.dry_run || !applied.any {
                break;
            }
            // 5. Verify the rollout, then diagnose again (next round).
            flow.verify(applied.workloads).await?;
        }
        // 6. Verdict.
        flow.conclude(&mut incident, &mut rounds).await
    }
    .await;
    match rounds_done {
        Err(e) if crate::terminal::is_interrupted(&e) => {
            flow.interrupted(&mut incident)?;
            return Ok((crate::EXIT_INTERRUPTED, Some(incident)));
        }
        other => other?,
    }
    flow.summary(&incident, &rounds.scan_notes)?;
    // Resolved only when every workload the run diagnosed, flagged or
    // changed is verified healthy; otherwise the run has failures left.
    let code = if incident.resolved || incident.findings.is_empty() {
        crate::EXIT_OK
    } else {
        crate::EXIT_FAILURES
    };
    Ok((code, Some(incident)))
}

/// The workload the flow works on, or the exit code when there is none.
enum Picked {
    Target(String, Target),
    Exit(u8),
}

/// The TARGET given, or (step 0) the quick assessment and a choice among
/// the failing workloads.
async fn pick_target(
    client: &Client,
    scope: &Scope,
    target: Option<Target>,
    prompter: &mut dyn Prompter,
    out: &mut dyn std::io::Write,
    palette: &Palette,
) -> anyhow::Result<Picked> {
    if let Some(t) = target {
        return match scope {
            Scope::Namespace(ns) => Ok(Picked::Target(ns.clone(), t)),
            Scope::All => {
                anyhow::bail!("a TARGET needs one namespace: use -n NAMESPACE instead of -A")
            }
        };
    }
    writeln!(
        out,
        "{}",
        palette.bold.apply_to("Step 0 — quick assessment")
    )?;
    let assessment = scan::run(client, scope).await?;
    render::scan_text(out, &assessment, palette)?;
    if assessment.groups.is_empty() {
        return Ok(Picked::Exit(crate::EXIT_OK));
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
                    line(&g.workload.target()),
                    line(&g.workload.namespace),
                    g.cause.id(),
                    g.ready,
                    g.desired
                )
            })
            .collect();
        prompter.select("Which workload first?", &items)?
    };
    let Some(g) = chosen.and_then(|i| assessment.groups.get(i)) else {
        writeln!(
            out,
            "several workloads fail: name one (kubectl pullfix fix TARGET -n NAMESPACE) or run in a terminal"
        )?;
        return Ok(Picked::Exit(crate::EXIT_FAILURES));
    };
    Ok(Picked::Target(
        g.workload.namespace.clone(),
        Target::Named {
            kind: g.workload.kind.clone(),
            // A bare pod's group holds that pod (its own workload).
            name: if g.workload.kind == "Pod" {
                g.pods.first().unwrap_or(&g.workload.name).clone()
            } else {
                g.workload.name.clone()
            },
        },
    ))
}

/// `deploy/checkout -n shop`, or `everything failing in shop`.
fn target_text(target: &Target, ns: &str) -> String {
    match target {
        Target::Named { kind, name } => format!(
            "{} -n {ns}",
            Workload {
                kind: kind.clone(),
                namespace: ns.to_string(),
                name: name.clone()
            }
            .target()
        ),
        Target::All => format!("everything failing in {ns}"),
    }
}

/// What the rounds leave for the verdict.
#[derive(Default)]
struct Rounds {
    scan_notes: Vec<String>,
    last_findings: Vec<Finding>,
    changed_since_diagnosis: bool,
    /// Every workload the run diagnosed, flagged (same stale secret in
    /// another namespace) or changed: the verdict covers each of them.
    tracked: Vec<Workload>,
}

impl Rounds {
    /// Tracks what a diagnosis found and flagged.
    fn track(&mut self, report: &diagnose::Report) {
        for f in &report.findings {
            self.track_workload(finding_workload(f));
        }
        for w in report
            .other_namespaces
            .iter()
            .filter(|o| o.same_credential)
            .flat_map(|o| &o.failing_workloads)
        {
            self.track_workload(w.clone());
        }
    }

    fn track_workload(&mut self, w: Workload) {
        if !self.tracked.contains(&w) {
            self.tracked.push(w);
        }
    }
}

/// The workload a finding is about (its bare pod when it has no controller).
fn finding_workload(f: &Finding) -> Workload {
    f.workload.clone().unwrap_or_else(|| Workload {
        kind: "Pod".into(),
        namespace: f.namespace.clone(),
        name: f.pod.clone(),
    })
}

/// What one round's steps changed.
#[derive(Default)]
struct Applied {
    any: bool,
    workloads: Vec<Workload>,
}

/// The flow for one workload: what it works on and what it works with.
struct Flow<'a> {
    client: &'a Client,
    opts: &'a FixOptions,
    palette: Palette,
    ns: String,
    target: Target,
    target_text: String,
    scope: Scope,
    diag_opts: diagnose::Options,
    executor: Executor<'a>,
}

impl<'a> Flow<'a> {
    fn new(
        client: &'a Client,
        ns: String,
        target: Target,
        opts: &'a FixOptions,
        palette: Palette,
        prompter: &'a mut dyn Prompter,
        out: &'a mut dyn std::io::Write,
    ) -> anyhow::Result<Flow<'a>> {
        let registry = crate::probe::config(
            opts.probe_timeout,
            opts.registry_hosts.as_ref(),
            &opts.registry_ca,
        );
        let prober = Prober::new(&registry, opts.probe_timeout)?;
        // AWS is asked only when an ECR image needs it (not before the
        // cluster is even read).
        let ecr = Some(crate::diagnose::ecr::EcrClient::lazy());
        let executor = Executor {
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
        Ok(Flow {
            client,
            opts,
            palette,
            target_text: target_text(&target, &ns),
            scope: Scope::Namespace(ns.clone()),
            ns,
            target,
            diag_opts: diagnose::Options {
                probe: !opts.no_probe,
                probe_timeout: opts.probe_timeout,
                registry_hosts: opts.registry_hosts.clone(),
                registry_ca: opts.registry_ca.clone(),
            },
            executor,
        })
    }

    fn new_incident(&self) -> Incident {
        Incident {
            started: Utc::now(),
            finished: None,
            target: self.target_text.clone(),
            namespace: self.ns.clone(),
            findings: Vec::new(),
            remaining: Vec::new(),
            workloads: Vec::new(),
            steps: Vec::new(),
            resolved: false,
            verdict: String::new(),
            dry_run: self.opts.dry_run,
            failing_since: None,
        }
    }

    /// One round's diagnosis, shown; `None` when nothing fails any more.
    async fn diagnose(
        &mut self,
        round: usize,
        rounds: &mut Rounds,
    ) -> anyhow::Result<Option<diagnose::Report>> {
        let palette = &self.palette;
        let out = &mut *self.executor.out;
        writeln!(
            out,
            "\n{}",
            palette.bold.apply_to(format!(
                "Diagnosis of {}{}",
                line(&self.target_text),
                if round > 1 {
                    format!(" (round {round})")
                } else {
                    String::new()
                }
            ))
        )?;
        let report = crate::terminal::until_interrupted(Box::pin(diagnose::run(
            self.client,
            &self.scope,
            &self.target,
            &self.diag_opts,
        )))
        .await??;
        rounds.scan_notes.clone_from(&report.notes);
        rounds.last_findings.clone_from(&report.findings);
        rounds.changed_since_diagnosis = false;
        if report.findings.is_empty() {
            writeln!(
                out,
                "{} {}",
                palette.good.apply_to("ok:"),
                if round == 1 {
                    format!(
                        "nothing in {} is failing to pull its image",
                        line(&self.target_text)
                    )
                } else {
                    "no pod fails to pull its image any more".to_string()
                }
            )?;
            return Ok(None);
        }
        render::diagnose_text(out, &report, palette)?;
        Ok(Some(report))
    }

    /// Plans and carries out the steps for every finding.
    async fn fix(
        &mut self,
        report: &diagnose::Report,
        incident: &mut Incident,
        rounds: &mut Rounds,
    ) -> anyhow::Result<Applied> {
        let mut applied = Applied::default();
        for f in &report.findings {
            let attach_to = match self.opts.attach_to {
                Some(a) => Some(a),
                None => choose_attach(self.executor.prompter, f)?,
            };
            let plan_opts = PlanOptions {
                attach_to,
                image: self.opts.image.clone(),
                secret_name: self.opts.secret_name.clone(),
                ..PlanOptions::for_finding(f)
            };
            let steps = plan::plan(f, &report.other_namespaces, &plan_opts);
            if steps.is_empty() {
                writeln!(
                    self.executor.out,
                    "{} {}",
                    self.palette.warn.apply_to("no fix pullfix can apply:"),
                    plan::no_plan_reason(f.cause).unwrap_or("see the next steps above")
                )?;
                continue;
            }
            self.show_plan(f, &steps)?;
            self.run_steps(f, &steps, incident, rounds, &mut applied)
                .await?;
        }
        Ok(applied)
    }

    fn show_plan(&mut self, f: &Finding, steps: &[PlannedStep]) -> anyhow::Result<()> {
        let out = &mut *self.executor.out;
        writeln!(
            out,
            "{}",
            self.palette.bold.apply_to(format!(
                "Plan for {} ({})",
                line(
                    &f.workload
                        .as_ref()
                        .map_or_else(|| format!("pod/{}", f.pod), Workload::target)
                ),
                f.cause.id()
            ))
        )?;
        for (i, s) in steps.iter().enumerate() {
            let after = s.after("");
            writeln!(
                out,
                "  {}. {}{}{}",
                i + 1,
                line(&s.title),
                line(&after),
                if s.destructive { " [destructive]" } else { "" }
            )?;
        }
        Ok(())
    }

    /// Each step in order; a step whose dependencies were declined,
    /// skipped or failed is skipped with the reason (the same rule with or
    /// without a terminal).
    async fn run_steps(
        &mut self,
        f: &Finding,
        steps: &[PlannedStep],
        incident: &mut Incident,
        rounds: &mut Rounds,
        applied: &mut Applied,
    ) -> anyhow::Result<()> {
        let mut outcomes: Vec<Option<Outcome>> = vec![None; steps.len()];
        for (i, s) in steps.iter().enumerate() {
            let rec = if let Some(reason) = plan::blocked(steps, &outcomes, i) {
                let rec = crate::remediate::StepRecord {
                    at: Utc::now(),
                    title: s.title.clone(),
                    command: None,
                    backup: None,
                    restore_command: None,
                    outcome: Outcome::Skipped { reason },
                };
                writeln!(
                    self.executor.out,
                    "\n▶ {}\n  {}",
                    line(&s.title),
                    indented(&crate::remediate::apply::outcome_line(&rec.outcome), "  ")
                )?;
                rec
            } else {
                let rec = self.executor.execute(s, f).await;
                if crate::terminal::interrupted() {
                    return Err(stop_steps(incident, rec, steps, s));
                }
                rec
            };
            if let Outcome::Applied { .. } = &rec.outcome {
                applied.any = true;
                rounds.changed_since_diagnosis = true;
                for w in touched_workloads(&s.action) {
                    rounds.track_workload(w.clone());
                    applied.workloads.push(w);
                }
            }
            // A write that failed (a conflict, most often) may mean someone
            // else changed the object, perhaps fixing it: the verdict then
            // comes from a fresh diagnosis, not the one before.
            if let Outcome::Failed { .. } = &rec.outcome {
                rounds.changed_since_diagnosis = true;
            }
            if let Some(o) = outcomes.get_mut(i) {
                *o = Some(rec.outcome.clone());
            }
            incident.steps.push(rec);
        }
        Ok(())
    }

    /// Waits for the rollouts of the workloads changed.
    async fn verify(&mut self, mut workloads: Vec<Workload>) -> anyhow::Result<()> {
        workloads.dedup();
        let tty = std::io::IsTerminal::is_terminal(&std::io::stderr());
        let (palette, out) = (&self.palette, &mut *self.executor.out);
        for w in &workloads {
            writeln!(
                out,
                "\n{}",
                palette.bold.apply_to(format!(
                    "Verify: kubectl rollout status {} -n {}",
                    line(&w.target()),
                    line(&w.namespace)
                ))
            )?;
            let progress = Progress::new(&w.target(), tty);
            match wait_for_rollout(self.client, w, self.opts.timeout, &progress).await? {
                RolloutState::Done(m) => {
                    writeln!(out, "  {} {}", palette.good.apply_to("✔"), line(&m))?;
                }
                RolloutState::Waiting(m) => writeln!(
                    out,
                    "  {} still waiting after {:?}: {}",
                    palette.warn.apply_to("…"),
                    self.opts.timeout,
                    line(&m)
                )?,
                RolloutState::Failed(m) => {
                    writeln!(out, "  {} {}", palette.bad.apply_to("✘"), line(&m))?;
                }
            }
        }
        Ok(())
    }

    /// What still fails, for every workload the run diagnosed, flagged or
    /// changed, in every namespace: the target's from the last diagnosis
    /// when nothing changed since (else a fresh one), the other namespaces'
    /// re-diagnosed now (after their rollouts); then the verdict.
    async fn conclude(
        &mut self,
        incident: &mut Incident,
        rounds: &mut Rounds,
    ) -> anyhow::Result<()> {
        let mut remaining = if self.opts.dry_run || !rounds.changed_since_diagnosis {
            std::mem::take(&mut rounds.last_findings)
        } else {
            crate::terminal::until_interrupted(Box::pin(diagnose::run(
                self.client,
                &self.scope,
                &self.target,
                &self.diag_opts,
            )))
            .await??
            .findings
        };
        let mut unverified: Vec<(String, String)> = Vec::new();
        let mut others: Vec<&str> = rounds
            .tracked
            .iter()
            .map(|w| w.namespace.as_str())
            .filter(|n| *n != self.ns)
            .collect();
        others.sort_unstable();
        others.dedup();
        for ns in others {
            let scope = Scope::Namespace(ns.to_string());
            match diagnose::run(self.client, &scope, &Target::All, &self.diag_opts).await {
                Ok(r) => remaining.extend(
                    r.findings
                        .into_iter()
                        .filter(|f| rounds.tracked.contains(&finding_workload(f))),
                ),
                Err(e) => unverified.push((ns.to_string(), format!("{e:#}"))),
            }
        }
        let mut workloads = Vec::new();
        for w in &rounds.tracked {
            let failing: Vec<&Finding> = remaining
                .iter()
                .filter(|f| finding_workload(f) == *w)
                .collect();
            let readiness = readiness(self.client, w).await;
            let error = unverified
                .iter()
                .find(|(n, _)| *n == w.namespace)
                .map(|(_, e)| e.as_str());
            workloads.push(verify::judge(w, &failing, &readiness, error));
        }
        let rehearsed = incident
            .steps
            .iter()
            .filter(|s| matches!(s.outcome, Outcome::Rehearsed { .. }))
            .count();
        let applied = incident
            .steps
            .iter()
            .filter(|s| matches!(s.outcome, Outcome::Applied { .. }))
            .count();
        let (resolved, verdict) =
            verify::verdict(&workloads, self.opts.dry_run, applied, rehearsed);
        incident.remaining = remaining;
        incident.workloads = workloads;
        incident.resolved = resolved;
        incident.verdict = verdict;
        incident.finished = Some(Utc::now());
        Ok(())
    }

    /// Ctrl-C: what was written (with how to undo it) and what was not,
    /// the incident report if one was asked for, and the terminal restored.
    /// Nothing is verified: the verdict says so.
    fn interrupted(&mut self, incident: &mut Incident) -> anyhow::Result<()> {
        crate::terminal::restore();
        let written = incident
            .steps
            .iter()
            .filter(|s| matches!(s.outcome, Outcome::Applied { .. }))
            .count();
        incident.resolved = false;
        incident.verdict = format!(
            "{}: interrupted (Ctrl-C) after {written} change(s) written; not verified",
            self.target_text
        );
        incident.finished = Some(Utc::now());
        let (palette, out) = (&self.palette, &mut *self.executor.out);
        writeln!(
            out,
            "\n{} stopped; nothing more is asked or written",
            palette.bad.apply_to("interrupted (Ctrl-C):")
        )?;
        for l in interrupted_lines(incident) {
            writeln!(out, "  {}", indented(&l, "    "))?;
        }
        let diagnose = match &self.target {
            Target::Named { .. } => format!("kubectl pullfix diagnose {}", self.target_text),
            Target::All => format!("kubectl pullfix diagnose -n {}", self.ns),
        };
        writeln!(
            out,
            "  nothing was verified: see where it stands with `{}`, or run `kubectl pullfix -n {}` again to continue",
            line(&diagnose),
            line(&self.ns)
        )?;
        if let Some(path) = &self.opts.report {
            let md = report::markdown(incident, &[], &[]);
            crate::write_private(path, &md)
                .with_context(|| format!("write the report to {}", path.display()))?;
            writeln!(out, "  report written to {}", path.display())?;
        }
        out.flush()?;
        Ok(())
    }

    /// The summary: verdict, steps, escalations, follow-ups, the report.
    fn summary(&mut self, incident: &Incident, scan_notes: &[String]) -> anyhow::Result<()> {
        let (palette, out) = (&self.palette, &mut *self.executor.out);
        let escalations = report::escalations_with_notes(incident, scan_notes, Utc::now());
        let follow_ups = report::follow_ups(&incident.findings, incident);
        summary_text(out, palette, incident, &escalations, &follow_ups)?;
        if let Some(path) = &self.opts.report {
            let md = report::markdown(incident, &escalations, &follow_ups);
            crate::write_private(path, &md)
                .with_context(|| format!("write the report to {}", path.display()))?;
            writeln!(out, "\nreport written to {}", path.display())?;
        }
        Ok(())
    }
}

/// The summary as text (pure): verdict, workloads, steps with their undo,
/// escalations and follow-ups; every value from the cluster sanitized.
pub(crate) fn summary_text(
    out: &mut dyn std::io::Write,
    palette: &Palette,
    incident: &Incident,
    escalations: &[report::Escalation],
    follow_ups: &[String],
) -> anyhow::Result<()> {
    writeln!(out, "\n{}", palette.bold.apply_to("Summary"))?;
    writeln!(out, "  {}", line(&incident.verdict))?;
    for w in &incident.workloads {
        let mark = if w.healthy {
            palette.good.apply_to("✔")
        } else {
            palette.bad.apply_to("✘")
        };
        writeln!(
            out,
            "    {mark} {} -n {}: {}{}",
            line(&w.workload.target()),
            line(&w.workload.namespace),
            line(&w.state),
            w.next
                .as_ref()
                .map(|n| if incident.dry_run {
                    format!(" — to apply: {}", line(n))
                } else {
                    format!(" — continue: {}", line(n))
                })
                .unwrap_or_default()
        )?;
    }
    if !incident.steps.is_empty() {
        writeln!(out, "  steps:")?;
    }
    for s in &incident.steps {
        writeln!(
            out,
            "  - {}: {}",
            line(&s.title),
            indented(&crate::remediate::apply::outcome_line(&s.outcome), "    ")
        )?;
        if let Some(r) = &s.restore_command {
            writeln!(out, "      undo: {}", line(r))?;
        }
    }
    for e in escalations {
        writeln!(
            out,
            "\n{} page {} — {}",
            palette.bad.apply_to("escalate:"),
            line(&e.page),
            line(&e.reason)
        )?;
        writeln!(out, "  message: {}", indented(&e.message, "    "))?;
    }
    if !follow_ups.is_empty() && !incident.findings.is_empty() {
        writeln!(out, "\n{}", palette.bold.apply_to("After the incident"))?;
        for f in follow_ups {
            writeln!(out, "  - [ ] {}", indented(f, "        "))?;
        }
    }
    Ok(())
}

/// Ctrl-C during the steps: records the step it stopped at and the steps
/// after it (not run), and returns the error that ends the rounds.
fn stop_steps(
    incident: &mut Incident,
    rec: crate::remediate::StepRecord,
    steps: &[PlannedStep],
    at: &PlannedStep,
) -> anyhow::Error {
    incident.steps.push(rec);
    let after = steps.iter().skip_while(|s| !std::ptr::eq(*s, at)).skip(1);
    for s in after {
        incident.steps.push(crate::remediate::StepRecord {
            at: Utc::now(),
            title: s.title.clone(),
            command: None,
            backup: None,
            restore_command: None,
            outcome: Outcome::Skipped {
                reason: "not run: interrupted (Ctrl-C)".into(),
            },
        });
    }
    anyhow::Error::new(crate::terminal::Interrupted)
}

/// After Ctrl-C: each change written (with how to undo it), then each step
/// that was not, with why. Pure.
fn interrupted_lines(incident: &Incident) -> Vec<String> {
    let (written, not): (Vec<_>, Vec<_>) = incident
        .steps
        .iter()
        .partition(|s| matches!(s.outcome, Outcome::Applied { .. }));
    let mut lines = Vec::new();
    if written.is_empty() {
        lines.push("written: nothing".to_string());
    } else {
        lines.push(format!("written ({}):", written.len()));
        for s in written {
            lines.push(format!("  ✔ {}", s.title));
            match &s.restore_command {
                Some(r) => lines.push(format!("      undo: {r}")),
                None => lines.push("      (nothing to undo: no object was replaced)".into()),
            }
        }
    }
    if !not.is_empty() {
        lines.push(format!("not written ({}):", not.len()));
        for s in not {
            lines.push(format!(
                "  - {}: {}",
                s.title,
                crate::remediate::apply::outcome_line(&s.outcome)
            ));
        }
    }
    lines
}

fn touched_workloads(a: &Action) -> Vec<Workload> {
    match a {
        Action::SetImage { workload, .. }
        | Action::AttachToWorkload { workload, .. }
        | Action::Restart { workload } => vec![workload.clone()],
        Action::RestartMany { workloads } => workloads.clone(),
        _ => Vec::new(),
    }
}

fn failing_since(findings: &[Finding]) -> Option<chrono::DateTime<Utc>> {
    findings
        .iter()
        .filter_map(|f| f.failing_for_seconds)
        .max()
        .map(|s| Utc::now() - chrono::Duration::seconds(s))
}

/// Asks where to attach a new pull secret, when it matters and a person is there.
/// Ctrl-C at the menu is an error (it stops the run); any other failure to
/// ask leaves the choice to the plan's default.
fn choose_attach(prompter: &mut dyn Prompter, f: &Finding) -> anyhow::Result<Option<AttachTo>> {
    let needs = f.cause == crate::diagnose::Cause::CredentialsMissing
        && (f.secrets.is_empty())
        && f.workload.is_some();
    if !needs || !prompter.interactive() {
        return Ok(None);
    }
    let items = vec![
        "the workload's pod template (only this workload; rolls out new pods)".to_string(),
        "the ServiceAccount (every pod using it; needs a restart)".to_string(),
    ];
    Ok(match prompter.select("Attach the pull secret to", &items) {
        Ok(Some(1)) => Some(AttachTo::ServiceAccount),
        Ok(Some(_)) => Some(AttachTo::Workload),
        Err(e) if crate::terminal::is_interrupted(&e) => return Err(e),
        _ => None,
    })
}

/// How ready a workload is now: a controller's ready and desired
/// replicas, a bare pod's ready containers, or gone.
async fn readiness(client: &Client, w: &Workload) -> Readiness {
    if w.kind == "Pod" {
        let pod = ObjectRef::new(Writable::Pod, &w.namespace, &w.name)
            .get_opt(client)
            .await;
        return match pod {
            Ok(Some(p)) => {
                let statuses = p
                    .pointer("/status/containerStatuses")
                    .and_then(serde_json::Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                let ready = statuses.iter().filter(|c| c["ready"] == true).count();
                Readiness::Counts(
                    i64::try_from(ready).unwrap_or(0),
                    i64::try_from(statuses.len().max(1)).unwrap_or(1),
                )
            }
            Ok(None) => Readiness::Gone,
            Err(_) => Readiness::Unknown,
        };
    }
    let Some(resource) = Writable::workload(&w.kind) else {
        return Readiness::Unknown;
    };
    let obj = match ObjectRef::new(resource, &w.namespace, &w.name)
        .get_opt(client)
        .await
    {
        Ok(Some(o)) => o,
        Ok(None) => return Readiness::Gone,
        Err(_) => return Readiness::Unknown,
    };
    let int = |pointer: &str| obj.pointer(pointer).and_then(serde_json::Value::as_i64);
    if w.kind == "DaemonSet" {
        Readiness::Counts(
            int("/status/numberReady").unwrap_or(0),
            int("/status/desiredNumberScheduled").unwrap_or(0),
        )
    } else {
        Readiness::Counts(
            int("/status/readyReplicas").unwrap_or(0),
            int("/spec/replicas").unwrap_or(1),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remediate::StepRecord;

    fn step(title: &str, restore: Option<&str>, outcome: Outcome) -> StepRecord {
        StepRecord {
            at: Utc::now(),
            title: title.into(),
            command: None,
            backup: None,
            restore_command: restore.map(str::to_string),
            outcome,
        }
    }

    #[test]
    fn ctrl_c_lists_what_was_written_with_undo_and_what_was_not() {
        let mut incident = Incident {
            started: Utc::now(),
            finished: None,
            target: "deploy/checkout -n shop".into(),
            namespace: "shop".into(),
            findings: vec![],
            remaining: vec![],
            steps: vec![],
            resolved: false,
            verdict: String::new(),
            workloads: vec![],
            dry_run: false,
            failing_since: None,
        };
        assert_eq!(interrupted_lines(&incident), ["written: nothing"]);
        incident.steps = vec![
            step(
                "update pull secret shop/regcred",
                Some("kubectl replace -f /b/s.yaml"),
                Outcome::Applied {
                    detail: "update secrets shop/regcred".into(),
                },
            ),
            step(
                "rollout restart deploy/checkout -n shop",
                None,
                Outcome::Skipped {
                    reason: "interrupted (Ctrl-C) before it was written".into(),
                },
            ),
        ];
        assert_eq!(
            interrupted_lines(&incident),
            [
                "written (1):",
                "  ✔ update pull secret shop/regcred",
                "      undo: kubectl replace -f /b/s.yaml",
                "not written (1):",
                "  - rollout restart deploy/checkout -n shop: – skipped: interrupted (Ctrl-C) before it was written",
            ]
        );
    }
}
