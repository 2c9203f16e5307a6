//! Write-back of file buffers into blocks, outside the state lock.
//!
//! A flush takes a file's buffer out of its `OpenFile` into a *flight* (kept in
//! `Files::flights` so that reads still see its bytes), runs `ContentEngine::update` without
//! the state lock, and *lands*: under the lock the inode gets the new content and the flight
//! is removed (waiters are woken through `Files::landed`). At most one flight per inode, so
//! updates of one file apply in order. Background flights run on the `fossa-writeback`
//! thread; synchronous ones (close, fsync, truncate) on the caller's thread. While a file's
//! flight runs its writer fills the next buffer, up to twice the per-file limit, and that
//! buffer takes off as soon as the flight lands (`handles::runs_ahead`, `fly`). A failed flight
//! puts its buffer back under the current one, so the data is retried at the next flush.
//! Flights only change in-memory inodes; `Core::flush_all` still commits the store before
//! the metadata that references the new blocks.
use super::State;
use crate::attr::Ino;
use crate::error::{Bug, FsError};
use crate::file::{ContentEngine, FileContent, WriteBuffer};
use parking_lot::{Mutex, MutexGuard};
use std::collections::VecDeque;
use std::collections::hash_map::Entry;
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;

/// A buffer of scattered small writes is flushed at `file_dirty_limit` only if it has at most
/// this many extents: flushing many small extents re-seals mostly untouched chunk bytes.
const STREAM_EXTENTS: usize = 64;

/// Whether a buffer should go to blocks now: streaming buffers at the per-file limit, any
/// buffer at half the total limit (scattered writes then cover most chunks they dirty).
pub(crate) fn wants_flush(buf: &WriteBuffer, (file, total): (usize, usize)) -> bool {
    let bytes = buf.bytes();
    (bytes >= file && buf.extent_count() <= STREAM_EXTENTS) || bytes >= total / 2
}

/// Whether `ino`'s buffer is due (it may have taken off while its writer waited).
pub(crate) fn buffer_due(st: &State, ino: Ino, limits: (usize, usize)) -> bool {
    st.files
        .open
        .get(&ino)
        .is_some_and(|of| wants_flush(&of.buf, limits))
}

/// What the writeback thread needs of the volume: the engine that turns buffers into
/// blocks, the state lock where flights land, and the buffer limits (per file, total).
pub(crate) trait Landing: Send + Sync {
    /// Seals and stores content.
    fn engine(&self) -> &ContentEngine;
    /// The state lock.
    fn state(&self) -> &Mutex<State>;
    /// Buffer limits (per file, total) for writes.
    fn limits(&self) -> (usize, usize);
}

/// The state lock, held.
pub(crate) type Guard<'a> = MutexGuard<'a, State>;

/// Hands a job to the writeback thread; gives it back if the thread is gone.
pub(crate) type Spawn<'a> = &'a dyn Fn(Job) -> Result<(), Job>;

/// A buffer being turned into blocks.
pub(crate) struct Flight {
    pub(crate) buf: Arc<WriteBuffer>,
    /// The size the update gives the file.
    pub(crate) size: u64,
    /// The logical size before, restored if the update fails (a failed truncate).
    prev_size: u64,
}

/// One content update: `buf` laid over `base`, cut or extended to `size`.
pub(crate) struct Job {
    ino: Ino,
    base: FileContent,
    size: u64,
    buf: Arc<WriteBuffer>,
}

/// Waits until no update of `ino` is in flight. Meanwhile a landing does not chain the
/// file's next buffer (`fly`) and its writer does not start one (`handles::runs_ahead`): a
/// file written without pause would otherwise always have a flight, and whoever waits (an
/// fsync, the periodic commit, a truncate) would wait until the writing stops.
pub(crate) fn wait_flight(st: &mut Guard<'_>, ino: Ino) {
    if !st.files.flights.contains_key(&ino) {
        return;
    }
    *st.files.flush_waiters.entry(ino).or_insert(0) += 1;
    while st.files.flights.contains_key(&ino) {
        let cv = st.files.landed.clone();
        cv.wait(st);
    }
    if let Entry::Occupied(mut w) = st.files.flush_waiters.entry(ino) {
        *w.get_mut() -= 1;
        if *w.get() == 0 {
            w.remove();
            // A writer held back by this wait may start its buffer now.
            st.files.landed.notify_all();
        }
    }
}

/// Moves the buffer of `ino` into a new flight that resizes the file to `new_size` (default:
/// its logical size); `None` when there is nothing to do. No flight of `ino` may be running.
fn take_off(st: &mut State, ino: Ino, new_size: Option<u64>) -> Result<Option<Job>, FsError> {
    let base = st.inode(ino)?.content;
    let (buf, size, prev_size) = match st.files.open.get_mut(&ino) {
        Some(of) => {
            let size = new_size.unwrap_or(of.size);
            if of.buf.is_empty() && size == base.size {
                return Ok(None);
            }
            let prev = std::mem::replace(&mut of.size, size);
            (std::mem::take(&mut of.buf), size, prev)
        }
        None => match new_size {
            Some(s) if s != base.size => (WriteBuffer::new(), s, base.size),
            _ => return Ok(None),
        },
    };
    let buf = Arc::new(buf);
    let fl = Flight {
        buf: buf.clone(),
        size,
        prev_size,
    };
    st.files.flights.insert(ino, fl);
    Ok(Some(Job {
        ino,
        base,
        size,
        buf,
    }))
}

/// Lands a flight: the inode gets the new content, or on failure the flight's bytes go back
/// under the current buffer (older under newer) and the error is returned.
fn land(st: &mut State, job: Job, r: Result<FileContent, FsError>) -> Result<(), FsError> {
    let Job { ino, buf, .. } = job;
    drop(buf);
    st.files.landed.notify_all();
    let Some(fl) = st.files.flights.remove(&ino) else {
        return Err(FsError::bug(Bug::FlightLandedTwice { ino }));
    };
    let nc = match r {
        Ok(nc) => nc,
        Err(e) => return Err(restore(st, ino, &fl, e)),
    };
    st.files.buffered -= fl.buf.bytes();
    st.inode_mut(ino)?.content = nc;
    st.files.recycle(fl.buf);
    Ok(())
}

/// After a failed update: the flight's bytes go back under the current buffer (newer bytes
/// win) and the size it was to cut is restored; returns `e`.
fn restore(st: &mut State, ino: Ino, fl: &Flight, e: FsError) -> FsError {
    let f = &mut st.files;
    match f.open.get_mut(&ino) {
        Some(of) => {
            let before = of.buf.bytes() + fl.buf.bytes();
            of.buf.merge_under(&fl.buf);
            f.buffered = f.buffered - before + of.buf.bytes();
            of.size = of.size.max(fl.prev_size);
        }
        None => f.buffered -= fl.buf.bytes(),
    }
    e
}

/// Moves the buffered writes of `ino` into blocks now, resizing to `new_size` if given. The
/// update runs with the state lock released.
pub(crate) fn flush_data(
    eng: &ContentEngine,
    st: &mut Guard<'_>,
    ino: Ino,
    new_size: Option<u64>,
) -> Result<(), FsError> {
    wait_flight(st, ino);
    let Some(job) = take_off(st, ino, new_size)? else {
        return Ok(());
    };
    let r = MutexGuard::unlocked(st, || eng.update(&job.base, job.size, &job.buf));
    land(st, job, r)
}

/// Turns bytes `a..b` of `ino` into a hole (its size unchanged). Buffered writes go into
/// blocks first, so that the punch applies after them; the punch then runs as a flight with
/// an empty buffer (readers see the old content until it lands), the state lock released.
pub(crate) fn punch_data(
    eng: &ContentEngine,
    st: &mut Guard<'_>,
    ino: Ino,
    (a, b): (u64, u64),
) -> Result<(), FsError> {
    flush_data(eng, st, ino, None)?;
    wait_flight(st, ino);
    let base = st.inode(ino)?.content;
    let buf = Arc::new(WriteBuffer::new());
    let fl = Flight {
        buf: buf.clone(),
        size: base.size,
        prev_size: base.size,
    };
    st.files.flights.insert(ino, fl);
    let job = Job {
        ino,
        base,
        size: base.size,
        buf,
    };
    let r = MutexGuard::unlocked(st, || eng.punch(&job.base, a, b));
    land(st, job, r)
}

/// Starts a background flush of `ino`'s buffer, after its previous one has landed.
pub(crate) fn start(st: &mut Guard<'_>, ino: Ino, spawn: Spawn<'_>) -> Result<(), FsError> {
    wait_flight(st, ino);
    match take_off(st, ino, None)? {
        Some(job) => launch(st, job, spawn),
        None => Ok(()),
    }
}

/// Hands `job` to the writeback thread (or fails it if that thread is gone).
fn launch(st: &mut State, job: Job, spawn: Spawn<'_>) -> Result<(), FsError> {
    match spawn(job) {
        Ok(()) => Ok(()),
        Err(job) => {
            let ino = job.ino;
            land(st, job, Err(FsError::bug(Bug::WritebackGone { ino })))
        }
    }
}

/// Keeps buffered bytes (in flight included) under `total`: starts a flush of the largest
/// idle buffer, then waits for flights to land while over the limit.
pub(crate) fn relieve(st: &mut Guard<'_>, total: usize, spawn: Spawn<'_>) -> Result<(), FsError> {
    if st.files.buffered <= total {
        return Ok(());
    }
    let f = &st.files;
    let idle = f.open.iter().filter(|(i, _)| !f.flights.contains_key(i));
    let largest = idle.max_by_key(|(_, of)| of.buf.bytes()).map(|(i, _)| *i);
    if let Some(job) = largest
        .map(|i| take_off(st, i, None))
        .transpose()?
        .flatten()
    {
        launch(st, job, spawn)?;
    }
    while st.files.buffered > total && !st.files.flights.is_empty() {
        let cv = st.files.landed.clone();
        cv.wait(st);
    }
    Ok(())
}

/// Runs one background update and lands it; a failure is kept for the file's next
/// write/flush/fsync. If the file's next buffer filled up meanwhile, it takes off at once and
/// is returned, to run next: its writer went on writing instead of waiting for this landing
/// (`handles::write`), so nobody else would start it before the writer's next call. Not while
/// someone waits for the file's flights to end (`wait_flight`): that one flushes the buffer.
fn fly(vol: &dyn Landing, job: Job) -> Option<Job> {
    let r = vol.engine().update(&job.base, job.size, &job.buf);
    let ino = job.ino;
    let mut st = vol.state().lock();
    if let Err(e) = land(&mut st, job, r) {
        tracing::warn!(ino, error = %e, "background flush failed; data kept buffered");
        st.files.errors.insert(ino, e);
        return None;
    }
    let waited = st.files.flush_waiters.contains_key(&ino);
    if waited || !buffer_due(&st, ino, vol.limits()) {
        return None;
    }
    // A take-off only fails for an inode that is gone; its writes have nowhere to go.
    take_off(&mut st, ino, None).ok().flatten()
}

/// The writeback thread: runs jobs until the sender is dropped and none is left. A file's
/// next flight queues behind the jobs sent meanwhile, so a file written without pause does
/// not hold the thread while other files wait for theirs.
pub(crate) fn spawn_thread(
    vol: Arc<dyn Landing>,
) -> Result<(mpsc::Sender<Job>, JoinHandle<()>), FsError> {
    let (tx, rx) = mpsc::channel::<Job>();
    let h = std::thread::Builder::new()
        .name("fossa-writeback".into())
        .spawn(move || {
            let mut queue = VecDeque::new();
            loop {
                queue.extend(rx.try_iter());
                let job = match queue.pop_front() {
                    Some(job) => job,
                    None => match rx.recv() {
                        Ok(job) => job,
                        Err(_) => break,
                    },
                };
                queue.extend(fly(vol.as_ref(), job));
            }
        })?;
    Ok((tx, h))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streaming_buffers_flush_at_the_file_limit_scattered_ones_later() {
        let lim = (1 << 20, 8 << 20);
        let mut seq = WriteBuffer::new();
        for i in 0..16u64 {
            seq.write(i << 16, &[1; 1 << 16]);
        }
        assert_eq!(seq.extent_count(), 1);
        assert!(wants_flush(&seq, lim));
        let mut scattered = WriteBuffer::new();
        for i in 0..256u64 {
            scattered.write(i * 8192, &[1; 4096]);
        }
        assert_eq!(scattered.bytes(), 1 << 20);
        assert!(!wants_flush(&scattered, lim));
        for i in 256..1024u64 {
            scattered.write(i * 8192, &[1; 4096]);
        }
        assert!(wants_flush(&scattered, lim), "half the total limit");
    }
}
