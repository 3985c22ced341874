//! Label and field selectors, parsed and matched the way kube-apiserver does.
//!
//! The label-selector grammar, its validation and its error wording follow
//! `k8s.io/apimachinery/pkg/labels/selector.go`; field selectors follow
//! `k8s.io/apimachinery/pkg/fields/selector.go` plus the per-kind field-label
//! conversions registered by the API server (`AddFieldLabelConversionFunc`).

use super::patch::json_kind;
use serde_json::Value;

// ---------------------------------------------------------------------------
// Label selectors
// ---------------------------------------------------------------------------

/// A label-selector operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    In,
    NotIn,
    Equals,
    DoubleEquals,
    NotEquals,
    Exists,
    DoesNotExist,
    GreaterThan,
    LessThan,
}

/// One `key op values` requirement.
#[derive(Debug, Clone, PartialEq)]
struct Requirement {
    key: String,
    op: Op,
    /// Sorted, de-duplicated, like Go's `sets.String.List()`.
    values: Vec<String>,
}

impl Requirement {
    fn matches(&self, labels: &Value) -> bool {
        let got = labels.get(&self.key).map(|v| match v {
            Value::String(s) => s.clone(),
            Value::Null => String::new(),
            other => other.to_string(),
        });
        match self.op {
            Op::In | Op::Equals | Op::DoubleEquals => got.is_some_and(|g| self.values.contains(&g)),
            Op::NotIn | Op::NotEquals => got.is_none_or(|g| !self.values.contains(&g)),
            Op::Exists => got.is_some(),
            Op::DoesNotExist => got.is_none(),
            Op::GreaterThan | Op::LessThan => {
                let Some(have) = got.and_then(|g| g.parse::<i64>().ok()) else {
                    return false;
                };
                let [want] = self.values.as_slice() else {
                    return false;
                };
                let Ok(want) = want.parse::<i64>() else {
                    return false;
                };
                if self.op == Op::GreaterThan {
                    have > want
                } else {
                    have < want
                }
            }
        }
    }
}

impl std::fmt::Display for Requirement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.op == Op::DoesNotExist {
            f.write_str("!")?;
        }
        f.write_str(&self.key)?;
        let op = match self.op {
            Op::Equals => "=",
            Op::DoubleEquals => "==",
            Op::NotEquals => "!=",
            Op::In => " in ",
            Op::NotIn => " notin ",
            Op::GreaterThan => ">",
            Op::LessThan => "<",
            Op::Exists | Op::DoesNotExist => return Ok(()),
        };
        f.write_str(op)?;
        let set = matches!(self.op, Op::In | Op::NotIn);
        if set {
            f.write_str("(")?;
        }
        f.write_str(&self.values.join(","))?;
        if set {
            f.write_str(")")?;
        }
        Ok(())
    }
}

/// A parsed label selector (`app=web,tier in (a,b),!legacy`).
#[derive(Debug, Clone, PartialEq)]
pub struct LabelSelector {
    requirements: Vec<Requirement>,
    /// `true` for the selector of a `null` `metav1.LabelSelector`, which selects nothing.
    nothing: bool,
}

impl Default for LabelSelector {
    fn default() -> Self {
        Self::everything()
    }
}

impl std::fmt::Display for LabelSelector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, r) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{r}")?;
        }
        Ok(())
    }
}

impl LabelSelector {
    /// The selector that matches every object (an empty selector string).
    pub fn everything() -> LabelSelector {
        LabelSelector {
            requirements: Vec::new(),
            nothing: false,
        }
    }

    /// The selector that matches nothing (a `null` `metav1.LabelSelector`).
    pub fn nothing() -> LabelSelector {
        LabelSelector {
            requirements: Vec::new(),
            nothing: true,
        }
    }

    /// Whether the selector places no restriction at all.
    pub fn is_empty(&self) -> bool {
        !self.nothing && self.requirements.is_empty()
    }

    /// Parses the `?labelSelector=` syntax. The error is kube-apiserver's message,
    /// e.g. `unable to parse requirement: found '', expected: identifier`.
    pub fn parse(s: &str) -> Result<LabelSelector, String> {
        let mut parser = Parser {
            items: lex(s),
            pos: 0,
        };
        let mut requirements = parser.parse()?;
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(LabelSelector {
            requirements,
            nothing: false,
        })
    }

    /// Whether `labels` (an object's `metadata.labels`, or `null`) satisfies every requirement.
    pub fn matches(&self, labels: &Value) -> bool {
        if self.nothing {
            return false;
        }
        let empty = Value::Object(serde_json::Map::new());
        let labels = if labels.is_object() { labels } else { &empty };
        self.requirements.iter().all(|r| r.matches(labels))
    }

    /// Converts a `metav1.LabelSelector` (`{matchLabels, matchExpressions}`), like
    /// `metav1.LabelSelectorAsSelector`: `null` selects nothing, `{}` everything.
    pub fn from_match(selector: &Value) -> Result<LabelSelector, String> {
        let obj = match selector {
            Value::Null => return Ok(LabelSelector::nothing()),
            Value::Object(o) => o,
            other => {
                return Err(format!(
                    "json: cannot unmarshal {} into Go value of type v1.LabelSelector",
                    json_kind(other)
                ));
            }
        };
        let mut requirements = Vec::new();
        match obj.get("matchLabels") {
            None | Some(Value::Null) => {}
            Some(Value::Object(m)) => {
                for (k, v) in m {
                    let Value::String(v) = v else {
                        return Err(format!(
                            "json: cannot unmarshal {} into Go struct field LabelSelector.matchLabels of type string",
                            json_kind(v)
                        ));
                    };
                    requirements.push(new_requirement(k, Op::Equals, vec![v.clone()])?);
                }
            }
            Some(other) => {
                return Err(format!(
                    "json: cannot unmarshal {} into Go struct field LabelSelector.matchLabels of type map[string]string",
                    json_kind(other)
                ));
            }
        }
        match obj.get("matchExpressions") {
            None | Some(Value::Null) => {}
            Some(Value::Array(exprs)) => {
                for e in exprs {
                    let key = e.get("key").and_then(Value::as_str).unwrap_or("");
                    let op_text = e.get("operator").and_then(Value::as_str).unwrap_or("");
                    let op = match op_text {
                        "In" => Op::In,
                        "NotIn" => Op::NotIn,
                        "Exists" => Op::Exists,
                        "DoesNotExist" => Op::DoesNotExist,
                        other => {
                            return Err(format!(
                                "{other:?} is not a valid label selector operator"
                            ));
                        }
                    };
                    let values = match e.get("values") {
                        None | Some(Value::Null) => Vec::new(),
                        Some(Value::Array(vs)) => vs
                            .iter()
                            .map(|v| v.as_str().unwrap_or("").to_string())
                            .collect(),
                        Some(other) => {
                            return Err(format!(
                                "json: cannot unmarshal {} into Go struct field LabelSelectorRequirement.matchExpressions.values of type []string",
                                json_kind(other)
                            ));
                        }
                    };
                    requirements.push(new_requirement(key, op, values)?);
                }
            }
            Some(other) => {
                return Err(format!(
                    "json: cannot unmarshal {} into Go struct field LabelSelector.matchExpressions of type []v1.LabelSelectorRequirement",
                    json_kind(other)
                ));
            }
        }
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(LabelSelector {
            requirements,
            nothing: false,
        })
    }
}

/// Go's `%#v` of a `[]string`.
fn go_string_slice(vals: &[String]) -> String {
    let inner: Vec<String> = vals.iter().map(|v| format!("{v:?}")).collect();
    format!("[]string{{{}}}", inner.join(", "))
}

/// `field.ErrorList.ToAggregate().Error()`.
fn aggregate(errs: Vec<String>) -> Option<String> {
    let mut seen: Vec<String> = Vec::new();
    for e in errs {
        if !seen.contains(&e) {
            seen.push(e);
        }
    }
    match seen.len() {
        0 => None,
        1 => seen.pop(),
        _ => Some(format!("[{}]", seen.join(", "))),
    }
}

/// `labels.NewRequirement` with its validation (paths rooted at a nil `field.Path`).
fn new_requirement(key: &str, op: Op, vals: Vec<String>) -> Result<Requirement, String> {
    let mut errs = Vec::new();
    if let Some(e) = validate_label_key(key, "key") {
        errs.push(e);
    }
    match op {
        Op::In | Op::NotIn if vals.is_empty() => errs.push(format!(
            "values: Invalid value: {}: for 'in', 'notin' operators, values set can't be empty",
            go_string_slice(&vals)
        )),
        Op::Equals | Op::DoubleEquals | Op::NotEquals if vals.len() != 1 => errs.push(format!(
            "values: Invalid value: {}: exact-match compatibility requires one single value",
            go_string_slice(&vals)
        )),
        Op::Exists | Op::DoesNotExist if !vals.is_empty() => errs.push(format!(
            "values: Invalid value: {}: values set must be empty for exists and does not exist",
            go_string_slice(&vals)
        )),
        Op::GreaterThan | Op::LessThan => {
            if vals.len() != 1 {
                errs.push(format!(
                    "values: Invalid value: {}: for 'Gt', 'Lt' operators, exactly one value is required",
                    go_string_slice(&vals)
                ));
            }
            for (i, v) in vals.iter().enumerate() {
                if v.parse::<i64>().is_err() {
                    errs.push(format!(
                        "values[{i}]: Invalid value: {v:?}: for 'Gt', 'Lt' operators, the value must be an integer"
                    ));
                }
            }
        }
        _ => {}
    }
    for (i, v) in vals.iter().enumerate() {
        let problems = label_value_errors(v);
        if !problems.is_empty() {
            errs.push(format!(
                "values[{i}][{key}]: Invalid value: {v:?}: {}",
                problems.join("; ")
            ));
        }
    }
    match aggregate(errs) {
        Some(e) => Err(e),
        None => {
            let mut values = vals;
            if matches!(op, Op::In | Op::NotIn) {
                values.sort();
                values.dedup();
            }
            Ok(Requirement {
                key: key.to_string(),
                op,
                values,
            })
        }
    }
}

const QUALIFIED_NAME_MSG: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const QUALIFIED_NAME_FMT: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const DNS1123_SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";
const DNS1123_SUBDOMAIN_FMT: &str =
    "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const LABEL_VALUE_MSG: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";

/// `validation.RegexError`.
fn regex_error(msg: &str, fmt: &str, examples: &[&str]) -> String {
    if examples.is_empty() {
        return format!("{msg} (regex used for validation is '{fmt}')");
    }
    let mut out = format!("{msg} (e.g. ");
    for (i, e) in examples.iter().enumerate() {
        if i > 0 {
            out.push_str(" or ");
        }
        out.push_str(&format!("'{e}', "));
    }
    out.push_str(&format!("regex used for validation is '{fmt}')"));
    out
}

fn is_qualified_name_part(s: &str) -> bool {
    let b = s.as_bytes();
    match (b.first(), b.last()) {
        (Some(f), Some(l)) => {
            f.is_ascii_alphanumeric()
                && l.is_ascii_alphanumeric()
                && b.iter()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
        }
        _ => false,
    }
}

fn is_dns1123_label(s: &str) -> bool {
    let b = s.as_bytes();
    let ok = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    match (b.first(), b.last()) {
        (Some(f), Some(l)) => ok(f) && ok(l) && b.iter().all(|c| ok(c) || *c == b'-'),
        _ => false,
    }
}

fn is_dns1123_subdomain(s: &str) -> bool {
    s.split('.').all(is_dns1123_label)
}

/// `validation.IsQualifiedName`.
pub(crate) fn qualified_name_errors(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    let parts: Vec<&str> = value.split('/').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                errs.push("prefix part must be non-empty".to_string());
            } else {
                if prefix.len() > 253 {
                    errs.push("prefix part must be no more than 253 characters".to_string());
                }
                if !is_dns1123_subdomain(prefix) {
                    errs.push(format!(
                        "prefix part {}",
                        regex_error(
                            DNS1123_SUBDOMAIN_MSG,
                            DNS1123_SUBDOMAIN_FMT,
                            &["example.com"]
                        )
                    ));
                }
            }
            *name
        }
        _ => {
            errs.push(format!(
                "a qualified name {} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
                regex_error(QUALIFIED_NAME_MSG, QUALIFIED_NAME_FMT, &["MyName", "my.name", "123-abc"])
            ));
            return errs;
        }
    };
    if name.is_empty() {
        errs.push("name part must be non-empty".to_string());
    } else if name.len() > 63 {
        errs.push("name part must be no more than 63 characters".to_string());
    }
    if !is_qualified_name_part(name) {
        errs.push(format!(
            "name part {}",
            regex_error(
                QUALIFIED_NAME_MSG,
                QUALIFIED_NAME_FMT,
                &["MyName", "my.name", "123-abc"]
            )
        ));
    }
    errs
}

/// `validation.IsValidLabelValue`.
pub(crate) fn label_value_errors(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > 63 {
        errs.push("must be no more than 63 characters".to_string());
    }
    if !value.is_empty() && !is_qualified_name_part(value) {
        errs.push(regex_error(
            LABEL_VALUE_MSG,
            &format!("({QUALIFIED_NAME_FMT})?"),
            &["MyValue", "my_value", "12345"],
        ));
    }
    errs
}

/// `validateLabelKey`, with the field path Go prints (`<nil>` in the parser).
fn validate_label_key(key: &str, path: &str) -> Option<String> {
    let errs = qualified_name_errors(key);
    if errs.is_empty() {
        None
    } else {
        Some(format!(
            "{path}: Invalid value: {key:?}: {}",
            errs.join("; ")
        ))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok {
    End,
    ClosedPar,
    Comma,
    DoesNotExist,
    DoubleEquals,
    Equals,
    GreaterThan,
    Ident,
    In,
    LessThan,
    NotEquals,
    NotIn,
    OpenPar,
}

fn is_special(c: u8) -> bool {
    matches!(c, b'=' | b'!' | b'(' | b')' | b',' | b'>' | b'<')
}

fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | b'\n')
}

fn keyword(s: &str) -> Option<Tok> {
    Some(match s {
        ")" => Tok::ClosedPar,
        "," => Tok::Comma,
        "!" => Tok::DoesNotExist,
        "==" => Tok::DoubleEquals,
        "=" => Tok::Equals,
        ">" => Tok::GreaterThan,
        "in" => Tok::In,
        "<" => Tok::LessThan,
        "!=" => Tok::NotEquals,
        "notin" => Tok::NotIn,
        "(" => Tok::OpenPar,
        _ => return None,
    })
}

/// The Go lexer, byte for byte (a NUL byte reads as end of input, as in Go).
fn lex(s: &str) -> Vec<(Tok, String)> {
    let b = s.as_bytes();
    let mut pos = 0usize;
    let mut out = Vec::new();
    loop {
        while pos < b.len() && is_space(b[pos]) {
            pos += 1;
        }
        if pos >= b.len() || b[pos] == 0 {
            out.push((Tok::End, String::new()));
            return out;
        }
        if is_special(b[pos]) {
            // Longest run of special symbols that still forms a token.
            let start = pos;
            let mut best: Option<(Tok, usize)> = None;
            let mut end = pos;
            while end < b.len() && is_special(b[end]) {
                end += 1;
                match keyword(&s[start..end]) {
                    Some(t) => best = Some((t, end)),
                    None if best.is_some() => break,
                    None => {}
                }
            }
            match best {
                Some((t, e)) => {
                    out.push((t, s[start..e].to_string()));
                    pos = e;
                }
                None => {
                    // Unreachable with the current symbol set; kept for parity with Go.
                    out.push((Tok::End, String::new()));
                    return out;
                }
            }
        } else {
            let start = pos;
            while pos < b.len() && b[pos] != 0 && !is_special(b[pos]) && !is_space(b[pos]) {
                pos += 1;
            }
            let word = String::from_utf8_lossy(&b[start..pos]).into_owned();
            if pos < b.len() && b[pos] == 0 {
                pos += 1;
            }
            let tok = match keyword(&word) {
                Some(t) => t,
                None => Tok::Ident,
            };
            out.push((tok, word));
        }
    }
}

struct Parser {
    items: Vec<(Tok, String)>,
    pos: usize,
}

impl Parser {
    /// In the `Values` context `in`/`notin` are plain identifiers.
    fn lookahead(&self, values: bool) -> (Tok, String) {
        let (t, l) = self
            .items
            .get(self.pos)
            .cloned()
            .unwrap_or((Tok::End, String::new()));
        if values && matches!(t, Tok::In | Tok::NotIn) {
            (Tok::Ident, l)
        } else {
            (t, l)
        }
    }

    fn consume(&mut self, values: bool) -> (Tok, String) {
        let r = self.lookahead(values);
        self.pos += 1;
        r
    }

    fn parse(&mut self) -> Result<Vec<Requirement>, String> {
        let mut reqs = Vec::new();
        loop {
            let (tok, lit) = self.lookahead(true);
            match tok {
                Tok::Ident | Tok::DoesNotExist => {
                    let r = self
                        .parse_requirement()
                        .map_err(|e| format!("unable to parse requirement: {e}"))?;
                    reqs.push(r);
                    let (t, l) = self.consume(true);
                    match t {
                        Tok::End => return Ok(reqs),
                        Tok::Comma => {
                            let (t2, l2) = self.lookahead(true);
                            if t2 != Tok::Ident && t2 != Tok::DoesNotExist {
                                return Err(format!(
                                    "found '{l2}', expected: identifier after ','"
                                ));
                            }
                        }
                        _ => return Err(format!("found '{l}', expected: ',' or 'end of string'")),
                    }
                }
                Tok::End => return Ok(reqs),
                _ => {
                    return Err(format!(
                        "found '{lit}', expected: !, identifier, or 'end of string'"
                    ));
                }
            }
        }
    }

    fn parse_requirement(&mut self) -> Result<Requirement, String> {
        let (key, inferred) = self.parse_key_and_infer_operator()?;
        if let Some(op) = inferred {
            return new_requirement(&key, op, Vec::new());
        }
        let op = self.parse_operator()?;
        let values = match op {
            Op::In | Op::NotIn => self.parse_values()?,
            _ => self.parse_exact_value()?,
        };
        new_requirement(&key, op, values)
    }

    fn parse_key_and_infer_operator(&mut self) -> Result<(String, Option<Op>), String> {
        let mut op = None;
        let (mut tok, mut lit) = self.consume(true);
        if tok == Tok::DoesNotExist {
            op = Some(Op::DoesNotExist);
            (tok, lit) = self.consume(true);
        }
        if tok != Tok::Ident {
            return Err(format!("found '{lit}', expected: identifier"));
        }
        if let Some(e) = validate_label_key(&lit, "<nil>") {
            return Err(e);
        }
        let (t, _) = self.lookahead(true);
        if (t == Tok::End || t == Tok::Comma) && op.is_none() {
            op = Some(Op::Exists);
        }
        Ok((lit, op))
    }

    fn parse_operator(&mut self) -> Result<Op, String> {
        let (tok, lit) = self.consume(false);
        Ok(match tok {
            Tok::In => Op::In,
            Tok::Equals => Op::Equals,
            Tok::DoubleEquals => Op::DoubleEquals,
            Tok::GreaterThan => Op::GreaterThan,
            Tok::LessThan => Op::LessThan,
            Tok::NotIn => Op::NotIn,
            Tok::NotEquals => Op::NotEquals,
            _ => {
                return Err(format!(
                    "found '{lit}', expected: in, notin, =, ==, !=, gt, lt"
                ));
            }
        })
    }

    fn parse_values(&mut self) -> Result<Vec<String>, String> {
        let (tok, lit) = self.consume(true);
        if tok != Tok::OpenPar {
            return Err(format!("found '{lit}' expected: '('"));
        }
        let (tok, lit) = self.lookahead(true);
        match tok {
            Tok::Ident | Tok::Comma => {
                let s = self.parse_identifiers_list()?;
                let (t, _) = self.consume(true);
                if t != Tok::ClosedPar {
                    return Err(format!("found '{lit}', expected: ')'"));
                }
                Ok(s)
            }
            Tok::ClosedPar => {
                self.consume(true);
                Ok(vec![String::new()])
            }
            _ => Err(format!("found '{lit}', expected: ',', ')' or identifier")),
        }
    }

    fn parse_identifiers_list(&mut self) -> Result<Vec<String>, String> {
        let mut s: Vec<String> = Vec::new();
        let insert = |s: &mut Vec<String>, v: String| {
            if !s.contains(&v) {
                s.push(v);
            }
        };
        loop {
            let (tok, lit) = self.consume(true);
            match tok {
                Tok::Ident => {
                    insert(&mut s, lit);
                    let (t2, l2) = self.lookahead(true);
                    match t2 {
                        Tok::Comma => continue,
                        Tok::ClosedPar => return Ok(s),
                        _ => return Err(format!("found '{l2}', expected: ',' or ')'")),
                    }
                }
                Tok::Comma => {
                    if s.is_empty() {
                        insert(&mut s, String::new());
                    }
                    let (t2, _) = self.lookahead(true);
                    if t2 == Tok::ClosedPar {
                        insert(&mut s, String::new());
                        return Ok(s);
                    }
                    if t2 == Tok::Comma {
                        self.consume(true);
                        insert(&mut s, String::new());
                    }
                }
                _ => return Err(format!("found '{lit}', expected: ',', or identifier")),
            }
        }
    }

    fn parse_exact_value(&mut self) -> Result<Vec<String>, String> {
        let (tok, _) = self.lookahead(true);
        if tok == Tok::End || tok == Tok::Comma {
            return Ok(vec![String::new()]);
        }
        let (tok, lit) = self.consume(true);
        if tok == Tok::Ident {
            Ok(vec![lit])
        } else {
            Err(format!("found '{lit}', expected: identifier"))
        }
    }
}

// ---------------------------------------------------------------------------
// Field selectors
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
struct Term {
    field: String,
    value: String,
    negate: bool,
}

/// A parsed field selector (`spec.nodeName=node-1,status.phase!=Running`).
#[derive(Debug, Clone, PartialEq)]
pub struct FieldSelector {
    terms: Vec<Term>,
    kind: String,
}

const META: &[&str] = &["metadata.name", "metadata.namespace"];
const POD: &[&str] = &[
    "metadata.name",
    "metadata.namespace",
    "spec.nodeName",
    "spec.restartPolicy",
    "spec.schedulerName",
    "spec.serviceAccountName",
    "spec.hostNetwork",
    "status.phase",
    "status.podIP",
    "status.podIPs",
    "status.nominatedNodeName",
];
const EVENT: &[&str] = &[
    "involvedObject.kind",
    "involvedObject.namespace",
    "involvedObject.name",
    "involvedObject.uid",
    "involvedObject.apiVersion",
    "involvedObject.resourceVersion",
    "involvedObject.fieldPath",
    "reason",
    "reportingComponent",
    "source",
    "type",
    "metadata.namespace",
    "metadata.name",
];
const SECRET: &[&str] = &["type", "metadata.namespace", "metadata.name"];
const NAMESPACE: &[&str] = &["status.phase", "metadata.name"];
const NODE: &[&str] = &["metadata.name", "spec.unschedulable"];
const REPLICAS: &[&str] = &["metadata.name", "metadata.namespace", "status.replicas"];
const JOB: &[&str] = &["metadata.name", "metadata.namespace", "status.successful"];
const SERVICE: &[&str] = &[
    "metadata.namespace",
    "metadata.name",
    "spec.clusterIP",
    "spec.type",
];

/// The field labels kube-apiserver accepts in `?fieldSelector=` for `kind`.
pub fn supported_fields(kind: &str) -> &'static [&'static str] {
    match kind {
        "Pod" => POD,
        "Event" => EVENT,
        "Secret" => SECRET,
        "Namespace" => NAMESPACE,
        "Node" => NODE,
        "ReplicaSet" | "ReplicationController" => REPLICAS,
        "Job" => JOB,
        "Service" => SERVICE,
        _ => META,
    }
}

/// The error for an unsupported field label, worded per kind as the server's
/// conversion functions word it.
fn unsupported(kind: &str, label: &str) -> String {
    match kind {
        "Pod"
        | "Event"
        | "Secret"
        | "Namespace"
        | "Node"
        | "ReplicaSet"
        | "ReplicationController"
        | "Service" => format!("field label not supported: {label}"),
        "Job" => format!("field label {label:?} not supported for batchv1.Job"),
        // runtime.DefaultMetaV1FieldSelectorConversion
        _ => format!(
            "{label:?} is not a known field selector: only \"metadata.name\", \"metadata.namespace\""
        ),
    }
}

/// `fields.splitTerms`: split on commas not escaped by a backslash.
fn split_terms(s: &str) -> Vec<&str> {
    if s.is_empty() {
        return Vec::new();
    }
    let mut terms = Vec::new();
    let mut start = 0;
    let mut in_slash = false;
    for (i, c) in s.char_indices() {
        if in_slash {
            in_slash = false;
        } else if c == '\\' {
            in_slash = true;
        } else if c == ',' {
            terms.push(&s[start..i]);
            start = i + 1;
        }
    }
    terms.push(&s[start..]);
    terms
}

/// `fields.splitTerm`: the first `!=`, `==` or `=`.
fn split_term(term: &str) -> Option<(&str, &str, &str)> {
    for (i, _) in term.char_indices() {
        let rest = &term[i..];
        for op in ["!=", "==", "="] {
            if rest.starts_with(op) {
                return Some((&term[..i], op, &term[i + op.len()..]));
            }
        }
    }
    None
}

/// `fields.UnescapeValue`.
fn unescape_value(s: &str) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut in_slash = false;
    for c in s.chars() {
        if in_slash {
            match c {
                '\\' | ',' | '=' => out.push(c),
                other => {
                    return Err(format!(
                        "invalid field selector: invalid escape sequence: \\{other}"
                    ));
                }
            }
            in_slash = false;
            continue;
        }
        match c {
            '\\' => in_slash = true,
            ',' | '=' => {
                // Go prints the rune with %v, i.e. as its number.
                return Err(format!(
                    "invalid field selector: unescaped character in value: {}",
                    c as u32
                ));
            }
            other => out.push(other),
        }
    }
    if in_slash {
        return Err("invalid field selector: invalid escape sequence: \\".to_string());
    }
    Ok(out)
}

fn scalar_string(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn dotted<'a>(obj: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(obj, |cur, part| cur.get(part))
}

/// The values an object exposes for a field label (empty string when missing).
fn field_values(kind: &str, obj: &Value, field: &str) -> Vec<String> {
    let one = |path: &str, default: &str| {
        vec![scalar_string(dotted(obj, path)).unwrap_or_else(|| default.to_string())]
    };
    match (kind, field) {
        ("Event", "source") => one("source.component", ""),
        ("Event", "reportingComponent") => one("reportingController", ""),
        ("Pod", "spec.hostNetwork") | ("Node", "spec.unschedulable") => one(field, "false"),
        ("Pod", "status.podIP") => {
            let first = dotted(obj, "status.podIPs")
                .and_then(|v| v.get(0))
                .and_then(|v| v.get("ip"))
                .and_then(Value::as_str)
                .map(str::to_string);
            vec![first.unwrap_or_else(|| one("status.podIP", "").remove(0))]
        }
        ("Pod", "status.podIPs") => {
            let ips: Vec<String> = dotted(obj, "status.podIPs")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.get("ip").and_then(Value::as_str))
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default();
            if ips.is_empty() {
                vec![String::new()]
            } else {
                ips
            }
        }
        ("ReplicaSet" | "ReplicationController", "status.replicas") => one(field, "0"),
        ("Job", "status.successful") => one("status.succeeded", "0"),
        _ => one(field, ""),
    }
}

impl FieldSelector {
    /// Parses the `?fieldSelector=` syntax for objects of `kind` ("Pod", "Event", ...).
    pub fn parse(s: &str, kind: &str) -> Result<FieldSelector, String> {
        let mut parts = split_terms(s);
        parts.sort();
        let mut terms = Vec::new();
        for part in parts {
            if part.is_empty() {
                continue;
            }
            let Some((lhs, op, rhs)) = split_term(part) else {
                return Err(format!(
                    "invalid selector: '{s}'; can't understand '{part}'"
                ));
            };
            let value = unescape_value(rhs)?;
            terms.push(Term {
                field: lhs.to_string(),
                value,
                negate: op == "!=",
            });
        }
        for t in &mut terms {
            if kind == "Pod" && t.field == "spec.host" {
                t.field = "spec.nodeName".to_string();
            }
            if !supported_fields(kind).contains(&t.field.as_str()) {
                return Err(unsupported(kind, &t.field));
            }
        }
        Ok(FieldSelector {
            terms,
            kind: kind.to_string(),
        })
    }

    /// Whether the object satisfies every term.
    pub fn matches(&self, object: &Value) -> bool {
        self.terms.iter().all(|t| {
            let have = field_values(&self.kind, object, &t.field);
            let hit = have.contains(&t.value);
            hit != t.negate
        })
    }

    /// The value of a `metadata.name=` (or `==`) term, if there is one.
    pub fn names(&self) -> Option<String> {
        self.terms
            .iter()
            .find(|t| t.field == "metadata.name" && !t.negate)
            .map(|t| t.value.clone())
    }

    /// Whether the selector places no restriction at all.
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ls(s: &str) -> LabelSelector {
        LabelSelector::parse(s).expect("valid selector")
    }

    #[test]
    fn label_equality_forms() {
        let labels = json!({"app": "web", "tier": "front"});
        assert!(ls("app=web").matches(&labels));
        assert!(ls("app==web").matches(&labels));
        assert!(!ls("app!=web").matches(&labels));
        assert!(ls("app!=db").matches(&labels));
        assert!(ls("missing!=x").matches(&labels));
        assert!(ls("app=web,tier=front").matches(&labels));
        assert!(!ls("app=web,tier=back").matches(&labels));
        assert!(ls(" app = web , tier = front ").matches(&labels));
    }

    #[test]
    fn label_set_forms_and_existence() {
        let labels = json!({"env": "prod"});
        assert!(ls("env in (prod, staging)").matches(&labels));
        assert!(!ls("env in (dev)").matches(&labels));
        assert!(ls("env notin (dev)").matches(&labels));
        assert!(!ls("env notin (prod)").matches(&labels));
        assert!(ls("other notin (prod)").matches(&labels));
        assert!(ls("env").matches(&labels));
        assert!(!ls("!env").matches(&labels));
        assert!(ls("!other").matches(&labels));
        assert!(!ls("other").matches(&Value::Null));
        assert!(ls("").matches(&Value::Null));
        // `in` is only a keyword in operator position.
        assert!(ls("x in (in,notin)").matches(&json!({"x": "in"})));
    }

    #[test]
    fn label_gt_lt() {
        let labels = json!({"n": "5"});
        assert!(ls("n>3").matches(&labels));
        assert!(!ls("n<3").matches(&labels));
        assert_eq!(
            LabelSelector::parse("n>abc").unwrap_err(),
            "unable to parse requirement: values[0]: Invalid value: \"abc\": for 'Gt', 'Lt' operators, the value must be an integer"
        );
    }

    #[test]
    fn label_parse_errors_match_server_wording() {
        assert_eq!(
            LabelSelector::parse("a b").unwrap_err(),
            "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt"
        );
        assert_eq!(
            LabelSelector::parse("app=web,").unwrap_err(),
            "found '', expected: identifier after ','"
        );
        assert_eq!(
            LabelSelector::parse("=x").unwrap_err(),
            "found '=', expected: !, identifier, or 'end of string'"
        );
        assert_eq!(
            LabelSelector::parse("x in (a").unwrap_err(),
            "unable to parse requirement: found '', expected: ',' or ')'"
        );
        assert_eq!(
            LabelSelector::parse("x in a").unwrap_err(),
            "unable to parse requirement: found 'a' expected: '('"
        );
        let bad_key = LabelSelector::parse("-bad=x").unwrap_err();
        assert!(
            bad_key.starts_with("unable to parse requirement: <nil>: Invalid value: \"-bad\": name part must consist of alphanumeric characters"),
            "{bad_key}"
        );
        assert!(bad_key.contains("(e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"));
        let bad_value = LabelSelector::parse("app=-x").unwrap_err();
        assert!(
            bad_value.starts_with("unable to parse requirement: values[0][app]: Invalid value: \"-x\": a valid label must be an empty string"),
            "{bad_value}"
        );
        let bad_prefix = LabelSelector::parse("Example.com/app=x").unwrap_err();
        assert!(
            bad_prefix.contains("prefix part a lowercase RFC 1123 subdomain"),
            "{bad_prefix}"
        );
    }

    #[test]
    fn label_display_round_trips() {
        let s = ls("b in (y,x),!c,a=1");
        assert_eq!(s.to_string(), "a=1,b in (x,y),!c");
        assert_eq!(ls(&s.to_string()), s);
    }

    #[test]
    fn from_match_selectors() {
        let sel = LabelSelector::from_match(&json!({
            "matchLabels": {"app": "web"},
            "matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["a", "b"]},
                {"key": "legacy", "operator": "DoesNotExist"}
            ]
        }))
        .unwrap();
        assert!(sel.matches(&json!({"app": "web", "tier": "b"})));
        assert!(!sel.matches(&json!({"app": "web", "tier": "b", "legacy": "1"})));
        assert!(!sel.matches(&json!({"app": "web"})));
        assert!(
            LabelSelector::from_match(&json!({}))
                .unwrap()
                .matches(&json!({}))
        );
        assert!(
            !LabelSelector::from_match(&Value::Null)
                .unwrap()
                .matches(&json!({}))
        );
        assert_eq!(
            LabelSelector::from_match(
                &json!({"matchExpressions": [{"key": "a", "operator": "Foo"}]})
            )
            .unwrap_err(),
            "\"Foo\" is not a valid label selector operator"
        );
        assert_eq!(
            LabelSelector::from_match(
                &json!({"matchExpressions": [{"key": "a", "operator": "In", "values": []}]})
            )
            .unwrap_err(),
            "values: Invalid value: []string{}: for 'in', 'notin' operators, values set can't be empty"
        );
    }

    #[test]
    fn field_selector_pods() {
        let pending = json!({"metadata": {"name": "p1", "namespace": "default"}, "spec": {}, "status": {"phase": "Pending"}});
        let running = json!({"metadata": {"name": "p2", "namespace": "default"}, "spec": {"nodeName": "node-1", "hostNetwork": true}, "status": {"phase": "Running", "podIPs": [{"ip": "10.0.0.2"}]}});
        let unscheduled = FieldSelector::parse("spec.nodeName=", "Pod").unwrap();
        assert!(unscheduled.matches(&pending));
        assert!(!unscheduled.matches(&running));
        let sel = FieldSelector::parse("status.phase!=Pending,spec.host=node-1", "Pod").unwrap();
        assert!(sel.matches(&running));
        assert!(!sel.matches(&pending));
        assert!(
            FieldSelector::parse("spec.hostNetwork=false", "Pod")
                .unwrap()
                .matches(&pending)
        );
        assert!(
            FieldSelector::parse("spec.hostNetwork==true", "Pod")
                .unwrap()
                .matches(&running)
        );
        assert!(
            FieldSelector::parse("status.podIP=10.0.0.2", "Pod")
                .unwrap()
                .matches(&running)
        );
        let by_name = FieldSelector::parse("metadata.name=p2", "Pod").unwrap();
        assert_eq!(by_name.names().as_deref(), Some("p2"));
        assert!(by_name.matches(&running) && !by_name.matches(&pending));
        assert!(FieldSelector::parse("", "Pod").unwrap().matches(&pending));
    }

    #[test]
    fn field_selector_events_and_secrets() {
        let ev = json!({"metadata": {"name": "e"}, "involvedObject": {"kind": "Pod", "name": "web-1"}, "source": {"component": "kubelet"}, "reason": "Failed", "type": "Warning"});
        let sel = FieldSelector::parse(
            "involvedObject.kind=Pod,involvedObject.name=web-1,source=kubelet,type=Warning",
            "Event",
        )
        .unwrap();
        assert!(sel.matches(&ev));
        assert!(
            !FieldSelector::parse("reason=Pulled", "Event")
                .unwrap()
                .matches(&ev)
        );
        let secret = json!({"metadata": {"name": "s"}, "type": "kubernetes.io/dockerconfigjson"});
        assert!(
            FieldSelector::parse("type=kubernetes.io/dockerconfigjson", "Secret")
                .unwrap()
                .matches(&secret)
        );
    }

    #[test]
    fn field_selector_errors() {
        assert_eq!(
            FieldSelector::parse("spec.foo=bar", "Pod").unwrap_err(),
            "field label not supported: spec.foo"
        );
        assert_eq!(
            FieldSelector::parse("metadata.namespace=x", "Node").unwrap_err(),
            "field label not supported: metadata.namespace"
        );
        assert_eq!(
            FieldSelector::parse("data.x=y", "ConfigMap").unwrap_err(),
            "\"data.x\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\""
        );
        assert_eq!(
            FieldSelector::parse("status.phase", "Pod").unwrap_err(),
            "invalid selector: 'status.phase'; can't understand 'status.phase'"
        );
        assert_eq!(
            FieldSelector::parse("metadata.name=a\\b", "Pod").unwrap_err(),
            "invalid field selector: invalid escape sequence: \\b"
        );
        assert_eq!(
            FieldSelector::parse("metadata.name=a=b", "Pod").unwrap_err(),
            "invalid field selector: unescaped character in value: 61"
        );
        let escaped = FieldSelector::parse("metadata.name=a\\,b", "Pod").unwrap();
        assert_eq!(escaped.names().as_deref(), Some("a,b"));
    }

    #[test]
    fn supported_field_tables() {
        assert!(supported_fields("Pod").contains(&"status.nominatedNodeName"));
        assert!(supported_fields("Event").contains(&"reportingComponent"));
        assert_eq!(
            supported_fields("ConfigMap"),
            &["metadata.name", "metadata.namespace"]
        );
        assert!(supported_fields("Job").contains(&"status.successful"));
    }

    mod props {
        use super::super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn label_parse_never_panics(s in "\\PC{0,40}") {
                let _ = LabelSelector::parse(&s).map(|sel| sel.matches(&serde_json::json!({"a": "b"})));
            }

            #[test]
            fn label_parse_grammar_soup_never_panics(s in "[a-z!=(), <>in/.-]{0,30}") {
                if let Ok(sel) = LabelSelector::parse(&s) {
                    // What Display prints parses back to the same selector.
                    prop_assert_eq!(LabelSelector::parse(&sel.to_string()), Ok(sel));
                }
            }

            #[test]
            fn field_parse_never_panics(s in "\\PC{0,40}", kind in "(Pod|Event|Secret|Node|ConfigMap|Job)") {
                let _ = FieldSelector::parse(&s, &kind).map(|sel| sel.matches(&serde_json::json!({"metadata": {"name": "x"}})));
            }

            #[test]
            fn field_parse_soup_never_panics(s in "[a-zA-Z.=!,\\\\]{0,30}") {
                let _ = FieldSelector::parse(&s, "Pod");
            }
        }
    }
}
