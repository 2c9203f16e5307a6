//! `fossa snapshot [NAME]`, `fossa snapshot list`, `fossa snapshot rm NAME`.
use super::{Ctx, print_json, request};
use crate::control::Request;
use crate::control::api::Snapshot;
use crate::timefmt;
use anyhow::{Result, bail};
use std::time::SystemTime;

/// Takes a snapshot named `name` (default: the current UTC time) and prints its name.
pub(crate) fn create(ctx: &Ctx, name: Option<String>) -> Result<()> {
    let name = name.unwrap_or_else(|| timefmt::snapshot_name(SystemTime::now()));
    check_name(&name)?;
    let taken: Snapshot = request(ctx, &Request::snapshot(name))?;
    println!("{}", taken.name);
    Ok(())
}

/// Lists snapshots: `NAME  TIME` lines, or a JSON array of `{name, time}`.
pub(crate) fn list(ctx: &Ctx, json: bool) -> Result<()> {
    let list: Vec<Snapshot> = request(ctx, &Request::snapshot_list())?;
    if json {
        return print_json(&list);
    }
    for s in list {
        println!("{}  {}", s.name, s.time);
    }
    Ok(())
}

/// Forgets snapshot `name` (exit 1 if there is none).
pub(crate) fn remove(ctx: &Ctx, name: String) -> Result<()> {
    request(ctx, &Request::snapshot_rm(name))
}

/// A snapshot name becomes a directory name under `.snapshots/`.
fn check_name(name: &str) -> Result<()> {
    if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\0']) {
        bail!("{name:?} is not a valid snapshot name");
    }
    if name.len() > 255 {
        bail!("snapshot name too long");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_names_must_be_file_names() {
        assert!(check_name("2026-11-23T17-04-05Z").is_ok());
        for bad in ["", ".", "..", "a/b", "a\0"] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        assert!(check_name(&"x".repeat(256)).is_err());
    }
}
