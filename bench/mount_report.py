#!/usr/bin/env python3
"""Helper for bench/mount.sh (stdlib only, Python >= 3.9).

Subcommands:
  mktree OUT --mb M --files N       build a source-tree tarball of about M MB / N files
  files {create,stat,delete} DIR N  time N empty-file operations in DIR; prints seconds
  fio JSON                          print "<MiB/s> <IOPS>" from fio --output-format=json
  report RAW.jsonl META.json [--json]   print the Markdown table (and a JSON block)
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import statistics
import subprocess
import sys
import time

# ---------------------------------------------------------------- mktree


def _dir_stats(d: str) -> tuple[int, int]:
    size = files = 0
    for root, dirs, names in os.walk(d):
        for n in names:
            p = os.path.join(root, n)
            try:
                st = os.lstat(p)
            except OSError:
                continue
            files += 1
            size += st.st_size
    return size, files


def cmd_mktree(a: argparse.Namespace) -> int:
    want_bytes = a.mb * 1_000_000
    candidates: list[str] = []
    home = os.path.expanduser("~")
    for reg in sorted(glob.glob(os.path.join(home, ".cargo/registry/src/*/"))):
        candidates += sorted(glob.glob(os.path.join(reg, "*/")))
    for extra in ("/usr/include", "/usr/lib/python3/dist-packages", "/usr/share/perl", "/usr/share/doc"):
        candidates += sorted(glob.glob(os.path.join(extra, "*/")))
    picked: list[str] = []
    size = files = 0
    for c in candidates:
        if size >= want_bytes and files >= a.files:
            break
        s, f = _dir_stats(c)
        if f == 0:
            continue
        # once one target is met, only add directories that do not overshoot it badly
        if size >= want_bytes and size + s > want_bytes * 1.15:
            continue
        if files >= a.files and files + f > a.files * 1.15:
            continue
        picked.append(c.rstrip("/"))
        size += s
        files += f
    if not picked:
        print("mktree: no source directories found", file=sys.stderr)
        return 1
    tmp = a.out + ".tmp"
    lst = a.out + ".list"
    with open(lst, "w") as fh:
        for p in picked:
            fh.write(p.lstrip("/") + "\n")
    subprocess.run(["tar", "-C", "/", "-cf", tmp, "-T", lst], check=True)
    os.replace(tmp, a.out)
    print(f"mktree: {a.out}: {len(picked)} dirs, {files} files, {size / 1e6:.1f} MB", file=sys.stderr)
    return 0


# ---------------------------------------------------------------- files


def cmd_files(a: argparse.Namespace) -> int:
    d, n = a.dir, a.n
    names = [os.path.join(d, f"f{i:06d}") for i in range(n)]
    t0 = time.perf_counter()
    if a.op == "create":
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
        for p in names:
            os.close(os.open(p, flags, 0o644))
    elif a.op == "stat":
        for p in names:
            os.stat(p)
    elif a.op == "delete":
        for p in names:
            os.unlink(p)
    t1 = time.perf_counter()
    print(f"{t1 - t0:.6f}")
    return 0


# ---------------------------------------------------------------- fio


def cmd_fio(a: argparse.Namespace) -> int:
    with open(a.json) as fh:
        txt = fh.read()
    # fio may print warnings before the JSON document
    j = json.loads(txt[txt.index("{"):])
    bw = iops = 0.0
    for job in j["jobs"]:
        for k in ("read", "write"):
            bw += job[k]["bw_bytes"]
            iops += job[k]["iops"]
    print(f"{bw / 2**20:.3f} {iops:.1f}")
    return 0


# ---------------------------------------------------------------- report

# id -> (label, unit, higher_is_better)
WORKLOADS = {
    "seqwrite": ("seq write (fio 1M, end_fsync)", "MiB/s", True),
    "seqread": ("seq read cold (fio 1M)", "MiB/s", True),
    "randwrite": ("rand write 4k QD1", "IOPS", True),
    "randread": ("rand read 4k QD1 (cold start)", "IOPS", True),
    "create": ("create empty files", "ops/s", True),
    "stat": ("stat files (caches dropped)", "ops/s", True),
    "delete": ("delete files", "ops/s", True),
    "untar": ("untar source tree (+sync)", "s", False),
    "du": ("du -s tree (caches dropped)", "s", False),
    "rmrf": ("rm -rf tree", "s", False),
    "dedup": ("dedup: 2nd identical copy stored", "MiB", False),
}
DAEMONS = {"fossa", "fossa-base", "gocryptfs", "cryfs", "bindfs"}


def _fmt(x: float | None) -> str:
    if x is None:
        return "n/a"
    ax = abs(x)
    if ax >= 1000:
        return f"{x:,.0f}"
    if ax >= 100:
        return f"{x:.0f}"
    if ax >= 10:
        return f"{x:.1f}"
    if ax >= 1:
        return f"{x:.2f}"
    return f"{x:.3f}"


def _ratio(a: float | None, b: float | None) -> str:
    if a is None or b is None:
        return "n/a"
    if b == 0:
        return "0/0" if a == 0 else "inf"
    return f"{a / b:.2f}"


def summarize(raw: list[dict], meta: dict) -> dict:
    tck = float(meta.get("clk_tck", 100))
    out: dict = {}
    for wl in WORKLOADS:
        out[wl] = {}
        for t in meta["targets"]:
            rs = [r for r in raw if r["workload"] == wl and r["target"] == t]
            if not rs:
                continue
            cpu = [r["cpu_ticks"] / tck for r in rs if r.get("cpu_ticks") is not None]
            out[wl][t] = {
                "n": len(rs),
                "metric": statistics.median(r["metric"] for r in rs),
                "metric_all": [r["metric"] for r in rs],
                "wall_s": statistics.median(r["wall"] for r in rs),
                "wall_all": [r["wall"] for r in rs],
                "cpu_s": statistics.median(cpu) if cpu else None,
                "cpu_all": cpu,
            }
    return out


def peak_rss_mib(raw: list[dict], targets: list[str]) -> dict:
    """The daemon's highest VmHWM seen at the end of any timed step, per target, in MiB."""
    out: dict = {}
    for t in targets:
        v = [r["rss_kib"] for r in raw if r["target"] == t and r.get("rss_kib") is not None]
        out[t] = max(v) / 1024 if v else None
    return out


def cmd_report(a: argparse.Namespace) -> int:
    with open(a.meta) as fh:
        meta = json.load(fh)
    raw: list[dict] = []
    if os.path.exists(a.raw):
        with open(a.raw) as fh:
            raw = [json.loads(line) for line in fh if line.strip()]
    targets: list[str] = meta["targets"]
    summ = summarize(raw, meta)
    peers = [t for t in targets if t != "fossa"] if "fossa" in targets else []
    # the first peer column is the headline comparison (gocryptfs when present)
    if "gocryptfs" in peers:
        peers.remove("gocryptfs")
        peers.insert(0, "gocryptfs")

    lines: list[str] = []
    p = lines.append
    p("# fossa whole-mount benchmark")
    p("")
    p(f"- command: `{meta['cmdline']}`")
    p(f"- machine: {meta['nproc']} CPUs, {meta['cpu_model']}, kernel {meta['kernel']}, {meta['mem']}")
    p(f"- date: {meta['date']}, git: {meta.get('git', '?')}")
    p(f"- mode: {'quick' if meta['quick'] else 'full'}, runs: {meta['runs']} (interleaved, medians), "
      f"pinned to CPU 0: {'yes' if meta['pin'] else 'no'}")
    p(f"- sizes: {meta['sizes']}")
    for v in meta.get("versions", []):
        p(f"- {v}")
    p("")
    cols = ["workload", "unit"] + targets + [f"fossa/{x}" for x in peers]
    p("| " + " | ".join(cols) + " |")
    p("|" + "|".join(["---", "---"] + ["---:"] * (len(cols) - 2)) + "|")
    for wl, (label, unit, hib) in WORKLOADS.items():
        row = summ.get(wl, {})
        if not row:
            continue

        def cell(t: str, key: str) -> float | None:
            v = row.get(t)
            return None if v is None else v[key]

        arrow = "↑" if hib else "↓"
        p("| " + " | ".join(
            [f"**{label}**", f"{unit} {arrow}"]
            + [_fmt(cell(t, "metric")) for t in targets]
            + [_ratio(cell("fossa", "metric"), cell(x, "metric")) for x in peers]) + " |")
        cpu_cells = []
        for t in targets:
            if t not in row:
                cpu_cells.append("n/a")
            elif t not in DAEMONS:
                cpu_cells.append(f"– / {_fmt(cell(t, 'wall_s'))}")
            else:
                cpu_cells.append(f"{_fmt(cell(t, 'cpu_s'))} / {_fmt(cell(t, 'wall_s'))}")
        p("| " + " | ".join(
            ["  ↳ daemon CPU / wall", "s ↓"] + cpu_cells
            + [_ratio(cell("fossa", "cpu_s"), cell(x, "cpu_s")) if x in DAEMONS else "–" for x in peers])
          + " |")
    rss = peak_rss_mib(raw, targets)
    p("| " + " | ".join(
        ["**daemon peak RSS** (VmHWM, max over steps)", "MiB ↓"]
        + [_fmt(rss[t]) if t in DAEMONS else "–" for t in targets]
        + [_ratio(rss.get("fossa"), rss.get(x)) if x in DAEMONS else "–" for x in peers]) + " |")
    p("")
    p("Ratios are fossa ÷ peer of the medians: above 1 is better for fossa on ↑ rows, worse on ↓ rows. "
      "CPU is utime+stime of the filesystem daemon during the timed step; wall is the timed step itself.")
    notes = meta.get("notes", [])
    if os.path.exists(a.notes or ""):
        with open(a.notes) as fh:
            notes = notes + [line.rstrip("\n") for line in fh if line.strip()]
    if notes:
        p("")
        p("Notes:")
        for n in notes:
            p(f"- {n}")
    md = "\n".join(lines)
    print(md)
    doc = {"meta": meta, "notes": notes, "summary": summ, "raw": raw, "peak_rss_mib": rss,
           "ratios": {wl: {x: {"metric": (summ[wl]["fossa"]["metric"] / summ[wl][x]["metric"]
                                          if "fossa" in summ[wl] and x in summ[wl] and summ[wl][x]["metric"] else None)}
                           for x in peers} for wl in summ}}
    if a.json_out:
        with open(a.json_out, "w") as fh:
            json.dump(doc, fh, indent=2)
    if a.json:
        print("")
        print("```json")
        print(json.dumps(doc, indent=2))
        print("```")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("mktree")
    s.add_argument("out")
    s.add_argument("--mb", type=int, default=130)
    s.add_argument("--files", type=int, default=11000)
    s.set_defaults(fn=cmd_mktree)
    s = sub.add_parser("files")
    s.add_argument("op", choices=["create", "stat", "delete"])
    s.add_argument("dir")
    s.add_argument("n", type=int)
    s.set_defaults(fn=cmd_files)
    s = sub.add_parser("fio")
    s.add_argument("json")
    s.set_defaults(fn=cmd_fio)
    s = sub.add_parser("report")
    s.add_argument("raw")
    s.add_argument("meta")
    s.add_argument("--notes")
    s.add_argument("--json", action="store_true")
    s.add_argument("--json-out")
    s.set_defaults(fn=cmd_report)
    a = ap.parse_args()
    return a.fn(a)


if __name__ == "__main__":
    sys.exit(main())
