//! The training scripts as data: one YAML file per scenario under
//! `train/scripts/`, compiled in with `include_str!` and parsed when a
//! script is asked for.
//!
//! A file holds the script's texts (alert, pressure, the rounds with their
//! four choices, the lesson). `${name}` in a text is filled in from the
//! [`Facts`]: `${ns}` (the namespace), `${registry}` (the team's registry
//! host) and `${user}` (the registry user in the pull secret), plus, for
//! the scenarios whose tables line up namespace names, the tables
//! themselves (`${secrets_table}`, `${deployments_table}`). Everything else
//! in a script is fixed per scenario (see [`Facts::for_scenario`]) and
//! written out as is. The texts assume the sandbox's registries, which
//! speak plain HTTP on loopback.

use serde::Deserialize;

use super::{Choice, Facts, Round, Script, scenarios};

/// Every script file, by scenario id.
const FILES: &[(&str, &str)] = &[
    ("ecr-expired", include_str!("scripts/ecr-expired.yaml")),
    (
        "stale-secret-many-namespaces",
        include_str!("scripts/stale-secret-many-namespaces.yaml"),
    ),
    (
        "rotated-password-partial",
        include_str!("scripts/rotated-password-partial.yaml"),
    ),
    (
        "rotated-password",
        include_str!("scripts/rotated-password.yaml"),
    ),
    (
        "missing-prefix",
        include_str!("scripts/missing-prefix.yaml"),
    ),
    ("wrong-tag", include_str!("scripts/wrong-tag.yaml")),
    (
        "sa-secret-only",
        include_str!("scripts/sa-secret-only.yaml"),
    ),
    (
        "no-pull-secrets",
        include_str!("scripts/no-pull-secrets.yaml"),
    ),
    ("secret-opaque", include_str!("scripts/secret-opaque.yaml")),
    ("rate-limited", include_str!("scripts/rate-limited.yaml")),
    (
        "unreachable-refused",
        include_str!("scripts/unreachable-refused.yaml"),
    ),
];

/// A script file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScriptFile {
    scenario: String,
    alert: String,
    pressure: String,
    rounds: Vec<RoundFile>,
    lesson: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RoundFile {
    situation: String,
    /// The key of the best choice (`A`-`D`).
    best: String,
    /// Four choices, keyed `A`-`D` in order.
    choices: Vec<ChoiceFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ChoiceFile {
    action: String,
    consequence: String,
    minutes: u32,
}

const KEYS: [char; 4] = ['A', 'B', 'C', 'D'];

/// The script of `scenario` filled in from `facts`; `None` for scenarios
/// without one. The files are checked by the tests, so a broken one is a
/// bug: it panics with the file's name and the reason.
pub fn script(scenario: &str, facts: &Facts) -> Option<Script> {
    let (id, text) = FILES.iter().find(|(id, _)| *id == scenario)?;
    let id = scenarios().iter().find(|s| *s == id)?;
    Some(
        load(id, text, facts).unwrap_or_else(|e| panic!("train/scripts/{id}.yaml is invalid: {e}")),
    )
}

/// Parses and fills in one file.
fn load(id: &'static str, text: &str, facts: &Facts) -> Result<Script, String> {
    let file: ScriptFile = serde_saphyr::from_str(text).map_err(|e| e.to_string())?;
    if file.scenario != id {
        return Err(format!("it says it is the script of {}", file.scenario));
    }
    let vars = variables(id, facts);
    let fill = |t: &str| fill(t, &vars);
    let rounds = file
        .rounds
        .iter()
        .enumerate()
        .map(|(i, r)| round(r, &fill).map_err(|e| format!("round {}: {e}", i + 1)))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Script {
        scenario: id,
        alert: fill(&file.alert)?,
        pressure: fill(&file.pressure)?,
        rounds,
        lesson: fill(&file.lesson)?,
    })
}

fn round(r: &RoundFile, fill: &impl Fn(&str) -> Result<String, String>) -> Result<Round, String> {
    let best = match r.best.as_str() {
        "A" => 'A',
        "B" => 'B',
        "C" => 'C',
        "D" => 'D',
        other => return Err(format!("best is {other:?}, not one of A-D")),
    };
    if r.choices.len() != KEYS.len() {
        return Err(format!("{} choices, not 4", r.choices.len()));
    }
    let choices = r
        .choices
        .iter()
        .zip(KEYS)
        .map(|(c, key)| {
            Ok(Choice {
                key,
                action: fill(&c.action)?,
                consequence: fill(&c.consequence)?,
                minutes: c.minutes,
                best: key == best,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok(Round {
        situation: fill(&r.situation)?,
        choices,
    })
}

/// What `${name}` stands for in `id`'s script.
fn variables(id: &str, f: &Facts) -> Vec<(&'static str, String)> {
    let mut vars = vec![
        ("ns", f.namespace.clone()),
        ("registry", f.registry.clone()),
        ("user", f.registry_user.clone()),
        // What scan says of the workload when the alert fires.
        ("severity", format!("{:?}", f.severity())),
    ];
    match id {
        "stale-secret-many-namespaces" => {
            let all: Vec<&str> = std::iter::once(f.namespace.as_str())
                .chain(f.other_namespaces.iter().map(String::as_str))
                .collect();
            let mut secrets = String::from(
                "NAMESPACE       NAME      TYPE                             DATA   AGE",
            );
            for n in &all {
                let ty = "kubernetes.io/dockerconfigjson";
                secrets.push_str(&format!("\n{n:<15} regcred   {ty:<32} 1      92d"));
            }
            let mut deployments =
                String::from("NAMESPACE       NAME       READY   UP-TO-DATE   AVAILABLE   AGE");
            for n in &all {
                deployments.push_str(&format!(
                    "\n{n:<15} {w:<10} 0/1     1            0           21m",
                    w = f.workload
                ));
            }
            vars.push(("secrets_table", secrets));
            vars.push(("deployments_table", deployments));
        }
        "rotated-password-partial" => {
            vars.push(("deployments_table", partial_deployments_table(f)));
        }
        _ => {}
    }
    vars
}

/// `kubectl get deployments -A` across the namespace, the sibling fixed by
/// hand (ready) and the one still stale.
fn partial_deployments_table(f: &Facts) -> String {
    let ns = f.namespace.as_str();
    let (w, r) = (&f.workload, f.replicas);
    let fixed = f.fixed_sibling.clone().unwrap_or_else(|| format!("{ns}-b"));
    let stale = f
        .other_namespaces
        .first()
        .cloned()
        .unwrap_or_else(|| format!("{ns}-c"));
    let width = [ns, fixed.as_str(), stale.as_str(), "NAMESPACE"]
        .iter()
        .map(|n| n.len())
        .max()
        .unwrap_or(9);
    let mut t = format!(
        "{:<width$}   NAME       READY   UP-TO-DATE   AVAILABLE   AGE",
        "NAMESPACE"
    );
    for (n, ready) in [(ns, 0), (fixed.as_str(), r), (stale.as_str(), 0)] {
        t.push_str(&format!(
            "\n{n:<width$}   {w:<8}   {ready}/{r}     {r}            {ready}           34m"
        ));
    }
    t
}

/// Replaces every `${name}` in `text`; an unknown name or an unclosed
/// `${` is an error.
fn fill(text: &str, vars: &[(&str, String)]) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| format!("unclosed ${{ in {text:?}"))?;
        let name = &after[..end];
        let value = vars
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v)
            .ok_or_else(|| format!("unknown variable ${{{name}}}"))?;
        out.push_str(value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenarios::LabEnv;

    fn env(registry: &str, user: &str) -> LabEnv {
        LabEnv {
            registry: registry.into(),
            user: user.into(),
            password: "pw".into(),
            token_registry: "127.0.0.1:36501".into(),
            token_user: "tokenuser".into(),
            token_password: "tpw".into(),
            anon_registry: "127.0.0.1:36503".into(),
            untrusted_registry: "127.0.0.1:36507".into(),
            ecr_password: "123456789012-auth-token".into(),
        }
    }

    #[test]
    fn every_file_parses_and_fills_in() {
        let facts_env = env("127.0.0.1:36500", "pullfix");
        for (id, text) in FILES {
            let facts = Facts::for_scenario(id, "shop", &facts_env);
            let s = script(id, &facts).unwrap_or_else(|| panic!("{id}: no script"));
            assert!(!s.rounds.is_empty(), "{id}");
            for t in std::iter::once(&s.alert)
                .chain([&s.pressure, &s.lesson])
                .chain(s.rounds.iter().map(|r| &r.situation))
                .chain(
                    s.rounds
                        .iter()
                        .flat_map(|r| &r.choices)
                        .flat_map(|c| [&c.action, &c.consequence]),
                )
            {
                assert!(!t.contains("${"), "{id}: {t}");
            }
            assert!(text.contains(&format!("scenario: {id}\n")), "{id}");
        }
        let ids: Vec<&str> = FILES.iter().map(|(id, _)| *id).collect();
        assert_eq!(
            ids,
            scenarios(),
            "one file per scenario with a script, in order"
        );
    }

    /// The alert states the severity scan gives (observation 14 of issue
    /// 12: the alert said P2 where scan said P1).
    #[test]
    fn every_alert_states_scan_s_severity() {
        let facts_env = env("127.0.0.1:36500", "pullfix");
        for (id, _) in FILES {
            let facts = Facts::for_scenario(id, "shop", &facts_env);
            let s = script(id, &facts).unwrap_or_else(|| panic!("{id}: no script"));
            let expected = pullfix::scan::severity(0, false);
            assert_eq!(facts.severity(), expected, "{id}");
            assert!(
                s.alert.starts_with(&format!("{expected:?} ")),
                "{id}: the alert says {:?}, scan says {expected:?}",
                s.alert
            );
        }
    }

    /// Every scenario that had a script in code (before the scripts became
    /// data) still has one, with the same content: SHA-256 of the filled-in
    /// script's `Debug` text as the code rendered it, for two sets of facts
    /// (a short and a long namespace, two registries and users).
    #[test]
    fn same_content_as_the_scripts_in_code() {
        use sha2::{Digest, Sha256};
        // Changed since: the alerts state scan's severity (issue 12), which
        // turned five P2 alerts into P1.
        let expected: &[(&str, &str, &str)] = &[
            (
                "ecr-expired",
                "b29a0c8cf1760ec31cd02d45bf0975f91acc04146e3f4e20878ba260045c3e16",
                "6e332b9d639c1530d636f76ade80254dc9b4e7d74d857952b34eda898e9e470d",
            ),
            (
                "stale-secret-many-namespaces",
                "81087c0b0a29efb107357b24a0ef29057a82df70002225928cf7df25f6df297d",
                "010ddf092d5c26b85251531da16e826fc61f25860619e79ea034e86d0f671e45",
            ),
            (
                "rotated-password-partial",
                "82a4c4dd638d5da16348210be666c42e0207898ba2fbb07f75077889270100e2",
                "1cbc99058aff7ff32736ed93c2540ce10ffadffdeaf37dedcb0a4c10a05c02b4",
            ),
            (
                "rotated-password",
                "15969074f0f334645f479a070702274c2c82cb808873026768050e2dcfe5dbf0",
                "e4064dafaaa3cddd74b9358a3261abb911de6103c26bc6e4c717330de5863dab",
            ),
            (
                "missing-prefix",
                "6d8f46b5519d556fcf3c0e12c0ea9dfe0944bae0c5a99e3b227d5aa3c349a4c0",
                "27781e179f9af55450951173777639b0a3fa5dae18f5d7b892a6317b614c04ca",
            ),
            (
                "wrong-tag",
                "c451661899afe8883119718e84fdb3e577e25e144148e71324fc69391b3445d5",
                "f2d7385a1d174629c64a0335c1ed6eeee2d908dc95bc83307b91a5be2d45e835",
            ),
            (
                "sa-secret-only",
                "023de52706b3087bff2be8e367f3c1ea45eb6b102789c558f63d24e7ed49fbc3",
                "28be58548d2e62908181ca861831dac3578cd0802131f33ce541a3b92a154843",
            ),
            (
                "no-pull-secrets",
                "5140daa1c4271ab2690c88caea95e5111c8e578d0dd55a8feb984290b6a17879",
                "043286a334b234a646bec12effc5feb0552efcf4cae967efd712fa88cc0fbe5c",
            ),
            (
                "secret-opaque",
                "5b40672294d283c5a6373b0712b30b2e8a26b9498df25066d190fec26f28bfeb",
                "63c42b9c5ccd8ffc5ae3e5cadf70b7da2d191c48319989f10adb6c5f996e92ad",
            ),
            (
                "rate-limited",
                "410d3a80898e89d06c5ad0ad13b75f552111883f37cad76f8528d77c1e2a482b",
                "09318c297ba379e8f9e083abf91c3af90fb694f36a8622c910a97d2b8d9d2602",
            ),
            (
                "unreachable-refused",
                "1fd004350f5773cf217d7c0f0f619afd9ed4b05a9301509a9d3a8d44806054f5",
                "8826d7fe512f8a6763a80d0a0a081cebe2fef123edb2b2065af4d7fd750dddca",
            ),
        ];
        let short = env("127.0.0.1:36500", "pullfix");
        let long = env("127.0.0.1:40111", "ci-bot");
        let digest = |s: &Script| hex::encode(Sha256::digest(format!("{s:?}").as_bytes()));
        for (id, want_short, want_long) in expected {
            let a = script(id, &Facts::for_scenario(id, "shop", &short))
                .unwrap_or_else(|| panic!("{id}: no script"));
            let b = script(
                id,
                &Facts::for_scenario(id, "payments-production-eu", &long),
            )
            .unwrap_or_else(|| panic!("{id}: no script"));
            assert_eq!(digest(&a), *want_short, "{id} in shop: the content changed");
            assert_eq!(
                digest(&b),
                *want_long,
                "{id} in payments-production-eu: the content changed"
            );
        }
        let ids: Vec<&str> = expected.iter().map(|(id, _, _)| *id).collect();
        assert_eq!(ids, scenarios());
    }

    #[test]
    fn fill_replaces_known_names_only() {
        let vars = [("ns", "shop".to_string())];
        assert_eq!(fill("-n ${ns} {x} $y", &vars).unwrap(), "-n shop {x} $y");
        assert!(fill("${nope}", &vars).is_err());
        assert!(fill("${ns", &vars).is_err());
    }

    #[test]
    fn a_file_must_name_its_scenario_and_have_four_choices() {
        let facts = Facts::for_scenario("wrong-tag", "shop", &env("127.0.0.1:1", "u"));
        let bad = "scenario: other\nalert: a\npressure: p\nrounds: []\nlesson: l\n";
        assert!(load("wrong-tag", bad, &facts).is_err());
        let three = "scenario: wrong-tag\nalert: a\npressure: p\nlesson: l\nrounds:\n  - situation: s\n    best: A\n    choices:\n      - {action: a, consequence: c, minutes: 1}\n";
        let e = load("wrong-tag", three, &facts).unwrap_err();
        assert!(e.contains("1 choices, not 4"), "{e}");
    }
}
