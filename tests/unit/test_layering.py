"""DESIGN.md's import table, enforced by reading evserver/*.py with `ast`."""
from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "evserver"
# "tools.stats" for evserver/tools/stats.py; "tools" for its __init__.py.
MODULES = sorted(".".join(p.relative_to(PACKAGE).with_suffix("").parts).removesuffix(".__init__")
                 for p in PACKAGE.rglob("*.py"))

# module -> the evserver modules it may import (DESIGN.md §2)
ALLOWED: dict[str, set[str]] = {
    "__init__": set(),
    "options": {"auth"},  # how an option is declared and its values checked
    "config": {"options", "auth"},  # the option table and its checks (the disk's too)
    "cmdline": {"config", "options", "__init__"},  # flags and TOML, derived from the table
    "http11": set(),
    "loop": set(),
    "log": set(),
    "semantics": {"http11"},  # pure RFC 9110 decisions: preconditions, ranges, encodings
    "listing": set(),  # directory pages, rendered in the pool
    "files": {"http11", "config", "listing", "semantics"},
    "cache": {"files"},
    "site": {"config", "auth", "files"},
    "responses": {"http11", "semantics", "files", "site", "addresses", "status"},
    "outgoing": {"config", "files", "loop"},
    "opening": {"proxyproto"},
    "phases": {"loop"},
    "connection": {"config", "http11", "files", "cache", "log", "loop", "status", "auth",
                   "addresses", "responses", "outgoing", "opening", "site", "phases"},
    "proxyproto": {"addresses"},  # PROXY protocol preambles
    "auth": set(),  # Basic authentication, password hashes, the failure limiter
    "status": set(),  # the status page: counters and their rendering
    # server: anything but __main__
    "server": {"config", "files", "cache", "log", "loop", "connection", "site", "status",
               "auth", "phases"},
    "workers": {"config"},  # the --workers supervisor: fork, forward signals, restart
    "tools": set(),  # commands that never run while serving
    "tools.stats": set(),  # `evserver stats LOGFILE`: reads the formats log.py writes
    "tools.qr": set(),  # the banner's QR code
    "tools.passwords": {"auth"},  # `evserver hash-password`
    "tools.optionsdoc": {"config", "options", "cmdline"},  # docs/options.md
    "addresses": set(),  # networks, trusted proxies, X-Forwarded-For
    "selfsigned": set(),  # --tls-self-signed, with the optional cryptography package
    "__main__": {"cmdline", "config", "server", "log", "workers", "tools.stats", "tools.qr",
                 "tools.passwords", "selfsigned"},
}
FORBIDDEN_STDLIB = {"asyncio", "http.server", "socketserver", "wsgiref", "http.client"}


def source_of(module: str) -> Path:
    parts = module.split(".")
    path = PACKAGE.joinpath(*parts)
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


def imports_of(module: str) -> tuple[set[str], set[str]]:
    """(evserver modules, other top-level dotted names) that `module` imports anywhere,
    including inside functions and `if TYPE_CHECKING:` blocks. evserver modules are named
    as in MODULES ("tools.qr"); a relative import is resolved from the module's package."""
    path = source_of(module)
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    if module == "__init__":
        package = []
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
                if node.level == 0:
                    base = (node.module or "").split(".")[1:]
                else:
                    base = package[:len(package) - (node.level - 1)] + (
                        node.module.split(".") if node.module else [])
                if node.module:
                    internal.add(".".join(base) or "__init__")
                else:  # `from . import x` names modules
                    internal.update(".".join([*base, alias.name]) for alias in node.names)
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
    tree = ast.parse(source_of("selfsigned").read_text())
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


def test_checker_resolves_relative_imports_in_a_subpackage(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`from ..auth import x` in tools/passwords.py is `auth`; `from . import qr` there is
    `tools.qr`."""
    (tmp_path / "tools").mkdir()
    (tmp_path / "tools" / "probe.py").write_text("from ..auth import x\nfrom . import qr\n"
                                                 "from .stats import y\n")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", tmp_path)
    internal, _ = imports_of("tools.probe")
    assert internal == {"auth", "tools.qr", "tools.stats"}
