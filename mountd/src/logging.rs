//! The process's log and its other output to stdout/stderr.
//!
//! Invariants:
//! - Writing a log line never fails and never panics: a line that cannot be written (full disk,
//!   `/dev/full`, closed pipe) is dropped and counted; the next line that can be written is
//!   preceded by one saying how many were dropped and why. A daemon whose disk fills up keeps
//!   serving; only its log has a gap, and the gap is marked.
//! - When stderr is `DATA/fossa.log` (a `--daemon` mount), the log is rotated by size: past
//!   [`DEFAULT_MAX_BYTES`] (env `FOSSA_LOG_MAX_BYTES`) it becomes `fossa.log.1` (older ones
//!   shift up to `fossa.log.3`, the oldest is deleted) and a new `fossa.log` becomes stdout and
//!   stderr, so panic messages and the final error line land there too.
use std::fs::{File, OpenOptions};
use std::io::{self, IsTerminal, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use tracing_subscriber::fmt::MakeWriter;

/// Size past which `fossa.log` is rotated (bytes).
pub(crate) const DEFAULT_MAX_BYTES: u64 = 10 << 20;
/// Rotated logs kept besides the current one (`fossa.log.1` … `fossa.log.3`).
pub(crate) const KEEP: u32 = 3;
/// Environment variable overriding [`DEFAULT_MAX_BYTES`].
const MAX_BYTES_ENV: &str = "FOSSA_LOG_MAX_BYTES";

/// Sets up `tracing` to write through [`Sink`] to stderr, at the level `-v` asks for
/// (`RUST_LOG` overrides).
pub(crate) fn init(verbose: u8) {
    let default = match verbose {
        // fuser warns on every external unmount that its own unmount found nothing to do.
        0 => "warn,fuser::session=error,fossa=info,fossa_fs=info,blockstore=info,fossa_net=info",
        1 => "info,fossa=debug,fossa_fs=debug,blockstore=debug,fossa_net=debug",
        _ => "debug,fossa=trace,fossa_fs=trace,blockstore=trace,fossa_net=trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(Sink)
        .with_ansi(io::stderr().is_terminal())
        // Its report of a failed write is an `eprintln!`, which panics when stderr is full.
        .log_internal_errors(false)
        .init();
}

/// Writes `line` and a newline to stdout; a failure is ignored (never a panic, unlike
/// `println!`): output a daemon cannot write must not stop it.
pub(crate) fn stdout_line(line: &str) {
    let _ = writeln!(io::stdout().lock(), "{line}");
}

/// Writes `line` and a newline to stderr through the log's accounting (see the module doc).
pub(crate) fn stderr_line(line: &str) {
    let mut bytes = Vec::with_capacity(line.len() + 1);
    bytes.extend_from_slice(line.as_bytes());
    bytes.push(b'\n');
    state().emit(&bytes);
}

/// Rotates the log from now on if this process's stderr is the file `path` (`DATA/fossa.log`,
/// as set up by `mount --daemon`). Returns whether it is.
pub(crate) fn rotate_if_stderr_is(path: &Path) -> bool {
    let Some(size) = stderr_file_size(path) else {
        return false;
    };
    let max_bytes = std::env::var(MAX_BYTES_ENV)
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(DEFAULT_MAX_BYTES);
    let mut st = state();
    st.written = size;
    st.rotation = Some(Rotation {
        path: path.to_owned(),
        max_bytes,
    });
    true
}

/// The size of stderr's file if stderr is the file at `path`.
fn stderr_file_size(path: &Path) -> Option<u64> {
    let ours = rustix::fs::fstat(rustix::stdio::stderr()).ok()?;
    let file = std::fs::metadata(path).ok()?;
    let same = ours.st_ino == file.ino() && ours.st_dev == file.dev();
    same.then_some(file.len())
}

/// The `tracing` writer: every event is one [`io::Write::write`] call carrying the whole
/// formatted line, which is written (or dropped) as a unit.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Sink;

impl<'a> MakeWriter<'a> for Sink {
    type Writer = Sink;

    fn make_writer(&'a self) -> Sink {
        Sink
    }
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        state().emit(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Where the log is rotated, and when.
#[derive(Debug)]
struct Rotation {
    path: PathBuf,
    max_bytes: u64,
}

/// The log's accounting, shared by every thread.
#[derive(Debug)]
struct State {
    /// Lines dropped since the last line written.
    dropped: u64,
    /// Why the last of them was dropped.
    last_error: Option<io::Error>,
    /// The last failed write stopped inside a line: the next line starts on a fresh one.
    torn: bool,
    /// Bytes in the current log file (counted only while rotating).
    written: u64,
    rotation: Option<Rotation>,
}

static STATE: Mutex<State> = Mutex::new(State {
    dropped: 0,
    last_error: None,
    torn: false,
    written: 0,
    rotation: None,
});

/// The state; a panic elsewhere while holding it does not stop logging.
fn state() -> MutexGuard<'static, State> {
    STATE
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl State {
    /// Writes `line` (one or more whole lines), first a note about dropped lines if any.
    fn emit(&mut self, line: &[u8]) {
        self.rotate_if_due(line.len());
        if self.dropped > 0 && !self.write_note() {
            self.dropped += 1;
            return;
        }
        if let Err(e) = self.write_raw(line) {
            self.dropped += 1;
            self.last_error = Some(e);
        }
    }

    /// Writes the note about dropped lines; false if even that failed.
    fn write_note(&mut self) -> bool {
        let why = self
            .last_error
            .as_ref()
            .map_or_else(String::new, |e| format!(": {e}"));
        let note = format!(
            "fossa: log: {} line(s) dropped while the log could not be written{why}\n",
            self.dropped
        );
        match self.write_raw(note.as_bytes()) {
            Ok(()) => {
                self.dropped = 0;
                self.last_error = None;
                true
            }
            Err(e) => {
                self.last_error = Some(e);
                false
            }
        }
    }

    /// Writes `bytes` to stderr, starting on a fresh line if the last write was torn.
    fn write_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        let mut err = io::stderr().lock();
        if self.torn {
            err.write_all(b"\n")?;
            self.torn = false;
        }
        let mut done = 0;
        while done < bytes.len() {
            match err.write(&bytes[done..]) {
                Ok(0) => return Err(self.tear(done, io::ErrorKind::WriteZero.into())),
                Ok(n) => {
                    done += n;
                    self.written = self.written.saturating_add(n as u64);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.tear(done, e)),
            }
        }
        Ok(())
    }

    fn tear(&mut self, done: usize, e: io::Error) -> io::Error {
        self.torn = done > 0;
        e
    }

    /// Rotates before a write of `len` bytes that would take the file past its limit.
    fn rotate_if_due(&mut self, len: usize) {
        let Some(rot) = &self.rotation else { return };
        let len = u64::try_from(len).unwrap_or(u64::MAX);
        if self.written == 0 || self.written.saturating_add(len) <= rot.max_bytes {
            return;
        }
        // Tried once per `max_bytes` of log, whether it works or not: a failure (no room for
        // a new file) must not turn every line into a round of renames.
        self.written = 0;
        if let Err(e) = rotate(&rot.path) {
            self.last_error = Some(e);
        }
    }
}

/// Rotates the log at `path` and makes the new, empty one this process's stdout and stderr.
fn rotate(path: &Path) -> io::Result<()> {
    redirect_stdio(&shift_files(path)?)
}

/// Shifts `path` to `path.1` (and older ones up to `path.KEEP`; the oldest is replaced) and
/// returns a new, empty `path`. The new file is made first: if that fails nothing moves.
fn shift_files(path: &Path) -> io::Result<File> {
    let fresh = numbered(path, "new");
    let file = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(&fresh)?;
    for n in (1..KEEP).rev() {
        let from = numbered(path, &n.to_string());
        if from.exists() {
            std::fs::rename(&from, numbered(path, &(n + 1).to_string()))?;
        }
    }
    std::fs::rename(path, numbered(path, "1"))?;
    std::fs::rename(&fresh, path)?;
    Ok(file)
}

/// `path.suffix`.
fn numbered(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".");
    s.push(suffix);
    PathBuf::from(s)
}

/// Makes `file` (opened for writing; appends as its only writer) stdout and stderr.
fn redirect_stdio(file: &File) -> io::Result<()> {
    io::stdout().lock().flush()?;
    rustix::stdio::dup2_stdout(file)?;
    rustix::stdio::dup2_stderr(file)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_shifts_and_keeps_three() {
        let d = tempfile::tempdir().unwrap();
        let log = d.path().join("fossa.log");
        let read = |s: &str| std::fs::read_to_string(numbered(&log, s)).unwrap();
        std::fs::write(&log, "first").unwrap();
        let mut f = shift_files(&log).unwrap();
        f.write_all(b"second").unwrap();
        assert_eq!(read("1"), "first");
        assert_eq!(std::fs::read_to_string(&log).unwrap(), "second");
        for n in 3..=5 {
            shift_files(&log)
                .unwrap()
                .write_all(format!("n{n}").as_bytes())
                .unwrap();
        }
        assert_eq!(std::fs::read_to_string(&log).unwrap(), "n5");
        assert_eq!(read("1"), "n4");
        assert_eq!(read("2"), "n3");
        assert_eq!(read("3"), "second");
        assert!(!numbered(&log, "4").exists());
        assert!(!numbered(&log, "new").exists());
    }
}
