"""The house (docs/architecture.md): imports only go down, and nothing imports in a circle.

Every module under slob/ is parsed with ``ast`` and every import is counted: module-level,
inside functions (lazy imports), under ``if TYPE_CHECKING:`` -- a circle that only the type
checker sees is still a circle. ``from pkg import name`` counts as an import of the module
``pkg.name`` when that is a module, else of ``pkg``.

The layer order below is the one docs/architecture.md shows; the test checks the page shows
the same list. A room may import its own modules and rooms in lower layers, never a higher
layer nor another room of its own layer. Shims (old module paths kept importable) only
re-export their new home, and no code in slob/ imports a shim.
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SLOB = ROOT / "slob"

#: Bottom first. A room is a package (everything under it) or a top-level module.
LAYERS: list[tuple[str, ...]] = [
    ("slob",),  # the root package: version, require_ibapi (standard library only)
    ("slob.aio",),  # LoopThread
    ("slob.model", "slob.orders"),  # frozen records
    ("slob.ib",),  # the wire: codec, client, reader thread, bridge, errors
    ("slob.config",),  # frozen, validated configs and the file loader
    ("slob.market",),  # sessions, contract months, symbols, minute candles
    ("slob.strategy",),  # the setup tracker
    ("slob.store",),  # SQLite: records, schema, the writer
    ("slob.execution",),  # intents, reconciliation, the OrderExecutor
    ("slob.live",),  # feeds, the session supervisor, delivery, warm-up, the engine
    ("slob.trace",),  # protocol debugging: request layouts, captures, the recording proxy
    ("slob.testing",),  # the fakes: FakeTWS, FakeEClient, FakeAlpaca, FaultProxy, the plugin
    ("slob.ops",),  # the pure cores of commands: report, checkpoint, demo, contracts, history
    ("slob.research", "slob.soak", "slob.bench"),  # backtests and sweeps, soak runs, the benchmark
    ("slob.commands",),  # one shell per command: arguments in, a core called, text out
    ("slob.cli",),  # `slob`: the command table
]

#: Old module paths kept importable: old -> new home. A shim holds a docstring and
#: re-exports from its new home, nothing else.
SHIMS: dict[str, str] = {
    "slob.zones": "slob.ib.zones",
    "slob.live.expiry_book": "slob.market.expiry_book",
    "slob.live.sessions": "slob.market.sessions",
    "slob.live.symbols": "slob.market.symbols",
    "slob.live.candle_aggregator": "slob.market.candle_aggregator",
    "slob.live.setup_tracker": "slob.strategy.setup_tracker",
    "slob.live.setup_planting": "slob.strategy.setup_planting",
    "slob.live.store": "slob.store.store",
    "slob.live.store_records": "slob.store.records",
    "slob.live.store_schema": "slob.store.schema",
    "slob.live.order_executor": "slob.execution.order_executor",
    "slob.testing.loop_thread": "slob.aio.loop_thread",
    "slob.testing.captures": "slob.trace.captures",
    "slob.testing.tws_requests": "slob.trace.tws_requests",
    "slob.testing.tws_proto_requests": "slob.trace.tws_proto_requests",
    "slob.report": "slob.ops.report",
    "slob.checkpoint": "slob.ops.checkpoint",
    "slob.demo": "slob.ops.demo",
    "slob.contracts_command": "slob.ops.contracts",
}

FIX = ("Fix: move the imported code down to a room both may import, or give the importer what it "
       "needs (a Protocol or a callback defined in a lower room) -- docs/architecture.md.")


@dataclass(frozen=True)
class Import:
    source: str  # importing module
    target: str  # imported module
    path: Path
    line: int

    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}: {self.source} imports {self.target}"


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(SLOB.rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _resolve(name: str) -> str | None:
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imports(module: str, path: Path) -> list[Import]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package
                for _ in range(node.level - 1):
                    anchor = anchor.rpartition(".")[0]
                base = f"{anchor}.{base}" if base else anchor
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
        else:
            continue
        for name in names:
            if name == "slob" or name.startswith("slob."):
                target = _resolve(name)
                if target is not None and target != module:
                    found.append(Import(module, target, path, node.lineno))
    return found


IMPORTS = [i for module, path in MODULES.items() for i in _imports(module, path)]
RANK = {room: rank for rank, layer in enumerate(LAYERS) for room in layer}


def room_of(module: str) -> str:
    name = module
    while name not in RANK:
        name = name.rpartition(".")[0]
    if name == "slob" != module:  # a top-level module is a room of its own or in a package
        raise AssertionError(f"{module} is in no room of LAYERS: put it in one (tests/test_architecture.py "
                             "and docs/architecture.md)")
    return name


def _components(nodes: list[str], edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components (Tarjan, iterative) with more than one node."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out = []
    counter = 0
    for start in nodes:
        if start in index:
            continue
        work = [(start, iter(sorted(edges.get(start, ()))))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        out.append(sorted(component))
    return out


def test_every_module_is_in_a_room() -> None:
    for module in MODULES:
        if module not in SHIMS:
            room_of(module)


def test_imports_only_go_down() -> None:
    wrong = []
    for i in IMPORTS:
        if i.source in SHIMS:
            continue  # checked by test_shims_only_re_export_their_new_home
        source, target = room_of(i.source), room_of(i.target)
        if source == target:
            continue
        if RANK[target] >= RANK[source]:
            how = "a higher layer" if RANK[target] > RANK[source] else "a room of its own layer"
            wrong.append(f"{i.where()} -- {source} may not import {how} ({target})")
    assert not wrong, "imports running up the house:\n  " + "\n  ".join(wrong) + "\n" + FIX


def test_no_module_imports_a_shim() -> None:
    wrong = [f"{i.where()} -- import {SHIMS[i.target]} instead" for i in IMPORTS
             if i.target in SHIMS and i.source not in SHIMS]
    assert not wrong, "code in slob/ imports an old path kept for users:\n  " + "\n  ".join(wrong)


def test_shims_only_re_export_their_new_home() -> None:
    for old, new in SHIMS.items():
        assert old in MODULES, f"SHIMS names {old}, which is gone: drop it from SHIMS"
        assert new in MODULES, f"{old} re-exports {new}, which does not exist"
        tree = ast.parse(MODULES[old].read_text(encoding="utf-8"))
        targets = {i.target for i in _imports(old, MODULES[old])}
        assert targets == {new}, f"{old} must import only from {new} (a shim), imports {sorted(targets)}"
        body = tree.body[1:] if isinstance(tree.body[0], ast.Expr) else tree.body
        assert all(isinstance(n, (ast.ImportFrom, ast.Assign)) for n in body), f"{old}: a shim holds no code"


def test_no_module_import_cycle() -> None:
    edges: dict[str, set[str]] = defaultdict(set)
    where: dict[tuple[str, str], Import] = {}
    for i in IMPORTS:
        edges[i.source].add(i.target)
        where.setdefault((i.source, i.target), i)
    cycles = []
    for component in _components(sorted(MODULES), edges):
        members = set(component)
        links = [where[a, b].where() for a in component for b in sorted(edges[a] & members)]
        cycles.append(f"{' <-> '.join(component)}:\n    " + "\n    ".join(links))
    assert not cycles, ("modules importing each other in a circle (lazy and TYPE_CHECKING imports count):\n  "
                        + "\n  ".join(cycles) + "\nFix: the module lower down must not import the higher one; "
                        "give it what it needs (a Protocol in a lower module, or a callback) instead.")


def test_no_package_import_cycle() -> None:
    edges: dict[str, set[str]] = defaultdict(set)
    where: dict[tuple[str, str], Import] = {}
    for i in IMPORTS:
        if i.source in SHIMS:
            continue
        a, b = room_of(i.source), room_of(i.target)
        if a != b:
            edges[a].add(b)
            where.setdefault((a, b), i)
    cycles = [f"{' <-> '.join(c)}: " + "; ".join(where[a, b].where() for a in c for b in sorted(edges[a] & set(c)))
              for c in _components(sorted(RANK), edges)]
    assert not cycles, "rooms importing each other in a circle:\n  " + "\n  ".join(cycles) + "\n" + FIX


def test_docs_show_the_same_layers() -> None:
    page = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- layers -->\n```text\n(.*?)```", page, re.S)
    assert block, "docs/architecture.md lost its layer diagram (the ```text block after <!-- layers -->)"
    shown = []
    for line in block.group(1).splitlines():
        rooms = []
        for word in line.split():  # the rooms, then what they are
            if not re.fullmatch(r"slob(\.\w+)?", word):
                break
            rooms.append(word)
        if rooms:
            shown.append(tuple(rooms))
    assert shown == list(reversed(LAYERS)), "docs/architecture.md shows another layer order than LAYERS (top first)"


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m not in SHIMS))
def test_no_module_is_over_700_lines(module: str) -> None:
    lines = len(MODULES[module].read_text(encoding="utf-8").splitlines())
    assert lines <= 700, f"{MODULES[module].relative_to(ROOT)} has {lines} lines: split it along a line that reads"


def test_where_things_happen_names_real_code() -> None:
    """docs/architecture.md's "Where things happen" table names files and functions: they exist."""
    page = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    table = page.split("## Where things happen", 1)[1]
    files = sorted(set(re.findall(r"`(slob/[\w/]+\.py)`", table)))
    missing_files = [f for f in files if not (ROOT / f).is_file()]
    assert not missing_files, f"docs/architecture.md names files that are gone: {missing_files}"
    defined: set[str] = set()
    for f in files:
        for node in ast.walk(ast.parse((ROOT / f).read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                defined.add(node.name)
            elif isinstance(node, (ast.Assign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                defined.update(t.id for t in targets if isinstance(t, ast.Name))
    ib_own = {"EClient", "Decoder", "placeOrder"}  # IB's client, not slob's
    named = {part for code in re.findall(r"`([A-Za-z_][\w.]*)`", table) if "/" not in code
             for part in code.split(".")}
    unknown = sorted(name for name in named - ib_own if name not in defined)
    assert not unknown, f"docs/architecture.md names code that is not in the files it names: {unknown}"
