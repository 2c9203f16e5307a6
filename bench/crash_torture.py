#!/usr/bin/env python3
"""Crash torture for fossa (run through bench/crash-torture.sh; see bench/README.md).

Each iteration mounts the volume, runs a seeded random workload (writes, rewrites, renames,
deletes, fsyncs, `sync(1)` and `fossa sync`), kills the daemon with SIGKILL at a random
moment, detaches the stale mount, mounts again and checks every claim of the journal kept
outside the mount, then unmounts and runs `fossa fsck`.

Claims: after an fsync of a file returns, that file (name and bytes); after `sync(1)`
returns, every file written and closed since and not touched since; after `fossa sync`
returns, every file the workload knows. Before any operation on a name the journal forgets
that name's claim: only claims no later operation touched must hold.
"""
import argparse
import hashlib
import os
import random
import signal
import subprocess
import sys
import tempfile
import time


def log(msg):
    print(msg, file=sys.stderr, flush=True)


class Journal:
    """Claims, kept in a file outside the mount (flushed and fsynced per record)."""

    def __init__(self, path):
        self.f = open(path, "a")

    def rec(self, kind, name, digest="", why=""):
        self.f.write(f"{kind} {name} {digest} {why}\n")
        self.f.flush()
        os.fsync(self.f.fileno())


def claims_of(path):
    claims = {}
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 3 and parts[0] == "CLAIM":
                claims[parts[1]] = parts[2]
            elif len(parts) >= 2 and parts[0] == "FORGET":
                claims.pop(parts[1], None)
    return claims


def workload(args):
    """The workload process: runs until killed or until the mount fails."""
    rng = random.Random(args.seed)
    mnt, fossa, home = args.mnt, args.fossa, args.home
    j = Journal(args.journal)
    # What the mount holds now (after a crash: what survived, the claims checked apart).
    model = {}
    try:
        for name in os.listdir(mnt):
            with open(os.path.join(mnt, name), "rb") as f:
                model[name] = hashlib.sha256(f.read()).hexdigest()
    except OSError:
        return 0  # killed already
    pending = set()  # written and closed, not claimed yet

    n = 0
    while True:
        n += 1
        op = rng.random()
        names = sorted(model)
        try:
            if op < 0.45 or not names:
                name = f"f{rng.randrange(args.files)}"
                size = rng.choice([0, 1, 100, 4096, 70_000, 300_000, 1_500_000, args.big])
                data = rng.randbytes(size)
                j.rec("FORGET", name)
                pending.discard(name)
                model.pop(name, None)
                synced = rng.random() < 0.3
                with open(os.path.join(mnt, name), "wb") as f:
                    f.write(data)
                    if synced:
                        f.flush()
                        os.fsync(f.fileno())
                        j.rec("CLAIM", name, hashlib.sha256(data).hexdigest(), "fsync")
                model[name] = hashlib.sha256(data).hexdigest()
                if not synced:
                    pending.add(name)  # closed without an error
            elif op < 0.6:
                a = rng.choice(names)
                b = f"f{rng.randrange(args.files)}"
                j.rec("FORGET", a)
                j.rec("FORGET", b)
                pending.discard(a)
                pending.discard(b)
                os.rename(os.path.join(mnt, a), os.path.join(mnt, b))
                model[b] = model.pop(a)
            elif op < 0.72:
                a = rng.choice(names)
                j.rec("FORGET", a)
                pending.discard(a)
                os.unlink(os.path.join(mnt, a))
                model.pop(a)
            elif op < 0.9:
                closed = list(pending)
                os.sync()
                for name in closed:
                    j.rec("CLAIM", name, model[name], "sync")
                pending.clear()
            else:
                known = dict(model)
                subprocess.run([fossa, "--home", home, "sync"], check=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                for name, digest in known.items():
                    j.rec("CLAIM", name, digest, "fossa-sync")
                pending.clear()
        except OSError as e:
            if e.errno == 28:  # ENOSPC: not acknowledged, make room and go on
                for victim in sorted(model)[: max(1, len(model) // 3)]:
                    j.rec("FORGET", victim)
                    pending.discard(victim)
                    try:
                        os.unlink(os.path.join(mnt, victim))
                    except OSError:
                        pass
                    model.pop(victim, None)
                # Deleting frees nothing until gc runs (a user on a full disk does this).
                r = subprocess.run([fossa, "--home", home, "gc"], stdout=subprocess.DEVNULL,
                                   stderr=subprocess.PIPE, text=True)
                if r.returncode != 0:
                    log(f"workload: gc on the full disk: {r.stderr.strip()}")
                continue
            if e.errno in (107, 103, 5):  # ENOTCONN, ECONNABORTED, EIO: the daemon is gone
                return 0
            log(f"workload: {e}")
            return 1
        except subprocess.CalledProcessError:
            return 0


def run(cmd, **kw):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def is_mounted(mnt):
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == mnt for line in f)


def mount(fossa, home, key, mnt, logf):
    env = dict(os.environ, FOSSA_DISCOVERY="off")
    p = subprocess.Popen([fossa, "--home", home, "--key-file", key, "mount", mnt,
                          "--listen", "127.0.0.1:0"], stdout=logf, stderr=logf, env=env,
                         start_new_session=True)
    deadline = time.time() + 30
    while time.time() < deadline:
        if is_mounted(mnt):
            return p
        if p.poll() is not None:
            raise RuntimeError(f"mount exited {p.returncode}")
        time.sleep(0.05)
    p.kill()
    raise RuntimeError("mount did not appear in 30 s")


def unmount(fossa, home, mnt, p):
    run([fossa, "--home", home, "umount", mnt])
    try:
        p.wait(timeout=60)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
        run(["fusermount3", "-uz", mnt])


def verify(mnt, journal):
    lost = []
    claims = claims_of(journal)
    for name, want in claims.items():
        try:
            with open(os.path.join(mnt, name), "rb") as f:
                got = hashlib.sha256(f.read()).hexdigest()
        except OSError as e:
            lost.append(f"{name}: {e}")
            continue
        if got != want:
            lost.append(f"{name}: content differs")
    return len(claims), lost


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fossa", required=True)
    ap.add_argument("--iterations", type=int, default=100)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--full-disk", action="store_true",
                    help="home on a small tmpfs that the workload fills")
    ap.add_argument("--tmpfs-size", default="48m")
    ap.add_argument("--max-kill-ms", type=int, default=2500)
    ap.add_argument("--workdir")
    ap.add_argument("--stop-on-loss", action="store_true")
    ap.add_argument("--keep", action="store_true",
                    help="leave the tmpfs of --full-disk mounted after a failure, for inspection")
    ap.add_argument("--workload", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--mnt")
    ap.add_argument("--home")
    ap.add_argument("--journal")
    ap.add_argument("--files", type=int, default=40)
    ap.add_argument("--big", type=int, default=6_000_000)
    args = ap.parse_args()
    if args.workload:
        sys.exit(workload(args))
    rng = random.Random(args.seed)
    work = args.workdir or tempfile.mkdtemp(prefix="fossa-torture-")
    home, mnt = os.path.join(work, "home"), os.path.join(work, "mnt")
    key, journal = os.path.join(work, "key"), os.path.join(work, "journal")
    os.makedirs(home, exist_ok=True)
    os.makedirs(mnt, exist_ok=True)
    tmpfs = False
    if args.full_disk:
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={args.tmpfs_size},mode=0700",
                        "tmpfs", home], check=True)
        tmpfs = True
    logf = open(os.path.join(work, "daemon.log"), "a")
    stats = {"iterations": 0, "claims_checked": 0, "lost": 0, "fsck_unclean": 0,
             "daemon_died": 0, "mount_failed": 0, "errors": 0}
    daemon = None
    try:
        r = run([args.fossa, "--home", home, "init", "--key-file", key])
        if r.returncode != 0:
            raise RuntimeError(f"init failed: {r.stderr}")
        for i in range(args.iterations):
            with open(journal, "a") as jf:
                jf.write(f"ITER {i} -\n")
            daemon = mount(args.fossa, home, key, mnt, logf)
            w = subprocess.Popen([sys.executable, __file__, "--workload", "--fossa", args.fossa,
                                  "--mnt", mnt, "--home", home, "--journal", journal,
                                  "--seed", str(args.seed * 100003 + i),
                                  "--files", str(args.files), "--big", str(args.big)])
            time.sleep(rng.uniform(0.05, args.max_kill_ms / 1000))
            if daemon.poll() is not None:
                stats["daemon_died"] += 1
                log(f"iteration {i}: daemon exited on its own ({daemon.returncode})")
            os.kill(daemon.pid, signal.SIGKILL)
            daemon.wait()
            try:
                w.wait(timeout=30)
            except subprocess.TimeoutExpired:
                w.kill()
                w.wait()
            run(["fusermount3", "-uz", mnt])
            try:
                daemon = mount(args.fossa, home, key, mnt, logf)
            except RuntimeError as e:
                # The volume must mount again after a kill, full disk or not: a volume that
                # cannot be opened is data the user cannot reach.
                stats["mount_failed"] += 1
                log(f"iteration {i}: remount after the kill failed: {e}")
                break
            n, lost = verify(mnt, journal)
            stats["claims_checked"] += n
            stats["lost"] += len(lost)
            for line in lost:
                log(f"iteration {i}: LOST {line}")
            if lost and args.stop_on_loss:
                unmount(args.fossa, home, mnt, daemon)
                daemon = None
                break
            unmount(args.fossa, home, mnt, daemon)
            daemon = None
            r = run([args.fossa, "--home", home, "--key-file", key, "fsck"])
            if r.returncode != 0:
                stats["fsck_unclean"] += 1
                log(f"iteration {i}: fsck exit {r.returncode}: {(r.stdout + r.stderr).strip()[-400:]}")
            stats["iterations"] += 1
            if (i + 1) % 10 == 0:
                log(f"{i + 1} iterations: {stats}")
    finally:
        if daemon is not None and daemon.poll() is None:
            os.kill(daemon.pid, signal.SIGKILL)
            daemon.wait()
        if is_mounted(mnt):
            run(["fusermount3", "-uz", mnt])
        failed = stats["mount_failed"] or stats["lost"] or stats["fsck_unclean"]
        if tmpfs and not (args.keep and failed):
            run(["umount", "-l", home])
        elif tmpfs:
            log(f"kept the tmpfs at {home} (umount -l {home} when done)")
    variant = "full-disk" if args.full_disk else "normal"
    print(f"crash-torture {variant} seed={args.seed}: {stats['iterations']} iterations, "
          f"{stats['claims_checked']} claims checked, {stats['lost']} lost, "
          f"{stats['fsck_unclean']} fsck unclean, {stats['daemon_died']} daemon deaths, "
          f"{stats['mount_failed']} failed remounts")
    sys.exit(0 if stats["lost"] == 0 and stats["fsck_unclean"] == 0
             and stats["daemon_died"] == 0 and stats["mount_failed"] == 0
             and stats["iterations"] == args.iterations else 1)


if __name__ == "__main__":
    main()
