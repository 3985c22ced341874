//! The registry's side of hyper: a request becomes a [`Request`], the
//! routes answer a [`Reply`], and every answered request is logged.

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Response, StatusCode};

use super::routes::route;
use super::*;

/// Largest request body read (`POST /token` forms).
const MAX_BODY: usize = 1024 * 1024;
/// Most requests kept in the log.
const LOG_CAP: usize = 10_000;

pub(super) struct Request {
    pub(super) method: String,
    pub(super) path: String,
    pub(super) query: Vec<(String, String)>,
    pub(super) target: String,
    pub(super) headers: Vec<(String, String)>,
    pub(super) body: Vec<u8>,
}

impl Request {
    pub(super) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub(super) fn query(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

pub(super) struct Reply {
    pub(super) status: u16,
    pub(super) headers: Vec<(String, String)>,
    pub(super) body: Vec<u8>,
    pub(super) user: Option<String>,
}

impl Reply {
    pub(super) fn json(status: u16, body: &Value) -> Reply {
        Reply {
            status,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: serde_json::to_vec(body).unwrap_or_default(),
            user: None,
        }
    }

    pub(super) fn error(status: u16, code: &str, message: &str, detail: Value) -> Reply {
        Reply::json(
            status,
            &json!({"errors": [{"code": code, "message": message, "detail": detail}]}),
        )
    }

    pub(super) fn header(mut self, name: &str, value: impl Into<String>) -> Reply {
        self.headers.push((name.to_string(), value.into()));
        self
    }
}

/// Answers one request. hyper does the HTTP/1.1 (keep-alive, `Connection:
/// close`, HEAD without a body, malformed requests); a body over
/// [`MAX_BODY`] gets 413 and is not logged.
pub(super) async fn serve(
    state: Arc<Mutex<State>>,
    req: hyper::Request<Incoming>,
    peer: SocketAddr,
) -> Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let body = match Limited::new(body, MAX_BODY).collect().await {
        Ok(b) => b.to_bytes().to_vec(),
        Err(e) => {
            let status = if e.is::<http_body_util::LengthLimitError>() {
                413
            } else {
                400
            };
            return response(
                Reply::error(status, "UNSUPPORTED", reason(status), Value::Null),
                false,
            );
        }
    };
    let path = parts.uri.path();
    let query = parts.uri.query().unwrap_or("");
    let target = match parts.uri.query() {
        Some(q) => format!("{path}?{q}"),
        None => path.to_string(),
    };
    let req = Request {
        method: parts.method.as_str().to_ascii_uppercase(),
        path: percent_decode(path, false),
        query: parse_form(query),
        target,
        headers: parts
            .headers
            .iter()
            .map(|(k, v)| {
                let v = String::from_utf8_lossy(v.as_bytes()).trim().to_string();
                (k.as_str().to_string(), v)
            })
            .collect(),
        body,
    };
    let reply = handle(&state, &req, peer);
    response(reply, req.method == "HEAD")
}

/// The hyper response: `Docker-Distribution-Api-Version`, the reply's
/// headers and body. `Content-Length` is the body's, for HEAD too (hyper
/// sends no body for HEAD).
fn response(reply: Reply, head: bool) -> Response<Full<Bytes>> {
    let length = reply.body.len();
    let mut r = Response::new(Full::new(Bytes::from(reply.body)));
    *r.status_mut() =
        StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = r.headers_mut();
    headers.insert(
        "docker-distribution-api-version",
        HeaderValue::from_static("registry/2.0"),
    );
    if head {
        headers.insert(http::header::CONTENT_LENGTH, HeaderValue::from(length));
    }
    for (name, value) in reply.headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            headers.append(name, value);
        }
    }
    r
}

pub(super) fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        413 => "Payload Too Large",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        501 => "Not Implemented",
        _ => "Unknown",
    }
}

pub(super) fn parse_form(s: &str) -> Vec<(String, String)> {
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k, true), percent_decode(v, true))
        })
        .collect()
}

pub(super) fn percent_decode(s: &str, plus_is_space: bool) -> String {
    if plus_is_space {
        pullfix::encoding::form_decode(s)
    } else {
        pullfix::encoding::percent_decode(s)
    }
}

fn handle(state: &Mutex<State>, req: &Request, peer: SocketAddr) -> Reply {
    let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
    let reply = route(&mut st, req, peer);
    if st.log.len() >= LOG_CAP {
        st.log.pop_front();
    }
    st.log.push_back(RequestRecord {
        method: req.method.clone(),
        target: req.target.clone(),
        status: reply.status,
        user: reply.user.clone(),
    });
    reply
}
