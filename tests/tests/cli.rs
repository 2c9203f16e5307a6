//! The CLI contract of docs/cli.md: `status --json` mounted and not, `gc`, `umount` and `init`
//! errors.
//!
//! docs/cli.md names the status fields but not their JSON keys, so keys are found by the words
//! they must contain (`files`, `dirs`, `logical`, `stored` + `bytes`, `snapshot`), and the volume
//! id and mount point by value.

use std::process::Command;

use anyhow::{Context, Result, ensure};
use fossa_tests::{Output, Volume, assert_success, random_bytes, run};
use serde_json::Value;

/// Flattens `v` into `(dotted.key.path, leaf)` pairs.
fn leaves<'a>(prefix: String, v: &'a Value, out: &mut Vec<(String, &'a Value)>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                leaves(key, v, out);
            }
        }
        _ => out.push((prefix.to_lowercase(), v)),
    }
}

struct Status(Value);

impl Status {
    fn parse(out: &Output) -> Result<Self> {
        assert_success(out, "fossa status --json")?;
        let v = serde_json::from_str(&out.stdout)
            .with_context(|| format!("status --json is not JSON: {}", out.describe()))?;
        Ok(Self(v))
    }

    /// The number under top-level key `key` (docs/cli.md fixes the names).
    fn number(&self, key: &str) -> Result<u64> {
        self.0
            .get(key)
            .and_then(Value::as_u64)
            .with_context(|| format!("status --json has no numeric field {key:?}: {}", self.0))
    }

    /// Whether some string value equals `s`.
    fn has_string(&self, s: &str) -> bool {
        let mut all = Vec::new();
        leaves(String::new(), &self.0, &mut all);
        all.iter().any(|(_, v)| v.as_str() == Some(s))
    }
}

#[test]
fn status_json_mounted_and_not() -> Result<()> {
    let mut vol = Volume::new()?;
    vol.mount()?;
    std::fs::create_dir_all(vol.path("d1/d2"))?;
    let payload = [
        random_bytes(1, 100_000),
        random_bytes(2, 1),
        random_bytes(3, 2 << 20),
    ];
    for (i, bytes) in payload.iter().enumerate() {
        std::fs::write(vol.path(format!("d1/f{i}")), bytes)?;
    }
    let total: u64 = payload.iter().map(|b| b.len() as u64).sum();
    assert_success(&vol.fossa(&["snapshot", "snap"])?, "fossa snapshot")?;
    let mnt = vol.mnt().to_string_lossy().into_owned();

    let mounted = Status::parse(&vol.fossa(&["status", "--json"])?)?;
    // `init` prints the volume id (perhaps among other words); status must report the same.
    let id = vol
        .init_output()
        .split_whitespace()
        .find(|w| w.len() >= 8 && mounted.has_string(w))
        .with_context(|| {
            format!(
                "status --json has no volume id printed by init ({:?}): {}",
                vol.init_output(),
                mounted.0
            )
        })?
        .to_owned();
    ensure!(
        mounted.has_string(&mnt),
        "status --json lacks the mount point {mnt}: {}",
        mounted.0
    );
    check_counts(&mounted, total)?;
    let plain = vol.fossa(&["status"])?;
    assert_success(&plain, "fossa status")?;
    ensure!(
        plain.stdout.contains(&id),
        "fossa status does not show the volume id: {}",
        plain.describe()
    );

    vol.umount()?;
    let unmounted = Status::parse(&vol.fossa(&["status", "--json"])?)?;
    ensure!(
        unmounted.has_string(&id),
        "unmounted status lacks volume id {id}: {}",
        unmounted.0
    );
    ensure!(
        !unmounted.has_string(&mnt),
        "unmounted status still names a mount point: {}",
        unmounted.0
    );
    check_counts(&unmounted, total)?;
    for key in [
        "files",
        "dirs",
        "logical_bytes",
        "own_bytes",
        "own_blocks",
        "snapshots",
    ] {
        ensure!(
            mounted.number(key)? == unmounted.number(key)?,
            "{key:?} differs mounted ({}) and unmounted ({})",
            mounted.0,
            unmounted.0
        );
    }
    Ok(())
}

fn check_counts(s: &Status, total: u64) -> Result<()> {
    ensure!(s.number("files")? >= 3, "file count < 3: {}", s.0);
    ensure!(s.number("dirs")? >= 2, "dir count < 2: {}", s.0);
    ensure!(
        s.number("logical_bytes")? >= total,
        "logical bytes < {total}: {}",
        s.0
    );
    ensure!(s.number("own_blocks")? >= 1, "no stored blocks: {}", s.0);
    ensure!(
        s.number("own_bytes")? >= total / 2,
        "stored bytes too small: {}",
        s.0
    );
    ensure!(
        s.number("snapshots")? == 1,
        "snapshot count is not 1: {}",
        s.0
    );
    Ok(())
}

#[test]
fn gc_frees_deleted_data() -> Result<()> {
    let mut vol = Volume::new()?;
    vol.mount()?;
    std::fs::write(vol.path("keep"), random_bytes(10, 1 << 20))?;
    std::fs::write(vol.path("drop"), random_bytes(11, 8 << 20))?;
    assert_success(&run(&mut Command::new("sync"))?, "sync")?;
    let before = Status::parse(&vol.fossa(&["status", "--json"])?)?.number("own_bytes")?;
    std::fs::remove_file(vol.path("drop"))?;
    assert_success(&run(&mut Command::new("sync"))?, "sync")?;
    assert_success(&vol.fossa(&["gc"])?, "fossa gc (mounted)")?;
    let after = Status::parse(&vol.fossa(&["status", "--json"])?)?.number("own_bytes")?;
    ensure!(
        after + (4 << 20) <= before,
        "gc freed too little: stored bytes {before} -> {after}"
    );
    ensure!(
        std::fs::read(vol.path("keep"))? == random_bytes(10, 1 << 20),
        "gc damaged live data"
    );
    vol.umount()?;
    let out = vol.fossa(&["gc", "--json"])?;
    assert_success(&out, "fossa gc --json (unmounted)")?;
    serde_json::from_str::<Value>(&out.stdout)
        .with_context(|| format!("gc --json: {}", out.describe()))?;
    vol.mount()?;
    ensure!(
        std::fs::read(vol.path("keep"))? == random_bytes(10, 1 << 20),
        "live data lost after gc"
    );
    vol.umount()
}

#[test]
fn umount_of_a_non_fossa_dir_and_double_init_fail() -> Result<()> {
    let vol = Volume::new()?;
    let out = run(fossa_tests::fossa(&["--home"])?
        .arg(vol.home())
        .arg("umount")
        .arg(vol.mnt()))?;
    ensure!(
        out.code() == Some(1),
        "umount of a plain directory: want exit 1, {}",
        out.describe()
    );
    ensure!(
        out.stderr.lines().any(|l| l.starts_with("fossa: error:")),
        "no `fossa: error:` line: {}",
        out.describe()
    );
    let out = vol.fossa(&["init"])?;
    ensure!(
        out.code() == Some(1),
        "init over an existing volume: want exit 1, {}",
        out.describe()
    );
    ensure!(
        out.stderr.lines().any(|l| l.starts_with("fossa: error:")),
        "no `fossa: error:` line: {}",
        out.describe()
    );
    Ok(())
}
