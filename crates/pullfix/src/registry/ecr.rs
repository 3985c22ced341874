//! Amazon ECR registry hosts, parsed in one place: which hosts are ECR, and
//! their account, region and kind. Every form a pod's image can name:
//!
//! | form | example |
//! |---|---|
//! | private | `123456789012.dkr.ecr.eu-west-1.amazonaws.com` |
//! | private, FIPS | `123456789012.dkr.ecr-fips.us-east-1.amazonaws.com` |
//! | private, China | `123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn` |
//! | private, dual-stack | `123456789012.dkr-ecr.eu-west-1.on.aws` (FIPS: `dkr-ecr-fips`) |
//! | private, dual-stack China | `123456789012.dkr-ecr.cn-north-1.on.amazonwebservices.com.cn` |
//! | private, GovCloud / ISO / EU sovereign | `….dkr.ecr.us-gov-west-1.amazonaws.com`, `….c2s.ic.gov`, `….sc2s.sgov.gov`, `….amazonaws.eu` |
//! | ECR Public | `public.ecr.aws` (dual-stack `ecr-public.aws`) |
//!
//! plus an optional `:port`, in any letter case. The kubelet's
//! `ecr-credential-provider` matches the same private forms. A pull-through
//! cache repository lives on a private host under its rule's prefix
//! (`…/docker-hub/library/nginx`); [`pull_through_upstream`] guesses the
//! upstream from AWS's default prefixes (the rules themselves are read with
//! `DescribePullThroughCacheRules`).
//!
//! Pure code.

/// Which ECR a host belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EcrKind {
    /// A private registry: `<account>.dkr.ecr.<region>.…`; tokens from
    /// `GetAuthorizationToken` last 12 hours.
    Private,
    /// ECR Public (`public.ecr.aws`): anonymous pulls work (rate-limited);
    /// a stale token is worse than none.
    Public,
}

/// An ECR registry host, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EcrHost {
    pub kind: EcrKind,
    /// The 12-digit account (registry id); `None` for ECR Public.
    pub account: Option<String>,
    /// The region; ECR Public's is `us-east-1` (where its tokens come from).
    pub region: String,
    /// A FIPS endpoint (`dkr.ecr-fips`, `dkr-ecr-fips`).
    pub fips: bool,
    /// A dual-stack (IPv4 and IPv6) endpoint (`dkr-ecr.….on.aws`).
    pub dual_stack: bool,
    /// The DNS suffix after the region: `amazonaws.com`, `amazonaws.com.cn`, `on.aws`, ...
    pub suffix: String,
}

/// The DNS suffixes of private registries, and whether each is dual-stack.
/// `api.aws` is the dual-stack API's suffix; accepted for registries too.
const SUFFIXES: &[(&str, bool)] = &[
    ("amazonaws.com", false),
    ("amazonaws.com.cn", false),
    ("on.aws", true),
    ("api.aws", true),
    ("on.amazonwebservices.com.cn", true),
    ("c2s.ic.gov", false),
    ("sc2s.sgov.gov", false),
    ("cloud.adc-e.uk", false),
    ("csp.hci.ic.gov", false),
    ("amazonaws.eu", false),
];

/// Parses a registry host (`domain` of an image reference, or a pull
/// secret's key host). `None` when it is not ECR.
pub(crate) fn parse_host(host: &str) -> Option<EcrHost> {
    let host = host.trim().to_ascii_lowercase();
    let host = host.strip_suffix('.').unwrap_or(&host);
    let host = match host.rsplit_once(':') {
        Some((h, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => h,
        Some(_) => return None,
        None => host,
    };
    if host == "public.ecr.aws" || host == "ecr-public.aws" {
        return Some(EcrHost {
            kind: EcrKind::Public,
            account: None,
            region: "us-east-1".into(),
            fips: false,
            dual_stack: host == "ecr-public.aws",
            suffix: host.split_once('.').map(|(_, s)| s).unwrap_or(host).into(),
        });
    }
    // ACCOUNT.SERVICE.REGION.SUFFIX
    let (account, rest) = host.split_once('.')?;
    if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (service, rest) = rest.split_once('.')?;
    let (service, fips) = match service.strip_suffix("-fips") {
        Some(s) => (s, true),
        None => (service, false),
    };
    // `dkr.ecr` is two labels, `dkr-ecr` one.
    let (dashed, rest) = match service {
        "dkr-ecr" => (true, rest),
        "dkr" => {
            let (ecr, rest) = rest.split_once('.')?;
            let fips_here = ecr == "ecr-fips";
            if ecr != "ecr" && !fips_here {
                return None;
            }
            return finish(account, rest, fips || fips_here, false);
        }
        _ => return None,
    };
    finish(account, rest, fips, dashed)
}

fn finish(account: &str, rest: &str, fips: bool, dashed: bool) -> Option<EcrHost> {
    let (region, suffix) = rest.split_once('.')?;
    let region_ok = !region.is_empty()
        && region.len() <= 32
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && region.contains('-')
        && !region.starts_with('-')
        && !region.ends_with('-');
    let &(_, dual) = SUFFIXES.iter().find(|(s, _)| *s == suffix)?;
    if !region_ok || (dual && !dashed) {
        return None;
    }
    Some(EcrHost {
        kind: EcrKind::Private,
        account: Some(account.to_string()),
        region: region.to_string(),
        fips,
        dual_stack: dual,
        suffix: suffix.to_string(),
    })
}

/// True for a private ECR registry host (any form above): where ECR tokens,
/// `GetAuthorizationToken` and the ECR API apply.
pub fn is_private_host(host: &str) -> bool {
    parse_host(host).is_some_and(|h| h.kind == EcrKind::Private)
}

/// The region of a private ECR host.
pub fn region(host: &str) -> Option<String> {
    parse_host(host)
        .filter(|h| h.kind == EcrKind::Private)
        .map(|h| h.region)
}

/// The upstream a pull-through cache repository probably mirrors, from the
/// first path segment when it is one of the default prefixes AWS's console
/// proposes (`docker-hub/library/nginx` → `registry-1.docker.io`). A guess:
/// a rule's prefix can be anything, and `DescribePullThroughCacheRules`
/// tells for sure.
#[cfg(test)]
pub(crate) fn pull_through_upstream(repository: &str) -> Option<&'static str> {
    let (prefix, rest) = repository.split_once('/')?;
    if rest.is_empty() {
        return None;
    }
    Some(match prefix {
        "docker-hub" => "registry-1.docker.io",
        "ecr-public" => "public.ecr.aws",
        "quay" => "quay.io",
        "k8s" | "registry-k8s-io" => "registry.k8s.io",
        "github" | "ghcr" => "ghcr.io",
        "gitlab" => "registry.gitlab.com",
        "azure" => "azurecr.io",
        "chainguard" => "cgr.dev",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn private(host: &str) -> EcrHost {
        let h = parse_host(host).unwrap_or_else(|| panic!("{host} is ECR"));
        assert_eq!(h.kind, EcrKind::Private, "{host}");
        assert_eq!(h.account.as_deref(), Some("123456789012"), "{host}");
        h
    }

    #[test]
    fn commercial() {
        let h = private("123456789012.dkr.ecr.eu-west-1.amazonaws.com");
        assert_eq!(h.region, "eu-west-1");
        assert!(!h.fips && !h.dual_stack);
        assert_eq!(h.suffix, "amazonaws.com");
    }

    #[test]
    fn with_port_case_and_trailing_dot() {
        assert_eq!(
            private("123456789012.dkr.ecr.us-east-1.amazonaws.com:443").region,
            "us-east-1"
        );
        assert_eq!(
            private("123456789012.DKR.ECR.US-EAST-1.AMAZONAWS.COM").region,
            "us-east-1"
        );
        assert_eq!(
            private("123456789012.dkr.ecr.us-east-1.amazonaws.com.").region,
            "us-east-1"
        );
    }

    #[test]
    fn fips() {
        let h = private("123456789012.dkr.ecr-fips.us-east-1.amazonaws.com");
        assert!(h.fips && !h.dual_stack);
        assert_eq!(h.region, "us-east-1");
        let h = private("123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com");
        assert!(h.fips);
        assert_eq!(h.region, "us-gov-west-1");
    }

    #[test]
    fn china() {
        let h = private("123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn");
        assert_eq!(h.region, "cn-north-1");
        assert_eq!(h.suffix, "amazonaws.com.cn");
    }

    #[test]
    fn dual_stack() {
        let h = private("123456789012.dkr-ecr.eu-west-1.on.aws");
        assert!(h.dual_stack && !h.fips);
        assert_eq!(h.region, "eu-west-1");
        let h = private("123456789012.dkr-ecr-fips.us-east-1.on.aws");
        assert!(h.dual_stack && h.fips);
        let h = private("123456789012.dkr-ecr.us-west-2.api.aws");
        assert!(h.dual_stack);
        let h = private("123456789012.dkr-ecr.cn-northwest-1.on.amazonwebservices.com.cn");
        assert!(h.dual_stack);
        assert_eq!(h.region, "cn-northwest-1");
        // The credential provider's pattern also takes `dkr-ecr` on amazonaws.com.
        assert!(!private("123456789012.dkr-ecr.us-east-1.amazonaws.com").dual_stack);
    }

    #[test]
    fn govcloud_iso_and_sovereign() {
        assert_eq!(
            private("123456789012.dkr.ecr.us-gov-east-1.amazonaws.com").region,
            "us-gov-east-1"
        );
        assert_eq!(
            private("123456789012.dkr.ecr.us-iso-east-1.c2s.ic.gov").region,
            "us-iso-east-1"
        );
        assert_eq!(
            private("123456789012.dkr.ecr.us-isob-east-1.sc2s.sgov.gov").region,
            "us-isob-east-1"
        );
        assert_eq!(
            private("123456789012.dkr.ecr.eusc-de-east-1.amazonaws.eu").region,
            "eusc-de-east-1"
        );
    }

    #[test]
    fn public() {
        let h = parse_host("public.ecr.aws").unwrap();
        assert_eq!(h.kind, EcrKind::Public);
        assert_eq!(h.account, None);
        assert_eq!(h.region, "us-east-1");
        assert!(parse_host("ecr-public.aws").unwrap().dual_stack);
        assert!(!is_private_host("public.ecr.aws"));
        assert_eq!(region("public.ecr.aws"), None);
    }

    #[test]
    fn pull_through_cache() {
        // Same host as any private repository; the prefix says which upstream.
        assert!(is_private_host(
            "123456789012.dkr.ecr.us-east-1.amazonaws.com"
        ));
        assert_eq!(
            pull_through_upstream("docker-hub/library/nginx"),
            Some("registry-1.docker.io")
        );
        assert_eq!(
            pull_through_upstream("ecr-public/nginx/nginx"),
            Some("public.ecr.aws")
        );
        assert_eq!(
            pull_through_upstream("quay/prometheus/node-exporter"),
            Some("quay.io")
        );
        assert_eq!(pull_through_upstream("k8s/pause"), Some("registry.k8s.io"));
        assert_eq!(pull_through_upstream("github/org/app"), Some("ghcr.io"));
        assert_eq!(pull_through_upstream("shop/checkout"), None);
        assert_eq!(pull_through_upstream("docker-hub"), None);
    }

    #[test]
    fn not_ecr() {
        for host in [
            "registry.example.com",
            "docker.io",
            "12345.dkr.ecr.us-east-1.amazonaws.com",
            "1234567890123.dkr.ecr.us-east-1.amazonaws.com",
            "abcdefghijkl.dkr.ecr.us-east-1.amazonaws.com",
            "123456789012.dkr.ecr.us-east-1.amazonaws.com.evil.example",
            "123456789012.dkr.ecr.us-east-1.example.com",
            "123456789012.dkr.ecr..amazonaws.com",
            "123456789012.dkr.ecr.amazonaws.com",
            "123456789012.dkr.ecr.us-east-1.on.aws",
            "123456789012.ecr.us-east-1.amazonaws.com",
            "123456789012.dkr.ecr.us-east-1.amazonaws.com:https",
            "ecr.us-east-1.api.aws",
            "api.ecr.us-east-1.amazonaws.com",
            "public.ecr.aws.example",
            "",
        ] {
            assert_eq!(parse_host(host), None, "{host}");
            assert!(!is_private_host(host), "{host}");
        }
    }

    mod props {
        use super::super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn never_panics(s in "\\PC{0,80}") {
                let _ = parse_host(&s);
                let _ = pull_through_upstream(&s);
            }

            #[test]
            fn private_forms_parse(
                region in "[a-z]{2}(-[a-z]{2,6}){1,2}-[0-9]",
                service in prop_oneof![Just("dkr.ecr"), Just("dkr.ecr-fips"), Just("dkr-ecr"), Just("dkr-ecr-fips")],
                suffix in prop_oneof![Just("amazonaws.com"), Just("amazonaws.com.cn"), Just("on.aws")],
            ) {
                let host = format!("123456789012.{service}.{region}.{suffix}");
                let parsed = parse_host(&host);
                if suffix == "on.aws" && !service.starts_with("dkr-ecr") {
                    prop_assert_eq!(parsed, None);
                } else {
                    let h = parsed.unwrap();
                    prop_assert_eq!(h.region, region);
                    prop_assert_eq!(h.fips, service.ends_with("fips"));
                }
            }
        }
    }
}
