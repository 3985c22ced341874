//! `kubectl pullfix sandbox` end to end: it needs no lab (everything runs in
//! the one process), so these tests run the binary as a user would: the
//! issue's scenarios with `--yes` reach their goals, the rehearsal writes
//! nothing, training plays its best path, `--shell` serves kubectl and
//! the tool from another "terminal" and checks the goal at Ctrl-C, and no
//! credential reaches the output.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

#[path = "sandbox_plan.rs"]
mod plan;

#[path = "sandbox_hostile.rs"]
mod hostile;

struct KillOnDrop(Option<std::process::Child>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(c) = &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn sandbox(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kubectl-pullfix"))
        .arg("sandbox")
        .args(args)
        .arg("--dir")
        .arg(dir)
        .args(["--no-color"])
        .stdin(Stdio::null())
        .output()
        .expect("run kubectl-pullfix sandbox")
}

fn text(o: &Output) -> String {
    format!(
        "{}\n--- stderr ---\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The credential the registry team handed over, when the scenario has one.
pub(crate) fn handed_over_password(dir: &Path) -> Option<String> {
    let raw = std::fs::read_to_string(dir.join("registry-team-docker-config.json")).ok()?;
    let v: serde_json::Value = serde_json::from_str(&raw).ok()?;
    let auths = v["auths"].as_object()?;
    let (_, entry) = auths.iter().next()?;
    entry["password"].as_str().map(str::to_string)
}

#[test]
fn lists_one_scenario_per_line_id_first() {
    let out = Command::new(env!("CARGO_BIN_EXE_kubectl-pullfix"))
        .args(["sandbox", "--list"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let ids: Vec<&str> = stdout
        .lines()
        .map(|l| l.split_once('\t').expect("id<TAB>story").0)
        .collect();
    assert!(ids.len() >= 20, "{stdout}");
    for id in [
        "ecr-expired",
        "rotated-password-partial",
        "missing-prefix",
        "wrong-tag",
        "sa-secret-only",
        "secret-opaque",
        "rate-limited",
        "unreachable-refused",
    ] {
        assert!(ids.contains(&id), "{id} missing from --list");
    }
}

#[test]
fn the_issue_s_scenarios_reach_their_goals_unattended() {
    let ids: [&'static str; 9] = [
        "ecr-expired",
        "rotated-password-partial",
        "stale-secret-many-namespaces",
        "missing-prefix",
        "wrong-tag",
        "sa-secret-only",
        "secret-opaque",
        "rate-limited",
        "unreachable-refused",
    ];
    let runs: Vec<_> = ids
        .into_iter()
        .map(|id| {
            std::thread::spawn(move || {
                let dir = tempfile::tempdir().unwrap();
                let out = sandbox(&[id, "--yes"], dir.path());
                (id, out, handed_over_password(dir.path()))
            })
        })
        .collect();
    for run in runs {
        let (id, out, password) = run.join().unwrap();
        let t = text(&out);
        assert_eq!(out.status.code(), Some(0), "{id}:\n{t}");
        let last = t
            .lines()
            .rfind(|l| l.starts_with("resolved:"))
            .unwrap_or_else(|| panic!("{id}: no verdict:\n{t}"));
        match id {
            "rate-limited" | "unreachable-refused" => {
                assert!(last.contains("0 change(s) written"), "{id}: {last}");
            }
            "ecr-expired" => {
                assert!(last.contains("checkout: 5/5 ready in shop"), "{id}: {last}");
                assert!(
                    t.contains("ecr-token-refresh"),
                    "the refresh automation is named for follow-up:\n{t}"
                );
            }
            "rotated-password-partial" | "stale-secret-many-namespaces" => {
                for ns in ["shop", "shop-b", "shop-c"] {
                    assert!(last.contains(&format!("ready in {ns}")), "{id}: {last}");
                }
            }
            _ => assert!(last.contains("no pod in ImagePullBackOff"), "{id}: {last}"),
        }
        if let Some(p) = password {
            assert!(!t.contains(&p), "{id}: the handed-over password leaked");
        }
    }
}

#[test]
fn a_rehearsal_writes_nothing_per_the_audit_log() {
    let dir = tempfile::tempdir().unwrap();
    let out = sandbox(&["rotated-password", "--dry-run", "--yes"], dir.path());
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(t.contains("and 0 real write(s) by kubectl-pullfix"), "{t}");
    assert!(
        !t.contains("rehearsal: 0 server-side"),
        "nothing was rehearsed: {t}"
    );
    let log = std::fs::read_to_string(dir.path().join("audit.log")).unwrap();
    assert!(log.contains("dryRun=All"), "the audit log has the dry-runs");
}

#[test]
fn training_plays_the_best_path_then_the_guided_fix() {
    let dir = tempfile::tempdir().unwrap();
    let out = sandbox(&["wrong-tag", "--train", "--yes"], dir.path());
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(t.contains("ALERT"), "{t}");
    assert!(t.contains("Round 1"), "{t}");
    assert!(t.contains("A)") && t.contains("D)"), "{t}");
    assert!(t.contains("optimal"), "damage report: {t}");
    assert!(t.contains("resolved:"), "{t}");
}

#[test]
fn unknown_and_lab_only_scenarios_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let out = sandbox(&["no-such-scenario"], dir.path());
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown scenario `no-such-scenario`"), "{err}");
    assert!(err.contains("--list"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    let out = sandbox(&["tls-unknown-ca"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("TLS"));
}

/// `--shell`: kubectl and the tool work from "another terminal" with the
/// env file, and Ctrl-C (SIGTERM here) checks the goal.
#[test]
fn shell_mode_serves_kubectl_and_checks_the_goal_at_exit() {
    let dir = tempfile::tempdir().unwrap();
    let env_file = dir.path().join("env");
    let child = Command::new(env!("CARGO_BIN_EXE_kubectl-pullfix"))
        .args([
            "sandbox",
            "wrong-tag",
            "--shell",
            "--no-color",
            "--env-file",
        ])
        .arg(&env_file)
        .arg("--dir")
        .arg(dir.path().join("sb"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A failed assertion must not leave the sandbox running.
    let mut guard = KillOnDrop(Some(child));
    let env = crate::shell::wait_for_env(&env_file, Duration::from_secs(60));
    assert!(env.iter().any(|(k, _)| k == "KUBECONFIG"));
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&env_file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "the env file holds test passwords and tokens");
    }
    // Sourced by a shell, the file puts this build first on PATH, so kubectl
    // finds the plugin.
    let sourced = Command::new("sh")
        .arg("-c")
        .arg(format!(
            ". '{}' && command -v kubectl-pullfix && kubectl pullfix --version",
            env_file.display()
        ))
        .output()
        .unwrap();
    let sourced_text = String::from_utf8_lossy(&sourced.stdout);
    let exe = Path::new(env!("CARGO_BIN_EXE_kubectl-pullfix"));
    assert!(
        sourced_text.starts_with(&exe.display().to_string())
            && sourced_text.contains(&format!("kubectl pullfix {}", env!("CARGO_PKG_VERSION"))),
        "{}",
        text(&sourced)
    );
    let run = |program: &str, args: &[&str]| {
        Command::new(program)
            .args(args)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let pods = run("kubectl", &["get", "pods", "-n", "shop"]);
    let pods_text = String::from_utf8_lossy(&pods.stdout);
    assert!(pods.status.success(), "{}", text(&pods));
    assert!(pods_text.contains("STATUS"), "{pods_text}");
    // Three tags are close to the missing one: with --yes the tool is told
    // which (it never guesses).
    let registry = &env
        .iter()
        .find(|(k, _)| k == "PULLFIX_LAB_REGISTRY")
        .unwrap()
        .1;
    let image = format!("{registry}/team/checkout:v2.1.0");
    let fix = run(
        env!("CARGO_BIN_EXE_kubectl-pullfix"),
        &[
            "fix",
            "deploy/checkout",
            "-n",
            "shop",
            "--yes",
            "--no-color",
            "--image",
            &image,
        ],
    );
    assert_eq!(fix.status.code(), Some(0), "{}", text(&fix));
    let child = guard.0.take().unwrap();
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(t.contains("resolved: checkout: 2/2 ready in shop"), "{t}");
}

#[test]
fn a_closed_pipe_ends_the_run_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "'{}' sandbox wrong-tag --yes --no-color --dir '{}' | head -1 >/dev/null; echo \"exit=${{PIPESTATUS[0]}}\"",
            env!("CARGO_BIN_EXE_kubectl-pullfix"),
            dir.path().display()
        ))
        .output()
        .unwrap();
    let t = text(&out);
    assert!(t.contains("exit=0"), "{t}");
    assert!(!t.contains("panicked"), "{t}");
}
