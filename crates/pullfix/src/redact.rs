//! Redaction of log output (`-v` … `-vvv`): the libraries underneath log
//! request URLs and sometimes headers, and a kubeconfig can put a
//! credential where no library expects one (a token in the server URL's
//! path, as the sandbox and some proxies do; a password in the URL's
//! userinfo). Every log line goes through [`redact`] before it is written.
//!
//! Two kinds of rules:
//! - the secrets this run knows ([`register`]): the kubeconfig's token and
//!   password, and the token-like segments of the API server URL's path;
//!   every occurrence is replaced;
//! - shapes that carry a credential wherever they appear: `Authorization`
//!   headers, `token=`-style query parameters and JSON fields, and the
//!   userinfo of URLs (`https://user:password@host`).
//!
//! [`redact_with`] is pure; the registry is the one piece of state.

use std::sync::RwLock;

/// What replaces a credential.
pub const MASK: &str = "[redacted]";

/// Secrets shorter than this are not registered: replacing every `abc` in
/// the log would hide more than it protects.
const MIN_SECRET_LEN: usize = 6;

static SECRETS: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// Remembers a secret value so every later log line hides it.
pub fn register(secret: &str) {
    let secret = secret.trim();
    if secret.chars().count() < MIN_SECRET_LEN {
        return;
    }
    if let Ok(mut list) = SECRETS.write()
        && !list.iter().any(|s| s == secret)
    {
        list.push(secret.to_string());
        // Longest first, so a secret containing another is hidden whole.
        list.sort_by_key(|s| std::cmp::Reverse(s.len()));
    }
}

/// Registers what in an API server URL could be a credential: the
/// userinfo's password (or a bare userinfo, often a token) and every
/// token-like path segment (the sandbox and some proxies route on
/// `/…/TOKEN/`). Query parameters are covered by the shapes.
pub fn register_url(url: &str) {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    if let Some((userinfo, _)) = authority.rsplit_once('@') {
        match userinfo.split_once(':') {
            Some((_, password)) => register(password),
            None => register(userinfo),
        }
    }
    let path = path.split(['?', '#']).next().unwrap_or_default();
    for segment in path.split('/') {
        if token_like(segment) {
            register(segment);
        }
    }
}

/// A path segment that reads as a credential rather than a name: long,
/// from a token alphabet, with digits and letters mixed (names such as
/// `clusters` or `kubernetes-api` stay).
fn token_like(s: &str) -> bool {
    s.len() >= 16
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.~+=%".contains(c))
        && s.chars().any(|c| c.is_ascii_digit())
        && s.chars().any(|c| c.is_ascii_alphabetic())
}

/// A log line with every known secret and credential shape hidden.
pub fn redact(text: &str) -> String {
    let secrets = SECRETS.read().map(|l| l.clone()).unwrap_or_default();
    redact_with(text, &secrets)
}

/// Query parameters and JSON fields whose value is a credential
/// (compared case-insensitively).
const SECRET_KEYS: &[&str] = &[
    "token",
    "access_token",
    "id_token",
    "refresh_token",
    "identitytoken",
    "registrytoken",
    "authorizationtoken",
    "password",
    "passwd",
    "secret",
    "client_secret",
    "api_key",
    "apikey",
    "auth",
    "signature",
    "x-amz-signature",
    "x-amz-security-token",
    "x-amz-credential",
];

/// [`redact`] with the secrets given. Pure.
pub fn redact_with(text: &str, secrets: &[String]) -> String {
    let mut out = text.to_string();
    for s in secrets {
        if s.len() >= MIN_SECRET_LEN && out.contains(s.as_str()) {
            out = out.replace(s.as_str(), MASK);
        }
    }
    let out = mask_authorization(&out);
    let out = mask_keyed_values(&out);
    mask_userinfo(&out)
}

/// Ends a value: quotes, separators, brackets, whitespace.
fn value_end(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '"' | '\'' | '&' | ',' | ';' | '}' | ']' | ')' | '>' | '#'
        )
}

/// `Authorization: Bearer xyz`, `"authorization": "Basic xyz"`,
/// `authorization=AWS4-HMAC-SHA256 Credential=…`: the scheme stays, the
/// rest of the value goes (up to its closing quote or the end of the line).
fn mask_authorization(text: &str) -> String {
    let lower = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while let Some(found) = lower[i..].find("authorization") {
        let start = i + found;
        let mut j = start + "authorization".len();
        // Only the header and its value (`authorization: …`,
        // `"authorization": "…"`, `authorization=…`), not prose.
        let bytes = text.as_bytes();
        let mut quote = None;
        if matches!(bytes.get(j), Some(b'"' | b'\'')) {
            j += 1;
        }
        while bytes.get(j) == Some(&b' ') {
            j += 1;
        }
        if !matches!(bytes.get(j), Some(b':' | b'=')) {
            out.push_str(&text[i..j]);
            i = j;
            continue;
        }
        j += 1;
        while bytes.get(j) == Some(&b' ') {
            j += 1;
        }
        let Some(&c) = bytes.get(j) else {
            break;
        };
        if matches!(c, b'"' | b'\'') {
            quote = Some(c);
            j += 1;
        }
        out.push_str(&text[i..j]);
        // Keep the scheme word when one is followed by a space.
        let value_start = j;
        let scheme_end = text[value_start..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
            .map_or(text.len(), |k| value_start + k);
        if scheme_end > value_start && bytes.get(scheme_end) == Some(&b' ') {
            out.push_str(&text[value_start..=scheme_end]);
            j = scheme_end + 1;
        }
        let end = match quote {
            Some(q) => text[j..]
                .find(|c: char| c as u32 == u32::from(q) || c == '\n')
                .map_or(text.len(), |k| j + k),
            None => text[j..].find('\n').map_or(text.len(), |k| j + k),
        };
        if end > j {
            out.push_str(MASK);
        }
        i = end;
    }
    out.push_str(&text[i..]);
    out
}

/// `?token=xyz`, `&password=xyz`, `"token":"xyz"`, `"auth": "xyz"`: the
/// key stays, its value goes.
fn mask_keyed_values(text: &str) -> String {
    let lower = text.to_ascii_lowercase();
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let mut k = 0;
    while let Some(c) = bytes.get(k) {
        // A key starts after a boundary.
        let boundary = k
            .checked_sub(1)
            .and_then(|p| bytes.get(p))
            .is_none_or(|&b| matches!(b, b'?' | b'&' | b';' | b' ' | b'"' | b'{' | b',' | b'\''));
        if !boundary || !c.is_ascii_alphabetic() {
            k += 1;
            continue;
        }
        let Some(key) = SECRET_KEYS.iter().find(|key| {
            lower[k..].starts_with(**key) && {
                let after = bytes.get(k + key.len()).copied();
                matches!(after, Some(b'=' | b'"' | b':' | b'\''))
            }
        }) else {
            k += 1;
            continue;
        };
        let mut j = k + key.len();
        // `key=`, `key":`, `key": "`, `key: `
        if matches!(bytes.get(j), Some(b'"' | b'\'')) {
            j += 1;
        }
        let sep = j;
        while matches!(bytes.get(j), Some(b'=' | b':' | b' ')) {
            j += 1;
        }
        let first = match bytes.get(j) {
            Some(&c) if j != sep => c,
            _ => {
                k = j.max(k + 1);
                continue;
            }
        };
        let quoted = matches!(first, b'"' | b'\'');
        if quoted {
            j += 1;
        }
        let end = if quoted {
            let q = first as char;
            text[j..].find([q, '\n']).map_or(text.len(), |e| j + e)
        } else {
            text[j..].find(value_end).map_or(text.len(), |e| j + e)
        };
        // `"auth": {` or `token=` with nothing: not a value to hide.
        if end > j && !matches!(bytes.get(j), Some(b'{' | b'[')) {
            out.push_str(&text[i..j]);
            out.push_str(MASK);
            i = end;
        }
        k = end.max(k + 1);
    }
    out.push_str(&text[i..]);
    out
}

/// `scheme://user:password@host` → `scheme://user:[redacted]@host`, and a
/// bare `scheme://token@host` → `scheme://[redacted]@host`.
fn mask_userinfo(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while let Some(found) = text[i..].find("://") {
        let auth_start = i + found + 3;
        let auth_end = text[auth_start..]
            .find(|c: char| c == '/' || c == '?' || c == '#' || value_end(c))
            .map_or(text.len(), |k| auth_start + k);
        out.push_str(&text[i..auth_start]);
        let authority = &text[auth_start..auth_end];
        match authority.rsplit_once('@') {
            Some((userinfo, host)) if !userinfo.is_empty() && !userinfo.contains(MASK) => {
                match userinfo.split_once(':') {
                    Some((user, _)) => out.push_str(&format!("{user}:{MASK}@{host}")),
                    None => out.push_str(&format!("{MASK}@{host}")),
                }
            }
            _ => out.push_str(authority),
        }
        i = auth_end;
    }
    out.push_str(&text[i..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(text: &str) -> String {
        redact_with(text, &["LL8UEoBjFZ746Cpi9zuSzfTzzwDVYzmy".to_string()])
    }

    #[test]
    fn a_registered_token_in_a_url_path_is_hidden() {
        let line = "DEBUG HTTP{http.method=GET http.url=http://127.0.0.1:44283/u/LL8UEoBjFZ746Cpi9zuSzfTzzwDVYzmy/api/v1/pods?limit=500}: requesting";
        let out = r(line);
        assert!(!out.contains("LL8UEo"), "{out}");
        assert!(out.contains("/u/[redacted]/api/v1/pods?limit=500"), "{out}");
    }

    #[test]
    fn authorization_headers_keep_the_scheme_only() {
        for (line, kept) in [
            (
                "authorization: Bearer abc.def.ghi",
                "authorization: Bearer [redacted]",
            ),
            (
                r#"headers: {"authorization": "Basic dXNlcjpwYXNz", "accept": "*/*"}"#,
                r#"{"authorization": "Basic [redacted]", "accept": "*/*"}"#,
            ),
            (
                "Authorization=AWS4-HMAC-SHA256 Credential=AKIA/x, Signature=abc",
                "Authorization=AWS4-HMAC-SHA256 [redacted]",
            ),
            ("Authorization: sometoken123", "Authorization: [redacted]"),
        ] {
            let out = r(line);
            assert!(out.contains(kept), "{line} -> {out}");
            for secret in ["abc.def", "dXNlcjpwYXNz", "AKIA", "sometoken123"] {
                assert!(!out.contains(secret), "{line} -> {out}");
            }
        }
        // Words that merely contain it stay.
        assert_eq!(r("authorization failed"), "authorization failed");
    }

    #[test]
    fn secret_query_parameters_and_json_fields_are_hidden() {
        let cases = [
            (
                "GET https://r.example/v2/token?service=r&token=s3cr3t&x=1",
                "s3cr3t",
            ),
            ("GET /auth?access_token=s3cr3t", "s3cr3t"),
            (
                "url=https://b.s3.amazonaws.com/x?X-Amz-Signature=s3cr3t&X-Amz-Security-Token=s3cr3t2",
                "s3cr3t",
            ),
            (r#"body: {"token":"s3cr3t","expires_in":300}"#, "s3cr3t"),
            (
                r#"{"auths":{"r.example":{"auth": "dXNlcjpwYXNz"}}}"#,
                "dXNlcjpwYXNz",
            ),
            (r#"{"password": "hunter22"}"#, "hunter22"),
            (r#"{"authorizationToken":"QVdTOnh5eg=="}"#, "QVdTOnh5eg=="),
        ];
        for (line, secret) in cases {
            let out = r(line);
            assert!(!out.contains(secret), "{line} -> {out}");
            assert!(out.contains(MASK), "{line} -> {out}");
        }
        let out = r("GET /v2/token?service=r&scope=repository:team/app:pull");
        assert_eq!(
            out,
            "GET /v2/token?service=r&scope=repository:team/app:pull"
        );
        // `"auths": {` is structure, not a value.
        assert!(r(r#"{"auths": {"r": 1}}"#).contains(r#""auths": {"r": 1}"#));
    }

    #[test]
    fn userinfo_in_urls_is_hidden() {
        assert_eq!(
            r("connecting to https://bob:hunter22@registry.example:5000/v2/"),
            "connecting to https://bob:[redacted]@registry.example:5000/v2/"
        );
        assert_eq!(
            r("proxy http://ghp_token123@proxy:3128"),
            "proxy http://[redacted]@proxy:3128"
        );
        assert_eq!(r("http://127.0.0.1:80/api"), "http://127.0.0.1:80/api");
    }

    #[test]
    fn token_like_segments_of_the_server_url_are_registered() {
        assert!(token_like("LL8UEoBjFZ746Cpi9zuSzfTzzwDVYzmy"));
        assert!(token_like("c-m-abcd1234efgh5678"));
        for name in ["clusters", "k8s", "api", "kubernetes-api-server", "u"] {
            assert!(!token_like(name), "{name}");
        }
    }

    #[test]
    fn nothing_to_hide_leaves_the_line_as_it_was() {
        let line = "INFO pullfix::scan: 3 failing pods in namespace shop (deploy/checkout)";
        assert_eq!(r(line), line);
        let unicode = "naïve → ≠ disagrees: token";
        assert_eq!(r(unicode), unicode);
    }
}
