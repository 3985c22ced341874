//! `pullfix-lab`: the lab's helpers, never packaged with the plugin. The
//! lab scripts run the simulated kubelet with it, and tests and benchmarks
//! set up scenarios and bench pods (`scripts/lab`, `docs/lab.md`).

mod populate;

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

use pullfix::kubeconfig::KubeFlags;
use pullfix::registry::client::{RegistryConfig, parse_aliases};
use pullfix_sandbox::kubelet::{self, KubeletOptions, NodeSpec};
use pullfix_sandbox::scenarios::{self, LabEnv, Placement};

/// The lab's helpers: the simulated kubelet, scenario fixtures, bench pods.
#[derive(Debug, Parser)]
#[command(name = "pullfix-lab", disable_help_subcommand = true)]
struct Cli {
    #[command(flatten)]
    kube: KubeFlags,
    /// The namespace for `scenario` (default: the scenario's id)
    #[arg(short = 'n', long, global = true, value_name = "NAMESPACE")]
    namespace: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the simulated kubelet
    Kubelet(LabKubeletArgs),
    /// Set up a scenario in a namespace
    Scenario(LabScenarioArgs),
    /// Fill the lab with bench namespaces, nodes and pods
    Populate(LabPopulateArgs),
    /// Delete what `populate` made
    Depopulate(LabDepopulateArgs),
}

#[derive(Debug, clap::Args)]
pub struct LabKubeletArgs {
    /// A node to simulate: NAME:ARCH:KUBELET:RUNTIME (repeatable),
    /// e.g. lab-a:amd64:1.33:containerd2.1
    #[arg(long = "node", required = true)]
    pub nodes: Vec<String>,
    /// Taint a node: NAME=KEY=VALUE:EFFECT (repeatable)
    #[arg(long = "taint")]
    pub taints: Vec<String>,
    /// Multiply backoff and sync periods (0.1 turns 10 s into 1 s)
    #[arg(long, default_value_t = 1.0)]
    pub time_scale: f64,
    /// CA certificate (PEM) the nodes trust for registries
    #[arg(long, env = "PULLFIX_LAB_CA")]
    pub ca_file: Option<std::path::PathBuf>,
    /// DNS overrides: HOST=IP:PORT or HOST=nxdomain, comma-separated
    #[arg(long, env = "PULLFIX_LAB_HOST_ALIASES", default_value = "")]
    pub host_aliases: String,
    /// Registries (HOST:PORT) reached over plain HTTP, comma-separated
    #[arg(long, env = "PULLFIX_LAB_PLAIN_HTTP", default_value = "")]
    pub plain_http: String,
    /// Registry request timeout
    #[arg(long, default_value = "5s", value_parser = pullfix::duration::parse)]
    pub registry_timeout: Duration,
}

#[derive(Debug, clap::Args)]
pub struct LabScenarioArgs {
    /// Scenario id (`--list` shows them); the namespace is -n (default: the id)
    #[arg(required_unless_present = "list")]
    pub scenario: Option<String>,
    /// Pin the scenario's pods to this node
    #[arg(long)]
    pub node: Option<String>,
    /// List the scenarios, one per line
    #[arg(long)]
    pub list: bool,
    /// Print the plain-kubectl commands that fix the scenario, one per line,
    /// instead of setting it up
    #[arg(long)]
    pub print_fix: bool,
}

fn main() -> ExitCode {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .without_time()
        .try_init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: start the async runtime: {e}");
            return ExitCode::from(pullfix::EXIT_ERROR);
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Kubelet(args) => run_kubelet(&cli.kube, args).await,
            Command::Scenario(args) => run_scenario(&cli.kube, args, cli.namespace.clone()).await,
            Command::Populate(args) => run_populate(&cli.kube, args).await,
            Command::Depopulate(args) => run_depopulate(&cli.kube, args).await,
        }
    });
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(pullfix::EXIT_ERROR)
        }
    }
}

async fn run_kubelet(kube: &KubeFlags, args: LabKubeletArgs) -> anyhow::Result<u8> {
    let nodes = args
        .nodes
        .iter()
        .map(|s| NodeSpec::parse(s).map_err(anyhow::Error::msg))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let ca_pem = match &args.ca_file {
        Some(p) => vec![std::fs::read(p).with_context(|| format!("read CA file {}", p.display()))?],
        None => Vec::new(),
    };
    let options = KubeletOptions {
        nodes,
        time_scale: args.time_scale,
        taints: args.taints.clone(),
        registry: RegistryConfig {
            hosts: None,
            ca_pem,
            aliases: parse_aliases(&args.host_aliases).map_err(anyhow::Error::msg)?,
            plain_http: args
                .plain_http
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
            timeout: Some(args.registry_timeout),
        },
    };
    let client = kube.lab_client().await?;
    kubelet::run(client, options, pullfix::shutdown_signal()).await?;
    Ok(pullfix::EXIT_OK)
}

async fn run_scenario(
    kube: &KubeFlags,
    args: LabScenarioArgs,
    namespace: Option<String>,
) -> anyhow::Result<u8> {
    if args.list {
        for s in scenarios::all() {
            println!("{}\t{}", s.id, s.story);
        }
        return Ok(pullfix::EXIT_OK);
    }
    let id = args.scenario.as_deref().unwrap_or_default();
    let scenario = scenarios::find(id)?;
    let env = LabEnv::from_env()?;
    let ns = namespace.unwrap_or_else(|| id.to_string());
    if args.print_fix {
        let commands = scenario.fix_commands(&env, &ns).ok_or_else(|| {
            anyhow::anyhow!(
                "scenario `{id}` has no in-cluster fix (the cause is outside the cluster)"
            )
        })?;
        for c in commands {
            println!("{c}");
        }
        return Ok(pullfix::EXIT_OK);
    }
    let placement = Placement { node: args.node };
    let client = kube.lab_client().await?;
    scenarios::apply(&client, &scenario.objects(&env, &ns, &placement), &ns).await?;
    println!("scenario {id} set up in namespace {ns}: {}", scenario.story);
    Ok(pullfix::EXIT_OK)
}

/// Arguments of `populate` (see [`populate`]).
#[derive(Debug, clap::Args)]
pub struct LabPopulateArgs {
    /// Number of bench-NNN namespaces
    #[arg(long, default_value_t = 200)]
    pub namespaces: usize,
    /// Pods in each namespace
    #[arg(long, default_value_t = 50)]
    pub pods_per_namespace: usize,
    /// Pods failing to pull, spread over the namespaces
    #[arg(long, default_value_t = 200)]
    pub failing: usize,
    /// Requests in flight at once
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// Name prefix of the namespaces (PREFIXNNN) and nodes (PREFIXnode-N)
    /// this population owns
    #[arg(long, default_value = populate::NAMESPACE_PREFIX, value_parser = bench_prefix)]
    pub prefix: String,
}

/// Arguments of `depopulate`.
#[derive(Debug, clap::Args)]
pub struct LabDepopulateArgs {
    /// Only the namespaces and nodes of `populate --prefix PREFIX` (default:
    /// every bench namespace and node)
    #[arg(long, value_parser = bench_prefix)]
    pub prefix: Option<String>,
}

/// A prefix of namespace and node names: lowercase letters, digits and
/// `-`, starting with a letter, at most 40 characters.
fn bench_prefix(s: &str) -> Result<String, String> {
    let ok = s.len() <= 40
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(s.to_string())
    } else {
        Err("lowercase letters, digits and '-', starting with a letter, at most 40".into())
    }
}

async fn run_populate(kube: &KubeFlags, args: LabPopulateArgs) -> anyhow::Result<u8> {
    use crate::populate::{PopulateOptions, populate};
    let options = PopulateOptions {
        namespaces: args.namespaces,
        pods_per_namespace: args.pods_per_namespace,
        failing: args.failing,
        concurrency: args.concurrency,
        prefix: args.prefix,
        ..PopulateOptions::default()
    };
    let client = kube.lab_client().await?;
    println!("{}", populate(&client, &options).await?);
    Ok(pullfix::EXIT_OK)
}

async fn run_depopulate(kube: &KubeFlags, args: LabDepopulateArgs) -> anyhow::Result<u8> {
    let client = kube.lab_client().await?;
    println!(
        "{}",
        crate::populate::depopulate(&client, args.prefix.as_deref()).await?
    );
    Ok(pullfix::EXIT_OK)
}
