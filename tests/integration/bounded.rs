//! Every wait bounded (issue 16): `--request-timeout` bounds the
//! kubeconfig's exec credential plugin too, and with no limit given the
//! plugin is still killed after 60 s. No cluster needed: the plugin never
//! answers, so no request is ever sent.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// A kubeconfig whose user gets its token from `plugin` (exec, v1beta1).
fn exec_kubeconfig(dir: &Path, plugin: &Path) -> PathBuf {
    let p = dir.join("kubeconfig");
    std::fs::write(
        &p,
        format!(
            "apiVersion: v1
kind: Config
current-context: dev
clusters:
- name: c1
  cluster: {{server: 'https://127.0.0.1:1', insecure-skip-tls-verify: true}}
users:
- name: u1
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1beta1
      command: '{}'
      args: [eks, get-token]
      interactiveMode: Never
contexts:
- name: dev
  context: {{cluster: c1, user: u1, namespace: shop}}
",
            plugin.display()
        ),
    )
    .unwrap();
    p
}

/// A credential plugin named `aws` that waits 60 s (an SSO login nobody
/// completes), in a shell that keeps running while its child `sleep` does;
/// the child's pid goes to `aws.pid`.
fn sleeping_plugin(dir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt as _;
    let p = dir.join("aws");
    std::fs::write(
        &p,
        "#!/bin/sh\nsleep 60 &\necho $! > \"$0.pid\"\nwait\necho '{}'\n",
    )
    .unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

#[test]
fn request_timeout_bounds_the_exec_credential_plugin() {
    let home = tempfile::tempdir().unwrap();
    let plugin = sleeping_plugin(home.path());
    let kc = exec_kubeconfig(home.path(), &plugin);
    let kc = kc.to_str().unwrap();
    let plugin_text = plugin.to_str().unwrap();
    for command in [
        vec!["scan"],
        vec!["diagnose", "deploy/checkout", "-n", "shop"],
    ] {
        let mut args = vec!["--kubeconfig", kc, "--request-timeout", "2s"];
        args.extend(command.iter().copied());
        let crate::input::Outcome {
            code,
            stderr: err,
            elapsed,
        } = crate::input::run_with(&args, home.path(), Duration::from_secs(30));
        assert!(!err.contains("panicked"), "{args:?} panicked:\n{err}");
        assert!(
            elapsed < Duration::from_secs(10),
            "{args:?} waited {elapsed:?} for a plugin that sleeps 60 s:\n{err}"
        );
        assert_eq!(code, Some(2), "{args:?} exit code, stderr:\n{err}");
        assert!(
            err.contains(&format!(
                "the kubeconfig's exec credential plugin `{plugin_text}` did not answer within 2s"
            )),
            "{args:?}: the message names neither the plugin nor the bound:\n{err}"
        );
        assert!(
            err.lines()
                .any(|l| l.starts_with("help: ") && l.contains("--request-timeout")),
            "{args:?}: no advice:\n{err}"
        );
        // What the plugin started was killed with it, not left running.
        let pid_file = home.path().join("aws.pid");
        let pid = std::fs::read_to_string(&pid_file).unwrap();
        std::fs::remove_file(&pid_file).unwrap();
        let alive = || {
            std::fs::read_to_string(format!("/proc/{}/stat", pid.trim())).is_ok_and(|stat| {
                !stat
                    .rsplit(')')
                    .next()
                    .unwrap_or("")
                    .trim_start()
                    .starts_with('Z')
            })
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while alive() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(
            !alive(),
            "{args:?}: the plugin's child `sleep` (pid {}) outlived it",
            pid.trim()
        );
    }
}
