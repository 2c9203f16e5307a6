//! Self-checks of the harness on the local filesystem (no fossa involved): the sample tree
//! survives `cp -a` and a tar round trip on a normal filesystem, so a difference seen on the
//! mount is fossa's; and the tree comparison notices what it claims to compare.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use anyhow::{Result, ensure};
use fossa_tests::tree::{self, Compare};
use fossa_tests::{assert_success, make_sample_tree, run, set_mtime};

const NO_XATTRS: Compare = Compare {
    xattrs: false,
    ..Compare::ALL
};

#[test]
fn sample_tree_survives_local_cp_and_tar() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let src = dir.path().join("src");
    std::fs::create_dir(&src)?;
    make_sample_tree(&src)?;
    let want = tree::scan(&src, false)?;
    ensure!(
        want.len() > 20,
        "sample tree has only {} entries",
        want.len()
    );

    let copy = dir.path().join("copy");
    assert_success(
        &run(Command::new("cp").arg("-a").arg(&src).arg(&copy))?,
        "cp -a",
    )?;
    tree::assert_same(&want, &tree::scan(&copy, false)?, NO_XATTRS, "local cp -a")?;

    let archive = dir.path().join("a.tar");
    let mut create = Command::new("tar");
    create
        .args(["--format=posix", "--sort=name", "-cf"])
        .arg(&archive)
        .arg("-C")
        .arg(&src)
        .arg(".");
    assert_success(&run(&mut create)?, "tar -c")?;
    let out = dir.path().join("out");
    std::fs::create_dir(&out)?;
    assert_success(
        &run(Command::new("tar")
            .arg("-xpf")
            .arg(&archive)
            .arg("-C")
            .arg(&out))?,
        "tar -x",
    )?;
    tree::assert_same(
        &want,
        &tree::scan(&out, false)?,
        NO_XATTRS,
        "local tar round trip",
    )
}

#[test]
fn tree_diff_notices_changes() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let src = dir.path().join("src");
    std::fs::create_dir(&src)?;
    make_sample_tree(&src)?;
    let want = tree::scan(&src, false)?;
    std::fs::set_permissions(src.join("readonly"), std::fs::Permissions::from_mode(0o400))?;
    set_mtime(&src.join("a/b"), 1, 2)?;
    std::fs::remove_file(src.join("hard2"))?;
    std::fs::write(src.join("empty"), b"x")?;
    let diff = tree::diff(&want, &tree::scan(&src, false)?, NO_XATTRS);
    for needle in [
        "readonly: mode",
        "a/b: mtime_ns",
        "hard2: missing",
        "a/file.txt: nlink",
        "empty: content",
    ] {
        ensure!(
            diff.iter().any(|d| d.starts_with(needle)),
            "diff misses `{needle}`: {diff:#?}"
        );
    }
    Ok(())
}
