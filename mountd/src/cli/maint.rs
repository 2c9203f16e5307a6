//! `fossa fsck`, `fossa gc` and `fossa sync`.
use super::{Ctx, open_local, open_repairing, print_json, request, require_volume};
use crate::control::Request;
use crate::control::api::{self, Fsck};
use crate::volume::VolumeLock;
use anyhow::Result;
use std::process::ExitCode;

/// `fossa fsck [--repair] [--json]`: exit 0 clean, 1 problems found (errors exit 2 in main).
pub(crate) fn fsck(ctx: &Ctx, repair: bool, json: bool) -> Result<ExitCode> {
    require_volume(ctx)?;
    // Checking a mounted volume would race with its writers.
    let lock = VolumeLock::acquire(&ctx.paths)?;
    let (vol, recovered) = match repair {
        true => open_repairing(ctx, lock)?,
        false => (open_local(ctx, lock)?, Vec::new()),
    };
    for line in recovered.iter().filter(|_| !json) {
        println!("recovered: {line}");
    }
    let r = vol.fs.fsck(repair)?;
    let mut problems = r.problems.clone();
    problems.extend(
        r.store
            .corrupt
            .iter()
            .map(|id| format!("block {id} is corrupt")),
    );
    problems.extend(
        r.store
            .dangling
            .iter()
            .map(|id| format!("block {id}: dangling index entry")),
    );
    let clean = problems.is_empty();
    if json {
        print_json(&Fsck {
            clean,
            inodes_checked: r.inodes,
            blocks_checked: r.blocks,
            store_blocks_checked: r.store.blocks_checked,
            repaired: r.store.repaired,
            recovered,
            problems,
        })?;
    } else {
        for p in &problems {
            println!("problem: {p}");
        }
        let verdict = if clean { "clean" } else { "PROBLEMS FOUND" };
        println!(
            "{verdict}: {} inodes, {} blocks checked",
            r.inodes, r.blocks
        );
    }
    vol.fs.sync()?;
    Ok(if clean {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// `fossa gc [--json]`: through the daemon when mounted.
pub(crate) fn gc(ctx: &Ctx, json: bool) -> Result<()> {
    let g: api::Gc = request(ctx, &Request::gc())?;
    if json {
        print_json(&g)?;
    } else {
        println!(
            "removed {} blocks ({} bytes), reclaimed {} bytes; {} blocks live",
            g.blocks_removed, g.bytes_removed, g.bytes_reclaimed, g.live_blocks
        );
    }
    Ok(())
}

/// `fossa sync`: a durable commit of everything written so far, through the daemon when
/// mounted (unmounted, the volume is already durable and this only checks it opens).
pub(crate) fn sync(ctx: &Ctx) -> Result<()> {
    request(ctx, &Request::sync())
}
