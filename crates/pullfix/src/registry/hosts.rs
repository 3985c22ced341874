//! `--registry-hosts DIR`: how the nodes reach registries, in containerd's
//! own `certs.d` layout, so probes from this machine go where the nodes'
//! pulls go.
//!
//! A node whose containerd has `config_path = "/etc/containerd/certs.d"`
//! reads `DIR/<registry>/hosts.toml` (and `DIR/_default/hosts.toml` for
//! every other registry). Copy that directory from a node, or write one,
//! and pass it with `--registry-hosts`. What is read, as containerd reads it:
//!
//! ```toml
//! server = "https://registry.example.com"   # scheme http:// = plain HTTP
//! ca = "/etc/pki/corp-ca.pem"               # for `server` (string or list)
//!
//! [host."https://mirror.internal:5000"]
//!   capabilities = ["pull", "resolve"]
//!   ca = "ca.pem"                            # relative to the hosts.toml
//!   skip_verify = false
//! ```
//!
//! The first `[host]` that can `resolve` is where requests for the registry
//! go (a mirror), else `server`. Keys containerd has that a probe does not
//! need (`client`, `header`, `override_path`, `dial_timeout`) are refused
//! with an error rather than silently ignored, so a probe never claims to
//! have done what the node does differently.
//!
//! Parsing is pure ([`parse_hosts_toml`]); [`RegistryHosts::load`] reads
//! the directory.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Where requests for one registry go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Plain HTTP (`http://`) instead of HTTPS.
    pub plain_http: bool,
    /// `host[:port]` to connect to; `None`: the registry's own host.
    pub authority: Option<String>,
    /// Extra CA certificate files trusted for this endpoint.
    pub ca: Vec<PathBuf>,
    /// Accept any certificate (containerd's `skip_verify`).
    pub skip_verify: bool,
}

impl Endpoint {
    /// `http://authority` or `https://authority`, for requests meant for
    /// `registry`.
    pub(crate) fn base_url(&self, registry: &str) -> String {
        let scheme = if self.plain_http { "http" } else { "https" };
        format!(
            "{scheme}://{}",
            self.authority.as_deref().unwrap_or(registry)
        )
    }
}

/// The endpoints read from a `certs.d` directory, by registry host
/// (`_default` for every registry without its own directory).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegistryHosts {
    /// The directory, as given.
    pub dir: PathBuf,
    /// Registry host (lowercase, with `:port` when the directory name has
    /// one) to where its requests go.
    pub endpoints: BTreeMap<String, Endpoint>,
}

impl RegistryHosts {
    /// Reads `DIR/*/hosts.toml`. Directories without a `hosts.toml` are
    /// skipped, as containerd skips them.
    pub fn load(dir: &Path) -> anyhow::Result<RegistryHosts> {
        let entries = std::fs::read_dir(dir).map_err(|e| {
            anyhow::anyhow!(
                "--registry-hosts {}: {}\nhelp: give a directory in containerd's certs.d layout (DIR/REGISTRY/hosts.toml), e.g. a copy of a node's /etc/containerd/certs.d",
                dir.display(),
                io_reason(&e)
            )
        })?;
        let mut endpoints = BTreeMap::new();
        let mut names: Vec<_> = entries
            .filter_map(Result::ok)
            .filter(|e| e.path().is_dir())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        for name in names {
            let file = dir.join(&name).join("hosts.toml");
            let text = match std::fs::read_to_string(&file) {
                Ok(t) => t,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => anyhow::bail!("read {}: {}", file.display(), io_reason(&e)),
            };
            let registry = registry_of_dir(&name);
            let endpoint = parse_hosts_toml(&text, dir.join(&name).as_path())
                .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
            if let Some(endpoint) = endpoint {
                endpoints.insert(registry, endpoint);
            }
        }
        if endpoints.is_empty() {
            anyhow::bail!(
                "--registry-hosts {}: no REGISTRY/hosts.toml inside\nhelp: one directory per registry host, each with a hosts.toml (containerd's certs.d layout)",
                dir.display()
            );
        }
        Ok(RegistryHosts {
            dir: dir.to_path_buf(),
            endpoints,
        })
    }

    /// Where requests for `registry` (`host[:port]`) go, if this directory
    /// says anything about it.
    pub(crate) fn endpoint(&self, registry: &str) -> Option<&Endpoint> {
        let key = registry.to_ascii_lowercase();
        self.endpoints
            .get(&key)
            .or_else(|| self.endpoints.get("_default"))
    }

    /// The endpoint a request to `authority` (the `host:port` of its URL)
    /// was sent to: a mirror or server named by that address, else the
    /// registry itself when its entry (or `_default`) keeps its own host.
    pub fn endpoint_at(&self, authority: &str) -> Option<&Endpoint> {
        let authority = authority.to_ascii_lowercase();
        self.endpoints
            .values()
            .find(|e| e.authority.as_deref() == Some(authority.as_str()))
            .or_else(|| self.endpoint(&authority).filter(|e| e.authority.is_none()))
    }

    /// CA files named anywhere in the directory.
    pub(crate) fn ca_files(&self) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = self
            .endpoints
            .values()
            .flat_map(|e| e.ca.iter().cloned())
            .collect();
        files.sort();
        files.dedup();
        files
    }
}

impl fmt::Display for RegistryHosts {
    /// One line for every output while the option is in effect.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "registry connections follow {} (--registry-hosts):",
            self.dir.display()
        )?;
        for (i, (registry, e)) in self.endpoints.iter().enumerate() {
            let sep = if i == 0 { " " } else { ", " };
            match &e.authority {
                Some(_) => write!(f, "{sep}{registry} -> {}", e.base_url(registry))?,
                None => write!(f, "{sep}{registry}")?,
            }
            if !e.ca.is_empty() {
                write!(f, " (+{} CA)", e.ca.len())?;
            }
            if e.skip_verify {
                f.write_str(" (skip_verify)")?;
            }
        }
        Ok(())
    }
}

/// containerd names directories `host`, `host:port` or `_default`; some
/// tools write `host_port_` for `host:port` on file systems without `:`.
fn registry_of_dir(name: &str) -> String {
    let lower = name.to_ascii_lowercase();
    if let Some(rest) = lower.strip_suffix('_')
        && let Some((host, port)) = rest.rsplit_once('_')
        && !port.is_empty()
        && port.bytes().all(|b| b.is_ascii_digit())
    {
        return format!("{host}:{port}");
    }
    lower
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HostsFile {
    server: Option<String>,
    ca: Option<OneOrMany>,
    skip_verify: Option<bool>,
    /// The server's capabilities: accepted, not needed (a probe only
    /// resolves, which the server always may).
    #[allow(dead_code)]
    capabilities: Option<Vec<String>>,
    #[serde(default)]
    host: BTreeMap<String, HostEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HostEntry {
    capabilities: Option<Vec<String>>,
    ca: Option<OneOrMany>,
    skip_verify: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn paths(&self, base: &Path) -> Vec<PathBuf> {
        let list = match self {
            OneOrMany::One(s) => std::slice::from_ref(s),
            OneOrMany::Many(v) => v.as_slice(),
        };
        list.iter()
            .map(|p| {
                let p = PathBuf::from(p);
                if p.is_absolute() { p } else { base.join(p) }
            })
            .collect()
    }
}

/// Parses one `hosts.toml`; relative `ca` paths are taken from `base` (its
/// directory), as containerd does. `None` when the file names no server, no
/// host and no TLS setting.
pub(crate) fn parse_hosts_toml(text: &str, base: &Path) -> Result<Option<Endpoint>, String> {
    let file: HostsFile = toml::from_str(text).map_err(|e| {
        let msg = e.message().to_string();
        if msg.contains("unknown field") {
            format!(
                "{msg}\nhelp: --registry-hosts reads server, ca, skip_verify, capabilities and [host.\"URL\"] (with capabilities, ca, skip_verify); remove the other keys from the copy you give it"
            )
        } else {
            format!("not valid TOML: {msg}")
        }
    })?;
    for (url, entry) in &file.host {
        let caps = entry.capabilities.clone().unwrap_or_else(default_caps);
        if !caps.iter().any(|c| c == "resolve") {
            continue;
        }
        let (plain_http, authority) = split_url(url)?;
        return Ok(Some(Endpoint {
            plain_http,
            authority: Some(authority),
            ca: entry.ca.as_ref().map_or_else(Vec::new, |c| c.paths(base)),
            skip_verify: entry.skip_verify.unwrap_or(false),
        }));
    }
    let ca = file.ca.as_ref().map_or_else(Vec::new, |c| c.paths(base));
    let skip_verify = file.skip_verify.unwrap_or(false);
    let Some(server) = file.server else {
        // Only TLS settings: the registry itself (every registry for
        // `_default`), with these CAs.
        if ca.is_empty() && !skip_verify {
            return Ok(None);
        }
        return Ok(Some(Endpoint {
            plain_http: false,
            authority: None,
            ca,
            skip_verify,
        }));
    };
    let (plain_http, authority) = split_url(&server)?;
    Ok(Some(Endpoint {
        plain_http,
        authority: Some(authority),
        ca,
        skip_verify,
    }))
}

fn default_caps() -> Vec<String> {
    vec!["pull".into(), "resolve".into(), "push".into()]
}

/// `https://host:port[/v2]` into (plain HTTP?, `host:port`).
fn split_url(url: &str) -> Result<(bool, String), String> {
    let (plain, rest) = if let Some(r) = url.strip_prefix("http://") {
        (true, r)
    } else if let Some(r) = url.strip_prefix("https://") {
        (false, r)
    } else {
        return Err(format!(
            "`{url}` is not an http:// or https:// URL\nhelp: write server = \"https://HOST[:PORT]\" or [host.\"https://HOST[:PORT]\"]"
        ));
    };
    let authority = rest.split('/').next().unwrap_or_default();
    let path = &rest[authority.len()..];
    if authority.is_empty()
        || authority.contains(['@', '?', '#', ' '])
        || !(path.is_empty() || path == "/" || path == "/v2" || path == "/v2/")
    {
        return Err(format!(
            "`{url}`: give only a scheme and HOST[:PORT] (paths are containerd's override_path, which probes do not follow)"
        ));
    }
    Ok((plain, authority.to_ascii_lowercase()))
}

use crate::input::io_reason;

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Option<Endpoint>, String> {
        parse_hosts_toml(text, Path::new("/etc/containerd/certs.d/x"))
    }

    #[test]
    fn mirror_wins_over_server() {
        let e = parse(
            "server = \"https://registry-1.docker.io\"\n[host.\"http://127.0.0.1:5000\"]\n  capabilities = [\"pull\", \"resolve\"]\n",
        )
        .unwrap()
        .unwrap();
        assert!(e.plain_http);
        assert_eq!(e.authority.as_deref(), Some("127.0.0.1:5000"));
        assert_eq!(e.base_url("docker.io"), "http://127.0.0.1:5000");
    }

    #[test]
    fn a_pull_only_host_is_not_used_for_resolving() {
        let e = parse(
            "server = \"https://reg.example.com\"\n[host.\"https://m:1\"]\n  capabilities = [\"pull\"]\n",
        )
        .unwrap()
        .unwrap();
        assert_eq!(e.authority.as_deref(), Some("reg.example.com"));
        assert!(!e.plain_http);
    }

    #[test]
    fn server_with_ca_relative_to_the_file() {
        let e = parse("server = \"https://reg.corp:8443\"\nca = \"ca.pem\"\n")
            .unwrap()
            .unwrap();
        assert_eq!(e.ca, [PathBuf::from("/etc/containerd/certs.d/x/ca.pem")]);
        let e = parse(
            "[host.\"https://m.corp\"]\n  ca = [\"/a.pem\", \"b.pem\"]\n  skip_verify = true\n",
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            e.ca,
            [
                PathBuf::from("/a.pem"),
                PathBuf::from("/etc/containerd/certs.d/x/b.pem")
            ]
        );
        assert!(e.skip_verify);
    }

    #[test]
    fn only_a_ca_means_the_registry_itself() {
        let e = parse("ca = \"/corp.pem\"\n").unwrap().unwrap();
        assert_eq!(e.authority, None);
        assert_eq!(e.base_url("reg.corp"), "https://reg.corp");
        assert_eq!(e.ca, [PathBuf::from("/corp.pem")]);
    }

    #[test]
    fn refuses_what_it_would_not_follow() {
        let err = parse("[host.\"https://m\"]\n  override_path = true\n").unwrap_err();
        assert!(err.contains("override_path"), "{err}");
        assert!(err.contains("help:"), "{err}");
        let err = parse("server = \"ftp://x\"\n").unwrap_err();
        assert!(err.contains("not an http:// or https:// URL"), "{err}");
        let err = parse("server = \"https://x/some/path\"\n").unwrap_err();
        assert!(err.contains("override_path"), "{err}");
        let err = parse("server = \n").unwrap_err();
        assert!(err.starts_with("not valid TOML"), "{err}");
        assert_eq!(parse("").unwrap(), None);
    }

    #[test]
    fn requests_are_matched_to_their_endpoint_by_address() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for (name, text) in [
            ("docker.io", "server = \"http://127.0.0.1:5000\"\n"),
            (
                "reg.corp",
                "[host.\"https://mirror.corp:8443\"]\n  skip_verify = true\n",
            ),
            ("_default", "skip_verify = true\n"),
        ] {
            std::fs::create_dir_all(d.join(name)).unwrap();
            std::fs::write(d.join(name).join("hosts.toml"), text).unwrap();
        }
        let hosts = RegistryHosts::load(d).unwrap();
        assert!(hosts.endpoint_at("127.0.0.1:5000").unwrap().plain_http);
        assert!(hosts.endpoint_at("mirror.corp:8443").unwrap().skip_verify);
        // `_default` keeps each registry's own host: a request to any other
        // registry is one of its requests.
        assert!(hosts.endpoint_at("quay.io").unwrap().skip_verify);
        // The registry a mirror stands in for is not itself asked.
        assert!(hosts.endpoint_at("reg.corp").is_none());
    }

    #[test]
    fn directory_names() {
        assert_eq!(registry_of_dir("Docker.IO"), "docker.io");
        assert_eq!(registry_of_dir("127.0.0.1:5000"), "127.0.0.1:5000");
        assert_eq!(registry_of_dir("reg.corp_5000_"), "reg.corp:5000");
        assert_eq!(registry_of_dir("_default"), "_default");
    }

    #[test]
    fn load_reads_the_layout_and_falls_back_to_default() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join("docker.io")).unwrap();
        std::fs::write(
            d.join("docker.io/hosts.toml"),
            "[host.\"http://127.0.0.1:5000\"]\n",
        )
        .unwrap();
        std::fs::create_dir_all(d.join("_default")).unwrap();
        std::fs::write(d.join("_default/hosts.toml"), "ca = \"corp.pem\"\n").unwrap();
        std::fs::create_dir_all(d.join("empty")).unwrap();
        let hosts = RegistryHosts::load(d).unwrap();
        assert_eq!(
            hosts.endpoint("docker.io").unwrap().base_url("docker.io"),
            "http://127.0.0.1:5000"
        );
        // `_default` with only a CA: every other registry, itself, trusted
        // with that CA.
        let q = hosts.endpoint("quay.io").unwrap();
        assert_eq!(q.base_url("quay.io"), "https://quay.io");
        assert_eq!(hosts.ca_files(), [d.join("_default/corp.pem")]);
        let shown = hosts.to_string();
        assert!(
            shown.contains("docker.io -> http://127.0.0.1:5000"),
            "{shown}"
        );

        let err = RegistryHosts::load(&d.join("nope"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("no such file or directory"), "{err}");
        assert!(err.contains("help:"), "{err}");
        let empty = tempfile::tempdir().unwrap();
        let err = RegistryHosts::load(empty.path()).unwrap_err().to_string();
        assert!(err.contains("no REGISTRY/hosts.toml"), "{err}");
    }
}
