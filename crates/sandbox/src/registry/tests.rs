//! The registry against the product's registry client.

use super::content::{crc32, gzip_stored, tar_file};
use super::routes::valid_name;
use super::wire::{parse_form, percent_decode};
use super::*;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use pullfix::registry::client::{Platform, PullFailure, RateLimit, RegistryClient};
use pullfix::registry::keyring::Credential;
use pullfix::registry::reference::ImageRef;

fn client(reg: &RunningRegistry) -> RegistryClient {
    RegistryClient::new(&reg.client_config()).unwrap()
}

fn image(reg: &RunningRegistry, s: &str) -> ImageRef {
    ImageRef::parse(&reg.image(s)).unwrap()
}

fn cred(user: &str, password: &str) -> Credential {
    Credential::new(user, password)
}

fn platform(arch: &str) -> Platform {
    Platform {
        os: "linux".into(),
        arch: arch.into(),
    }
}

const AMD64: &[(&str, &str)] = &[("linux", "amd64")];

#[tokio::test]
async fn basic_auth_and_rotation() {
    let reg = EmbeddedRegistry::start(RegistryBehavior::basic(&[("alice", "pw1")])).unwrap();
    let added = reg.add_image("team/app", "v1", AMD64);
    let (c, img, amd64) = (client(&reg), image(&reg, "team/app:v1"), platform("amd64"));

    let ok = c
        .resolve(&img, Some(&cred("alice", "pw1")), &amd64)
        .await
        .unwrap();
    assert_eq!(ok.digest, added.digest);
    assert_eq!(ok.size, added.platforms[0].size);

    let none = c.resolve(&img, None, &amd64).await.unwrap_err();
    assert!(
        matches!(none, PullFailure::NoBasicCredentials { .. }),
        "{none:?}"
    );

    let wrong = c
        .resolve(&img, Some(&cred("alice", "nope")), &amd64)
        .await
        .unwrap_err();
    assert!(
        matches!(
            wrong,
            PullFailure::Status {
                status: 401,
                method: "HEAD",
                ..
            }
        ),
        "{wrong:?}"
    );

    reg.set_password("alice", "nope");
    c.resolve(&img, Some(&cred("alice", "nope")), &amd64)
        .await
        .unwrap();
    let old = c
        .resolve(&img, Some(&cred("alice", "pw1")), &amd64)
        .await
        .unwrap_err();
    assert!(
        matches!(old, PullFailure::Status { status: 401, .. }),
        "{old:?}"
    );
    assert!(
        reg.requests()
            .iter()
            .any(|r| r.status == 200 && r.user.as_deref() == Some("alice"))
    );
}

#[tokio::test]
async fn bearer_token_dance() {
    let reg = EmbeddedRegistry::start(
        RegistryBehavior::bearer(&[("bob", "s3cret")]).with_public("library/busybox"),
    )
    .unwrap();
    reg.add_image("team/app", "v1", AMD64);
    reg.add_image("library/busybox", "1.36", AMD64);
    let (c, img, amd64) = (client(&reg), image(&reg, "team/app:v1"), platform("amd64"));

    let anon = c.resolve(&img, None, &amd64).await.unwrap_err();
    assert!(matches!(anon, PullFailure::AccessDenied { .. }), "{anon:?}");

    c.resolve(&img, Some(&cred("bob", "s3cret")), &amd64)
        .await
        .unwrap();

    let bad = c
        .resolve(&img, Some(&cred("bob", "wrong")), &amd64)
        .await
        .unwrap_err();
    match bad {
        PullFailure::TokenFetch {
            url,
            status,
            anonymous,
        } => {
            assert_eq!(status, 401);
            assert!(!anonymous);
            assert!(
                url.starts_with(&format!("http://{}/token?", reg.addr)),
                "{url}"
            );
            assert!(url.contains("service=pullfix-sandbox-registry"), "{url}");
        }
        other => panic!("{other:?}"),
    }

    // A public repository: anonymous pull works.
    let busybox = image(&reg, "library/busybox:1.36");
    c.resolve(&busybox, None, &amd64).await.unwrap();

    // The raw answers.
    let http = reqwest::Client::new();
    let v2 = http
        .get(format!("http://{}/v2/", reg.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(v2.status(), 401);
    assert_eq!(
        v2.headers()["www-authenticate"],
        format!(
            "Bearer realm=\"http://{}/token\",service=\"{DEFAULT_SERVICE}\"",
            reg.addr
        )
    );
    let t = http
        .get(format!(
            "http://{}/token?scope=repository:team/app:pull",
            reg.addr
        ))
        .basic_auth("bob", Some("wrong"))
        .send()
        .await
        .unwrap();
    assert_eq!(t.status(), 401);
    assert!(
        t.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Basic realm=")
    );
    let body: Value = t.json().await.unwrap();
    assert_eq!(body["errors"][0]["code"], "UNAUTHORIZED");

    // OAuth2 password grant (containerd's first try).
    let form = http
        .post(format!("http://{}/token", reg.addr))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("grant_type=password&username=bob&password=s3cret&service=x&scope=repository%3Ateam%2Fapp%3Apull")
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), 200);
    let body: Value = form.json().await.unwrap();
    let token = body["access_token"].as_str().unwrap().to_string();
    let m = http
        .get(format!("http://{}/v2/team/app/manifests/v1", reg.addr))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(m.status(), 200);

    // Revoked tokens are invalid.
    reg.revoke_tokens();
    let m = http
        .get(format!("http://{}/v2/team/app/manifests/v1", reg.addr))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(m.status(), 401);
    assert!(
        m.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("error=\"invalid_token\"")
    );
}

#[tokio::test]
async fn missing_tags_and_repositories() {
    let reg = EmbeddedRegistry::start(RegistryBehavior::anonymous()).unwrap();
    reg.add_image("team/app", "v1", AMD64);
    let (c, amd64) = (client(&reg), platform("amd64"));
    let tag = c
        .resolve(&image(&reg, "team/app:v9"), None, &amd64)
        .await
        .unwrap_err();
    assert!(matches!(tag, PullFailure::NotFound { .. }), "{tag:?}");
    let repo = c
        .resolve(&image(&reg, "team/gone:v1"), None, &amd64)
        .await
        .unwrap_err();
    assert!(matches!(repo, PullFailure::NotFound { .. }), "{repo:?}");
    let body: Value = reqwest::get(format!("http://{}/v2/team/gone/manifests/v1", reg.addr))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["errors"][0]["code"], "NAME_UNKNOWN");

    // Docker Hub style: a missing repository is insufficient_scope, even
    // with good credentials.
    let hub =
        EmbeddedRegistry::start(RegistryBehavior::bearer(&[("bob", "pw")]).docker_hub_style())
            .unwrap();
    hub.add_image("team/app", "v1", AMD64);
    let c = client(&hub);
    let gone = c
        .resolve(
            &image(&hub, "team/gone:v1"),
            Some(&cred("bob", "pw")),
            &amd64,
        )
        .await
        .unwrap_err();
    assert!(matches!(gone, PullFailure::AccessDenied { .. }), "{gone:?}");
    let tag = c
        .resolve(
            &image(&hub, "team/app:v9"),
            Some(&cred("bob", "pw")),
            &amd64,
        )
        .await
        .unwrap_err();
    assert!(matches!(tag, PullFailure::NotFound { .. }), "{tag:?}");

    // Per repository: private to someone else.
    hub.set_repo_behavior("team/app", Some(RepoBehavior::MissingRepoAsScope));
    let private = c
        .resolve(
            &image(&hub, "team/app:v1"),
            Some(&cred("bob", "pw")),
            &amd64,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(private, PullFailure::AccessDenied { .. }),
        "{private:?}"
    );
}

#[tokio::test]
async fn platform_selection() {
    let reg = EmbeddedRegistry::start(RegistryBehavior::anonymous()).unwrap();
    let multi = reg.add_index("team/multi", "1.0", AMD64);
    assert_eq!(multi.media_type, OCI_INDEX);
    let c = client(&reg);
    let img = image(&reg, "team/multi:1.0");
    let arm = c.resolve(&img, None, &platform("arm64")).await.unwrap_err();
    assert_eq!(
        arm,
        PullFailure::PlatformMismatch {
            os: "linux".into(),
            arch: "arm64".into(),
            variant: Some("v8".into()),
        }
    );
    let amd = c.resolve(&img, None, &platform("amd64")).await.unwrap();
    assert_eq!(amd.digest, multi.platforms[0].digest);
    assert_ne!(amd.digest, multi.digest);

    let both = reg.add_image(
        "team/both",
        "1",
        &[("linux", "amd64"), ("linux", "arm64/v8")],
    );
    assert_eq!(both.media_type, OCI_INDEX);
    let img = image(&reg, "team/both:1");
    let a = c.resolve(&img, None, &platform("amd64")).await.unwrap();
    let b = c.resolve(&img, None, &platform("arm64")).await.unwrap();
    assert_eq!(a.digest, both.platforms[0].digest);
    assert_eq!(b.digest, both.platforms[1].digest);
    assert_ne!(a.digest, b.digest);
}

#[tokio::test]
async fn rate_limit() {
    let reg = EmbeddedRegistry::start(RegistryBehavior::anonymous().with_repo(
        "library/busybox",
        RepoBehavior::RateLimited {
            limit: 100,
            remaining: 0,
            retry_after: 3600,
        },
    ))
    .unwrap();
    reg.add_image("library/busybox", "1.36", AMD64);
    let c = client(&reg);
    let img = image(&reg, "library/busybox:1.36");
    let err = c.resolve(&img, None, &platform("amd64")).await.unwrap_err();
    assert_eq!(
        err,
        PullFailure::RateLimited {
            url: format!("http://{}/v2/library/busybox/manifests/1.36", reg.addr),
            message: RATE_LIMIT_MESSAGE.into(),
        }
    );
    let rl = c.rate_limit(&img, None).await.unwrap().unwrap();
    assert_eq!(
        rl,
        RateLimit {
            limit: Some("100;w=21600".into()),
            remaining: Some("0;w=21600".into()),
            source: Some("127.0.0.1".into()),
            retry_after: Some("3600".into()),
        }
    );

    // Counting: HEAD is free, each GET of the manifest uses one pull.
    reg.set_repo_behavior(
        "library/busybox",
        Some(RepoBehavior::RateLimited {
            limit: 100,
            remaining: 2,
            retry_after: 60,
        }),
    );
    let amd64 = platform("amd64");
    assert_eq!(
        c.rate_limit(&img, None)
            .await
            .unwrap()
            .unwrap()
            .remaining_count(),
        Some(2)
    );
    c.resolve(&img, None, &amd64).await.unwrap();
    assert_eq!(
        c.rate_limit(&img, None)
            .await
            .unwrap()
            .unwrap()
            .remaining_count(),
        Some(1)
    );
    c.resolve(&img, None, &amd64).await.unwrap();
    let err = c.resolve(&img, None, &amd64).await.unwrap_err();
    assert!(matches!(err, PullFailure::RateLimited { .. }), "{err:?}");

    // Other repositories are not limited and carry no headers.
    reg.add_image("team/app", "v1", AMD64);
    assert_eq!(
        c.rate_limit(&image(&reg, "team/app:v1"), None)
            .await
            .unwrap(),
        None
    );
}

#[tokio::test]
async fn forbidden() {
    let reg = EmbeddedRegistry::start(
        RegistryBehavior::basic(&[("alice", "pw")]).with_repo("team/app", RepoBehavior::Forbidden),
    )
    .unwrap();
    reg.add_image("team/app", "v1", AMD64);
    let c = client(&reg);
    let img = image(&reg, "team/app:v1");
    let alice = cred("alice", "pw");
    let err = c
        .resolve(&img, Some(&alice), &platform("amd64"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, PullFailure::Status { status: 403, .. }),
        "{err:?}"
    );
    let body: Value = reqwest::Client::new()
        .get(format!("http://{}/v2/team/app/manifests/v1", reg.addr))
        .basic_auth("alice", Some("pw"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["errors"][0]["code"], "DENIED");
    reg.set_repo_behavior("team/app", None);
    c.resolve(&img, Some(&alice), &platform("amd64"))
        .await
        .unwrap();
}

#[tokio::test]
async fn tags_list_pagination() {
    let reg = EmbeddedRegistry::start(RegistryBehavior::bearer(&[("bob", "pw")]).with_tags_page(2))
        .unwrap();
    for tag in ["v3", "v1", "v5", "v2", "v4"] {
        reg.add_image("team/app", tag, AMD64);
    }
    let c = client(&reg);
    let img = image(&reg, "team/app:v1");
    let bob = cred("bob", "pw");
    let all = c.list_tags(&img, Some(&bob), 100).await.unwrap();
    assert_eq!(all, ["v1", "v2", "v3", "v4", "v5"]);
    assert_eq!(
        c.list_tags(&img, Some(&bob), 3).await.unwrap(),
        ["v1", "v2", "v3"]
    );
    let anon = c.list_tags(&img, None, 100).await.unwrap_err();
    assert!(matches!(anon, PullFailure::AccessDenied { .. }), "{anon:?}");

    // The raw pages.
    reg.set_auth(AuthMode::Anonymous);
    let page = reqwest::get(format!(
        "http://{}/v2/team/app/tags/list?n=2&last=v1",
        reg.addr
    ))
    .await
    .unwrap();
    assert_eq!(
        page.headers()["link"],
        "</v2/team/app/tags/list?last=v3&n=2>; rel=\"next\""
    );
    let body: Value = page.json().await.unwrap();
    assert_eq!(body, json!({"name": "team/app", "tags": ["v2", "v3"]}));
    let last = reqwest::get(format!(
        "http://{}/v2/team/app/tags/list?n=2&last=v3",
        reg.addr
    ))
    .await
    .unwrap();
    assert!(last.headers().get("link").is_none());
    let body: Value = last.json().await.unwrap();
    assert_eq!(body["tags"], json!(["v4", "v5"]));
}

#[tokio::test]
async fn content_is_addressed_and_stable() {
    let one = EmbeddedRegistry::start(RegistryBehavior::anonymous()).unwrap();
    let two = EmbeddedRegistry::start(RegistryBehavior::anonymous()).unwrap();
    let a = one.add_image("team/checkout", "v2.1.0", AMD64);
    let b = two.add_image("team/checkout", "v2.1.0", AMD64);
    assert_eq!(a, b);
    let other = one.add_image("team/checkout", "v2.0.3", AMD64);
    assert_ne!(a.digest, other.digest);
    let idx1 = one.add_index("team/multi", "1.0", AMD64);
    let idx2 = two.add_index("team/multi", "1.0", AMD64);
    assert_eq!(idx1, idx2);

    // The kubelet sees the same digest from both registries.
    let amd64 = platform("amd64");
    let r1 = client(&one)
        .resolve(&image(&one, "team/checkout:v2.1.0"), None, &amd64)
        .await
        .unwrap();
    let r2 = client(&two)
        .resolve(&image(&two, "team/checkout:v2.1.0"), None, &amd64)
        .await
        .unwrap();
    assert_eq!(r1, r2);
    assert_eq!(r1.digest, a.digest);

    let http = reqwest::Client::new();
    let base = format!("http://{}/v2/team/checkout", one.addr);
    let m = http
        .get(format!("{base}/manifests/{}", a.digest))
        .send()
        .await
        .unwrap();
    assert_eq!(m.status(), 200);
    assert_eq!(m.headers()["content-type"], DOCKER_MANIFEST);
    assert_eq!(m.headers()["docker-content-digest"], a.digest.as_str());
    let bytes = m.bytes().await.unwrap();
    assert_eq!(sha256_digest(&bytes), a.digest);
    let manifest: Value = serde_json::from_slice(&bytes).unwrap();
    for d in [&manifest["config"], &manifest["layers"][0]] {
        let digest = d["digest"].as_str().unwrap();
        let head = http
            .head(format!("{base}/blobs/{digest}"))
            .send()
            .await
            .unwrap();
        assert_eq!(head.status(), 200);
        assert_eq!(
            head.headers()["content-length"].to_str().unwrap(),
            d["size"].to_string()
        );
        let blob = http
            .get(format!("{base}/blobs/{digest}"))
            .send()
            .await
            .unwrap();
        assert_eq!(blob.headers()["docker-content-digest"], digest);
        let body = blob.bytes().await.unwrap();
        assert_eq!(sha256_digest(&body), digest);
        assert_eq!(body.len() as u64, d["size"].as_u64().unwrap());
    }
    let missing = http
        .get(format!("{base}/blobs/sha256:{}", "0".repeat(64)))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    // A blob of another repository is not served here.
    let worker = one.add_image("team/worker", "1.4.2", AMD64);
    let wm: Value = serde_json::from_slice(
        &http
            .get(format!(
                "http://{}/v2/team/worker/manifests/{}",
                one.addr, worker.digest
            ))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap(),
    )
    .unwrap();
    let foreign = wm["config"]["digest"].as_str().unwrap();
    let r = http
        .get(format!("{base}/blobs/{foreign}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

#[test]
fn layer_is_a_valid_gzip_tar() {
    let tar = tar_file("etc/x", b"hello\n");
    assert_eq!(tar.len(), 512 * 4);
    assert_eq!(&tar[257..262], b"ustar");
    let gz = gzip_stored(&tar);
    assert_eq!(&gz[..3], &[0x1f, 0x8b, 8]);
    let n = gz.len();
    assert_eq!(
        u32::from_le_bytes(gz[n - 4..].try_into().unwrap()),
        tar.len() as u32
    );
    assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    assert_eq!(&gz[15..15 + tar.len()], &tar[..]);
}

#[tokio::test]
async fn shutdown_closes_the_port() {
    let reg = EmbeddedRegistry::start(RegistryBehavior::anonymous()).unwrap();
    reg.add_image("team/app", "v1", AMD64);
    let c = client(&reg);
    let img = image(&reg, "team/app:v1");
    c.resolve(&img, None, &platform("amd64")).await.unwrap();
    let handle = reg.registry.clone();
    reg.shutdown().await;
    let err = c.resolve(&img, None, &platform("amd64")).await.unwrap_err();
    assert!(
        matches!(
            err,
            PullFailure::Refused {
                plain_http: true,
                ..
            }
        ),
        "{err:?}"
    );
    // The content outlives the server and can be served again.
    let again = handle.serve(SocketAddr::from(([127, 0, 0, 1], 0))).unwrap();
    let c = client(&again);
    c.resolve(&image(&again, "team/app:v1"), None, &platform("amd64"))
        .await
        .unwrap();
    let addr = again.addr;
    drop(again);
    let mut refused = false;
    for _ in 0..50 {
        if tokio::net::TcpStream::connect(addr).await.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(refused, "the listener outlived the drop");
}

#[test]
fn names_and_queries() {
    assert!(valid_name("team/app"));
    assert!(valid_name("a.b_c-d/e"));
    assert!(!valid_name("Team/app"));
    assert!(!valid_name("team//app"));
    assert!(!valid_name("-x"));
    assert_eq!(
        parse_form("scope=repository%3Ateam%2Fapp%3Apull&service=a+b"),
        [
            ("scope".to_string(), "repository:team/app:pull".to_string()),
            ("service".to_string(), "a b".to_string())
        ]
    );
    assert_eq!(percent_decode("%zz%4", false), "%zz%4");
}

/// What hyper now does for the registry, seen on the wire: keep-alive,
/// HEAD with the GET's length and no body, the API version header, the
/// ECR-like 403 for a refused Basic credential, 413 for a huge body.
#[tokio::test]
async fn wire_behaviours() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let reg = EmbeddedRegistry::start(RegistryBehavior {
        reject_with_403: true,
        ..RegistryBehavior::basic(&[("AWS", "current")])
    })
    .unwrap();
    let added = reg.add_image("team/app", "v1", AMD64);
    let auth = format!("Basic {}", STANDARD.encode("AWS:current"));
    let mut conn = tokio::net::TcpStream::connect(reg.addr).await.unwrap();
    // HEAD, then GET on the same connection.
    let request = |method: &str, auth: &str| {
        format!(
            "{method} /v2/team/app/manifests/v1 HTTP/1.1\r\nHost: r\r\nAccept: {DOCKER_MANIFEST}\r\nAuthorization: {auth}\r\n\r\n"
        )
    };
    conn.write_all(request("HEAD", &auth).as_bytes())
        .await
        .unwrap();
    conn.write_all(request("GET", &auth).as_bytes())
        .await
        .unwrap();
    conn.write_all(b"GET /v2/ HTTP/1.1\r\nHost: r\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut raw = Vec::new();
    conn.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8_lossy(&raw).to_ascii_lowercase();
    let answers: Vec<&str> = text.split("http/1.1 ").filter(|s| !s.is_empty()).collect();
    assert_eq!(answers.len(), 3, "{text}");
    let manifest_len = reg.lock().repos["team/app"].manifests[&added.digest]
        .bytes
        .len();
    let (head, get) = (answers[0], answers[1]);
    for a in [head, get] {
        assert!(a.starts_with("200 ok\r\n"), "{a}");
        assert!(
            a.contains(&format!("content-length: {manifest_len}\r\n")),
            "{a}"
        );
        assert!(
            a.contains("docker-distribution-api-version: registry/2.0\r\n"),
            "{a}"
        );
        assert!(
            a.contains(&format!("docker-content-digest: {}\r\n", added.digest)),
            "{a}"
        );
    }
    assert!(head.ends_with("\r\n\r\n"), "HEAD sent a body: {head}");
    assert!(get.ends_with('}'), "{get}");
    assert!(
        answers[2].starts_with("401 unauthorized\r\n"),
        "{}",
        answers[2]
    );
    assert!(
        answers[2].contains("www-authenticate: basic realm="),
        "{}",
        answers[2]
    );

    // ECR: a credential it no longer takes is refused with 403, no challenge.
    let http = reqwest::Client::new();
    let stale = http
        .get(format!("http://{}/v2/team/app/manifests/v1", reg.addr))
        .basic_auth("AWS", Some("expired"))
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), 403);
    assert!(stale.headers().get("www-authenticate").is_none());
    let body: Value = stale.json().await.unwrap();
    assert_eq!(body["errors"][0]["code"], "DENIED");

    let huge = http
        .post(format!("http://{}/token", reg.addr))
        .body(vec![b'a'; 2 * 1024 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(huge.status(), 413);
    // Every answered request is logged; the refused body is not.
    let log = reg.requests();
    assert_eq!(
        log.iter().map(|r| r.status).collect::<Vec<_>>(),
        [200, 200, 401, 403]
    );
    assert_eq!(log[0].method, "HEAD");
    assert_eq!(log[0].user.as_deref(), Some("AWS"));
}
