//! Asking the user, on stderr (stdout stays pipeable). Three modes: a
//! terminal (dialoguer prompts), `--yes` (every ordinary confirmation is
//! yes), and no terminal without `--yes` (nothing is confirmed: the plan is
//! printed and the exit code says fixes are pending).
//!
//! Ctrl-C at any question answers [`Interrupted`] (after the cursor is
//! shown again), and every question is refused once the run was
//! interrupted, `--yes` or not: see [`crate::terminal`].

use std::io::IsTerminal;

use console::{Key, Term};
use dialoguer::theme::{ColorfulTheme, Theme as _};
use dialoguer::{Confirm, Select};

use crate::terminal::{self, Interrupted};

/// An answer to a confirmation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Yes,
    No,
    /// No terminal and no `--yes`: the question could not be asked.
    Pending,
}

/// How the user is reached.
pub trait Prompter: Send {
    /// Yes/no; `default` is what Enter means. Destructive questions pass false.
    fn confirm(&mut self, question: &str, default: bool) -> anyhow::Result<Answer>;
    /// An extra confirmation that `--yes` alone does not give (managed secrets).
    fn confirm_extra(&mut self, question: &str) -> anyhow::Result<Answer>;
    /// Pick one item; `None` when the question could not be asked.
    fn select(&mut self, prompt: &str, items: &[String]) -> anyhow::Result<Option<usize>>;
    /// A line of text (username); `None` when it could not be asked.
    fn text(&mut self, prompt: &str, default: Option<&str>) -> anyhow::Result<Option<String>>;
    /// Hidden input (password); `None` when it could not be asked.
    fn secret(&mut self, prompt: &str) -> anyhow::Result<Option<String>>;
    /// True when questions reach a person.
    fn interactive(&self) -> bool;
    /// True when a person answers the choices `--yes` must not make (which
    /// of several tags to run): a terminal without `--yes`.
    fn chooses(&self) -> bool;
}

/// Chooses the prompter for this run.
pub fn for_run(yes: bool, allow_managed: bool) -> Box<dyn Prompter> {
    let tty = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    if tty {
        Box::new(Terminal { yes, allow_managed })
    } else {
        Box::new(Unattended { yes, allow_managed })
    }
}

/// A person at a terminal (with `--yes`, ordinary questions are answered yes).
pub(crate) struct Terminal {
    pub yes: bool,
    pub allow_managed: bool,
}

/// A failed read: Ctrl-C (console reads `^C` in raw mode and raises SIGINT,
/// which the guard catches, so the read fails with `Interrupted`) or a real
/// error.
fn prompt_error(e: dialoguer::Error) -> anyhow::Error {
    let dialoguer::Error::IO(io) = &e;
    if io.kind() == std::io::ErrorKind::Interrupted {
        return interrupted_at_prompt();
    }
    anyhow::anyhow!("read the answer from the terminal: {e}")
}

/// Ctrl-C at a question: the run is marked interrupted, the cursor that
/// dialoguer hid is shown again, and the prompt's line is ended.
fn interrupted_at_prompt() -> anyhow::Error {
    terminal::interrupt();
    terminal::restore();
    let _ = Term::stderr().write_line("");
    anyhow::Error::new(Interrupted)
}

/// Hidden input, read key by key in raw mode: `^C` is a key here (not a
/// signal), so it ends the question as [`Interrupted`]; echo is never on.
/// (dialoguer's `Password` reads a line with echo off and ISIG on: with the
/// Ctrl-C guard installed the read would just restart after `^C`.) Enter
/// on an empty answer asks again.
fn read_hidden(prompt: &str) -> anyhow::Result<String> {
    let term = Term::stderr();
    let theme = ColorfulTheme::default();
    let io = |e: std::io::Error| anyhow::anyhow!("read the answer from the terminal: {e}");
    loop {
        let mut shown = String::new();
        let _ = theme.format_password_prompt(&mut shown, prompt);
        term.write_str(&shown).map_err(io)?;
        let mut buf = String::new();
        loop {
            match term.read_key_raw() {
                Ok(Key::Enter) => break,
                Ok(Key::CtrlC) => {
                    secrecy::zeroize::Zeroize::zeroize(&mut buf);
                    return Err(interrupted_at_prompt());
                }
                Ok(Key::Backspace) => {
                    buf.pop();
                }
                Ok(Key::Char(c)) if !c.is_control() => buf.push(c),
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {
                    secrecy::zeroize::Zeroize::zeroize(&mut buf);
                    return Err(interrupted_at_prompt());
                }
                Err(e) => {
                    secrecy::zeroize::Zeroize::zeroize(&mut buf);
                    return Err(io(e));
                }
            }
        }
        term.clear_line().map_err(io)?;
        if buf.is_empty() {
            continue;
        }
        let mut done = String::new();
        let _ = theme.format_password_prompt_selection(&mut done, prompt);
        term.write_line(&done).map_err(io)?;
        return Ok(buf);
    }
}

/// A yes/no question on the terminal; Esc or q counts as no.
fn ask_yes_no(question: &str, default: bool) -> anyhow::Result<Answer> {
    let ok = Confirm::with_theme(&ColorfulTheme::default())
        .with_prompt(question)
        .default(default)
        .interact_opt()
        .map_err(prompt_error)?;
    Ok(if ok == Some(true) {
        Answer::Yes
    } else {
        Answer::No
    })
}

impl Prompter for Terminal {
    fn confirm(&mut self, question: &str, default: bool) -> anyhow::Result<Answer> {
        // A question quotes names from the cluster: shown inert.
        let question: &str = &crate::sanitize::line(question);
        terminal::check()?;
        if self.yes {
            eprintln!("{question} yes (--yes)");
            return Ok(Answer::Yes);
        }
        ask_yes_no(question, default)
    }

    fn confirm_extra(&mut self, question: &str) -> anyhow::Result<Answer> {
        // A question quotes names from the cluster: shown inert.
        let question: &str = &crate::sanitize::line(question);
        terminal::check()?;
        if self.allow_managed {
            eprintln!("{question} yes (--allow-managed)");
            return Ok(Answer::Yes);
        }
        ask_yes_no(question, false)
    }

    fn select(&mut self, prompt: &str, items: &[String]) -> anyhow::Result<Option<usize>> {
        let prompt: &str = &crate::sanitize::line(prompt);
        terminal::check()?;
        if self.yes {
            return Ok(Some(0));
        }
        Select::with_theme(&ColorfulTheme::default())
            .with_prompt(prompt)
            .items(
                items
                    .iter()
                    .map(|i| crate::sanitize::line(i).into_owned())
                    .collect::<Vec<_>>(),
            )
            .default(0)
            .interact_opt()
            .map_err(prompt_error)
    }

    fn text(&mut self, prompt: &str, default: Option<&str>) -> anyhow::Result<Option<String>> {
        let prompt: &str = &crate::sanitize::line(prompt);
        terminal::check()?;
        let theme = ColorfulTheme::default();
        let mut input = dialoguer::Input::<String>::with_theme(&theme).with_prompt(prompt);
        if let Some(d) = default {
            input = input.default(d.to_string());
        }
        input.interact_text().map(Some).map_err(prompt_error)
    }

    fn secret(&mut self, prompt: &str) -> anyhow::Result<Option<String>> {
        let prompt: &str = &crate::sanitize::line(prompt);
        terminal::check()?;
        read_hidden(prompt).map(Some)
    }

    fn interactive(&self) -> bool {
        true
    }

    fn chooses(&self) -> bool {
        !self.yes
    }
}

/// No terminal: `--yes` answers ordinary questions, nothing else can be asked.
pub(crate) struct Unattended {
    pub yes: bool,
    pub allow_managed: bool,
}

impl Prompter for Unattended {
    fn confirm(&mut self, question: &str, _default: bool) -> anyhow::Result<Answer> {
        // A question quotes names from the cluster: shown inert.
        let question: &str = &crate::sanitize::line(question);
        terminal::check()?;
        if self.yes {
            eprintln!("{question} yes (--yes)");
            Ok(Answer::Yes)
        } else {
            eprintln!("{question} not asked: no terminal (pass --yes to confirm)");
            Ok(Answer::Pending)
        }
    }

    fn confirm_extra(&mut self, question: &str) -> anyhow::Result<Answer> {
        // A question quotes names from the cluster: shown inert.
        let question: &str = &crate::sanitize::line(question);
        terminal::check()?;
        if self.allow_managed {
            eprintln!("{question} yes (--allow-managed)");
            Ok(Answer::Yes)
        } else {
            eprintln!("{question} not asked: no terminal (pass --allow-managed to confirm)");
            Ok(Answer::Pending)
        }
    }

    fn select(&mut self, _prompt: &str, _items: &[String]) -> anyhow::Result<Option<usize>> {
        terminal::check()?;
        Ok(self.yes.then_some(0))
    }

    fn text(&mut self, _prompt: &str, _default: Option<&str>) -> anyhow::Result<Option<String>> {
        Ok(None)
    }

    fn secret(&mut self, _prompt: &str) -> anyhow::Result<Option<String>> {
        Ok(None)
    }

    fn interactive(&self) -> bool {
        false
    }

    fn chooses(&self) -> bool {
        false
    }
}
