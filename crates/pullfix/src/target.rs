//! What `diagnose` and `fix` are pointed at: `deploy/checkout`, a bare pod
//! name, or everything failing in scope. Pure: the text is checked the way
//! kubectl checks `TYPE/NAME` before anything is sent to the cluster, so a
//! typo is a one-line error with the valid forms, not an empty result (and
//! never a path like `deploy/../secrets/regcred` spliced into a URL).

use crate::input::{Invalid, dns1123_subdomain_problem, shown};
use crate::scan::Group;

/// What to diagnose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Every failing workload in scope.
    All,
    /// A workload (`deploy/NAME`, `sts/NAME`, `ds/NAME`, `job/NAME`, `cronjob/NAME`) or a pod name.
    Named { kind: String, name: String },
}

/// The kinds a target can name: the kind, then what kubectl accepts for it
/// (short name, singular, plural; each also as `plural.group` and
/// `singular.version.group`, e.g. `deployments.apps`, `deployment.v1.apps`).
const KINDS: &[(&str, &[&str], &str, &str)] = &[
    ("Pod", &["po", "pod", "pods"], "", "v1"),
    (
        "Deployment",
        &["deploy", "deployment", "deployments"],
        "apps",
        "v1",
    ),
    (
        "StatefulSet",
        &["sts", "statefulset", "statefulsets"],
        "apps",
        "v1",
    ),
    (
        "DaemonSet",
        &["ds", "daemonset", "daemonsets"],
        "apps",
        "v1",
    ),
    (
        "ReplicaSet",
        &["rs", "replicaset", "replicasets"],
        "apps",
        "v1",
    ),
    ("Job", &["job", "jobs"], "batch", "v1"),
    ("CronJob", &["cj", "cronjob", "cronjobs"], "batch", "v1"),
];

const KINDS_HELP: &str = "use a pod name or KIND/NAME with KIND one of pod (po), deploy (deployment), sts (statefulset), ds (daemonset), rs (replicaset), job, cronjob (cj); deployments.apps and deployment.v1.apps work too";

/// The kind for what kubectl accepts as a resource type: `deploy`,
/// `Deployments`, `deployments.apps`, `deployment.v1.apps`, `pods`.
fn kind_of(word: &str) -> Option<&'static str> {
    let word = word.to_ascii_lowercase();
    let (resource, rest) = match word.split_once('.') {
        Some((r, rest)) => (r, Some(rest)),
        None => (word.as_str(), None),
    };
    KINDS.iter().find_map(|(kind, names, group, version)| {
        if !names.contains(&resource) {
            return None;
        }
        let fits = match rest {
            None => true,
            // `deployments.apps`, `deployment.v1.apps`; the core group has
            // no name, so only `pods.v1.` style would fit and nobody types it.
            Some(rest) => {
                !group.is_empty()
                    && (rest == *group || rest.split_once('.') == Some((version, group)))
            }
        };
        fits.then_some(*kind)
    })
}

impl Target {
    /// Parses `deploy/checkout`, `statefulset/db`, `deployments.apps/web`,
    /// `pod/x` or a bare pod name, refusing what kubectl would refuse.
    pub fn parse(s: &str) -> Result<Target, Invalid> {
        let example = "for example deploy/checkout, sts/db or a pod name like web-7d9f-abcde";
        if s.trim().is_empty() {
            return Err(Invalid::new("the target is empty", example));
        }
        if s.matches('/').count() > 1 {
            return Err(Invalid::new(
                format!(
                    "target `{}` has more than one `/` (it is KIND/NAME)",
                    shown(s)
                ),
                example,
            ));
        }
        let (kind, name) = match s.split_once('/') {
            Some((k, n)) => {
                let Some(kind) = kind_of(k) else {
                    return Err(Invalid::new(
                        format!("unsupported target kind `{}` in `{}`", shown(k), shown(s)),
                        KINDS_HELP,
                    ));
                };
                (kind, n)
            }
            None => ("Pod", s),
        };
        if name.is_empty() {
            return Err(Invalid::new(
                format!("target `{}` has no name after the `/`", shown(s)),
                example,
            ));
        }
        if let Some(problem) = dns1123_subdomain_problem(name) {
            let hint = if s.contains('/') {
                "a name is lowercase letters, digits, `-` and `.`, at most 253 characters (kubectl get KIND lists them)".to_string()
            } else {
                format!("a bare name is a pod; for a workload write KIND/NAME ({KINDS_HELP})")
            };
            return Err(Invalid::new(
                format!("invalid name `{}` in target: it {problem}", shown(name)),
                hint,
            ));
        }
        Ok(Target::Named {
            kind: kind.into(),
            name: name.into(),
        })
    }

    /// Whether a failing group is (or holds) this target.
    pub(crate) fn matches(&self, g: &Group) -> bool {
        match self {
            Target::All => true,
            Target::Named { kind, name } if kind == "Pod" => g.pods.iter().any(|p| p == name),
            Target::Named { kind, name } => g.workload.kind == *kind && g.workload.name == *name,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(kind: &str, name: &str) -> Target {
        Target::Named {
            kind: kind.into(),
            name: name.into(),
        }
    }

    #[test]
    fn kubectl_forms() {
        let ok = |s: &str| Target::parse(s).unwrap();
        assert_eq!(ok("deploy/checkout"), named("Deployment", "checkout"));
        assert_eq!(ok("Deployment/checkout"), named("Deployment", "checkout"));
        assert_eq!(
            ok("deployments.apps/checkout"),
            named("Deployment", "checkout")
        );
        assert_eq!(
            ok("deployment.v1.apps/checkout"),
            named("Deployment", "checkout")
        );
        assert_eq!(ok("sts/db"), named("StatefulSet", "db"));
        assert_eq!(ok("statefulsets.apps/db"), named("StatefulSet", "db"));
        assert_eq!(ok("ds/agent"), named("DaemonSet", "agent"));
        assert_eq!(ok("job/migrate"), named("Job", "migrate"));
        assert_eq!(ok("jobs.batch/migrate"), named("Job", "migrate"));
        assert_eq!(ok("cj/refresh"), named("CronJob", "refresh"));
        assert_eq!(ok("cronjobs.batch/refresh"), named("CronJob", "refresh"));
        assert_eq!(ok("pod/web-1"), named("Pod", "web-1"));
        assert_eq!(ok("po/web-1"), named("Pod", "web-1"));
        assert_eq!(ok("web-1"), named("Pod", "web-1"));
        assert_eq!(ok("web.v2-1"), named("Pod", "web.v2-1"));
    }

    #[test]
    fn refuses_what_kubectl_refuses() {
        let long = format!("deploy/{}", "a".repeat(300));
        let cases: &[(&str, &str)] = &[
            ("", "empty"),
            ("deploy/", "no name"),
            ("deploy/checkout/", "more than one `/`"),
            ("deploy/checkout/status", "more than one `/`"),
            ("deploy/../secrets/regcred", "more than one `/`"),
            ("deploy/checkout?x=1", "`?`"),
            ("deploy/checkout#x", "`#`"),
            ("deploy/..", "empty part"),
            ("deploy/Checkout", "uppercase"),
            ("deploy/check_out", "`_`"),
            ("deploy/-x", "starts or ends"),
            (&long, "300 characters"),
            ("svc/x", "unsupported target kind `svc`"),
            ("deployments.batch/x", "unsupported target kind"),
            ("pods.v1.apps/x", "unsupported target kind"),
            ("/x", "unsupported target kind ``"),
            ("web 1", "` `"),
            ("a\nb", "`\\n`"),
        ];
        for (input, want) in cases {
            let e = Target::parse(input).unwrap_err();
            let text = e.to_string();
            assert!(text.contains(want), "{input:?}: {text}");
            assert_eq!(text.lines().count(), 2, "{input:?}: {text}");
            assert!(text.lines().nth(1).unwrap().starts_with("help: "), "{text}");
        }
        let e = Target::parse("svc/x").unwrap_err();
        for alias in [
            "deploy",
            "sts",
            "ds",
            "job",
            "cronjob (cj)",
            "deployments.apps",
        ] {
            assert!(e.help.contains(alias), "{}", e.help);
        }
    }

    mod props {
        use super::super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn never_panics(s in "\\PC*") {
                let _ = Target::parse(&s);
            }

            #[test]
            fn accepted_names_are_safe_in_a_url_path(s in "[a-zA-Z./?#%_-]{0,20}/?[a-z0-9./?#%-]{0,20}") {
                if let Ok(Target::Named { name, .. }) = Target::parse(&s) {
                    prop_assert!(!name.contains(['/', '?', '#', '%']));
                    prop_assert!(name != "." && name != "..");
                }
            }
        }
    }
}
