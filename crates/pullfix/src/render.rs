//! Output: text for a person under pressure (the cause in one line, the
//! evidence, the next steps with commands to copy; color only on a
//! terminal), `-o wide` (the scan table with more columns), `-o name`
//! (`deployment.apps/checkout`, one per line, as kubectl prints), or
//! `-o json` / `-o yaml` in the documented, versioned schema
//! (`docs/json-output.md`). Every result says which namespaces it looked
//! in and how many pods, from the one count in [`crate::scan::Scanned`].

use std::collections::BTreeMap;
use std::io::Write;

use console::Style;
use serde::Serialize;

use crate::diagnose::Confidence;
use crate::diagnose::run::Report;
use crate::sanitize::{self, indented, line};
use crate::scan::{Assessment, Outage, Scanned, Severity, Workload};

/// The schema version of `-o json` / `-o yaml`.
pub(crate) const API_VERSION: &str = "pullfix.dev/v1";

/// Output formats (`-o`), kubectl's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// The table (scan) or the report (diagnose, fix)
    Text,
    /// The scan table with reason, failing pods, nodes and pull secrets
    Wide,
    /// The versioned document (docs/json-output.md)
    Json,
    /// The same document as YAML
    Yaml,
    /// The failing workloads, one `deployment.apps/NAME` per line
    Name,
}

impl Format {
    /// `-o json|yaml`: a document for tools.
    pub fn is_structured(self) -> bool {
        matches!(self, Format::Json | Format::Yaml)
    }
}

/// Styles, all plain when color is off.
#[derive(Debug, Clone)]
pub struct Palette {
    pub bad: Style,
    pub warn: Style,
    pub good: Style,
    pub dim: Style,
    pub bold: Style,
}

impl Palette {
    pub fn new(color: bool) -> Palette {
        let s = |st: Style| {
            if color {
                st.force_styling(true)
            } else {
                Style::new().force_styling(false)
            }
        };
        Palette {
            bad: s(Style::new().red().bold()),
            warn: s(Style::new().yellow()),
            good: s(Style::new().green()),
            dim: s(Style::new().dim()),
            bold: s(Style::new().bold()),
        }
    }
}

#[derive(Serialize)]
struct Envelope<'a, T: Serialize> {
    #[serde(rename = "apiVersion")]
    api_version: &'static str,
    kind: &'static str,
    #[serde(flatten)]
    body: &'a T,
}

/// Writes a value as JSON or YAML inside the versioned envelope.
pub fn structured<T: Serialize>(
    out: &mut dyn Write,
    format: Format,
    kind: &'static str,
    body: &T,
) -> anyhow::Result<()> {
    let env = Envelope {
        api_version: API_VERSION,
        kind,
        body,
    };
    match format {
        Format::Json => {
            let text = serde_json::to_string_pretty(&env)?;
            out.write_all(sanitize::json_document(&text).as_bytes())?;
            writeln!(out)?;
        }
        Format::Yaml => {
            let text = serde_saphyr::to_string(&env)?;
            if sanitize::has_raw_control(&text) {
                // The emitter escapes control characters but leaves bidi
                // and other format characters raw, in scalars where an
                // escape would not read back. JSON is YAML too: the same
                // values, every character escaped.
                let json = serde_json::to_string_pretty(&env)?;
                writeln!(
                    out,
                    "# JSON style: values hold characters a terminal would act on, shown escaped"
                )?;
                out.write_all(sanitize::json_document(&json).as_bytes())?;
                writeln!(out)?;
            } else {
                out.write_all(text.as_bytes())?;
            }
        }
        Format::Text | Format::Wide | Format::Name => {
            unreachable!("text, wide and name output have their own renderers")
        }
    }
    Ok(())
}

/// kubectl's AGE format (`crate::duration::age`), `-` when unknown.
fn age(seconds: Option<i64>) -> String {
    seconds.map_or_else(|| "-".into(), crate::duration::age)
}

/// `-o name`: each workload once, as `kubectl get -o name` prints it (no
/// namespace, as kubectl; `-o json` has them).
pub fn names<'a>(
    out: &mut dyn Write,
    workloads: impl IntoIterator<Item = &'a Workload>,
) -> anyhow::Result<()> {
    let mut seen = std::collections::BTreeSet::new();
    for w in workloads {
        if seen.insert(w) {
            writeln!(out, "{}", line(&w.kubectl_name()))?;
        }
    }
    Ok(())
}

/// `4 pods scanned in namespace shop`.
fn scanned_text(s: &Scanned) -> String {
    format!(
        "{} pod{} scanned in {}",
        s.pods_seen,
        if s.pods_seen == 1 { "" } else { "s" },
        line(&s.scope.describe())
    )
}

/// Nothing failing: where it looked, and `-A` when it looked at no pod.
fn nothing_failing(out: &mut dyn Write, s: &Scanned, p: &Palette) -> anyhow::Result<()> {
    writeln!(
        out,
        "{} no pod is failing to pull its image ({})",
        p.good.apply_to("ok:"),
        scanned_text(s)
    )?;
    if s.pods_seen == 0 && !s.scope.all_namespaces {
        writeln!(
            out,
            "{} {} has no pods at all: is it the right one? -A looks in every namespace",
            p.dim.apply_to("hint:"),
            line(&s.scope.describe())
        )?;
    }
    Ok(())
}

/// The summary line under the scan table.
fn scan_summary(s: &Scanned) -> String {
    let mut line = format!(
        "{} failing workload(s), {} failing pod(s) of {}",
        s.failing_workloads,
        s.failing_pods,
        scanned_text(s)
    );
    if s.scope.all_namespaces {
        line.push_str(&format!(
            "; failures in {} namespace(s): {}",
            s.namespaces.len(),
            crate::sanitize::join(&s.namespaces, ", ")
        ));
    }
    line
}

/// The scan as a table plus notes and the next command.
pub fn scan_text(out: &mut dyn Write, a: &Assessment, p: &Palette) -> anyhow::Result<()> {
    scan_table(out, a, p, false)
}

/// `-o wide`: the table with the waiting reason, the failing pods, their
/// nodes and pull secrets.
pub fn scan_wide(out: &mut dyn Write, a: &Assessment, p: &Palette) -> anyhow::Result<()> {
    scan_table(out, a, p, true)
}

fn scan_table(out: &mut dyn Write, a: &Assessment, p: &Palette, wide: bool) -> anyhow::Result<()> {
    let Some(first) = a.groups.first() else {
        return nothing_failing(out, &a.scanned, p);
    };
    outage_lines(out, &a.outages, p)?;
    let list = |v: &[String]| {
        if v.is_empty() {
            "-".to_string()
        } else {
            crate::sanitize::join(v, ",")
        }
    };
    let rows: Vec<Vec<String>> = a
        .groups
        .iter()
        .map(|g| {
            let mut row = vec![
                format!("{:?}", g.severity),
                line(&g.workload.target()).into_owned(),
                line(&g.workload.namespace).into_owned(),
                format!("{}/{}", g.ready, g.desired),
                if g.confidence == Confidence::Low {
                    format!("{}?", g.cause.id())
                } else {
                    g.cause.id().to_string()
                },
                line(&g.image).into_owned(),
                age(g.oldest_failure_seconds),
            ];
            if wide {
                row.extend([
                    line(&g.reason).into_owned(),
                    g.failing_pods.to_string(),
                    list(&g.nodes),
                    if g.pull_secrets.is_empty() {
                        // The kubelet uses the ServiceAccount's.
                        format!("(sa {})", list(&g.service_accounts))
                    } else {
                        list(&g.pull_secrets)
                    },
                ]);
            }
            row
        })
        .collect();
    let mut header = vec![
        "SEV",
        "WORKLOAD",
        "NAMESPACE",
        "READY",
        "CAUSE",
        "IMAGE",
        "FAILING FOR",
    ];
    if wide {
        header.extend(["REASON", "PODS", "NODES", "PULL SECRETS"]);
    }
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let cells_line = |cells: &[String]| {
        cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    let header: Vec<String> = header.into_iter().map(String::from).collect();
    writeln!(out, "{}", p.bold.apply_to(cells_line(&header)))?;
    for (r, g) in rows.iter().zip(&a.groups) {
        let text = cells_line(r);
        let styled = match g.severity {
            Severity::P1 => p.bad.apply_to(text).to_string(),
            Severity::P2 => p.warn.apply_to(text).to_string(),
        };
        writeln!(out, "{styled}")?;
    }
    writeln!(out, "\n{}", scan_summary(&a.scanned))?;
    if a.groups.iter().any(|g| g.confidence == Confidence::Low) {
        writeln!(
            out,
            "{} a guess from the node's text alone; diagnose weighs the pull secrets and the registry's answer",
            p.dim.apply_to("?:")
        )?;
    }
    for n in &a.notes {
        writeln!(out, "{} {}", p.warn.apply_to("note:"), indented(n, "  "))?;
    }
    writeln!(
        out,
        "{} kubectl pullfix diagnose {} -n {}",
        p.dim.apply_to("next:"),
        line(&first.workload.target()),
        line(&first.workload.namespace)
    )?;
    Ok(())
}

/// An outage's one line each, before the detail.
fn outage_lines(out: &mut dyn Write, outages: &[Outage], p: &Palette) -> anyhow::Result<()> {
    for o in outages {
        writeln!(out, "{} {}", p.bad.apply_to("outage:"), line(&o.headline()))?;
    }
    if !outages.is_empty() {
        writeln!(out)?;
    }
    Ok(())
}

/// Findings of one outage printed in full before the rest are listed by
/// name only.
const OUTAGE_FINDINGS_IN_FULL: usize = 3;
/// Names listed in the line that stands for the rest.
const OUTAGE_NAMES_LISTED: usize = 20;

/// The diagnosis: per finding, the cause in one line, evidence, next steps.
/// In an outage, the first few findings of it in full, the others by name.
pub fn diagnose_text(out: &mut dyn Write, r: &Report, p: &Palette) -> anyhow::Result<()> {
    outage_lines(out, &r.outages, p)?;
    let outage_of = |f: &crate::diagnose::finding::Finding| {
        let registry = crate::registry::reference::ImageRef::parse(&f.image)
            .map(|i| i.domain)
            .unwrap_or_else(|_| "(invalid reference)".into());
        r.outages
            .iter()
            .position(|o| o.registry == registry && o.cause == f.cause)
    };
    let mut shown: BTreeMap<usize, usize> = BTreeMap::new();
    let mut rest: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    if r.findings.is_empty() {
        if r.scanned.failing_pods == 0 {
            nothing_failing(out, &r.scanned, p)?;
        } else {
            // A TARGET that is fine, in a scope where others fail.
            writeln!(
                out,
                "{} the target is not failing to pull its image ({}; {} other failing pod(s): kubectl pullfix scan {})",
                p.good.apply_to("ok:"),
                scanned_text(&r.scanned),
                r.scanned.failing_pods,
                r.scanned
                    .scope
                    .namespace
                    .as_ref()
                    .map_or_else(|| "-A".to_string(), |ns| format!("-n {}", line(ns)))
            )?;
        }
    }
    for f in &r.findings {
        let what = f
            .workload
            .as_ref()
            .map_or_else(|| format!("pod/{}", f.pod), |w| w.target());
        if let Some(o) = outage_of(f) {
            let n = shown.entry(o).or_default();
            if *n >= OUTAGE_FINDINGS_IN_FULL {
                rest.entry(o)
                    .or_default()
                    .push(format!("{}/{}", f.namespace, what));
                continue;
            }
            *n += 1;
        }
        writeln!(
            out,
            "{} {} {}",
            p.bold.apply_to(format!(
                "{} (namespace {})",
                line(&what),
                line(&f.namespace)
            )),
            match f.severity {
                Severity::P1 => p.bad.apply_to("P1").to_string(),
                Severity::P2 => p.warn.apply_to("P2").to_string(),
            },
            p.dim.apply_to(format!("{} pod(s) failing", f.pods.len()))
        )?;
        writeln!(
            out,
            "  {} {}{} — {} ({:?} confidence)",
            p.bad.apply_to("cause:"),
            f.cause.id(),
            f.detail
                .map(|d| format!(
                    "/{}",
                    serde_json::to_value(d)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_default()
                ))
                .unwrap_or_default(),
            line(&f.summary),
            f.confidence
        )?;
        writeln!(
            out,
            "  {} {}",
            p.bold.apply_to("why:"),
            line(&f.decision.because)
        )?;
        writeln!(
            out,
            "  image: {}  container: {}{}",
            line(&f.image),
            line(&f.container),
            if f.init_container { " (init)" } else { "" }
        )?;
        writeln!(out, "  evidence:")?;
        for e in &f.evidence {
            writeln!(
                out,
                "    {:<8} {}",
                p.dim.apply_to(line(&e.source)),
                line(&e.text)
            )?;
        }
        writeln!(out, "  next steps:")?;
        for (i, s) in f.next_steps.iter().enumerate() {
            writeln!(out, "    {}. {}", i + 1, line(&s.text))?;
            if let Some(c) = &s.command {
                writeln!(out, "       {} {}", p.dim.apply_to("$"), line(c))?;
            }
        }
        writeln!(out)?;
    }
    for (o, names) in &rest {
        let Some(outage) = r.outages.get(*o) else {
            continue;
        };
        let listed: Vec<String> = names
            .iter()
            .take(OUTAGE_NAMES_LISTED)
            .map(|n| line(n).into_owned())
            .collect();
        writeln!(
            out,
            "{} {} more workload(s) with {} on {}: {}{}\n",
            p.bold.apply_to("and"),
            crate::scan::thousands(names.len()),
            outage.cause.id(),
            line(&outage.registry),
            listed.join(", "),
            if names.len() > listed.len() {
                format!(
                    ", and {} more (-o json lists each)",
                    crate::scan::thousands(names.len() - listed.len())
                )
            } else {
                " (-o json has each in full)".to_string()
            }
        )?;
    }
    for j in &r.refresh_jobs {
        writeln!(
            out,
            "{} cronjob/{} in {} (schedule `{}`): last scheduled {}, last success {}{}",
            p.bold.apply_to("refresh automation:"),
            line(&j.name),
            line(&j.namespace),
            line(&j.schedule),
            line(j.last_schedule.as_deref().unwrap_or("never")),
            line(j.last_successful.as_deref().unwrap_or("unknown")),
            if j.failed_jobs.is_empty() {
                String::new()
            } else {
                format!(
                    ", failed jobs: {}",
                    crate::sanitize::join(&j.failed_jobs, ", ")
                )
            }
        )?;
        if let Some(t) = &j.failure_tail {
            writeln!(out, "  last failure: {}", line(t))?;
        }
    }
    let same: Vec<_> = r
        .other_namespaces
        .iter()
        .filter(|o| o.same_credential)
        .collect();
    let different = r.other_namespaces.len() - same.len();
    if !same.is_empty() {
        writeln!(
            out,
            "{}",
            p.bold
                .apply_to("same credential, other namespaces (likely failing too):")
        )?;
        for o in &same {
            writeln!(
                out,
                "  {}/{} ({})",
                line(&o.namespace),
                line(&o.name),
                line(&o.registry)
            )?;
        }
    }
    if different > 0 {
        writeln!(
            out,
            "{} {different} other pull secret(s) for the same registry hold a different credential (-o json lists them)",
            p.dim.apply_to("note:")
        )?;
    }
    for n in &r.notes {
        writeln!(out, "{} {}", p.warn.apply_to("note:"), indented(n, "  "))?;
    }
    for w in &r.warnings {
        writeln!(out, "{} {}", p.warn.apply_to("warning:"), indented(w, "  "))?;
    }
    if !r.findings.is_empty() {
        writeln!(
            out,
            "{} {} failing pod(s) of {}",
            p.dim.apply_to("scope:"),
            r.scanned.failing_pods,
            scanned_text(&r.scanned)
        )?;
    }
    if r.findings.iter().any(|f| f.registry.is_some()) {
        writeln!(
            out,
            "{}",
            p.dim.apply_to(
                "registry checks ran from this machine, not from the nodes; --no-probe skips them"
            )
        )?;
    }
    Ok(())
}
