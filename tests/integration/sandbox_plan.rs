//! `diagnose` and `fix` agree, for every scenario the sandbox hosts: each
//! command `diagnose` prints for a cause `fix` can act on names the objects
//! the plan changes (same kind and name, same namespace, same secret and
//! server, same image), and every change the rehearsal makes is one
//! `diagnose` printed. The rehearsal never says "resolved". Issue 12.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

use crate::shell::{SandboxShell, scenarios};

/// A scenario served in `--shell` mode, with a state directory of its own
/// for the backups (the sandbox stops before the directory goes).
struct Served {
    shell: SandboxShell,
    dir: tempfile::TempDir,
}

fn serve(id: &str) -> Served {
    let dir = tempfile::tempdir().unwrap();
    Served {
        shell: SandboxShell::start(id, &dir.path().join("sb")),
        dir,
    }
}

fn pullfix(s: &Served, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kubectl-pullfix"))
        .args(args)
        .args(["--no-color", "--probe-timeout", "3s"])
        .envs(s.shell.env.iter().map(|(k, v)| (k, v)))
        .env("XDG_STATE_HOME", s.dir.path())
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// What a command changes: its verb and object words (up to the first
/// flag), its namespace and its `--docker-server`, for each command of a
/// `&&` chain. `kubectl apply -f -` (the tail of a create pipeline) is not
/// a command of its own.
fn changes(command: &str) -> Vec<String> {
    command
        .split(" && ")
        .map(|c| c.split(" | ").next().unwrap_or(c))
        .map(|c| {
            let words: Vec<&str> = c.split_whitespace().collect();
            let head: Vec<&str> = words
                .iter()
                .take_while(|w| !w.starts_with('-'))
                .copied()
                .collect();
            let ns = words
                .iter()
                .position(|w| *w == "-n")
                .and_then(|i| words.get(i + 1))
                .copied()
                .unwrap_or("?");
            let server = words
                .iter()
                .find_map(|w| w.strip_prefix("--docker-server="))
                .map(|s| format!(" server {s}"))
                .unwrap_or_default();
            format!("{} -n {ns}{server}", head.join(" "))
        })
        .collect()
}

/// Whether a command writes (reads such as `kubectl get` are advice, not
/// changes).
fn writes(command: &str) -> bool {
    [
        "create", "patch", "set", "rollout", "delete", "replace", "apply",
    ]
    .iter()
    .any(|v| command.starts_with(&format!("kubectl {v} ")))
}

/// Plans exist for these causes (the others' next steps say who fixes them).
fn plannable(f: &Value) -> bool {
    let cause = f["cause"].as_str().unwrap_or_default();
    cause.starts_with("credentials-")
        || (cause == "image-not-found"
            && f["suggested_tags"]
                .as_array()
                .is_some_and(|t| !t.is_empty()))
        || (cause == "wrong-registry" && f["replacement"].is_string())
}

fn check(id: &str) -> Result<(), String> {
    let s = serve(id);
    let out = pullfix(&s, &["diagnose", "-n", "shop", "-o", "json"]);
    let report: Value = serde_json::from_slice(&out.stdout).map_err(|e| {
        format!(
            "{id}: diagnose -o json: {e}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    })?;
    let findings = report["findings"].as_array().cloned().unwrap_or_default();
    let Some(f) = findings.first() else {
        return Err(format!("{id}: nothing diagnosed in shop"));
    };
    let target = format!(
        "{}/{}",
        match f["workload"]["kind"].as_str() {
            Some("Deployment") => "deploy",
            Some("StatefulSet") => "sts",
            Some("DaemonSet") => "ds",
            _ => "pod",
        },
        f["workload"]["name"]
            .as_str()
            .or(f["pod"].as_str())
            .unwrap_or_default()
    );
    let mut fix_args = vec!["fix", &target, "-n", "shop", "--dry-run", "--yes"];
    let handover = s.dir.path().join("sb/registry-team-docker-config.json");
    let handover = handover.to_string_lossy().to_string();
    if Path::new(&handover).exists() {
        fix_args.extend(["--from-docker-config", &handover]);
    }
    let fix = pullfix(&s, &fix_args);
    let fix_text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&fix.stdout),
        String::from_utf8_lossy(&fix.stderr)
    );
    let mut problems = Vec::new();
    if fix.status.code() != Some(1) {
        problems.push(format!(
            "a rehearsal with failures exits 1, not {:?}",
            fix.status.code()
        ));
    }
    if let Some(l) = fix_text
        .lines()
        .find(|l| l.trim_start().starts_with("resolved"))
    {
        problems.push(format!("the rehearsal says {l:?}"));
    }
    let rehearsed: Vec<String> = fix_text
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("kubectl equivalent: "))
        .flat_map(changes)
        .collect();
    let this = findings
        .iter()
        .filter(|x| {
            x["workload"] == f["workload"] && (!f["workload"].is_null() || x["pod"] == f["pod"])
        })
        .filter(|x| plannable(x));
    let mut advised = Vec::new();
    for finding in this {
        for step in finding["next_steps"].as_array().into_iter().flatten() {
            let Some(cmd) = step["command"].as_str() else {
                continue;
            };
            let placeholders = cmd.matches('<').count() - cmd.matches("<password>").count();
            if placeholders > 0 {
                problems.push(format!("a placeholder other than <password>: {cmd}"));
            }
            if writes(cmd) {
                advised.extend(changes(cmd));
            }
        }
    }
    for c in &advised {
        if !rehearsed.contains(c) {
            problems.push(format!(
                "diagnose advises `{c}`, which the plan does not change"
            ));
        }
    }
    // Every change rehearsed was advised (when the finding has a plan).
    if !advised.is_empty() {
        for c in &rehearsed {
            if !advised.contains(c) {
                problems.push(format!(
                    "the plan changes `{c}`, which diagnose did not advise"
                ));
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{id}:\n  {}\n--- advised: {advised:#?}\n--- rehearsed: {rehearsed:#?}\n--- fix:\n{fix_text}",
            problems.join("\n  ")
        ))
    }
}

#[test]
fn diagnose_advises_what_the_plan_changes_in_every_scenario() {
    let ids = scenarios();
    assert!(ids.len() >= 20, "{ids:?}");
    // Four at a time: each serves a whole cluster.
    let mut failures = Vec::new();
    for chunk in ids.chunks(4) {
        let runs: Vec<_> = chunk
            .iter()
            .cloned()
            .map(|id| std::thread::spawn(move || check(&id)))
            .collect();
        for r in runs {
            if let Err(e) = r.join().unwrap() {
                failures.push(e);
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
