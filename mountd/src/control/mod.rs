//! The daemon's control socket (`DATA/control.sock`, mode 0600): one JSON request per line,
//! one JSON response line each. The same [`handle`] serves a volume the CLI opened itself, so
//! a command behaves the same whether the volume is mounted or not.
mod devices;
mod redundancy;

pub(crate) use devices::{NOT_MOUNTED, member_rows};

use crate::sync::SyncDaemon;
use crate::timefmt;
use crate::volume::{IN_USE, Volume};
use anyhow::{Context, Result, anyhow};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Longest request line accepted; requests are tiny.
const MAX_LINE: u64 = 64 * 1024;

/// A request to the daemon.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub(crate) enum Request {
    /// Volume status ([`status`]).
    Status,
    /// Retain the current tree as a snapshot.
    Snapshot {
        /// Snapshot name.
        name: String,
    },
    /// List snapshots.
    SnapshotList,
    /// Forget a snapshot.
    SnapshotRm {
        /// Snapshot name.
        name: String,
    },
    /// Collect unreachable blocks.
    Gc,
    /// Make everything written so far durable.
    Sync,
    /// Make a one-time invitation (mounted only).
    Invite {
        /// Validity in seconds.
        expires_secs: u64,
        /// Addresses to put in the code instead of the listening address.
        #[serde(default)]
        addrs: Vec<String>,
        /// A storage-peer (keeper) invitation: no volume secret in the code.
        #[serde(default)]
        keeper: bool,
    },
    /// Show, or set, the redundancy level of a directory (absolute path in the mount).
    Redundancy {
        /// The directory.
        path: String,
        /// The level to set.
        #[serde(default)]
        level: Option<u8>,
    },
    /// Sync state of a path relative to the volume root (mounted only).
    PathStatus {
        /// The path, `/`-separated, relative to the root.
        path: String,
    },
    /// The member list.
    Devices,
    /// Revoke a device.
    DevicesRemove {
        /// Its display id or a unique prefix.
        id: String,
    },
}

/// What a mounted daemon adds to a request's context.
pub(crate) struct Served {
    /// Where the volume is mounted.
    pub(crate) mountpoint: PathBuf,
    /// The running sync node.
    pub(crate) sync: Arc<SyncDaemon>,
}

/// The answer to a [`Request`]: `{"ok":true,"result":…}` or `{"ok":false,"error":"…"}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Response {
    /// Whether the request succeeded.
    pub(crate) ok: bool,
    /// What went wrong (when `ok` is false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) error: Option<String>,
    /// The result (when `ok` is true).
    #[serde(default)]
    pub(crate) result: Value,
}

impl Response {
    /// The result, or the error as an `anyhow` error.
    pub(crate) fn into_result(self) -> Result<Value> {
        match self.ok {
            true => Ok(self.result),
            false => Err(anyhow!(
                self.error.unwrap_or_else(|| "request failed".into())
            )),
        }
    }
}

impl From<Result<Value>> for Response {
    fn from(r: Result<Value>) -> Self {
        match r {
            Ok(result) => Response {
                ok: true,
                error: None,
                result,
            },
            Err(e) => Response {
                ok: false,
                error: Some(format!("{e:#}")),
                result: Value::Null,
            },
        }
    }
}

/// Executes `req` on an open volume; `served` is the mounted daemon's context, if mounted.
pub(crate) fn handle(vol: &Volume, served: Option<&Served>, req: &Request) -> Response {
    run(vol, served, req).into()
}

fn run(vol: &Volume, served: Option<&Served>, req: &Request) -> Result<Value> {
    Ok(match req {
        Request::Status => status(vol, served)?,
        Request::Invite {
            expires_secs,
            addrs,
            keeper,
        } => devices::invite(vol, served, *expires_secs, addrs, *keeper)?,
        Request::Redundancy { path, level } => redundancy::level(vol, served, path, *level)?,
        Request::PathStatus { path } => devices::path_status(vol, served, path)?,
        Request::Devices => devices::list(vol, served),
        Request::DevicesRemove { id } => devices::remove(vol, id)?,
        Request::Snapshot { name } => snapshot_json(&vol.fs.snapshot(name)?),
        Request::SnapshotList => {
            Value::Array(vol.fs.snapshots()?.iter().map(snapshot_json).collect())
        }
        Request::SnapshotRm { name } => {
            vol.fs.remove_snapshot(name).map_err(|e| match e {
                fossa_fs::FsError::NotFound => anyhow!("no snapshot named {name}"),
                e => e.into(),
            })?;
            Value::Null
        }
        Request::Gc => {
            let r = vol.fs.gc()?;
            json!({
                "live_blocks": r.live_blocks,
                "blocks_removed": r.store.blocks_removed,
                "bytes_removed": r.store.bytes_removed,
                "bytes_reclaimed": r.store.bytes_reclaimed,
            })
        }
        Request::Sync => {
            vol.fs.sync()?;
            Value::Null
        }
    })
}

/// The `status --json` object.
pub(crate) fn status(vol: &Volume, served: Option<&Served>) -> Result<Value> {
    let s = vol.fs.stats()?;
    let st = vol.store.stats();
    let mountpoint = served.map(|s| s.mountpoint.as_path());
    Ok(json!({
        "volume_id": vol.config.volume_id,
        "mounted": mountpoint.is_some(),
        "mountpoint": mountpoint,
        "inodes": s.inodes,
        "files": s.files,
        "dirs": s.dirs,
        "logical_bytes": s.logical_bytes,
        "own_blocks": st.own_blocks,
        "own_bytes": st.own_bytes,
        "cached_blocks": st.cached_blocks,
        "cached_bytes": st.cached_bytes,
        "disk_bytes": st.disk_bytes,
        "snapshots": s.snapshots,
        "sync": devices::sync_status(vol, served)?,
        "redundancy": redundancy::status(vol, served)?,
    }))
}

fn snapshot_json(s: &fossa_fs::SnapshotInfo) -> Value {
    json!({ "name": s.name, "time": timefmt::rfc3339(s.time) })
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
        let resp = match serde_json::from_str::<Request>(&line) {
            Ok(req) => handle(vol, Some(served), &req),
            Err(e) => Result::<Value>::Err(anyhow!("bad request: {e}")).into(),
        };
        if write_line(&mut out, &resp).is_err() {
            return;
        }
    }
}

fn write_line<T: Serialize>(w: &mut impl Write, v: &T) -> io::Result<()> {
    let mut line = serde_json::to_vec(v)?;
    line.push(b'\n');
    w.write_all(&line)
}

/// Sends one request to the daemon listening on `path` and waits for its answer.
pub(crate) fn call(path: &Path, req: &Request) -> Result<Response> {
    let mut conn = UnixStream::connect(path).map_err(|_| anyhow!(IN_USE))?;
    // gc and snapshots of large trees take a while; a dead daemon must not hang us forever.
    conn.set_read_timeout(Some(Duration::from_secs(600)))?;
    write_line(&mut conn, req)?;
    let mut line = String::new();
    BufReader::new(conn.take(MAX_LINE)).read_line(&mut line)?;
    serde_json::from_str(&line).context("bad answer from the fossa daemon")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_encode_as_tagged_json() {
        let cases = [
            (Request::Status, r#"{"op":"status"}"#),
            (
                Request::Snapshot { name: "a".into() },
                r#"{"op":"snapshot","name":"a"}"#,
            ),
            (Request::SnapshotList, r#"{"op":"snapshot_list"}"#),
            (
                Request::SnapshotRm { name: "b".into() },
                r#"{"op":"snapshot_rm","name":"b"}"#,
            ),
            (Request::Gc, r#"{"op":"gc"}"#),
            (Request::Sync, r#"{"op":"sync"}"#),
            (Request::Devices, r#"{"op":"devices"}"#),
            (
                Request::DevicesRemove { id: "AB".into() },
                r#"{"op":"devices_remove","id":"AB"}"#,
            ),
            (
                Request::PathStatus { path: "a/b".into() },
                r#"{"op":"path_status","path":"a/b"}"#,
            ),
            (
                Request::Invite {
                    expires_secs: 60,
                    addrs: vec![],
                    keeper: true,
                },
                r#"{"op":"invite","expires_secs":60,"addrs":[],"keeper":true}"#,
            ),
        ];
        for (req, text) in cases {
            assert_eq!(serde_json::to_string(&req).unwrap(), text);
            assert_eq!(serde_json::from_str::<Request>(text).unwrap(), req);
        }
        assert!(serde_json::from_str::<Request>(r#"{"op":"format"}"#).is_err());
    }

    #[test]
    fn responses_round_trip() {
        let ok: Response = Ok(json!({"x": 1})).into();
        assert_eq!(
            serde_json::to_string(&ok).unwrap(),
            r#"{"ok":true,"result":{"x":1}}"#
        );
        let err: Response = Err(anyhow!("no snapshot named x")).into();
        let text = serde_json::to_string(&err).unwrap();
        assert_eq!(
            text,
            r#"{"ok":false,"error":"no snapshot named x","result":null}"#
        );
        let back: Response = serde_json::from_str(&text).unwrap();
        assert_eq!(
            back.into_result().unwrap_err().to_string(),
            "no snapshot named x"
        );
    }

    #[test]
    fn call_without_daemon_is_in_use() {
        let d = tempfile::tempdir().unwrap();
        let e = call(&d.path().join("control.sock"), &Request::Status).unwrap_err();
        assert_eq!(e.to_string(), IN_USE);
    }
}
