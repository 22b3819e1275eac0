#!/usr/bin/env python3
"""Checks Cairn's layering rules from the `use` edges of the sources.

Run through `scripts/check-layers.sh` (which `scripts/test.sh` calls). Rules:

1. Crates point one way: `crypto` and `cluster-config` use no other workspace crate
   and no storage, consensus or network library; `storage` never uses openraft,
   tonic, axum, hyper, `cairn_raft` or `cairn_node`; `raft` never uses axum or
   `cairn_node`; no crate but `tests` uses the fuzz crate `cairn_fuzz` (it uses
   `node`'s `fuzzing` module, never the other way).
2. raft knows no feature: nothing under `raft/src` names a tenant, user, session,
   key, email, audit or KV type, nor a feature module of `cairn_storage::sm`.
3. No import circles between the units of `storage/src` (`engine`, `keyspace`,
   `sm`, `sm::events`, each `sm::<feature>`, …), of `raft/src` (each top-level
   module) and of `node/src/service` (`core`, each feature).
4. Features do not import each other: `storage::sm::<a>` never names
   `sm::<b>` (but `sm::events`), and `node::service::<a>` never names
   `service::<b>` (but `service::core`).
5. Pure rules are pure: a `rules.rs` never reads a clock, draws randomness or
   touches the engine, the filesystem or the network.

`--self-test` copies the tree, adds one illegal edge per rule and checks that each
is refused (and that the untouched copy passes).

`scripts/check-layers.baseline` lists the violations the tree had when the checker
was written (issue 16 removes them), without line numbers: those are reported as
known, anything else fails. Remove a line once its violation is gone; never add one.
`--update-baseline` is for that: it rewrites the file with what is left and refuses
to add anything new.
"""

from __future__ import annotations

import re
import shutil
import sys
import tempfile
from pathlib import Path

CRATES = {
    "storage": "cairn_storage",
    "raft": "cairn_raft",
    "node": "cairn_node",
    "crypto": "cairn_crypto",
    "cluster-config": "cairn_cluster_config",
}

# Rule 1: (crate dir) -> identifiers its sources and Cargo.toml must not use.
FORBIDDEN_DEPS = {
    "crypto": ["cairn_storage", "cairn_raft", "cairn_node", "cairn_cluster_config",
               "rocksdb", "openraft", "tonic", "axum", "hyper", "cairn_fuzz"],
    "cluster-config": ["cairn_storage", "cairn_raft", "cairn_node", "cairn_crypto",
                       "rocksdb", "openraft", "tonic", "axum", "hyper", "cairn_fuzz"],
    "storage": ["openraft", "tonic", "axum", "hyper", "cairn_raft", "cairn_node",
                "cairn_fuzz"],
    "raft": ["axum", "cairn_node", "cairn_fuzz"],
    "node": ["cairn_fuzz"],
}

# Rule 2: domain words raft's code may not name (comments are not checked).
RAFT_DOMAIN = re.compile(
    r"\b(?:Tenant|User|Session|ApiKey|SigningKey|Signing|Kv|KV|Email|MasterKey|Master|"
    r"Audit|Refresh|Jwks|Password)\w*\b|\bsm::(?!events\b)[a-z_]+::"
)

# Rule 5: what a rules file may not touch.
IMPURE = re.compile(
    r"SystemTime::now|Instant::now|\bUNIX_EPOCH\b|\brand::|\bthread_rng\b|\bOsRng\b|"
    r"\bgetrandom\b|\brocksdb\b|\bcrate::engine\b|\bApplyBatch\b|\bGroupState\b|\bEngine\b|"
    r"\btokio::|\bstd::fs\b|\bstd::net\b|\bstd::env\b"
)

IDENT = r"[A-Za-z_][A-Za-z0-9_]*"


def strip_comments(text: str) -> str:
    """Removes // and /* */ comments and string literals' contents (keeps lines)."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            seg = text[i: n if j < 0 else j + 2]
            out.append("\n" * seg.count("\n"))
            i = n if j < 0 else j + 2
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            seg = text[i: j + 1]
            out.append('""' + "\n" * seg.count("\n"))
            i = j + 1
        elif c == "'" and i + 2 < n and (text[i + 2] == "'" or text[i + 1] == "\\"):
            # a char literal ('a', '\n'); lifetimes ('a) are left alone
            j = text.find("'", i + 2)
            i = j + 1 if j > 0 else i + 1
            out.append("' '")
        else:
            out.append(c)
            i += 1
    return "".join(out)


def production_part(text: str) -> str:
    """The file up to its `#[cfg(test)]` module (test code may reach anywhere)."""
    m = re.search(r"^\s*#\[cfg\(test\)\]\s*\n\s*(pub(\(crate\))?\s+)?mod\s", text, re.M)
    return text if m is None else text[: m.start()]


def module_of(src: Path, f: Path) -> tuple[str, ...]:
    rel = f.relative_to(src).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] in ("mod", "lib", "main"):
        parts = parts[:-1]
    return tuple(parts)


def expand_use(tree: str) -> list[str]:
    """`a::{b, c::{d, e}}` -> [`a::b`, `a::c::d`, `a::c::e`]."""
    tree = re.sub(r"\s+as\s+[A-Za-z_][A-Za-z0-9_]*", "", tree)
    tree = re.sub(r"\s+", "", tree)

    def split_top(s: str) -> list[str]:
        parts, depth, cur = [], 0, ""
        for ch in s:
            if ch == "," and depth == 0:
                parts.append(cur)
                cur = ""
                continue
            depth += ch == "{"
            depth -= ch == "}"
            cur += ch
        if cur:
            parts.append(cur)
        return parts

    def go(prefix: str, s: str) -> list[str]:
        i = s.find("{")
        if i < 0:
            return [prefix + s]
        head, body = s[:i], s[i + 1: s.rfind("}")]
        out = []
        for p in split_top(body):
            out += go(prefix + head, p)
        return out

    return [p for p in go("", tree) if p]


class Crate:
    def __init__(self, root: Path, name: str):
        self.name = name
        self.src = root / name / "src"
        self.files = sorted(self.src.rglob("*.rs")) if self.src.exists() else []
        self.modules = {module_of(self.src, f): f for f in self.files}

    def resolve(self, current: tuple[str, ...], path: list[str]) -> tuple[str, ...] | None:
        """The longest module of this crate that `path` (relative to `current`) names."""
        if not path:
            return None
        if path[0] == "crate":
            base, rest = (), path[1:]
        elif path[0] in ("super", "self"):
            base = current
            rest = path
            while rest and rest[0] in ("super", "self"):
                if rest[0] == "super":
                    base = base[:-1]
                rest = rest[1:]
        else:
            return None
        best = None
        for k in range(len(rest) + 1):
            cand = base + tuple(rest[:k])
            if cand in self.modules:
                best = cand
        return best

    def references(self):
        """Yields (file, line, module, referenced module) for every crate-internal path."""
        for mod, f in self.modules.items():
            raw = f.read_text()
            text = strip_comments(production_part(raw))
            # `super` of a file `a/b.rs` is `a`; of `a/b/mod.rs` also `a` (module a::b).
            for m in re.finditer(r"\buse\s+([^;]+);", text):
                line = text.count("\n", 0, m.start()) + 1
                for p in expand_use(m.group(1)):
                    segs = [s for s in p.split("::") if s and s != "*"]
                    target = self.resolve(mod, segs)
                    if target is not None:
                        yield f, line, mod, target
            for m in re.finditer(rf"\b(?:crate|super)(?:::{IDENT})+", text):
                # skip the `use` statements handled above
                start = text.rfind("\n", 0, m.start()) + 1
                if re.match(r"\s*(pub(\([^)]*\))?\s+)?use\b", text[start: m.start()]):
                    continue
                line = text.count("\n", 0, m.start()) + 1
                segs = m.group(0).split("::")
                target = self.resolve(mod, segs)
                if target is not None:
                    yield f, line, mod, target


def unit(crate: str, mod: tuple[str, ...]) -> str | None:
    """The unit a module belongs to for the circle and feature rules (None: unchecked)."""
    if crate == "storage":
        if not mod:
            return None
        if mod[0] == "sm" and len(mod) >= 2:
            return "sm::" + mod[1]
        return mod[0]
    if crate == "raft":
        return mod[0] if mod and mod[0] != "proto" else None
    if crate == "node":
        if len(mod) >= 1 and mod[0] == "service":
            return "service::" + mod[1] if len(mod) >= 2 else "service"
        return None
    return None


def is_feature(crate: str, u: str) -> bool:
    if crate == "storage":
        return u.startswith("sm::") and u != "sm::events"
    if crate == "node":
        return u.startswith("service::") and u != "service::core"
    return False


def find_cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def strong(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
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
    for v in sorted(edges):
        if v not in index:
            strong(v)
    return out


def check(root: Path) -> list[str]:
    errors: list[str] = []
    rel = lambda f: f.relative_to(root)  # noqa: E731

    # Rule 1: crate dependencies, in Cargo.toml and in the sources.
    for crate, banned in FORBIDDEN_DEPS.items():
        toml = root / crate / "Cargo.toml"
        if toml.exists():
            deps = re.findall(r"^([A-Za-z0-9_-]+)(?:\.workspace)?\s*=", toml.read_text(), re.M)
            for d in deps:
                if d.replace("-", "_") in banned:
                    errors.append(f"{rel(toml)}: {crate} must not depend on {d}")
        for f in sorted((root / crate / "src").rglob("*.rs")):
            text = strip_comments(f.read_text())
            for b in banned:
                for m in re.finditer(rf"\b{b}\b", text):
                    line = text.count("\n", 0, m.start()) + 1
                    errors.append(f"{rel(f)}:{line}: {crate} must not use `{b}`")

    # Rule 2: raft knows no feature.
    for f in sorted((root / "raft" / "src").rglob("*.rs")):
        text = strip_comments(f.read_text())
        for m in RAFT_DOMAIN.finditer(text):
            line = text.count("\n", 0, m.start()) + 1
            errors.append(f"{rel(f)}:{line}: raft names a feature type `{m.group(0)}`")

    # Rules 3 and 4.
    for crate in ("storage", "raft", "node"):
        c = Crate(root, crate)
        edges: dict[str, set[str]] = {}
        where: dict[tuple[str, str], str] = {}
        for f, line, mod, target in c.references():
            a, b = unit(crate, mod), unit(crate, target)
            if a is None or b is None or a == b:
                continue
            edges.setdefault(a, set()).add(b)
            where.setdefault((a, b), f"{rel(f)}:{line}")
            if is_feature(crate, a) and is_feature(crate, b):
                errors.append(
                    f"{rel(f)}:{line}: feature `{a}` imports feature `{b}` "
                    f"(share it through {'sm/engine/keyspace' if crate == 'storage' else 'service::core'})"
                )
        for comp in find_cycles(edges):
            detail = ", ".join(
                f"{a} -> {b} ({where[(a, b)]})"
                for a in comp for b in sorted(edges.get(a, ())) if b in comp
            )
            errors.append(f"{crate}: import circle between {' / '.join(comp)}: {detail}")

    # Rule 5: pure rules.
    for f in sorted(root.glob("*/src/**/rules.rs")):
        text = strip_comments(production_part(f.read_text()))
        for m in IMPURE.finditer(text):
            line = text.count("\n", 0, m.start()) + 1
            errors.append(f"{rel(f)}:{line}: rules must be pure, found `{m.group(0)}`")
    return errors


BASELINE = Path("scripts") / "check-layers.baseline"


def baseline_key(msg: str) -> str:
    """A violation without its line numbers (and a circle without its edges)."""
    if ": import circle between " in msg:
        head, _, rest = msg.partition(": import circle between ")
        return f"{head}: import circle between {rest.split(':', 1)[0]}"
    return re.sub(r":\d+:", ":", msg)


def load_baseline(root: Path) -> set[str]:
    f = root / BASELINE
    if not f.exists():
        return set()
    return {l.strip() for l in f.read_text().splitlines() if l.strip() and not l.startswith("#")}


def new_violations(root: Path) -> tuple[list[str], list[str], set[str]]:
    """(violations not in the baseline, known ones, baseline lines now fixed)."""
    known = load_baseline(root)
    errors = list(dict.fromkeys(check(root)))
    fresh = [e for e in errors if baseline_key(e) not in known]
    old = [e for e in errors if baseline_key(e) in known]
    fixed = known - {baseline_key(e) for e in errors}
    return fresh, old, fixed


def self_test(root: Path) -> int:
    """Each injected edge must be refused; the untouched tree must pass."""
    base, _, _ = new_violations(root)
    if base:
        print("self-test: the tree itself fails; fix that first", file=sys.stderr)
        return 1

    def first(pattern: str) -> Path | None:
        found = sorted(root.glob(pattern))
        return found[0] if found else None

    sm_features = sorted(p.parent.name for p in root.glob("storage/src/sm/*/mod.rs"))
    svc_features = sorted(
        p.parent.name for p in root.glob("node/src/service/*/mod.rs") if p.parent.name != "core"
    )
    leaf = next((p for p in ("storage/src/keyspace.rs", "storage/src/keys.rs")
                 if (root / p).exists()), None)
    user = next((p for p in ("sm/kv", "kv") if (root / "storage/src" / p).exists()
                 or (root / "storage/src" / (p + ".rs")).exists()), None)
    cases: list[tuple[str, str, str]] = [
        ("storage uses openraft", "storage/src/lib.rs", "use openraft::Raft;\n"),
        ("crypto uses storage", "crypto/src/lib.rs", "use cairn_storage::Engine;\n"),
        ("node uses fuzz", "node/src/lib.rs", "use cairn_fuzz::TARGETS;\n"),
        ("raft names a feature type", "raft/src/lib.rs", "pub struct TenantThing;\n"),
    ]
    if len(sm_features) >= 2:
        a, b = sm_features[0], sm_features[1]
        cases.append((f"sm::{a} imports sm::{b}", f"storage/src/sm/{a}/mod.rs",
                      f"use crate::sm::{b}::*;\n"))
        cases.append((f"engine imports sm::{a} (a circle)", "storage/src/engine/mod.rs",
                      f"use crate::sm::{a} as _cycle;\n"))
    if len(svc_features) >= 2:
        a, b = svc_features[0], svc_features[1]
        cases.append((f"service::{a} imports service::{b}", f"node/src/service/{a}/mod.rs",
                      f"use crate::service::{b}::*;\n"))
        cases.append((f"service::core imports service::{a} (a circle)",
                      "node/src/service/core/mod.rs", f"use crate::service::{a} as _cycle;\n"))
    if leaf is not None and user is not None:
        cases.append((f"{leaf} imports {user} (a circle)", leaf,
                      f"use crate::{user.replace('/', '::')} as _cycle;\n"))
    rules = first("storage/src/sm/*/rules.rs")
    if rules is not None:
        cases.append(("a rules file reads the clock", str(rules.relative_to(root)),
                      "fn _clock() -> std::time::SystemTime { std::time::SystemTime::now() }\n"))
    failed = 0
    for name, path, line in cases:
        with tempfile.TemporaryDirectory() as tmp:
            copy = Path(tmp) / "tree"
            for crate in CRATES:
                if (root / crate).exists():
                    shutil.copytree(root / crate, copy / crate,
                                    ignore=shutil.ignore_patterns("target", "*.hex", "*.gz"))
            if (root / BASELINE).exists():
                (copy / "scripts").mkdir()
                shutil.copy(root / BASELINE, copy / BASELINE)
            target = copy / path
            if not target.exists():
                print(f"self-test: {name}: {path} missing", file=sys.stderr)
                failed += 1
                continue
            # first, before any `#[cfg(test)]` module (test code is not checked)
            target.write_text(line + target.read_text())
            errs, _, _ = new_violations(copy)
            if errs:
                print(f"self-test ok: {name} -> refused: {errs[0]}")
            else:
                print(f"self-test FAILED: {name} was not refused", file=sys.stderr)
                failed += 1
    return 1 if failed else 0


def main() -> int:
    root = Path(__file__).resolve().parent.parent
    args = sys.argv[1:]
    if args[:1] == ["--root"]:
        root = Path(args[1]).resolve()
        args = args[2:]
    if args == ["--self-test"]:
        return self_test(root)
    fresh, old, fixed = new_violations(root)
    if args == ["--update-baseline"]:
        if fresh:
            for e in fresh:
                print(e, file=sys.stderr)
            print("check-layers: new violations are fixed, not baselined", file=sys.stderr)
            return 1
        keys = sorted({baseline_key(e) for e in old})
        header = [l for l in (root / BASELINE).read_text().splitlines() if l.startswith("#")]
        (root / BASELINE).write_text("\n".join(header + keys) + "\n")
        print(f"check-layers: baseline now {len(keys)} line(s)")
        return 0
    for e in fresh:
        print(e, file=sys.stderr)
    if fixed:
        print(f"check-layers: {len(fixed)} baseline line(s) no longer occur; remove them "
              "(scripts/check-layers.sh --update-baseline)", file=sys.stderr)
    if fresh:
        print(f"check-layers: {len(fresh)} new violation(s)", file=sys.stderr)
        return 1
    print(f"check-layers: ok ({len(old)} known violation(s) in the baseline, "
          "to be removed by the restructure)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
