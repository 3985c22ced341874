//! Training mode (`kubectl pullfix sandbox SCENARIO --train`): a scenario
//! told as an incident replay. The alert and the pressure first; then, round
//! by round, the situation and four moves a responder might make. A wrong
//! move shows what it would really show and costs minutes; the right one
//! moves the incident on and reveals what the others would have shown. A
//! damage report closes it: time taken against the optimal path, the wrong
//! turns, the lesson.
//!
//! The guided fix (`kubectl pullfix`) is the reference path: the last
//! round's right move is what the tool does (or what its summary sends you
//! to do next), and the report points at it.
//!
//! Scripts are data, one YAML file per scenario under `train/scripts/`
//! (see `data`), filled in from [`Facts`] so the namespaces and hosts match
//! the sandbox; they never contain a credential (commands that need one
//! read it from a variable or a file).

use std::io::{BufRead, Write};

mod data;

use crate::scenarios::{ECR_HOST, LabEnv, REFUSED_HOST};

/// One scenario as an incident replay.
#[derive(Debug, Clone)]
pub struct Script {
    pub scenario: &'static str,
    /// What pages you.
    pub alert: String,
    /// What makes it hard to think.
    pub pressure: String,
    pub rounds: Vec<Round>,
    pub lesson: String,
}

/// One decision point.
#[derive(Debug, Clone)]
pub struct Round {
    pub situation: String,
    /// Four choices, keys `A`-`D`, exactly one `best`.
    pub choices: Vec<Choice>,
}

/// One move and what it leads to.
#[derive(Debug, Clone)]
pub struct Choice {
    pub key: char,
    /// What the responder does, usually a command.
    pub action: String,
    /// What it shows: output lines, then lines starting with `→ ` that say
    /// what it means.
    pub consequence: String,
    /// Minutes it costs.
    pub minutes: u32,
    pub best: bool,
}

/// Marks the explanatory lines of a consequence.
const NOTE: &str = "→ ";

impl Choice {
    /// The output part of the consequence (what the command prints).
    pub fn output(&self) -> String {
        self.consequence
            .lines()
            .filter(|l| !l.starts_with(NOTE))
            .collect::<Vec<_>>()
            .join("\n")
            .trim_end()
            .to_string()
    }

    /// The explanation part of the consequence.
    pub fn note(&self) -> String {
        self.consequence
            .lines()
            .filter_map(|l| l.strip_prefix(NOTE))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Whether the action is a command that only reads (safe to run for
    /// real against the sandbox to show its true output).
    pub fn is_read_only(&self) -> bool {
        let a = self.action.as_str();
        let reads = [
            "kubectl get ",
            "kubectl describe ",
            "kubectl logs ",
            "kubectl pullfix diagnose ",
            "kubectl pullfix scan",
            "curl ",
            "aws ecr describe-images ",
        ]
        .iter()
        .any(|p| a.starts_with(p));
        let writes = [
            " apply ",
            " create ",
            " delete ",
            " patch ",
            " set ",
            " edit ",
            " rollout ",
            "&&",
        ]
        .iter()
        .any(|w| a.contains(w));
        reads && !writes
    }
}

/// What the scripts need to know about the sandbox, so their texts match
/// it. No credential is ever part of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    pub namespace: String,
    /// The Deployment's name (and its container's).
    pub workload: String,
    /// The failing image, as written in the pod spec.
    pub image: String,
    /// The registry host the team's images come from.
    pub registry: String,
    /// The registry user in the pull secret (a name, not a secret).
    pub registry_user: String,
    /// The repository in that registry (`team/checkout`).
    pub repository: String,
    /// The tag that should run.
    pub good_tag: String,
    /// The repository's tags.
    pub tags: Vec<String>,
    pub replicas: u32,
    /// Replicas ready when the alert fires (none, in every scenario).
    pub ready: u32,
    /// The pull secret's name.
    pub secret: String,
    /// The ServiceAccount the pods run as.
    pub service_account: String,
    /// Other namespaces holding the same stale secret.
    pub other_namespaces: Vec<String>,
    /// A sibling namespace whose copy of the secret was already fixed by
    /// hand (it holds the working credential).
    pub fixed_sibling: Option<String>,
    /// A node the pods are scheduled on.
    pub node: String,
    /// The CronJob that refreshes the ECR token.
    pub cronjob: String,
    pub cronjob_schedule: String,
    /// Age of the ECR token in the pull secret (ECR tokens last 12 h).
    pub token_age_hours: u32,
    /// How long the refresh CronJob has been failing.
    pub refresh_failing_hours: u32,
    /// The address an unreachable registry's name resolves to.
    pub unreachable_ip: String,
}

impl Facts {
    /// The facts of a lab scenario (see `src/lab/scenarios.rs`) loaded into
    /// `namespace`, with the sandbox's registries.
    pub fn for_scenario(scenario: &str, namespace: &str, env: &LabEnv) -> Facts {
        let mut f = Facts {
            namespace: namespace.to_string(),
            workload: "checkout".into(),
            image: format!("{}/team/checkout:v2.1.0", env.registry),
            registry: env.registry.clone(),
            registry_user: env.user.clone(),
            repository: "team/checkout".into(),
            good_tag: "v2.1.0".into(),
            tags: ["latest", "v2.0.3", "v2.1.0", "v2.1.1"]
                .map(String::from)
                .to_vec(),
            replicas: 1,
            ready: 0,
            secret: "regcred".into(),
            service_account: "default".into(),
            other_namespaces: Vec::new(),
            fixed_sibling: None,
            node: "lab-k133-cd21".into(),
            cronjob: "ecr-token-refresh".into(),
            cronjob_schedule: "0 */10 * * *".into(),
            token_age_hours: 14,
            refresh_failing_hours: 6,
            unreachable_ip: "10.0.40.12".into(),
        };
        match scenario {
            "ecr-expired" => {
                f.registry = ECR_HOST.into();
                f.registry_user = "AWS".into();
                f.image = format!("{ECR_HOST}/team/checkout:v2.1.0");
                f.replicas = 5;
            }
            "stale-secret-many-namespaces" => {
                f.other_namespaces = vec![format!("{namespace}-b"), format!("{namespace}-c")];
            }
            "rotated-password-partial" => {
                f.other_namespaces = vec![format!("{namespace}-c")];
                f.fixed_sibling = Some(format!("{namespace}-b"));
                f.replicas = 2;
            }
            "rotated-password" => f.replicas = 2,
            "missing-prefix" => {
                f.image = "team/checkout:v2.1.0".into();
                f.replicas = 2;
            }
            "wrong-tag" => {
                f.image = format!("{}/team/checkout:v2.1.9", env.registry);
                f.replicas = 2;
            }
            "sa-secret-only" => f.service_account = "checkout".into(),
            "rate-limited" => {
                f.workload = "web".into();
                f.image = "nginx:1.25".into();
                f.repository = "library/nginx".into();
                f.good_tag = "1.25".into();
                f.replicas = 2;
            }
            "unreachable-refused" => {
                f.registry = REFUSED_HOST.into();
                f.image = format!("{REFUSED_HOST}/team/checkout:v2.1.0");
            }
            _ => {}
        }
        f
    }

    /// The severity scan gives the workload (the same function), which the
    /// alert states.
    pub fn severity(&self) -> pullfix::scan::Severity {
        pullfix::scan::severity(i64::from(self.ready), false)
    }

    /// The image's registry host (`docker.io` when the reference has none).
    #[cfg(test)]
    fn host(&self) -> String {
        match self.image.split_once('/') {
            Some((first, _))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                first.to_string()
            }
            _ => "docker.io".into(),
        }
    }

    /// The image as the runtime names it (`docker.io/library/nginx:1.25`).
    #[cfg(test)]
    fn full_image(&self) -> String {
        if self.host() != "docker.io" {
            return self.image.clone();
        }
        if self.image.contains('/') {
            format!("docker.io/{}", self.image)
        } else {
            format!("docker.io/library/{}", self.image)
        }
    }

    /// `repository` and `tag` of the failing image, without the host.
    #[cfg(test)]
    fn path_and_tag(&self) -> (String, String) {
        let full = self.full_image();
        let rest = full.split_once('/').map_or(full.as_str(), |(_, r)| r);
        match rest.rsplit_once(':') {
            Some((p, t)) => (p.to_string(), t.to_string()),
            None => (rest.to_string(), "latest".into()),
        }
    }

    /// The manifest URL the runtime asks for.
    #[cfg(test)]
    fn manifest_url(&self) -> String {
        let host = match self.host().as_str() {
            "docker.io" => "registry-1.docker.io".to_string(),
            h => h.to_string(),
        };
        let (path, tag) = self.path_and_tag();
        format!("{}://{host}/v2/{path}/manifests/{tag}", scheme(&host))
    }

    #[cfg(test)]
    fn good_image(&self) -> String {
        format!("{}/{}:{}", self.registry, self.repository, self.good_tag)
    }

    #[cfg(test)]
    fn region(&self) -> String {
        self.registry
            .split('.')
            .nth(3)
            .unwrap_or("us-east-1")
            .to_string()
    }
}

/// The sandbox's registries speak plain HTTP on loopback.
#[cfg(test)]
fn scheme(host: &str) -> &'static str {
    if host.starts_with("127.") || host.starts_with("localhost") || host.starts_with("[::1]") {
        "http"
    } else {
        "https"
    }
}

/// Scenarios that have a script, in the runbook's order.
pub fn scenarios() -> &'static [&'static str] {
    &[
        "ecr-expired",
        "stale-secret-many-namespaces",
        "rotated-password-partial",
        "rotated-password",
        "missing-prefix",
        "wrong-tag",
        "sa-secret-only",
        "no-pull-secrets",
        "secret-opaque",
        "rate-limited",
        "unreachable-refused",
    ]
}

/// The script of a scenario; `None` for scenarios without one. The
/// scripts are data (`train/scripts/SCENARIO.yaml`), filled in from
/// `facts` (see [`data`]).
pub fn script(scenario: &str, facts: &Facts) -> Option<Script> {
    data::script(scenario, facts)
}

// ---------------------------------------------------------------------------
// Playing.

/// How a play went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Minutes spent, wrong turns included.
    pub minutes: u32,
    /// Minutes of the best path through the rounds played.
    pub optimal_minutes: u32,
    /// `Round N: K) action (+M min)`, in order.
    pub wrong_turns: Vec<String>,
    /// Rounds completed (the best choice found).
    pub rounds_played: usize,
    /// All rounds played (false when the input ended early).
    pub finished: bool,
}

/// Minutes of the best path through a whole script.
pub fn optimal_minutes(script: &Script) -> u32 {
    script
        .rounds
        .iter()
        .flat_map(|r| r.choices.iter().filter(|c| c.best))
        .map(|c| c.minutes)
        .sum()
}

const WIDTH: usize = 78;

/// Word-wraps `text` to [`WIDTH`], each line starting with `first` (then
/// `rest`).
fn wrap(text: &str, first: &str, rest: &str) -> String {
    let mut out = String::new();
    let mut line = first.to_string();
    let mut empty = true;
    for word in text.split_whitespace() {
        if !empty && line.chars().count() + 1 + word.chars().count() > WIDTH {
            out.push_str(line.trim_end());
            out.push('\n');
            line = rest.to_string();
            empty = true;
        }
        if !empty {
            line.push(' ');
        }
        line.push_str(word);
        empty = false;
    }
    out.push_str(line.trim_end());
    out
}

/// A consequence for the terminal: output indented as is, notes wrapped.
fn render_consequence(output: &str, note: &str) -> String {
    let mut s = String::new();
    for line in output.lines() {
        s.push_str("    ");
        s.push_str(line);
        s.push('\n');
    }
    if !note.is_empty() {
        s.push_str(&wrap(note, "  → ", "    "));
        s.push('\n');
    }
    s
}

/// Plays a script: reads one letter per round from `input` (re-asks on
/// anything else; EOF = stop with what was played), writes to `out`;
/// `auto` plays the best path without reading (for --yes / no TTY). `show`
/// lets the sandbox replace a consequence's output with the real output of
/// the command against the sandbox (return None to keep the scripted
/// text); it is called only for the choice made, and the caller decides
/// what is safe to run ([`Choice::is_read_only`]).
pub fn play(
    script: &Script,
    input: &mut dyn BufRead,
    out: &mut dyn Write,
    auto: bool,
    show: &mut dyn FnMut(&Choice) -> Option<String>,
) -> std::io::Result<Outcome> {
    let mut outcome = Outcome {
        minutes: 0,
        optimal_minutes: 0,
        wrong_turns: Vec::new(),
        rounds_played: 0,
        finished: false,
    };
    writeln!(out, "\n== Incident replay: {} ==\n", script.scenario)?;
    writeln!(out, "{}", wrap(&script.alert, "ALERT     ", "          "))?;
    writeln!(
        out,
        "{}",
        wrap(&script.pressure, "PRESSURE  ", "          ")
    )?;
    let total = script.rounds.len();
    for (i, round) in script.rounds.iter().enumerate() {
        let n = i + 1;
        show_round(out, round, n, total)?;
        let mut tried: Vec<char> = Vec::new();
        let best = loop {
            let choice = if auto {
                match round.choices.iter().find(|c| c.best) {
                    Some(c) => {
                        writeln!(out, "\nYour move [A-D]: {} (auto)", c.key)?;
                        c
                    }
                    None => break None,
                }
            } else {
                match read_move(input, out, round, &tried)? {
                    Move::Pick(c) => c,
                    Move::Again => continue,
                    Move::Ended => {
                        writeln!(out, "\n(input ended: stopping at round {n})")?;
                        return Ok(outcome);
                    }
                }
            };
            tried.push(choice.key);
            writeln!(
                out,
                "\n{}",
                wrap(&choice.action, &format!("  {}) ", choice.key), "     ")
            )?;
            let output = show(choice).unwrap_or_else(|| choice.output());
            write!(out, "{}", render_consequence(&output, &choice.note()))?;
            outcome.minutes += choice.minutes;
            if choice.best {
                writeln!(
                    out,
                    "\n  Right call: +{} min (clock: {} min).",
                    choice.minutes, outcome.minutes
                )?;
                break Some(choice);
            }
            outcome.wrong_turns.push(format!(
                "Round {n}: {}) {} (+{} min)",
                choice.key, choice.action, choice.minutes
            ));
            writeln!(
                out,
                "\n  Wrong turn: +{} min (clock: {} min). The incident is still on; choose again.",
                choice.minutes, outcome.minutes
            )?;
        };
        if let Some(best) = best {
            outcome.optimal_minutes += best.minutes;
        }
        show_untried(out, round, &tried)?;
        outcome.rounds_played = n;
    }
    outcome.finished = true;
    Ok(outcome)
}

/// A round's heading, situation and the four moves.
fn show_round(out: &mut dyn Write, round: &Round, n: usize, total: usize) -> std::io::Result<()> {
    writeln!(out, "\n-- Round {n} of {total} --\n")?;
    writeln!(out, "{}\n", wrap(&round.situation, "", ""))?;
    for c in &round.choices {
        writeln!(
            out,
            "{}",
            wrap(&c.action, &format!("  {}) ", c.key), "     ")
        )?;
    }
    Ok(())
}

/// What one prompt for a move got.
enum Move<'a> {
    Pick(&'a Choice),
    /// Not one letter A-D, or one already tried: ask again.
    Again,
    /// The input ended.
    Ended,
}

/// Asks for a move and reads one line.
fn read_move<'a>(
    input: &mut dyn BufRead,
    out: &mut dyn Write,
    round: &'a Round,
    tried: &[char],
) -> std::io::Result<Move<'a>> {
    write!(out, "\nYour move [A-D]: ")?;
    out.flush()?;
    let mut line = String::new();
    if input.read_line(&mut line)? == 0 {
        return Ok(Move::Ended);
    }
    let answer = line.trim().to_ascii_uppercase();
    let mut chars = answer.chars();
    let picked = match (chars.next(), chars.next()) {
        (Some(k), None) => round.choices.iter().find(|c| c.key == k),
        _ => None,
    };
    let Some(c) = picked else {
        write!(out, "Answer with one letter, A to D.")?;
        return Ok(Move::Again);
    };
    if tried.contains(&c.key) {
        write!(out, "You tried {} already; pick another.", c.key)?;
        return Ok(Move::Again);
    }
    Ok(Move::Pick(c))
}

/// What the moves not tried would have shown.
fn show_untried(out: &mut dyn Write, round: &Round, tried: &[char]) -> std::io::Result<()> {
    let others: Vec<&Choice> = round
        .choices
        .iter()
        .filter(|c| !tried.contains(&c.key))
        .collect();
    if others.is_empty() {
        return Ok(());
    }
    writeln!(out, "\n  What the other moves would have shown:")?;
    for c in others {
        writeln!(
            out,
            "\n{}",
            wrap(
                &format!("{} (+{} min)", c.action, c.minutes),
                &format!("  {}) ", c.key),
                "     "
            )
        )?;
        write!(out, "{}", render_consequence(&c.output(), &c.note()))?;
    }
    Ok(())
}

/// The closing report: time against the optimal path, the wrong turns, the
/// reference path (the guided fix), the lesson.
pub fn damage_report(script: &Script, outcome: &Outcome) -> String {
    let mut s = format!("== Damage report: {} ==\n\n", script.scenario);
    let optimal = optimal_minutes(script);
    let worst: u32 = script
        .rounds
        .iter()
        .flat_map(|r| &r.choices)
        .map(|c| c.minutes)
        .sum();
    if outcome.finished {
        let extra = outcome.minutes.saturating_sub(optimal);
        s.push_str(&format!(
            "Time to resolution:   {} min (optimal path: {optimal} min, {})\n",
            outcome.minutes,
            if extra == 0 {
                "you matched it".to_string()
            } else {
                format!("+{extra} min")
            }
        ));
    } else {
        s.push_str(&format!(
            "Stopped in round {} of {}: {} min spent (the optimal path through the rounds completed: {} min; the whole incident: {optimal} min)\n",
            outcome.rounds_played + 1,
            script.rounds.len(),
            outcome.minutes,
            outcome.optimal_minutes
        ));
    }
    s.push_str(&format!(
        "Worst case:           {worst} min (every wrong move taken)\nWrong turns:          {}\n",
        outcome.wrong_turns.len()
    ));
    for t in &outcome.wrong_turns {
        s.push_str(&wrap(t, "  - ", "    "));
        s.push('\n');
    }
    s.push_str("\nThe optimal path:\n");
    for (i, r) in script.rounds.iter().enumerate() {
        if let Some(c) = r.choices.iter().find(|c| c.best) {
            s.push_str(&wrap(
                &format!("{} ({} min)", c.action, c.minutes),
                &format!("  {}. ", i + 1),
                "     ",
            ));
            s.push('\n');
        }
    }
    if let Some(tool) = reference_command(script) {
        s.push_str(&format!("\nThe guided fix is the reference path: {tool}\n"));
    }
    s.push('\n');
    s.push_str(&wrap(&script.lesson, "Lesson: ", "        "));
    s.push('\n');
    s
}

/// The `kubectl pullfix` command on the optimal path (the last one, when
/// several).
fn reference_command(script: &Script) -> Option<&str> {
    script
        .rounds
        .iter()
        .rev()
        .flat_map(|r| r.choices.iter().filter(|c| c.best))
        .find(|c| c.action.starts_with("kubectl pullfix"))
        .map(|c| c.action.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> LabEnv {
        LabEnv {
            registry: "127.0.0.1:36500".into(),
            user: "pullfix".into(),
            password: "s3cr3t-Passw0rd-lab".into(),
            token_registry: "127.0.0.1:36501".into(),
            token_user: "tokenuser".into(),
            token_password: "tokenPassw0rd-lab".into(),
            anon_registry: "127.0.0.1:36503".into(),
            untrusted_registry: "127.0.0.1:36507".into(),
            ecr_password: "123456789012-auth-token".into(),
        }
    }

    fn all_scripts() -> Vec<Script> {
        scenarios()
            .iter()
            .map(|id| {
                let facts = Facts::for_scenario(id, "shop", &env());
                script(id, &facts).unwrap_or_else(|| panic!("no script for {id}"))
            })
            .collect()
    }

    fn texts(s: &Script) -> Vec<String> {
        let mut t = vec![s.alert.clone(), s.pressure.clone(), s.lesson.clone()];
        for r in &s.rounds {
            t.push(r.situation.clone());
            for c in &r.choices {
                t.push(c.action.clone());
                t.push(c.consequence.clone());
            }
        }
        t
    }

    #[test]
    fn every_script_has_four_choices_a_to_d_with_exactly_one_best() {
        for s in all_scripts() {
            assert!((3..=4).contains(&s.rounds.len()), "{}", s.scenario);
            for (i, r) in s.rounds.iter().enumerate() {
                let keys: Vec<char> = r.choices.iter().map(|c| c.key).collect();
                assert_eq!(keys, ['A', 'B', 'C', 'D'], "{} round {}", s.scenario, i + 1);
                assert_eq!(
                    r.choices.iter().filter(|c| c.best).count(),
                    1,
                    "{} round {}",
                    s.scenario,
                    i + 1
                );
                for c in &r.choices {
                    assert!(c.minutes > 0, "{} {}", s.scenario, c.action);
                    assert!(!c.note().is_empty(), "{} {}: no note", s.scenario, c.action);
                }
            }
        }
    }

    #[test]
    fn optimal_total_is_the_sum_of_the_best_choices() {
        for s in all_scripts() {
            let sum: u32 = s
                .rounds
                .iter()
                .map(|r| r.choices.iter().find(|c| c.best).unwrap().minutes)
                .sum();
            assert_eq!(optimal_minutes(&s), sum);
            let mut input: &[u8] = b"";
            let outcome = play(&s, &mut input, &mut Vec::new(), true, &mut |_| None).unwrap();
            assert_eq!(outcome.minutes, sum, "{}", s.scenario);
            assert_eq!(outcome.optimal_minutes, sum);
            assert!(outcome.finished);
        }
    }

    #[test]
    fn last_round_follows_the_tool_and_the_report_points_at_it() {
        for s in all_scripts() {
            let reference = reference_command(&s)
                .unwrap_or_else(|| panic!("{}: no pullfix command on the path", s.scenario));
            assert!(reference.contains("-n shop"), "{reference}");
            let report = damage_report(
                &s,
                &Outcome {
                    minutes: 1,
                    optimal_minutes: 1,
                    wrong_turns: vec![],
                    rounds_played: s.rounds.len(),
                    finished: true,
                },
            );
            assert!(report.contains(reference), "{report}");
            if s.scenario != "ecr-expired" {
                let last = s.rounds.last().unwrap();
                let best = last.choices.iter().find(|c| c.best).unwrap();
                assert!(best.action.starts_with("kubectl pullfix"), "{}", s.scenario);
            }
        }
        // The incident replay ends with the token refreshed, then the
        // automation repaired.
        let ecr = &all_scripts()[0];
        let best: Vec<&str> = ecr
            .rounds
            .iter()
            .map(|r| r.choices.iter().find(|c| c.best).unwrap().action.as_str())
            .collect();
        assert!(best[2].starts_with("kubectl pullfix fix"), "{best:?}");
        assert!(best[3].contains("logs job/ecr-token-refresh"), "{best:?}");
    }

    #[test]
    fn play_counts_wrong_turns_then_the_right_one() {
        let facts = Facts::for_scenario("wrong-tag", "shop", &env());
        let s = script("wrong-tag", &facts).unwrap();
        // Round 1: A (wrong), then junk, then A again (already tried), then
        // C (right); round 2: A (right); round 3: D (wrong), B (right).
        let mut input: &[u8] = b"a\nxyz\n\nA\nc\nA\nd\n b \n";
        let mut out = Vec::new();
        let mut shown = Vec::new();
        let outcome = play(&s, &mut input, &mut out, false, &mut |c| {
            shown.push(c.key);
            (c.key == 'C').then(|| "REAL OUTPUT".to_string())
        })
        .unwrap();
        let text = String::from_utf8(out).unwrap();
        let m = |r: usize, k: char| {
            s.rounds[r]
                .choices
                .iter()
                .find(|c| c.key == k)
                .unwrap()
                .minutes
        };
        assert_eq!(
            outcome.minutes,
            m(0, 'A') + m(0, 'C') + m(1, 'A') + m(2, 'D') + m(2, 'B')
        );
        assert_eq!(outcome.optimal_minutes, optimal_minutes(&s));
        assert_eq!(outcome.wrong_turns.len(), 2);
        assert!(outcome.wrong_turns[0].starts_with("Round 1: A) kubectl rollout restart"));
        assert!(outcome.wrong_turns[1].starts_with("Round 3: D) "));
        assert!(outcome.finished);
        assert_eq!(outcome.rounds_played, 3);
        assert_eq!(shown, ['A', 'C', 'A', 'D', 'B']);
        assert!(text.contains("Answer with one letter"), "{text}");
        assert!(text.contains("You tried A already"), "{text}");
        assert!(text.contains("REAL OUTPUT"), "{text}");
        assert!(text.contains("What the other moves would have shown"));
        let report = damage_report(&s, &outcome);
        assert!(report.contains(&format!("+{} min", outcome.minutes - optimal_minutes(&s))));
        assert!(report.contains("Round 1: A)"), "{report}");
        assert!(report.contains("Lesson: "), "{report}");
    }

    #[test]
    fn eof_stops_with_what_was_played() {
        let facts = Facts::for_scenario("ecr-expired", "shop", &env());
        let s = script("ecr-expired", &facts).unwrap();
        let mut input: &[u8] = b"A\nB\n";
        let mut out = Vec::new();
        let outcome = play(&s, &mut input, &mut out, false, &mut |_| None).unwrap();
        assert!(!outcome.finished);
        assert_eq!(outcome.rounds_played, 1);
        let a = s.rounds[0].choices[0].minutes;
        let b = s.rounds[0].choices[1].minutes;
        assert_eq!(outcome.minutes, a + b);
        assert_eq!(outcome.optimal_minutes, b);
        assert_eq!(outcome.wrong_turns.len(), 1);
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("input ended"), "{text}");
        let report = damage_report(&s, &outcome);
        assert!(report.contains("Stopped in round 2 of 4"), "{report}");

        let mut empty: &[u8] = b"";
        let outcome = play(&s, &mut empty, &mut Vec::new(), false, &mut |_| None).unwrap();
        assert_eq!((outcome.minutes, outcome.rounds_played), (0, 0));
    }

    /// Input that panics when read.
    struct NoInput;
    impl std::io::Read for NoInput {
        fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
            panic!("auto mode read input")
        }
    }
    impl BufRead for NoInput {
        fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
            panic!("auto mode read input")
        }
        fn consume(&mut self, _: usize) {}
    }

    #[test]
    fn auto_plays_the_best_path_without_reading() {
        for s in all_scripts() {
            let mut out = Vec::new();
            let outcome = play(&s, &mut NoInput, &mut out, true, &mut |_| None).unwrap();
            assert!(outcome.wrong_turns.is_empty());
            assert_eq!(outcome.minutes, optimal_minutes(&s));
            assert_eq!(outcome.rounds_played, s.rounds.len());
            let report = damage_report(&s, &outcome);
            assert!(report.contains("you matched it"), "{report}");
        }
    }

    fn looks_like_password(text: &str) -> Option<String> {
        let lower = text.to_ascii_lowercase();
        // `password=VALUE` / `password: VALUE` with a literal value.
        for (i, _) in lower.match_indices("password") {
            let rest = &text[i + "password".len()..];
            if let Some(v) = rest.strip_prefix('=').or_else(|| rest.strip_prefix(": ")) {
                let v = v.trim_start_matches(['"', '\'']);
                if !(v.starts_with('$') || v.starts_with('<') || v.is_empty()) {
                    return Some(rest.chars().take(30).collect());
                }
            }
        }
        // A long token-like run: letters and digits, mixed case.
        let mut run = String::new();
        for ch in text.chars().chain(std::iter::once(' ')) {
            if ch.is_ascii_alphanumeric() || ch == '+' || ch == '=' {
                run.push(ch);
                continue;
            }
            if run.len() >= 20
                && run.chars().any(|c| c.is_ascii_digit())
                && run.chars().any(|c| c.is_ascii_uppercase())
                && run.chars().any(|c| c.is_ascii_lowercase())
            {
                return Some(run);
            }
            run.clear();
        }
        None
    }

    #[test]
    fn no_script_contains_a_password_looking_string() {
        let env = env();
        for s in all_scripts() {
            for t in texts(&s) {
                assert_eq!(looks_like_password(&t), None, "{}: {t}", s.scenario);
                for secret in [&env.password, &env.token_password, &env.ecr_password] {
                    assert!(!t.contains(secret.as_str()), "{}: {t}", s.scenario);
                }
                assert!(!t.contains("\"auth\""), "{}: {t}", s.scenario);
            }
        }
        // The checker itself catches what it should.
        assert!(looks_like_password("--docker-password=hunter2").is_some());
        assert!(looks_like_password("token eyJwYXlsb2FkIjoiQUFBQUJCQkJDQ0NDIn0").is_some());
        assert!(looks_like_password("--docker-password=\"$NEW_PASSWORD\"").is_none());
    }

    #[test]
    fn scripts_match_the_lab_scenarios_and_their_facts() {
        for id in scenarios() {
            assert!(crate::scenarios::find(id).is_ok(), "{id}");
        }
        assert!(script("tls-unknown-ca", &Facts::for_scenario("x", "shop", &env())).is_none());

        let ecr = Facts::for_scenario("ecr-expired", "shop", &env());
        assert_eq!(ecr.host(), ECR_HOST);
        assert_eq!(ecr.region(), "us-east-1");
        assert_eq!(ecr.replicas, 5);
        let s = script("ecr-expired", &ecr).unwrap();
        assert!(s.alert.contains("0/5"), "{}", s.alert);
        assert!(texts(&s).iter().any(|t| t.contains("12 h")));

        let stale = Facts::for_scenario("stale-secret-many-namespaces", "shop", &env());
        assert_eq!(stale.other_namespaces, ["shop-b", "shop-c"]);
        let s = script("stale-secret-many-namespaces", &stale).unwrap();
        assert!(texts(&s).iter().any(|t| t.contains("shop-c")));

        let partial = Facts::for_scenario("rotated-password-partial", "shop", &env());
        assert_eq!(partial.other_namespaces, ["shop-c"]);
        assert_eq!(partial.fixed_sibling.as_deref(), Some("shop-b"));
        assert_eq!(partial.replicas, 2);
        let s = script("rotated-password-partial", &partial).unwrap();
        assert!(s.alert.contains("0/2"), "{}", s.alert);
        assert!(texts(&s).iter().any(|t| t.contains("shop-b/regcred")));
        assert!(texts(&s).iter().any(|t| t.contains("shop-c/regcred")));

        let rotated = Facts::for_scenario("rotated-password", "shop", &env());
        assert_eq!(rotated.replicas, 2);
        assert!(rotated.other_namespaces.is_empty());
        let s = script("rotated-password", &rotated).unwrap();
        assert!(texts(&s).iter().any(|t| t.contains("--tls-verify=false")));

        let missing = Facts::for_scenario("no-pull-secrets", "shop", &env());
        assert_eq!(missing.replicas, 1);
        let s = script("no-pull-secrets", &missing).unwrap();
        assert!(
            texts(&s)
                .iter()
                .any(|t| t.contains("no basic auth credentials"))
        );

        let prefix = Facts::for_scenario("missing-prefix", "shop", &env());
        assert_eq!(prefix.full_image(), "docker.io/team/checkout:v2.1.0");
        assert_eq!(prefix.good_image(), "127.0.0.1:36500/team/checkout:v2.1.0");

        let rate = Facts::for_scenario("rate-limited", "shop", &env());
        assert_eq!(rate.full_image(), "docker.io/library/nginx:1.25");
        assert_eq!(
            rate.manifest_url(),
            "https://registry-1.docker.io/v2/library/nginx/manifests/1.25"
        );

        let tag = Facts::for_scenario("wrong-tag", "shop", &env());
        assert_eq!(
            tag.manifest_url(),
            "http://127.0.0.1:36500/v2/team/checkout/manifests/v2.1.9"
        );
        let s = script("wrong-tag", &tag).unwrap();
        assert!(texts(&s).iter().any(|t| t.contains("\"v2.1.0\"")));

        let refused = Facts::for_scenario("unreachable-refused", "shop", &env());
        let s = script("unreachable-refused", &refused).unwrap();
        // The right path never touches a secret.
        for r in &s.rounds {
            let best = r.choices.iter().find(|c| c.best).unwrap();
            assert!(!best.action.contains("secret"), "{}", best.action);
        }
    }

    #[test]
    fn rotated_password_partial_ends_with_the_tool_and_never_copies_yaml() {
        let facts = Facts::for_scenario("rotated-password-partial", "shop", &env());
        let s = script("rotated-password-partial", &facts).unwrap();
        let best: Vec<&Choice> = s
            .rounds
            .iter()
            .map(|r| r.choices.iter().find(|c| c.best).unwrap())
            .collect();
        let last = best.last().unwrap();
        assert!(
            last.action.contains("kubectl pullfix fix"),
            "{}",
            last.action
        );
        assert!(last.action.contains("-n shop"), "{}", last.action);
        // The tool copies from the sibling that tests valid and updates the
        // other stale copy in the same pass.
        assert!(last.consequence.contains("shop-b/regcred"));
        assert!(last.consequence.contains("shop-c/regcred"));
        let copies_yaml = |a: &str| {
            a.split('|')
                .any(|part| part.contains("kubectl get secret") && part.contains("-o yaml"))
        };
        for c in &best {
            assert!(!copies_yaml(&c.action), "{}", c.action);
        }
        // The trap is there, as a wrong move.
        assert!(
            s.rounds
                .iter()
                .flat_map(|r| &r.choices)
                .any(|c| !c.best && copies_yaml(&c.action))
        );
        assert!(
            !s.rounds[0]
                .choices
                .iter()
                .find(|c| c.best)
                .unwrap()
                .action
                .contains("restart")
        );
    }

    #[test]
    fn choices_split_output_and_note_and_know_what_only_reads() {
        let facts = Facts::for_scenario("secret-opaque", "shop", &env());
        let s = script("secret-opaque", &facts).unwrap();
        let get = &s.rounds[1].choices[0];
        assert!(get.output().contains("Opaque"));
        assert!(get.note().contains("kubernetes.io/dockerconfigjson"));
        assert!(get.is_read_only());
        let apply = &s.rounds[2].choices[0];
        assert!(!apply.is_read_only(), "{}", apply.action);
        let restart = &s.rounds[0].choices[2];
        assert!(!restart.is_read_only(), "{}", restart.action);
    }

    #[test]
    fn wrap_keeps_lines_short() {
        let w = wrap(&"word ".repeat(60), "  → ", "    ");
        assert!(w.lines().all(|l| l.chars().count() <= WIDTH), "{w}");
        assert!(w.starts_with("  → word"));
        assert!(w.lines().skip(1).all(|l| l.starts_with("    word")));
    }
}
