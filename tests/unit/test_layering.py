"""DESIGN.md's import table, enforced by reading evserver/*.py with `ast`."""
from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "evserver"
MODULES = sorted(p.stem for p in PACKAGE.glob("*.py"))

# module -> the evserver modules it may import (DESIGN.md §2)
ALLOWED: dict[str, set[str]] = {
    "__init__": set(),
    "config": set(),
    "http11": set(),
    "loop": set(),
    "log": set(),
    "semantics": {"http11"},  # pure RFC 9110 decisions: preconditions, ranges, encodings
    "listing": set(),  # directory pages, rendered in the pool
    "files": {"http11", "config", "listing"},
    "connection": {"config", "http11", "files", "log", "loop", "semantics", "status",
                   "proxyproto", "auth"},
    "proxyproto": set(),  # PROXY protocol preambles and X-Forwarded-For
    "auth": set(),  # Basic authentication, password hashes, the failure limiter
    "status": set(),  # the status page: counters and their rendering
    # server: anything but __main__
    "server": {"__init__", "config", "http11", "files", "log", "loop", "connection",
               "semantics", "listing", "status", "auth"},
    "workers": {"config"},  # the --workers supervisor: fork, forward signals, restart
    "stats": {"log"},  # `evserver stats LOGFILE`: reads the formats log.py writes
    "qr": set(),  # the banner's QR code
    "selfsigned": set(),  # --tls-self-signed, with the optional cryptography package
    "__main__": {"config", "server", "log", "workers", "stats", "qr", "auth", "selfsigned"},
}
FORBIDDEN_STDLIB = {"asyncio", "http.server", "socketserver", "wsgiref", "http.client"}


def imports_of(module: str) -> tuple[set[str], set[str]]:
    """(evserver modules, other top-level dotted names) that `module` imports anywhere,
    including inside functions and `if TYPE_CHECKING:` blocks."""
    tree = ast.parse((PACKAGE / f"{module}.py").read_text(), filename=f"{module}.py")
    internal: set[str] = set()
    external: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "evserver" or alias.name.startswith("evserver."):
                    internal.add(alias.name.partition(".")[2] or "__init__")
                else:
                    external.add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level > 0 or (node.module or "").split(".")[0] == "evserver":
                base = node.module or ""
                if node.level == 0:
                    base = base.partition(".")[2]
                if base:
                    internal.add(base.split(".")[0])
                else:  # `from . import x` names modules
                    internal.update(alias.name for alias in node.names)
            else:
                assert node.module is not None
                external.add(node.module)
                external.update(f"{node.module}.{alias.name}" for alias in node.names)
    return internal, external


def test_every_module_is_in_the_table() -> None:
    """A new module must be placed in the layering table (and DESIGN.md) on purpose."""
    assert set(MODULES) <= set(ALLOWED), set(MODULES) - set(ALLOWED)
    assert {"config", "http11", "loop", "log", "files", "connection", "server"} <= set(MODULES)


@pytest.mark.parametrize("module", MODULES)
def test_imports_follow_the_table(module: str) -> None:
    """Each module imports only the evserver modules DESIGN.md allows it."""
    internal, _ = imports_of(module)
    internal.discard(module)
    assert internal <= ALLOWED[module], f"{module} imports {sorted(internal - ALLOWED[module])}"


# The one optional package: issue 7's --tls-self-signed uses `cryptography` when it is
# installed (imported inside the function, an ImportError is a one-line message).
OPTIONAL = {"selfsigned": {"cryptography"}}


@pytest.mark.parametrize("module", MODULES)
def test_stdlib_only(module: str) -> None:
    """Only the standard library at run time: no third-party package."""
    _, external = imports_of(module)
    third_party = {name for name in external
                   if name.split(".")[0] not in sys.stdlib_module_names
                   and name.split(".")[0] not in OPTIONAL.get(module, set())}
    assert not third_party, f"{module} imports {sorted(third_party)}"


def test_the_optional_package_is_imported_lazily() -> None:
    """`import evserver.selfsigned` works without cryptography: it is imported only inside
    the function that needs it."""
    tree = ast.parse((PACKAGE / "selfsigned.py").read_text())
    top_level = {alias.name for node in tree.body if isinstance(node, ast.Import)
                 for alias in node.names}
    top_level |= {node.module or "" for node in tree.body if isinstance(node, ast.ImportFrom)}
    assert not {name for name in top_level if name.startswith("cryptography")}


@pytest.mark.parametrize("module", MODULES)
def test_no_forbidden_stdlib(module: str) -> None:
    """No asyncio, http.server or other ready-made server machinery."""
    _, external = imports_of(module)
    hits = {name for name in external
            if any(name == bad or name.startswith(bad + ".") for bad in FORBIDDEN_STDLIB)}
    assert not hits, f"{module} imports {sorted(hits)}"


def test_checker_sees_every_import_form(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The walker catches relative, absolute, nested and `from . import` forms."""
    source = ("import os\n"
              "from . import loop\n"
              "from .files import load\n"
              "import evserver.connection\n"
              "from evserver.server import Server\n"
              "from http import server\n"
              "def f():\n"
              "    import asyncio\n"
              "    import requests\n")
    (tmp_path / "probe.py").write_text(source)
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", tmp_path)
    internal, external = imports_of("probe")
    assert internal == {"loop", "files", "connection", "server"}
    assert {"os", "asyncio", "requests", "http.server"} <= external
