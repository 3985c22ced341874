//! `kubectl pullfix sandbox SCENARIO --shell` for the tests that work from
//! "another terminal": the sandbox in the background, the environment it
//! exports (what a responder sources), and every value that must never be
//! printed.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_kubectl-pullfix");

/// A sandbox left running; stopped when dropped.
pub struct SandboxShell {
    child: Child,
    /// The exported variables (`PATH` left out).
    pub env: Vec<(String, String)>,
    /// The sandbox's directory: kubeconfigs, audit log, hand-over file.
    pub dir: PathBuf,
}

impl Drop for SandboxShell {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl SandboxShell {
    /// Starts `scenario` with `--dir dir` and waits for its environment.
    pub fn start(scenario: &str, dir: &Path) -> SandboxShell {
        std::fs::create_dir_all(dir).unwrap();
        let env_file = dir.join("shell.env");
        let child = Command::new(BIN)
            .args(["sandbox", scenario, "--shell", "--no-color", "--env-file"])
            .arg(&env_file)
            .arg("--dir")
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut shell = SandboxShell {
            child,
            env: Vec::new(),
            dir: dir.to_path_buf(),
        };
        shell.env = wait_for_env(&env_file, Duration::from_secs(120));
        shell
    }

    /// The tool with the sandbox's environment and no terminal.
    pub fn tool(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.args(args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null());
        c
    }

    /// kubectl with the sandbox's environment, `stdin` fed to it (empty:
    /// nothing to read).
    pub fn kubectl(&self, args: &[&str], stdin: &str) -> Output {
        use std::io::Write as _;
        let mut child = Command::new("kubectl")
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("kubectl on PATH (the sandbox tests drive it from another terminal)");
        let mut input = child.stdin.take().unwrap();
        input.write_all(stdin.as_bytes()).unwrap();
        drop(input);
        child.wait_with_output().unwrap()
    }

    /// The docker config the scenario hands over (the registry team's new
    /// credential).
    pub fn handover(&self) -> PathBuf {
        self.dir.join("registry-team-docker-config.json")
    }

    /// Every value that must never be printed: the registries' passwords,
    /// the handed-over credential, and the API tokens of the kubeconfigs
    /// (the bearer token and the token in the server URL's path).
    pub fn secrets(&self) -> Vec<String> {
        let mut s: Vec<String> = self
            .env
            .iter()
            .filter(|(k, _)| k.contains("PASSWORD") || k.contains("SECRET"))
            .map(|(_, v)| v.clone())
            .collect();
        if let Ok(raw) = std::fs::read_to_string(self.handover())
            && let Ok(v) = serde_json::from_str::<serde_json::Value>(&raw)
            && let Some(auths) = v["auths"].as_object()
        {
            for e in auths.values() {
                for k in ["password", "auth"] {
                    if let Some(p) = e[k].as_str() {
                        s.push(p.to_string());
                    }
                }
            }
        }
        for entry in std::fs::read_dir(&self.dir).into_iter().flatten().flatten() {
            let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
            for line in text.lines().map(str::trim) {
                if let Some(t) = line.strip_prefix("token:") {
                    s.push(t.trim().trim_matches(['\'', '"']).to_string());
                }
                if let Some(url) = line.strip_prefix("server:") {
                    let url = url.trim().trim_matches(['\'', '"']);
                    let path = url.splitn(4, '/').nth(3).unwrap_or_default();
                    s.extend(
                        path.split('/')
                            .filter(|p| p.len() >= 16)
                            .map(str::to_string),
                    );
                }
            }
        }
        s.retain(|v| v.len() >= 8);
        s.sort();
        s.dedup();
        s
    }
}

/// The variables an env file exports (`PATH` left out), once the sandbox
/// has written it.
pub fn wait_for_env(env_file: &Path, limit: Duration) -> Vec<(String, String)> {
    let deadline = Instant::now() + limit;
    while std::fs::read_to_string(env_file).map_or(true, |t| t.is_empty()) {
        assert!(
            Instant::now() < deadline,
            "no env file at {}",
            env_file.display()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::fs::read_to_string(env_file)
        .unwrap()
        .lines()
        .filter_map(|l| l.strip_prefix("export "))
        .filter_map(|l| l.split_once('='))
        .filter(|(k, _)| *k != "PATH")
        .map(|(k, v)| (k.to_string(), v.trim_matches('\'').to_string()))
        .collect()
}

/// Every scenario `sandbox --list` names, id first on each line.
pub fn scenarios() -> Vec<String> {
    let out = Command::new(BIN)
        .args(["sandbox", "--list"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once('\t').map(|(id, _)| id.to_string()))
        .collect()
}

/// stdout, then stderr, for assertion messages.
pub fn text(o: &Output) -> String {
    format!(
        "{}\n--- stderr ---\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}
