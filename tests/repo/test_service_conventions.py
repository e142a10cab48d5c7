"""Conventions every service keeps, checked on the source so a newcomer's copy of one service keeps them too:
the same modules in the same places; write handlers `(cmd, uow, deps)` that own their transaction (routes and
consumers only translate and call); one `Deps` bundle starting with the clock and the ids; reads that lock say
`for_update=`; `create_app` takes its dependencies; test doubles live in tests; domain errors answer through
servicekit's one installer."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVICE_SOURCES = sorted(ROOT.glob("services/*/src/**/*.py"))


def test_the_services_are_found() -> None:
    assert len({p.relative_to(ROOT).parts[1] for p in SERVICE_SOURCES}) >= 6


def test_no_service_source_imports_the_test_doubles() -> None:
    offenders = [
        str(path.relative_to(ROOT))
        for path in SERVICE_SOURCES
        for node in ast.walk(ast.parse(path.read_text()))
        if (isinstance(node, ast.ImportFrom) and (node.module or "").startswith("servicekit.testing"))
        or (isinstance(node, ast.Import) and any(a.name.startswith("servicekit.testing") for a in node.names))
    ]
    assert offenders == [], "servicekit.testing is for tests only"


def test_no_test_double_lives_in_a_service_source() -> None:
    doubles = [
        f"{path.relative_to(ROOT)}: {node.name}"
        for path in SERVICE_SOURCES
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.ClassDef) and node.name.startswith(("Fake", "InMemory", "Memory", "Stub"))
    ]
    assert doubles == [], "move them to the service's tests/unit/<service>_fakes.py"


def test_only_servicekit_installs_handlers_for_domain_errors() -> None:
    """A service may add a handler for what is not a domain error (a client that hung up), nothing else."""
    allowed = {"ClientDisconnect"}
    installs = [
        f"{path.relative_to(ROOT)}: {ast.unparse(node.args[0])}"
        for path in SERVICE_SOURCES
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "add_exception_handler"
        and node.args
        and ast.unparse(node.args[0]) not in allowed
    ]
    assert installs == [], "declare status and title on the error (servicekit.domain_errors.DomainError) instead"


SERVICE_PACKAGES = sorted(p.parent for p in ROOT.glob("services/*/src/*/bootstrap.py"))
"""Each service's package folder (the one holding bootstrap.py)."""


def _name(package: Path) -> str:
    return str(package.relative_to(ROOT))


def _functions(path: Path) -> list[ast.AsyncFunctionDef | ast.FunctionDef]:
    tree = ast.parse(path.read_text())
    return [n for n in tree.body if isinstance(n, (ast.AsyncFunctionDef, ast.FunctionDef))]


@pytest.mark.parametrize("package", SERVICE_PACKAGES, ids=_name)
def test_every_service_keeps_the_same_modules(package: Path) -> None:
    expected = [
        "bootstrap.py", "config.py", "domain/commands.py", "domain/errors.py", "service_layer/handlers.py",
        "service_layer/messages.py", "service_layer/unit_of_work.py", "service_layer/views.py", "adapters/orm.py",
        "entrypoints/__init__.py",
    ]
    assert [m for m in expected if not (package / m).is_file()] == []


@pytest.mark.parametrize("package", SERVICE_PACKAGES, ids=_name)
def test_handlers_take_command_uow_deps_and_deps_start_with_clock_and_ids(package: Path) -> None:
    handlers = package / "service_layer" / "handlers.py"
    tree = ast.parse(handlers.read_text())
    deps = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Deps"]
    assert deps, f"{_name(handlers)} defines no Deps"
    fields = [s.target.id for s in deps[0].body if isinstance(s, ast.AnnAssign) and isinstance(s.target, ast.Name)]
    assert fields[:2] == ["clock", "ids"]
    wrong = [
        f"{f.name}({', '.join(a.arg for a in f.args.args)})"
        for f in _functions(handlers)
        if isinstance(f, ast.AsyncFunctionDef) and not f.name.startswith("_")
        and [a.arg for a in f.args.args] != ["cmd", "uow", "deps"]
    ]
    assert wrong == [], "a write handler is (cmd, uow, deps); reads go to service_layer/views.py"


@pytest.mark.parametrize("package", SERVICE_PACKAGES, ids=_name)
def test_routes_and_consumers_leave_the_transaction_to_the_handler(package: Path) -> None:
    commits = [
        f"{path.relative_to(ROOT)}:{node.lineno}"
        for path in sorted((package / "entrypoints").glob("*.py"))
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "commit"
    ]
    assert commits == []


def test_a_read_that_locks_says_for_update() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{node.lineno}"
        for path in SERVICE_SOURCES
        for node in ast.walk(ast.parse(path.read_text()))
        if (isinstance(node, ast.keyword) and node.arg == "lock")
        or (isinstance(node, ast.arg) and node.arg == "lock")
    ]
    assert found == [], "name the keyword for_update="


@pytest.mark.parametrize("package", SERVICE_PACKAGES, ids=_name)
def test_create_app_takes_its_dependencies(package: Path) -> None:
    create_app = next(f for f in _functions(package / "bootstrap.py") if f.name == "create_app")
    keywords = {a.arg for a in create_app.args.kwonlyargs}
    assert {"uow_factory", "bus", "clock", "ids"} <= keywords
