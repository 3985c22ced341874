//! A Kubernetes client from kubectl-style flags: `--kubeconfig`, `--context`,
//! `--cluster`, `--user`, falling back to `KUBECONFIG` and in-cluster config.

use anyhow::Context as _;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

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
}

impl KubeFlags {
    /// Loads the configuration the way kubectl does.
    pub async fn config(&self) -> anyhow::Result<Config> {
        let options = KubeConfigOptions {
            context: self.context.clone(),
            cluster: self.cluster.clone(),
            user: self.user.clone(),
        };
        match &self.kubeconfig {
            Some(path) => {
                let kc = Kubeconfig::read_from(path).with_context(|| {
                    format!(
                        "read kubeconfig {}\nhelp: check the path given to --kubeconfig",
                        path.display()
                    )
                })?;
                Config::from_custom_kubeconfig(kc, &options)
                    .await
                    .with_context(|| format!("load kubeconfig {}", path.display()))
            }
            None => Config::from_kubeconfig(&options).await.or_else(|kerr| {
                Config::incluster().map_err(|_| {
                    anyhow::anyhow!(
                        "load kubeconfig: {kerr}\nhelp: set KUBECONFIG or pass --kubeconfig"
                    )
                })
            }),
        }
    }

    /// A client for the selected cluster.
    pub async fn client(&self) -> anyhow::Result<Client> {
        let config = self.config().await?;
        Client::try_from(config).context("create the Kubernetes client")
    }
}
