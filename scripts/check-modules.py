#!/usr/bin/env python3
"""Structure check over src/: lists the imports between files and fails on

  * an import circle among files (a strongly connected group of two or more files), and
  * a module under engine/ importing http2:: or legacy:: (the engine decides; listeners carry bytes).

Imports are `use crate::...` / `use super::...` declarations and inline `crate::...` / `super::...`
paths, resolved to the file that defines the item (following `pub use` re-exports). Test code
(`#[cfg(test)]` modules and files) is left out: tests may reach anywhere. A module naming its own
children (a `mod.rs` or the crate root re-exporting or dispatching to what it contains) is
containment, not an import, so parent -> descendant edges are not counted.

Usage: scripts/check-modules.py [--edges] [src-dir]   (exit 0 when clean, 1 with findings)
"""

import os
import re
import sys

IDENT = r"[A-Za-z_][A-Za-z0-9_]*"


def strip_code(text):
    """Blanks comments, string and char literals (keeping newlines), so braces and paths are real."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            i = j
        elif text.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            out.append("\n" * text.count("\n", i, j))
            i = j
        elif c == "r" and re.match(r'r#*"', text[i:i + 20]) and not re.match(r"\w", text[i - 1:i] or " "):
            m = re.match(r'r(#*)"', text[i:])
            end = '"' + m.group(1)
            j = text.find(end, i + len(m.group(0)))
            j = n if j < 0 else j + len(end)
            out.append('""' + "\n" * text.count("\n", i, j))
            i = j
        elif c == '"' or (c == "b" and text.startswith('b"', i) and not re.match(r"\w", text[i - 1:i] or " ")):
            j = i + (2 if c == "b" else 1)
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            j += 1
            out.append('""' + "\n" * text.count("\n", i, j))
            i = j
        elif c == "'":
            m = re.match(r"'(\\.[^']*|[^\\'])'", text[i:i + 12])
            if m:
                out.append("' '")
                i += len(m.group(0))
            else:  # a lifetime
                out.append(c)
                i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def module_files(src):
    """Maps module path (tuple) -> file for the library crate (lib.rs and its descendants)."""
    files = {}

    def walk(path, mod, is_root):
        files[mod] = path
        text = strip_code(open(path, encoding="utf-8").read())
        base = os.path.dirname(path) if (is_root or path.endswith("mod.rs")) else path[:-3]
        for m in re.finditer(r"((?:#\[[^\]]*\]\s*)*)(?:pub(?:\([^)]*\))?\s+)?mod\s+(" + IDENT + r")\s*;", text):
            if "cfg(test)" in m.group(1):
                continue
            name = m.group(2)
            for cand in (os.path.join(base, name + ".rs"), os.path.join(base, name, "mod.rs")):
                if os.path.exists(cand):
                    walk(cand, mod + (name,), False)
                    break

    walk(os.path.join(src, "lib.rs"), (), True)
    return files


def inline_modules(text):
    """Yields (start, end, name, is_test) of inline `mod name { ... }` blocks, via brace matching."""
    for m in re.finditer(r"((?:#\[[^\]]*\]\s*)*)(?:pub(?:\([^)]*\))?\s+)?mod\s+(" + IDENT + r")\s*\{", text):
        depth, j = 1, m.end()
        while j < len(text) and depth:
            if text[j] == "{":
                depth += 1
            elif text[j] == "}":
                depth -= 1
            j += 1
        yield m.start(), j, m.group(2), "cfg(test)" in m.group(1)


def expand_use(tree):
    """Expands a use tree (`a::{b, c::{d as e}}`) into (path, alias) pairs."""
    tree = re.sub(r"\s+", "", re.sub(r"\s+as\s+", "@", tree))
    if "{" not in tree:
        m = re.match(r"(.*?)(?:@(" + IDENT + "))?$", tree)
        path = m.group(1)
        if path.endswith("::self"):
            path = path[: -len("::self")]
        alias = m.group(2) or path.split("::")[-1]
        return [(path, alias)]
    i = tree.index("{")
    prefix, inner = tree[:i], tree[i + 1: tree.rindex("}")]
    parts, depth, cur = [], 0, ""
    for ch in inner:
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
            continue
        depth += ch == "{"
        depth -= ch == "}"
        cur += ch
    parts.append(cur)
    out = []
    for p in parts:
        if not p:
            continue
        if p == "self":
            out.append((prefix.rstrip(":"), prefix.rstrip(":").split("::")[-1]))
        else:
            out.extend(expand_use(prefix + p))
    return out


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    show_edges = "--edges" in sys.argv
    src = args[0] if args else os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")
    src = os.path.normpath(src)
    files = module_files(src)
    rel = {mod: os.path.relpath(path, src) for mod, path in files.items()}

    # Per file: its code outside test modules, and the module path of each inline block.
    code = {}
    for mod, path in files.items():
        text = strip_code(open(path, encoding="utf-8").read())
        blocks = list(inline_modules(text))
        for start, end, _, is_test in blocks:
            if is_test:
                text = text[:start] + re.sub(r"[^\n]", " ", text[start:end]) + text[end:]
        code[mod] = (text, [(s, e, name) for s, e, name, t in inline_modules(text) if not t])

    def scope_at(mod, pos):
        _, blocks = code[mod]
        scope = mod
        for s, e, name in blocks:
            if s <= pos < e:
                scope = scope + (name,)
        return scope

    def absolute(scope, path):
        """An absolute module path (tuple) for a path written in `scope`, or None for external crates."""
        segs = path.split("::")
        if segs[0] == "crate":
            return tuple(segs[1:])
        if segs[0] in ("super", "self"):
            cur = list(scope)
            while segs and segs[0] in ("super", "self"):
                if segs.pop(0) == "super" and cur:
                    cur.pop()
            return tuple(cur) + tuple(segs)
        if scope + (segs[0],) in files or any(k[: len(scope) + 1] == scope + (segs[0],) for k in files):
            return scope + tuple(segs)
        return None

    # `pub use` re-exports: (module, name) -> absolute path.
    reexports = {}
    for mod in files:
        text, _ = code[mod]
        for m in re.finditer(r"pub(?:\([^)]*\))?\s+use\s+([^;]+);", text):
            scope = scope_at(mod, m.start())
            for path, alias in expand_use(m.group(1)):
                target = absolute(scope, path)
                if target is not None:
                    reexports[(scope, alias)] = target

    def resolve(target, seen=0):
        """The file module that defines `target`, following re-exports."""
        for k in range(len(target), -1, -1):
            head = target[:k]
            if head in files:
                rest = target[k:]
                if rest and (head, rest[0]) in reexports and seen < 20:
                    return resolve(reexports[(head, rest[0])] + rest[1:], seen + 1)
                return head  # an inline module (like frame::kind) belongs to its file
        return ()

    edges = {}  # (from, to) -> first path seen
    for mod in files:
        text, _ = code[mod]
        found = []
        for m in re.finditer(r"\buse\s+([^;]+);", text):
            found.extend((m.start(), p) for p, _ in expand_use(m.group(1)))
        for m in re.finditer(r"(?<![\w:])((?:crate|super)(?:::(?:super|" + IDENT + r"))+)", text):
            found.append((m.start(), m.group(1)))
        for pos, path in found:
            target = absolute(scope_at(mod, pos), path)
            if target is None:
                continue
            dest = resolve(target)
            if dest[: len(mod)] == mod:
                continue  # itself, or one of its own descendants: containment
            edges.setdefault((mod, dest), path)

    graph = {}
    for a, b in edges:
        graph.setdefault(a, set()).add(b)

    if show_edges:
        for (a, b), path in sorted(edges.items(), key=lambda e: (rel[e[0][0]], rel[e[0][1]])):
            print(f"{rel[a]} -> {rel[b]}    ({path})")

    # Tarjan's strongly connected components.
    index, low, stack, on, sccs, counter = {}, {}, [], set(), [], [0]
    sys.setrecursionlimit(10000)

    def strong(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
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
                sccs.append(comp)

    for v in sorted(files):
        if v not in index:
            strong(v)

    failures = 0
    for comp in sorted(sccs, key=lambda c: sorted(rel[m] for m in c)):
        failures += 1
        members = set(comp)
        names = ", ".join(sorted(rel[m] for m in comp))
        print(f"import circle among {len(comp)} files: {names}")
        for (a, b), path in sorted(edges.items(), key=lambda e: (rel[e[0][0]], rel[e[0][1]])):
            if a in members and b in members:
                print(f"    {rel[a]} -> {rel[b]}    ({path})")

    for (a, b), path in sorted(edges.items(), key=lambda e: (rel[e[0][0]], rel[e[0][1]])):
        if a[:1] == ("engine",) and b[:1] in (("http2",), ("legacy",)):
            failures += 1
            print(f"engine imports a listener: {rel[a]} -> {rel[b]}    ({path})")

    # Top-level modules (engine, http2, control, ...): circles reported, not failed on, since a
    # directory may hold several concepts that legitimately lean on each other's neighbours.
    top = {}
    for a, b in edges:
        if a[:1] != b[:1] and a and b:
            top.setdefault(a[:1], set()).add(b[:1])
    for a in sorted(top):
        for b in sorted(top[a]):
            if a < b and a in top.get(b, set()):
                print(f"note: top-level modules import each other: {a[0]} <-> {b[0]}")

    print(f"{len(files)} files, {len(edges)} imports between files, {failures} finding(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
