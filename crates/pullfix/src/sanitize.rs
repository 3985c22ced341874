//! Text from the cluster or a registry is untrusted: a pull secret's
//! username, an `auths` key, an event message, a registry's error body or
//! an object's name can carry terminal escape sequences (clear the screen,
//! set the window title, forge a coloured "ok" line), bidi overrides that
//! reorder what is shown, or a megabyte of text. Every such value passes
//! through this module where it is printed, so what reaches a terminal or a
//! Markdown report is inert and bounded. The tool's own styling (colour from
//! [`crate::render::Palette`]) is applied after, around sanitized text.
//!
//! - [`line`]: a value shown on one line: every control character escaped
//!   (`\x1b`, `\n`, `\r`, `\t`, `\0`, C1 controls as `\u{9b}`), bidi and
//!   other invisible format characters as `\u{202e}`, cut with a marker
//!   (`…(+N bytes)`) past [`MAX_LINE`] bytes.
//! - [`block`]: a multi-line text (an error with its `help:` line): the same,
//!   but line feeds kept; cut past [`MAX_BLOCK`] bytes.
//! - [`md_text`], [`md_code`], [`md_cell`], [`md_fenced`]: the Markdown
//!   variants for the incident report, which also neutralise Markdown
//!   syntax where a value is interpolated.
//!
//! - [`json_document`]: a JSON document for tools keeps every value
//!   unchanged, but the characters serde leaves raw (DEL, C1 controls,
//!   bidi and other format characters) are written as `\uXXXX` escapes,
//!   so `pullfix … -o json` read in a terminal is as inert as text output.
//!
//! All functions are pure.

use std::borrow::Cow;
use std::fmt::Write as _;

/// The longest single-line value shown, in bytes, before it is cut.
pub const MAX_LINE: usize = 1024;
/// The longest multi-line text shown, in bytes, before it is cut.
pub const MAX_BLOCK: usize = 8192;

/// A character that must not reach a terminal as it is: C0 and C1 control
/// characters, DEL, and the invisible format characters that change how the
/// text around them is shown (bidi embeddings, overrides and isolates,
/// zero-width joiners, the BOM, line and paragraph separators).
fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{200b}'..='\u{200f}'
                | '\u{2028}'..='\u{202e}'
                | '\u{2060}'..='\u{2069}'
                | '\u{061c}'
                | '\u{feff}'
                | '\u{fff9}'..='\u{fffb}'
        )
}

fn escape_into(out: &mut String, c: char) {
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\0' => out.push_str("\\0"),
        c if u32::from(c) < 0x80 => {
            let _ = write!(out, "\\x{:02x}", u32::from(c));
        }
        c => {
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        }
    }
}

/// The byte index at which `s` is cut to at most `max` bytes, on a
/// character boundary.
fn cut_at(s: &str, max: usize) -> usize {
    if s.len() <= max {
        return s.len();
    }
    let mut i = max;
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn clean(s: &str, keep_newlines: bool, max: usize) -> Cow<'_, str> {
    let needs = s.len() > max
        || s.chars()
            .any(|c| is_unsafe(c) && !(keep_newlines && c == '\n'));
    if !needs {
        return Cow::Borrowed(s);
    }
    let end = cut_at(s, max);
    let mut out = String::with_capacity(end + 16);
    for c in s[..end].chars() {
        if is_unsafe(c) && !(keep_newlines && c == '\n') {
            escape_into(&mut out, c);
        } else {
            out.push(c);
        }
    }
    if end < s.len() {
        let _ = write!(out, "…(+{} bytes)", s.len() - end);
    }
    Cow::Owned(out)
}

/// A value shown on one line: control and format characters escaped
/// (newlines too), cut past [`MAX_LINE`] bytes.
pub fn line(s: &str) -> Cow<'_, str> {
    clean(s, false, MAX_LINE)
}

/// A text that may span lines: as [`line`], but line feeds are kept (a
/// bare `\r` is still escaped, so a line cannot overwrite the one before);
/// cut past [`MAX_BLOCK`] bytes.
pub fn block(s: &str) -> Cow<'_, str> {
    clean(s, true, MAX_BLOCK)
}

/// [`block`] with every line after the first indented by `prefix`, so no
/// line of the text starts at the margin where the tool's own lines do.
pub fn indented(s: &str, prefix: &str) -> String {
    block(s).replace('\n', &format!("\n{prefix}"))
}

/// A log event for stderr: as [`block`] but not cut (a `-vvv` trace is
/// asked for in full), and when the log is in colour the logger's own SGR
/// sequences (`ESC [ digits ; m`, colour only: no cursor movement, no
/// screen clear, no title) are kept.
pub fn log_text(s: &str, color: bool) -> String {
    let block = |s| clean(s, true, usize::MAX);
    if !color {
        return block(s).into_owned();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('\u{1b}') {
        out.push_str(&block(&rest[..i]));
        let after = &rest[i + 1..];
        let sgr_len = after.strip_prefix('[').and_then(|p| {
            let n = p.find(|c: char| !(c.is_ascii_digit() || c == ';'))?;
            p[n..].starts_with('m').then_some(n + 2)
        });
        match sgr_len {
            Some(n) => {
                out.push('\u{1b}');
                out.push_str(&after[..n]);
                rest = &after[n..];
            }
            None => {
                out.push_str("\\x1b");
                rest = after;
            }
        }
    }
    out.push_str(&block(rest));
    out
}

/// [`line`] over a list joined with `sep`.
pub fn join<S: AsRef<str>>(items: &[S], sep: &str) -> String {
    items
        .iter()
        .map(|s| line(s.as_ref()))
        .collect::<Vec<_>>()
        .join(sep)
}

/// A word for a printed shell command, as a shell reads it: bare when it
/// is plain, single-quoted when it is printable, and ANSI-C quoted
/// (`$'evil\x1b[2J\n'`, bash and zsh) when it holds a control or format
/// character, so the command shown is inert on the terminal and still
/// passes the same bytes when it is run.
pub fn shell_word(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.@:/+=".contains(c))
    {
        return s.to_string();
    }
    if !s.chars().any(is_unsafe) {
        return format!("'{}'", s.replace('\'', r"'\''"));
    }
    let mut out = String::from("$'");
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            c if is_unsafe(c) && u32::from(c) < 0x80 => {
                let _ = write!(out, "\\x{:02x}", u32::from(c));
            }
            c if is_unsafe(c) => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

// ---------------------------------------------------------------------------
// Markdown.

/// Markdown syntax outside code spans escaped, so an interpolated value
/// cannot open a link, an image, emphasis, raw HTML or a heading.
fn md_escape_plain(s: &str, at_line_start: bool) -> String {
    let mut out = String::with_capacity(s.len());
    let mut start = at_line_start;
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\\' | '*' | '_' | '[' | ']' | '~' => {
                out.push('\\');
                out.push(c);
            }
            '#' | '+' | '-' | '=' if start => {
                out.push('\\');
                out.push(c);
            }
            _ => out.push(c),
        }
        start = c == '\n' || (start && c == ' ');
    }
    out
}

/// Free text for Markdown on one line (a sentence of the tool's with values
/// quoted in backticks): control characters escaped as in [`line`];
/// outside code spans, Markdown syntax is escaped (`<` and `>` as
/// entities, so a `<password>` placeholder shows); code spans are kept, as
/// their content is literal in Markdown. With an odd number of backticks
/// (a value that carried one), every backtick is escaped and nothing is a
/// code span.
pub fn md_text(s: &str) -> String {
    md_escape(&line(s))
}

/// [`md_text`] for a text that may span lines (line feeds kept, as in
/// [`block`]); the caller indents the lines after the first.
pub fn md_block(s: &str) -> String {
    md_escape(&block(s))
}

fn md_escape(s: &str) -> String {
    if s.matches('`').count() % 2 == 1 {
        return md_escape_plain(s, true).replace('`', "\\`");
    }
    let mut at_start = true;
    s.split('`')
        .enumerate()
        .map(|(i, part)| {
            let piece = if i % 2 == 1 {
                // A code span cannot hold a line break; keep it inert.
                part.replace('\n', "\\n")
            } else {
                md_escape_plain(part, at_start)
            };
            at_start = false;
            piece
        })
        .collect::<Vec<_>>()
        .join("`")
}

/// An inline code span holding a value, on one line: control characters
/// escaped as in [`line`], the fence longer than any backtick run inside.
pub fn md_code(s: &str) -> String {
    let s = line(s);
    let fence = "`".repeat(longest_backtick_run(&s) + 1);
    let pad = if s.starts_with('`') || s.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{s}{pad}{fence}")
}

/// A fenced code block holding a text: control characters escaped as in
/// [`block`], the fence longer than any backtick run inside.
pub fn md_fenced(s: &str) -> String {
    let s = block(s);
    let fence = "`".repeat(longest_backtick_run(&s).max(2) + 1);
    format!("{fence}text\n{s}\n{fence}")
}

/// A table cell from Markdown already built with the functions above: `|`
/// escaped (also inside code spans, as GFM requires) and line breaks shown
/// as `<br>`.
pub fn md_cell(s: &str) -> String {
    s.replace('|', "\\|")
        .replace("\r\n", "<br>")
        .replace('\n', "<br>")
}

fn longest_backtick_run(s: &str) -> usize {
    let mut longest = 0;
    let mut run = 0;
    for c in s.chars() {
        if c == '`' {
            run += 1;
            longest = longest.max(run);
        } else {
            run = 0;
        }
    }
    longest
}

/// A serialized JSON or YAML document with every character serde leaves
/// raw but a terminal acts on (DEL, C1 controls, bidi and other invisible
/// format characters) written as a `\uXXXX` escape. Such a character can
/// only stand inside a string of a JSON document (serde_json writes C0
/// controls escaped), where `\uXXXX` reads back as the same character, so
/// the values a tool parses are unchanged. For JSON only: a YAML emitter
/// may leave such a character in a plain or block scalar, where an escape
/// is not read back (see [`crate::render::structured`]).
pub fn json_document(doc: &str) -> Cow<'_, str> {
    if !doc.chars().any(|c| c != '\n' && c != '\t' && is_unsafe(c)) {
        return Cow::Borrowed(doc);
    }
    let mut out = String::with_capacity(doc.len() + 16);
    for c in doc.chars() {
        if c != '\n' && c != '\t' && is_unsafe(c) {
            // Every unsafe character is in the basic multilingual plane.
            let _ = write!(out, "\\u{:04x}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Whether `s` holds a byte a terminal would act on: any control character
/// other than a line feed, or an invisible format character. For tests of
/// the renderers (colour off), and for the YAML renderer's fallback.
pub fn has_raw_control(s: &str) -> bool {
    s.chars().any(|c| c != '\n' && is_unsafe(c))
}

/// Hostile strings for tests: escape sequences (CSI, OSC title), a C1 CSI,
/// a bare carriage return, a newline, NUL, a bidi override and a 100 KB
/// value.
#[doc(hidden)]
pub fn hostile_samples() -> Vec<String> {
    vec![
        "evil\u{1b}[2J\u{1b}[31mFAKE-OK\nline2".to_string(),
        "key\u{1b}]0;TITLE\u{7}".to_string(),
        "c1\u{9b}31m".to_string(),
        "over\rwrite".to_string(),
        "nul\0byte".to_string(),
        "rtl\u{202e}txt.exe".to_string(),
        "x".repeat(100 * 1024),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_borrowed_unchanged() {
        assert!(matches!(line("deploy/checkout"), Cow::Borrowed(_)));
        assert!(matches!(block("a\nb"), Cow::Borrowed(_)));
    }

    #[test]
    fn escapes_are_shown_escaped() {
        assert_eq!(
            line("evil\u{1b}[2J\u{1b}[31mFAKE-OK\nline2"),
            "evil\\x1b[2J\\x1b[31mFAKE-OK\\nline2"
        );
        assert_eq!(line("t\u{1b}]0;TITLE\u{7}"), "t\\x1b]0;TITLE\\x07");
        assert_eq!(line("a\u{9b}b"), "a\\u{9b}b");
        assert_eq!(line("a\rb\tc\0d\u{7f}"), "a\\rb\\tc\\0d\\x7f");
        assert_eq!(line("rtl\u{202e}x"), "rtl\\u{202e}x");
        assert_eq!(line("ünïcode ✔"), "ünïcode ✔");
    }

    #[test]
    fn logs_keep_their_own_colour_only() {
        let l = "\u{1b}[2mDEBUG\u{1b}[0m get \u{1b}]0;T\u{7} \u{1b}[2J x\n";
        assert_eq!(
            log_text(l, true),
            "\u{1b}[2mDEBUG\u{1b}[0m get \\x1b]0;T\\x07 \\x1b[2J x\n"
        );
        assert_eq!(log_text("a\u{1b}[31mb", false), "a\\x1b[31mb");
    }

    #[test]
    fn block_keeps_line_feeds_only() {
        assert_eq!(block("a\nhelp: b\r\n"), "a\nhelp: b\\r\n");
    }

    #[test]
    fn long_values_are_cut_with_a_marker() {
        let v = "é".repeat(1000); // 2000 bytes
        let s = line(&v);
        assert!(s.ends_with(&format!("…(+{} bytes)", 2000 - MAX_LINE)));
        assert!(s.len() < MAX_LINE + 32);
        let big = "x".repeat(100 * 1024);
        assert!(block(&big).len() < MAX_BLOCK + 32);
    }

    #[test]
    fn json_and_yaml_documents_are_inert_and_read_back_unchanged() {
        use crate::render::{Format, structured};
        let mut samples = hostile_samples();
        samples.extend([
            "del\u{7f}".into(),
            "zw\u{200b}j\u{feff}".into(),
            "a\nb\u{202e}c".into(),
        ]);
        for s in samples {
            let body = serde_json::json!({ s.clone(): [s.clone()], "plain": "ok" });
            for format in [Format::Json, Format::Yaml] {
                let mut out = Vec::new();
                structured(&mut out, format, "Probe", &body).unwrap();
                let doc = String::from_utf8(out).unwrap();
                assert!(!has_raw_control(&doc), "{format:?}: {doc:.200}");
                let mut back: serde_json::Value = match format {
                    Format::Json => serde_json::from_str(&doc).unwrap(),
                    _ => serde_saphyr::from_str(&doc).unwrap(),
                };
                let back = back.as_object_mut().unwrap();
                assert_eq!(back.remove("kind"), Some("Probe".into()));
                back.remove("apiVersion").unwrap();
                assert_eq!(
                    serde_json::Value::from(back.clone()),
                    body,
                    "{format:?}: {doc:.200}"
                );
            }
        }
        // Plain values keep the emitter's own YAML.
        let mut out = Vec::new();
        structured(
            &mut out,
            Format::Yaml,
            "Probe",
            &serde_json::json!({"a": "b"}),
        )
        .unwrap();
        assert!(String::from_utf8(out).unwrap().contains("a: b"));
    }

    #[test]
    fn samples_come_out_inert() {
        for s in hostile_samples() {
            assert!(!has_raw_control(&line(&s)), "{s:.40}");
            assert!(!line(&s).contains('\n'));
            assert!(!has_raw_control(&block(&s)));
            for md in [
                md_text(&s),
                md_code(&s),
                md_fenced(&s),
                md_cell(&md_text(&s)),
            ] {
                assert!(!has_raw_control(&md));
                assert!(md.len() < MAX_BLOCK + 64);
            }
        }
    }

    #[test]
    fn shell_words_stay_equivalent_and_inert() {
        assert_eq!(shell_word("robot"), "robot");
        assert_eq!(shell_word("robot$ci"), "'robot$ci'");
        assert_eq!(shell_word("it's"), r"'it'\''s'");
        assert_eq!(
            shell_word("evil\u{1b}[2J\nx'\\"),
            r"$'evil\x1b[2J\x0ax\'\\'"
        );
        assert_eq!(shell_word("a\u{202e}b"), r"$'a\u202eb'");
        assert!(!has_raw_control(&shell_word("\u{9b}\0\r")));
    }

    #[test]
    fn markdown_syntax_is_neutralised() {
        assert_eq!(
            md_text("see <password> [x](http://e)"),
            "see &lt;password&gt; \\[x\\](http://e)"
        );
        assert_eq!(md_text("# not a heading"), "\\# not a heading");
        assert_eq!(md_text("use `a<b>`"), "use `a<b>`");
        assert_eq!(md_text("odd ` tick"), "odd \\` tick");
        assert_eq!(md_text("`a\nb`"), "`a\\nb`");
        assert_eq!(md_block("a\n# b"), "a\n\\# b");
        assert_eq!(md_code("a`b"), "``a`b``");
        assert_eq!(md_code("a\nb"), "`a\\nb`");
        assert_eq!(md_cell("a|b\nd"), "a\\|b<br>d");
        assert_eq!(md_fenced("x\n```y"), "````text\nx\n```y\n````");
    }
}
