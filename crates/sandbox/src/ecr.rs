//! An embedded ECR API endpoint for the sandbox: the two operations pullfix
//! calls (`GetAuthorizationToken`, `DescribeImages`), spoken in the AWS JSON
//! 1.1 protocol over plain HTTP on loopback, so `aws-sdk-ecr` pointed at it
//! with `endpoint_url` works unchanged.
//!
//! The answers come from the sandbox's [`EmbeddedRegistry`] that plays the
//! ECR registry host: the token is `AWS:<the registry's current password of
//! user AWS>` (so a token fetched here really pulls there, and a rotation of
//! that password is what makes an old token "expire"), and `DescribeImages`
//! reads the registry's tags. Signatures are not verified, but an
//! `Authorization` header is required, as AWS requires one. Errors carry the
//! `__type` and `message` AWS sends, so the SDK surfaces the same codes
//! (`ProvideErrorMetadata::code()`).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::registry::{EmbeddedRegistry, RegistryBehavior};
use crate::server::{ServerTask, serve_http1};

/// The `X-Amz-Target` prefix of ECR's API version.
pub const TARGET_PREFIX: &str = "AmazonEC2ContainerRegistry_V20150921.";
/// The content type of the AWS JSON 1.1 protocol.
pub const CONTENT_TYPE: &str = "application/x-amz-json-1.1";
/// How long an ECR authorization token is valid.
pub const TOKEN_TTL_SECS: i64 = 12 * 3600;
/// When the sandbox's images were "pushed" (the registry's fixed creation
/// time: 2024-01-01T00:00:00Z).
const PUSHED_AT: f64 = 1_704_067_200.0;
/// Request bodies larger than this are refused.
const MAX_BODY: usize = 1024 * 1024;

/// What the endpoint serves.
#[derive(Clone)]
pub struct EcrOptions {
    /// The AWS account id (the registry id): `123456789012`.
    pub account: String,
    /// The region in the registry host: `us-east-1`.
    pub region: String,
    /// The registry that plays `<account>.dkr.ecr.<region>.amazonaws.com`.
    pub registry: EmbeddedRegistry,
    /// Answer `GetAuthorizationToken` with `AccessDeniedException`, as when
    /// the caller's IAM policy lacks `ecr:GetAuthorizationToken`.
    pub deny_token: bool,
}

struct Shared {
    account: String,
    region: String,
    registry: EmbeddedRegistry,
    deny_token: AtomicBool,
    calls: Mutex<Vec<String>>,
}

/// A serving endpoint. Dropping it (or [`EcrEndpoint::shutdown`]) stops the
/// server and closes every connection.
pub struct EcrEndpoint {
    addr: SocketAddr,
    shared: Arc<Shared>,
    server: ServerTask,
}

/// Serves the ECR API on `addr` (port 0: any free port). Needs a tokio
/// runtime.
pub async fn start(addr: SocketAddr, options: EcrOptions) -> anyhow::Result<EcrEndpoint> {
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("bind the embedded ECR endpoint to {addr}"))?;
    let bound = listener.local_addr()?;
    let shared = Arc::new(Shared {
        account: options.account,
        region: options.region,
        registry: options.registry,
        deny_token: AtomicBool::new(options.deny_token),
        calls: Mutex::new(Vec::new()),
    });
    let serving = shared.clone();
    let server = ServerTask::spawn(&tokio::runtime::Handle::current(), |stopped| {
        serve_http1(listener, stopped, move |req, _peer| {
            let shared = serving.clone();
            async move { handle(req, &shared).await }
        })
    });
    Ok(EcrEndpoint {
        addr: bound,
        shared,
        server,
    })
}

impl EcrEndpoint {
    /// `http://127.0.0.1:PORT`, for `endpoint_url` / `AWS_ENDPOINT_URL`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Starts (`true`) or stops refusing `GetAuthorizationToken`.
    pub fn set_deny_token(&self, deny: bool) {
        self.shared.deny_token.store(deny, Ordering::SeqCst);
    }

    /// The operations served so far, oldest first (unknown ones included,
    /// unauthenticated requests not).
    pub fn calls(&self) -> Vec<String> {
        self.shared
            .calls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Stops the server and waits until the listener is closed.
    pub async fn shutdown(self) {
        self.server.shutdown().await;
    }
}

/// An answer before it becomes an HTTP response.
#[derive(Debug, Clone, PartialEq)]
struct Answer {
    status: u16,
    body: Value,
}

impl Answer {
    fn ok(body: Value) -> Answer {
        Answer { status: 200, body }
    }

    /// An error as AWS JSON services send it: `__type` and `message`.
    fn error(status: u16, kind: &str, message: &str) -> Answer {
        Answer {
            status,
            body: json!({"__type": kind, "message": message}),
        }
    }
}

async fn handle(req: Request<Incoming>, shared: &Shared) -> Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let authorization = header("authorization");
    let target = header("x-amz-target");
    let body = match Limited::new(body, MAX_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            return respond(Answer::error(
                413,
                "SerializationException",
                "Request body too large",
            ));
        }
    };
    let answer = answer(
        shared,
        parts.method.as_str(),
        authorization.as_deref(),
        target.as_deref(),
        &body,
    );
    respond(answer)
}

fn respond(answer: Answer) -> Response<Full<Bytes>> {
    let body = serde_json::to_vec(&answer.body).unwrap_or_default();
    let mut builder = Response::builder()
        .status(StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header("content-type", CONTENT_TYPE)
        .header("x-amzn-requestid", request_id());
    if let Some(kind) = answer.body.get("__type").and_then(Value::as_str) {
        builder = builder.header("x-amzn-errortype", kind);
    }
    builder
        .body(Full::new(Bytes::from(body)))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

fn request_id() -> String {
    let b: [u8; 16] = rand::random();
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// The protocol without the transport (pure apart from the registry's
/// state), so it can be tested without a socket.
fn answer(
    shared: &Shared,
    method: &str,
    authorization: Option<&str>,
    target: Option<&str>,
    body: &[u8],
) -> Answer {
    if authorization.is_none_or(|a| a.trim().is_empty()) {
        return Answer::error(
            403,
            "MissingAuthenticationTokenException",
            "Missing Authentication Token",
        );
    }
    let operation = target
        .and_then(|t| t.strip_prefix(TARGET_PREFIX))
        .unwrap_or_default();
    shared
        .calls
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(if operation.is_empty() {
            target.unwrap_or_default().to_string()
        } else {
            operation.to_string()
        });
    if method != "POST" || operation.is_empty() {
        return Answer::error(400, "UnknownOperationException", "");
    }
    let input: Value = if body.is_empty() {
        json!({})
    } else {
        match serde_json::from_slice(body) {
            Ok(v @ Value::Object(_)) => v,
            _ => {
                return Answer::error(
                    400,
                    "SerializationException",
                    "Start of structure or map found where not expected.",
                );
            }
        }
    };
    match operation {
        "GetAuthorizationToken" => get_authorization_token(shared, authorization),
        "DescribeImages" => describe_images(shared, &input),
        _ => Answer::error(400, "UnknownOperationException", ""),
    }
}

/// The access key id in a SigV4 `Authorization` header, for messages.
fn access_key(authorization: Option<&str>) -> &str {
    authorization
        .and_then(|a| a.split("Credential=").nth(1))
        .and_then(|c| c.split('/').next())
        .unwrap_or("unknown")
}

fn get_authorization_token(shared: &Shared, authorization: Option<&str>) -> Answer {
    if shared.deny_token.load(Ordering::SeqCst) {
        let message = format!(
            "User: arn:aws:iam::{}:user/{} is not authorized to perform: ecr:GetAuthorizationToken on resource: * because no identity-based policy allows the ecr:GetAuthorizationToken action",
            shared.account,
            access_key(authorization)
        );
        return Answer::error(400, "AccessDeniedException", &message);
    }
    // Without a user AWS the registry takes no ECR token at all; a random
    // password keeps the answer well-formed (and useless), like a token for
    // another account.
    let password = shared
        .registry
        .behavior()
        .users
        .get("AWS")
        .cloned()
        .unwrap_or_else(|| hex::encode(rand::random::<[u8; 16]>()));
    let expires = chrono::Utc::now().timestamp() + TOKEN_TTL_SECS;
    Answer::ok(json!({"authorizationData": [{
        "authorizationToken": STANDARD.encode(format!("AWS:{password}")),
        "expiresAt": expires as f64,
        "proxyEndpoint": format!("https://{}.dkr.ecr.{}.amazonaws.com", shared.account, shared.region),
    }]}))
}

/// Digest, media type and size of `repo:tag` as the registry serves it.
/// The registry's content is deterministic and content-addressed, so the
/// same single-platform image built in a scratch registry has the same
/// digest (images added as multi-platform indexes get a different one).
fn image_facts(repo: &str, tag: &str) -> (String, &'static str, u64) {
    let scratch = EmbeddedRegistry::new(RegistryBehavior::anonymous());
    let added = scratch.add_image(repo, tag, &[("linux", "amd64")]);
    let size = added.platforms.iter().map(|p| p.size).sum();
    (added.digest, added.media_type, size)
}

fn describe_images(shared: &Shared, input: &Value) -> Answer {
    let registry_id = input["registryId"]
        .as_str()
        .unwrap_or(&shared.account)
        .to_string();
    let Some(repo) = input["repositoryName"].as_str().filter(|r| !r.is_empty()) else {
        return Answer::error(
            400,
            "InvalidParameterException",
            "1 validation error detected: Value null at 'repositoryName' failed to satisfy constraint: Member must not be null",
        );
    };
    let tags = shared.registry.tags(repo);
    if registry_id != shared.account || tags.is_empty() {
        return Answer::error(
            400,
            "RepositoryNotFoundException",
            &format!(
                "The repository with name '{repo}' does not exist in the registry with id '{registry_id}'"
            ),
        );
    }
    let detail = |tag: &str| {
        let (digest, media_type, size) = image_facts(repo, tag);
        json!({
            "registryId": registry_id,
            "repositoryName": repo,
            "imageDigest": digest,
            "imageTags": [tag],
            "imageSizeInBytes": size,
            "imagePushedAt": PUSHED_AT,
            "imageManifestMediaType": media_type,
        })
    };
    let ids = input["imageIds"].as_array().cloned().unwrap_or_default();
    if ids.is_empty() {
        let details: Vec<Value> = tags.iter().map(|t| detail(t)).collect();
        return Answer::ok(json!({"imageDetails": details}));
    }
    let mut details = Vec::new();
    for id in &ids {
        let tag = id["imageTag"].as_str();
        let digest = id["imageDigest"].as_str();
        let found = match (tag, digest) {
            (Some(t), _) if tags.iter().any(|x| x == t) => {
                let d = detail(t);
                digest
                    .is_none_or(|want| d["imageDigest"] == want)
                    .then_some(d)
            }
            (None, Some(want)) => tags
                .iter()
                .map(|t| detail(t))
                .find(|d| d["imageDigest"] == want),
            _ => None,
        };
        match found {
            Some(d) => details.push(d),
            None => {
                let message = format!(
                    "The image with imageId {{imageDigest:'{}', imageTag:'{}'}} does not exist within the repository with name '{repo}' in the registry with id '{registry_id}'",
                    digest.unwrap_or("null"),
                    tag.unwrap_or("null"),
                );
                return Answer::error(400, "ImageNotFoundException", &message);
            }
        }
    }
    Answer::ok(json!({"imageDetails": details}))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ecr::error::ProvideErrorMetadata;
    use aws_sdk_ecr::types::ImageIdentifier;

    const ACCOUNT: &str = "123456789012";

    fn registry() -> EmbeddedRegistry {
        let r = EmbeddedRegistry::new(RegistryBehavior::basic(&[("AWS", "first-token")]));
        r.add_lab_images();
        r
    }

    fn options(registry: &EmbeddedRegistry) -> EcrOptions {
        EcrOptions {
            account: ACCOUNT.into(),
            region: "us-east-1".into(),
            registry: registry.clone(),
            deny_token: false,
        }
    }

    async fn serve(registry: &EmbeddedRegistry) -> EcrEndpoint {
        start(SocketAddr::from(([127, 0, 0, 1], 0)), options(registry))
            .await
            .unwrap()
    }

    async fn client(url: &str) -> aws_sdk_ecr::Client {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(url)
            .region(aws_sdk_ecr::config::Region::new("us-east-1"))
            .credentials_provider(aws_credential_types::Credentials::new(
                "AKIDSANDBOX",
                "secret",
                None,
                None,
                "sandbox",
            ))
            .load()
            .await;
        aws_sdk_ecr::Client::new(&config)
    }

    fn tag(t: &str) -> ImageIdentifier {
        ImageIdentifier::builder().image_tag(t).build()
    }

    #[tokio::test]
    async fn token_is_the_registrys_current_password_and_lasts_12_hours() {
        let reg = registry();
        let ecr = serve(&reg).await;
        let client = client(&ecr.url()).await;
        let out = client.get_authorization_token().send().await.unwrap();
        let data = &out.authorization_data()[0];
        let cred =
            pullfix::registry::keyring::decode_auth(data.authorization_token().unwrap()).unwrap();
        assert_eq!(cred.username, "AWS");
        assert_eq!(cred.password(), "first-token");
        assert_eq!(
            data.proxy_endpoint(),
            Some("https://123456789012.dkr.ecr.us-east-1.amazonaws.com")
        );
        let left = data.expires_at().unwrap().secs() - chrono::Utc::now().timestamp();
        assert!(
            (TOKEN_TTL_SECS - 60..=TOKEN_TTL_SECS).contains(&left),
            "{left}"
        );

        reg.set_password("AWS", "second-token");
        let out = client.get_authorization_token().send().await.unwrap();
        let token = out.authorization_data()[0].authorization_token().unwrap();
        let cred = pullfix::registry::keyring::decode_auth(token).unwrap();
        assert_eq!(cred.password(), "second-token");
        assert_eq!(
            ecr.calls(),
            ["GetAuthorizationToken", "GetAuthorizationToken"]
        );
        ecr.shutdown().await;
    }

    #[tokio::test]
    async fn denied_token_is_access_denied_and_can_be_lifted() {
        let reg = registry();
        let ecr = serve(&reg).await;
        ecr.set_deny_token(true);
        let client = client(&ecr.url()).await;
        let err = client.get_authorization_token().send().await.unwrap_err();
        assert_eq!(err.code(), Some("AccessDeniedException"));
        assert!(
            err.message()
                .unwrap()
                .contains("not authorized to perform: ecr:GetAuthorizationToken"),
            "{:?}",
            err.message()
        );
        ecr.set_deny_token(false);
        assert!(client.get_authorization_token().send().await.is_ok());
        ecr.shutdown().await;
    }

    #[tokio::test]
    async fn describe_images_finds_tags_and_names_missing_ones_like_aws() {
        let reg = registry();
        let ecr = serve(&reg).await;
        let client = client(&ecr.url()).await;

        let out = client
            .describe_images()
            .registry_id(ACCOUNT)
            .repository_name("team/checkout")
            .image_ids(tag("v2.1.0"))
            .send()
            .await
            .unwrap();
        let d = &out.image_details()[0];
        assert_eq!(d.repository_name(), Some("team/checkout"));
        assert_eq!(d.registry_id(), Some(ACCOUNT));
        assert_eq!(d.image_tags(), ["v2.1.0"]);
        assert!(d.image_digest().unwrap().starts_with("sha256:"));
        assert!(d.image_size_in_bytes().unwrap() > 0);
        assert!(d.image_pushed_at().is_some());
        assert_eq!(
            d.image_manifest_media_type(),
            Some(crate::registry::DOCKER_MANIFEST)
        );

        // The digest is the one the registry serves for the tag.
        let served = reg.add_image("team/checkout", "v2.1.0", &[("linux", "amd64")]);
        assert_eq!(d.image_digest(), Some(served.digest.as_str()));

        // By digest too.
        let by_digest = client
            .describe_images()
            .repository_name("team/checkout")
            .image_ids(
                ImageIdentifier::builder()
                    .image_digest(&served.digest)
                    .build(),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(by_digest.image_details()[0].image_tags(), ["v2.1.0"]);

        let err = client
            .describe_images()
            .repository_name("team/checkout")
            .image_ids(tag("v9"))
            .send()
            .await
            .unwrap_err();
        assert_eq!(err.code(), Some("ImageNotFoundException"));
        assert_eq!(
            err.message(),
            Some(
                "The image with imageId {imageDigest:'null', imageTag:'v9'} does not exist within the repository with name 'team/checkout' in the registry with id '123456789012'"
            )
        );

        let err = client
            .describe_images()
            .repository_name("x")
            .image_ids(tag("v1"))
            .send()
            .await
            .unwrap_err();
        assert_eq!(err.code(), Some("RepositoryNotFoundException"));
        assert_eq!(
            err.message(),
            Some(
                "The repository with name 'x' does not exist in the registry with id '123456789012'"
            )
        );

        // No image ids: every tag of the repository.
        let all = client
            .describe_images()
            .repository_name("team/checkout")
            .send()
            .await
            .unwrap();
        assert_eq!(all.image_details().len(), reg.tags("team/checkout").len());
        ecr.shutdown().await;
    }

    #[tokio::test]
    async fn other_operations_are_unknown() {
        let reg = registry();
        let ecr = serve(&reg).await;
        let client = client(&ecr.url()).await;
        let err = client.describe_repositories().send().await.unwrap_err();
        assert_eq!(err.code(), Some("UnknownOperationException"));
        assert_eq!(ecr.calls(), ["DescribeRepositories"]);
        ecr.shutdown().await;
    }

    #[tokio::test]
    async fn requests_without_authorization_are_refused_like_aws() {
        let reg = registry();
        let ecr = serve(&reg).await;
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let http = reqwest::Client::new();
        let resp = http
            .post(ecr.url())
            .header(
                "x-amz-target",
                format!("{TARGET_PREFIX}GetAuthorizationToken"),
            )
            .header("content-type", CONTENT_TYPE)
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 403);
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["__type"], "MissingAuthenticationTokenException");
        assert!(ecr.calls().is_empty());
        ecr.shutdown().await;
    }

    #[test]
    fn malformed_bodies_and_targets() {
        let shared = Shared {
            account: ACCOUNT.into(),
            region: "us-east-1".into(),
            registry: registry(),
            deny_token: AtomicBool::new(false),
            calls: Mutex::new(Vec::new()),
        };
        let auth = Some("AWS4-HMAC-SHA256 Credential=AKID/20240101/us-east-1/ecr/aws4_request");
        let target = format!("{TARGET_PREFIX}DescribeImages");
        let a = answer(&shared, "POST", auth, Some(&target), b"[1]");
        assert_eq!(a.body["__type"], "SerializationException");
        let a = answer(&shared, "POST", auth, Some("Other.DescribeImages"), b"{}");
        assert_eq!(a.body["__type"], "UnknownOperationException");
        let a = answer(&shared, "POST", auth, Some(&target), b"{}");
        assert_eq!(a.body["__type"], "InvalidParameterException");
        let a = answer(
            &shared,
            "POST",
            auth,
            Some(&target),
            br#"{"registryId":"999999999999","repositoryName":"team/checkout"}"#,
        );
        assert_eq!(a.body["__type"], "RepositoryNotFoundException");
        assert!(
            a.body["message"]
                .as_str()
                .unwrap()
                .ends_with("registry with id '999999999999'")
        );
        assert_eq!(access_key(auth), "AKID");
    }
}
