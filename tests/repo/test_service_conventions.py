"""Conventions every service keeps, checked on the source so a newcomer's copy of one service keeps them too:
test doubles live in tests, and domain errors answer through servicekit's one installer, not a service's own."""

from __future__ import annotations

import ast
from pathlib import Path

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
