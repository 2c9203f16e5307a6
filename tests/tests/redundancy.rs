//! Redundancy levels end to end (docs/redundancy.md): one device and `fossa keeper` storage
//! peers on 127.0.0.x, short repair period, grace and audit interval through the daemon's
//! environment knobs. Every wait is bounded; fixtures kill their processes on drop.

use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use fossa_tests::{Device, Keeper, random_bytes, run, wait_until, write_synced};
use serde_json::Value;

const KNOBS: [(&str, &str); 4] = [
    ("FOSSA_REPAIR_PERIOD_MS", "300"),
    ("FOSSA_REPAIR_GRACE_MS", "2000"),
    ("FOSSA_AUDIT_INTERVAL_MS", "500"),
    ("FOSSA_FETCH_TIMEOUT_MS", "3000"),
];
const REPAIR_TIMEOUT: Duration = Duration::from_secs(60);
const SENTENCE: &str = "The quick brown fossa naps in the baobab at noon.";

fn addr(host: u8, port: u16) -> String {
    format!("127.0.0.{host}:{port}")
}

/// The `redundancy.dirs` entry for `path` in the device's status.
fn dir_status(dev: &Device, path: &str) -> Result<Value> {
    let v = dev.status()?;
    v["redundancy"]["dirs"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|d| d["path"] == path)
        .cloned()
        .with_context(|| format!("no redundancy entry for {path}: {v}"))
}

fn wait_level(dev: &Device, path: &str, level: u64, what: &str) -> Result<Duration> {
    let start = Instant::now();
    wait_until(REPAIR_TIMEOUT, what, || {
        let d = dir_status(dev, path)?;
        Ok(d["copies_min"].as_u64().is_some_and(|c| c >= level) && d["blocks_under_level"] == 0)
    })
    .with_context(|| dev.vol.log_tail_lines(40))?;
    Ok(start.elapsed())
}

fn keeper_code(dev: &Device) -> Result<String> {
    let out = dev.fossa(&["invite", "--keeper", "--expires", "10m"])?;
    ensure!(out.success(), "invite --keeper: {}", out.describe());
    let code = out.stdout.trim().to_owned();
    ensure!(code.starts_with("FOSSAK2-"), "not a keeper code: {code}");
    Ok(code)
}

fn setfattr(args: &[&str]) -> Result<fossa_tests::Output> {
    run(Command::new("setfattr").args(args))
}

fn no_plaintext(keepers: &[&Keeper], needles: &[&str]) -> Result<()> {
    for k in keepers {
        for f in k.files() {
            if f.file_name().is_some_and(|n| n == "keeper.log") {
                continue;
            }
            let bytes = std::fs::read(&f)?;
            for n in needles {
                let hit = bytes.windows(n.len()).any(|w| w == n.as_bytes());
                ensure!(!hit, "{} contains {n:?}", f.display());
            }
        }
    }
    Ok(())
}

fn flip_data_files(k: &Keeper) -> Result<usize> {
    let mut n = 0;
    for f in k.files() {
        let s = f.to_string_lossy();
        if !s.contains("/data/blocks/") || f.metadata()?.len() < 4096 {
            continue;
        }
        let mut b = std::fs::read(&f)?;
        for i in (1024..b.len()).step_by(512) {
            b[i] ^= 0x5a;
        }
        std::fs::write(&f, b)?;
        n += 1;
    }
    Ok(n)
}

#[test]
fn levels_place_repair_replace_and_drop_copies_on_keepers() -> Result<()> {
    let pa = addr(1, 24101);
    let mut a = Device::init("alpha", &pa)?;
    for (k, v) in KNOBS {
        a.vol.set_env(k, v);
    }
    a.mount()?;
    let docs = a.path("docs");
    std::fs::create_dir(&docs)?;
    let docs_s = docs.to_str().context("utf-8")?;

    // The xattr and the verb agree; a bad value is EINVAL.
    let bad = setfattr(&["-n", "user.fossa.redundancy", "-v", "0", docs_s])?;
    ensure!(
        !bad.success() && bad.stderr.contains("Invalid argument"),
        "{}",
        bad.describe()
    );
    let out = setfattr(&["-n", "user.fossa.redundancy", "-v", "2", docs_s])?;
    ensure!(out.success(), "{}", out.describe());
    let out = a.fossa(&["redundancy", docs_s, "--json"])?;
    let v: Value = serde_json::from_str(&out.stdout).with_context(|| out.describe())?;
    ensure!(v["level"] == 2 && v["set_at"] == "docs", "{v}");
    let out = a.fossa(&["redundancy", docs_s, "3"])?;
    ensure!(
        out.success() && out.stdout.contains("level 3"),
        "{}",
        out.describe()
    );
    let out = run(Command::new("getfattr").args(["-n", "user.fossa.redundancy", docs_s]))?;
    ensure!(out.stdout.contains("\"3\""), "{}", out.describe());
    let out = a.fossa(&["redundancy", a.path("").to_str().context("utf-8")?])?;
    ensure!(
        out.stdout.contains("level 1 (default)"),
        "{}",
        out.describe()
    );

    let mut files = Vec::new();
    for i in 0..4u64 {
        let name = format!("secret-report-{i}.txt");
        let mut data = SENTENCE.repeat(50).into_bytes();
        data.extend(random_bytes(i, 150_000));
        write_synced(&docs.join(&name), &data)?;
        files.push((name, data));
    }

    let mut keepers = Vec::new();
    for i in 0..4u8 {
        keepers.push(Keeper::join(
            &keeper_code(&a)?,
            "1G",
            &addr(10 + i, 24110),
            &[],
        )?);
    }
    // 1: level 3 reached; keepers hold ciphertext only.
    let t = wait_level(&a, "docs", 3, "level 3 on docs with 4 keepers")?;
    eprintln!("level 3 placed in {t:?}");
    let blocks = dir_status(&a, "docs")?["blocks"].as_u64().unwrap_or(0);
    ensure!(blocks > 0, "no blocks under docs");
    // Keepers rewrite their status file every 2 s.
    wait_until(
        REPAIR_TIMEOUT,
        "keepers to report 2 copies per block",
        || {
            let held: u64 = keepers.iter().map(Keeper::blocks).sum::<Result<u64>>()?;
            Ok(held >= 2 * blocks)
        },
    )?;
    let mut needles: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    needles.push(SENTENCE);
    needles.push("docs");
    no_plaintext(&keepers.iter().collect::<Vec<_>>(), &needles)?;

    // 2: two keepers die with their disks; files still read, the level comes back.
    let gone = [keepers[0].id()?, keepers[1].id()?];
    keepers[0].kill_and_wipe()?;
    keepers[1].kill_and_wipe()?;
    for (n, d) in &files {
        ensure!(std::fs::read(docs.join(n))? == *d, "{n} differs");
    }
    // Copies on the dead keepers count until their sessions time out, then for the grace.
    wait_until(
        REPAIR_TIMEOUT,
        "the device to see both keepers gone",
        || {
            let v = a.status()?;
            let live = v["sync"]["connected"].to_string();
            Ok(gone.iter().all(|g| !live.contains(g.as_str())))
        },
    )?;
    let t = wait_level(&a, "docs", 3, "level 3 again after losing 2 keepers")?;
    eprintln!("level 3 restored {t:?} after killing 2 of 5 nodes");

    // 3: a keeper whose disk rots fails audits and is replaced by a new one.
    keepers.push(Keeper::join(
        &keeper_code(&a)?,
        "1G",
        &addr(20, 24120),
        &[],
    )?);
    let flipped = flip_data_files(&keepers[2])?;
    ensure!(flipped > 0, "no data file to corrupt");
    wait_until(
        REPAIR_TIMEOUT,
        "audits of the corrupt keeper to fail",
        || {
            let r = a.status()?["redundancy"].clone();
            Ok(r["audits_failed"].as_u64().unwrap_or(0) > 0)
        },
    )
    .with_context(|| a.vol.log_tail_lines(40))?;
    let t = wait_level(&a, "docs", 3, "level 3 without the corrupt keeper")?;
    eprintln!("corrupt keeper replaced in {t:?}");
    wait_until(REPAIR_TIMEOUT, "the new keeper to take copies", || {
        Ok(keepers[4].blocks()? > 0)
    })?;

    // 4: lowering the level lets surplus copies go; raising places them again.
    let before: u64 = [&keepers[3], &keepers[4]]
        .iter()
        .map(|k| k.blocks())
        .sum::<Result<u64>>()?;
    a.fossa(&["redundancy", docs_s, "1"])?;
    wait_until(REPAIR_TIMEOUT, "surplus copies to be dropped", || {
        let now: u64 = [&keepers[3], &keepers[4]]
            .iter()
            .map(|k| k.blocks())
            .sum::<Result<u64>>()?;
        Ok(now < before)
    })
    .with_context(|| a.vol.log_tail_lines(40))?;
    a.fossa(&["redundancy", docs_s, "2"])?;
    wait_level(&a, "docs", 2, "level 2 after raising")?;

    // A keeper with a tiny quota refuses; placement goes elsewhere.
    let tiny = Keeper::join(&keeper_code(&a)?, "1K", &addr(21, 24121), &[])?;
    a.fossa(&["redundancy", docs_s, "3"])?;
    wait_level(&a, "docs", 3, "level 3 despite a full keeper")?;
    ensure!(tiny.blocks()? == 0, "the tiny keeper took blocks");
    drop(tiny);

    // A keeper restarted without a code resumes with what it held.
    let held = keepers[3].blocks()?;
    keepers[3].kill();
    std::fs::remove_file(keepers[3].home.join("data/keeper-status.json"))?;
    keepers[3].start(None, "1G", &[])?;
    // (The status file is up to 2 s old, so only "still holds some" is exact.)
    ensure!(
        held == 0 || keepers[3].blocks()? > 0,
        "the restarted keeper lost its blocks"
    );
    let id = keepers[3].id()?;
    wait_until(REPAIR_TIMEOUT, "the restarted keeper to reconnect", || {
        Ok(a.status()?["sync"]["connected"].to_string().contains(&id))
    })?;
    wait_level(&a, "docs", 3, "level 3 with the restarted keeper")?;
    Ok(())
}

#[test]
fn a_device_reads_from_keepers_when_the_other_device_is_gone() -> Result<()> {
    let (pa, pb) = (addr(1, 24201), addr(2, 24202));
    let mut a = Device::init("alpha", &pa)?;
    let mut b = Device::fresh("beta", &pb)?;
    for (k, v) in KNOBS {
        a.vol.set_env(k, v);
        b.vol.set_env(k, v);
    }
    // B fetches nothing in the background: every block it reads comes on demand.
    b.vol.set_env("FOSSA_SYNC_NO_PULL", "1");
    a.add_peer(&pb);
    a.mount()?;
    b.join(&a.invite()?, &pa)?;
    // B stays away while the level is reached, so that the copies go to A and the keepers
    // (the planner may pick any device or keeper) and B really has to read from them.
    b.stop()?;
    let docs = a.path("docs");
    std::fs::create_dir(&docs)?;
    let out = a.fossa(&["redundancy", docs.to_str().context("utf-8")?, "3"])?;
    ensure!(out.success(), "{}", out.describe());
    let data = random_bytes(7, 300_000);
    write_synced(&docs.join("only-on-a.bin"), &data)?;
    let k1 = Keeper::join(&keeper_code(&a)?, "1G", &addr(30, 24210), &[])?;
    let k2 = Keeper::join(&keeper_code(&a)?, "1G", &addr(31, 24211), &[])?;
    b.add_peer(&k1.listen);
    b.add_peer(&k2.listen);
    wait_level(&a, "docs", 3, "level 3 on docs with 2 keepers")?;
    b.mount()?;
    wait_until(REPAIR_TIMEOUT, "B to connect to both keepers", || {
        let c = b.status()?["sync"]["connected"].to_string();
        Ok(c.contains(&k1.id()?) && c.contains(&k2.id()?))
    })?;
    ensure!(
        b.sync_stat("blocks_missing")? > 0,
        "B already holds the file's blocks"
    );
    a.stop()?;
    b.wait_content("docs/only-on-a.bin", &data)?;
    ensure!(
        b.sync_stat("blocks_missing")? == 0,
        "B read the file but lacks blocks"
    );
    Ok(())
}

/// The 20-node swarm of `bench/swarm.sh` (1 device + 19 keepers on 127.0.0.x): level 3 with
/// 30% of the nodes SIGKILLed at once (data directories deleted), then level 4 with 50% killed.
/// The script fails unless every file reads back identical after each kill and every block is
/// on enough live nodes again within its bounded waits; its table (repair time, bytes copied)
/// is printed.
#[test]
fn swarm_of_twenty_survives_losing_30_then_50_percent() -> Result<()> {
    fossa_tests::require_tool("jq")?;
    fossa_tests::require_tool("bc")?;
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench/swarm.sh");
    let mut cmd = Command::new("bash");
    cmd.arg(script)
        .arg("--fossa-bin")
        .arg(fossa_tests::fossa_bin()?);
    let out = fossa_tests::run_timeout(&mut cmd, Duration::from_secs(600))?;
    fossa_tests::assert_success(&out, "bench/swarm.sh")?;
    eprintln!("{}", out.stdout);
    ensure!(
        out.stdout.contains("| 50% killed |"),
        "no table: {}",
        out.describe()
    );
    Ok(())
}
