//! Checks on what a person typed (flags, targets, names), pure: each
//! failure is one line saying what is wrong, and a `help:` line saying what
//! to type instead. The command line turns them into exit code 2.

use std::fmt;

/// A value from the command line that cannot be used. Displays as the
/// message, a newline and the `help:` line, the way every error of the
/// plugin reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    /// One line: what is wrong with which value.
    pub message: String,
    /// One line: what to type instead (without the `help: ` prefix).
    pub help: String,
}

impl Invalid {
    pub fn new(message: impl Into<String>, help: impl Into<String>) -> Invalid {
        Invalid {
            message: message.into(),
            help: help.into(),
        }
    }
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}\nhelp: {}", self.message, self.help)
    }
}

impl std::error::Error for Invalid {}

/// Why a file could not be read, in a few words.
pub fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.to_string(),
    }
}

/// A value as it is quoted in an error: control characters escaped (so the
/// message stays on one line) and long values cut to 60 characters.
pub fn shown(s: &str) -> String {
    shown_up_to(s, 60)
}

/// [`shown`] with another length limit (for whole messages).
pub fn shown_up_to(s: &str, max: usize) -> String {
    let count = s.chars().count();
    let cut: String = s.chars().take(max).collect();
    let escaped: String = cut
        .chars()
        .flat_map(|c| {
            let e: Vec<char> = if c.is_control() {
                c.escape_debug().collect()
            } else {
                vec![c]
            };
            e
        })
        .collect();
    if count > max {
        format!("{escaped}... ({count} characters)")
    } else {
        escaped
    }
}

/// Why `s` is not a DNS-1123 label (`[a-z0-9]([-a-z0-9]*[a-z0-9])?`, at most
/// 63 characters): namespace names, for example. `None` when it is one.
pub(crate) fn dns1123_label_problem(s: &str) -> Option<String> {
    if s.is_empty() {
        return Some("is empty".into());
    }
    let n = s.chars().count();
    if n > 63 {
        return Some(format!("is {n} characters long (at most 63)"));
    }
    label_chars_problem(s)
}

/// Why `s` is not a DNS-1123 subdomain (labels joined by `.`, at most 253
/// characters): the names of pods, deployments, secrets. `None` when it is.
pub(crate) fn dns1123_subdomain_problem(s: &str) -> Option<String> {
    if s.is_empty() {
        return Some("is empty".into());
    }
    let n = s.chars().count();
    if n > 253 {
        return Some(format!("is {n} characters long (at most 253)"));
    }
    s.split('.').find_map(|label| {
        if label.is_empty() {
            Some("has an empty part between dots".to_string())
        } else {
            label_chars_problem(label)
        }
    })
}

fn label_chars_problem(s: &str) -> Option<String> {
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        let what = if c.is_ascii_uppercase() {
            "an uppercase letter".to_string()
        } else {
            format!("`{}`", c.escape_debug())
        };
        return Some(format!(
            "contains {what} (only lowercase letters, digits and `-`)"
        ));
    }
    if s.starts_with('-') || s.ends_with('-') {
        return Some("starts or ends with `-`".into());
    }
    None
}

/// A namespace from `-n`: a DNS-1123 label. The empty string is accepted
/// and means the kubeconfig context's namespace, as kubectl reads `-n ""`.
pub fn namespace(s: &str) -> Result<String, Invalid> {
    if s.is_empty() {
        return Ok(String::new());
    }
    match dns1123_label_problem(s) {
        None => Ok(s.to_string()),
        Some(problem) => Err(Invalid::new(
            format!("namespace `{}` {problem}", shown(s)),
            "a namespace name is lowercase letters, digits and `-`, at most 63 characters (kubectl get namespaces lists them)",
        )),
    }
}

/// `NAMESPACE/NAME` of a secret (`--from-secret`).
pub fn namespaced_name(s: &str) -> Result<(String, String), Invalid> {
    let help = "write it as NAMESPACE/NAME, for example shop/regcred";
    let Some((ns, name)) = s.split_once('/') else {
        return Err(Invalid::new(
            format!("`{}` is not NAMESPACE/NAME", shown(s)),
            help,
        ));
    };
    if let Some(p) = dns1123_label_problem(ns) {
        return Err(Invalid::new(
            format!("namespace `{}` in `{}` {p}", shown(ns), shown(s)),
            help,
        ));
    }
    if let Some(p) = dns1123_subdomain_problem(name) {
        return Err(Invalid::new(
            format!("name `{}` in `{}` {p}", shown(name), shown(s)),
            help,
        ));
    }
    Ok((ns.to_string(), name.to_string()))
}

/// A name for a new object (`--secret-name`): a DNS-1123 subdomain.
pub fn object_name(s: &str) -> Result<String, Invalid> {
    match dns1123_subdomain_problem(s) {
        None => Ok(s.to_string()),
        Some(p) => Err(Invalid::new(
            format!("name `{}` {p}", shown(s)),
            "a Kubernetes name is lowercase letters, digits, `-` and `.`, at most 253 characters",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels() {
        assert_eq!(dns1123_label_problem("shop"), None);
        assert_eq!(dns1123_label_problem("a-1"), None);
        assert!(dns1123_label_problem("").is_some());
        assert!(dns1123_label_problem("-a").is_some());
        assert!(dns1123_label_problem("a-").is_some());
        assert!(dns1123_label_problem("Shop").unwrap().contains("uppercase"));
        assert!(dns1123_label_problem("a.b").is_some());
        assert!(
            dns1123_label_problem(&"a".repeat(64))
                .unwrap()
                .contains("64")
        );
        assert_eq!(dns1123_label_problem(&"a".repeat(63)), None);
    }

    #[test]
    fn subdomains() {
        assert_eq!(dns1123_subdomain_problem("checkout"), None);
        assert_eq!(dns1123_subdomain_problem("web.v2"), None);
        assert!(dns1123_subdomain_problem("a..b").is_some());
        assert!(dns1123_subdomain_problem("..").is_some());
        assert!(dns1123_subdomain_problem("a?x=1").unwrap().contains("`?`"));
        assert!(
            dns1123_subdomain_problem(&"a".repeat(300))
                .unwrap()
                .contains("300")
        );
    }

    #[test]
    fn namespaces() {
        assert_eq!(namespace("").unwrap(), "");
        assert_eq!(namespace("shop").unwrap(), "shop");
        let e = namespace("Shop_1").unwrap_err();
        assert!(e.to_string().contains("\nhelp: "), "{e}");
        assert!(namespace(&"n".repeat(64)).is_err());
    }

    #[test]
    fn shown_stays_on_one_line() {
        assert_eq!(shown("a\nb"), "a\\nb");
        assert_eq!(shown("it's"), "it's");
        let long = shown(&"x".repeat(300));
        assert!(long.ends_with("... (300 characters)"), "{long}");
    }

    #[test]
    fn secrets() {
        assert_eq!(
            namespaced_name("shop/regcred").unwrap(),
            ("shop".into(), "regcred".into())
        );
        assert!(namespaced_name("regcred").is_err());
        assert!(namespaced_name("shop/").is_err());
        assert!(namespaced_name("/x").is_err());
        assert!(namespaced_name("a/b/c").is_err());
    }
}
