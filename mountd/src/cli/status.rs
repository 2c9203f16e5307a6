//! `fossa status [--json]`.
pub(crate) use super::devices::path_status;
use super::{Ctx, request};
use crate::control::Request;
use anyhow::Result;
use serde_json::Value;

/// Prints the volume's status, asking the daemon if it is mounted.
pub(crate) fn status(ctx: &Ctx, json: bool) -> Result<()> {
    if let Some(v) = super::keeper::status(ctx)? {
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    let v = request(ctx, &Request::Status)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        print!("{}", human(&v));
    }
    Ok(())
}

/// The human-readable form of the status object.
fn human(v: &Value) -> String {
    let n = |k: &str| v[k].as_u64().unwrap_or(0);
    let mounted = match v["mountpoint"].as_str() {
        Some(m) if v["mounted"] == Value::Bool(true) => format!("yes, at {m}"),
        _ => "no".to_owned(),
    };
    format!(
        "volume:     {}\nmounted:    {}\ninodes:     {} ({} files, {} directories)\n\
         logical:    {} bytes\nstored:     {} blocks, {} bytes ({} bytes on disk)\n\
         snapshots:  {}\n{}{}",
        v["volume_id"].as_str().unwrap_or("?"),
        mounted,
        n("inodes"),
        n("files"),
        n("dirs"),
        n("logical_bytes"),
        n("own_blocks"),
        n("own_bytes"),
        n("disk_bytes"),
        n("snapshots"),
        sync_lines(&v["sync"]),
        redundancy_lines(&v["redundancy"]),
    )
}

/// The redundancy part of the human status: one line per directory with a level set.
fn redundancy_lines(r: &Value) -> String {
    let mut out = String::new();
    for d in r["dirs"].as_array().into_iter().flatten() {
        let copies = d["copies_min"]
            .as_u64()
            .map_or("? (another device runs repair)".to_owned(), |c| {
                c.to_string()
            });
        out.push_str(&format!(
            "redundancy: /{}: level {}, {} blocks, min copies {}, {} under level{}\n",
            d["path"].as_str().unwrap_or("?"),
            d["level"],
            d["blocks"],
            copies,
            d["blocks_under_level"].as_u64().unwrap_or(0),
            if r["repair_in_progress"] == Value::Bool(true) {
                ", repair in progress"
            } else {
                ""
            },
        ));
    }
    out
}

/// The sync part of the human status.
fn sync_lines(s: &Value) -> String {
    if s.is_null() {
        return String::new();
    }
    let n = |k: &str| s[k].as_u64().unwrap_or(0);
    let peers: Vec<&str> = s["connected"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let listen = s["listen"]
        .as_str()
        .map_or(String::new(), |l| format!(", listening on {l}"));
    format!(
        "device:     {} ({}){listen}\npeers:      {}\nsync:       local sequence {}, {} blocks missing, \
         {} bytes sent, {} received\n",
        s["device_id"].as_str().unwrap_or("?"),
        s["device_name"].as_str().unwrap_or("?"),
        if peers.is_empty() {
            "none connected".to_owned()
        } else {
            peers.join(", ")
        },
        n("local_seq"),
        n("blocks_missing"),
        n("bytes_sent"),
        n("bytes_received"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_status_names_the_mountpoint() {
        let v = serde_json::json!({
            "volume_id": "ab", "mounted": true, "mountpoint": "/m", "inodes": 3,
            "files": 1, "dirs": 2, "logical_bytes": 5, "own_blocks": 1, "own_bytes": 9,
            "disk_bytes": 10, "snapshots": 0
        });
        let h = human(&v);
        assert!(h.contains("yes, at /m"), "{h}");
        assert!(h.contains("3 (1 files, 2 directories)"), "{h}");
        assert!(!h.contains("device:"), "{h}");
        let mut v = v;
        v["sync"] = serde_json::json!({
            "device_id": "AAA", "device_name": "lap", "listen": null, "connected": ["BBB"],
            "local_seq": 4, "blocks_missing": 2, "bytes_sent": 1, "bytes_received": 3
        });
        let h = human(&v);
        assert!(h.contains("device:     AAA (lap)\n"), "{h}");
        assert!(h.contains("peers:      BBB\n"), "{h}");
        assert!(h.contains("2 blocks missing"), "{h}");
    }
}
