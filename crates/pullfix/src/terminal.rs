//! The terminal while the guided fix works: Ctrl-C, and spinners for waits.
//!
//! **Ctrl-C.** Without a handler, Ctrl-C kills the process wherever it is:
//! at a dialoguer prompt the cursor stays hidden (console raises SIGINT
//! itself when it reads `^C` in raw mode, after dialoguer hid the cursor),
//! and nobody is told which changes were already written. So the guided fix
//! installs [`install_guard`]: the first Ctrl-C only *marks* the run
//! interrupted. A prompt then answers [`Interrupted`] instead of an answer,
//! a wait ([`until_interrupted`]) stops at once, and a write in flight is
//! allowed to finish (its result is known, so the report is true). The
//! typed error goes up to the flow, which knows the incident: it prints what
//! was written (with the restore commands) and what was not, restores the
//! terminal and exits 130. A second Ctrl-C stops at once, after restoring
//! the terminal and listing the writes recorded so far ([`record_write`]).
//!
//! **Spinners.** [`spin`] shows, on stderr and only when stderr is a
//! terminal, what is being waited for and for how long at most, once the
//! wait has lasted a second; it is cleared when the wait ends, so it never
//! mixes with the prompts and output lines that follow.

use std::future::Future;
use std::io::IsTerminal as _;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The run was interrupted (Ctrl-C): nothing more is asked or written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("interrupted (Ctrl-C)")]
pub struct Interrupted;

/// How long a wait goes before its spinner shows.
const SPINNER_AFTER: Duration = Duration::from_secs(1);

static SIGNALS: AtomicUsize = AtomicUsize::new(0);
static GUARD: OnceLock<()> = OnceLock::new();

/// Whether the run was interrupted, and a channel that wakes the waits.
struct Flag {
    set: AtomicBool,
    tx: tokio::sync::watch::Sender<bool>,
}

impl Flag {
    fn new() -> Flag {
        Flag {
            set: AtomicBool::new(false),
            tx: tokio::sync::watch::Sender::new(false),
        }
    }

    fn raise(&self) {
        self.set.store(true, Ordering::SeqCst);
        self.tx.send_replace(true);
    }

    fn is_set(&self) -> bool {
        self.set.load(Ordering::SeqCst)
    }

    async fn until<F: Future>(&self, fut: F) -> Result<F::Output, Interrupted> {
        let mut rx = self.tx.subscribe();
        if *rx.borrow_and_update() {
            return Err(Interrupted);
        }
        tokio::select! {
            out = fut => Ok(out),
            _ = rx.wait_for(|v| *v) => Err(Interrupted),
        }
    }
}

/// The process's flag: one run, one Ctrl-C.
fn flag() -> &'static Flag {
    static FLAG: OnceLock<Flag> = OnceLock::new();
    FLAG.get_or_init(Flag::new)
}

/// True when `e` is (or was caused by) an [`Interrupted`].
pub fn is_interrupted(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.downcast_ref::<Interrupted>().is_some())
}

/// True once Ctrl-C was pressed (at a prompt or while waiting).
pub fn interrupted() -> bool {
    flag().is_set()
}

/// Marks the run interrupted and wakes every [`until_interrupted`] wait.
pub fn interrupt() {
    flag().raise();
}

/// `Err(Interrupted)` once Ctrl-C was pressed: for the points where the
/// flow is about to ask or write.
pub fn check() -> Result<(), Interrupted> {
    if interrupted() {
        Err(Interrupted)
    } else {
        Ok(())
    }
}

/// Runs `fut` unless Ctrl-C comes first (then `fut` is dropped). Use it for
/// waits only (reads, probes, rollouts), never around a write: a write cut
/// off halfway could not be reported truthfully.
pub async fn until_interrupted<F: Future>(fut: F) -> Result<F::Output, Interrupted> {
    flag().until(fut).await
}

/// Installs the Ctrl-C handler (once per process; needs the tokio runtime).
/// From then on Ctrl-C no longer kills the process: see the module doc.
pub fn install_guard() {
    if GUARD.set(()).is_err() {
        return;
    }
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        // Registered here, before any prompt, so that no Ctrl-C in between
        // takes the default action.
        let Ok(mut sigint) = signal(SignalKind::interrupt()) else {
            return;
        };
        tokio::spawn(async move {
            while sigint.recv().await.is_some() {
                on_signal();
            }
        });
    }
}

fn on_signal() {
    let n = SIGNALS.fetch_add(1, Ordering::SeqCst) + 1;
    interrupt();
    if n >= 2 {
        restore();
        let mut text = String::from(
            "\ninterrupted twice (Ctrl-C): stopping now, without waiting for the current step\n",
        );
        text.push_str(&written_text());
        eprint!("{text}");
        stop_now();
    }
}

#[allow(
    clippy::exit,
    reason = "a second Ctrl-C must stop the process even inside a wait that cannot be interrupted"
)]
fn stop_now() -> ! {
    std::process::exit(i32::from(crate::EXIT_INTERRUPTED))
}

/// Puts the terminal back as the shell expects it (at the end of a run):
/// spinners cleared and no more drawn, the
/// cursor shown (dialoguer hides it in a menu and a confirmation, and does
/// not show it again when the read fails). Echo needs no repair: the
/// prompts restore the terminal mode themselves when their read returns.
pub fn restore() {
    // A wait cut short may live on in a task of its own: its spinner must
    // not draw again once the run is over.
    NO_MORE_SPINNERS.store(true, Ordering::SeqCst);
    if let Some(bar) = showing().lock().unwrap_or_else(|p| p.into_inner()).take() {
        bar.finish_and_clear();
    }
    let term = console::Term::stderr();
    if term.is_term() {
        let _ = term.show_cursor();
    }
}

/// One real write, as the Ctrl-C report lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Written {
    title: String,
    restore: Option<String>,
}

fn journal() -> &'static Mutex<Vec<Written>> {
    static JOURNAL: OnceLock<Mutex<Vec<Written>>> = OnceLock::new();
    JOURNAL.get_or_init(Mutex::default)
}

/// Records a change written to the cluster (for the report of a second
/// Ctrl-C, which cannot wait for the flow's own).
pub fn record_write(title: &str, restore: Option<&str>) {
    let mut j = journal().lock().unwrap_or_else(|p| p.into_inner());
    j.push(Written {
        title: title.to_string(),
        restore: restore.map(str::to_string),
    });
}

/// The writes recorded so far, with how to undo each, as lines.
pub fn written_text() -> String {
    let j = journal().lock().unwrap_or_else(|p| p.into_inner());
    written_lines(&j)
}

fn written_lines(written: &[Written]) -> String {
    if written.is_empty() {
        return "nothing was written to the cluster\n".into();
    }
    let mut s = format!("written to the cluster ({}):\n", written.len());
    for w in written {
        s.push_str(&format!("  - {}\n", w.title));
        if let Some(r) = &w.restore {
            s.push_str(&format!("      undo: {r}\n"));
        }
    }
    s
}

/// The spinner showing, if any: one at a time (when waits overlap, the
/// first one's stays until it ends; the others show none), so no two
/// spinners fight over the same line.
fn showing() -> &'static Mutex<Option<ProgressBar>> {
    static SHOWING: OnceLock<Mutex<Option<ProgressBar>>> = OnceLock::new();
    SHOWING.get_or_init(Mutex::default)
}

/// Where spinners draw: stderr, a few columns short of its width. A line
/// filled to the last column leaves the cursor waiting to wrap, so the
/// `^C` the terminal echoes at Ctrl-C would start a new line, and clearing
/// the spinner would clear that line instead of the spinner's.
pub(crate) fn spinner_target() -> ProgressDrawTarget {
    ProgressDrawTarget::term_like(Box::new(Narrower(console::Term::stderr())))
}

#[derive(Debug)]
struct Narrower(console::Term);

impl indicatif::TermLike for Narrower {
    fn width(&self) -> u16 {
        self.0.size().1.saturating_sub(4).max(20)
    }
    fn move_cursor_up(&self, n: usize) -> std::io::Result<()> {
        self.0.move_cursor_up(n)
    }
    fn move_cursor_down(&self, n: usize) -> std::io::Result<()> {
        self.0.move_cursor_down(n)
    }
    fn move_cursor_right(&self, n: usize) -> std::io::Result<()> {
        self.0.move_cursor_right(n)
    }
    fn move_cursor_left(&self, n: usize) -> std::io::Result<()> {
        self.0.move_cursor_left(n)
    }
    fn write_line(&self, s: &str) -> std::io::Result<()> {
        self.0.write_line(s)
    }
    fn write_str(&self, s: &str) -> std::io::Result<()> {
        self.0.write_str(s)
    }
    fn clear_line(&self) -> std::io::Result<()> {
        self.0.clear_line()
    }
    fn flush(&self) -> std::io::Result<()> {
        self.0.flush()
    }
}

/// Set at the end of a run: no spinner may show any more.
static NO_MORE_SPINNERS: AtomicBool = AtomicBool::new(false);

/// `10s`, `1m30s`: how long at most, as the spinner says it.
pub fn at_most(d: Duration) -> String {
    format!("up to {}", crate::duration::format(d))
}

/// Awaits `fut`; if it takes longer than a second and stderr is a
/// terminal, a spinner shows `what` (say what is waited for and for how
/// long at most: "probing 127.0.0.1:5000 (up to 10s)") with the time spent.
/// The spinner is cleared when `fut` ends or is dropped.
pub async fn spin<F: Future>(what: impl Into<String>, fut: F) -> F::Output {
    if !std::io::stderr().is_terminal() {
        return fut.await;
    }
    let mut fut = std::pin::pin!(fut);
    tokio::select! {
        biased;
        out = &mut fut => return out,
        () = tokio::time::sleep(SPINNER_AFTER) => {}
    }
    let _spinner = Spinner::show(what.into());
    fut.await
}

/// The spinner of one wait; clears itself when dropped. `None` inside when
/// another wait's spinner is showing.
struct Spinner(Option<ProgressBar>);

impl Spinner {
    fn show(what: String) -> Spinner {
        let mut showing = showing().lock().unwrap_or_else(|p| p.into_inner());
        if showing.is_some() || NO_MORE_SPINNERS.load(Ordering::SeqCst) {
            return Spinner(None);
        }
        let bar = ProgressBar::with_draw_target(None, spinner_target())
            .with_elapsed(SPINNER_AFTER)
            .with_message(what);
        if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} [{elapsed}]") {
            bar.set_style(style);
        }
        bar.enable_steady_tick(Duration::from_millis(120));
        *showing = Some(bar.clone());
        Spinner(Some(bar))
    }
}

impl Drop for Spinner {
    fn drop(&mut self) {
        if let Some(bar) = self.0.take() {
            bar.finish_and_clear();
            let mut showing = showing().lock().unwrap_or_else(|p| p.into_inner());
            *showing = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interrupted_is_found_through_context() {
        let e = anyhow::Error::new(Interrupted).context("ask whether to apply");
        assert!(is_interrupted(&e));
        assert!(!is_interrupted(&anyhow::anyhow!("interrupted (Ctrl-C)")));
    }

    #[test]
    fn written_lines_name_each_write_and_its_undo() {
        assert_eq!(written_lines(&[]), "nothing was written to the cluster\n");
        let text = written_lines(&[
            Written {
                title: "update secret shop/regcred".into(),
                restore: Some("kubectl replace -f /b/secret.json".into()),
            },
            Written {
                title: "rollout restart deploy/checkout -n shop".into(),
                restore: None,
            },
        ]);
        assert_eq!(
            text,
            "written to the cluster (2):\n  - update secret shop/regcred\n      undo: kubectl replace -f /b/secret.json\n  - rollout restart deploy/checkout -n shop\n"
        );
    }

    #[test]
    fn at_most_reads_like_kubectl() {
        assert_eq!(at_most(Duration::from_secs(10)), "up to 10s");
        assert_eq!(at_most(Duration::from_secs(90)), "up to 1m30s");
    }

    #[tokio::test]
    async fn spin_returns_the_value_and_waits_end_when_interrupted() {
        assert_eq!(spin("nothing", async { 7 }).await, 7);
        let flag = std::sync::Arc::new(Flag::new());
        let f = flag.clone();
        let waiting =
            tokio::spawn(async move { f.until(tokio::time::sleep(Duration::from_secs(60))).await });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!flag.is_set());
        flag.raise();
        let r = tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("the wait ends at once")
            .unwrap();
        assert_eq!(r, Err(Interrupted));
        assert!(flag.is_set());
        assert_eq!(flag.until(async { 1 }).await, Err(Interrupted));
    }
}
