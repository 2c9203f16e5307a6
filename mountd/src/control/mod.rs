//! The daemon's control socket (`DATA/control.sock`, mode 0600; docs/control.md): one
//! versioned JSON request per line, one JSON answer line each, typed by [`api`]. The same
//! [`handle`] serves a volume the CLI opened itself, so a command behaves the same whether the
//! volume is mounted or not.
pub(crate) mod api;
mod devices;
mod redundancy;
mod served;

pub(crate) use api::{Call, Request, Response};
pub(crate) use devices::member_rows;
pub(crate) use served::{NOT_MOUNTED, Served};

use crate::timefmt;
use crate::volume::{IN_USE, Volume};
use anyhow::{Context, Result, anyhow};
use api::{Header, RequestLine, VERSION, VersionError};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Longest request line accepted; requests are tiny.
const MAX_LINE: u64 = 64 * 1024;

/// Executes `req` on an open volume; `served` is the mounted daemon's context, if mounted.
pub(crate) fn handle(vol: &Volume, served: Option<&Served>, req: &Request) -> Response {
    run(vol, served, req).unwrap_or_else(|e| Response::error(&e))
}

fn run(vol: &Volume, served: Option<&Served>, req: &Request) -> Result<Response> {
    Ok(match req {
        Request::Status => Response::ok(&status(vol, served)?),
        Request::Invite {
            expires_secs,
            addrs,
            keeper,
        } => Response::ok(&devices::invite(
            vol,
            served,
            *expires_secs,
            addrs,
            *keeper,
        )?),
        Request::Redundancy { path, level } => {
            Response::ok(&redundancy::level(vol, served, path, *level)?)
        }
        Request::PathStatus { path } => Response::ok(&devices::path_status(vol, served, path)?),
        Request::Devices => Response::ok(&devices::list(vol, served)),
        Request::DevicesRemove { id } => Response::ok(&devices::remove(vol, id)?),
        Request::Snapshot { name } => Response::ok(&snapshot(&vol.fs.snapshot(name)?)),
        Request::SnapshotList => {
            let list: Vec<api::Snapshot> = vol.fs.snapshots()?.iter().map(snapshot).collect();
            Response::ok(&list)
        }
        Request::SnapshotRm { name } => {
            vol.fs.remove_snapshot(name).map_err(|e| match e {
                fossa_fs::FsError::NotFound => anyhow!("no snapshot named {name}"),
                e => e.into(),
            })?;
            Response::ok(&())
        }
        Request::Gc => Response::ok(&gc(vol)?),
        Request::Sync => {
            vol.fs.sync()?;
            Response::ok(&())
        }
    })
}

/// The `status --json` object.
pub(crate) fn status(vol: &Volume, served: Option<&Served>) -> Result<api::Status> {
    let s = vol.fs.stats()?;
    let st = vol.store.stats();
    let mountpoint = served.map(|s| s.mountpoint.clone());
    Ok(api::Status {
        volume_id: vol.config.volume_id.clone(),
        mounted: mountpoint.is_some(),
        mountpoint,
        inodes: s.inodes,
        files: s.files,
        dirs: s.dirs,
        logical_bytes: s.logical_bytes,
        own_blocks: st.own_blocks,
        own_bytes: st.own_bytes,
        cached_blocks: st.cached_blocks,
        cached_bytes: st.cached_bytes,
        disk_bytes: st.disk_bytes,
        snapshots: s.snapshots,
        sync: devices::sync_status(vol, served)?,
        redundancy: redundancy::status(vol, served)?,
    })
}

fn gc(vol: &Volume) -> Result<api::Gc> {
    let r = vol.fs.gc()?;
    Ok(api::Gc {
        live_blocks: r.live_blocks,
        blocks_removed: r.store.blocks_removed,
        bytes_removed: r.store.bytes_removed,
        bytes_reclaimed: r.store.bytes_reclaimed,
    })
}

fn snapshot(s: &fossa_fs::SnapshotInfo) -> api::Snapshot {
    api::Snapshot {
        name: s.name.clone(),
        time: timefmt::rfc3339(s.time),
    }
}

/// Serves requests on `path` in background threads, one per connection, until the process
/// exits. Any stale socket file is replaced: the caller holds the volume lock.
pub(crate) fn serve(path: &Path, vol: Arc<Volume>, served: Arc<Served>) -> Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => {
            return Err(e).with_context(|| format!("{}", path.display()));
        }
        _ => {}
    }
    let listener = UnixListener::bind(path).with_context(|| format!("{}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    std::thread::Builder::new()
        .name("control".into())
        .spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let (vol, served) = (vol.clone(), served.clone());
                let spawned = std::thread::Builder::new()
                    .name("control-conn".into())
                    .spawn(move || serve_conn(conn, &vol, &served));
                if let Err(e) = spawned {
                    tracing::warn!("control socket: cannot start a thread: {e}");
                }
            }
        })?;
    Ok(())
}

fn serve_conn(conn: UnixStream, vol: &Volume, served: &Served) {
    let Ok(mut out) = conn.try_clone() else {
        return;
    };
    let mut lines = BufReader::new(conn.take(MAX_LINE)).lines();
    while let Some(Ok(line)) = lines.next() {
        let resp = match parse_line(&line) {
            Ok(req) => handle(vol, Some(served), &req),
            Err(e) => Response::error(&e),
        };
        if write_line(&mut out, &resp).is_err() {
            return;
        }
    }
}

/// A request line, its version checked before its op (docs/control.md, "Version").
fn parse_line(line: &str) -> Result<Request> {
    let header: Header = serde_json::from_str(line).map_err(|e| anyhow!("bad request: {e}"))?;
    if header.version != VERSION {
        return Err(VersionError::Request {
            client: header.version,
        }
        .into());
    }
    let line: RequestLine = serde_json::from_str(line).map_err(|e| anyhow!("bad request: {e}"))?;
    Ok(line.request)
}

fn write_line<T: Serialize>(w: &mut impl Write, v: &T) -> io::Result<()> {
    let mut line = serde_json::to_vec(v)?;
    line.push(b'\n');
    w.write_all(&line)
}

/// Sends one request to the daemon listening on `path` and returns its result, read as the
/// request's result type `T`.
pub(crate) fn call<T: DeserializeOwned>(path: &Path, call: &Call<T>) -> Result<T> {
    let req = &call.request;
    let mut conn = UnixStream::connect(path).map_err(|_| anyhow!(IN_USE))?;
    // gc and snapshots of large trees take a while; a dead daemon must not hang us forever.
    conn.set_read_timeout(Some(Duration::from_secs(600)))?;
    write_line(&mut conn, &RequestLine::new(req.clone()))?;
    let mut line = String::new();
    BufReader::new(conn.take(MAX_LINE)).read_line(&mut line)?;
    let resp: Response = serde_json::from_str(&line).context("bad answer from the fossa daemon")?;
    resp.into_result()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_lines_of_another_version_are_refused() {
        let ok = parse_line(r#"{"version":1,"op":"gc"}"#).unwrap();
        assert_eq!(ok, Request::Gc);
        for (line, client) in [
            (r#"{"op":"status"}"#, 0),
            (r#"{"version":2,"op":"status"}"#, 2),
            (r#"{"version":2,"op":"a_newer_op"}"#, 2),
        ] {
            let e = parse_line(line).unwrap_err().to_string();
            assert_eq!(
                e,
                format!(
                    "control protocol version {client} is not supported: this fossa daemon \
                     speaks version 1; restart the daemon with this fossa binary (fossa umount \
                     DIR, then fossa mount DIR)"
                )
            );
        }
        let e = parse_line(r#"{"version":1,"op":"format"}"#).unwrap_err();
        assert!(e.to_string().starts_with("bad request: "), "{e}");
    }

    #[test]
    fn a_version_mismatch_reaches_the_caller_over_the_socket() {
        let d = tempfile::tempdir().unwrap();
        let sock = d.path().join("control.sock");
        let listener = UnixListener::bind(&sock).unwrap();
        // A daemon from before versions: answers without a version field.
        let old = std::thread::spawn(move || {
            let (conn, _) = listener.accept().unwrap();
            let mut out = conn.try_clone().unwrap();
            let mut line = String::new();
            BufReader::new(conn).read_line(&mut line).unwrap();
            out.write_all(b"{\"ok\":true,\"result\":null}\n").unwrap();
            line
        });
        let e = call(&sock, &Request::sync()).unwrap_err();
        assert_eq!(
            e.to_string(),
            VersionError::Answer { daemon: 0 }.to_string()
        );
        assert_eq!(old.join().unwrap(), "{\"version\":1,\"op\":\"sync\"}\n");
    }

    #[test]
    fn call_without_daemon_is_in_use() {
        let d = tempfile::tempdir().unwrap();
        let e = call(&d.path().join("control.sock"), &Request::status()).unwrap_err();
        assert_eq!(e.to_string(), IN_USE);
    }
}
