"""The shape of the package: stages in folders, imports flowing one way, small modules.

ARCHITECTURE.md draws this; the test keeps the drawing true. Imports are read from the
source (module level and inside functions alike), so a lazy import cannot hide a
backwards dependency.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from tests.conftest import REPO

WORKER = REPO / "worker"
EVAL = REPO / "storyeval"

# Earliest first: a unit may import only units before it (and itself). A unit is a
# package directly under worker/ or a module directly in it.
STAGES = (
    "utc",
    "errors",
    "models",
    "text",  # sentences, terms, names, HTML to text
    "fetch",  # the guarded HTTP client
    "articles",  # identity (canonical URL), extraction, fingerprints
    "feeds",  # RSS/Atom bytes to items keyed by their article's identity
    "stories",  # corpus to stories
    "decide",  # the tracker: match, novelty, repeats, surges
    "alerts",  # what a destination receives (pure)
    "store",  # schema, migrations, queries
    "migrations",
    "config_files",
    "settings",
    "observe",  # logs and metrics
    "delivery",  # one attempt to one destination
    "pipeline",  # the use cases
    "celery_app",
    "service",  # Celery tasks
    "web",  # the story desk (Starlette)
    "cli",
    "__main__",
)
PURE = ("text", "articles", "feeds", "stories", "decide", "alerts")
IO_LIBRARIES = {"sqlalchemy", "httpx", "httpcore", "celery", "kombu", "redis", "psycopg"}
MAX_TOP_LEVEL_MODULES = 8
MAX_LINES = 400


def _modules(root: Path) -> Iterator[Path]:
    yield from sorted(p for p in root.rglob("*.py") if "migrations/versions" not in p.as_posix())


def _unit(path: Path) -> str:
    relative = path.relative_to(WORKER)
    return relative.parts[0] if len(relative.parts) > 1 else relative.stem


def _imports(path: Path) -> Iterator[tuple[str, bool]]:
    """(imported module, inside a function) for every absolute import in the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nested = {
        id(node)
        for function in ast.walk(tree)
        if isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef)
        for node in ast.walk(function)
    }
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, id(node) in nested
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module, id(node) in nested
            if node.module == "worker":  # `from worker import pipeline` names a unit
                for alias in node.names:
                    yield f"worker.{alias.name}", id(node) in nested


def _imported_unit(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "worker" or len(parts) == 1 or parts[1] == "__version__":
        return None
    return parts[1]


def test_every_unit_has_a_place_in_the_order() -> None:
    units = {_unit(p) for p in _modules(WORKER)} - {"__init__"}
    assert units <= set(STAGES), f"place these in STAGES: {sorted(units - set(STAGES))}"


def test_imports_flow_from_earlier_stages_to_later_ones() -> None:
    rank = {unit: number for number, unit in enumerate(STAGES)}
    backwards = []
    for path in _modules(WORKER):
        unit = _unit(path)
        if unit == "__init__":
            continue
        for module, _ in _imports(path):
            imported = _imported_unit(module)
            if imported is not None and imported != unit and rank[imported] > rank[unit]:
                backwards.append(f"{path.relative_to(REPO)} imports {module}")
    assert not backwards, "later stage imported by an earlier one:\n" + "\n".join(backwards)


def test_pure_packages_import_no_database_network_or_queue_library() -> None:
    found = [
        f"{path.relative_to(REPO)} imports {module}"
        for unit in PURE
        for path in _modules(WORKER / unit)
        for module, _ in _imports(path)
        if module.split(".")[0] in IO_LIBRARIES
    ]
    assert not found, "\n".join(found)


def test_the_service_never_imports_the_evaluation_harness() -> None:
    # Only the `eval` command may, and only when it runs.
    found = [
        f"{path.relative_to(REPO)} imports {module}" + (" at module level" if not lazy else "")
        for path in _modules(WORKER)
        for module, lazy in _imports(path)
        if module.split(".")[0] == "storyeval" and (_unit(path) != "cli" or not lazy)
    ]
    assert not found, "\n".join(found)


def test_few_modules_at_the_top_and_none_too_long() -> None:
    top = sorted(p.name for p in WORKER.glob("*.py"))
    assert len(top) <= MAX_TOP_LEVEL_MODULES, top
    long = [
        f"{path.relative_to(REPO)}: {lines} lines"
        for root in (WORKER, EVAL)
        for path in _modules(root)
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    ]
    assert not long, "\n".join(long)


def _writes_queries(path: Path) -> bool:
    return any(
        module == "worker.store.schema"
        or (module.split(".")[0] == "sqlalchemy" and module != "sqlalchemy.exc")
        for module, _ in _imports(path)
    )


def test_the_use_cases_ask_the_store_instead_of_writing_queries() -> None:
    # SQL lives in worker/store/ as named functions; a use case passes their session
    # (worker.store.engine.DbSession) along and may catch sqlalchemy.exc errors.
    with_sql = sorted(p.stem for p in _modules(WORKER / "pipeline") if _writes_queries(p))
    assert not with_sql, f"SQL belongs in worker/store/: {with_sql}"
