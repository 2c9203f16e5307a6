//! The control protocol's types (docs/control.md) and every `--json` shape the CLI prints
//! (docs/cli.md): the daemon serializes these, the CLI deserializes and prints the same
//! structs, so the two cannot drift apart. Field names are part of the CLI contract: renaming
//! one breaks users' scripts and takes a new [`VERSION`].
use anyhow::anyhow;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::marker::PhantomData;
use std::path::PathBuf;

/// The control protocol version every request and answer carries.
pub(crate) const VERSION: u32 = 1;

/// A request to the daemon.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub(crate) enum Request {
    /// Volume status: [`Status`].
    Status,
    /// Retain the current tree as a snapshot: [`Snapshot`].
    Snapshot {
        /// Snapshot name.
        name: String,
    },
    /// List snapshots: `Vec<`[`Snapshot`]`>`.
    SnapshotList,
    /// Forget a snapshot: `()`.
    SnapshotRm {
        /// Snapshot name.
        name: String,
    },
    /// Collect unreachable blocks: [`Gc`].
    Gc,
    /// Make everything written so far durable: `()`.
    Sync,
    /// Make a one-time invitation (mounted only): [`Invitation`].
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
    /// Show, or set, the redundancy level of a directory (absolute path in the mount):
    /// [`Redundancy`].
    Redundancy {
        /// The directory.
        path: String,
        /// The level to set.
        #[serde(default)]
        level: Option<u8>,
    },
    /// Sync state of a path (absolute, inside the mount; mounted only): [`PathStatus`].
    PathStatus {
        /// The path.
        path: String,
    },
    /// The member list: `Vec<`[`Device`]`>`.
    Devices,
    /// Revoke a device: `()`.
    DevicesRemove {
        /// Its display id or a unique prefix.
        id: String,
    },
}

/// A request paired with the type of its result: the CLI reads an answer only as the type
/// its request names ([`Request::status`] and its siblings are the only way to make one).
#[derive(Clone, Debug)]
pub(crate) struct Call<T> {
    /// The request sent.
    pub(crate) request: Request,
    result: PhantomData<fn() -> T>,
}

impl<T> Call<T> {
    fn new(request: Request) -> Self {
        Call {
            request,
            result: PhantomData,
        }
    }
}

impl Request {
    /// [`Request::Status`].
    pub(crate) fn status() -> Call<Status> {
        Call::new(Request::Status)
    }

    /// [`Request::Snapshot`].
    pub(crate) fn snapshot(name: String) -> Call<Snapshot> {
        Call::new(Request::Snapshot { name })
    }

    /// [`Request::SnapshotList`].
    pub(crate) fn snapshot_list() -> Call<Vec<Snapshot>> {
        Call::new(Request::SnapshotList)
    }

    /// [`Request::SnapshotRm`].
    pub(crate) fn snapshot_rm(name: String) -> Call<()> {
        Call::new(Request::SnapshotRm { name })
    }

    /// [`Request::Gc`].
    pub(crate) fn gc() -> Call<Gc> {
        Call::new(Request::Gc)
    }

    /// [`Request::Sync`].
    pub(crate) fn sync() -> Call<()> {
        Call::new(Request::Sync)
    }

    /// [`Request::Invite`].
    pub(crate) fn invite(expires_secs: u64, addrs: Vec<String>, keeper: bool) -> Call<Invitation> {
        Call::new(Request::Invite {
            expires_secs,
            addrs,
            keeper,
        })
    }

    /// [`Request::Redundancy`].
    pub(crate) fn redundancy(path: String, level: Option<u8>) -> Call<Redundancy> {
        Call::new(Request::Redundancy { path, level })
    }

    /// [`Request::PathStatus`].
    pub(crate) fn path_status(path: String) -> Call<PathStatus> {
        Call::new(Request::PathStatus { path })
    }

    /// [`Request::Devices`].
    pub(crate) fn devices() -> Call<Vec<Device>> {
        Call::new(Request::Devices)
    }

    /// [`Request::DevicesRemove`].
    pub(crate) fn devices_remove(id: String) -> Call<()> {
        Call::new(Request::DevicesRemove { id })
    }
}

/// A request as sent on the socket: the protocol version, then the request's fields.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct RequestLine {
    /// [`VERSION`] of the sender.
    pub(crate) version: u32,
    /// The request.
    #[serde(flatten)]
    pub(crate) request: Request,
}

impl RequestLine {
    /// `request` at this binary's [`VERSION`].
    pub(crate) fn new(request: Request) -> Self {
        RequestLine {
            version: VERSION,
            request,
        }
    }
}

/// What is read of a line before anything else: its version (0 when missing).
#[derive(Debug, Deserialize)]
pub(crate) struct Header {
    /// The sender's version.
    #[serde(default)]
    pub(crate) version: u32,
}

/// A version mismatch between the CLI and the daemon (docs/control.md, "Version").
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum VersionError {
    /// The daemon got a request of another version.
    #[error(
        "control protocol version {client} is not supported: this fossa daemon speaks version \
         {VERSION}; restart the daemon with this fossa binary (fossa umount DIR, then fossa mount DIR)"
    )]
    Request {
        /// The request's version.
        client: u32,
    },
    /// The CLI got an answer of another version.
    #[error(
        "the fossa daemon speaks control protocol version {daemon}, this fossa speaks version \
         {VERSION}; restart the daemon with this fossa binary (fossa umount DIR, then fossa mount DIR)"
    )]
    Answer {
        /// The answer's version.
        daemon: u32,
    },
}

/// The answer to a request: `{"version","ok","result"}` or `{"version","ok":false,"error"}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Response {
    /// [`VERSION`] of the daemon (0 when missing: an older daemon).
    #[serde(default)]
    pub(crate) version: u32,
    /// Whether the request succeeded.
    pub(crate) ok: bool,
    /// What went wrong (when `ok` is false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) error: Option<String>,
    /// The request's result type, serialized (when `ok` is true).
    #[serde(default)]
    pub(crate) result: Value,
}

impl Response {
    /// A success carrying `result`.
    pub(crate) fn ok(result: &impl Serialize) -> Self {
        match serde_json::to_value(result) {
            Ok(result) => Response {
                version: VERSION,
                ok: true,
                error: None,
                result,
            },
            Err(e) => Self::error(&anyhow!("cannot encode the answer: {e}")),
        }
    }

    /// A failure saying `e`.
    pub(crate) fn error(e: &anyhow::Error) -> Self {
        Response {
            version: VERSION,
            ok: false,
            error: Some(format!("{e:#}")),
            result: Value::Null,
        }
    }

    /// The result as the request's result type `T`, or the error (a version mismatch first).
    pub(crate) fn into_result<T: DeserializeOwned>(self) -> anyhow::Result<T> {
        if self.version != VERSION {
            return Err(VersionError::Answer {
                daemon: self.version,
            }
            .into());
        }
        if !self.ok {
            return Err(anyhow!(
                self.error.unwrap_or_else(|| "request failed".into())
            ));
        }
        serde_json::from_value(self.result)
            .map_err(|e| anyhow!("bad answer from the fossa daemon: {e}"))
    }
}

/// `status --json`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Status {
    /// The volume id, hex.
    pub(crate) volume_id: String,
    /// Whether a daemon has it mounted.
    pub(crate) mounted: bool,
    /// Where (null when not mounted).
    pub(crate) mountpoint: Option<PathBuf>,
    /// Inodes in the tree.
    pub(crate) inodes: u64,
    /// Regular files.
    pub(crate) files: u64,
    /// Directories.
    pub(crate) dirs: u64,
    /// Sum of file sizes.
    pub(crate) logical_bytes: u64,
    /// Blocks of class Own.
    pub(crate) own_blocks: u64,
    /// Bytes of class Own.
    pub(crate) own_bytes: u64,
    /// Blocks of class Cached.
    pub(crate) cached_blocks: u64,
    /// Bytes of class Cached.
    pub(crate) cached_bytes: u64,
    /// Bytes the data files take on disk.
    pub(crate) disk_bytes: u64,
    /// Snapshots retained.
    pub(crate) snapshots: u64,
    /// The sync part.
    pub(crate) sync: SyncStatus,
    /// The redundancy part.
    pub(crate) redundancy: RedundancyStatus,
}

/// The `sync` object of [`Status`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SyncStatus {
    /// This device's display id.
    pub(crate) device_id: String,
    /// This device's name.
    pub(crate) device_name: String,
    /// The listening address (null when not mounted).
    pub(crate) listen: Option<String>,
    /// Display ids of the connected devices.
    pub(crate) connected: Vec<String>,
    /// The local sync sequence number.
    pub(crate) local_seq: u64,
    /// Blocks the tree reaches that are not here (capped).
    pub(crate) blocks_missing: u64,
    /// Wire totals since the daemon started.
    pub(crate) bytes_sent: u64,
    /// Wire totals since the daemon started.
    pub(crate) bytes_received: u64,
    /// Connections made since the daemon started.
    pub(crate) connections: u64,
}

/// The `redundancy` object of [`Status`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct RedundancyStatus {
    /// The device running the repair loop (null before the first round).
    pub(crate) runner: Option<String>,
    /// Whether that is this device.
    pub(crate) this_device_runs_repair: bool,
    /// Repair rounds run.
    pub(crate) rounds: u64,
    /// Blocks below their level in the last plan.
    pub(crate) below_level: u64,
    /// Blocks at level only thanks to holders within the grace period.
    pub(crate) waiting: u64,
    /// Blocks below level with no live holder.
    pub(crate) unavailable: u64,
    /// Blocks with no counted copy.
    pub(crate) lost: u64,
    /// The last plan had copies to make.
    pub(crate) repair_in_progress: bool,
    /// Totals since the daemon started.
    pub(crate) copied: u64,
    /// Totals since the daemon started.
    pub(crate) bytes_copied: u64,
    /// Totals since the daemon started.
    pub(crate) dropped: u64,
    /// Totals since the daemon started.
    pub(crate) audits_passed: u64,
    /// Totals since the daemon started.
    pub(crate) audits_failed: u64,
    /// Totals since the daemon started.
    pub(crate) errors: u64,
    /// Own copies re-hashed by the local audit.
    pub(crate) local_checked: u64,
    /// Own copies found corrupt (by the audit or by reads).
    pub(crate) local_corrupt: u64,
    /// Corrupt copies replaced by a verified copy from a peer.
    pub(crate) local_healed: u64,
    /// Blocks the holder table lists per device id.
    pub(crate) blocks_per_node: BTreeMap<String, u64>,
    /// One entry per directory with a level set.
    pub(crate) dirs: Vec<LevelDir>,
}

/// A directory with a redundancy level, in [`RedundancyStatus`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct LevelDir {
    /// Relative to the root ("" for the root).
    pub(crate) path: String,
    /// The level set there.
    pub(crate) level: u8,
    /// The blocks that setting governs.
    pub(crate) blocks: u64,
    /// Fewest live, trusted copies over those blocks (null unless this device runs repair).
    pub(crate) copies_min: Option<u64>,
    /// Blocks below the level (null unless this device runs repair).
    pub(crate) blocks_under_level: Option<u64>,
}

/// `snapshot` (the one taken) and each entry of `snapshot list --json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Snapshot {
    /// Its name.
    pub(crate) name: String,
    /// When it was taken, RFC 3339 UTC.
    pub(crate) time: String,
}

/// `gc --json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Gc {
    /// Blocks still reachable.
    pub(crate) live_blocks: u64,
    /// Blocks deleted.
    pub(crate) blocks_removed: u64,
    /// Bytes of blocks deleted.
    pub(crate) bytes_removed: u64,
    /// Disk space returned by compaction.
    pub(crate) bytes_reclaimed: u64,
}

/// The answer to `invite`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Invitation {
    /// The code to give the new device or keeper.
    pub(crate) code: String,
}

/// `redundancy --json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Redundancy {
    /// The directory, relative to the root.
    pub(crate) path: String,
    /// The level in effect.
    pub(crate) level: u8,
    /// The level set on the directory itself, if any.
    pub(crate) set_here: Option<u8>,
    /// The directory whose setting applies (null: the default).
    pub(crate) set_at: Option<String>,
}

/// `status PATH --json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PathStatus {
    /// The path, relative to the root.
    pub(crate) path: String,
    /// All blocks are here.
    pub(crate) local: bool,
    /// Local changes not yet scanned into the index.
    pub(crate) pending: bool,
    /// The version vector: (short device id, counter).
    pub(crate) version: Vec<(u64, u64)>,
    /// The device that made this version.
    pub(crate) author: String,
}

/// One entry of `devices --json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Device {
    /// Display id.
    pub(crate) id: String,
    /// Its name.
    pub(crate) name: String,
    /// Revoked for good.
    pub(crate) revoked: bool,
    /// Connected now (mounted only).
    pub(crate) connected: bool,
    /// Last known addresses, `IP:PORT`.
    pub(crate) addrs: Vec<String>,
    /// Whether it is this device.
    pub(crate) this_device: bool,
}

/// `fsck --json` (computed by the CLI itself: fsck needs the volume unmounted).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Fsck {
    /// No problem found.
    pub(crate) clean: bool,
    /// Inodes checked.
    pub(crate) inodes_checked: u64,
    /// Blocks the tree reaches, checked.
    pub(crate) blocks_checked: u64,
    /// Blocks of the store checked.
    pub(crate) store_blocks_checked: u64,
    /// Index entries rebuilt.
    pub(crate) repaired: u64,
    /// What `--repair` rebuilt or recovered.
    pub(crate) recovered: Vec<String>,
    /// The problems found.
    pub(crate) problems: Vec<String>,
}

/// `DATA/keeper-status.json`, printed by `status` on a keeper's home.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct KeeperStatus {
    /// Always true: tells a keeper's status from a volume's.
    pub(crate) keeper: bool,
    /// Whether the keeper is running (false: no status file yet).
    pub(crate) running: bool,
    /// The live figures (absent when not running).
    #[serde(flatten, default, skip_serializing_if = "Option::is_none")]
    pub(crate) live: Option<KeeperLive>,
}

/// The figures of a running keeper.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct KeeperLive {
    /// Its device id.
    pub(crate) device_id: String,
    /// The listening address.
    pub(crate) listen: String,
    /// Display ids of the connected devices.
    pub(crate) connected: Vec<String>,
    /// Blocks held.
    pub(crate) blocks: u64,
    /// Bytes held.
    pub(crate) bytes: u64,
    /// Most bytes held.
    pub(crate) quota: u64,
    /// Wire totals since it started.
    pub(crate) bytes_sent: u64,
    /// Wire totals since it started.
    pub(crate) bytes_received: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_encode_as_versioned_tagged_json() {
        let cases = [
            (Request::Status, r#"{"version":1,"op":"status"}"#),
            (
                Request::Snapshot { name: "a".into() },
                r#"{"version":1,"op":"snapshot","name":"a"}"#,
            ),
            (
                Request::SnapshotList,
                r#"{"version":1,"op":"snapshot_list"}"#,
            ),
            (
                Request::SnapshotRm { name: "b".into() },
                r#"{"version":1,"op":"snapshot_rm","name":"b"}"#,
            ),
            (Request::Gc, r#"{"version":1,"op":"gc"}"#),
            (Request::Sync, r#"{"version":1,"op":"sync"}"#),
            (Request::Devices, r#"{"version":1,"op":"devices"}"#),
            (
                Request::DevicesRemove { id: "AB".into() },
                r#"{"version":1,"op":"devices_remove","id":"AB"}"#,
            ),
            (
                Request::PathStatus {
                    path: "/m/a".into(),
                },
                r#"{"version":1,"op":"path_status","path":"/m/a"}"#,
            ),
            (
                Request::Redundancy {
                    path: "/m/d".into(),
                    level: None,
                },
                r#"{"version":1,"op":"redundancy","path":"/m/d","level":null}"#,
            ),
            (
                Request::Invite {
                    expires_secs: 60,
                    addrs: vec![],
                    keeper: true,
                },
                r#"{"version":1,"op":"invite","expires_secs":60,"addrs":[],"keeper":true}"#,
            ),
        ];
        for (req, text) in cases {
            let line = RequestLine::new(req);
            assert_eq!(serde_json::to_string(&line).unwrap(), text);
            assert_eq!(serde_json::from_str::<RequestLine>(text).unwrap(), line);
        }
        let unknown = r#"{"version":1,"op":"format"}"#;
        assert!(serde_json::from_str::<RequestLine>(unknown).is_err());
    }

    /// The keys of a JSON object, sorted.
    fn keys(v: &Value) -> Vec<String> {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    }

    fn sorted(names: &[&str]) -> Vec<String> {
        let mut k: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        k.sort();
        k
    }

    #[test]
    fn status_serializes_to_the_documented_fields() {
        let dir = LevelDir {
            path: "docs".into(),
            level: 2,
            blocks: 3,
            copies_min: None,
            blocks_under_level: Some(1),
        };
        let st = Status {
            volume_id: "ab".into(),
            mounted: false,
            mountpoint: None,
            inodes: 1,
            files: 0,
            dirs: 1,
            logical_bytes: 0,
            own_blocks: 0,
            own_bytes: 0,
            cached_blocks: 0,
            cached_bytes: 0,
            disk_bytes: 0,
            snapshots: 0,
            sync: SyncStatus::default(),
            redundancy: RedundancyStatus {
                dirs: vec![dir],
                ..RedundancyStatus::default()
            },
        };
        let v = serde_json::to_value(&st).unwrap();
        // docs/cli.md, `status --json`.
        let top = [
            "volume_id",
            "mounted",
            "mountpoint",
            "inodes",
            "files",
            "dirs",
            "logical_bytes",
            "own_blocks",
            "own_bytes",
            "cached_blocks",
            "cached_bytes",
            "disk_bytes",
            "snapshots",
            "sync",
            "redundancy",
        ];
        assert_eq!(keys(&v), sorted(&top));
        assert_eq!(v.get("mountpoint"), Some(&Value::Null));
        let sync = [
            "device_id",
            "device_name",
            "listen",
            "connected",
            "local_seq",
            "blocks_missing",
            "bytes_sent",
            "bytes_received",
            "connections",
        ];
        assert_eq!(keys(&v["sync"]), sorted(&sync));
        let red = [
            "runner",
            "this_device_runs_repair",
            "rounds",
            "below_level",
            "waiting",
            "unavailable",
            "lost",
            "repair_in_progress",
            "copied",
            "bytes_copied",
            "dropped",
            "audits_passed",
            "audits_failed",
            "errors",
            "local_checked",
            "local_corrupt",
            "local_healed",
            "blocks_per_node",
            "dirs",
        ];
        assert_eq!(keys(&v["redundancy"]), sorted(&red));
        let dir = [
            "path",
            "level",
            "blocks",
            "copies_min",
            "blocks_under_level",
        ];
        assert_eq!(keys(&v["redundancy"]["dirs"][0]), sorted(&dir));
        assert_eq!(v["redundancy"]["dirs"][0]["copies_min"], Value::Null);
        assert_eq!(serde_json::from_value::<Status>(v).unwrap(), st);
    }

    #[test]
    fn fsck_and_keeper_status_serialize_to_the_documented_fields() {
        let f = Fsck {
            clean: true,
            inodes_checked: 1,
            blocks_checked: 2,
            store_blocks_checked: 3,
            repaired: 0,
            recovered: vec!["x".into()],
            problems: vec![],
        };
        let v = serde_json::to_value(&f).unwrap();
        let want = [
            "clean",
            "inodes_checked",
            "blocks_checked",
            "store_blocks_checked",
            "repaired",
            "recovered",
            "problems",
        ];
        assert_eq!(keys(&v), sorted(&want));
        let idle = KeeperStatus {
            keeper: true,
            running: false,
            live: None,
        };
        let text = serde_json::to_string(&idle).unwrap();
        assert_eq!(text, r#"{"keeper":true,"running":false}"#);
        assert_eq!(serde_json::from_str::<KeeperStatus>(&text).unwrap(), idle);
        let live = r#"{"keeper":true,"running":true,"device_id":"D","listen":"127.0.0.1:1",
            "connected":["E"],"blocks":1,"bytes":2,"quota":3,"bytes_sent":4,"bytes_received":5}"#;
        let k: KeeperStatus = serde_json::from_str(live).unwrap();
        assert_eq!(k.live.as_ref().map(|l| l.quota), Some(3));
        let back = serde_json::to_value(&k).unwrap();
        assert_eq!(back, serde_json::from_str::<Value>(live).unwrap());
    }

    #[test]
    fn answers_carry_the_version_and_check_it() {
        let ok = Response::ok(&Invitation { code: "C".into() });
        let text = serde_json::to_string(&ok).unwrap();
        assert_eq!(text, r#"{"version":1,"ok":true,"result":{"code":"C"}}"#);
        let back: Response = serde_json::from_str(&text).unwrap();
        assert_eq!(back.into_result::<Invitation>().unwrap().code, "C");
        let err = Response::error(&anyhow!("no snapshot named x"));
        let text = serde_json::to_string(&err).unwrap();
        assert_eq!(
            text,
            r#"{"version":1,"ok":false,"error":"no snapshot named x","result":null}"#
        );
        let e = err.into_result::<()>().unwrap_err().to_string();
        assert_eq!(e, "no snapshot named x");
        // An answer from a daemon of another version, or one that predates versions.
        for (line, daemon) in [
            (r#"{"ok":true,"result":null}"#, 0),
            (r#"{"version":2,"ok":true,"result":null}"#, 2),
        ] {
            let r: Response = serde_json::from_str(line).unwrap();
            let e = r.into_result::<()>().unwrap_err().to_string();
            assert_eq!(
                e,
                format!(
                    "the fossa daemon speaks control protocol version {daemon}, this fossa \
                     speaks version 1; restart the daemon with this fossa binary (fossa umount \
                     DIR, then fossa mount DIR)"
                )
            );
        }
    }
}

/// `DATA/node-status.json`, printed by `status` on a swarm node's home (docs/cli.md).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct NodeStatus {
    /// The swarm id (display form).
    pub(crate) swarm: String,
    /// This node's id (display form).
    pub(crate) node: String,
    /// The listening address.
    pub(crate) listen: String,
    /// Whether the node is running (its status is fresh).
    pub(crate) running: bool,
    /// Contacts in the routing table.
    pub(crate) contacts: usize,
    /// Open connections.
    pub(crate) connections: usize,
    /// Provider records stored for others.
    pub(crate) providers_stored: usize,
    /// Keys this node announces.
    pub(crate) keys_provided: usize,
    /// Lookups running.
    pub(crate) lookups_active: usize,
    /// Connections refused at admission since start.
    pub(crate) refused: u64,
    /// Peers cut off for protocol errors since start.
    pub(crate) protocol_errors: u64,
    /// When the node wrote this (Unix seconds).
    pub(crate) updated_unix: u64,
}

impl NodeStatus {
    /// The file a running node writes.
    pub(crate) fn of(
        swarm: &fossa_net::swarm::SwarmId,
        st: &fossa_net::swarm::SwarmStatus,
        now: u64,
    ) -> Self {
        NodeStatus {
            swarm: swarm.to_string(),
            node: fossa_net::DeviceId(st.node.0).to_string(),
            listen: st.listen.to_string(),
            running: true,
            contacts: st.dht.contacts,
            connections: st.connections,
            providers_stored: st.dht.providers_stored,
            keys_provided: st.dht.keys_provided,
            lookups_active: st.dht.lookups_active,
            refused: st.refused,
            protocol_errors: st.protocol_errors,
            updated_unix: now,
        }
    }
}
