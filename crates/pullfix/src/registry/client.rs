//! A small distribution-API client that keeps what registries say: status
//! codes, `WWW-Authenticate` challenges, rate-limit headers and network
//! errors. The simulated kubelet pulls with it, so a lab pod fails exactly
//! when a real node would, for the reason a real registry gives.

use std::collections::HashMap;

use super::hosts::RegistryHosts;
use std::net::SocketAddr;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderMap, WWW_AUTHENTICATE};
use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::registry::keyring::Credential;
use crate::registry::reference::ImageRef;

/// Manifest media types a runtime accepts.
pub(crate) const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";

/// What went wrong talking to a registry, in terms a runtime would report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PullFailure {
    /// 404 on the manifest: the tag or digest does not exist.
    NotFound { url: String },
    /// 401 with `insufficient_scope` after authenticating: the repository is
    /// missing or not ours (the registry does not say which).
    AccessDenied { url: String },
    /// A Basic challenge and no credential to answer it.
    NoBasicCredentials { url: String },
    /// The token endpoint refused (`anonymous` when no credential was sent).
    TokenFetch {
        url: String,
        status: u16,
        anonymous: bool,
    },
    /// Any other unexpected status from a request to the registry.
    Status {
        method: &'static str,
        url: String,
        status: u16,
    },
    /// 429 with the registry's message.
    RateLimited { url: String, message: String },
    /// The host name does not resolve.
    Dns { url: String, host: String },
    /// Nothing listens.
    Refused {
        url: String,
        addr: String,
        plain_http: bool,
    },
    /// No answer in time.
    Timeout {
        url: String,
        addr: String,
        plain_http: bool,
    },
    /// The TLS handshake failed (`detail` is Go's x509 wording).
    Tls { url: String, detail: String },
    /// The image index has no manifest for the node's platform.
    PlatformMismatch {
        os: String,
        arch: String,
        variant: Option<String>,
    },
    /// Anything else, already worded.
    Other { detail: String },
}

/// How a host name is reached, overriding DNS (the lab maps public registry
/// names onto loopback this way).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Alias {
    Addr(SocketAddr),
    /// Behave as if DNS had no record.
    NoSuchHost,
}

/// Parses `host=127.0.0.1:1234,other=nxdomain`.
pub fn parse_aliases(spec: &str) -> Result<Vec<(String, Alias)>, String> {
    spec.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|pair| {
            let (host, target) = pair
                .split_once('=')
                .ok_or_else(|| format!("host alias `{pair}` is not HOST=ADDR"))?;
            let alias = if target == "nxdomain" {
                Alias::NoSuchHost
            } else {
                Alias::Addr(target.parse().map_err(|_| {
                    format!("host alias `{pair}`: `{target}` is not IP:PORT or `nxdomain`")
                })?)
            };
            Ok((host.to_ascii_lowercase(), alias))
        })
        .collect()
}

/// Connection settings, as a node's runtime would have them configured.
#[derive(Debug, Clone, Default)]
pub struct RegistryConfig {
    /// Extra trusted CA certificates (PEM).
    pub ca_pem: Vec<Vec<u8>>,
    /// DNS overrides.
    pub aliases: Vec<(String, Alias)>,
    /// Registries (`host:port`) spoken to over plain HTTP.
    pub plain_http: Vec<String>,
    /// Where the nodes' containerd sends each registry's requests
    /// (`--registry-hosts`, containerd's `certs.d` layout).
    pub hosts: Option<RegistryHosts>,
    /// Per-request timeout.
    pub timeout: Option<Duration>,
}

/// A successful resolution of an image for one platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// Digest of the platform manifest.
    pub digest: String,
    /// Config + layers, in bytes.
    pub size: u64,
}

/// What a tag points at (see [`RegistryClient::tag_info`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TagInfo {
    /// `sha256:…` of the manifest the tag names.
    pub digest: Option<String>,
    /// When the image was built (RFC 3339, from its config), if known.
    pub created: Option<String>,
}

/// The node platform to select from an index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    pub os: String,
    pub arch: String,
}

impl Platform {
    fn variant(&self) -> Option<String> {
        (self.arch == "arm64").then(|| "v8".to_string())
    }
}

/// A distribution-API client with the lab's DNS overrides and trust.
#[derive(Clone)]
pub struct RegistryClient {
    http: reqwest::Client,
    /// For the endpoints whose hosts.toml says `skip_verify = true`.
    insecure: Option<reqwest::Client>,
    aliases: HashMap<String, Alias>,
    plain_http: Vec<String>,
    hosts: Option<RegistryHosts>,
}

struct Response {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

/// Docker Hub's rate-limit headers.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RateLimit {
    /// `ratelimit-limit`, e.g. `100;w=21600`.
    pub limit: Option<String>,
    /// `ratelimit-remaining`, e.g. `0;w=21600`.
    pub remaining: Option<String>,
    /// `docker-ratelimit-source`.
    pub source: Option<String>,
    /// `Retry-After`, in seconds.
    pub retry_after: Option<String>,
}

impl RateLimit {
    /// Reads the headers; `None` when the registry sent none.
    pub(crate) fn from_headers(h: &HeaderMap) -> Option<RateLimit> {
        let get = |k: &str| h.get(k).and_then(|v| v.to_str().ok()).map(str::to_string);
        let r = RateLimit {
            limit: get("ratelimit-limit"),
            remaining: get("ratelimit-remaining"),
            source: get("docker-ratelimit-source"),
            retry_after: get("retry-after"),
        };
        (r.limit.is_some() || r.remaining.is_some() || r.retry_after.is_some()).then_some(r)
    }

    /// Pulls left in the window, when the header says.
    pub fn remaining_count(&self) -> Option<u64> {
        self.remaining
            .as_deref()?
            .split(';')
            .next()?
            .trim()
            .parse()
            .ok()
    }
}

/// A parsed `WWW-Authenticate` challenge.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Challenge {
    pub scheme: String,
    pub params: HashMap<String, String>,
}

/// Parses `Bearer realm="...",service="...",scope="...",error="..."`.
pub(crate) fn parse_challenge(header: &str) -> Challenge {
    let header = header.trim();
    let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
    let mut params = HashMap::new();
    let mut rest = rest.trim();
    while !rest.is_empty() {
        let Some((key, after)) = rest.split_once('=') else {
            break;
        };
        let key = key
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_ascii_lowercase();
        let (value, after) = if let Some(quoted) = after.strip_prefix('"') {
            match quoted.find('"') {
                Some(end) => (&quoted[..end], &quoted[end + 1..]),
                None => (quoted, ""),
            }
        } else {
            match after.find(',') {
                Some(end) => (&after[..end], &after[end..]),
                None => (after, ""),
            }
        };
        params.insert(key, value.to_string());
        rest = after.trim_start_matches([',', ' ']);
    }
    Challenge {
        scheme: scheme.to_ascii_lowercase(),
        params,
    }
}

impl RegistryClient {
    /// Builds a client; fails only on an unreadable CA certificate.
    pub fn new(config: &RegistryConfig) -> anyhow::Result<RegistryClient> {
        let mut pems = config.ca_pem.clone();
        if let Some(hosts) = &config.hosts {
            for file in hosts.ca_files() {
                pems.push(std::fs::read(&file).map_err(|e| {
                    anyhow::anyhow!(
                        "read CA file {} (named in --registry-hosts {}): {e}",
                        file.display(),
                        hosts.dir.display()
                    )
                })?);
            }
        }
        let mut certs = Vec::new();
        for pem in &pems {
            certs.push(reqwest::Certificate::from_pem(pem)?);
        }
        let builder = |insecure: bool| {
            let mut builder = reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::limited(5))
                .connect_timeout(config.timeout.unwrap_or(Duration::from_secs(10)))
                .timeout(config.timeout.unwrap_or(Duration::from_secs(30)))
                .user_agent(concat!("kubectl-pullfix/", env!("CARGO_PKG_VERSION")))
                .tls_danger_accept_invalid_certs(insecure);
            if !certs.is_empty() {
                builder = builder.tls_certs_merge(certs.clone());
            }
            for (host, alias) in &config.aliases {
                if let Alias::Addr(addr) = alias {
                    builder = builder.resolve(host, *addr);
                }
            }
            builder.build()
        };
        let any_insecure = config
            .hosts
            .as_ref()
            .is_some_and(|h| h.endpoints.values().any(|e| e.skip_verify));
        Ok(RegistryClient {
            http: builder(false)?,
            insecure: if any_insecure {
                Some(builder(true)?)
            } else {
                None
            },
            aliases: config.aliases.iter().cloned().collect(),
            plain_http: config.plain_http.clone(),
            hosts: config.hosts.clone(),
        })
    }

    /// `scheme://authority` that requests for registry `host` go to.
    fn base(&self, host: &str) -> String {
        if let Some(e) = self.hosts.as_ref().and_then(|h| h.endpoint(host)) {
            return e.base_url(host);
        }
        let scheme = if self.plain_http.iter().any(|h| h == host) {
            "http"
        } else {
            "https"
        };
        format!("{scheme}://{host}")
    }

    /// The HTTP client for a request to `authority` (`host:port` of the URL).
    fn http_for(&self, authority: &str) -> &reqwest::Client {
        let skip_verify = self
            .hosts
            .as_ref()
            .and_then(|h| h.endpoint_at(authority))
            .is_some_and(|e| e.skip_verify);
        match (&self.insecure, skip_verify) {
            (Some(client), true) => client,
            _ => &self.http,
        }
    }

    /// True when requests to `authority` go over plain HTTP.
    fn is_plain(&self, authority: &str) -> bool {
        self.plain_http.iter().any(|h| h == authority)
            || self
                .hosts
                .as_ref()
                .and_then(|h| h.endpoint_at(authority))
                .is_some_and(|e| e.plain_http)
    }

    /// The address a runtime would print for a host (its IP and the port it dials).
    fn dial_addr(&self, host: &str) -> String {
        let plain = self.is_plain(host);
        let (name, port) = match host.rsplit_once(':') {
            Some((n, p)) if p.bytes().all(|b| b.is_ascii_digit()) => (n, p.to_string()),
            _ => (host, if plain { "80" } else { "443" }.to_string()),
        };
        match self.aliases.get(&name.to_ascii_lowercase()) {
            Some(Alias::Addr(a)) => format!("{}:{port}", a.ip()),
            _ => format!("{name}:{port}"),
        }
    }

    async fn send(
        &self,
        method: Method,
        url: &str,
        auth: Option<&str>,
    ) -> Result<Response, PullFailure> {
        let host = url
            .split("://")
            .nth(1)
            .and_then(|r| r.split('/').next())
            .unwrap_or("")
            .to_string();
        let bare = host.rsplit_once(':').map_or(host.as_str(), |(h, _)| h);
        if matches!(
            self.aliases.get(&bare.to_ascii_lowercase()),
            Some(Alias::NoSuchHost)
        ) {
            return Err(PullFailure::Dns {
                url: url.to_string(),
                host: bare.to_string(),
            });
        }
        let mut req = self
            .http_for(&host)
            .request(method, url)
            .header(ACCEPT, MANIFEST_ACCEPT);
        if let Some(auth) = auth {
            req = req.header(AUTHORIZATION, auth);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| self.classify(url, &host, &e))?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp
            .bytes()
            .await
            .map_err(|e| self.classify(url, &host, &e))?
            .to_vec();
        Ok(Response {
            status,
            headers,
            body,
        })
    }

    fn classify(&self, url: &str, host: &str, err: &reqwest::Error) -> PullFailure {
        let mut chain = String::new();
        let mut refused = false;
        let mut source: Option<&dyn std::error::Error> = Some(err);
        while let Some(e) = source {
            chain.push_str(&format!("{e:?} "));
            if let Some(io) = e.downcast_ref::<std::io::Error>() {
                refused |= io.kind() == std::io::ErrorKind::ConnectionRefused;
            }
            source = e.source();
        }
        let plain_http = self.is_plain(host);
        let addr = self.dial_addr(host);
        if refused {
            PullFailure::Refused {
                url: url.to_string(),
                addr,
                plain_http,
            }
        } else if err.is_timeout() {
            PullFailure::Timeout {
                url: url.to_string(),
                addr,
                plain_http,
            }
        } else if let Some(detail) = x509_detail(&chain, host) {
            PullFailure::Tls {
                url: url.to_string(),
                detail,
            }
        } else if chain.contains("dns error") || chain.contains("failed to lookup") {
            PullFailure::Dns {
                url: url.to_string(),
                host: host.rsplit_once(':').map_or(host, |(h, _)| h).to_string(),
            }
        } else {
            PullFailure::Other {
                detail: format!("failed to do request: {err}"),
            }
        }
    }

    /// Resolves an image the way a runtime does before pulling: manifest
    /// `BASE/v2/REPOSITORY/manifests/TAG-OR-DIGEST`.
    fn manifest_url(&self, image: &ImageRef) -> String {
        format!(
            "{}/v2/{}/manifests/{}",
            self.base(image.api_host()),
            image.repository,
            image.manifest_reference()
        )
    }

    /// HEAD, the auth dance, platform selection.
    pub async fn resolve(
        &self,
        image: &ImageRef,
        credential: Option<&Credential>,
        platform: &Platform,
    ) -> Result<Resolved, PullFailure> {
        let url = self.manifest_url(image);
        let (auth, head) = self
            .authorized(Method::HEAD, &url, &image.repository, credential)
            .await?;
        if head.status == StatusCode::TOO_MANY_REQUESTS {
            // A HEAD answer has no body: fetch the registry's message as a
            // runtime's GET would see it.
            let got = self.send(Method::GET, &url, auth.as_deref()).await?;
            check_status(&got, "GET", &url)?;
        }
        check_status(&head, "HEAD", &url)?;
        // The manifest itself (GET), then the platform's manifest from an index.
        let got = self.send(Method::GET, &url, auth.as_deref()).await?;
        check_status(&got, "GET", &url)?;
        let manifest: Value =
            serde_json::from_slice(&got.body).map_err(|e| PullFailure::Other {
                detail: format!("failed to decode manifest from {url}: {e}"),
            })?;
        let digest = header_digest(&got.headers).unwrap_or_else(|| sha256_digest(&got.body));
        if let Some(list) = manifest.get("manifests").and_then(Value::as_array) {
            let chosen = list.iter().find(|m| {
                let p = &m["platform"];
                p["os"] == platform.os.as_str() && p["architecture"] == platform.arch.as_str()
            });
            let Some(chosen) = chosen else {
                return Err(PullFailure::PlatformMismatch {
                    os: platform.os.clone(),
                    arch: platform.arch.clone(),
                    variant: platform.variant(),
                });
            };
            let child_digest = chosen["digest"].as_str().unwrap_or_default().to_string();
            let child_url = format!(
                "{}/v2/{}/manifests/{child_digest}",
                self.base(image.api_host()),
                image.repository
            );
            let child = self.send(Method::GET, &child_url, auth.as_deref()).await?;
            check_status(&child, "GET", &child_url)?;
            let child_manifest: Value = serde_json::from_slice(&child.body).unwrap_or(Value::Null);
            return Ok(Resolved {
                digest: child_digest,
                size: manifest_size(&child_manifest),
            });
        }
        Ok(Resolved {
            digest,
            size: manifest_size(&manifest),
        })
    }

    /// The rate-limit headers a manifest HEAD returns (Docker Hub does not
    /// count HEAD requests against the limit).
    pub async fn rate_limit(
        &self,
        image: &ImageRef,
        credential: Option<&Credential>,
    ) -> Result<Option<RateLimit>, PullFailure> {
        let url = self.manifest_url(image);
        let (_, head) = self
            .authorized(Method::HEAD, &url, &image.repository, credential)
            .await?;
        Ok(RateLimit::from_headers(&head.headers))
    }

    /// Lists a repository's tags (`/v2/NAME/tags/list`, following `Link`
    /// pages up to `max` tags).
    pub async fn list_tags(
        &self,
        image: &ImageRef,
        credential: Option<&Credential>,
        max: usize,
    ) -> Result<Vec<String>, PullFailure> {
        let base = self.base(image.api_host());
        let mut url = format!("{base}/v2/{}/tags/list?n=1000", image.repository);
        let mut tags = Vec::new();
        let mut auth: Option<String> = None;
        loop {
            let resp = match &auth {
                None => {
                    let (a, r) = self
                        .authorized(Method::GET, &url, &image.repository, credential)
                        .await?;
                    auth = a;
                    r
                }
                Some(a) => self.send(Method::GET, &url, Some(a)).await?,
            };
            check_status(&resp, "GET", &url)?;
            let body: Value = serde_json::from_slice(&resp.body).unwrap_or(Value::Null);
            tags.extend(
                body.get("tags")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .map(str::to_string),
            );
            let next = resp
                .headers
                .get("link")
                .and_then(|v| v.to_str().ok())
                .and_then(|l| l.split(['<', '>']).nth(1).map(str::to_string));
            match next {
                Some(n) if tags.len() < max => url = format!("{base}{n}"),
                _ => break,
            }
        }
        tags.truncate(max);
        Ok(tags)
    }

    /// What a tag points at, for a menu of candidates: the manifest's
    /// digest (`Docker-Content-Digest` of a HEAD) and, for a
    /// single-platform image, when it was built (`created` in its config
    /// blob; `None` for an index or when the registry does not say).
    pub async fn tag_info(
        &self,
        image: &ImageRef,
        credential: Option<&Credential>,
    ) -> Result<TagInfo, PullFailure> {
        let url = self.manifest_url(image);
        let (auth, head) = self
            .authorized(Method::HEAD, &url, &image.repository, credential)
            .await?;
        check_status(&head, "HEAD", &url)?;
        let mut info = TagInfo {
            digest: header_digest(&head.headers),
            created: None,
        };
        let got = self.send(Method::GET, &url, auth.as_deref()).await?;
        if !got.status.is_success() {
            return Ok(info);
        }
        if info.digest.is_none() {
            info.digest =
                Some(header_digest(&got.headers).unwrap_or_else(|| sha256_digest(&got.body)));
        }
        let manifest: Value = serde_json::from_slice(&got.body).unwrap_or(Value::Null);
        if let Some(config) = manifest.pointer("/config/digest").and_then(Value::as_str) {
            let blob_url = format!(
                "{}/v2/{}/blobs/{config}",
                self.base(image.api_host()),
                image.repository
            );
            if let Ok(blob) = self.send(Method::GET, &blob_url, auth.as_deref()).await
                && blob.status.is_success()
            {
                let config: Value = serde_json::from_slice(&blob.body).unwrap_or(Value::Null);
                info.created = config
                    .get("created")
                    .and_then(Value::as_str)
                    .map(str::to_string);
            }
        }
        Ok(info)
    }

    /// Sends a request, answering a Basic or Bearer challenge if one comes.
    /// Returns the Authorization header that worked (if any) and the response.
    async fn authorized(
        &self,
        method: Method,
        url: &str,
        repository: &str,
        credential: Option<&Credential>,
    ) -> Result<(Option<String>, Response), PullFailure> {
        let first = self.send(method.clone(), url, None).await?;
        if first.status != StatusCode::UNAUTHORIZED {
            return Ok((None, first));
        }
        let challenge = first
            .headers
            .get(WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .map(parse_challenge)
            .unwrap_or_default();
        let auth = match challenge.scheme.as_str() {
            "basic" => {
                let Some(cred) = credential else {
                    return Err(PullFailure::NoBasicCredentials {
                        url: url.to_string(),
                    });
                };
                basic(cred)
            }
            "bearer" => {
                let token = self.token(&challenge, repository, credential).await?;
                format!("Bearer {token}")
            }
            _ => {
                return Err(PullFailure::Status {
                    method: method_name(&method),
                    url: url.to_string(),
                    status: 401,
                });
            }
        };
        let second = self.send(method.clone(), url, Some(&auth)).await?;
        if second.status == StatusCode::UNAUTHORIZED {
            let again = second
                .headers
                .get(WWW_AUTHENTICATE)
                .and_then(|v| v.to_str().ok())
                .map(parse_challenge)
                .unwrap_or_default();
            if again.params.get("error").map(String::as_str) == Some("insufficient_scope") {
                return Err(PullFailure::AccessDenied {
                    url: url.to_string(),
                });
            }
            return Err(PullFailure::Status {
                method: method_name(&method),
                url: url.to_string(),
                status: 401,
            });
        }
        Ok((Some(auth), second))
    }

    async fn token(
        &self,
        challenge: &Challenge,
        repository: &str,
        credential: Option<&Credential>,
    ) -> Result<String, PullFailure> {
        let realm = challenge.params.get("realm").cloned().unwrap_or_default();
        let mut url = reqwest::Url::parse(&realm).map_err(|_| PullFailure::Other {
            detail: format!("registry sent an invalid token realm `{realm}`"),
        })?;
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("scope", &format!("repository:{repository}:pull"));
            if let Some(service) = challenge.params.get("service") {
                q.append_pair("service", service);
            }
        }
        let url = url.to_string();
        let auth = credential.map(basic);
        let resp = self.send(Method::GET, &url, auth.as_deref()).await?;
        if !resp.status.is_success() {
            return Err(PullFailure::TokenFetch {
                url,
                status: resp.status.as_u16(),
                anonymous: credential.is_none(),
            });
        }
        let body: Value = serde_json::from_slice(&resp.body).unwrap_or(Value::Null);
        body.get("token")
            .or_else(|| body.get("access_token"))
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| PullFailure::Other {
                detail: format!("token endpoint {url} returned no token"),
            })
    }
}

fn method_name(m: &Method) -> &'static str {
    if *m == Method::HEAD { "HEAD" } else { "GET" }
}

fn basic(cred: &Credential) -> String {
    format!(
        "Basic {}",
        STANDARD.encode(format!("{}:{}", cred.username, cred.password()))
    )
}

fn check_status(resp: &Response, method: &'static str, url: &str) -> Result<(), PullFailure> {
    match resp.status.as_u16() {
        200..=299 => Ok(()),
        404 => Err(PullFailure::NotFound {
            url: url.to_string(),
        }),
        429 => {
            let body: Value = serde_json::from_slice(&resp.body).unwrap_or(Value::Null);
            let message = body
                .get("errors")
                .and_then(|e| e.get(0))
                .and_then(|e| e.get("message"))
                .and_then(Value::as_str)
                .unwrap_or("too many requests")
                .to_string();
            Err(PullFailure::RateLimited {
                url: url.to_string(),
                message,
            })
        }
        status => Err(PullFailure::Status {
            method,
            url: url.to_string(),
            status,
        }),
    }
}

fn header_digest(headers: &HeaderMap) -> Option<String> {
    headers
        .get("docker-content-digest")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

use crate::encoding::sha256_digest;

fn manifest_size(m: &Value) -> u64 {
    let config = m
        .pointer("/config/size")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    let layers: u64 = m
        .get("layers")
        .and_then(Value::as_array)
        .map(|l| l.iter().filter_map(|x| x.get("size")?.as_u64()).sum())
        .unwrap_or(0);
    config + layers
}

/// Go's x509 wording for a rustls verification failure, if that is what the
/// error chain holds.
fn x509_detail(chain: &str, host: &str) -> Option<String> {
    if chain.contains("UnknownIssuer") || chain.contains("unknown issuer") {
        Some("x509: certificate signed by unknown authority".into())
    } else if chain.contains("Expired") || chain.contains("NotValidYet") {
        Some("x509: certificate has expired or is not yet valid".into())
    } else if chain.contains("NotValidForName") {
        Some(format!("x509: certificate is not valid for {host}"))
    } else if chain.contains("InvalidCertificate") || chain.contains("invalid peer certificate") {
        Some("x509: certificate is not trusted".into())
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges() {
        let c = parse_challenge(
            r#"Bearer realm="https://auth.example/token",service="registry.docker.io",scope="repository:x:pull",error="insufficient_scope""#,
        );
        assert_eq!(c.scheme, "bearer");
        assert_eq!(c.params["realm"], "https://auth.example/token");
        assert_eq!(c.params["service"], "registry.docker.io");
        assert_eq!(c.params["error"], "insufficient_scope");
        let b = parse_challenge(r#"Basic realm="Registry Realm""#);
        assert_eq!(b.scheme, "basic");
        assert_eq!(b.params["realm"], "Registry Realm");
    }

    #[test]
    fn aliases() {
        let a = parse_aliases("docker.io=127.0.0.1:5000, gone.example=nxdomain").unwrap();
        assert_eq!(a[0].0, "docker.io");
        assert_eq!(a[1].1, Alias::NoSuchHost);
        assert!(parse_aliases("bad").is_err());
        assert!(parse_aliases("x=notanaddr").is_err());
    }

    #[test]
    fn sizes() {
        let m = serde_json::json!({"config": {"size": 10}, "layers": [{"size": 5}, {"size": 7}]});
        assert_eq!(manifest_size(&m), 22);
    }
}
