#!/usr/bin/env python3
"""The module graph of every crate in the workspace, and its cycles.

A module depends on another when its code names it: `use crate::a::b`, a path `crate::a::x`,
`super::a`, or a child module by name after `use self::a` / `mod a;` is not counted (containing a
module is not depending on it). Comments and `#[cfg(test)]` modules are left out: a test module
looking at its parent is not part of the design. Prints each crate's edges with `--edges`; exits 1
and names the modules of every cycle (strongly connected component) found.

    python3 .ci/module-cycles.py            # the check CI runs
    python3 .ci/module-cycles.py --edges    # the whole graph
"""

import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CRATES = ["im-proto", "im-driver", "im-tokio", "im-async-std", "tests"]


def module_files(src):
    """Map a module path (tuple) to its file, for every .rs file under src."""
    mods = {}
    for dirpath, _, files in os.walk(src):
        for f in files:
            if not f.endswith(".rs"):
                continue
            rel = os.path.relpath(os.path.join(dirpath, f), src)[:-3].split(os.sep)
            if rel[0] == "bin":
                continue
            if rel[-1] in ("mod", "lib", "main"):
                rel = rel[:-1]
            mods[tuple(rel)] = os.path.join(dirpath, f)
    return mods


def strip(text):
    """The code alone: no comments, no string literals, no `#[cfg(test)]` module."""
    text = re.sub(r"//[^\n]*", "", text)
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', text)
    out, i = [], 0
    for m in re.finditer(r"#\[cfg\((?:test|all\(test[^\]]*)\)\]\s*mod\s+\w+\s*\{", text):
        if m.start() < i:
            continue
        out.append(text[i : m.start()])
        depth, j = 1, m.end()
        while j < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            j += 1
        i = j
    out.append(text[i:])
    return "".join(out)


def root_names(mods):
    """What the crate root re-exports: a name to the module it comes from (`pub use a::B`)."""
    names = {}
    root = mods.get(())
    if root is None:
        return names
    code = strip(open(root, encoding="utf-8").read())
    for use in re.findall(r"\bpub\s+use\s+([^;]+);", code):
        prefix, _, group = use.partition("{")
        prefix = [p for p in prefix.replace(" ", "").split("::") if p]
        items = re.split(r",", group.replace("}", "")) if group else [prefix.pop()] if prefix else []
        for item in items:
            item = item.strip()
            if not item or not prefix:
                continue
            parts = prefix + [p for p in item.split(" as ")[0].split("::") if p]
            alias = item.split(" as ")[-1].split("::")[-1].strip()
            if prefix[0] not in ("crate", "self", "super"):
                parts = ["crate"] + parts
            target = resolve(tuple(parts), (), mods, {})
            if target:
                names[alias] = target
    return names


def resolve(path, here, mods, reexports):
    """The deepest known module a path names, or None."""
    if path[0] == "crate":
        base, rest = (), path[1:]
        if rest and rest[0] in reexports and () + (rest[0],) not in mods:
            return reexports[rest[0]]
    elif path[0] == "super":
        base, rest = here, path
        while rest and rest[0] == "super":
            base, rest = base[:-1], rest[1:]
    elif path[0] == "self":
        base, rest = here, path[1:]
    else:
        return None
    best = None
    for k in range(len(rest) + 1):
        cand = base + tuple(rest[:k])
        if cand in mods:
            best = cand
    return best


def edges_of(mods):
    graph = {m: set() for m in mods}
    reexports = root_names(mods)
    for here, path in mods.items():
        code = strip(open(path, encoding="utf-8").read())
        names = []
        for use in re.findall(r"\buse\s+([^;]+);", code):
            prefix, _, group = use.partition("{")
            prefix = [p for p in prefix.replace(" ", "").split("::") if p]
            if group:
                for item in re.split(r",", group.replace("}", "")):
                    item = [p for p in item.strip().split(" as ")[0].split("::") if p]
                    names.append(prefix + item)
            else:
                names.append(prefix)
        for m in re.finditer(r"\b((?:crate|super)(?:::\w+)+)", code):
            names.append(m.group(1).split("::"))
        for name in names:
            if not name:
                continue
            target = resolve(tuple(name), here, mods, reexports)
            if target is None or target == here:
                continue
            # A module naming its own descendant (a child it declares) contains it.
            if target[: len(here)] == here:
                continue
            graph[here].add(target)
    return graph


def cycles(graph):
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
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
                out.append(comp)

    for v in graph:
        if v not in index:
            visit(v)
    return out


def name(m):
    return "::".join(m) or "crate"


def main():
    show = "--edges" in sys.argv
    found = False
    for crate in CRATES:
        src = os.path.join(ROOT, crate, "src")
        if not os.path.isdir(src):
            continue
        graph = edges_of(module_files(src))
        n = sum(len(v) for v in graph.values())
        print(f"{crate}: {len(graph)} modules, {n} edges")
        if show:
            for m in sorted(graph):
                for t in sorted(graph[m]):
                    print(f"  {name(m)} -> {name(t)}")
        for comp in cycles(graph):
            found = True
            print(f"  CYCLE: {' <-> '.join(sorted(name(m) for m in comp))}")
    if found:
        sys.exit(1)
    print("no module cycles")


main()
