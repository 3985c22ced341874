//! Every sandbox scenario, read the way the on-call engineer reads it: the
//! output of `scan -A`, `diagnose` (text and JSON) and the rehearsed fix
//! contains no template placeholder (`<password>` is the one documented
//! one), no line contradicting the stated cause, and none of the
//! scenario's passwords or API tokens. The commands `diagnose` prints name
//! the objects the rehearsed fix changes.

use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use crate::shell::{SandboxShell, scenarios, text};

/// The tool, without colour, as "another terminal" runs it.
fn run(shell: &SandboxShell, args: &[&str]) -> Output {
    shell.tool(args).arg("--no-color").output().unwrap()
}

/// The first failing workload in `shop`, as `kind/name`, once the
/// scenario's pods have failed.
fn failing_target(shell: &SandboxShell, scenario: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let out = run(shell, &["scan", "-n", "shop", "-o", "json"]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        if let Some(g) = v["groups"].as_array().and_then(|g| g.first()) {
            let kind = g["workload"]["kind"].as_str().unwrap_or_default();
            let name = g["workload"]["name"].as_str().unwrap_or_default();
            let name = if kind == "Pod" {
                g["pods"][0].as_str().unwrap_or(name)
            } else {
                name
            };
            return format!("{}/{name}", kind.to_lowercase());
        }
        assert!(
            Instant::now() < deadline,
            "{scenario}: nothing failed in shop within 120 s"
        );
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// `<…>` placeholders other than the documented `<password>`.
fn placeholders(t: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = t;
    while let Some(i) = rest.find('<') {
        let after = &rest[i + 1..];
        let Some(j) = after.find('>') else { break };
        let inner = &after[..j];
        if !inner.is_empty()
            && inner.len() < 40
            && inner
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_. ".contains(c))
            && inner
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic())
            && inner != "password"
        {
            found.push(format!("<{inner}>"));
        }
        rest = &after[j..];
    }
    found
}

/// What `diagnose` prints for one scenario, and the rehearsal's plan.
fn check_scenario(scenario: &str, root: &Path) -> Vec<String> {
    let shell = SandboxShell::start(scenario, &root.join(scenario));
    let target = failing_target(&shell, scenario);
    let mut outputs = vec![
        ("scan -A", run(&shell, &["scan", "-A"])),
        (
            "diagnose",
            run(&shell, &["diagnose", &target, "-n", "shop"]),
        ),
        (
            "diagnose -o json",
            run(&shell, &["diagnose", &target, "-n", "shop", "-o", "json"]),
        ),
    ];
    let handover = shell.handover();
    let mut fix = vec!["fix", target.as_str(), "-n", "shop", "--dry-run", "--yes"];
    let handover_text = handover.display().to_string();
    if handover.exists() {
        fix.extend(["--from-docker-config", handover_text.as_str()]);
    }
    outputs.push(("fix --dry-run", run(&shell, &fix)));
    let secrets = shell.secrets();
    let mut problems = Vec::new();
    // The same image failing in several namespaces for the same reason
    // gets the same cause.
    let all = run(&shell, &["scan", "-A", "-o", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&all.stdout).unwrap_or_default();
    let mut causes: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for g in v["groups"].as_array().into_iter().flatten() {
        let image = g["image"].as_str().unwrap_or_default().to_string();
        let cause = g["cause"].as_str().unwrap_or_default().to_string();
        let seen = causes.entry(image).or_default();
        if !seen.contains(&cause) {
            seen.push(cause);
        }
    }
    for (image, c) in &causes {
        if c.len() > 1 {
            problems.push(format!(
                "{scenario}: scan -A gives {image} different causes {c:?}:\n{}",
                text(&all)
            ));
        }
    }
    for (what, o) in &outputs {
        let t = text(o);
        if t.contains("panicked") {
            problems.push(format!("{scenario}: {what} panicked:\n{t}"));
        }
        let p = placeholders(&t);
        if !p.is_empty() {
            problems.push(format!("{scenario}: {what} shows placeholders {p:?}:\n{t}"));
        }
        if t.contains('≠') || t.contains("disagrees:") {
            problems.push(format!("{scenario}: {what} contradicts itself:\n{t}"));
        }
        for s in &secrets {
            if t.contains(s.as_str()) {
                problems.push(format!("{scenario}: {what} prints a password or token"));
            }
        }
    }
    problems
}

#[test]
fn every_scenario_reads_true_and_leaks_nothing() {
    let root = tempfile::tempdir().unwrap();
    let all = scenarios();
    assert!(all.len() >= 20, "{all:?}");
    // Four sandboxes at a time: each is a whole cluster in one process.
    let queue = std::sync::Mutex::new(all.clone());
    let problems = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                loop {
                    let Some(sc) = queue.lock().unwrap().pop() else {
                        break;
                    };
                    let p = check_scenario(&sc, root.path());
                    problems.lock().unwrap().extend(p);
                }
            });
        }
    });
    let problems = problems.into_inner().unwrap();
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}
