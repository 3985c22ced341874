//! Authentication: Basic, Bearer tokens and the token endpoint, with the
//! challenges real registries send.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::wire::{Reply, Request};
use super::*;

/// Who is calling, once authenticated.
pub(super) enum Caller {
    Anonymous,
    User(String),
    Token { sub: String, repos: HashSet<String> },
}

impl Caller {
    pub(super) fn name(&self) -> Option<String> {
        match self {
            Caller::Anonymous => None,
            Caller::User(u) => Some(u.clone()),
            Caller::Token { sub, .. } => (!sub.is_empty()).then(|| sub.clone()),
        }
    }

    pub(super) fn may_pull(&self, repo: &str) -> bool {
        match self {
            Caller::Token { repos, .. } => repos.contains(repo),
            _ => true,
        }
    }
}

/// `None`: no Authorization header; `Some(None)`: not readable Basic;
/// `Some(Some((user, password)))`.
pub(super) fn basic_credentials(header: Option<&str>) -> Option<Option<(String, String)>> {
    let header = header?;
    let (scheme, value) = header.trim().split_once(' ').unwrap_or((header, ""));
    if !scheme.eq_ignore_ascii_case("basic") {
        return Some(None);
    }
    let decoded = STANDARD
        .decode(value.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok());
    Some(decoded.and_then(|s| {
        s.split_once(':')
            .map(|(u, p)| (u.to_string(), p.to_string()))
    }))
}

pub(super) fn check_password(st: &State, user: &str, password: &str) -> bool {
    st.behavior
        .users
        .get(user)
        .is_some_and(|p| constant_time_eq(p.as_bytes(), password.as_bytes()))
}

pub(super) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

pub(super) fn service(st: &State) -> &str {
    if st.behavior.service.is_empty() {
        DEFAULT_SERVICE
    } else {
        &st.behavior.service
    }
}

pub(super) fn realm(st: &State) -> &str {
    if st.behavior.realm.is_empty() {
        DEFAULT_REALM
    } else {
        &st.behavior.realm
    }
}

pub(super) fn token_realm(st: &State) -> String {
    match st.addr {
        Some(a) => format!("http://{a}/token"),
        None => "/token".to_string(),
    }
}

pub(super) fn basic_challenge(st: &State, message: &str) -> Reply {
    Reply::error(401, "UNAUTHORIZED", message, Value::Null)
        .header("WWW-Authenticate", format!("Basic realm=\"{}\"", realm(st)))
}

pub(super) fn bearer_challenge(st: &State, name: Option<&str>, error: Option<&str>) -> Reply {
    let mut challenge = format!(
        "Bearer realm=\"{}\",service=\"{}\"",
        token_realm(st),
        service(st)
    );
    if let Some(name) = name {
        challenge.push_str(&format!(",scope=\"repository:{name}:pull\""));
    }
    if let Some(error) = error {
        challenge.push_str(&format!(",error=\"{error}\""));
    }
    let detail = match name {
        Some(n) => json!([{"Type": "repository", "Name": n, "Action": "pull"}]),
        None => Value::Null,
    };
    Reply::error(401, "UNAUTHORIZED", "authentication required", detail)
        .header("WWW-Authenticate", challenge)
}

pub(super) fn insufficient_scope(st: &State, name: &str) -> Reply {
    bearer_challenge(st, Some(name), Some("insufficient_scope"))
}

pub(super) fn authenticate(
    st: &mut State,
    req: &Request,
    name: Option<&str>,
) -> Result<Caller, Reply> {
    match st.behavior.auth {
        AuthMode::Anonymous => Ok(Caller::Anonymous),
        AuthMode::Basic => match basic_credentials(req.header("authorization")) {
            Some(Some((user, password))) if check_password(st, &user, &password) => {
                Ok(Caller::User(user))
            }
            Some(Some(_)) if st.behavior.reject_with_403 => Err(Reply::error(
                403,
                "DENIED",
                "Your authorization token has expired. Reauthenticate and try again.",
                Value::Null,
            )),
            _ => Err(basic_challenge(st, "authentication required")),
        },
        AuthMode::Bearer => {
            let header = req.header("authorization").unwrap_or_default().trim();
            let Some(token) = header
                .split_once(' ')
                .filter(|(s, _)| s.eq_ignore_ascii_case("bearer"))
                .map(|(_, t)| t.trim())
            else {
                return Err(bearer_challenge(st, name, None));
            };
            let now = Instant::now();
            match st.tokens.get(token) {
                Some(g) if g.expires > now => Ok(Caller::Token {
                    sub: g.sub.clone(),
                    repos: g.repos.clone(),
                }),
                _ => Err(bearer_challenge(st, name, Some("invalid_token"))),
            }
        }
    }
}

pub(super) fn issue_token(
    st: &mut State,
    creds: Option<Option<(String, String)>>,
    scopes: &[String],
    oauth: bool,
) -> Reply {
    let sub = match creds {
        None => String::new(),
        Some(Some((user, password))) if check_password(st, &user, &password) => user,
        Some(Some(_)) => return basic_challenge(st, "incorrect username or password"),
        Some(None) => return basic_challenge(st, "malformed credentials"),
    };
    let mut repos = HashSet::new();
    for scope in scopes {
        // repository:NAME:ACTIONS (the name is between the first and last colon)
        let Some((kind, rest)) = scope.split_once(':') else {
            continue;
        };
        let Some((name, actions)) = rest.rsplit_once(':') else {
            continue;
        };
        let wants_pull = actions.split(',').any(|a| a == "pull" || a == "*");
        let allowed = !sub.is_empty() || st.behavior.public_repos.contains(name);
        if kind == "repository" && wants_pull && allowed {
            repos.insert(name.to_string());
        }
    }
    let now = Instant::now();
    st.tokens.retain(|_, g| g.expires > now);
    let bytes: [u8; 24] = rand::random();
    let token = format!("sandbox-{}", hex::encode(bytes));
    st.tokens.insert(
        token.clone(),
        Grant {
            sub,
            repos,
            expires: now + TOKEN_TTL,
        },
    );
    let issued = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let mut body = json!({
        "token": token,
        "access_token": token,
        "expires_in": TOKEN_TTL.as_secs(),
        "issued_at": issued,
    });
    if oauth {
        body["scope"] = json!(scopes.join(" "));
    }
    Reply::json(200, &body)
}
