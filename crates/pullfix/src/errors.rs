//! Errors that say what failed, about which object, and what to do next.
//!
//! Every request to the API server goes through [`crate::api`], which turns
//! a `kube::Error` into an [`ApiError`]: the action and the object it was
//! about ([`Op`], e.g. `get secret shop/regcred`) and what kind of failure
//! it was ([`Kind`]). The kinds are kept apart on purpose: a timeout or a
//! 500 is not missing RBAC, and the advice (`help:`) differs for each.

use std::fmt;

/// What a request was doing: the verb, the resource and the object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Op {
    /// `get`, `list`, `patch`, `update`, `create`, `delete`, `check`, ...
    pub verb: String,
    /// The resource as a person names it: `secret`, `pods`, `deployment`.
    pub resource: String,
    pub namespace: Option<String>,
    /// The object's name (a get or a write), or what selects a list
    /// (`type=kubernetes.io/dockerconfigjson`).
    pub name: Option<String>,
    /// A list call (the object is a collection, not one name).
    pub list: bool,
    /// The resource as RBAC names it (`daemonsets.apps`), when it differs
    /// from `resource`.
    pub rbac: Option<String>,
}

impl Op {
    /// One object: `get secret shop/regcred`.
    pub(crate) fn object(verb: &str, resource: &str, namespace: Option<&str>, name: &str) -> Op {
        Op {
            verb: verb.into(),
            resource: resource.into(),
            namespace: namespace.map(str::to_string),
            name: Some(name.into()),
            list: false,
            rbac: None,
        }
    }

    /// Sets the resource as RBAC names it (`deployments.apps`).
    pub(crate) fn rbac(mut self, resource: &str) -> Op {
        self.rbac = Some(resource.into());
        self
    }

    /// A collection: `list pods in namespace shop`.
    pub(crate) fn list(resource: &str, namespace: Option<&str>, selector: Option<&str>) -> Op {
        Op {
            verb: "list".into(),
            resource: resource.into(),
            namespace: namespace.map(str::to_string),
            name: selector.filter(|s| !s.is_empty()).map(str::to_string),
            list: true,
            rbac: None,
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.verb, self.resource)?;
        if self.list {
            match &self.namespace {
                Some(ns) => write!(f, " in namespace {ns}")?,
                None => write!(f, " in all namespaces")?,
            }
            if let Some(sel) = &self.name {
                write!(f, " ({sel})")?;
            }
            return Ok(());
        }
        match (&self.namespace, &self.name) {
            (Some(ns), Some(n)) => write!(f, " {ns}/{n}"),
            (None, Some(n)) => write!(f, " {n}"),
            (Some(ns), None) => write!(f, " in namespace {ns}"),
            (None, None) => Ok(()),
        }
    }
}

/// What RBAC denied, from the API server's Status (its `details` and
/// message), falling back to the request that was denied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denied {
    /// `get`, `list`, `patch`, ...
    pub verb: String,
    /// The resource as `kubectl auth can-i` takes it: `secrets`,
    /// `deployments.apps`.
    pub resource: String,
    pub namespace: Option<String>,
    pub name: Option<String>,
}

impl Denied {
    /// The `kubectl auth can-i` command that checks this permission.
    pub(crate) fn can_i(&self) -> String {
        let mut cmd = format!("kubectl auth can-i {} {}", self.verb, self.resource);
        if let Some(n) = &self.name {
            cmd.push('/');
            cmd.push_str(n);
        }
        match &self.namespace {
            Some(ns) => {
                cmd.push_str(" -n ");
                cmd.push_str(ns);
            }
            None => cmd.push_str(" --all-namespaces"),
        }
        cmd
    }
}

/// The kinds of failure pullfix tells apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// 404: the object (or the API) does not exist.
    NotFound,
    /// 403: RBAC (or an admission webhook) denied the request.
    Forbidden(Denied),
    /// 401, or no credential could be had (expired token, exec plugin).
    Unauthorized,
    /// 409: the object changed, or already exists.
    Conflict,
    /// No answer in time (`--request-timeout`, or a server-side timeout).
    Timeout,
    /// No connection to the API server (refused, DNS, TLS, reset).
    Unreachable,
    /// Anything else (a 500, a body that does not decode, ...).
    Other,
}

/// A failed request to the API server: what it was about, what kind of
/// failure, and the server's (or the connection's) own words ([`Failure`],
/// boxed so that results stay small).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct ApiError(Box<Failure>);

impl std::ops::Deref for ApiError {
    type Target = Failure;
    fn deref(&self) -> &Failure {
        &self.0
    }
}

/// What an [`ApiError`] holds.
#[derive(Debug, Clone)]
pub struct Failure {
    pub op: Op,
    pub kind: Kind,
    /// The HTTP status code, when the server answered.
    pub code: Option<u16>,
    /// The Status `reason` (`Conflict`, `AlreadyExists`, ...), when any.
    pub reason: String,
    /// The server's message, or the connection error on one line.
    pub message: String,
    /// The API server's address, when known (for the unreachable advice).
    pub server: Option<String>,
}

impl ApiError {
    /// An answer that made no sense for `op` (a server that misbehaves),
    /// in pullfix's words.
    pub(crate) fn odd(op: Op, message: String) -> ApiError {
        ApiError(Box::new(Failure {
            op,
            kind: Kind::Other,
            code: None,
            reason: String::new(),
            message,
            server: crate::api::server(),
        }))
    }

    /// Classifies a kube error for `op`.
    pub fn new(op: Op, err: &kube::Error) -> ApiError {
        let (kind, code, reason, message) = classify(&op, err);
        ApiError(Box::new(Failure {
            op,
            kind,
            code,
            reason,
            message,
            server: crate::api::server(),
        }))
    }
}

impl Failure {
    /// A real 403 (not a timeout or a server error).
    pub(crate) fn is_forbidden(&self) -> bool {
        matches!(self.kind, Kind::Forbidden(_))
    }

    /// A few words for a warning or a problem line: `forbidden`, `timed
    /// out`, `API server unreachable`, ...
    pub(crate) fn short(&self) -> String {
        match &self.kind {
            Kind::NotFound => "not found".into(),
            Kind::Forbidden(_) => "forbidden".into(),
            Kind::Unauthorized => "credentials rejected by the API server".into(),
            Kind::Conflict => "conflict".into(),
            Kind::Timeout => "timed out".into(),
            Kind::Unreachable => "API server unreachable".into(),
            Kind::Other => match self.code {
                Some(429) => "API server overloaded (429)".into(),
                Some(c) => format!("API server error {c}"),
                None => "request failed".into(),
            },
        }
    }

    /// The `help:` line for this kind of failure (without the prefix).
    pub(crate) fn help(&self) -> Option<String> {
        Some(match &self.kind {
            Kind::Forbidden(d) => format!(
                "your identity may not {} {}{}; check with `{}`, then ask for that permission or run with an identity that has it",
                d.verb,
                d.resource,
                d.namespace
                    .as_ref()
                    .map(|ns| format!(" in namespace {ns}"))
                    .unwrap_or_default(),
                d.can_i()
            ),
            Kind::Unauthorized => "the cluster rejected your credentials: log in again (refresh the token or SSO session), or check the kubeconfig user".into(),
            Kind::Timeout => "the API server did not answer in time; it may be overloaded or the network slow: run again, or allow longer with --request-timeout (e.g. --request-timeout 60s)".into(),
            Kind::Unreachable => format!(
                "the API server is unreachable{}; check the server address in your kubeconfig (kubectl config view --minify), your network and VPN, and --request-timeout",
                self.server
                    .as_ref()
                    .map(|s| format!(" at {s}"))
                    .unwrap_or_default()
            ),
            Kind::Conflict => "the object changed since pullfix read it; nothing was overwritten: run pullfix again to work from the current version".into(),
            Kind::NotFound => return None,
            Kind::Other => match self.code {
                Some(429) => format!(
                    "the API server is overloaded (429 Too Many Requests, API priority and fairness){}; pullfix waits as asked and tries again up to {} times (within --request-timeout): try again later, or send fewer requests a second with --qps (e.g. --qps 2)",
                    crate::throttle::last_retry_after()
                        .map(|s| format!(": it asked to retry after {s}s"))
                        .unwrap_or_default(),
                    crate::throttle::MAX_RETRIES,
                ),
                Some(c) if c >= 500 => "the API server failed the request; run again, and check the API server's health if it persists".into(),
                _ => return None,
            },
        })
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.op)?;
        match &self.kind {
            Kind::NotFound => write!(f, "not found")?,
            Kind::Forbidden(_) => write!(f, "forbidden: {}", self.message)?,
            Kind::Unauthorized => write!(f, "unauthorized: {}", self.message)?,
            Kind::Conflict => write!(f, "conflict: {}", self.message)?,
            Kind::Timeout => write!(f, "timed out waiting for the API server ({})", self.message)?,
            Kind::Unreachable => write!(f, "the API server is unreachable ({})", self.message)?,
            Kind::Other => match self.code {
                Some(c) => write!(f, "{} ({c})", self.message)?,
                None => write!(f, "{}", self.message)?,
            },
        }
        if let Some(h) = self.help() {
            write!(f, "\nhelp: {h}")?;
        }
        Ok(())
    }
}

/// Kind, code, reason and message of a kube error.
fn classify(op: &Op, err: &kube::Error) -> (Kind, Option<u16>, String, String) {
    if let kube::Error::Api(s) = err {
        let kind = match s.code {
            404 => Kind::NotFound,
            403 => Kind::Forbidden(denied(op, s)),
            401 => Kind::Unauthorized,
            409 => Kind::Conflict,
            // The server's own timeouts (a slow etcd, a webhook).
            408 | 504 => Kind::Timeout,
            _ if s.reason == "Timeout" => Kind::Timeout,
            _ => Kind::Other,
        };
        let message = if s.message.is_empty() {
            s.reason.clone()
        } else {
            s.message.clone()
        };
        return (kind, Some(s.code), s.reason.clone(), message);
    }
    // Without kube's `ServiceError: ` prefix: what happened to the connection.
    let message = match err {
        kube::Error::Service(e) => chain(e.as_ref()),
        kube::Error::HyperError(e) => chain(e),
        other => chain(other),
    };
    let kind = match err {
        kube::Error::Auth(_) => Kind::Unauthorized,
        _ if timed_out(err) => Kind::Timeout,
        kube::Error::HyperError(_) | kube::Error::Service(_) => Kind::Unreachable,
        #[allow(unreachable_patterns)]
        kube::Error::RustlsTls(_) | kube::Error::TlsRequired => Kind::Unreachable,
        _ => Kind::Other,
    };
    (kind, None, String::new(), message)
}

/// True when the error, or any of its sources, is a timeout.
fn timed_out(err: &kube::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::TimedOut
        {
            return true;
        }
        if e.is::<tokio::time::error::Elapsed>() {
            return true;
        }
        let text = e.to_string().to_ascii_lowercase();
        if text.contains("timed out") || text.contains("deadline has elapsed") {
            return true;
        }
        source = e.source();
    }
    false
}

/// What was denied: the Status `details` (name, group, kind = resource),
/// then the message (`User "x" cannot get resource "secrets" in API group
/// "" in the namespace "shop"`), then the request itself.
fn denied(op: &Op, s: &kube::core::Status) -> Denied {
    let quoted_after = |marker: &str| -> Option<String> {
        let rest = &s.message[s.message.find(marker)? + marker.len()..];
        let rest = rest.strip_prefix('"')?;
        Some(rest[..rest.find('"')?].to_string())
    };
    let verb = s
        .message
        .find(" cannot ")
        .map(|i| &s.message[i + " cannot ".len()..])
        .and_then(|r| r.split_whitespace().next())
        .map(str::to_string)
        .unwrap_or_else(|| op.verb.clone());
    let details = s.details.as_ref();
    let resource = quoted_after("resource ")
        .or_else(|| details.map(|d| d.kind.clone()).filter(|k| !k.is_empty()))
        .or_else(|| op.rbac.clone())
        .unwrap_or_else(|| op.resource.clone());
    let group = quoted_after("in API group ")
        .or_else(|| details.map(|d| d.group.clone()))
        .unwrap_or_default();
    let resource = if group.is_empty() || resource.contains('.') {
        resource
    } else {
        format!("{resource}.{group}")
    };
    let namespace = quoted_after("in the namespace ").or_else(|| op.namespace.clone());
    let name = details
        .map(|d| d.name.clone())
        .filter(|n| !n.is_empty())
        .or_else(|| (!op.list).then(|| op.name.clone()).flatten());
    Denied {
        verb,
        resource,
        namespace,
        name,
    }
}

/// An error and its sources on one line, without repeats.
pub(crate) fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let t = s.to_string();
        if !text.contains(&t) {
            text.push_str(": ");
            text.push_str(&t);
        }
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::Status;

    fn api(code: u16, reason: &str, message: &str) -> kube::Error {
        kube::Error::Api(Status::failure(message, reason).with_code(code).boxed())
    }

    fn get_secret() -> Op {
        Op::object("get", "secret", Some("shop"), "regcred")
    }

    #[test]
    fn op_names_the_object() {
        assert_eq!(get_secret().to_string(), "get secret shop/regcred");
        assert_eq!(
            Op::list("pods", None, None).to_string(),
            "list pods in all namespaces"
        );
        assert_eq!(
            Op::list("secrets", Some("shop"), Some("type=x")).to_string(),
            "list secrets in namespace shop (type=x)"
        );
        assert_eq!(
            Op::object("get", "node", None, "n1").to_string(),
            "get node n1"
        );
    }

    #[test]
    fn a_real_403_is_forbidden_with_rbac_advice() {
        // A real API server's body (kube-apiserver 1.33).
        let status: Status = serde_json::from_value(serde_json::json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": "secrets \"regcred\" is forbidden: User \"dev\" cannot get resource \"secrets\" in API group \"\" in the namespace \"shop\"",
            "reason": "Forbidden",
            "details": {"name": "regcred", "kind": "secrets"},
            "code": 403
        }))
        .unwrap();
        let e = ApiError::new(get_secret(), &kube::Error::Api(status.boxed()));
        assert!(e.is_forbidden());
        assert_eq!(
            e.kind,
            Kind::Forbidden(Denied {
                verb: "get".into(),
                resource: "secrets".into(),
                namespace: Some("shop".into()),
                name: Some("regcred".into()),
            })
        );
        let text = e.to_string();
        assert!(
            text.starts_with(
                "get secret shop/regcred: forbidden: secrets \"regcred\" is forbidden"
            ),
            "{text}"
        );
        assert!(
            text.contains("help: your identity may not get secrets in namespace shop; check with `kubectl auth can-i get secrets/regcred -n shop`"),
            "{text}"
        );
    }

    #[test]
    fn forbidden_reads_the_group_and_verb_from_the_message() {
        let err = api(
            403,
            "Forbidden",
            "deployments.apps \"web\" is forbidden: User \"dev\" cannot patch resource \"deployments\" in API group \"apps\" in the namespace \"shop\"",
        );
        let e = ApiError::new(Op::object("patch", "deployment", Some("shop"), "web"), &err);
        let Kind::Forbidden(d) = &e.kind else {
            panic!("{e:?}")
        };
        assert_eq!(d.verb, "patch");
        assert_eq!(d.resource, "deployments.apps");
        assert_eq!(
            d.can_i(),
            "kubectl auth can-i patch deployments.apps/web -n shop"
        );
        // A bare 403 (no Status body) still names what was asked.
        let bare = ApiError::new(
            Op::list("nodes", None, None),
            &api(403, "Failed to parse error data", "Forbidden"),
        );
        let Kind::Forbidden(d) = &bare.kind else {
            panic!("{bare:?}")
        };
        assert_eq!(d.can_i(), "kubectl auth can-i list nodes --all-namespaces");
    }

    #[test]
    fn other_codes_are_not_rbac() {
        for (code, reason, kind) in [
            (404, "NotFound", Kind::NotFound),
            (401, "Unauthorized", Kind::Unauthorized),
            (409, "Conflict", Kind::Conflict),
            (409, "AlreadyExists", Kind::Conflict),
            (504, "Timeout", Kind::Timeout),
            (500, "InternalError", Kind::Other),
            (500, "Failed to parse error data", Kind::Other),
        ] {
            let e = ApiError::new(get_secret(), &api(code, reason, "boom"));
            assert_eq!(e.kind, kind, "{code} {reason}");
            assert_eq!(e.code, Some(code));
            let text = e.to_string();
            assert!(!text.contains("can-i"), "{code}: {text}");
            assert!(!text.contains("permission"), "{code}: {text}");
        }
        let e = ApiError::new(get_secret(), &api(500, "InternalError", "etcd is down"));
        assert_eq!(
            e.to_string(),
            "get secret shop/regcred: etcd is down (500)\nhelp: the API server failed the request; run again, and check the API server's health if it persists"
        );
        let e = ApiError::new(get_secret(), &api(401, "Unauthorized", "Unauthorized"));
        assert!(
            e.to_string()
                .contains("help: the cluster rejected your credentials: log in again")
        );
    }

    #[test]
    fn a_timeout_says_so_and_names_request_timeout() {
        let io = std::io::Error::new(std::io::ErrorKind::TimedOut, "read timed out");
        let err = kube::Error::Service(Box::new(io));
        let e = ApiError::new(get_secret(), &err);
        assert_eq!(e.kind, Kind::Timeout);
        let text = e.to_string();
        assert!(
            text.starts_with("get secret shop/regcred: timed out waiting for the API server"),
            "{text}"
        );
        assert!(text.contains("--request-timeout"), "{text}");
        assert!(
            !text.contains("can-i") && !text.contains("permission"),
            "{text}"
        );
        assert_eq!(e.short(), "timed out");
    }

    #[test]
    fn a_429_says_the_api_server_is_overloaded_and_names_qps() {
        // API Priority and Fairness answers in plain text; kube makes a
        // Status of it with the code.
        let status = kube::core::Status::failure(
            "Too many requests, please try again later.",
            "Failed to parse error data",
        )
        .with_code(429);
        let e = ApiError::new(get_secret(), &kube::Error::Api(status.boxed()));
        assert_eq!(e.kind, Kind::Other);
        assert_eq!(e.short(), "API server overloaded (429)");
        let text = e.to_string();
        assert!(
            text.contains("Too many requests, please try again later. (429)"),
            "{text}"
        );
        assert!(text.contains("help: the API server is overloaded (429 Too Many Requests, API priority and fairness)"), "{text}");
        assert!(text.contains("--qps"), "{text}");
    }

    #[test]
    fn a_nested_timeout_is_found_in_the_sources() {
        #[derive(Debug)]
        struct Outer(std::io::Error);
        impl fmt::Display for Outer {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "client error (SendRequest)")
            }
        }
        impl std::error::Error for Outer {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let inner = std::io::Error::from(std::io::ErrorKind::TimedOut);
        let err = kube::Error::Service(Box::new(Outer(inner)));
        assert_eq!(ApiError::new(get_secret(), &err).kind, Kind::Timeout);
    }

    #[tokio::test]
    async fn hyper_errors_are_unreachable_or_timeout() {
        // A real hyper error: the peer closes the connection mid-request.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                drop(sock);
            }
        });
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let io = hyper_util::rt::TokioIo::new(stream);
        let (mut send, conn) = hyper::client::conn::http1::handshake::<_, String>(io)
            .await
            .unwrap();
        tokio::spawn(conn);
        let req = http::Request::get("/").body(String::new()).unwrap();
        let herr = send.send_request(req).await.unwrap_err();
        let e = ApiError::new(get_secret(), &kube::Error::HyperError(herr));
        assert_eq!(e.kind, Kind::Unreachable, "{e}");
        let text = e.to_string();
        assert!(
            text.contains("help: the API server is unreachable"),
            "{text}"
        );
        assert!(!text.contains("can-i"), "{text}");

        // A refused connection through kube's own client.
        let refused =
            kube::Client::try_from(kube::Config::new("http://127.0.0.1:9".parse().unwrap()))
                .unwrap();
        let err = crate::api::get_opt_as::<k8s_openapi::api::core::v1::Secret, serde_json::Value>(
            &refused,
            Some("shop"),
            "regcred",
        )
        .await
        .unwrap_err();
        assert_eq!(err.kind, Kind::Unreachable, "{err}");
        assert_eq!(err.op.to_string(), "get secret shop/regcred");
        assert_eq!(err.op.rbac.as_deref(), Some("secrets"));
    }

    #[test]
    fn other_client_errors() {
        let e = ApiError::new(
            get_secret(),
            &kube::Error::Service("some middleware failed".into()),
        );
        assert_eq!(e.kind, Kind::Unreachable);
        let e = ApiError::new(
            get_secret(),
            &kube::Error::SerdeError(serde_json::from_str::<u8>("x").unwrap_err()),
        );
        assert_eq!(e.kind, Kind::Other);
        assert!(e.help().is_none());
    }
}
