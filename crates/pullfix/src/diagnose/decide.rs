//! The one decision per failing image: everything gathered about it (the
//! node's text, the pull secrets and the credential the kubelet would send,
//! the registry's answers to this machine's probes, the ECR token and API)
//! goes through one ordered table of rules, `RULES`. The first rule that
//! applies decides the cause and how sure it is, and says why in one
//! sentence that names the texts and answers it rests on.
//!
//! When sources disagree (the node's text reads one way, the registry's
//! answer another), a rule says which wins and why, in words; the readings
//! of each source stay available as data ([`Decision::readings`]), never as
//! a free-floating "disagrees" line.
//!
//! Pure: no I/O. `scan` uses the same table with less evidence (the node's
//! text and whether the pod names a pull secret); `diagnose` with all of
//! it. The rule list is documented, in order, in `docs/causes.md` (a test
//! keeps the two in step).

use serde::Serialize;

use crate::diagnose::classify::Classified;
use crate::diagnose::finding::EcrCheck;
use crate::diagnose::secrets::{Analysis, SecretReport};
use crate::diagnose::{Cause, Confidence, Detail};
use crate::probe::{Attempt, ProbeResult};
use crate::registry::client::PullFailure;
use crate::registry::reference::ImageRef;

use Confidence::{High, Low, Medium};

/// What the decision knows about the pull secrets.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Secrets<'a> {
    /// Read and analysed as the kubelet would use them (`diagnose`).
    Read(&'a Analysis),
    /// Not read (`scan`): only whether the pod names any pull secret.
    Unread { named: bool },
}

/// Everything gathered about one failing image. Plain data.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Facts<'a> {
    /// The image as the pod spec writes it.
    pub image_text: &'a str,
    /// The parsed reference (`None`: it does not parse).
    pub image: Option<&'a ImageRef>,
    /// What the node's waiting message and events say.
    pub node: &'a Classified,
    pub secrets: Secrets<'a>,
    /// The registry's answers to this machine's probes, when probed.
    pub probe: Option<&'a ProbeResult>,
    /// The ECR API's answers, when asked.
    pub ecr: Option<&'a EcrCheck>,
    /// Registries the namespace's pull secrets are for (the wrong-registry check).
    pub private_registries: &'a [String],
}

/// How the cause was decided: the rule, why in words, and what each source
/// read on its own (`-o json` `decision`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    /// The id of the rule that decided (`docs/causes.md`, "How the cause is decided").
    pub rule: &'static str,
    /// One sentence: the texts and answers the cause rests on, and how
    /// disagreeing sources were weighed.
    pub because: String,
    /// What each source points to on its own: `kubelet` (the node's text)
    /// and `registry` (the answer to this machine's probe, when it gave one).
    pub readings: Vec<Reading>,
}

/// One source's own reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Reading {
    pub source: &'static str,
    pub cause: Cause,
}

/// The outcome for one image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Verdict {
    pub cause: Cause,
    pub detail: Option<Detail>,
    pub confidence: Confidence,
    pub decision: Decision,
}

/// What a rule concludes.
struct Ruling {
    cause: Cause,
    detail: Option<Detail>,
    confidence: Confidence,
    because: String,
}

/// One rule: its id, what it proves (for the docs), and the test that
/// either concludes or passes.
pub(crate) struct Rule {
    pub id: &'static str,
    /// The signals that prove it, in a few words: the rule's row in
    /// `docs/causes.md` (checked by a test, its only reader).
    #[cfg_attr(not(test), allow(dead_code))]
    pub proves: &'static str,
    apply: fn(&Signals<'_>) -> Option<Ruling>,
}

/// The rules, first match wins. Keep `docs/causes.md` in the same order.
pub(crate) static RULES: &[Rule] = &[
    Rule {
        id: "invalid-reference",
        proves: "the image does not parse, or the node says `invalid reference format`: nothing was pulled",
        apply: invalid_reference,
    },
    Rule {
        id: "never-pull",
        proves: "the node says the image is not present with pull policy Never",
        apply: never_pull,
    },
    Rule {
        id: "secret-undecodable",
        proves: "one of the pod's pull secrets does not decode for the kubelet (`auth` not base64, an entry or `auths` of the wrong JSON type): it fails every pull of the pod before sending anything; the secret found so, or the node's text in Go's words (`illegal base64 data`, `json: cannot unmarshal`)",
        apply: secret_undecodable,
    },
    Rule {
        id: "wrong-registry",
        proves: "an image without registry prefix (Docker Hub) fails as missing or unauthorized while the namespace's pull secrets are for a private registry",
        apply: wrong_registry,
    },
    Rule {
        id: "ecr-token-expired",
        proves: "an auth failure (401, 403, Docker's `requested access to the resource is denied`) with an expired ECR token in the pull secret: ECR refuses expired tokens with 403",
        apply: ecr_token_expired,
    },
    Rule {
        id: "ecr-token-valid",
        proves: "an ECR auth failure the text reads as an expired token, while the pull secret's token is still valid: the identity lacks access (403) or the token is rejected (401)",
        apply: ecr_token_valid,
    },
    Rule {
        id: "ecr-api-token-works",
        proves: "a 403 from ECR, the pod naming a pull secret, while `GetAuthorizationToken` works with your AWS identity: the permissions are fine, the secret's token is stale (with no pull secret at all, nothing is called stale)",
        apply: ecr_api_token_works,
    },
    Rule {
        id: "no-credential",
        proves: "none of the pod's pull secrets gives the kubelet a credential for the registry, and the node's text is an auth failure (or gone): nothing was sent",
        apply: no_credential,
    },
    Rule {
        id: "rejected-worded-as-missing",
        proves: "`authentication required` (Docker, CRI-O) while the kubelet has a credential to send: the credential was sent and refused; a 401 to this machine's probe with it makes it certain",
        apply: rejected_worded_as_missing,
    },
    Rule {
        id: "unreachable-from-both",
        proves: "a network or TLS failure on the node, and no connection from this machine either",
        apply: unreachable_from_both,
    },
    Rule {
        id: "unreachable-here-decides",
        proves: "no error text left on the node, and this machine cannot connect: the network failure seen here, as a guess",
        apply: unreachable_here_decides,
    },
    Rule {
        id: "probe-inconclusive",
        proves: "this machine cannot connect to the registry, so its answers cannot be checked: the node's text stands",
        apply: probe_inconclusive,
    },
    Rule {
        id: "node-network-only",
        proves: "a network or TLS failure on the node while the registry answers this machine: the problem is between the node and the registry",
        apply: node_network_only,
    },
    Rule {
        id: "resolves-here",
        proves: "the image resolves from this machine with the credential the kubelet would send: the node's text stands, with low confidence",
        apply: resolves_here,
    },
    Rule {
        id: "ecr-says-tag-missing",
        proves: "no error text left on the node, and ECR's `DescribeImages` says the tag does not exist",
        apply: ecr_says_tag_missing,
    },
    Rule {
        id: "registry-decides",
        proves: "no error text left on the node: the registry's answer to this machine's probe decides",
        apply: registry_decides,
    },
    Rule {
        id: "registry-agrees",
        proves: "the registry's answer to this machine's probe is what the node's cause produces",
        apply: registry_agrees,
    },
    Rule {
        id: "node-over-registry",
        proves: "the registry's answer points elsewhere: the node's own text decides (the probe may not use what the node uses), with low confidence",
        apply: node_over_registry,
    },
    Rule {
        id: "node-text",
        proves: "no registry answer to weigh: the node's text alone",
        apply: node_text,
    },
];

/// Decides the cause of one failing image. Pure.
pub(crate) fn decide(facts: &Facts<'_>) -> Verdict {
    let s = Signals::read(facts);
    let (id, ruling) = RULES
        .iter()
        .find_map(|r| (r.apply)(&s).map(|v| (r.id, v)))
        .unwrap_or_else(|| ("node-text", node_text_ruling(&s)));
    let mut because = ruling.because;
    // A second problem, not a contradiction: the tag is missing too.
    if facts.ecr.and_then(|e| e.image_exists) == Some(false) && ruling.cause != Cause::ImageNotFound
    {
        because.push_str(
            "; ECR's DescribeImages also says the tag does not exist, so expect image-not-found once this is fixed",
        );
    }
    let mut readings = vec![Reading {
        source: "kubelet",
        cause: s.node.cause,
    }];
    if let Registry::Answered { cause, .. } = s.registry {
        readings.push(Reading {
            source: "registry",
            cause,
        });
    }
    Verdict {
        cause: ruling.cause,
        detail: ruling.detail,
        confidence: ruling.confidence,
        decision: Decision {
            rule: id,
            because,
            readings,
        },
    }
}

// ---------------------------------------------------------------------------
// The signals the rules read, derived once from the facts.

/// The credential the kubelet would send, as far as it is known.
#[derive(Debug, Clone, Copy)]
enum Credential<'a> {
    /// The first credential the kubelet would try: its user and secret.
    Usable { user: &'a str, secret: &'a str },
    /// Every referenced secret was read; none gives a credential for the registry.
    NoneUsable { referenced: &'a [SecretReport] },
    /// Some referenced secret could not be read.
    Unreadable,
    /// The secrets were not read (scan): whether the pod names any.
    Unread { named: bool },
}

/// The ECR token in the pull secrets.
#[derive(Debug, Clone)]
enum Token {
    Expired { secret: String, at: String },
    Valid { secret: String, until: String },
}

/// The registry's answer to this machine's probe.
#[derive(Debug, Clone)]
enum Registry<'a> {
    NotProbed,
    /// No connection from here either; the failure seen here, if any.
    UnreachableHere {
        network: Option<(Cause, Option<Detail>)>,
        said: String,
    },
    /// The image resolves from here.
    Resolves {
        with_credential: bool,
    },
    /// The registry answered with a failure that speaks for the pod.
    Answered {
        cause: Cause,
        detail: Option<Detail>,
        with_credential: bool,
        failure: &'a PullFailure,
    },
    /// Probed, but only anonymously while the pod's credential is unknown.
    Silent,
}

struct Signals<'a> {
    facts: &'a Facts<'a>,
    node: &'a Classified,
    credential: Credential<'a>,
    token: Option<Token>,
    registry: Registry<'a>,
    /// The user named in the probe's credentialed attempt.
    probe_user: Option<&'a str>,
}

impl<'a> Signals<'a> {
    fn read(facts: &'a Facts<'a>) -> Signals<'a> {
        let credential = match facts.secrets {
            Secrets::Unread { named } => Credential::Unread { named },
            Secrets::Read(a) if a.incomplete => Credential::Unreadable,
            Secrets::Read(a) => match a.credentials.first() {
                Some((c, secret, _)) => Credential::Usable {
                    user: &c.username,
                    secret,
                },
                None => Credential::NoneUsable {
                    referenced: &a.reports,
                },
            },
        };
        let token = match facts.secrets {
            Secrets::Read(a) => {
                let fmt =
                    |t: &chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%d %H:%M UTC").to_string();
                let expired = a.reports.iter().find_map(|r| {
                    r.ecr
                        .as_ref()
                        .filter(|e| e.expired)
                        .map(|e| Token::Expired {
                            secret: r.name.clone(),
                            at: fmt(&e.expires_at),
                        })
                });
                expired.or_else(|| {
                    a.reports.iter().find_map(|r| {
                        r.ecr.as_ref().filter(|e| !e.expired).map(|e| Token::Valid {
                            secret: r.name.clone(),
                            until: fmt(&e.expires_at),
                        })
                    })
                })
            }
            Secrets::Unread { .. } => None,
        };
        let incomplete = matches!(facts.secrets, Secrets::Read(a) if a.incomplete);
        Signals {
            facts,
            node: facts.node,
            credential,
            token,
            registry: facts
                .probe
                .map_or(Registry::NotProbed, |p| registry_view(p, incomplete)),
            probe_user: facts
                .probe
                .filter(|p| p.with_credential.is_some())
                .and_then(|p| p.username.as_deref()),
        }
    }

    fn node_is(&self, causes: &[Cause]) -> bool {
        causes.contains(&self.node.cause)
    }

    fn node_is_network(&self) -> bool {
        self.node_is(&[Cause::RegistryUnreachable, Cause::TlsError])
    }

    /// The node's text is gone (only the back-off is left) or says nothing known.
    fn node_is_silent(&self) -> bool {
        self.node.cause == Cause::Unknown
    }

    fn on_docker_hub(&self) -> bool {
        self.facts.image.is_some_and(ImageRef::is_docker_hub)
    }

    fn registry_host(&self) -> String {
        self.facts
            .image
            .map_or_else(|| "the registry".to_string(), |i| i.domain.clone())
    }

    fn resolves_here(&self) -> bool {
        matches!(self.registry, Registry::Resolves { .. })
    }

    /// The registry's answer, when it is one of `causes`.
    fn registry_says(&self, causes: &[Cause]) -> bool {
        matches!(self.registry, Registry::Answered { cause, .. } if causes.contains(&cause))
    }

    /// "the node says `…`", or what is left of the node's text.
    fn node_says(&self) -> String {
        node_words(self.node)
    }

    /// "your machine's probe with `user` got HTTP 401", for an answer.
    fn probe_got(&self) -> String {
        match &self.registry {
            Registry::Answered {
                failure,
                with_credential,
                ..
            } => format!(
                "{} got {}",
                self.prober(*with_credential),
                answer_words(failure)
            ),
            Registry::Resolves { with_credential } => {
                format!("{} resolves the image", self.prober(*with_credential))
            }
            Registry::UnreachableHere { said, .. } => {
                format!("this machine cannot reach the registry either ({said})")
            }
            Registry::NotProbed | Registry::Silent => "the registry was not asked".into(),
        }
    }

    fn prober(&self, with_credential: bool) -> String {
        match (with_credential, self.probe_user) {
            (true, Some(u)) if !u.is_empty() => format!("your machine's probe with `{u}`"),
            (true, _) => "your machine's probe with the same credential".into(),
            (false, _) => "your machine's anonymous probe".into(),
        }
    }
}

/// What the probe's answer means for the pod.
fn registry_view(p: &ProbeResult, secrets_incomplete: bool) -> Registry<'_> {
    // Without the pod's credential (unreadable secrets) an anonymous
    // failure says nothing about it.
    let anonymous_decides = p.with_credential.is_none() && !secrets_incomplete;
    let decisive = p.failure.as_ref().or(if anonymous_decides {
        p.anonymous_failure.as_ref()
    } else {
        None
    });
    let works = p
        .with_credential
        .as_ref()
        .map_or(p.anonymous.ok(), Attempt::ok);
    if p.unreachable_here {
        let network = decisive
            .map(network_cause)
            .filter(|(c, _)| *c != Cause::Unknown);
        let said = decisive.map_or_else(
            || "no answer in time".to_string(),
            crate::probe::describe_failure,
        );
        Registry::UnreachableHere { network, said }
    } else if works {
        Registry::Resolves {
            with_credential: p.with_credential.is_some(),
        }
    } else if let Some(f) = decisive {
        let (cause, detail) = probe_cause(f, p.with_credential.is_some());
        Registry::Answered {
            cause,
            detail,
            with_credential: p.with_credential.is_some(),
            failure: f,
        }
    } else {
        Registry::Silent
    }
}

/// The cause a network failure seen from here points to.
pub(crate) fn network_cause(f: &PullFailure) -> (Cause, Option<Detail>) {
    match f {
        PullFailure::Dns { .. } => (Cause::RegistryUnreachable, Some(Detail::Dns)),
        PullFailure::Refused { .. } => (Cause::RegistryUnreachable, Some(Detail::Refused)),
        PullFailure::Timeout { .. } => (Cause::RegistryUnreachable, Some(Detail::Timeout)),
        PullFailure::Tls { detail, .. } if detail.contains("unknown authority") => {
            (Cause::TlsError, Some(Detail::UnknownAuthority))
        }
        PullFailure::Tls { detail, .. } if detail.contains("expired") => {
            (Cause::TlsError, Some(Detail::CertificateExpired))
        }
        PullFailure::Tls { .. } => (Cause::TlsError, None),
        _ => (Cause::Unknown, None),
    }
}

/// The cause a registry answer points to.
pub(crate) fn probe_cause(f: &PullFailure, with_credential: bool) -> (Cause, Option<Detail>) {
    match f {
        PullFailure::NotFound { .. } => (Cause::ImageNotFound, None),
        PullFailure::AccessDenied { .. } => (Cause::RepositoryNotFound, None),
        PullFailure::NoBasicCredentials { .. } => (Cause::CredentialsMissing, None),
        PullFailure::TokenFetch { status: 401, .. } | PullFailure::Status { status: 401, .. } => {
            if with_credential {
                (Cause::CredentialsRejected, None)
            } else {
                (Cause::CredentialsMissing, None)
            }
        }
        PullFailure::TokenFetch { status: 403, .. } | PullFailure::Status { status: 403, .. } => {
            (Cause::AccessDenied, None)
        }
        PullFailure::RateLimited { .. } => (Cause::RateLimited, None),
        PullFailure::PlatformMismatch { .. } => (Cause::PlatformMismatch, None),
        other => network_cause(other),
    }
}

/// A registry answer in a few words (`HTTP 401`, `404 manifest unknown`).
fn answer_words(f: &PullFailure) -> String {
    match f {
        PullFailure::NotFound { .. } => "404 manifest unknown".into(),
        PullFailure::AccessDenied { .. } => "401 insufficient_scope".into(),
        PullFailure::NoBasicCredentials { .. } => "401 (credentials required)".into(),
        PullFailure::TokenFetch { status, .. } => format!("{status} from the token endpoint"),
        PullFailure::Status { status, .. } => format!("HTTP {status}"),
        PullFailure::RateLimited { .. } => "429 toomanyrequests".into(),
        other => crate::probe::describe_failure(other),
    }
}

/// The node's text in words: "the node says `HTTP 401 on the manifest`".
pub(crate) fn node_words(c: &Classified) -> String {
    if c.backoff_only {
        return "only `Back-off pulling image` is left on the node (its pull events expired)"
            .into();
    }
    if c.error.is_empty() {
        return "the node gives no pull error".into();
    }
    // The signal without its explanation in parentheses.
    let label = match c.signal.find(" (") {
        Some(i) if i > 0 => &c.signal[..i],
        _ => c.signal.as_str(),
    };
    format!("the node says `{}`", label.replace('`', ""))
}

/// Whether a registry answer is what the node's cause would produce,
/// and why in a few words.
fn consistent(node: Cause, registry: Cause) -> Option<&'static str> {
    match (node, registry) {
        (a, b) if a == b => Some(""),
        (Cause::CredentialsExpired, Cause::CredentialsRejected) => {
            Some(" (a registry refuses an expired credential like a wrong one)")
        }
        (Cause::RepositoryNotFound, Cause::ImageNotFound) => {
            Some(" (this registry answers 404 for a repository it does not have)")
        }
        (Cause::CredentialsMissing, Cause::RepositoryNotFound) => {
            Some(" (without a credential the registry will not say whether the repository exists)")
        }
        _ => None,
    }
}

fn ruling(cause: Cause, confidence: Confidence, because: String) -> Ruling {
    Ruling {
        cause,
        detail: None,
        confidence,
        because,
    }
}

/// The node's reading, as it is.
fn node_ruling(s: &Signals<'_>, confidence: Confidence, because: String) -> Ruling {
    Ruling {
        cause: s.node.cause,
        detail: s.node.detail,
        confidence,
        because,
    }
}

// ---------------------------------------------------------------------------
// The rules, in table order.

fn invalid_reference(s: &Signals<'_>) -> Option<Ruling> {
    if s.facts.image.is_none() {
        return Some(ruling(
            Cause::InvalidImageName,
            High,
            format!(
                "`{}` cannot be parsed as an image reference, so no pull is attempted",
                s.facts.image_text
            ),
        ));
    }
    (s.node.cause == Cause::InvalidImageName).then(|| {
        ruling(
            Cause::InvalidImageName,
            High,
            format!("{}: no pull is attempted", s.node_says()),
        )
    })
}

fn never_pull(s: &Signals<'_>) -> Option<Ruling> {
    (s.node.cause == Cause::NeverPull).then(|| {
        ruling(
            Cause::NeverPull,
            High,
            format!(
                "{}: the kubelet does not pull with imagePullPolicy Never",
                s.node_says()
            ),
        )
    })
}

fn secret_undecodable(s: &Signals<'_>) -> Option<Ruling> {
    let node_agrees = s.node.rule == "secret-undecodable";
    let consequence = |entry: bool| {
        format!(
            "so the kubelet sends no credential and fails every pull of this pod, whatever the registry; {} must be fixed",
            if entry { "that entry" } else { "the secret" }
        )
    };
    match s.facts.secrets {
        Secrets::Read(a) => {
            let Some((secret, entry, error)) = a.refused() else {
                return node_agrees.then(|| {
                    ruling(
                        Cause::CredentialsMissing,
                        Low,
                        format!(
                            "{}, yet every pull secret of the pod decodes now: it was likely repaired since, and the pods retry after their back-off",
                            s.node_says()
                        ),
                    )
                });
            };
            let entry_words = entry.map(|k| format!(" (entry `{k}`)")).unwrap_or_default();
            let (confidence, node) = if node_agrees {
                (High, format!("; {}", s.node_says()))
            } else if s.node_is_silent() {
                (High, String::new())
            } else {
                (
                    Medium,
                    format!(
                        "; {} (written before the secret changed, or by a kubelet that reads it differently)",
                        s.node_says()
                    ),
                )
            };
            Some(ruling(
                Cause::CredentialsMissing,
                confidence,
                format!(
                    "the kubelet cannot decode pull secret `{secret}`{entry_words}: {error}{node}, {}",
                    consequence(entry.is_some())
                ),
            ))
        }
        Secrets::Unread { .. } => node_agrees.then(|| {
            ruling(
                Cause::CredentialsMissing,
                Medium,
                format!("{}, {}", s.node_says(), consequence(false)),
            )
        }),
    }
}

fn wrong_registry(s: &Signals<'_>) -> Option<Ruling> {
    let image = s.facts.image?;
    let fits = image.implicit_domain
        && !s.facts.private_registries.is_empty()
        && s.node_is(&[
            Cause::RepositoryNotFound,
            Cause::CredentialsMissing,
            Cause::ImageNotFound,
            Cause::Unknown,
        ])
        && !s.resolves_here();
    if !fits {
        return None;
    }
    let answered = matches!(s.registry, Registry::Answered { .. });
    Some(ruling(
        Cause::WrongRegistry,
        if answered { High } else { Medium },
        format!(
            "`{}` has no registry prefix, so it is pulled from Docker Hub, while this namespace's pull secrets are for {}; {}{}",
            s.facts.image_text,
            s.facts.private_registries.join(", "),
            s.node_says(),
            if answered {
                format!(
                    " and Docker Hub, asked from here, answers the same ({})",
                    s.probe_got().trim_start_matches("your machine's ")
                )
            } else {
                String::new()
            }
        ),
    ))
}

fn ecr_token_expired(s: &Signals<'_>) -> Option<Ruling> {
    let Some(Token::Expired { secret, at }) = &s.token else {
        return None;
    };
    let usable = matches!(s.credential, Credential::Usable { .. });
    let auth_failure = s.node_is(&[
        Cause::CredentialsRejected,
        Cause::AccessDenied,
        Cause::CredentialsExpired,
        Cause::RepositoryNotFound,
    ]) || (usable && s.node_is(&[Cause::CredentialsMissing]))
        || (s.node_is_silent()
            && s.registry_says(&[Cause::AccessDenied, Cause::CredentialsRejected]));
    if !auth_failure || s.resolves_here() {
        return None;
    }
    let docker_wording = if s.node.cause == Cause::RepositoryNotFound {
        " (Docker words ECR's 403 as a repository it cannot see)"
    } else {
        ""
    };
    let probe = if s.registry_says(&[
        Cause::AccessDenied,
        Cause::CredentialsRejected,
        Cause::RepositoryNotFound,
    ]) {
        format!(
            ", and {} with that token: ECR refuses an expired token that way",
            s.probe_got()
        )
    } else {
        String::new()
    };
    Some(ruling(
        Cause::CredentialsExpired,
        High,
        format!(
            "{}{docker_wording}; the ECR token in `{secret}` expired at {at}{probe}",
            s.node_says()
        ),
    ))
}

fn ecr_token_valid(s: &Signals<'_>) -> Option<Ruling> {
    let Some(Token::Valid { secret, until }) = &s.token else {
        return None;
    };
    if s.node.cause != Cause::CredentialsExpired || s.node.rule == "token-expired" {
        return None;
    }
    let (cause, what) = if s.node.http_status == Some(403) {
        (
            Cause::AccessDenied,
            "this identity is not allowed to pull the repository",
        )
    } else {
        (Cause::CredentialsRejected, "ECR rejects the token")
    };
    let confirmed = s.registry_says(&[cause]);
    Some(ruling(
        cause,
        if confirmed { High } else { Medium },
        format!(
            "{}, which on ECR usually means an expired token, but the token in `{secret}` is valid until {until}: {what}{}",
            s.node_says(),
            if confirmed {
                format!("; {} with it", s.probe_got())
            } else {
                String::new()
            }
        ),
    ))
}

fn ecr_api_token_works(s: &Signals<'_>) -> Option<Ruling> {
    let works = s.facts.ecr.and_then(|e| e.token_available) == Some(true);
    let node_403 = s.node.cause == Cause::AccessDenied
        || (s.node.cause == Cause::CredentialsExpired && s.node.http_status == Some(403));
    // No pull secret at all (the node's own identity pulls, as on EKS):
    // there is no token to call stale.
    let no_secret = matches!(
        s.credential,
        Credential::NoneUsable { referenced: [] } | Credential::Unread { named: false }
    );
    (works && node_403 && !no_secret && !matches!(s.token, Some(Token::Valid { .. }))).then(|| {
        ruling(
            Cause::CredentialsExpired,
            Medium,
            format!(
                "{}, while ECR's GetAuthorizationToken works with your AWS identity: the repository's permissions are fine, so the token in the pull secret is stale",
                s.node_says()
            ),
        )
    })
}

fn no_credential(s: &Signals<'_>) -> Option<Ruling> {
    let Credential::NoneUsable { referenced } = s.credential else {
        return None;
    };
    // `Unknown` only when the node's text is gone (back-off only, no text):
    // a text pullfix cannot read is no evidence of a missing credential
    // (the lab's real node gave one for a corrupt layer).
    let text_gone = matches!(s.node.rule, "backoff-only" | "no-text");
    let fits = (s.node_is(&[
        Cause::CredentialsMissing,
        Cause::RepositoryNotFound,
        Cause::CredentialsRejected,
    ]) || (s.node_is(&[Cause::Unknown]) && text_gone))
        && !s.on_docker_hub()
        && !s.resolves_here();
    if !fits {
        return None;
    }
    let nothing_sent = matches!(
        s.node.rule,
        "no-basic-auth" | "anonymous-token-status" | "anonymous-refused"
    );
    let registry_agrees = s.registry_says(&[Cause::CredentialsMissing, Cause::RepositoryNotFound]);
    let confidence = if referenced.is_empty() || nothing_sent || registry_agrees {
        High
    } else {
        Medium
    };
    let names: Vec<String> = referenced.iter().map(|r| format!("`{}`", r.name)).collect();
    let secrets = match names.as_slice() {
        [] => "the pod and its ServiceAccount name no pull secret".to_string(),
        [one] => format!(
            "the pod's pull secret {one} gives the kubelet no credential for {} (see the secret evidence)",
            s.registry_host()
        ),
        many => format!(
            "none of the pod's pull secrets ({}) gives the kubelet a credential for {} (see the secret evidence)",
            many.join(", "),
            s.registry_host()
        ),
    };
    let node = match s.node.cause {
        Cause::CredentialsMissing | Cause::Unknown => s.node_says(),
        _ => format!(
            "{}, which without a credential means nothing was sent",
            s.node_says()
        ),
    };
    let probe = if registry_agrees {
        format!("; {} too", s.probe_got())
    } else {
        String::new()
    };
    Some(ruling(
        Cause::CredentialsMissing,
        confidence,
        format!("{secrets}; {node}{probe}"),
    ))
}

fn rejected_worded_as_missing(s: &Signals<'_>) -> Option<Ruling> {
    if s.node.rule != "authentication-required" || s.resolves_here() {
        return None;
    }
    let wording = format!(
        "{}, which Docker and CRI-O also write when a credential is refused",
        s.node_says()
    );
    match s.credential {
        Credential::Usable { user, secret } => {
            let confirmed = s.registry_says(&[Cause::CredentialsRejected]);
            Some(ruling(
                Cause::CredentialsRejected,
                if confirmed { High } else { Medium },
                format!(
                    "{wording}; the kubelet sends `{user}` from `{secret}`{}",
                    if confirmed {
                        format!(
                            ", and {} with the same credential: the password is wrong",
                            s.probe_got()
                        )
                    } else {
                        ", so the registry refused it (a probe with it would confirm)".into()
                    }
                ),
            ))
        }
        Credential::Unread { named: true } => Some(ruling(
            Cause::CredentialsRejected,
            Low,
            format!(
                "{wording}; the pod names a pull secret, so a credential was most likely sent and refused (diagnose reads the secret to confirm)"
            ),
        )),
        _ => None,
    }
}

fn unreachable_from_both(s: &Signals<'_>) -> Option<Ruling> {
    let Registry::UnreachableHere { said, .. } = &s.registry else {
        return None;
    };
    s.node_is_network().then(|| {
        node_ruling(
            s,
            High,
            format!(
                "{}, and this machine cannot reach the registry either ({said})",
                s.node_says()
            ),
        )
    })
}

fn unreachable_here_decides(s: &Signals<'_>) -> Option<Ruling> {
    let Registry::UnreachableHere {
        network: Some((cause, detail)),
        said,
    } = &s.registry
    else {
        return None;
    };
    s.node_is_silent().then(|| Ruling {
        cause: *cause,
        detail: *detail,
        confidence: Low,
        because: format!(
            "{}; this machine cannot reach the registry ({said}), so the node likely cannot either",
            s.node_says()
        ),
    })
}

fn probe_inconclusive(s: &Signals<'_>) -> Option<Ruling> {
    let Registry::UnreachableHere { said, .. } = &s.registry else {
        return None;
    };
    Some(node_ruling(
        s,
        s.node.confidence,
        format!(
            "{}; this machine cannot reach the registry ({said}), so its answer could not be checked: the node's text stands",
            s.node_says()
        ),
    ))
}

fn node_network_only(s: &Signals<'_>) -> Option<Ruling> {
    let answers = matches!(
        s.registry,
        Registry::Resolves { .. } | Registry::Answered { .. }
    );
    (s.node_is_network() && answers).then(|| {
        node_ruling(
            s,
            s.node.confidence,
            format!(
                "{}, while {}: the registry is up, so the problem is between the node and the registry (DNS, firewall, proxy, the node's CA)",
                s.node_says(),
                s.probe_got()
            ),
        )
    })
}

fn resolves_here(s: &Signals<'_>) -> Option<Ruling> {
    if !s.resolves_here() {
        return None;
    }
    if s.node_is(&[Cause::RateLimited]) {
        return Some(node_ruling(
            s,
            s.node.confidence,
            format!(
                "{}, while {}: rate limits count per client address, and the nodes' address has used its share",
                s.node_says(),
                s.probe_got()
            ),
        ));
    }
    if s.node_is(&[Cause::PullInterrupted, Cause::LayerCorrupt]) {
        // The probe reads the manifest only; these break on the blobs.
        return Some(node_ruling(
            s,
            s.node.confidence,
            format!(
                "{}, while {}: the manifest resolves, the failure is in downloading the layers",
                s.node_says(),
                s.probe_got()
            ),
        ));
    }
    if s.node_is(&[Cause::PlatformMismatch]) {
        return Some(node_ruling(
            s,
            s.node.confidence,
            format!(
                "{}; {} for the node's architecture, so check the node's platform",
                s.node_says(),
                s.probe_got()
            ),
        ));
    }
    let because = if s.node_is_silent() {
        format!(
            "{}, and {}: the next pull may succeed (a fix may already be in); if it does not, compare the node's credentials and network with this machine's",
            s.node_says(),
            s.probe_got()
        )
    } else {
        format!(
            "{}, but {}: the node's text stands with low confidence, since the node saw something else (a retry still pending, node-level credentials, or a fix already applied)",
            s.node_says(),
            s.probe_got()
        )
    };
    Some(node_ruling(s, Low, because))
}

fn ecr_says_tag_missing(s: &Signals<'_>) -> Option<Ruling> {
    let missing = s.facts.ecr.and_then(|e| e.image_exists) == Some(false);
    (missing && s.node_is_silent()).then(|| {
        ruling(
            Cause::ImageNotFound,
            Medium,
            format!(
                "{}; ECR's DescribeImages says the tag does not exist",
                s.node_says()
            ),
        )
    })
}

fn registry_decides(s: &Signals<'_>) -> Option<Ruling> {
    let Registry::Answered { cause, detail, .. } = s.registry else {
        return None;
    };
    s.node_is_silent().then(|| Ruling {
        cause,
        detail,
        confidence: Medium,
        because: format!(
            "{}; {}, which means {}",
            s.node_says(),
            s.probe_got(),
            cause.id()
        ),
    })
}

fn registry_agrees(s: &Signals<'_>) -> Option<Ruling> {
    let Registry::Answered { cause, detail, .. } = s.registry else {
        return None;
    };
    let why = consistent(s.node.cause, cause)?;
    Some(Ruling {
        cause: s.node.cause,
        detail: s
            .node
            .detail
            .or(if cause == s.node.cause { detail } else { None }),
        confidence: High,
        because: format!(
            "{}, and {}{why}: {}",
            s.node_says(),
            s.probe_got(),
            s.node.cause.summary()
        ),
    })
}

fn node_over_registry(s: &Signals<'_>) -> Option<Ruling> {
    let Registry::Answered { cause, .. } = s.registry else {
        return None;
    };
    Some(node_ruling(
        s,
        Low,
        format!(
            "{} ({}); {}, which would mean {}: the node's own text decides, since the probe may not use what the node uses (another credential, a mirror, a change since the last pull)",
            s.node_says(),
            s.node.cause.id(),
            s.probe_got(),
            cause.id()
        ),
    ))
}

fn node_text(s: &Signals<'_>) -> Option<Ruling> {
    Some(node_text_ruling(s))
}

fn node_text_ruling(s: &Signals<'_>) -> Ruling {
    let unread = match s.credential {
        Credential::Unreadable => {
            "; some pull secrets could not be read, so the credential the kubelet sends was not checked"
        }
        _ => "",
    };
    let probe = match s.registry {
        Registry::NotProbed => "; the registry was not probed",
        Registry::Silent => {
            "; the registry's anonymous answer says nothing about the pod's unread credential"
        }
        _ => "",
    };
    let because = if s.node_is_silent() && s.node.backoff_only {
        format!(
            "{}{unread}{probe}: the cause is not known yet",
            s.node_says()
        )
    } else {
        format!("{}{unread}{probe}", s.node_says())
    };
    node_ruling(s, s.node.confidence, because)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnose::classify::{classify_container, classify_error};
    use crate::diagnose::secrets::{EcrExpiry, Origin, SecretReport};
    use crate::registry::keyring::Credential as Cred;

    const ECR: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com";
    const REG: &str = "reg.example.com";

    /// The node's texts the rows use.
    mod node {
        pub const CONTAINERD_401: &str = "failed to pull and unpack image \"reg.example.com/team/app:v1\": failed to resolve reference \"reg.example.com/team/app:v1\": unexpected status from HEAD request to https://reg.example.com/v2/team/app/manifests/v1: 401 Unauthorized";
        pub const DOCKER_AUTH_REQUIRED: &str = "Error response from daemon: Head \"https://reg.example.com/v2/team/app/manifests/v1\": unauthorized: authentication required";
        pub const NO_BASIC_AUTH: &str = "failed to pull and unpack image \"reg.example.com/team/app:v1\": failed to resolve reference \"reg.example.com/team/app:v1\": pull access denied, repository does not exist or may require authorization: authorization failed: no basic auth credentials";
        pub const NOT_FOUND: &str = "failed to pull and unpack image \"reg.example.com/team/app:v9\": failed to resolve reference \"reg.example.com/team/app:v9\": reg.example.com/team/app:v9: not found";
        pub const HUB_DENIED: &str = "failed to pull and unpack image \"docker.io/team/app:v1\": failed to resolve reference \"docker.io/team/app:v1\": pull access denied, repository does not exist or may require authorization: server message: insufficient_scope: authorization failed";
        pub const ECR_403: &str = "failed to pull and unpack image \"123456789012.dkr.ecr.us-east-1.amazonaws.com/team/app:v1\": failed to resolve reference \"123456789012.dkr.ecr.us-east-1.amazonaws.com/team/app:v1\": unexpected status from HEAD request to https://123456789012.dkr.ecr.us-east-1.amazonaws.com/v2/team/app/manifests/v1: 403 Forbidden";
        pub const ECR_DOCKER_DENIED: &str = "Error response from daemon: Head \"https://123456789012.dkr.ecr.us-east-1.amazonaws.com/v2/team/app/manifests/v1\": denied: requested access to the resource is denied";
        pub const TIMEOUT: &str = "failed to pull and unpack image \"reg.example.com/team/app:v1\": failed to resolve reference \"reg.example.com/team/app:v1\": failed to do request: Head \"https://reg.example.com/v2/team/app/manifests/v1\": dial tcp 10.0.0.5:443: i/o timeout";
        pub const FORBIDDEN: &str = "failed to pull and unpack image \"reg.example.com/team/app:v1\": failed to resolve reference \"reg.example.com/team/app:v1\": unexpected status from HEAD request to https://reg.example.com/v2/team/app/manifests/v1: 403 Forbidden";
        pub const RATE: &str = "failed to pull and unpack image \"docker.io/library/nginx:1.25\": failed to copy: httpReadSeeker: failed open: unexpected status code https://registry-1.docker.io/v2/library/nginx/manifests/1.25: 429 Too Many Requests - Server message: toomanyrequests: You have reached your pull rate limit.";
        pub const PLATFORM: &str = "failed to pull and unpack image \"reg.example.com/team/app:v1\": no match for platform in manifest: not found";
        pub const NEVER: &str = "Container image \"reg.example.com/team/app:v1\" is not present with pull policy of Never";
        pub const INVALID: &str = "couldn't parse image name \"reg.example.com/Team/App:v1\": invalid reference format: repository name (Team/App) must be lowercase";
    }

    /// What the secrets give.
    #[derive(Clone, Copy)]
    enum S {
        /// A usable credential for the registry, in `regcred`.
        Usable,
        /// `regcred` exists but gives no credential for the registry.
        Unusable,
        /// No pull secret at all.
        NoSecrets,
        /// `regcred` could not be read.
        Unreadable,
        /// An ECR token in `regcred`, expired or not.
        EcrToken { expired: bool },
        /// Not read (scan), named or not.
        Unread { named: bool },
        /// `regcred` holds an entry the kubelet cannot decode.
        Refused,
    }

    fn report(problems: Vec<crate::diagnose::secrets::Problem>) -> SecretReport {
        SecretReport {
            name: "regcred".into(),
            origin: Origin::PodSpec,
            problems,
            matched_key: None,
            username: Some("pullfix".into()),
            age_seconds: None,
            manager: None,
            ecr: None,
            other_entries: 0,
        }
    }

    fn analysis(s: S) -> Option<Analysis> {
        use crate::diagnose::secrets::Problem;
        let usable = || {
            vec![(
                Cred::new("pullfix", "x"),
                "regcred".to_string(),
                REG.to_string(),
            )]
        };
        Some(match s {
            S::Usable => Analysis {
                reports: vec![report(Vec::new())],
                credentials: usable(),
                incomplete: false,
            },
            S::Unusable => Analysis {
                reports: vec![report(vec![Problem::WrongType {
                    found: "Opaque".into(),
                }])],
                credentials: Vec::new(),
                incomplete: false,
            },
            S::NoSecrets => Analysis {
                reports: Vec::new(),
                credentials: Vec::new(),
                incomplete: false,
            },
            S::Unreadable => Analysis {
                reports: vec![report(vec![Problem::Unreadable])],
                credentials: Vec::new(),
                incomplete: true,
            },
            S::EcrToken { expired } => Analysis {
                reports: vec![SecretReport {
                    ecr: Some(EcrExpiry {
                        expires_at: chrono::Utc::now(),
                        expired,
                        basis: "token".into(),
                    }),
                    username: Some("AWS".into()),
                    ..report(Vec::new())
                }],
                credentials: vec![(
                    Cred::new("AWS", "x"),
                    "regcred".to_string(),
                    ECR.to_string(),
                )],
                incomplete: false,
            },
            S::Refused => Analysis {
                reports: vec![report(vec![Problem::KubeletRefuses {
                    entry: Some("other.io".into()),
                    error: "illegal base64 data at input byte 3".into(),
                }])],
                credentials: Vec::new(),
                incomplete: false,
            },
            S::Unread { .. } => return None,
        })
    }

    /// What the probe from here gives.
    #[derive(Clone, Copy)]
    enum P {
        None,
        /// The credentialed attempt fails with this.
        WithCred(fn() -> PullFailure),
        /// No credential: the anonymous attempt fails with this.
        Anonymous(fn() -> PullFailure),
        Resolves,
        Unreachable,
    }

    fn status(s: u16) -> PullFailure {
        PullFailure::Status {
            method: "HEAD",
            url: "https://reg.example.com/v2/team/app/manifests/v1".into(),
            status: s,
        }
    }

    fn probe(p: P) -> Option<ProbeResult> {
        let failed = |f: &PullFailure| Attempt::Failed {
            failure: crate::probe::describe_failure(f),
            status: crate::probe::failure_status(f),
        };
        let base = ProbeResult {
            registry: REG.into(),
            from: "this machine",
            with_credential: None,
            username: None,
            anonymous: Attempt::Ok {
                digest: "sha256:1".into(),
            },
            tags: None,
            rate_limit: None,
            unreachable_here: false,
            failure: None,
            anonymous_failure: None,
        };
        Some(match p {
            P::None => return None,
            P::WithCred(f) => ProbeResult {
                with_credential: Some(failed(&f())),
                username: Some("pullfix".into()),
                anonymous: failed(&status(401)),
                failure: Some(f()),
                anonymous_failure: Some(status(401)),
                ..base
            },
            P::Anonymous(f) => ProbeResult {
                anonymous: failed(&f()),
                anonymous_failure: Some(f()),
                ..base
            },
            P::Resolves => ProbeResult {
                with_credential: Some(Attempt::Ok {
                    digest: "sha256:1".into(),
                }),
                username: Some("pullfix".into()),
                ..base
            },
            P::Unreachable => {
                let f = PullFailure::Timeout {
                    url: "https://reg.example.com/v2/".into(),
                    addr: "10.0.0.5:443".into(),
                    plain_http: false,
                };
                ProbeResult {
                    anonymous: Attempt::TimedOut,
                    unreachable_here: true,
                    anonymous_failure: Some(f),
                    ..base
                }
            }
        })
    }

    struct Row {
        name: &'static str,
        image: &'static str,
        node: Classified,
        secrets: S,
        probe: P,
        ecr: Option<EcrCheck>,
        private: &'static [&'static str],
        rule: &'static str,
        cause: Cause,
        confidence: Confidence,
        /// Words the `because` must hold.
        says: &'static [&'static str],
    }

    fn text(t: &str) -> Classified {
        classify_error(t)
    }

    fn backoff() -> Classified {
        classify_container("ImagePullBackOff", "Back-off pulling image \"x\"", &[])
    }

    fn run(r: &Row) -> Verdict {
        let image = ImageRef::parse(r.image).ok();
        let a = analysis(r.secrets);
        let p = probe(r.probe);
        let private: Vec<String> = r.private.iter().map(|s| s.to_string()).collect();
        let facts = Facts {
            image_text: r.image,
            image: image.as_ref(),
            node: &r.node,
            secrets: match (r.secrets, &a) {
                (S::Unread { named }, _) => Secrets::Unread { named },
                (_, Some(a)) => Secrets::Read(a),
                _ => unreachable!(),
            },
            probe: p.as_ref(),
            ecr: r.ecr.as_ref(),
            private_registries: &private,
        };
        decide(&facts)
    }

    /// ECR answers this machine's AWS identity: the image exists, a token
    /// is given.
    fn ecr_answers() -> Option<EcrCheck> {
        Some(EcrCheck {
            image_exists: Some(true),
            token_available: Some(true),
            error: None,
        })
    }

    fn rows() -> Vec<Row> {
        use Cause::*;
        let img = "reg.example.com/team/app:v1";
        let ecr_img = "123456789012.dkr.ecr.us-east-1.amazonaws.com/team/app:v1";
        vec![
            Row {
                name: "an unparseable image",
                image: "reg.example.com/Team/App:v1",
                node: text(node::INVALID),
                secrets: S::Usable,
                probe: P::None,
                ecr: None,
                private: &[],
                rule: "invalid-reference",
                cause: InvalidImageName,
                confidence: High,
                says: &["cannot be parsed"],
            },
            Row {
                name: "pull policy Never",
                image: img,
                node: text(node::NEVER),
                secrets: S::Usable,
                probe: P::None,
                ecr: None,
                private: &[],
                rule: "never-pull",
                cause: NeverPull,
                confidence: High,
                says: &["Never"],
            },
            Row {
                name: "a pull secret the kubelet cannot decode, in its words",
                image: img,
                node: text("illegal base64 data at input byte 3"),
                secrets: S::Refused,
                probe: P::Resolves,
                ecr: None,
                private: &[],
                rule: "secret-undecodable",
                cause: CredentialsMissing,
                confidence: High,
                says: &[
                    "cannot decode pull secret `regcred` (entry `other.io`)",
                    "every pull of this pod",
                ],
            },
            Row {
                name: "an undecodable pull secret outweighs an older node text",
                image: img,
                node: text(node::CONTAINERD_401),
                secrets: S::Refused,
                probe: P::None,
                ecr: None,
                private: &[],
                rule: "secret-undecodable",
                cause: CredentialsMissing,
                confidence: Medium,
                says: &["written before the secret changed"],
            },
            Row {
                name: "the node's decoder error without the secrets (scan)",
                image: img,
                node: text(
                    "json: cannot unmarshal array into Go value of type credentialprovider.DockerConfigJSON",
                ),
                secrets: S::Unread { named: true },
                probe: P::None,
                ecr: None,
                private: &[],
                rule: "secret-undecodable",
                cause: CredentialsMissing,
                confidence: Medium,
                says: &["could not decode a pull secret"],
            },
            Row {
                name: "the node's decoder error, every secret decodes now",
                image: img,
                node: text("illegal base64 data at input byte 3"),
                secrets: S::Usable,
                probe: P::None,
                ecr: None,
                private: &[],
                rule: "secret-undecodable",
                cause: CredentialsMissing,
                confidence: Low,
                says: &["repaired since"],
            },
            Row {
                name: "no registry prefix, secrets for a private registry",
                image: "team/app:v1",
                node: text(node::HUB_DENIED),
                secrets: S::Usable,
                probe: P::Anonymous(|| PullFailure::AccessDenied {
                    url: "https://registry-1.docker.io/v2/team/app/manifests/v1".into(),
                }),
                ecr: None,
                private: &[REG],
                rule: "wrong-registry",
                cause: WrongRegistry,
                confidence: High,
                says: &["no registry prefix", REG],
            },
            Row {
                name: "wrong registry without a probe: medium",
                image: "team/app:v1",
                node: text(node::HUB_DENIED),
                secrets: S::Usable,
                probe: P::None,
                ecr: None,
                private: &[REG],
                rule: "wrong-registry",
                cause: WrongRegistry,
                confidence: Medium,
                says: &["no registry prefix"],
            },
            Row {
                name: "ECR 403 with an expired token; the probe's 403 is explained",
                image: ecr_img,
                node: text(node::ECR_403),
                secrets: S::EcrToken { expired: true },
                probe: P::WithCred(|| status(403)),
                ecr: None,
                private: &[],
                rule: "ecr-token-expired",
                cause: CredentialsExpired,
                confidence: High,
                says: &["expired at", "got HTTP 403", "ECR refuses an expired token"],
            },
            Row {
                name: "Docker's wording of ECR's 403 with an expired token",
                image: ecr_img,
                node: text(node::ECR_DOCKER_DENIED),
                secrets: S::EcrToken { expired: true },
                probe: P::None,
                ecr: None,
                private: &[],
                rule: "ecr-token-expired",
                cause: CredentialsExpired,
                confidence: High,
                says: &["Docker words ECR's 403"],
            },
            Row {
                name: "Docker's ECR wording with a young token: the node's reading stands",
                image: ecr_img,
                node: text(node::ECR_DOCKER_DENIED),
                secrets: S::EcrToken { expired: false },
                probe: P::None,
                ecr: None,
                private: &[],
                rule: "node-text",
                cause: RepositoryNotFound,
                confidence: Medium,
                says: &["requested access to the resource is denied"],
            },
            Row {
                name: "ECR 403 with a valid token: access denied",
                image: ecr_img,
                node: text(node::ECR_403),
                secrets: S::EcrToken { expired: false },
                probe: P::None,
                ecr: None,
                private: &[],
                rule: "ecr-token-valid",
                cause: AccessDenied,
                confidence: Medium,
                says: &["valid until", "not allowed"],
            },
            Row {
                name: "ECR 403 with no pull secret at all: no token is called stale",
                image: ecr_img,
                node: text(node::ECR_403),
                secrets: S::NoSecrets,
                probe: P::None,
                ecr: ecr_answers(),
                private: &[],
                // Who pulls on such a node (its IAM role) is issue 14's;
                // here only: nothing claims a secret that does not exist.
                rule: "node-text",
                cause: CredentialsExpired,
                confidence: Low,
                says: &["the node says `HTTP 403 from ECR`"],
            },
            Row {
                name: "ECR 403, no token to decode, the AWS identity gets a token",
                image: ecr_img,
                node: text(node::ECR_403),
                secrets: S::Unusable,
                probe: P::None,
                ecr: ecr_answers(),
                private: &[],
                rule: "ecr-api-token-works",
                cause: CredentialsExpired,
                confidence: Medium,
                says: &["GetAuthorizationToken works"],
            },
            Row {
                name: "no pull secret at all",
                image: img,
                node: text(node::NO_BASIC_AUTH),
                secrets: S::NoSecrets,
                probe: P::Anonymous(|| PullFailure::NoBasicCredentials {
                    url: "https://reg.example.com/v2/".into(),
                }),
                ecr: None,
                private: &[],
                rule: "no-credential",
                cause: CredentialsMissing,
                confidence: High,
                says: &["name no pull secret"],
            },
            Row {
                name: "a secret the kubelet ignores, and a 401 text",
                image: img,
                node: text(node::CONTAINERD_401),
                secrets: S::Unusable,
                probe: P::None,
                ecr: None,
                private: &[],
                rule: "no-credential",
                cause: CredentialsMissing,
                confidence: Medium,
                says: &[
                    "the pod's pull secret `regcred` gives the kubelet no credential for reg.example.com",
                    "nothing was sent",
                ],
            },
            Row {
                name: "stale-secret-many-namespaces, shop-c: Docker's `authentication required`, the probe with the secret's credential got 401",
                image: img,
                node: text(node::DOCKER_AUTH_REQUIRED),
                secrets: S::Usable,
                probe: P::WithCred(|| status(401)),
                ecr: None,
                private: &[],
                rule: "rejected-worded-as-missing",
                cause: CredentialsRejected,
                confidence: High,
                says: &[
                    "the node says `unauthorized: authentication required`",
                    "got HTTP 401",
                    "the password is wrong",
                ],
            },
            Row {
                name: "`authentication required` with a credential, not probed",
                image: img,
                node: text(node::DOCKER_AUTH_REQUIRED),
                secrets: S::Usable,
                probe: P::None,
                ecr: None,
                private: &[],
                rule: "rejected-worded-as-missing",
                cause: CredentialsRejected,
                confidence: Medium,
                says: &["sends `pullfix` from `regcred`"],
            },
            Row {
                name: "scan: `authentication required` and the pod names a pull secret",
                image: img,
                node: text(node::DOCKER_AUTH_REQUIRED),
                secrets: S::Unread { named: true },
                probe: P::None,
                ecr: None,
                private: &[],
                rule: "rejected-worded-as-missing",
                cause: CredentialsRejected,
                confidence: Low,
                says: &["names a pull secret"],
            },
            Row {
                name: "scan: `authentication required` and no pull secret named",
                image: img,
                node: text(node::DOCKER_AUTH_REQUIRED),
                secrets: S::Unread { named: false },
                probe: P::None,
                ecr: None,
                private: &[],
                rule: "node-text",
                cause: CredentialsMissing,
                confidence: Medium,
                says: &["not probed"],
            },
            Row {
                name: "a timeout on the node and here",
                image: img,
                node: text(node::TIMEOUT),
                secrets: S::Usable,
                probe: P::Unreachable,
                ecr: None,
                private: &[],
                rule: "unreachable-from-both",
                cause: RegistryUnreachable,
                confidence: High,
                says: &["cannot reach the registry either"],
            },
            Row {
                name: "only the back-off left, unreachable from here",
                image: img,
                node: backoff(),
                secrets: S::Usable,
                probe: P::Unreachable,
                ecr: None,
                private: &[],
                rule: "unreachable-here-decides",
                cause: RegistryUnreachable,
                confidence: Low,
                says: &["Back-off pulling image"],
            },
            Row {
                name: "a 401 on the node, unreachable from here",
                image: img,
                node: text(node::CONTAINERD_401),
                secrets: S::Usable,
                probe: P::Unreachable,
                ecr: None,
                private: &[],
                rule: "probe-inconclusive",
                cause: CredentialsRejected,
                confidence: Medium,
                says: &["could not be checked"],
            },
            Row {
                name: "a timeout on the node, the registry answers here",
                image: img,
                node: text(node::TIMEOUT),
                secrets: S::Usable,
                probe: P::Resolves,
                ecr: None,
                private: &[],
                rule: "node-network-only",
                cause: RegistryUnreachable,
                confidence: High,
                says: &["between the node and the registry"],
            },
            Row {
                name: "a 401 on the node, the image resolves here with the same credential",
                image: img,
                node: text(node::CONTAINERD_401),
                secrets: S::Usable,
                probe: P::Resolves,
                ecr: None,
                private: &[],
                rule: "resolves-here",
                cause: CredentialsRejected,
                confidence: Low,
                says: &["resolves the image", "node-level credentials"],
            },
            Row {
                name: "a 429 on the node, resolves here",
                image: "nginx:1.25",
                node: text(node::RATE),
                secrets: S::NoSecrets,
                probe: P::Resolves,
                ecr: None,
                private: &[],
                rule: "resolves-here",
                cause: RateLimited,
                confidence: High,
                says: &["per client address"],
            },
            Row {
                name: "only the back-off left, ECR says the tag is missing",
                image: ecr_img,
                node: backoff(),
                secrets: S::Unreadable,
                probe: P::None,
                ecr: Some(EcrCheck {
                    image_exists: Some(false),
                    token_available: None,
                    error: None,
                }),
                private: &[],
                rule: "ecr-says-tag-missing",
                cause: ImageNotFound,
                confidence: Medium,
                says: &["DescribeImages"],
            },
            Row {
                name: "only the back-off left, the registry says 404",
                image: img,
                node: backoff(),
                secrets: S::Usable,
                probe: P::WithCred(|| PullFailure::NotFound {
                    url: "https://reg.example.com/v2/team/app/manifests/v1".into(),
                }),
                ecr: None,
                private: &[],
                rule: "registry-decides",
                cause: ImageNotFound,
                confidence: Medium,
                says: &["404 manifest unknown"],
            },
            Row {
                name: "a 404 on the node, 404 here",
                image: "reg.example.com/team/app:v9",
                node: text(node::NOT_FOUND),
                secrets: S::Usable,
                probe: P::WithCred(|| PullFailure::NotFound {
                    url: "https://reg.example.com/v2/team/app/manifests/v9".into(),
                }),
                ecr: None,
                private: &[],
                rule: "registry-agrees",
                cause: ImageNotFound,
                confidence: High,
                says: &[
                    "the node says `reg.example.com/team/app:v9: not found`",
                    "got 404 manifest unknown",
                ],
            },
            Row {
                name: "a 401 on the node, 401 with the same credential here",
                image: img,
                node: text(node::CONTAINERD_401),
                secrets: S::Usable,
                probe: P::WithCred(|| status(401)),
                ecr: None,
                private: &[],
                rule: "registry-agrees",
                cause: CredentialsRejected,
                confidence: High,
                says: &["got HTTP 401"],
            },
            Row {
                name: "a 403 on the node, 404 here with the same credential",
                image: img,
                node: text(node::FORBIDDEN),
                secrets: S::Usable,
                probe: P::WithCred(|| PullFailure::NotFound {
                    url: "https://reg.example.com/v2/team/app/manifests/v1".into(),
                }),
                ecr: None,
                private: &[],
                rule: "node-over-registry",
                cause: AccessDenied,
                confidence: Low,
                says: &["would mean image-not-found", "the node's own text decides"],
            },
            Row {
                name: "a platform mismatch, not probed",
                image: img,
                node: text(node::PLATFORM),
                secrets: S::Usable,
                probe: P::None,
                ecr: None,
                private: &[],
                rule: "node-text",
                cause: PlatformMismatch,
                confidence: High,
                says: &["not probed"],
            },
            Row {
                name: "unreadable secrets: an anonymous failure says nothing",
                image: img,
                node: text(node::CONTAINERD_401),
                secrets: S::Unreadable,
                probe: P::Anonymous(|| status(401)),
                ecr: None,
                private: &[],
                rule: "node-text",
                cause: CredentialsRejected,
                confidence: Medium,
                says: &["could not be read", "unread credential"],
            },
        ]
    }

    #[test]
    fn every_row_decides_as_the_table_says() {
        let mut failures = Vec::new();
        for r in rows() {
            let v = run(&r);
            let ok = v.decision.rule == r.rule
                && v.cause == r.cause
                && v.confidence == r.confidence
                && r.says.iter().all(|w| v.decision.because.contains(w));
            if !ok {
                failures.push(format!(
                    "{}: expected {} → {} ({:?}) saying {:?}\n  got {} → {} ({:?}): {}",
                    r.name,
                    r.rule,
                    r.cause.id(),
                    r.confidence,
                    r.says,
                    v.decision.rule,
                    v.cause.id(),
                    v.confidence,
                    v.decision.because
                ));
            }
            // Said in words, never as a bare contradiction.
            assert!(!v.decision.because.contains('≠'), "{}", r.name);
            assert!(
                !v.decision.because.contains('<'),
                "{}: {}",
                r.name,
                v.decision.because
            );
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn every_rule_has_a_row() {
        let covered: Vec<&str> = rows().iter().map(|r| r.rule).collect();
        for rule in RULES {
            assert!(covered.contains(&rule.id), "no row for rule `{}`", rule.id);
        }
    }

    #[test]
    fn readings_keep_each_sources_view() {
        let r = rows()
            .into_iter()
            .find(|r| r.rule == "rejected-worded-as-missing" && r.confidence == High)
            .unwrap();
        let v = run(&r);
        assert_eq!(
            v.decision.readings,
            vec![
                Reading {
                    source: "kubelet",
                    cause: Cause::CredentialsMissing
                },
                Reading {
                    source: "registry",
                    cause: Cause::CredentialsRejected
                },
            ]
        );
    }

    /// `docs/causes.md` lists the rules in the table's order.
    #[test]
    fn the_docs_list_the_rules_in_order() {
        let doc = include_str!("../../../../docs/causes.md");
        let section = doc
            .split("## How the cause is decided")
            .nth(1)
            .expect("docs/causes.md has a `How the cause is decided` section");
        let mut at = 0;
        for rule in RULES {
            let needle = format!("| `{}` | {} |", rule.id, rule.proves);
            let found = section[at..]
                .find(&needle)
                .unwrap_or_else(|| panic!("docs/causes.md: `{}` missing or out of order", rule.id));
            at += found + needle.len();
        }
    }
}
