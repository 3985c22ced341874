//! The command line. Help texts read `kubectl pullfix ...`, as kubectl shows
//! plugins; doc comments are the help.

use std::ffi::OsString;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

use std::io::Write as _;

use pullfix::collect::Scope;
use pullfix::diagnose::run::Target;
use pullfix::kubeconfig::KubeFlags;
use pullfix::registry::hosts::RegistryHosts;
use pullfix::remediate::plan::AttachTo;
use pullfix::render::{self, Format, Palette};

/// Get pods out of ImagePullBackOff / ErrImagePull.
///
/// kubectl pullfix walks the on-call runbook: find the failing workloads,
/// read the real error, check the image and the pull secrets against the
/// registry, and fix them with confirmation.
#[derive(Debug, Parser)]
#[command(
    name = "kubectl pullfix",
    bin_name = "kubectl pullfix",
    version,
    disable_help_subcommand = true,
    after_help = "Exit codes: 0 nothing failing, 1 failures found, 2 error."
)]
pub struct Cli {
    // Field order is help order: the command's own flags first, the
    // kubeconfig flags last.
    /// With no subcommand: the guided flow (scan, pick, diagnose, fix, verify)
    #[command(flatten)]
    pub fix: FixArgs,
    #[command(flatten)]
    pub globals: Globals,
    #[command(flatten)]
    pub kube: KubeFlags,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// `--dry-run`'s strategy, as kubectl spells it. pullfix's rehearsal is
/// server-side; kubectl's `client` (print the objects, send nothing) is
/// refused with the way to get that (`diagnose`), not quietly mapped to a
/// rehearsal that sends requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DryRun {
    /// Write for real (kubectl's default).
    None,
    /// Every write sent with `dryRun=All`: the API server checks it and
    /// persists nothing. Plain `--dry-run` means this.
    Server,
}

impl DryRun {
    pub fn rehearse(self) -> bool {
        self == DryRun::Server
    }
}

/// `--dry-run[=none|server|client]`.
fn dry_run(s: &str) -> Result<DryRun, pullfix::input::Invalid> {
    match s {
        "none" => Ok(DryRun::None),
        "server" => Ok(DryRun::Server),
        "client" => Err(pullfix::input::Invalid::new(
            "client dry-run is not supported: pullfix rehearses on the server (every write sent with dryRun=All, checked by the API server, persisted nowhere)",
            "use --dry-run (the same as --dry-run=server); kubectl pullfix diagnose TARGET -n NAMESPACE shows the plan's commands without sending any write",
        )),
        other => Err(pullfix::input::Invalid::new(
            format!(
                "invalid dry-run strategy `{}`",
                pullfix::input::shown(other)
            ),
            "use --dry-run (=server), --dry-run=server or --dry-run=none, as kubectl",
        )),
    }
}

/// A boolean flag's value the way kubectl (Go's `strconv.ParseBool`) reads
/// it: `--all-namespaces=true`, `-A=false`.
fn go_bool(s: &str) -> Result<bool, pullfix::input::Invalid> {
    match s {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        other => Err(pullfix::input::Invalid::new(
            format!("invalid boolean `{}`", pullfix::input::shown(other)),
            "use true or false (or leave the value out: true)",
        )),
    }
}

/// kubectl's `-v=N` (klog) in pullfix's levels: 1-3 info, 4-5 debug, 6 and
/// above trace (request URLs and more, redacted).
fn klog_level(n: u8) -> u8 {
    match n {
        0 => 0,
        1..=3 => 1,
        4..=5 => 2,
        _ => 3,
    }
}

/// `-v=N`: a klog level, 0 to 99.
fn klog_value(s: &str) -> Result<u8, pullfix::input::Invalid> {
    s.parse::<u8>().ok().filter(|n| *n < 100).ok_or_else(|| {
        pullfix::input::Invalid::new(
            format!("invalid log level `{}`", pullfix::input::shown(s)),
            "give -v=N with N from 0 to 9 as kubectl (1-3 info, 4-5 debug, 6+ trace), or -v, -vv, -vvv",
        )
    })
}

/// Rewrites kubectl's verbosity forms (`-v=6`, `-v6`, `-v 6`) into the
/// hidden `--v=6` clap reads; `-v`, `-vv`, `-vvv` and everything after
/// `--` stay as they are.
pub fn normalize_args(args: impl IntoIterator<Item = OsString>) -> Vec<OsString> {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let mut out = Vec::new();
    let mut iter = args.into_iter().peekable();
    if let Some(argv0) = iter.next() {
        out.push(argv0);
    }
    while let Some(arg) = iter.next() {
        let Some(text) = arg.to_str() else {
            out.push(arg);
            continue;
        };
        if text == "--" {
            out.push(arg);
            out.extend(iter);
            break;
        }
        let level = match text.strip_prefix("-v") {
            // `-v=x` too, so the level's parser says what is wrong with it.
            Some(rest) if rest.starts_with('=') => Some(rest[1..].to_string()),
            Some(rest) if digits(rest) => Some(rest.to_string()),
            Some("") if iter.peek().and_then(|n| n.to_str()).is_some_and(digits) => {
                iter.next().and_then(|n| n.to_str().map(str::to_string))
            }
            _ => None,
        };
        match level {
            Some(n) => out.push(OsString::from(format!("--v={n}"))),
            None => out.push(arg),
        }
    }
    out
}

/// How fixes are carried out (for `kubectl pullfix` and `kubectl pullfix fix`).
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Fix options")]
pub struct FixArgs {
    /// Confirm every step (for automation); secrets managed by another tool
    /// also need --allow-managed
    #[arg(short = 'y', long)]
    pub yes: bool,
    /// Rehearse: every write is sent only as a server-side dry-run
    /// (`--dry-run` = `--dry-run=server`; `none` writes; kubectl's `client`
    /// is not supported: `diagnose` prints the plan without sending)
    #[arg(long, value_name = "STRATEGY", num_args = 0..=1, require_equals = true, default_value = "none", default_missing_value = "server", value_parser = dry_run, hide_default_value = true)]
    pub dry_run: DryRun,
    /// Skip the diagnosis's registry and AWS probes (classify from the
    /// cluster's evidence alone); a new credential is still tested against
    /// the registry before it is written
    #[arg(long)]
    pub no_probe: bool,
    /// Allow live edits of secrets that Helm, Argo CD, Flux, External Secrets,
    /// Sealed Secrets or reflector manage (they will revert them)
    #[arg(long)]
    pub allow_managed: bool,
    /// Registry username for the new pull secret credential
    #[arg(long, requires = "password_stdin", value_parser = username)]
    pub username: Option<String>,
    /// Read the registry password or token from stdin (with --username)
    #[arg(long, requires = "username")]
    pub password_stdin: bool,
    /// Take the credential from a docker config file (its `auths`)
    #[arg(long, value_name = "PATH", value_parser = readable_file)]
    pub from_docker_config: Option<std::path::PathBuf>,
    /// Copy the credential from another secret (NAMESPACE/NAME)
    #[arg(long, value_name = "NAMESPACE/NAME", value_parser = secret_ref)]
    pub from_secret: Option<String>,
    /// Use a fresh ECR token from your AWS identity (default for ECR images)
    #[arg(long)]
    pub from_ecr: bool,
    /// Write a credential this machine could not test (it does not trust or
    /// cannot reach the registry) without asking; --yes alone does not
    #[arg(long)]
    pub allow_untested: bool,
    /// Test the credential on the cluster (a canary pod pulls the image on
    /// the failing node) instead of from this machine
    #[arg(long)]
    pub probe_from_cluster: bool,
    /// Set this image (verified against the registry first)
    #[arg(long, value_name = "IMAGE", value_parser = image_ref)]
    pub image: Option<String>,
    /// Where to attach a new pull secret
    #[arg(long, value_enum)]
    pub attach_to: Option<AttachTo>,
    /// Name for a new pull secret
    #[arg(long, value_name = "NAME", value_parser = pullfix::input::object_name)]
    pub secret_name: Option<String>,
    /// How long to wait for the rollout
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = pullfix::duration::parse, allow_hyphen_values = true)]
    pub timeout: Duration,
    /// Write a markdown incident summary here
    #[arg(long, value_name = "FILE", value_parser = new_file)]
    pub report: Option<std::path::PathBuf>,
    /// Where backups of changed objects go (default: ~/.local/state/kubectl-pullfix/backups)
    #[arg(long, value_name = "DIR")]
    pub backup_dir: Option<std::path::PathBuf>,
    /// Time bound for each registry probe
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = probe_timeout, allow_hyphen_values = true)]
    pub probe_timeout: Duration,
}

/// Flags every subcommand takes, as kubectl does.
#[derive(Debug, Clone, clap::Args)]
pub struct Globals {
    /// The namespace to look in (default, and with -n "": the kubeconfig
    /// context's); it must exist
    #[arg(short = 'n', long, global = true, value_name = "NAMESPACE", value_parser = pullfix::input::namespace, help_heading = "Scope options")]
    pub namespace: Option<String>,
    /// Look in every namespace; -n is then ignored, as kubectl does
    #[arg(
        short = 'A',
        long,
        global = true,
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_value = "false",
        default_missing_value = "true",
        hide_default_value = true,
        value_parser = go_bool,
        help_heading = "Scope options"
    )]
    pub all_namespaces: bool,
    /// Output format (wide: the scan table with reason, pods, nodes and
    /// pull secrets; name: the failing workloads, one per line)
    #[arg(
        short = 'o',
        long,
        global = true,
        value_enum,
        default_value = "text",
        hide_possible_values = true,
        value_name = "text|wide|json|yaml|name",
        help_heading = "Output options"
    )]
    pub output: Format,
    /// Never color the output (also: NO_COLOR set to anything)
    #[arg(long, global = true, help_heading = "Output options")]
    pub no_color: bool,
    /// Log to stderr: -v info, -vv debug, -vvv trace; kubectl's -v=N works
    /// too (1-3 info, 4-5 debug, 6+ trace). Credentials are redacted
    #[arg(short = 'v', long = "verbose", action = clap::ArgAction::Count, global = true, help_heading = "Output options")]
    pub verbosity: u8,
    /// kubectl's `-v=N` (the plugin rewrites `-v=N`, `-vN` and `-v N` to it)
    #[arg(long = "v", id = "klog_level", value_name = "N", global = true, hide = true, value_parser = klog_value)]
    pub klog_level: Option<u8>,
    /// Reach registries the way the nodes do: a directory in containerd's
    /// certs.d layout (REGISTRY/hosts.toml: server, [host."URL"], ca,
    /// skip_verify), e.g. a copy of a node's /etc/containerd/certs.d
    #[arg(
        long,
        global = true,
        value_name = "DIR",
        env = "PULLFIX_REGISTRY_HOSTS",
        help_heading = "Registry options"
    )]
    pub registry_hosts: Option<std::path::PathBuf>,
    /// Trust this CA certificate (PEM) for every registry, as the nodes do
    /// (repeatable): a company CA this machine's trust store lacks
    #[arg(
        long,
        global = true,
        value_name = "FILE",
        help_heading = "Registry options"
    )]
    pub registry_ca: Vec<std::path::PathBuf>,
}

impl Globals {
    /// Reads `--registry-hosts` and says on stderr that it is in effect
    /// (it changes where credentials are sent).
    fn registry_hosts(&self) -> anyhow::Result<Option<RegistryHosts>> {
        let Some(dir) = &self.registry_hosts else {
            return Ok(None);
        };
        let hosts = RegistryHosts::load(dir)?;
        eprintln!("note: {hosts}");
        Ok(Some(hosts))
    }

    /// The `--registry-ca` certificates, read and checked (PEM).
    fn registry_ca(&self) -> anyhow::Result<Vec<Vec<u8>>> {
        self.registry_ca
            .iter()
            .map(|path| {
                let pem = std::fs::read(path).map_err(|e| {
                    anyhow::anyhow!(
                        "--registry-ca {}: {}\nhelp: give the path of the registry's CA certificate in PEM form (-----BEGIN CERTIFICATE-----)",
                        path.display(),
                        pullfix::input::io_reason(&e)
                    )
                })?;
                if !String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----") {
                    anyhow::bail!(
                        "--registry-ca {}: not a PEM certificate\nhelp: give the CA certificate in PEM form (-----BEGIN CERTIFICATE-----); convert a DER file with `openssl x509 -inform der -in FILE -out FILE.pem`",
                        path.display()
                    );
                }
                Ok(pem)
            })
            .collect()
    }

    /// The namespace from `-n`, if one was given; `-n ""` is none, as kubectl
    /// reads it (the kubeconfig context's namespace), never "all".
    fn namespace(&self) -> Option<String> {
        self.namespace.clone().filter(|n| !n.is_empty())
    }

    fn color(&self) -> bool {
        !self.no_color
            && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
            && std::io::IsTerminal::is_terminal(&std::io::stdout())
    }

    /// The log level: `-v` counted, or kubectl's `-v=N` mapped, whichever
    /// says more.
    pub fn log_level(&self) -> u8 {
        self.verbosity.max(self.klog_level.map_or(0, klog_level))
    }

    /// Colour in the log only on a terminal (the log goes to stderr).
    pub fn log_color(&self) -> bool {
        !self.no_color
            && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
            && std::io::IsTerminal::is_terminal(&std::io::stderr())
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Quick assessment: every pod that cannot pull its image, grouped by
    /// workload, with severity and cause (runbook step 0)
    Scan,
    /// Root cause with evidence for TARGET (a pod, deploy/NAME, sts/NAME,
    /// ds/NAME, job/NAME), or for every failing workload in scope
    Diagnose(DiagnoseArgs),
    /// Guided fix for TARGET (or the failing workloads in scope): diagnose,
    /// plan, and apply each step with confirmation, then verify
    Fix(FixCommand),
    /// Put an object back from a backup `fix` wrote, only if it is still as
    /// fix left it; when it changed since, refuse and show what changed
    Restore(RestoreArgs),
    /// Practise on an embedded cluster with nothing to install: start it,
    /// load a scenario from the runbook (default: the expired ECR token),
    /// and run the guided fix against it
    Sandbox(SandboxArgs),
}

#[derive(Debug, clap::Args)]
pub struct FixCommand {
    /// A pod name, deploy/NAME, sts/NAME, ds/NAME, job/NAME or cronjob/NAME
    #[arg(value_parser = Target::parse)]
    pub target: Option<Target>,
    #[command(flatten)]
    pub fix: FixArgs,
}

#[derive(Debug, clap::Args)]
pub struct RestoreArgs {
    /// A backup file that `fix` wrote (its path is printed after "backup:")
    #[arg(value_name = "BACKUP")]
    pub backup: std::path::PathBuf,
    /// Restore without asking
    #[arg(short = 'y', long)]
    pub yes: bool,
    /// Rehearse: the write is sent only as a server-side dry-run
    /// (`--dry-run` = `--dry-run=server`)
    #[arg(long, value_name = "STRATEGY", num_args = 0..=1, require_equals = true, default_value = "none", default_missing_value = "server", value_parser = dry_run, hide_default_value = true)]
    pub dry_run: DryRun,
}

#[derive(Debug, clap::Args)]
pub struct SandboxArgs {
    /// Scenario id (`--list` shows them); default: ecr-expired, the incident replay
    pub scenario: Option<String>,
    /// List the scenarios, one per line: id, then the story
    #[arg(long)]
    pub list: bool,
    /// Leave the sandbox running until Ctrl-C and work in another terminal
    /// (`source` the printed env file, then kubectl and kubectl pullfix)
    #[arg(long, conflicts_with = "train")]
    pub shell: bool,
    /// Play the scenario as an incident replay first: the alert, then a
    /// choice (A-D) each round, its consequence and cost, and a damage report
    #[arg(long)]
    pub train: bool,
    /// Confirm every step of the guided fix (and play --train's best path)
    #[arg(short = 'y', long)]
    pub yes: bool,
    /// Rehearse the guided fix: every write is a server-side dry-run
    /// (`--dry-run` = `--dry-run=server`)
    #[arg(long, value_name = "STRATEGY", num_args = 0..=1, require_equals = true, default_value = "none", default_missing_value = "server", value_parser = dry_run, hide_default_value = true)]
    pub dry_run: DryRun,
    /// Keep the kubeconfigs, audit log, backups and report here (default: a
    /// temporary directory removed at exit)
    #[arg(long, value_name = "DIR")]
    pub dir: Option<std::path::PathBuf>,
    /// With --shell: also write the environment (`export` lines) to FILE
    #[arg(long, value_name = "FILE", requires = "shell", value_parser = new_file)]
    pub env_file: Option<std::path::PathBuf>,
    /// Multiply the kubelet's backoff and sync periods
    #[arg(long, default_value_t = 0.1, hide = true, value_parser = time_scale, allow_hyphen_values = true)]
    pub time_scale: f64,
}

#[derive(Debug, clap::Args)]
pub struct DiagnoseArgs {
    /// A pod name, deploy/NAME, sts/NAME, ds/NAME, job/NAME or cronjob/NAME
    #[arg(value_parser = Target::parse)]
    pub target: Option<Target>,
    /// Skip every registry and AWS call: classify from the cluster's evidence alone
    #[arg(long)]
    pub no_probe: bool,
    /// Time bound for each registry probe
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = probe_timeout, allow_hyphen_values = true)]
    pub probe_timeout: Duration,
}

/// Parses arguments; `--help` and `--version` come back as errors clap prints.
pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Cli, clap::Error> {
    Cli::try_parse_from(args)
}

/// `--from-secret NAMESPACE/NAME`, checked before it becomes an API path.
fn secret_ref(s: &str) -> Result<String, pullfix::input::Invalid> {
    pullfix::input::namespaced_name(s).map(|_| s.to_string())
}

/// `--image`, parsed the way the container runtime parses it.
fn image_ref(s: &str) -> Result<String, pullfix::input::Invalid> {
    match pullfix::registry::reference::ImageRef::parse(s) {
        Ok(_) => Ok(s.to_string()),
        Err(e) => Err(pullfix::input::Invalid::new(
            format!("invalid image `{}`: {e}", pullfix::input::shown(s)),
            "write it as [REGISTRY/]REPOSITORY[:TAG][@sha256:DIGEST], e.g. 123456789012.dkr.ecr.eu-west-1.amazonaws.com/shop/checkout:1.4.2",
        )),
    }
}

/// `--probe-timeout`: a duration above zero (a zero bound would fail every
/// probe and read as an unreachable registry).
fn probe_timeout(s: &str) -> Result<Duration, pullfix::input::Invalid> {
    let d = pullfix::duration::parse(s)?;
    if d.is_zero() {
        return Err(pullfix::input::Invalid::new(
            "a probe timeout of 0 would fail every registry probe",
            "give a bound above zero, e.g. 10s; --no-probe skips the probes",
        ));
    }
    Ok(d)
}

/// `--username`: not empty, one line.
fn username(s: &str) -> Result<String, pullfix::input::Invalid> {
    if s.is_empty() || s.chars().any(char::is_control) || s.contains(':') {
        return Err(pullfix::input::Invalid::new(
            format!("invalid registry username `{}`", pullfix::input::shown(s)),
            "give the registry user name (not empty, no `:`; ECR's is AWS); the password comes from stdin",
        ));
    }
    Ok(s.to_string())
}

/// A file to read (`--from-docker-config`): it must exist and be a file.
fn readable_file(s: &str) -> Result<std::path::PathBuf, pullfix::input::Invalid> {
    let p = std::path::PathBuf::from(s);
    let problem = match std::fs::metadata(&p) {
        Ok(m) if m.is_dir() => Some("is a directory".to_string()),
        Ok(_) => std::fs::File::open(&p).err().map(|e| e.kind().to_string()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some("no such file".into()),
        Err(e) => Some(e.kind().to_string()),
    };
    match problem {
        None => Ok(p),
        Some(why) => Err(pullfix::input::Invalid::new(
            format!("{}: {why}", pullfix::input::shown(s)),
            "give the path of a docker config file, e.g. ~/.docker/config.json",
        )),
    }
}

/// A file to write (`--report`, `--env-file`): its directory must exist.
fn new_file(s: &str) -> Result<std::path::PathBuf, pullfix::input::Invalid> {
    let p = std::path::PathBuf::from(s);
    let dir = match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let problem = if s.is_empty() {
        Some("the path is empty")
    } else if p.is_dir() {
        Some("is a directory")
    } else if !dir.is_dir() {
        Some("its directory does not exist")
    } else {
        None
    };
    match problem {
        None => Ok(p),
        Some(why) => Err(pullfix::input::Invalid::new(
            format!("{}: {why}", pullfix::input::shown(s)),
            "give a file path in an existing directory, e.g. ./incident.md",
        )),
    }
}

/// `--time-scale`: a positive, finite factor.
fn time_scale(s: &str) -> Result<f64, pullfix::input::Invalid> {
    match s.trim().parse::<f64>() {
        Ok(f) if f.is_finite() && f > 0.0 && f <= 1000.0 => Ok(f),
        _ => Err(pullfix::input::Invalid::new(
            format!("invalid time scale `{}`", pullfix::input::shown(s)),
            "a number above 0 and at most 1000 (0.1 turns 10 s into 1 s)",
        )),
    }
}

/// A clap error as the plugin prints every error: one `error:` line, one
/// `help:` line, exit code 2 (`--help` and `--version` go through as clap
/// writes them). Values are quoted on one line and cut when long.
pub fn error_text(e: &clap::Error) -> String {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    use pullfix::input::shown;
    let ctx = |k: ContextKind| match e.get(k) {
        Some(ContextValue::String(s)) => Some(s.clone()),
        Some(ContextValue::Strings(v)) => Some(v.join(", ")),
        _ => None,
    };
    // The flag without its placeholder: `--request-timeout`, `-o/--output`,
    // `--dry-run` (from `--dry-run[=<STRATEGY>]`).
    let arg = ctx(ContextKind::InvalidArg)
        .map(|a| {
            a.split([' ', '=', '['])
                .next()
                .unwrap_or_default()
                .to_string()
        })
        .unwrap_or_else(|| "an argument".into());
    let value = ctx(ContextKind::InvalidValue).unwrap_or_default();
    let usage_help = "run kubectl pullfix --help (or kubectl pullfix COMMAND --help) for the flags";
    match e.kind() {
        ErrorKind::ValueValidation => {
            // Our parsers' errors already read "message\nhelp: ...".
            let source = std::error::Error::source(e)
                .map(|s| s.to_string())
                .unwrap_or_else(|| format!("invalid value `{}`", shown(&value)));
            let source = if source.contains("\nhelp: ") {
                source
            } else {
                format!(
                    "{}\nhelp: {usage_help}",
                    source.lines().next().unwrap_or_default()
                )
            };
            // A positional (`[TARGET]`): the message names it already.
            if arg.is_empty() || arg.starts_with(['[', '<']) {
                format!("error: {source}\n")
            } else {
                format!("error: {arg}: {source}\n")
            }
        }
        ErrorKind::InvalidValue => {
            let valid = ctx(ContextKind::ValidValue).unwrap_or_default();
            let help = if valid.is_empty() {
                format!("give {arg} a value")
            } else {
                format!("use one of: {valid}")
            };
            if value.is_empty() {
                format!("error: {arg} needs a value\nhelp: {help}\n")
            } else {
                format!(
                    "error: {arg}: invalid value `{}`\nhelp: {help}\n",
                    shown(&value)
                )
            }
        }
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => e.render().to_string(),
        ErrorKind::MissingRequiredArgument => {
            let missing = ctx(ContextKind::InvalidArg).unwrap_or_default();
            format!(
                "error: {} is required here\nhelp: {usage_help}\n",
                shown(&missing)
            )
        }
        _ => {
            // clap's own wording, first line, without its usage block.
            let rendered = e.render().to_string();
            let first = rendered
                .lines()
                .next()
                .unwrap_or_default()
                .trim_start_matches("error: ")
                .to_string();
            let tip = rendered
                .lines()
                .map(str::trim)
                .find_map(|l| l.strip_prefix("tip: "))
                .map(str::to_string);
            let suggested = ctx(ContextKind::SuggestedArg)
                .or_else(|| ctx(ContextKind::SuggestedSubcommand))
                .map(|s| format!("did you mean {s}?"));
            let help = suggested.or(tip).unwrap_or_else(|| usage_help.to_string());
            format!(
                "error: {}\nhelp: {help}\n",
                pullfix::input::shown_up_to(&first, 200)
            )
        }
    }
}

/// The default log filter: pullfix's own warnings, and nothing from the
/// libraries underneath (the AWS SDK probing EC2 metadata, hyper, rustls,
/// kube's failed-request errors that pullfix reports itself, with context).
/// Targets match by prefix, so `aws_smithy` covers every `aws_smithy_*`;
/// kube's crates are named one by one because a bare `kube` would also
/// match `kubectl_pullfix`.
const QUIET_FILTER: &str = "warn,aws_config=off,aws_smithy=off,aws_sdk=off,aws_runtime=off,aws_credential_types=off,aws_types=off,hyper=off,reqwest=off,rustls=off,h2=off,tower=off,kube_client=off,kube_runtime=off,kube_core=off";

/// Logs to stderr at the level `-v` asks for (or `RUST_LOG`), every line
/// redacted ([`pullfix::redact`]), in colour only when stderr is a
/// terminal.
pub fn init_tracing(verbosity: u8, color: bool) {
    // kube's client logs failed requests at error level; pullfix reports
    // them itself (with context), so they stay quiet unless -v.
    let level = match verbosity {
        0 => QUIET_FILTER,
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(move || RedactedStderr(Vec::new(), color))
        .with_ansi(color)
        .without_time()
        .try_init();
}

/// One log event, held until it is complete, then redacted, made inert
/// (cluster text in a log line shown escaped; the logger's own colour kept
/// when on) and written to stderr in one piece.
struct RedactedStderr(Vec<u8>, bool);

impl std::io::Write for RedactedStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.0.is_empty() {
            return Ok(());
        }
        let text = String::from_utf8_lossy(&self.0);
        let clean = pullfix::sanitize::log_text(&pullfix::redact::redact(&text), self.1);
        self.0.clear();
        std::io::stderr().lock().write_all(clean.as_bytes())
    }
}

impl Drop for RedactedStderr {
    fn drop(&mut self) {
        let _ = std::io::Write::flush(self);
    }
}

/// Runs the parsed command and returns the exit code.
pub async fn run(cli: Cli) -> anyhow::Result<u8> {
    match cli.command {
        None => run_fix(&cli.kube, &cli.globals, None, cli.fix).await,
        Some(Command::Fix(cmd)) => run_fix(&cli.kube, &cli.globals, cmd.target, cmd.fix).await,
        Some(Command::Sandbox(args)) => run_sandbox(&cli.globals, args).await,
        Some(Command::Restore(args)) => run_restore(&cli.kube, args).await,
        Some(Command::Scan) => run_scan(&cli.kube, &cli.globals).await,
        Some(Command::Diagnose(args)) => run_diagnose(&cli.kube, &cli.globals, args).await,
    }
}

#[cfg(not(feature = "sandbox"))]
async fn run_sandbox(_: &Globals, _: SandboxArgs) -> anyhow::Result<u8> {
    anyhow::bail!(
        "this kubectl-pullfix was built without the practice sandbox\nhelp: build it with the default features (`cargo install kubectl-pullfix`), or practise on a test cluster"
    )
}

#[cfg(feature = "sandbox")]
async fn run_sandbox(g: &Globals, args: SandboxArgs) -> anyhow::Result<u8> {
    use pullfix_sandbox::practice::{SandboxOptions, run};
    run(SandboxOptions {
        scenario: args.scenario,
        namespace: g.namespace(),
        list: args.list,
        shell: args.shell,
        train: args.train,
        yes: args.yes,
        dry_run: args.dry_run.rehearse(),
        dir: args.dir,
        env_file: args.env_file,
        time_scale: args.time_scale,
        color: g.color(),
    })
    .await
}

/// The client and where to look: every namespace with `-A` (which wins
/// over `-n`, as in kubectl), else `-n`, else the context's namespace,
/// which must exist (exit 2 with the close names when it does not).
async fn scope(kube: &KubeFlags, g: &Globals) -> anyhow::Result<(kube::Client, Scope)> {
    use pullfix::namespace::{Checked, Source, check};
    let (client, default_ns) = kube.client_and_namespace().await?;
    if g.all_namespaces {
        if let Some(ns) = g.namespace() {
            eprintln!("note: -A looks in every namespace; -n {ns} is ignored, as kubectl does");
        }
        return Ok((client, Scope::All));
    }
    let (ns, source) = match g.namespace() {
        Some(ns) => (ns, Source::Flag),
        None => (default_ns, Source::Context),
    };
    // Denied by RBAC: `check` says so at -v, and the scan goes ahead.
    let _: Checked = check(&client, &ns, source).await?;
    Ok((client, Scope::Namespace(ns)))
}

async fn run_scan(kube: &KubeFlags, g: &Globals) -> anyhow::Result<u8> {
    let (client, scope) = scope(kube, g).await?;
    let assessment = pullfix::scan::run(&client, &scope).await?;
    let mut out = std::io::stdout().lock();
    let palette = Palette::new(g.color());
    match g.output {
        Format::Text => render::scan_text(&mut out, &assessment, &palette)?,
        Format::Wide => render::scan_wide(&mut out, &assessment, &palette)?,
        Format::Name => render::names(&mut out, assessment.groups.iter().map(|g| &g.workload))?,
        f => render::structured(&mut out, f, "Scan", &assessment)?,
    }
    out.flush()?;
    Ok(if assessment.groups.is_empty() {
        pullfix::EXIT_OK
    } else {
        pullfix::EXIT_FAILURES
    })
}

async fn run_fix(
    kube: &KubeFlags,
    g: &Globals,
    target: Option<Target>,
    args: FixArgs,
) -> anyhow::Result<u8> {
    use pullfix::remediate::apply::{CredentialFlags, default_backup_dir};
    use pullfix::remediate::flow::{FixOptions, run};
    let password = if args.password_stdin {
        let mut line = String::new();
        std::io::stdin()
            .read_line(&mut line)
            .context("read the password from stdin")?;
        let p = secrecy::SecretString::from(line.trim_end_matches(['\n', '\r']).to_string());
        // The copy read from stdin is zeroed once the secret holds it.
        secrecy::zeroize::Zeroize::zeroize(&mut line);
        if secrecy::ExposeSecret::expose_secret(&p).is_empty() {
            anyhow::bail!(
                "--password-stdin: stdin was empty\nhelp: echo \"$PASSWORD\" | kubectl pullfix ... --username USER --password-stdin"
            );
        }
        Some(p)
    } else {
        None
    };
    let registry_hosts = g.registry_hosts()?;
    let registry_ca = g.registry_ca()?;
    let (client, scope) = scope(kube, g).await?;
    let options = FixOptions {
        dry_run: args.dry_run.rehearse(),
        no_probe: args.no_probe,
        timeout: args.timeout,
        report: args.report,
        creds: CredentialFlags {
            username: args.username,
            password,
            docker_config: args.from_docker_config,
            from_secret: args.from_secret,
            from_ecr: args.from_ecr,
            allow_untested: args.allow_untested,
            probe_from_cluster: args.probe_from_cluster,
        },
        image: args.image,
        attach_to: args.attach_to,
        secret_name: args.secret_name,
        backup_dir: args.backup_dir.unwrap_or_else(default_backup_dir),
        probe_timeout: args.probe_timeout,
        max_rounds: 3,
        color: g.color(),
        before_write_hook: test_hook(),
        registry_hosts,
        registry_ca,
    };
    // With -o json|yaml|name the narrative goes to stderr and stdout carries
    // the incident (or the names of the workloads it worked on).
    let structured = matches!(g.output, Format::Json | Format::Yaml | Format::Name);
    let mut narrative: Box<dyn std::io::Write> = if structured {
        Box::new(std::io::stderr())
    } else {
        Box::new(std::io::stdout())
    };
    let mut prompter = pullfix::remediate::prompt::for_run(args.yes, args.allow_managed);
    let (code, incident) = run(
        &client,
        &scope,
        target,
        &options,
        prompter.as_mut(),
        narrative.as_mut(),
    )
    .await?;
    narrative.flush()?;
    if structured && let Some(incident) = incident {
        let mut out = std::io::stdout().lock();
        if g.output == Format::Name {
            render::names(&mut out, &finding_workloads(&incident.findings))?;
        } else {
            render::structured(&mut out, g.output, "Incident", &incident)?;
        }
    }
    Ok(code)
}

/// `kubectl pullfix restore BACKUP`: the namespace is the backup's.
async fn run_restore(kube: &KubeFlags, args: RestoreArgs) -> anyhow::Result<u8> {
    use pullfix::remediate::restore::{RestoreOptions, run};
    let (client, _) = kube.client_and_namespace().await?;
    let mut prompter = pullfix::remediate::prompt::for_run(args.yes, false);
    let mut out = std::io::stdout();
    let code = run(
        &client,
        &RestoreOptions {
            backup: args.backup,
            dry_run: args.dry_run.rehearse(),
        },
        prompter.as_mut(),
        &mut out,
    )
    .await?;
    out.flush()?;
    Ok(code)
}

/// A shell command run before every write, for the tests that make a
/// concurrent writer; only in builds with the `test-hooks` feature, never in
/// a release.
#[cfg(feature = "test-hooks")]
fn test_hook() -> Option<String> {
    std::env::var("PULLFIX_TEST_BEFORE_WRITE").ok()
}

#[cfg(not(feature = "test-hooks"))]
fn test_hook() -> Option<String> {
    None
}

async fn run_diagnose(kube: &KubeFlags, g: &Globals, args: DiagnoseArgs) -> anyhow::Result<u8> {
    let target = args.target.clone().unwrap_or(Target::All);
    let registry_hosts = g.registry_hosts()?;
    let registry_ca = g.registry_ca()?;
    let (client, scope) = scope(kube, g).await?;
    let options = pullfix::diagnose::run::Options {
        probe: !args.no_probe,
        probe_timeout: args.probe_timeout,
        registry_hosts,
        registry_ca,
    };
    let report = pullfix::diagnose::run::run(&client, &scope, &target, &options).await?;
    let mut out = std::io::stdout().lock();
    match g.output {
        Format::Text | Format::Wide => {
            render::diagnose_text(&mut out, &report, &Palette::new(g.color()))?;
        }
        Format::Name => render::names(&mut out, &finding_workloads(&report.findings))?,
        f => render::structured(&mut out, f, "Diagnosis", &report)?,
    }
    out.flush()?;
    Ok(if report.findings.is_empty() {
        pullfix::EXIT_OK
    } else {
        pullfix::EXIT_FAILURES
    })
}

/// The workload of each finding (a bare pod stands for itself).
fn finding_workloads(
    findings: &[pullfix::diagnose::finding::Finding],
) -> Vec<pullfix::scan::Workload> {
    findings
        .iter()
        .map(|f| {
            f.workload.clone().unwrap_or(pullfix::scan::Workload {
                kind: "Pod".into(),
                namespace: f.namespace.clone(),
                name: f.pod.clone(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn help_reads_kubectl_pullfix() {
        use clap::CommandFactory;
        let help = Cli::command().render_help().to_string();
        assert!(help.contains("Usage: kubectl pullfix"), "{help}");
        assert!(
            !help.contains("lab-"),
            "hidden commands stay hidden: {help}"
        );
    }

    #[test]
    fn help_groups_the_flags() {
        use clap::CommandFactory;
        let mut cmd = Cli::command();
        let top = cmd.render_help().to_string();
        let fix = cmd
            .find_subcommand_mut("fix")
            .unwrap()
            .render_help()
            .to_string();
        for help in [&top, &fix] {
            let at = |heading: &str| {
                help.find(heading)
                    .unwrap_or_else(|| panic!("{heading}: {help}"))
            };
            // The command's own flags first, the kubeconfig flags last.
            assert!(at("Fix options:") < at("Scope options:"), "{help}");
            assert!(at("Scope options:") < at("Output options:"), "{help}");
            assert!(at("Output options:") < at("Kubeconfig options:"), "{help}");
            let kubeconfig = at("Kubeconfig options:");
            for flag in [
                "--kubeconfig",
                "--context",
                "--request-timeout",
                "--qps",
                "--burst",
            ] {
                assert!(help.find(flag).unwrap() > kubeconfig, "{flag}: {help}");
            }
            assert!(help.find("--no-probe").unwrap() < kubeconfig, "{help}");
        }
        for sub in ["scan", "diagnose", "sandbox"] {
            let help = cmd
                .find_subcommand_mut(sub)
                .unwrap()
                .render_help()
                .to_string();
            let own = help.find("Options:").unwrap();
            let kubeconfig = help.find("Kubeconfig options:").unwrap();
            assert!(own < help.find("Scope options:").unwrap(), "{sub}: {help}");
            assert!(
                help.find("Output options:").unwrap() < kubeconfig,
                "{sub}: {help}"
            );
            assert!(!help.contains("--v <N>"), "the klog flag is hidden: {help}");
        }
    }

    fn parse_args(args: &[&str]) -> Result<Cli, clap::Error> {
        parse(normalize_args(
            std::iter::once("kubectl-pullfix")
                .chain(args.iter().copied())
                .map(OsString::from),
        ))
    }

    #[test]
    fn kubectl_verbosity_forms() {
        for (args, level) in [
            (&["scan"][..], 0),
            (&["scan", "-v"], 1),
            (&["scan", "-vv"], 2),
            (&["-vvv", "scan"], 3),
            (&["scan", "-v=2"], 1),
            (&["scan", "-v4"], 2),
            (&["scan", "-v", "6"], 3),
            (&["scan", "--v=9"], 3),
            (&["scan", "--v", "5"], 2),
            (&["-v=0", "scan"], 0),
            (&["diagnose", "-v", "deploy/checkout"], 1),
        ] {
            let cli = parse_args(args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
            assert_eq!(cli.globals.log_level(), level, "{args:?}");
        }
        let cli = parse_args(&["diagnose", "-v", "deploy/checkout"]).unwrap();
        let Some(Command::Diagnose(d)) = cli.command else {
            panic!("diagnose")
        };
        assert!(d.target.is_some(), "-v does not swallow the target");
        // After `--`, nothing is rewritten.
        let args = normalize_args(["k", "--", "-v=6"].map(OsString::from));
        assert_eq!(args[2], "-v=6");
        assert!(parse_args(&["scan", "-v=x"]).is_err());
    }

    #[test]
    fn kubectl_dry_run_forms() {
        let dry = |args: &[&str]| match parse_args(args).map(|c| c.command) {
            Ok(Some(Command::Fix(f))) => Ok(f.fix.dry_run),
            Ok(None) => Ok(parse_args(args).unwrap().fix.dry_run),
            Ok(_) => panic!("{args:?}"),
            Err(e) => Err(error_text(&e)),
        };
        assert_eq!(dry(&["fix"]), Ok(DryRun::None));
        assert_eq!(dry(&["fix", "--dry-run"]), Ok(DryRun::Server));
        assert_eq!(
            dry(&["fix", "--dry-run", "deploy/checkout"]),
            Ok(DryRun::Server)
        );
        assert_eq!(dry(&["fix", "--dry-run=server"]), Ok(DryRun::Server));
        assert_eq!(dry(&["fix", "--dry-run=none"]), Ok(DryRun::None));
        assert_eq!(dry(&["--dry-run=server"]), Ok(DryRun::Server));
        let err = dry(&["fix", "--dry-run=client"]).unwrap_err();
        assert!(
            err.starts_with("error: --dry-run: client dry-run is not supported"),
            "{err}"
        );
        assert!(
            err.contains("\nhelp: use --dry-run (the same as --dry-run=server)"),
            "{err}"
        );
        assert_eq!(err.lines().count(), 2, "{err}");
        assert!(dry(&["fix", "--dry-run=maybe"]).is_err());
        let Some(Command::Sandbox(s)) = parse_args(&["sandbox", "--dry-run=server"])
            .unwrap()
            .command
        else {
            panic!("sandbox")
        };
        assert!(s.dry_run.rehearse());
    }

    #[test]
    fn kubectl_all_namespaces_forms() {
        for (args, all) in [
            (&["scan"][..], false),
            (&["scan", "-A"], true),
            (&["scan", "--all-namespaces"], true),
            (&["scan", "--all-namespaces=true"], true),
            (&["scan", "--all-namespaces=false"], false),
            (&["scan", "-A=false"], false),
            (&["scan", "--all-namespaces=True"], true),
            // -A wins over -n, as in kubectl.
            (&["scan", "-A", "-n", "shop"], true),
        ] {
            let cli = parse_args(args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
            assert_eq!(cli.globals.all_namespaces, all, "{args:?}");
        }
        let cli = parse_args(&["diagnose", "-A", "deploy/checkout"]).unwrap();
        let Some(Command::Diagnose(d)) = cli.command else {
            panic!("diagnose")
        };
        assert!(d.target.is_some(), "-A does not swallow the target");
        assert!(parse_args(&["scan", "--all-namespaces=maybe"]).is_err());
    }

    #[test]
    fn output_formats_and_no_probe_everywhere() {
        for (f, want) in [
            ("text", Format::Text),
            ("wide", Format::Wide),
            ("json", Format::Json),
            ("yaml", Format::Yaml),
            ("name", Format::Name),
        ] {
            let cli = parse_args(&["scan", "-o", f]).unwrap();
            assert_eq!(cli.globals.output, want);
        }
        assert!(parse_args(&["--no-probe"]).unwrap().fix.no_probe);
        let Some(Command::Fix(f)) = parse_args(&["fix", "--no-probe"]).unwrap().command else {
            panic!("fix")
        };
        assert!(f.fix.no_probe);
        let Some(Command::Diagnose(d)) = parse_args(&["diagnose", "--no-probe"]).unwrap().command
        else {
            panic!("diagnose")
        };
        assert!(d.no_probe);
    }

    /// `--yes` is read from the command line only: no environment variable
    /// can turn every confirmation off.
    #[test]
    fn yes_has_no_environment_variable() {
        use clap::CommandFactory;
        let mut cmd = Cli::command();
        cmd.build();
        let mut commands = vec![cmd.clone()];
        commands.extend(cmd.get_subcommands().cloned());
        for c in &commands {
            for arg in c.get_arguments() {
                if matches!(arg.get_id().as_str(), "yes" | "allow_managed" | "dry_run") {
                    assert!(
                        arg.get_env().is_none(),
                        "{}: {:?}",
                        c.get_name(),
                        arg.get_id()
                    );
                }
            }
        }
    }

    #[test]
    fn empty_namespace_is_the_contexts() {
        let cli = parse(["kubectl-pullfix", "scan", "-n", ""].map(OsString::from)).unwrap();
        assert_eq!(cli.globals.namespace(), None);
        let cli = parse(["kubectl-pullfix", "scan", "-n", "shop"].map(OsString::from)).unwrap();
        assert_eq!(cli.globals.namespace().as_deref(), Some("shop"));
    }

    #[test]
    fn qps_and_burst_default_to_a_limit_a_normal_run_never_reaches() {
        let cli = parse_args(&["scan"]).unwrap();
        assert_eq!((cli.kube.qps, cli.kube.burst), (20.0, 50));
        let cli = parse_args(&["diagnose", "deploy/x", "--qps", "0", "--burst", "1"]).unwrap();
        assert_eq!((cli.kube.qps, cli.kube.burst), (0.0, 1));
        let text = error_text(&parse_args(&["scan", "--qps", "-1"]).unwrap_err());
        assert!(
            text.starts_with("error: --qps: `-1` is not 0 or more\nhelp: "),
            "{text}"
        );
        let text = error_text(&parse_args(&["scan", "--burst", "0"]).unwrap_err());
        assert!(text.contains("would let no request through"), "{text}");
    }

    #[test]
    fn parse_errors_are_one_error_line_and_one_help_line() {
        for args in [
            &["scan", "-o", "xml"][..],
            &["scan", "--request-timeout", "100000000000000000000s"],
            &["scan", "--request-timeout", "-1s"],
            &["scan", "--qps", "-1"],
            &["scan", "--qps", "NaN"],
            &["scan", "--burst", "0"],
            &["diagnose", "deploy/"],
            &["scan", "--nope"],
            &["scan", "-n"],
            &["nosuch"],
        ] {
            let e = parse(
                std::iter::once("kubectl-pullfix")
                    .chain(args.iter().copied())
                    .map(OsString::from),
            )
            .unwrap_err();
            let text = error_text(&e);
            let lines: Vec<&str> = text.lines().collect();
            assert_eq!(lines.len(), 2, "{args:?}: {text}");
            assert!(lines[0].starts_with("error: "), "{text}");
            assert!(lines[1].starts_with("help: "), "{text}");
        }
    }
}
