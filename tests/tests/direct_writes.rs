//! Files open for writing are direct I/O by default (`FOPEN_DIRECT_IO`): written bytes do not
//! pass through the kernel's page cache. These tests check that the mode is really in effect
//! (and off with `--cached-writes`), and that nothing a program can observe changes: readers
//! holding cached pages, shared mappings and `O_APPEND` see every write at once, and the data
//! survives a remount.
#![allow(unsafe_code)] // mmap, mincore, msync: std has no safe wrapper for them.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;

use anyhow::{Result, bail, ensure};
use fossa_tests::{Volume, hash_hex, random_bytes};

const LEN: usize = 1 << 20;
const PAGE: usize = 4096;

/// A shared mapping of the first `len` bytes of a file.
struct Mapping {
    ptr: *mut libc::c_void,
    len: usize,
}

impl Mapping {
    fn new(f: &File, len: usize, writable: bool) -> Result<Self> {
        let prot = libc::PROT_READ | if writable { libc::PROT_WRITE } else { 0 };
        // SAFETY: a fresh mapping of an open file; the kernel picks the address.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                prot,
                libc::MAP_SHARED,
                f.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            bail!("mmap: {}", std::io::Error::last_os_error());
        }
        Ok(Mapping { ptr, len })
    }

    fn bytes(&self) -> &[u8] {
        // SAFETY: `ptr..ptr + len` is mapped readable for the life of `self`.
        unsafe { std::slice::from_raw_parts(self.ptr.cast::<u8>(), self.len) }
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: as `bytes`; mappings made writable only are written through this.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.cast::<u8>(), self.len) }
    }

    fn sync(&self) -> Result<()> {
        // SAFETY: msync of exactly this mapping.
        if unsafe { libc::msync(self.ptr, self.len, libc::MS_SYNC) } != 0 {
            bail!("msync: {}", std::io::Error::last_os_error());
        }
        Ok(())
    }

    /// Pages of the file in this range that are in the page cache (for a shared file mapping,
    /// `mincore` reports the page cache whether or not this process has touched them).
    fn resident_pages(&self) -> Result<usize> {
        let mut v = vec![0u8; self.len.div_ceil(PAGE)];
        // SAFETY: `v` has one byte per page of the mapping.
        if unsafe { libc::mincore(self.ptr, self.len, v.as_mut_ptr()) } != 0 {
            bail!("mincore: {}", std::io::Error::last_os_error());
        }
        Ok(v.iter().filter(|b| **b & 1 == 1).count())
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: unmaps what `new` mapped; no slice of it outlives `self`.
        unsafe { libc::munmap(self.ptr, self.len) };
    }
}

/// Writes `LEN` bytes through a new read-write handle and returns how many of their pages the
/// page cache then holds.
fn resident_after_write(vol: &Volume, name: &str) -> Result<usize> {
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(vol.path(name))?;
    f.write_all_at(&random_bytes(1, LEN), 0)?;
    Mapping::new(&f, LEN, false)?.resident_pages()
}

#[test]
fn writes_bypass_the_page_cache_unless_cached_writes_is_asked() -> Result<()> {
    let mut vol = Volume::new()?;
    vol.mount()?;
    let direct = resident_after_write(&vol, "direct.bin")?;
    vol.umount()?;
    vol.mount_with(&["--cached-writes"])?;
    let cached = resident_after_write(&vol, "cached.bin")?;
    vol.umount()?;
    ensure!(
        direct == 0,
        "direct writes left {direct} pages in the page cache"
    );
    // Write-through mode caches the pages a write fills completely: all of them here.
    ensure!(
        cached == LEN / PAGE,
        "--cached-writes: {cached} of {} pages cached",
        LEN / PAGE
    );
    Ok(())
}

/// What a program can observe, for one mount mode.
fn coherence(vol: &mut Volume, extra: &[&str]) -> Result<()> {
    vol.mount_with(extra)?;
    let p = vol.path("shared.bin");
    let old = random_bytes(2, LEN);
    std::fs::write(&p, &old)?;

    // A reader whose pages are cached sees a write made through another handle.
    let reader = File::open(&p)?;
    let mut buf = vec![0u8; LEN];
    reader.read_exact_at(&mut buf, 0)?;
    ensure!(buf == old, "{extra:?}: first read");
    let rw = OpenOptions::new().read(true).write(true).open(&p)?;
    rw.write_all_at(b"written through rw", 5000)?;
    reader.read_exact_at(&mut buf, 0)?;
    ensure!(
        &buf[5000..5018] == b"written through rw" && buf[..5000] == old[..5000],
        "{extra:?}: a cached reader missed a write through another handle"
    );

    // A shared writable mapping of a writable handle: stores reach readers, writes reach it.
    let mut map = Mapping::new(&rw, LEN, true)?;
    map.bytes_mut()[100..110].copy_from_slice(b"via mmap!!");
    map.sync()?;
    let mut small = [0u8; 10];
    rw.read_exact_at(&mut small, 100)?;
    ensure!(
        &small == b"via mmap!!",
        "{extra:?}: read after a mapped store"
    );
    reader.read_exact_at(&mut small, 100)?;
    ensure!(
        &small == b"via mmap!!",
        "{extra:?}: cached reader after a mapped store"
    );
    rw.write_all_at(b"pwrite", 200_000)?;
    ensure!(
        &map.bytes()[200_000..200_006] == b"pwrite",
        "{extra:?}: the mapping missed a write through its handle"
    );
    drop(map);

    // Appends land at the end the kernel and the daemon agree on.
    let mut app = OpenOptions::new().append(true).open(&p)?;
    app.write_all(b"tail")?;
    ensure!(
        std::fs::metadata(&p)?.len() == LEN as u64 + 4,
        "{extra:?}: size after append"
    );
    drop((app, rw, reader));

    let want = {
        let mut w = old;
        w[5000..5018].copy_from_slice(b"written through rw");
        w[100..110].copy_from_slice(b"via mmap!!");
        w[200_000..200_006].copy_from_slice(b"pwrite");
        w.extend_from_slice(b"tail");
        w
    };
    vol.umount()?;
    vol.mount()?;
    let got = std::fs::read(&p)?;
    ensure!(
        hash_hex(&got) == hash_hex(&want),
        "{extra:?}: content after remount differs"
    );
    std::fs::remove_file(&p)?;
    vol.umount()?;
    Ok(())
}

#[test]
fn readers_mappings_and_appends_see_every_write_in_both_modes() -> Result<()> {
    let mut vol = Volume::new()?;
    coherence(&mut vol, &[])?;
    coherence(&mut vol, &["--cached-writes"])
}
