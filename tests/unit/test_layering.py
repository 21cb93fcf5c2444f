"""The module table of docs/architecture.md, enforced by reading evserver/ with `ast`.

The document is the one place the layering is written down: this test parses its table
(between the `layering table` markers) and checks every import in evserver/ against it."""
from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "evserver"
ARCHITECTURE = REPO / "docs" / "architecture.md"
# "tools.stats" for evserver/tools/stats.py; "tools" for its __init__.py.
MODULES = sorted(".".join(p.relative_to(PACKAGE).with_suffix("").parts).removesuffix(".__init__")
                 for p in PACKAGE.rglob("*.py"))


def layering_table(text: str) -> dict[str, set[str]]:
    """module -> the evserver modules it may import, from the Markdown table between the
    markers; a row is: module in backticks | its job | the modules it may import, each in
    backticks (a dash: none)."""
    start = text.index("<!-- layering table")
    end = text.index("<!-- end of layering table -->")
    table: dict[str, set[str]] = {}
    for line in text[start:end].splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) != 3 or not re.fullmatch(r"`[\w.]+`", cells[0]):
            continue  # the markers, the header and its rule
        module = cells[0].strip("`")
        assert module not in table, f"{module} is in the table twice"
        table[module] = set(re.findall(r"`([\w.]+)`", cells[2]))
    return table


ALLOWED = layering_table(ARCHITECTURE.read_text(encoding="utf-8"))
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


def test_the_table_names_exactly_the_modules() -> None:
    """A new module must be placed in the table on purpose; a gone one leaves it."""
    assert set(MODULES) - set(ALLOWED) == set(), "modules missing from docs/architecture.md"
    assert set(ALLOWED) - set(MODULES) == set(), "rows of docs/architecture.md with no module"
    assert {"config", "http11", "loop", "log", "files", "connection", "server"} <= set(MODULES)


def test_the_table_has_no_cycle() -> None:
    """The layering is a partial order: following "may import" never comes back."""
    done: set[str] = set()

    def visit(module: str, path: tuple[str, ...]) -> None:
        assert module not in path, " -> ".join((*path, module))
        if module not in done:
            for imported in ALLOWED.get(module, set()):
                visit(imported, (*path, module))
            done.add(module)

    for module in ALLOWED:
        visit(module, ())


def test_the_table_reader_reads_rows_and_dashes() -> None:
    text = ("<!-- layering table -->\n| module | job | may import |\n|---|---|---|\n"
            "| `a` | the job, with `code` | `b`, `c.d` |\n| `b` | leaf | — |\n"
            "<!-- end of layering table -->\n| `z` | outside | `a` |\n")
    assert layering_table(text) == {"a": {"b", "c.d"}, "b": set()}


@pytest.mark.parametrize("module", MODULES)
def test_imports_follow_the_table(module: str) -> None:
    """Each module imports only the evserver modules docs/architecture.md allows it."""
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
