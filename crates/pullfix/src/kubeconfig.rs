//! A Kubernetes client from kubectl-style flags: `--kubeconfig` (and the
//! `KUBECONFIG` list), `--context`, `--cluster`, `--user`,
//! `--request-timeout`, falling back to in-cluster config.
//!
//! Exec credential plugins (`aws eks get-token`) run once per invocation:
//! kube's client would run them again for every connection, so the token is
//! fetched here and handed to the client.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use kube::config::{ExecConfig, KubeConfigOptions, Kubeconfig, KubeconfigError};
use kube::{Client, Config};

/// What the API server's audit log shows for pullfix's requests.
pub(crate) const USER_AGENT: &str = concat!("kubectl-pullfix/", env!("CARGO_PKG_VERSION"));

/// The user agent of the lab's tools (simulated kubelet, scenario loader).
pub(crate) const LAB_USER_AGENT: &str = concat!("kubectl-pullfix-lab/", env!("CARGO_PKG_VERSION"));

/// When `--request-timeout` is 0 (kubectl's default: no limit on a
/// request), connecting (TCP and TLS) still gives up after this long, as
/// kubectl's dialer (30 s) and TLS handshake (10 s) bounds do.
pub(crate) const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// When `--request-timeout` is 0, a connection on which the API server
/// sends nothing for this long is given up. kubectl itself would wait
/// forever on a server that accepts and never answers; pullfix makes no
/// watch or other long-lived request, so a bound costs nothing and a
/// stuck load balancer cannot hang the on-call engineer's terminal.
pub(crate) const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(60);

/// When `--request-timeout` is 0, an exec credential plugin (the
/// kubeconfig user's `exec`, e.g. `aws eks get-token`) that has not
/// answered after this long is killed. kubectl would wait forever; a plugin
/// waiting on an SSO login nobody will complete must not hang the terminal.
pub(crate) const DEFAULT_EXEC_TIMEOUT: Duration = Duration::from_secs(60);

/// The kubectl flags that select a cluster and identity.
#[derive(Debug, Clone, Default, clap::Args)]
#[command(next_help_heading = "Kubeconfig options")]
pub struct KubeFlags {
    /// Path to the kubeconfig file to use
    #[arg(long, global = true, value_name = "PATH")]
    pub kubeconfig: Option<std::path::PathBuf>,
    /// The name of the kubeconfig context to use
    #[arg(long, global = true, value_name = "NAME")]
    pub context: Option<String>,
    /// The name of the kubeconfig cluster to use
    #[arg(long, global = true, value_name = "NAME")]
    pub cluster: Option<String>,
    /// The name of the kubeconfig user to use
    #[arg(long, global = true, value_name = "NAME")]
    pub user: Option<String>,
    /// How long to wait for a single API request, and for the kubeconfig's
    /// exec credential plugin (e.g. 30s, 1m). 0: no overall limit, but
    /// connecting gives up after 30s, a server silent for 60s is dropped and
    /// a credential plugin is killed after 60s
    #[arg(long, global = true, value_name = "DURATION", default_value = "0", value_parser = crate::duration::parse, allow_hyphen_values = true)]
    pub request_timeout: Duration,
    /// Requests a second to the API server, after a burst of --burst (the
    /// client-side rate limit, as client-go's); 0: no limit. A 429 (the
    /// server overloaded) is waited out as it asks, up to 10s a wait, and
    /// tried again at most 3 times
    #[arg(long, global = true, value_name = "QPS", default_value = crate::throttle::DEFAULT_QPS, value_parser = crate::throttle::parse_qps, allow_hyphen_values = true)]
    pub qps: f64,
    /// Requests that may go at once before --qps paces them (1 or more)
    #[arg(long, global = true, value_name = "N", default_value = crate::throttle::DEFAULT_BURST, value_parser = crate::throttle::parse_burst, allow_hyphen_values = true)]
    pub burst: u32,
}

/// Where the kubeconfig came from, for error messages.
fn kubeconfig_error(path: &Path, e: &std::io::Error) -> anyhow::Error {
    let what = match e.kind() {
        std::io::ErrorKind::NotFound => "no such file".to_string(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        std::io::ErrorKind::IsADirectory => "is a directory".to_string(),
        _ => e.to_string(),
    };
    anyhow::anyhow!(
        "kubeconfig {}: {what}\nhelp: check the path given to --kubeconfig (or in KUBECONFIG); kubectl config view --kubeconfig PATH shows what a file holds",
        path.display()
    )
}

/// Reads one kubeconfig file with errors that name the file and say what is
/// wrong with it (missing, unreadable, not YAML, not a kubeconfig).
pub(crate) fn read_kubeconfig(path: &Path) -> anyhow::Result<Kubeconfig> {
    let meta = std::fs::metadata(path).map_err(|e| kubeconfig_error(path, &e))?;
    if meta.is_dir() {
        return Err(kubeconfig_error(
            path,
            &std::io::Error::from(std::io::ErrorKind::IsADirectory),
        ));
    }
    // Read it here first: kube's own reader names the file in Debug quotes
    // and says little about why.
    let text = std::fs::read(path).map_err(|e| kubeconfig_error(path, &e))?;
    if std::str::from_utf8(&text).is_err() {
        anyhow::bail!(
            "kubeconfig {}: not a kubeconfig (not UTF-8 text)\nhelp: point --kubeconfig at a kubeconfig YAML file (kubectl config view --raw writes one)",
            path.display()
        );
    }
    Kubeconfig::read_from(path).map_err(|e| {
        let why = match &e {
            KubeconfigError::Parse(inner) => {
                format!("not a kubeconfig (invalid YAML: {})", one_line(&crate::errors::chain(inner)))
            }
            other => one_line(&crate::errors::chain(other)),
        };
        anyhow::anyhow!(
            "kubeconfig {}: {why}\nhelp: point --kubeconfig at a kubeconfig YAML file (kubectl config view --raw writes one)",
            path.display()
        )
    })
}

/// The first line of an error, so a YAML parser's excerpt of the file does
/// not spill onto the terminal (or print a credential it quotes).
fn one_line(s: &str) -> String {
    let line = s.lines().next().unwrap_or_default().trim();
    let line = line.strip_prefix("error: ").unwrap_or(line);
    line.chars().filter(|c| !c.is_control()).take(200).collect()
}

/// The names in a kubeconfig, for `help:` lines.
fn listed<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let names: Vec<&str> = names.collect();
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

/// Checks `--context`, `--cluster`, `--user` and the current context against
/// the kubeconfig, and says which names it has when one is wrong.
fn check_names(kc: &Kubeconfig, options: &KubeConfigOptions, source: &str) -> anyhow::Result<()> {
    let contexts = || listed(kc.contexts.iter().map(|c| c.name.as_str()));
    let context_name = match &options.context {
        Some(c) => Some(c.clone()),
        None => kc.current_context.clone().filter(|c| !c.is_empty()),
    };
    let context = match &context_name {
        Some(name) => match kc.contexts.iter().find(|c| &c.name == name) {
            Some(c) => c.context.as_ref(),
            None => {
                let flag = if options.context.is_some() {
                    "--context"
                } else {
                    "current-context"
                };
                anyhow::bail!(
                    "context `{}` ({flag}) not found in {source}\nhelp: the contexts it has: {} (kubectl config get-contexts)",
                    crate::input::shown(name),
                    contexts()
                );
            }
        },
        None if options.cluster.is_none() => anyhow::bail!(
            "{source} has no current context\nhelp: pass --context NAME (it has: {}) or run kubectl config use-context NAME",
            contexts()
        ),
        None => None,
    };
    let cluster = options
        .cluster
        .clone()
        .or_else(|| context.map(|c| c.cluster.clone()));
    if let Some(cluster) = cluster
        && !kc.clusters.iter().any(|c| c.name == cluster)
    {
        anyhow::bail!(
            "cluster `{}` not found in {source}\nhelp: the clusters it has: {} (kubectl config get-clusters)",
            crate::input::shown(&cluster),
            listed(kc.clusters.iter().map(|c| c.name.as_str()))
        );
    }
    let user = options
        .user
        .clone()
        .or_else(|| context.and_then(|c| c.user.clone()));
    if let Some(user) = user
        && !kc.auth_infos.iter().any(|u| u.name == user)
    {
        anyhow::bail!(
            "user `{}` not found in {source}\nhelp: the users it has: {} (kubectl config get-users)",
            crate::input::shown(&user),
            listed(kc.auth_infos.iter().map(|u| u.name.as_str()))
        );
    }
    Ok(())
}

impl KubeFlags {
    /// The kubeconfig kubectl would read: `--kubeconfig`, else the
    /// `KUBECONFIG` list (missing files skipped, as kubectl does), else
    /// `~/.kube/config`; `None` when there is none (then in-cluster).
    fn kubeconfig(&self) -> anyhow::Result<Option<(Kubeconfig, String)>> {
        // `--kubeconfig ""` is no flag at all, as in kubectl.
        if let Some(path) = self
            .kubeconfig
            .as_ref()
            .filter(|p| !p.as_os_str().is_empty())
        {
            let kc = read_kubeconfig(path)?;
            return Ok(Some((kc, format!("kubeconfig {}", path.display()))));
        }
        if let Some(list) = std::env::var_os("KUBECONFIG") {
            let paths: Vec<PathBuf> = std::env::split_paths(&list)
                .filter(|p| !p.as_os_str().is_empty())
                .collect();
            if !paths.is_empty() {
                let mut merged: Option<Kubeconfig> = None;
                for p in paths.iter().filter(|p| p.exists()) {
                    let kc = read_kubeconfig(p)?;
                    merged = Some(match merged {
                        None => kc,
                        Some(m) => m.merge(kc).map_err(|e| {
                            anyhow::anyhow!(
                                "KUBECONFIG: cannot merge {}: {}\nhelp: check the files listed in KUBECONFIG",
                                p.display(),
                                crate::errors::chain(&e)
                            )
                        })?,
                    });
                }
                let shown = std::env::join_paths(&paths)
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default();
                return Ok(merged.map(|kc| (kc, format!("KUBECONFIG ({shown})"))));
            }
        }
        let home = std::env::var_os("HOME").map(PathBuf::from);
        match home.map(|h| h.join(".kube").join("config")) {
            Some(p) if p.exists() => {
                let kc = read_kubeconfig(&p)?;
                Ok(Some((kc, format!("kubeconfig {}", p.display()))))
            }
            _ => Ok(None),
        }
    }

    /// Loads the configuration the way kubectl does.
    pub(crate) async fn config(&self) -> anyhow::Result<Config> {
        // An empty value is no value, as kubectl reads `--context ""`.
        let given = |v: &Option<String>| v.clone().filter(|s| !s.is_empty());
        let options = KubeConfigOptions {
            context: given(&self.context),
            cluster: given(&self.cluster),
            user: given(&self.user),
        };
        let mut config = match self.kubeconfig()? {
            Some((kc, source)) => {
                check_names(&kc, &options, &source)?;
                Config::from_custom_kubeconfig(kc, &options).await.map_err(|e| {
                    anyhow::anyhow!(
                        "load {source}: {}\nhelp: check the context, cluster and user it selects (kubectl config view --minify)",
                        one_line(&crate::errors::chain(&e)),
                    )
                })?
            }
            None => Config::incluster().map_err(|_| {
                let looked = match std::env::var_os("KUBECONFIG") {
                    Some(v) if !v.is_empty() => format!(
                        "none of the files in KUBECONFIG ({}) exists",
                        crate::input::shown(&v.to_string_lossy())
                    ),
                    _ => "~/.kube/config does not exist and KUBECONFIG is not set".to_string(),
                };
                anyhow::anyhow!(
                    "no kubeconfig: {looked}, and this is not a pod in a cluster\nhelp: pass --kubeconfig PATH or set KUBECONFIG (kubectl config view shows what kubectl uses)"
                )
            })?,
        };
        config.headers.push((
            http::header::USER_AGENT,
            http::HeaderValue::from_static(USER_AGENT),
        ));
        // Named in the advice when the API server cannot be reached.
        crate::api::set_server(&config.cluster_url.to_string());
        if !self.request_timeout.is_zero() {
            config.connect_timeout = Some(self.request_timeout);
            config.read_timeout = Some(self.request_timeout);
            config.write_timeout = Some(self.request_timeout);
            // Count from when the request was sent, not from when a pooled
            // connection went idle.
            config.reset_reader_on_write = true;
        }
        if let Some(exec) = config.auth_info.exec.take() {
            let bound = if self.request_timeout.is_zero() {
                DEFAULT_EXEC_TIMEOUT
            } else {
                self.request_timeout
            };
            let creds = run_exec(&exec, bound).await?;
            if let Some(token) = creds.token {
                config.auth_info.token = Some(token.into());
            }
            if let (Some(cert), Some(key)) = (creds.cert, creds.key) {
                config.auth_info.client_certificate_data = Some(base64_std(&cert));
                config.auth_info.client_key_data = Some(base64_std(&key).into());
            }
        }
        register_secrets(&config);
        Ok(config)
    }

    /// A client for the lab's own tools (kubelet, scenario loader), which
    /// identify themselves apart from pullfix in the audit log.
    pub async fn lab_client(&self) -> anyhow::Result<Client> {
        let mut config = self.config().await?;
        config
            .headers
            .retain(|(k, _)| k != http::header::USER_AGENT);
        config.headers.push((
            http::header::USER_AGENT,
            http::HeaderValue::from_static(LAB_USER_AGENT),
        ));
        Client::try_from(config).context("create the Kubernetes client")
    }

    /// A client and the namespace the kubeconfig context selects.
    pub async fn client_and_namespace(&self) -> anyhow::Result<(Client, String)> {
        let mut config = self.config().await?;
        if self.request_timeout.is_zero() {
            config.connect_timeout = Some(DEFAULT_CONNECT_TIMEOUT);
            config.read_timeout = Some(DEFAULT_READ_TIMEOUT);
            config.reset_reader_on_write = true;
        }
        let ns = config.default_namespace.clone();
        let timeout = Some(self.request_timeout).filter(|t| !t.is_zero());
        let client = crate::throttle::client(config, self.qps, self.burst, timeout)?;
        Ok((client, ns))
    }
}

/// Hands the credentials this configuration carries to the log redactor
/// (`-v` logs request URLs, and a kubeconfig can put a token in the server
/// URL's path or userinfo).
fn register_secrets(config: &Config) {
    use secrecy::ExposeSecret as _;
    crate::redact::register_url(&config.cluster_url.to_string());
    let auth = &config.auth_info;
    for secret in [&auth.token, &auth.password, &auth.client_key_data]
        .into_iter()
        .flatten()
    {
        crate::redact::register(secret.expose_secret());
    }
    if let Some(file) = &auth.token_file
        && let Ok(token) = std::fs::read_to_string(file)
    {
        crate::redact::register(&token);
    }
}

fn base64_std(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

struct ExecCreds {
    token: Option<String>,
    cert: Option<String>,
    key: Option<String>,
}

/// Runs `cmd` to completion and collects its output, or, when `bound`
/// passes first, kills it and everything it started (`aws` runs helpers, a
/// shell script its commands; they would otherwise be left running) and
/// answers `None`. The plugin stays in pullfix's process group, so a
/// Ctrl-C at the terminal reaches it and its children as under kubectl.
async fn output_within(
    mut cmd: tokio::process::Command,
    bound: Duration,
) -> Option<std::io::Result<std::process::Output>> {
    use tokio::io::AsyncReadExt as _;
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return Some(Err(e)),
    };
    let (mut stdout, mut stderr) = (child.stdout.take(), child.stderr.take());
    let run = async {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let read_out = async {
            match stdout.as_mut() {
                Some(p) => p.read_to_end(&mut out).await.map(drop),
                None => Ok(()),
            }
        };
        let read_err = async {
            match stderr.as_mut() {
                Some(p) => p.read_to_end(&mut err).await.map(drop),
                None => Ok(()),
            }
        };
        let (o, e, status) = tokio::join!(read_out, read_err, child.wait());
        o?;
        e?;
        Ok(std::process::Output {
            status: status?,
            stdout: out,
            stderr: err,
        })
    };
    if let Ok(done) = tokio::time::timeout(bound, run).await {
        // It answered: what it left running on purpose (a credential cache
        // daemon) is not ours to stop.
        return Some(done);
    }
    // Its children first, while they are still known as its children (once
    // it dies they are adopted by init and lost from view).
    #[cfg(target_os = "linux")]
    if let Some(root) = child.id() {
        for pid in descendants(root) {
            if let Some(pid) = i32::try_from(pid)
                .ok()
                .and_then(rustix::process::Pid::from_raw)
            {
                // Already gone is fine: nothing is left to stop.
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
            }
        }
    }
    let _ = child.start_kill();
    None
}

/// The processes below `root` (children, their children, ...), from
/// `/proc/PID/stat`'s parent field.
#[cfg(target_os = "linux")]
fn descendants(root: u32) -> Vec<u32> {
    let mut parent_of = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        if let Some(ppid) = parent_in_stat(&stat) {
            parent_of.push((pid, ppid));
        }
    }
    let mut found = vec![root];
    let mut i = 0;
    while let Some(&p) = found.get(i) {
        for &(pid, ppid) in &parent_of {
            if ppid == p && !found.contains(&pid) {
                found.push(pid);
            }
        }
        i += 1;
    }
    found.retain(|&p| p != root);
    found
}

/// The parent pid in a `/proc/PID/stat` line: `PID (COMM) STATE PPID …`,
/// where COMM may hold spaces and parentheses (so: after the last `)`).
#[cfg(any(target_os = "linux", test))]
fn parent_in_stat(stat: &str) -> Option<u32> {
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// Runs an exec credential plugin once and reads its ExecCredential. The
/// plugin is killed if it has not answered within `bound`
/// (`--request-timeout`, or [`DEFAULT_EXEC_TIMEOUT`]).
async fn run_exec(exec: &ExecConfig, bound: Duration) -> anyhow::Result<ExecCreds> {
    let command = exec
        .command
        .clone()
        .context("the kubeconfig user's exec plugin has no command")?;
    let api_version = exec
        .api_version
        .clone()
        .unwrap_or_else(|| "client.authentication.k8s.io/v1beta1".into());
    let mut cmd = tokio::process::Command::new(&command);
    cmd.args(exec.args.clone().unwrap_or_default());
    for pair in exec.env.clone().unwrap_or_default() {
        let pair: HashMap<String, String> = pair;
        if let (Some(n), Some(v)) = (pair.get("name"), pair.get("value")) {
            cmd.env(n, v);
        }
    }
    cmd.env(
        "KUBERNETES_EXEC_INFO",
        serde_json::json!({"apiVersion": api_version, "kind": "ExecCredential", "spec": {"interactive": false}})
            .to_string(),
    );
    cmd.stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    // Dropping the unfinished wait on timeout kills the plugin; the guard
    // kills what it started too (`aws` runs helpers, a shell script its
    // commands), which would otherwise be left running.
    cmd.kill_on_drop(true);
    let Some(out) = output_within(cmd, bound).await else {
        anyhow::bail!(
            "the kubeconfig's exec credential plugin `{}` did not answer within {} (killed)\nhelp: run it by hand to see what it waits for (an SSO login? `aws sso login`), or allow it longer with --request-timeout",
            crate::input::shown(&command),
            crate::duration::format(bound),
        );
    };
    let out = out.map_err(|e| {
        anyhow::anyhow!(
            "run the kubeconfig's credential plugin `{command}`: {e}{}",
            exec.install_hint
                .as_ref()
                .map(|h| format!("\nhelp: {}", h.trim()))
                .unwrap_or_else(|| {
                    "\nhelp: install it or fix the path in the kubeconfig user's exec.command"
                        .into()
                })
        )
    })?;
    if !out.status.success() {
        anyhow::bail!(
            "the credential plugin `{command}` failed ({}): {}\nhelp: run it by hand to see why (expired SSO session? `aws sso login`)",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).with_context(|| {
        format!("the credential plugin `{command}` printed something that is not an ExecCredential")
    })?;
    let get = |k: &str| {
        v.get("status")
            .and_then(|s| s.get(k))
            .and_then(serde_json::Value::as_str)
            .map(str::to_string)
    };
    Ok(ExecCreds {
        token: get("token"),
        cert: get("clientCertificateData"),
        key: get("clientKeyData"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    const TWO_CONTEXTS: &str = "apiVersion: v1
kind: Config
current-context: dev
clusters:
- name: c1
  cluster: {server: 'https://127.0.0.1:1'}
users:
- name: u1
  user: {token: secret-token-value}
contexts:
- name: dev
  context: {cluster: c1, user: u1, namespace: shop}
- name: prod
  context: {cluster: c1, user: u1}
";

    #[test]
    fn a_parent_pid_is_read_past_the_command_name() {
        assert_eq!(parent_in_stat("42 (sleep) S 7 42 1 0"), Some(7));
        assert_eq!(parent_in_stat("42 (a) b) (c) S 9 1"), Some(9));
        assert_eq!(parent_in_stat("42 (trunc"), None);
        assert_eq!(parent_in_stat(""), None);
    }

    fn one_error_line(e: &anyhow::Error) -> String {
        let text = format!("{e:#}");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(lines[1].starts_with("help: "), "{text}");
        assert!(!text.contains("secret-token-value"), "{text}");
        text
    }

    #[test]
    fn missing_file() {
        let e = read_kubeconfig(Path::new("/nonexistent")).unwrap_err();
        let text = one_error_line(&e);
        assert!(
            text.starts_with("kubeconfig /nonexistent: no such file\n"),
            "{text}"
        );
    }

    #[test]
    fn not_yaml_and_not_text() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "bad", "{{{ not: yaml: [");
        let text = one_error_line(&read_kubeconfig(&p).unwrap_err());
        assert!(text.contains("not a kubeconfig"), "{text}");
        let p = dir.path().join("bin");
        std::fs::write(&p, [0xff, 0xfe, 0x00, 0x01]).unwrap();
        let text = one_error_line(&read_kubeconfig(&p).unwrap_err());
        assert!(text.contains("not UTF-8"), "{text}");
        let text = one_error_line(&read_kubeconfig(dir.path()).unwrap_err());
        assert!(text.contains("is a directory"), "{text}");
    }

    #[test]
    fn unknown_context_lists_the_ones_there_are() {
        let kc = Kubeconfig::from_yaml(TWO_CONTEXTS).unwrap();
        let opts = |c: Option<&str>, cl: Option<&str>, u: Option<&str>| KubeConfigOptions {
            context: c.map(Into::into),
            cluster: cl.map(Into::into),
            user: u.map(Into::into),
        };
        check_names(&kc, &opts(None, None, None), "kubeconfig k").unwrap();
        check_names(&kc, &opts(Some("prod"), None, None), "kubeconfig k").unwrap();
        let text = one_error_line(
            &check_names(&kc, &opts(Some("nope"), None, None), "kubeconfig k").unwrap_err(),
        );
        assert!(
            text.contains("context `nope` (--context) not found in kubeconfig k"),
            "{text}"
        );
        assert!(text.contains("dev, prod"), "{text}");
        let text =
            one_error_line(&check_names(&kc, &opts(None, Some("c9"), None), "k").unwrap_err());
        assert!(
            text.contains("cluster `c9`") && text.contains("c1"),
            "{text}"
        );
        let text =
            one_error_line(&check_names(&kc, &opts(None, None, Some("u9")), "k").unwrap_err());
        assert!(text.contains("user `u9`") && text.contains("u1"), "{text}");
        let mut none = kc.clone();
        none.current_context = None;
        let text = one_error_line(&check_names(&none, &opts(None, None, None), "k").unwrap_err());
        assert!(text.contains("no current context"), "{text}");
    }
}
