#!/usr/bin/env python3
"""Module graph of each workspace crate: finds cycles between sibling modules.

The rule (docs/ARCHITECTURE.md, "Module graph"): inside a crate, the modules that share a
parent form a directed acyclic graph. Module A depends on sibling B when any file in A's
subtree names a path inside B's subtree (`use crate::b::..`, `super::b::..`, or an inline
`crate::b::f()`). A child naming an item of its own parent (`super::Thing` defined in the
parent's file) is not a sibling edge: the parent is the interface of its children.

Usage: tools/modgraph.py [--dot] [CRATE_SRC_DIR...]   (default: every */src of the workspace)
Exit status 1 when any cycle is found; each cycle is printed with one file:line per edge.
"""
import os
import re
import sys

USE_RE = re.compile(r"\buse\s+((?:crate|super|self)\b[^;]*);", re.S)
INLINE_RE = re.compile(r"\b((?:crate|super|self)(?:::[A-Za-z_][A-Za-z0-9_]*)+)")
MOD_RE = re.compile(r"^\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+([A-Za-z_][A-Za-z0-9_]*)\s*([;{])", re.M)
PATH_ATTR_RE = re.compile(r"#\[path\s*=\s*\"([^\"]+)\"\]\s*(?:#\[[^\]]*\]\s*)*(?:pub(?:\([^)]*\))?\s+)?mod\s+(\w+)")
COMMENT_RE = re.compile(r"//[^\n]*|/\*.*?\*/", re.S)
STRING_RE = re.compile(r'"(?:\\.|[^"\\])*"')


def strip(src):
    src = COMMENT_RE.sub("", src)
    return STRING_RE.sub('""', src)


def expand_use(tree):
    """Flattens a use tree (`crate::a::{b, c::{d, e}}`) into paths (lists of segments)."""
    tree = re.sub(r"\s+as\s+\w+", "", tree)
    tree = re.sub(r"\s+", "", tree)
    out = []

    def walk(prefix, s):
        # s is either `seg::seg::{...}` or `seg::seg` or `seg as x`
        depth = 0
        brace = None
        for i, ch in enumerate(s):
            if ch == "{":
                if depth == 0:
                    brace = i
                depth += 1
            elif ch == "}":
                depth -= 1
        if brace is None:
            segs = [x for x in s.split("::") if x]
            out.append(prefix + segs)
            return
        head = [x for x in s[:brace].split("::") if x]
        inner = s[brace + 1 : s.rindex("}")]
        parts, depth, cur = [], 0, ""
        for ch in inner:
            if ch == "," and depth == 0:
                parts.append(cur)
                cur = ""
                continue
            depth += ch == "{"
            depth -= ch == "}"
            cur += ch
        if cur:
            parts.append(cur)
        for p in parts:
            if p == "self":
                out.append(prefix + head)
            else:
                walk(prefix + head, p)

    walk([], tree)
    return out


class Crate:
    def __init__(self, src):
        self.src = src
        self.files = {}  # module path tuple -> file
        root = os.path.join(src, "lib.rs")
        if not os.path.exists(root):
            root = os.path.join(src, "main.rs")
        self.load((), root)

    def load(self, path, file):
        if not os.path.exists(file):
            return
        self.files[path] = file
        text = strip(open(file, encoding="utf-8").read())
        here = os.path.dirname(file)
        base = os.path.basename(file)
        if base in ("lib.rs", "main.rs", "mod.rs"):
            childdir = here
        else:
            childdir = os.path.join(here, base[:-3])
        explicit = {name: rel for rel, name in PATH_ATTR_RE.findall(open(file, encoding="utf-8").read())}
        for name, term in MOD_RE.findall(text):
            if term == "{":
                continue  # inline module: part of this file
            if name in explicit:
                self.load(path + (name,), os.path.normpath(os.path.join(here, explicit[name])))
                continue
            a = os.path.join(childdir, name + ".rs")
            b = os.path.join(childdir, name, "mod.rs")
            self.load(path + (name,), a if os.path.exists(a) else b)

    def resolve(self, mod, segs):
        """Absolute module path named by `segs` as written in module `mod`, or None."""
        cur = list(mod)
        i = 0
        while i < len(segs) and segs[i] in ("crate", "super", "self"):
            if segs[i] == "crate":
                cur = []
            elif segs[i] == "super":
                if not cur:
                    return None
                cur = cur[:-1]
            i += 1
        if i == 0:
            return None
        for s in segs[i:]:
            if tuple(cur + [s]) in self.files:
                cur.append(s)
            else:
                break
        return tuple(cur)

    def refs(self):
        """(from module, to module, file, line) for every crate-relative path."""
        for mod, file in self.files.items():
            text = open(file, encoding="utf-8").read()
            clean = strip(text)
            seen = set()
            for m in USE_RE.finditer(clean):
                line = clean.count("\n", 0, m.start()) + 1
                for segs in expand_use(m.group(1)):
                    seen.add((tuple(segs), line))
            for m in INLINE_RE.finditer(clean):
                line = clean.count("\n", 0, m.start()) + 1
                seen.add((tuple(m.group(1).split("::")), line))
            for segs, line in seen:
                target = self.resolve(list(mod), list(segs))
                if target is not None:
                    yield mod, target, file, line


def sibling_edges(crate):
    edges = {}  # parent -> {(a, b): (file, line)}
    for src, dst, file, line in crate.refs():
        k = 0
        while k < len(src) and k < len(dst) and src[k] == dst[k]:
            k += 1
        if k >= len(src) or k >= len(dst):
            continue  # one contains the other: child -> ancestor or parent -> child
        parent = src[:k]
        edges.setdefault(parent, {}).setdefault((src[k], dst[k]), (file, line))
    return edges


def cycles(edge_map):
    graph = {}
    for a, b in edge_map:
        graph.setdefault(a, set()).add(b)
        graph.setdefault(b, set())
    index, low, stack, on, out, n = {}, {}, [], set(), [], [0]

    def strong(v):
        index[v] = low[v] = n[0]
        n[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(graph):
        if v not in index:
            strong(v)
    return out


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    dot = "--dot" in sys.argv
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if not args:
        args = sorted(
            os.path.join(root, d, "src")
            for d in os.listdir(root)
            if os.path.isdir(os.path.join(root, d, "src")) and d not in ("fuzz", "target")
        )
    bad = 0
    for src in args:
        crate = Crate(src)
        emap = sibling_edges(crate)
        name = os.path.relpath(os.path.dirname(src), root)
        if dot:
            print(f"digraph \"{name}\" {{")
            for parent, es in sorted(emap.items()):
                for a, b in sorted(es):
                    pa = "::".join(parent + (a,))
                    pb = "::".join(parent + (b,))
                    print(f'  "{pa}" -> "{pb}";')
            print("}")
            continue
        found = 0
        for parent, es in sorted(emap.items()):
            for comp in cycles(es):
                found += 1
                where = "::".join(parent) or "crate"
                print(f"{name}: cycle among children of {where}: {', '.join(comp)}")
                for (a, b), (file, line) in sorted(es.items()):
                    if a in comp and b in comp:
                        print(f"    {a} -> {b}   ({os.path.relpath(file, root)}:{line})")
        print(f"{name}: {len(crate.files)} modules, {found} cycle(s)")
        bad += found
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
