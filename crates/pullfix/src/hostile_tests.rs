//! Hostile strings from the cluster, through every renderer (issue 16,
//! observation 5): escape sequences, an OSC title set, a C1 CSI, a bare
//! carriage return, a newline, NUL, a bidi override and a 100 KB value go
//! into every field a renderer prints; with colour off, no control or
//! format character reaches the output other than the renderer's own line
//! feeds, no value adds a line of its own, and the output stays bounded.

use chrono::{TimeZone, Utc};

use crate::diagnose::finding::{Evidence, Finding, Step};
use crate::diagnose::run::{OtherSecret, RefreshJob, Report};
use crate::diagnose::{Cause, Confidence};
use crate::remediate::report::{self, Escalation};
use crate::remediate::{Incident, Outcome, StepRecord, WorkloadVerdict};
use crate::render::{self, Palette};
use crate::sanitize::{has_raw_control, hostile_samples};
use crate::scan::{Assessment, Group, Looked, Scanned, Severity, Workload};

/// A marker the forged line would start with: a value's `\n` must never
/// put it at the start of an output line.
const FORGED: &str = "FORGED-LINE";

fn hostile(h: &str) -> String {
    format!("{h}\n{FORGED} ok")
}

fn workload(h: &str) -> Workload {
    Workload {
        kind: "Deployment".into(),
        namespace: hostile(h),
        name: hostile(h),
    }
}

fn scanned(h: &str) -> Scanned {
    Scanned {
        scope: Looked {
            all_namespaces: false,
            namespace: Some(hostile(h)),
        },
        pods_seen: 3,
        failing_pods: 3,
        failing_workloads: 1,
        namespaces: vec![hostile(h)],
    }
}

fn finding(h: &str) -> Finding {
    let mut f = Finding::sample(&hostile(h), Cause::CredentialsRejected, &hostile(h));
    f.workload = Some(workload(h));
    f.pod = hostile(h);
    f.pods = vec![hostile(h)];
    f.container = hostile(h);
    f.summary = hostile(h);
    f.decision.because = format!("the kubelet sends `{}`", hostile(h));
    f.evidence = vec![
        Evidence {
            source: hostile(h),
            text: format!("secret `x` has no entry (closest key: `{}`)", hostile(h)),
        },
        Evidence {
            source: "event".into(),
            text: format!("Failed (x3): {}", hostile(h)),
        },
    ];
    f.next_steps = vec![Step {
        text: hostile(h),
        command: Some(format!("kubectl get secret {} -n shop", hostile(h))),
    }];
    f
}

fn assessment(h: &str) -> Assessment {
    Assessment {
        outages: vec![crate::scan::Outage {
            registry: hostile(h),
            cause: Cause::CredentialsRejected,
            workloads: 12,
            namespaces: 3,
            pods: 12,
            images: 1,
            pull_secrets: vec![crate::scan::NamedIn {
                name: hostile(h),
                namespaces: 3,
            }],
            network: false,
            same_credential: Some(crate::scan::SameCredential {
                copies: 3,
                secret: hostile(h),
            }),
        }],
        scanned: scanned(h),
        groups: vec![Group {
            workload: workload(h),
            severity: Severity::P1,
            ready: 0,
            desired: 2,
            image: hostile(h),
            registry: hostile(h),
            cause: Cause::CredentialsRejected,
            confidence: Confidence::Low,
            reason: hostile(h),
            failing_pods: 1,
            oldest_failure_seconds: Some(60),
            pods: vec![hostile(h)],
            containers: vec![hostile(h)],
            nodes: vec![hostile(h), hostile(h)],
            pull_secrets: vec![hostile(h)],
            service_accounts: vec![hostile(h)],
            network: false,
        }],
        notes: vec![hostile(h)],
    }
}

fn diagnosis(h: &str) -> Report {
    // Five findings of one outage: three in full, the rest by name.
    let f = finding(h);
    let mut outages = assessment(h).outages;
    for o in &mut outages {
        o.registry = crate::registry::reference::ImageRef::parse(&f.image)
            .map(|i| i.domain)
            .unwrap_or_else(|_| "(invalid reference)".into());
        o.cause = f.cause;
    }
    Report {
        findings: vec![f; 5],
        outages,
        warnings: vec![hostile(h)],
        notes: vec![hostile(h)],
        refresh_jobs: vec![RefreshJob {
            namespace: hostile(h),
            name: hostile(h),
            schedule: hostile(h),
            last_schedule: Some(hostile(h)),
            last_successful: None,
            failed_jobs: vec![hostile(h)],
            failure_tail: Some(hostile(h)),
        }],
        other_namespaces: vec![OtherSecret {
            namespace: hostile(h),
            name: hostile(h),
            registry: hostile(h),
            same_credential: true,
            failing_workloads: vec![],
        }],
        scanned: scanned(h),
    }
}

fn incident(h: &str) -> Incident {
    let at = Utc.with_ymd_and_hms(2026, 1, 2, 8, 30, 0).unwrap();
    let step = |outcome| StepRecord {
        at,
        title: hostile(h),
        command: Some(format!("kubectl apply -f {}", hostile(h))),
        backup: Some(hostile(h)),
        restore_command: Some(format!("kubectl replace -f {}", hostile(h))),
        outcome,
    };
    Incident {
        started: at,
        finished: Some(at),
        target: hostile(h),
        namespace: hostile(h),
        findings: vec![finding(h)],
        remaining: vec![finding(h)],
        steps: vec![
            step(Outcome::Applied { detail: hostile(h) }),
            step(Outcome::Failed { error: hostile(h) }),
            step(Outcome::Skipped { reason: hostile(h) }),
            step(Outcome::NotPermitted {
                missing: hostile(h),
            }),
        ],
        resolved: false,
        verdict: hostile(h),
        workloads: vec![WorkloadVerdict {
            workload: workload(h),
            healthy: false,
            state: hostile(h),
            next: Some(hostile(h)),
        }],
        dry_run: false,
        failing_since: Some(at),
    }
}

fn escalations(h: &str) -> Vec<Escalation> {
    vec![Escalation {
        page: hostile(h),
        reason: hostile(h),
        message: hostile(h),
    }]
}

/// No raw control byte, no forged line, bounded size.
fn assert_inert(what: &str, sample: &str, out: &str) {
    assert!(
        !has_raw_control(out),
        "{what}: a raw control character from {sample:.30?} reached the output:\n{out:.2000}"
    );
    // A value's line feed is escaped, or (in a multi-line text) followed by
    // an indent: nothing from a value starts a line at the margin.
    for l in out.lines() {
        assert!(
            !l.starts_with(FORGED),
            "{what}: a value's newline forged a line:\n{out:.2000}"
        );
    }
    // Every sample appears a few dozen times at most; each is cut to a few KB.
    assert!(
        out.len() < 1_000_000,
        "{what}: {} bytes for {sample:.30?}",
        out.len()
    );
}

fn rendered(f: impl FnOnce(&mut Vec<u8>) -> anyhow::Result<()>) -> String {
    let mut out = Vec::new();
    f(&mut out).expect("render");
    String::from_utf8(out).expect("utf-8")
}

#[test]
fn no_renderer_lets_cluster_text_through_raw() {
    let p = Palette::new(false);
    for h in hostile_samples() {
        let a = assessment(&h);
        let r = diagnosis(&h);
        let i = incident(&h);
        let e = escalations(&h);
        let follow = vec![hostile(&h)];
        let outputs = [
            ("scan", rendered(|o| render::scan_text(o, &a, &p))),
            ("scan -o wide", rendered(|o| render::scan_wide(o, &a, &p))),
            (
                "scan -o name",
                rendered(|o| render::names(o, a.groups.iter().map(|g| &g.workload))),
            ),
            ("diagnose", rendered(|o| render::diagnose_text(o, &r, &p))),
            (
                "fix summary",
                rendered(|o| crate::remediate::flow::summary_text(o, &p, &i, &e, &follow)),
            ),
            ("summary line", report::summary_line(&i)),
            ("markdown report", report::markdown(&i, &e, &follow)),
        ];
        for (what, out) in &outputs {
            if *what == "summary line" {
                // Printed through the summary and the report, both checked.
                continue;
            }
            assert_inert(what, &h, out);
        }
        // The 100 KB value is cut, with the marker.
        if h.len() > 10_000 {
            for (what, out) in &outputs[..5] {
                assert!(out.contains("…(+"), "{what}: no cut marker");
            }
        }
    }
}

#[test]
fn colour_styles_the_renderers_own_text_only() {
    let p = Palette::new(true);
    let h = "evil\u{1b}[2J\u{1b}[31mFAKE-OK";
    let out = rendered(|o| render::diagnose_text(o, &diagnosis(h), &p));
    assert!(
        out.contains('\u{1b}'),
        "colour is on: our own escapes remain"
    );
    assert!(
        !out.contains("\u{1b}[2J"),
        "a foreign escape reached the output"
    );
    assert!(out.contains("evil\\x1b[2J\\x1b[31mFAKE-OK"));
}

/// The text of a Markdown line outside its code spans (where Markdown
/// shows content literally).
fn outside_code(l: &str) -> String {
    l.split('`').step_by(2).collect()
}

#[test]
fn the_markdown_report_escapes_markdown_in_values() {
    let h = "<img src=x onerror=alert(1)> [click](http://evil) | # head";
    let md = report::markdown(&incident(h), &escalations(h), &[hostile(h)]);
    let mut in_fence = false;
    for l in md.lines() {
        if l.trim_start().starts_with("```") {
            in_fence = !in_fence;
            continue;
        }
        if in_fence {
            // A fenced block shows its content literally.
            continue;
        }
        let plain = outside_code(l);
        assert!(!plain.contains("<img"), "raw HTML: {l}");
        assert!(!plain.contains("[click]("), "a link: {l}");
        assert!(!l.starts_with("# head"), "a heading: {l}");
    }
    // The table has its four columns on every row.
    for l in md.lines().filter(|l| l.starts_with("| ")) {
        let cells = l.replace("\\|", "").matches('|').count();
        assert_eq!(cells, 5, "{l}");
    }
}
