//! Image references, parsed and normalized the way the container runtime does
//! (distribution's `reference.ParseNormalizedNamed`): an implicit
//! `docker.io/library/`, the default tag `latest`, digests, ports, and the
//! errors the kubelet reports as `InvalidImageName`.
//!
//! Pure code: no I/O. Both the simulated kubelet and the diagnosis use it, so
//! they agree on what an image string means.

use std::fmt;

/// Docker Hub's canonical domain in normalized references.
pub(crate) const DOCKER_HUB: &str = "docker.io";
/// Where Docker Hub's registry API actually lives.
pub(crate) const DOCKER_HUB_API: &str = "registry-1.docker.io";

/// A parsed, normalized image reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ImageRef {
    /// Registry host, with port when one was given (`docker.io`, `10.0.0.1:5000`).
    pub domain: String,
    /// Repository path inside the registry (`library/nginx`, `team/checkout`).
    pub repository: String,
    /// Tag, if the reference names one (or the implicit `latest`).
    pub tag: Option<String>,
    /// Digest (`sha256:...`), if pinned.
    pub digest: Option<String>,
    /// True when the tag was not written and `latest` was assumed.
    pub implicit_tag: bool,
    /// True when the registry was not written and Docker Hub was assumed.
    pub implicit_domain: bool,
}

/// Why a string is not a valid image reference. `Display` matches the text
/// the kubelet embeds in its `InspectFailed` event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReferenceError {
    /// Anything that does not fit the grammar.
    InvalidFormat,
    /// The repository part has uppercase letters.
    Uppercase { repository: String },
    /// A bare 64-hex string, which the runtime refuses as a name.
    HexIdentifier,
    /// The name part is longer than 255 characters.
    NameTooLong,
}

impl fmt::Display for ReferenceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReferenceError::InvalidFormat => f.write_str("invalid reference format"),
            ReferenceError::Uppercase { repository } => write!(
                f,
                "invalid reference format: repository name ({repository}) must be lowercase"
            ),
            ReferenceError::HexIdentifier => {
                f.write_str("invalid repository name, cannot specify 64-byte hexadecimal strings")
            }
            ReferenceError::NameTooLong => {
                f.write_str("repository name must not be more than 255 characters")
            }
        }
    }
}

impl std::error::Error for ReferenceError {}

impl ImageRef {
    /// Parses an image string as written in a pod spec.
    pub fn parse(input: &str) -> Result<ImageRef, ReferenceError> {
        parse_normalized(input)
    }

    /// The host the registry API is reached at (Docker Hub's differs from its
    /// name in references).
    pub fn api_host(&self) -> &str {
        if self.domain == DOCKER_HUB {
            DOCKER_HUB_API
        } else {
            &self.domain
        }
    }

    /// The manifest reference to ask the registry for: digest over tag.
    pub fn manifest_reference(&self) -> &str {
        self.digest
            .as_deref()
            .or(self.tag.as_deref())
            .unwrap_or("latest")
    }

    /// `domain/repository`, what the kubelet's keyring looks up.
    pub fn name(&self) -> String {
        format!("{}/{}", self.domain, self.repository)
    }

    /// True when the domain is Docker Hub.
    pub fn is_docker_hub(&self) -> bool {
        self.domain == DOCKER_HUB
    }
}

impl fmt::Display for ImageRef {
    /// The fully normalized form (`docker.io/library/nginx:1.25`), as the
    /// runtime prints it in its errors.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.domain, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

fn is_hex64(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

fn parse_normalized(input: &str) -> Result<ImageRef, ReferenceError> {
    if input.is_empty() {
        return Err(ReferenceError::InvalidFormat);
    }
    if is_hex64(input) {
        return Err(ReferenceError::HexIdentifier);
    }
    // Split off the digest first: it may contain ':'.
    let (name_and_tag, digest) = match input.split_once('@') {
        Some((left, digest)) => {
            if !valid_digest(digest) {
                return Err(ReferenceError::InvalidFormat);
            }
            (left, Some(digest.to_string()))
        }
        None => (input, None),
    };
    // A tag separator is a ':' after the last '/'.
    let last_slash = name_and_tag.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match name_and_tag[last_slash..].find(':') {
        Some(i) => {
            let split = last_slash + i;
            let tag = &name_and_tag[split + 1..];
            if !valid_tag(tag) {
                return Err(ReferenceError::InvalidFormat);
            }
            (&name_and_tag[..split], Some(tag.to_string()))
        }
        None => (name_and_tag, None),
    };
    if name.is_empty() {
        return Err(ReferenceError::InvalidFormat);
    }
    let (domain, remainder, implicit_domain) = split_domain(name);
    if remainder.to_lowercase() != remainder {
        // distribution checks this before the grammar, so `Nginx` is reported
        // as an uppercase problem rather than a generic format error.
        let repository = if implicit_domain && !remainder.contains('/') {
            format!("library/{remainder}")
        } else {
            remainder.to_string()
        };
        if remainder
            .split('/')
            .all(|c| valid_component(&c.to_lowercase()))
        {
            return Err(ReferenceError::Uppercase { repository });
        }
        return Err(ReferenceError::InvalidFormat);
    }
    if !valid_domain(&domain) || !remainder.split('/').all(valid_component) {
        return Err(ReferenceError::InvalidFormat);
    }
    let repository = if domain == DOCKER_HUB && !remainder.contains('/') {
        format!("library/{remainder}")
    } else {
        remainder.to_string()
    };
    if domain.len() + 1 + repository.len() > 255 {
        return Err(ReferenceError::NameTooLong);
    }
    let implicit_tag = tag.is_none() && digest.is_none();
    let tag = if implicit_tag {
        Some("latest".to_string())
    } else {
        tag
    };
    Ok(ImageRef {
        domain,
        repository,
        tag,
        digest,
        implicit_tag,
        implicit_domain,
    })
}

/// distribution's `splitDockerDomain`.
fn split_domain(name: &str) -> (String, &str, bool) {
    match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.to_lowercase() != first =>
        {
            let domain = if first == "index.docker.io" {
                DOCKER_HUB.to_string()
            } else {
                first.to_string()
            };
            (domain, rest, false)
        }
        _ => (DOCKER_HUB.to_string(), name, true),
    }
}

fn valid_component(c: &str) -> bool {
    // [a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*
    let b = c.as_bytes();
    if !(b.first().is_some_and(|&x| is_alnum(x)) && b.last().is_some_and(|&x| is_alnum(x))) {
        return false;
    }
    let mut i = 0;
    while let Some(&x) = b.get(i) {
        if is_alnum(x) {
            i += 1;
            continue;
        }
        let start = i;
        while b.get(i).is_some_and(|&x| !is_alnum(x)) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

fn is_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

fn valid_domain(d: &str) -> bool {
    // `[::1]` has colons but no port; `[::1]:5000` and `host:5000` do.
    let (host, port) = match d.rsplit_once(':') {
        Some((h, p)) if !p.contains(']') && (!h.starts_with('[') || h.ends_with(']')) => {
            (h, Some(p))
        }
        _ => (d, None),
    };
    if let Some(p) = port
        && (p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()))
    {
        return false;
    }
    if host.starts_with('[') && host.ends_with(']') {
        return host[1..host.len() - 1]
            .bytes()
            .all(|b| b.is_ascii_hexdigit() || b == b':');
    }
    !host.is_empty()
        && host.split('.').all(|label| {
            let b = label.as_bytes();
            b.first().is_some_and(u8::is_ascii_alphanumeric)
                && b.last().is_some_and(u8::is_ascii_alphanumeric)
                && b.iter().all(|x| x.is_ascii_alphanumeric() || *x == b'-')
        })
}

fn valid_tag(t: &str) -> bool {
    // [\w][\w.-]{0,127}
    let b = t.as_bytes();
    b.len() <= 128
        && b.first()
            .is_some_and(|x| x.is_ascii_alphanumeric() || *x == b'_')
        && b.iter()
            .all(|x| x.is_ascii_alphanumeric() || matches!(x, b'_' | b'.' | b'-'))
}

fn valid_digest(d: &str) -> bool {
    match d.split_once(':') {
        Some((alg, hex)) => {
            alg.as_bytes().first().is_some_and(u8::is_ascii_alphabetic)
                && alg
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'+' | b'.'))
                && hex.len() >= 32
                && hex.bytes().all(|b| b.is_ascii_hexdigit())
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(s: &str) -> String {
        ImageRef::parse(s).unwrap().to_string()
    }

    #[test]
    fn docker_hub_defaults() {
        assert_eq!(norm("nginx"), "docker.io/library/nginx:latest");
        assert_eq!(norm("nginx:1.25"), "docker.io/library/nginx:1.25");
        assert_eq!(norm("team/checkout:v1"), "docker.io/team/checkout:v1");
        assert_eq!(
            norm("index.docker.io/nginx"),
            "docker.io/library/nginx:latest"
        );
        let r = ImageRef::parse("nginx").unwrap();
        assert!(r.implicit_tag && r.implicit_domain && r.is_docker_hub());
        assert_eq!(r.api_host(), "registry-1.docker.io");
    }

    #[test]
    fn private_registries_ports_and_digests() {
        let r = ImageRef::parse("127.0.0.1:36500/team/checkout:v2.1.0").unwrap();
        assert_eq!(r.domain, "127.0.0.1:36500");
        assert_eq!(r.repository, "team/checkout");
        assert_eq!(r.tag.as_deref(), Some("v2.1.0"));
        assert!(!r.implicit_domain);
        let d = format!("sha256:{}", "a".repeat(64));
        let r = ImageRef::parse(&format!("localhost/app@{d}")).unwrap();
        assert_eq!(r.domain, "localhost");
        assert_eq!(r.tag, None);
        assert_eq!(r.manifest_reference(), d);
        let r = ImageRef::parse(&format!("reg.example.com/app:v1@{d}")).unwrap();
        assert_eq!(r.tag.as_deref(), Some("v1"));
        assert_eq!(r.manifest_reference(), d);
    }

    #[test]
    fn invalid_references() {
        assert_eq!(
            ImageRef::parse("Nginx:1.25").unwrap_err().to_string(),
            "invalid reference format: repository name (library/Nginx) must be lowercase"
        );
        assert_eq!(
            ImageRef::parse("nginx:").unwrap_err(),
            ReferenceError::InvalidFormat
        );
        assert_eq!(
            ImageRef::parse("nginx::1").unwrap_err(),
            ReferenceError::InvalidFormat
        );
        assert_eq!(
            ImageRef::parse("-nginx").unwrap_err(),
            ReferenceError::InvalidFormat
        );
        assert_eq!(
            ImageRef::parse("a b").unwrap_err(),
            ReferenceError::InvalidFormat
        );
        assert_eq!(
            ImageRef::parse(&"a".repeat(64)).unwrap_err(),
            ReferenceError::HexIdentifier
        );
        assert_eq!(
            ImageRef::parse("app@sha256:abc").unwrap_err(),
            ReferenceError::InvalidFormat
        );
    }

    #[test]
    fn ipv6_registries() {
        assert_eq!(ImageRef::parse("[::1]/app:v1").unwrap().domain, "[::1]");
        assert_eq!(
            ImageRef::parse("[::1]:5000/app:v1").unwrap().domain,
            "[::1]:5000"
        );
    }

    #[test]
    fn uppercase_domain_is_a_domain() {
        // An uppercase first component is taken as a registry host.
        let r = ImageRef::parse("Registry.Example.com/app:v1").unwrap();
        assert_eq!(r.domain, "Registry.Example.com");
    }
}
