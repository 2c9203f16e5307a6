//! `fossa status [--json]`.
pub(crate) use super::devices::path_status;
use super::{Ctx, print_json, request};
use crate::control::Request;
use crate::control::api::{RedundancyStatus, Status, SyncStatus};
use anyhow::Result;

/// Prints the volume's status, asking the daemon if it is mounted.
pub(crate) fn status(ctx: &Ctx, json: bool) -> Result<()> {
    if let Some(k) = super::keeper::status(ctx)? {
        return print_json(&k);
    }
    if let Some(n) = super::node::status(ctx)? {
        if json {
            return print_json(&n);
        }
        print!("{}", node_human(&n));
        return Ok(());
    }
    let st: Status = request(ctx, &Request::status())?;
    if json {
        print_json(&st)?;
    } else {
        print!("{}", human(&st));
    }
    Ok(())
}

/// The human-readable form of a swarm node's status.
fn node_human(n: &crate::control::api::NodeStatus) -> String {
    format!(
        "swarm:       {}\nnode:        {}\nlisten:      {}\nrunning:     {}\n\
         contacts:    {}\nconnections: {}\nproviders:   {} stored, {} provided\n\
         lookups:     {} running\nrefused:     {} at admission, {} cut off\n",
        n.swarm,
        n.node,
        n.listen,
        if n.running { "yes" } else { "no" },
        n.contacts,
        n.connections,
        n.providers_stored,
        n.keys_provided,
        n.lookups_active,
        n.refused,
        n.protocol_errors,
    )
}

/// The human-readable form of the status object.
fn human(v: &Status) -> String {
    let mounted = match &v.mountpoint {
        Some(m) if v.mounted => format!("yes, at {}", m.display()),
        _ => "no".to_owned(),
    };
    format!(
        "volume:     {}\nmounted:    {}\ninodes:     {} ({} files, {} directories)\n\
         logical:    {} bytes\nstored:     {} blocks, {} bytes ({} bytes on disk)\n\
         snapshots:  {}\n{}{}",
        v.volume_id,
        mounted,
        v.inodes,
        v.files,
        v.dirs,
        v.logical_bytes,
        v.own_blocks,
        v.own_bytes,
        v.disk_bytes,
        v.snapshots,
        sync_lines(&v.sync),
        redundancy_lines(&v.redundancy),
    )
}

/// The redundancy part of the human status: one line per directory with a level set.
fn redundancy_lines(r: &RedundancyStatus) -> String {
    let mut out = String::new();
    for d in &r.dirs {
        let copies = d
            .copies_min
            .map_or("? (another device runs repair)".to_owned(), |c| {
                c.to_string()
            });
        out.push_str(&format!(
            "redundancy: /{}: level {}, {} blocks, min copies {}, {} under level{}\n",
            d.path,
            d.level,
            d.blocks,
            copies,
            d.blocks_under_level.unwrap_or(0),
            if r.repair_in_progress {
                ", repair in progress"
            } else {
                ""
            },
        ));
    }
    out
}

/// The sync part of the human status.
fn sync_lines(s: &SyncStatus) -> String {
    let listen = s
        .listen
        .as_ref()
        .map_or(String::new(), |l| format!(", listening on {l}"));
    format!(
        "device:     {} ({}){listen}\npeers:      {}\nsync:       local sequence {}, {} blocks missing, \
         {} bytes sent, {} received\n",
        s.device_id,
        s.device_name,
        if s.connected.is_empty() {
            "none connected".to_owned()
        } else {
            s.connected.join(", ")
        },
        s.local_seq,
        s.blocks_missing,
        s.bytes_sent,
        s.bytes_received,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::api::LevelDir;

    #[test]
    fn human_status_names_the_mountpoint() {
        let mut v = Status {
            volume_id: "ab".into(),
            mounted: true,
            mountpoint: Some("/m".into()),
            inodes: 3,
            files: 1,
            dirs: 2,
            logical_bytes: 5,
            own_blocks: 1,
            own_bytes: 9,
            cached_blocks: 0,
            cached_bytes: 0,
            disk_bytes: 10,
            snapshots: 0,
            sync: SyncStatus {
                device_id: "AAA".into(),
                device_name: "lap".into(),
                connected: vec!["BBB".into()],
                local_seq: 4,
                blocks_missing: 2,
                bytes_sent: 1,
                bytes_received: 3,
                ..SyncStatus::default()
            },
            redundancy: RedundancyStatus::default(),
        };
        let h = human(&v);
        assert!(h.contains("yes, at /m"), "{h}");
        assert!(h.contains("3 (1 files, 2 directories)"), "{h}");
        assert!(h.contains("device:     AAA (lap)\n"), "{h}");
        assert!(h.contains("peers:      BBB\n"), "{h}");
        assert!(h.contains("2 blocks missing"), "{h}");
        assert!(!h.contains("redundancy:"), "{h}");
        v.redundancy.dirs.push(LevelDir {
            path: "docs".into(),
            level: 2,
            blocks: 5,
            copies_min: None,
            blocks_under_level: None,
        });
        let h = human(&v);
        assert!(
            h.contains("redundancy: /docs: level 2, 5 blocks, min copies ? (another device"),
            "{h}"
        );
    }
}
