//! Real programs on a real mount: git, cargo, tar, an editor's atomic save, `cp -a`, rsync.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{Result, bail, ensure};
use fossa_tests::tree::{self, Compare};
use fossa_tests::{
    Output, Volume, assert_success, make_sample_tree, require_tool, run, run_timeout,
};

/// Deadline for heavier programs (a git gc, a cargo build) on the mount.
const SLOW: Duration = Duration::from_secs(300);

fn git(dir: &Path, args: &[&str]) -> Result<Output> {
    let mut cmd = Command::new("git");
    cmd.current_dir(dir)
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "fossa e2e")
        .env("GIT_AUTHOR_EMAIL", "e2e@fossa.invalid")
        .env("GIT_COMMITTER_NAME", "fossa e2e")
        .env("GIT_COMMITTER_EMAIL", "e2e@fossa.invalid");
    let out = run_timeout(&mut cmd, SLOW)?;
    assert_success(&out, &format!("git {}", args.join(" ")))?;
    Ok(out)
}

/// A small repository with a few commits: text, a binary, a rename, a deletion, a subdirectory.
fn make_repo(dir: &Path) -> Result<()> {
    std::fs::create_dir(dir)?;
    git(dir, &["init", "-q", "-b", "main"])?;
    std::fs::write(dir.join("README"), "first\n")?;
    std::fs::write(dir.join("gone.txt"), "to be deleted\n")?;
    git(dir, &["add", "-A"])?;
    git(dir, &["commit", "-q", "-m", "one"])?;
    std::fs::create_dir(dir.join("src"))?;
    std::fs::write(
        dir.join("src/blob.bin"),
        fossa_tests::random_bytes(42, 300_000),
    )?;
    std::fs::write(dir.join("README"), "first\nsecond\n")?;
    git(dir, &["add", "-A"])?;
    git(dir, &["commit", "-q", "-m", "two"])?;
    git(dir, &["mv", "README", "README.md"])?;
    git(dir, &["rm", "-q", "gone.txt"])?;
    git(dir, &["commit", "-q", "-m", "three"])?;
    Ok(())
}

#[test]
fn git_clone_status_gc_fsck() -> Result<()> {
    require_tool("git")?;
    let mut vol = Volume::new()?;
    let origin = vol.root().join("origin");
    make_repo(&origin)?;
    vol.mount()?;
    let url = format!("file://{}", origin.display());
    git(&vol.mnt(), &["clone", "-q", &url, "clone"])?;
    let clone = vol.path("clone");
    let status = git(&clone, &["status", "--porcelain"])?;
    ensure!(
        status.stdout.trim().is_empty(),
        "fresh clone is not clean:\n{}",
        status.stdout
    );
    let log = git(&clone, &["log", "--oneline"])?;
    ensure!(
        log.stdout.lines().count() == 3,
        "expected 3 commits:\n{}",
        log.stdout
    );
    std::fs::write(clone.join("README.md"), "changed in the mount\n")?;
    git(&clone, &["commit", "-q", "-am", "four"])?;
    git(&clone, &["gc", "-q", "--prune=now"])?;
    let fsck = git(&clone, &["fsck", "--full", "--strict"])?;
    let text = format!("{}{}", fsck.stdout, fsck.stderr).to_lowercase();
    for bad in ["error", "missing", "broken", "corrupt", "dangling"] {
        ensure!(!text.contains(bad), "git fsck reports `{bad}`:\n{text}");
    }
    let status = git(&clone, &["status", "--porcelain"])?;
    ensure!(
        status.stdout.trim().is_empty(),
        "clone not clean after gc:\n{}",
        status.stdout
    );
    vol.umount()
}

#[test]
fn cargo_build_offline() -> Result<()> {
    require_tool("cargo")?;
    let mut vol = Volume::new()?;
    vol.mount()?;
    let krate = vol.path("hello");
    std::fs::create_dir_all(krate.join("src"))?;
    std::fs::write(
        krate.join("Cargo.toml"),
        "[package]\nname = \"hello\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[workspace]\n",
    )?;
    std::fs::write(
        krate.join("src/util.rs"),
        "pub fn answer() -> u32 { 6 * 7 }\n",
    )?;
    std::fs::write(
        krate.join("src/main.rs"),
        "mod util;\nfn main() { println!(\"hello from fossa {}\", util::answer()); }\n",
    )?;
    let target = krate.join("target");
    let mut cmd = Command::new("cargo");
    cmd.current_dir(&krate)
        .args(["build", "--offline"])
        .env("CARGO_TARGET_DIR", &target)
        .env_remove("CARGO_BUILD_TARGET_DIR")
        .env_remove("RUSTC_WRAPPER");
    assert_success(
        &run_timeout(&mut cmd, SLOW)?,
        "cargo build --offline in the mount",
    )?;
    let out = run(&mut Command::new(target.join("debug/hello")))?;
    assert_success(&out, "the built binary")?;
    ensure!(
        out.stdout.trim() == "hello from fossa 42",
        "binary printed {:?}",
        out.stdout
    );
    vol.umount()
}

#[test]
fn tar_roundtrip_is_identical() -> Result<()> {
    require_tool("tar")?;
    let mut vol = Volume::new()?;
    let src = vol.root().join("src");
    std::fs::create_dir(&src)?;
    make_sample_tree(&src)?;
    let orig_tar = vol.root().join("orig.tar");
    let back_tar = vol.root().join("back.tar");
    tar_create(&src, &orig_tar)?;
    vol.mount()?;
    let x = vol.path("x");
    std::fs::create_dir(&x)?;
    tar_extract(&orig_tar, &x)?;
    tree::assert_same(
        &tree::scan(&src, false)?,
        &tree::scan(&x, false)?,
        NO_XATTRS,
        "tar -x into the mount",
    )?;
    tar_create(&x, &back_tar)?;
    let listing = |t: &Path| -> Result<String> {
        let out = run(Command::new("tar")
            .args(["--full-time", "--numeric-owner", "-tvf"])
            .arg(t))?;
        assert_success(&out, "tar -tvf")?;
        Ok(out.stdout)
    };
    let (a, b) = (listing(&orig_tar)?, listing(&back_tar)?);
    ensure!(
        a == b,
        "tar listings differ:\n--- original ---\n{a}\n--- from the mount ---\n{b}"
    );
    let back = vol.root().join("back");
    std::fs::create_dir(&back)?;
    tar_extract(&back_tar, &back)?;
    tree::assert_same(
        &tree::scan(&src, false)?,
        &tree::scan(&back, false)?,
        NO_XATTRS,
        "tar -c of the mount",
    )?;
    vol.umount()
}

const NO_XATTRS: Compare = Compare {
    xattrs: false,
    ..Compare::ALL
};

/// `tar -c` of everything under `dir` (as `./...`, sorted, POSIX format with ns mtimes).
fn tar_create(dir: &Path, archive: &Path) -> Result<()> {
    let mut cmd = Command::new("tar");
    cmd.args(["--format=posix", "--sort=name", "-cf"])
        .arg(archive)
        .arg("-C")
        .arg(dir)
        .arg(".");
    assert_success(&run(&mut cmd)?, "tar -c")
}

/// `tar -x` (keeping modes and owners) of `archive` into `dir`.
fn tar_extract(archive: &Path, dir: &Path) -> Result<()> {
    let mut cmd = Command::new("tar");
    cmd.arg("-xpf").arg(archive).arg("-C").arg(dir);
    assert_success(&run(&mut cmd)?, "tar -x")
}

#[test]
fn editor_atomic_save() -> Result<()> {
    let mut vol = Volume::new()?;
    vol.mount()?;
    let f = vol.path("notes.txt");
    let tmp = vol.path("notes.txt.tmp");
    fossa_tests::write_synced(&f, b"old content\n")?;
    let old_ino = std::fs::metadata(&f)?.ino();
    let reader = std::fs::File::open(&f)?;
    fossa_tests::write_synced(&tmp, b"new content, longer than before\n")?;
    std::fs::rename(&tmp, &f)?;
    std::fs::File::open(vol.mnt())?.sync_all()?;
    ensure!(
        std::fs::read(&f)? == b"new content, longer than before\n",
        "new content not there"
    );
    ensure!(
        !tmp.exists(),
        "{} still exists after the rename",
        tmp.display()
    );
    ensure!(
        std::fs::metadata(&f)?.ino() != old_ino,
        "inode unchanged by rename over the file"
    );
    let mut old = String::new();
    std::io::Read::read_to_string(&mut &reader, &mut old)?;
    ensure!(
        old == "old content\n",
        "an fd opened before the rename reads {old:?}"
    );
    drop(reader);
    let names: Vec<_> = std::fs::read_dir(vol.mnt())?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<Result<_, _>>()?;
    ensure!(
        names == vec![std::ffi::OsString::from("notes.txt")],
        "directory holds {names:?}"
    );
    vol.umount()?;
    vol.mount()?;
    ensure!(
        std::fs::read(&f)? == b"new content, longer than before\n",
        "new content lost on remount"
    );
    vol.umount()
}

#[test]
fn cp_a_preserves_everything() -> Result<()> {
    let mut vol = Volume::new()?;
    let src = vol.root().join("src");
    std::fs::create_dir(&src)?;
    make_sample_tree(&src)?;
    vol.mount()?;
    let dst = vol.path("copy");
    assert_success(
        &run(Command::new("cp").arg("-a").arg(&src).arg(&dst))?,
        "cp -a",
    )?;
    let want = tree::scan(&src, false)?;
    tree::assert_same(
        &want,
        &tree::scan(&dst, false)?,
        NO_XATTRS,
        "cp -a into the mount",
    )?;
    vol.umount()?;
    vol.mount()?;
    tree::assert_same(
        &want,
        &tree::scan(&dst, false)?,
        NO_XATTRS,
        "cp -a copy after remount",
    )?;
    vol.umount()
}

#[test]
fn rsync_then_nothing_to_do() -> Result<()> {
    require_tool("rsync")?;
    let mut vol = Volume::new()?;
    let src = vol.root().join("src");
    std::fs::create_dir(&src)?;
    make_sample_tree(&src)?;
    vol.mount()?;
    let from = format!("{}/", src.display());
    let to = format!("{}/", vol.path("r").display());
    assert_success(
        &run(Command::new("rsync").args(["-a", &from, &to]))?,
        "rsync -a",
    )?;
    let out =
        run(Command::new("rsync").args(["-a", "--dry-run", "--itemize-changes", &from, &to]))?;
    assert_success(&out, "rsync --dry-run")?;
    if !out.stdout.trim().is_empty() {
        bail!("second rsync still has work to do:\n{}", out.stdout);
    }
    // rsync -a does not keep hard links (that needs -H).
    let cmp = Compare {
        links: false,
        ..NO_XATTRS
    };
    tree::assert_same(
        &tree::scan(&src, false)?,
        &tree::scan(&vol.path("r"), false)?,
        cmp,
        "rsync -a",
    )?;
    vol.umount()
}
