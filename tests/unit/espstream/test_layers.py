"""The rooms' imports go one way: schemas (the contract) <- plumbing <- the services <- the CLI and stack.

A service never imports another (gateway, normalizer, consumers, registry talk
through topics), plumbing imports no service, and nothing names a room as a
top-level package (``import schemas``): installed, the rooms exist only as
``espstream.<room>``.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
PACKAGES = {  # folder -> the package it installs as
    "espstream": "espstream",
    "plumbing": "espstream.plumbing",
    "schemas": "espstream.schemas",
    "gateway": "espstream.gateway",
    "normalizer": "espstream.normalizer",
    "consumers": "espstream.consumers",
    "registry": "espstream.registry",
}
SERVICES = ("espstream.gateway", "espstream.normalizer", "espstream.consumers", "espstream.registry")
# What each layer may import of espstream besides itself. The root package, espstream, holds only __version__.
ALLOWED = {
    "espstream.schemas": (),
    "espstream.plumbing": ("espstream.schemas",),
    **{service: ("espstream.schemas", "espstream.plumbing") for service in SERVICES},
}
ROOMS = tuple(PACKAGES)
ROOT_NAMES = ("espstream", "espstream.__version__")


def layer(module: str) -> str | None:
    """The layer a module of espstream is in; None for the top (CLI, stack, testing) and the root."""
    return next((name for name in ALLOWED if module == name or module.startswith(name + ".")), None)


def imported(module: str, source: str, is_package: bool) -> list[str]:
    """The absolute names ``source`` (the text of ``module``) imports."""
    names = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = module.split(".")[: len(module.split(".")) - node.level + is_package]
                base = ".".join(parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            names += [f"{base}.{alias.name}" for alias in node.names]  # a name, or a module of the package
    return names


def violations(module: str, source: str, is_package: bool = False) -> list[str]:
    """The imports of ``module`` that go the wrong way, as 'module -> name' lines."""
    found = []
    own = layer(module)
    for name in imported(module, source, is_package):
        top = name.split(".")[0]
        if top in ROOMS and top != "espstream":
            found.append(f"{module} -> {name} (a room is espstream.{top}, never a top-level package)")
        elif own is not None and top == "espstream" and name not in ROOT_NAMES:
            target = layer(name)
            if target != own and target not in ALLOWED[own]:
                found.append(f"{module} -> {name} ({own} may import only {', '.join(ALLOWED[own]) or 'nothing of espstream'})")
    return found


def project_modules() -> list[tuple[str, Path]]:
    modules = []
    for folder, package in PACKAGES.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = path.relative_to(ROOT / folder).with_suffix("").parts
            modules.append((".".join((package, *parts)).removesuffix(".__init__"), path))
    return modules


def test_every_import_goes_the_right_way() -> None:
    found = [
        line
        for module, path in project_modules()
        for line in violations(module, path.read_text(), is_package=path.name == "__init__.py")
    ]
    assert found == []


@pytest.mark.parametrize("folder", ["tests", "benchmarks"])
def test_tests_and_benchmarks_import_the_rooms_as_installed(folder: str) -> None:
    found = [
        line
        for path in sorted((ROOT / folder).rglob("*.py"))
        for line in violations(f"{folder}.{path.stem}", path.read_text())
    ]
    assert found == []


@pytest.mark.parametrize(
    ("module", "source", "is_package"),
    [
        ("espstream.normalizer.service", "from espstream.consumers.metrics import serve", False),
        ("espstream.plumbing.batches", "from espstream.normalizer import normalize", False),
        ("espstream.schemas.avro", "import espstream.plumbing.config", False),
        ("espstream.gateway.app", "from espstream.cli import main", False),
        ("espstream.consumers", "from ..normalizer import normalize", True),
        ("espstream.consumers.tail", "from ..normalizer.core import normalize", False),
        ("tests.unit", "from schemas import raw", False),
        ("espstream.cli.dlq", "import consumers.redrive", False),
        ("espstream.normalizer.records", "from espstream import consumers", False),
    ],
)
def test_a_wrong_way_import_is_found(module: str, source: str, is_package: bool) -> None:
    assert violations(module, source, is_package)


@pytest.mark.parametrize(
    ("module", "source", "is_package"),
    [
        ("espstream.normalizer.service", "from espstream.plumbing.metrics import serve", False),
        ("espstream.normalizer.esps.postmark", "from ..errors import MalformedPayload", False),
        ("espstream.normalizer", "from .core import normalize", True),
        ("espstream.gateway.app", "from espstream import __version__", False),
        ("espstream.cli.dlq", "from espstream.consumers.redrive import redrive", False),
    ],
)
def test_a_right_way_import_passes(module: str, source: str, is_package: bool) -> None:
    assert violations(module, source, is_package) == []
