//! A Kubernetes client from kubectl-style flags: `--kubeconfig` (and the
//! `KUBECONFIG` list), `--context`, `--cluster`, `--user`,
//! `--request-timeout`, falling back to in-cluster config.
//!
//! Exec credential plugins (`aws eks get-token`) run once per invocation:
//! kube's client would run them again for every connection, so the token is
//! fetched here and handed to the client.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::Context as _;
use kube::config::{ExecConfig, KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

/// What the API server's audit log shows for pullfix's requests.
pub const USER_AGENT: &str = concat!("kubectl-pullfix/", env!("CARGO_PKG_VERSION"));

/// The user agent of the lab's tools (simulated kubelet, scenario loader).
pub const LAB_USER_AGENT: &str = concat!("kubectl-pullfix-lab/", env!("CARGO_PKG_VERSION"));

/// The kubectl flags that select a cluster and identity.
#[derive(Debug, Clone, Default, clap::Args)]
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
    /// How long to wait for a single API request (e.g. 30s, 1m; 0 waits forever)
    #[arg(long, global = true, value_name = "DURATION", default_value = "0", value_parser = parse_duration)]
    pub request_timeout: Duration,
}

/// Parses kubectl-style durations: `0`, `30`, `30s`, `500ms`, `2m`, `1h`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, "s"),
    };
    let n: f64 = num
        .parse()
        .map_err(|_| format!("invalid duration `{s}` (examples: 30s, 500ms, 2m)"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => {
            return Err(format!(
                "invalid duration unit in `{s}` (use ms, s, m or h)"
            ));
        }
    };
    Ok(Duration::from_secs_f64(secs))
}

impl KubeFlags {
    /// Loads the configuration the way kubectl does.
    pub async fn config(&self) -> anyhow::Result<Config> {
        let options = KubeConfigOptions {
            context: self.context.clone(),
            cluster: self.cluster.clone(),
            user: self.user.clone(),
        };
        let mut config = match &self.kubeconfig {
            Some(path) => {
                let kc = Kubeconfig::read_from(path).map_err(|e| {
                    anyhow::anyhow!(
                        "read kubeconfig {}: {}\nhelp: check the path given to --kubeconfig and that the file is valid YAML",
                        path.display(),
                        crate::errors::chain(&e)
                    )
                })?;
                Config::from_custom_kubeconfig(kc, &options).await.map_err(|e| {
                    anyhow::anyhow!(
                        "load kubeconfig {}: {}\nhelp: check the context, cluster and user names (kubectl config get-contexts --kubeconfig {})",
                        path.display(),
                        crate::errors::chain(&e),
                        path.display()
                    )
                })?
            }
            None => match Config::from_kubeconfig(&options).await {
                Ok(c) => c,
                Err(kerr) => Config::incluster().map_err(|_| {
                    anyhow::anyhow!(
                        "load kubeconfig: {}\nhelp: set KUBECONFIG or pass --kubeconfig (and check --context)",
                        crate::errors::chain(&kerr)
                    )
                })?,
            },
        };
        config.headers.push((
            http::header::USER_AGENT,
            http::HeaderValue::from_static(USER_AGENT),
        ));
        if !self.request_timeout.is_zero() {
            config.connect_timeout = Some(self.request_timeout);
            config.read_timeout = Some(self.request_timeout);
            config.write_timeout = Some(self.request_timeout);
        }
        if let Some(exec) = config.auth_info.exec.take() {
            let creds = run_exec(&exec).await?;
            if let Some(token) = creds.token {
                config.auth_info.token = Some(token.into());
            }
            if let (Some(cert), Some(key)) = (creds.cert, creds.key) {
                config.auth_info.client_certificate_data = Some(base64_std(&cert));
                config.auth_info.client_key_data = Some(base64_std(&key).into());
            }
        }
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

    /// A client for the selected cluster, and its default namespace.
    pub async fn client(&self) -> anyhow::Result<Client> {
        Ok(self.client_and_namespace().await?.0)
    }

    /// A client and the namespace the kubeconfig context selects.
    pub async fn client_and_namespace(&self) -> anyhow::Result<(Client, String)> {
        let config = self.config().await?;
        let ns = config.default_namespace.clone();
        let client = Client::try_from(config).context("create the Kubernetes client")?;
        Ok((client, ns))
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

/// Runs an exec credential plugin once and reads its ExecCredential.
async fn run_exec(exec: &ExecConfig) -> anyhow::Result<ExecCreds> {
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
    cmd.stdin(std::process::Stdio::null());
    let out = cmd.output().await.map_err(|e| {
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
    let s = &v["status"];
    let get = |k: &str| s[k].as_str().map(str::to_string);
    Ok(ExecCreds {
        token: get("token"),
        cert: get("clientCertificateData"),
        key: get("clientKeyData"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
        assert_eq!(parse_duration("30").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("3d").is_err());
    }
}
