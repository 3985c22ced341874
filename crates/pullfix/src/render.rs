//! Output: text for a person under pressure (the cause in one line, the
//! evidence, the next steps with commands to copy; color only on a
//! terminal), or `-o json` / `-o yaml` in the documented, versioned schema
//! (`docs/json-output.md`).

use std::io::Write;

use console::Style;
use serde::Serialize;

use crate::diagnose::Confidence;
use crate::diagnose::run::Report;
use crate::scan::{Assessment, Severity};

/// The schema version of `-o json` / `-o yaml`.
pub(crate) const API_VERSION: &str = "pullfix.dev/v1";

/// Output formats (`-o`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
    Yaml,
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
            // Through io::Error, so a closed pipe stays recognisable.
            serde_json::to_writer_pretty(&mut *out, &env).map_err(std::io::Error::from)?;
            writeln!(out)?;
        }
        Format::Yaml => {
            let text = serde_saphyr::to_string(&env)?;
            out.write_all(text.as_bytes())?;
        }
        Format::Text => unreachable!("text output has its own renderer"),
    }
    Ok(())
}

/// kubectl's AGE format (`crate::duration::age`), `-` when unknown.
fn age(seconds: Option<i64>) -> String {
    seconds.map_or_else(|| "-".into(), crate::duration::age)
}

/// The scan as a table plus notes and the next command.
pub fn scan_text(out: &mut dyn Write, a: &Assessment, p: &Palette) -> anyhow::Result<()> {
    if a.groups.is_empty() {
        writeln!(
            out,
            "{} no pod is failing to pull its image ({} pods scanned)",
            p.good.apply_to("ok:"),
            a.pods_seen
        )?;
        return Ok(());
    }
    let rows: Vec<[String; 7]> = a
        .groups
        .iter()
        .map(|g| {
            [
                format!("{:?}", g.severity),
                g.workload.target(),
                g.workload.namespace.clone(),
                format!("{}/{}", g.ready, g.desired),
                if g.confidence == Confidence::Low {
                    format!("{}?", g.cause.id())
                } else {
                    g.cause.id().to_string()
                },
                g.image.clone(),
                age(g.oldest_failure_seconds),
            ]
        })
        .collect();
    let header = [
        "SEV",
        "WORKLOAD",
        "NAMESPACE",
        "READY",
        "CAUSE",
        "IMAGE",
        "FAILING FOR",
    ];
    let mut widths = header.map(str::len);
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: &[String]| {
        cells
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    writeln!(out, "{}", p.bold.apply_to(line(&header.map(String::from))))?;
    for (r, g) in rows.iter().zip(&a.groups) {
        let text = line(r);
        let styled = match g.severity {
            Severity::P1 => p.bad.apply_to(text).to_string(),
            Severity::P2 => p.warn.apply_to(text).to_string(),
        };
        writeln!(out, "{styled}")?;
    }
    writeln!(
        out,
        "\n{} failing workload(s), {} pod(s) of {} scanned, in {} namespace(s)",
        a.groups.len(),
        a.failing_pods,
        a.pods_seen,
        a.namespaces.len()
    )?;
    if a.groups.iter().any(|g| g.confidence == Confidence::Low) {
        writeln!(
            out,
            "{} a guess from the node's text alone; diagnose weighs the pull secrets and the registry's answer",
            p.dim.apply_to("?:")
        )?;
    }
    for n in &a.notes {
        writeln!(out, "{} {n}", p.warn.apply_to("note:"))?;
    }
    let first = &a.groups[0];
    writeln!(
        out,
        "{} kubectl pullfix diagnose {} -n {}",
        p.dim.apply_to("next:"),
        first.workload.target(),
        first.workload.namespace
    )?;
    Ok(())
}

/// The diagnosis: per finding, the cause in one line, evidence, next steps.
pub fn diagnose_text(out: &mut dyn Write, r: &Report, p: &Palette) -> anyhow::Result<()> {
    if r.findings.is_empty() {
        writeln!(
            out,
            "{} nothing in scope is failing to pull its image",
            p.good.apply_to("ok:")
        )?;
    }
    for f in &r.findings {
        let what = f
            .workload
            .as_ref()
            .map_or_else(|| format!("pod/{}", f.pod), |w| w.target());
        writeln!(
            out,
            "{} {} {}",
            p.bold
                .apply_to(format!("{what} (namespace {})", f.namespace)),
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
            f.summary,
            f.confidence
        )?;
        writeln!(out, "  {} {}", p.bold.apply_to("why:"), f.decision.because)?;
        writeln!(
            out,
            "  image: {}  container: {}{}",
            f.image,
            f.container,
            if f.init_container { " (init)" } else { "" }
        )?;
        writeln!(out, "  evidence:")?;
        for e in &f.evidence {
            writeln!(out, "    {:<8} {}", p.dim.apply_to(&e.source), e.text)?;
        }
        writeln!(out, "  next steps:")?;
        for (i, s) in f.next_steps.iter().enumerate() {
            writeln!(out, "    {}. {}", i + 1, s.text)?;
            if let Some(c) = &s.command {
                writeln!(out, "       {} {c}", p.dim.apply_to("$"))?;
            }
        }
        writeln!(out)?;
    }
    for j in &r.refresh_jobs {
        writeln!(
            out,
            "{} cronjob/{} in {} (schedule `{}`): last scheduled {}, last success {}{}",
            p.bold.apply_to("refresh automation:"),
            j.name,
            j.namespace,
            j.schedule,
            j.last_schedule.as_deref().unwrap_or("never"),
            j.last_successful.as_deref().unwrap_or("unknown"),
            if j.failed_jobs.is_empty() {
                String::new()
            } else {
                format!(", failed jobs: {}", j.failed_jobs.join(", "))
            }
        )?;
        if let Some(t) = &j.failure_tail {
            writeln!(out, "  last failure: {t}")?;
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
            writeln!(out, "  {}/{} ({})", o.namespace, o.name, o.registry)?;
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
        writeln!(out, "{} {n}", p.warn.apply_to("note:"))?;
    }
    for w in &r.warnings {
        writeln!(out, "{} {w}", p.warn.apply_to("warning:"))?;
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
