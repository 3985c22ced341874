//! The distribution API's routes: `/v2/`, manifests, blobs, tags list and
//! the token endpoint, with the per-repository behaviours.

use super::auth::*;
use super::wire::{Reply, Request, parse_form};
use super::*;

pub(super) enum Route<'a> {
    Manifest(&'a str),
    Blob(&'a str),
    Tags,
}

pub(super) fn route(st: &mut State, req: &Request, peer: SocketAddr) -> Reply {
    if req.path == "/token" {
        return match req.method.as_str() {
            "GET" | "HEAD" => {
                let scopes: Vec<String> = req
                    .query
                    .iter()
                    .filter(|(k, _)| k == "scope")
                    .flat_map(|(_, v)| v.split(' ').map(str::to_string))
                    .filter(|s| !s.is_empty())
                    .collect();
                let creds = basic_credentials(req.header("authorization"));
                issue_token(st, creds, &scopes, false)
            }
            "POST" => {
                let form = parse_form(&String::from_utf8_lossy(&req.body));
                let field = |k: &str| {
                    form.iter()
                        .find(|(key, _)| key == k)
                        .map(|(_, v)| v.clone())
                        .unwrap_or_default()
                };
                if field("grant_type") != "password" {
                    return Reply::json(400, &json!({"error": "unsupported_grant_type"}));
                }
                let scopes: Vec<String> = form
                    .iter()
                    .filter(|(k, _)| k == "scope")
                    .flat_map(|(_, v)| v.split(' ').map(str::to_string))
                    .filter(|s| !s.is_empty())
                    .collect();
                let creds = Some(Some((field("username"), field("password"))));
                issue_token(st, creds, &scopes, true)
            }
            _ => unsupported(),
        };
    }
    if req.method != "GET" && req.method != "HEAD" {
        return unsupported();
    }
    if req.path == "/v2" || req.path == "/v2/" {
        return match authenticate(st, req, None) {
            Ok(caller) => {
                let mut r = Reply::json(200, &json!({}));
                r.user = caller.name();
                r
            }
            Err(r) => r,
        };
    }
    let Some(rest) = req.path.strip_prefix("/v2/") else {
        return not_found_route();
    };
    let (name, what) = if let Some(name) = rest.strip_suffix("/tags/list") {
        (name, Route::Tags)
    } else if let Some((name, reference)) = rest.rsplit_once("/manifests/") {
        (name, Route::Manifest(reference))
    } else if let Some((name, digest)) = rest.rsplit_once("/blobs/") {
        (name, Route::Blob(digest))
    } else {
        return not_found_route();
    };
    if !valid_name(name) {
        return Reply::error(
            400,
            "NAME_INVALID",
            "invalid repository name",
            json!({"Name": name}),
        );
    }
    let caller = match authenticate(st, req, Some(name)) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let mut reply = repo_route(st, req, peer, name, what, &caller);
    reply.user = caller.name();
    reply
}

pub(super) fn repo_route(
    st: &mut State,
    req: &Request,
    peer: SocketAddr,
    name: &str,
    what: Route<'_>,
    caller: &Caller,
) -> Reply {
    let behavior = st.behavior.repos.get(name).cloned();
    match behavior {
        Some(RepoBehavior::Forbidden) => {
            return Reply::error(
                403,
                "DENIED",
                "requested access to the resource is denied",
                Value::Null,
            );
        }
        Some(RepoBehavior::MissingRepoAsScope) => return insufficient_scope(st, name),
        _ => {}
    }
    if !caller.may_pull(name) {
        return insufficient_scope(st, name);
    }
    if !st.repos.contains_key(name) {
        return match st.behavior.missing_repo {
            MissingRepo::InsufficientScope => insufficient_scope(st, name),
            MissingRepo::NotFound => Reply::error(
                404,
                "NAME_UNKNOWN",
                "repository name not known to registry",
                json!({"name": name}),
            ),
        };
    }
    let mut limit_headers = Vec::new();
    if let Some(RepoBehavior::RateLimited {
        limit,
        remaining,
        retry_after,
    }) = behavior
    {
        let w = RATE_LIMIT_WINDOW_SECS;
        let source = peer.ip().to_string();
        if remaining == 0 {
            return Reply::error(429, "TOOMANYREQUESTS", RATE_LIMIT_MESSAGE, Value::Null)
                .header("ratelimit-limit", format!("{limit};w={w}"))
                .header("ratelimit-remaining", format!("0;w={w}"))
                .header("docker-ratelimit-source", source)
                .header("Retry-After", retry_after.to_string());
        }
        if let Route::Manifest(reference) = what {
            let repo = &st.repos[name];
            let digest = repo.tags.get(reference).map_or(reference, String::as_str);
            let counted = req.method == "GET"
                && repo.manifests.contains_key(digest)
                && !repo.children.contains(digest);
            let left = if counted { remaining - 1 } else { remaining };
            if counted {
                st.behavior.repos.insert(
                    name.to_string(),
                    RepoBehavior::RateLimited {
                        limit,
                        remaining: left,
                        retry_after,
                    },
                );
            }
            limit_headers = vec![
                ("ratelimit-limit".to_string(), format!("{limit};w={w}")),
                ("ratelimit-remaining".to_string(), format!("{left};w={w}")),
                ("docker-ratelimit-source".to_string(), source),
            ];
        }
    }
    let mut reply = match what {
        Route::Manifest(reference) => manifest(st, name, reference),
        Route::Blob(digest) => blob(st, name, digest),
        Route::Tags => tags(st, req, name),
    };
    reply.headers.extend(limit_headers);
    reply
}

pub(super) fn manifest(st: &State, name: &str, reference: &str) -> Reply {
    let repo = &st.repos[name];
    let digest = if reference.contains(':') {
        Some(reference)
    } else {
        repo.tags.get(reference).map(String::as_str)
    };
    let Some((digest, m)) = digest.and_then(|d| repo.manifests.get(d).map(|m| (d, m))) else {
        let detail = if reference.contains(':') {
            json!({"Digest": reference})
        } else {
            json!({"Tag": reference})
        };
        return Reply::error(404, "MANIFEST_UNKNOWN", "manifest unknown", detail);
    };
    Reply {
        status: 200,
        headers: vec![
            ("Content-Type".into(), m.media_type.to_string()),
            ("Docker-Content-Digest".into(), digest.to_string()),
            ("Etag".into(), format!("\"{digest}\"")),
        ],
        body: m.bytes.clone(),
        user: None,
    }
}

pub(super) fn blob(st: &State, name: &str, digest: &str) -> Reply {
    let valid = digest
        .strip_prefix("sha256:")
        .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()));
    if !valid {
        return Reply::error(
            400,
            "DIGEST_INVALID",
            "provided digest did not match uploaded content",
            Value::Null,
        );
    }
    let bytes = st.repos[name]
        .blobs
        .contains(digest)
        .then(|| st.blobs.get(digest))
        .flatten();
    let Some(bytes) = bytes else {
        return Reply::error(
            404,
            "BLOB_UNKNOWN",
            "blob unknown to registry",
            json!(digest),
        );
    };
    Reply {
        status: 200,
        headers: vec![
            ("Content-Type".into(), "application/octet-stream".into()),
            ("Docker-Content-Digest".into(), digest.to_string()),
            ("Etag".into(), format!("\"{digest}\"")),
        ],
        body: bytes.clone(),
        user: None,
    }
}

pub(super) fn tags(st: &State, req: &Request, name: &str) -> Reply {
    let all = &st.repos[name].tags;
    let requested: Option<usize> = match req.query("n").map(str::parse) {
        None => None,
        Some(Ok(n)) => Some(n),
        Some(Err(_)) => {
            return Reply::error(
                400,
                "PAGINATION_NUMBER_INVALID",
                "invalid number of results requested",
                json!({"n": req.query("n")}),
            );
        }
    };
    let n = match (requested, st.behavior.max_tags_per_page) {
        (Some(n), Some(max)) => Some(n.min(max)),
        (n, max) => n.or(max),
    };
    let last = req.query("last").unwrap_or("");
    let after: Vec<&String> = all.keys().filter(|t| t.as_str() > last).collect();
    let page: Vec<&String> = after
        .iter()
        .take(n.unwrap_or(usize::MAX))
        .copied()
        .collect();
    let mut reply = Reply::json(200, &json!({"name": name, "tags": page}));
    if let (Some(n), Some(last)) = (n, page.last())
        && after.len() > page.len()
    {
        reply = reply.header(
            "Link",
            format!("</v2/{name}/tags/list?last={last}&n={n}>; rel=\"next\""),
        );
    }
    reply
}

pub(super) fn unsupported() -> Reply {
    Reply::error(
        405,
        "UNSUPPORTED",
        "The operation is unsupported.",
        Value::Null,
    )
}

pub(super) fn not_found_route() -> Reply {
    Reply::error(404, "NOT_FOUND", "not found", Value::Null)
}

/// distribution's path-component grammar, loosely: lowercase alphanumerics
/// separated by `.`, `_`, `__`, `-`, joined with `/`.
pub(super) fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && name.split('/').all(|c| {
            !c.is_empty()
                && c.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
                })
                && c.as_bytes()[0].is_ascii_alphanumeric()
                && c.as_bytes()[c.len() - 1].is_ascii_alphanumeric()
        })
}
