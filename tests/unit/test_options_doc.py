"""docs/options.md is made from config.py's table by evserver/tools/optionsdoc.py: it must be
the file that command makes now."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from evserver import cmdline, config
from evserver.options import GROUPS
from evserver.tools import optionsdoc

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "options.md"


def test_docs_options_md_is_up_to_date() -> None:
    assert DOC.read_text(encoding="utf-8") == optionsdoc.render(), (
        f"docs/options.md is stale: run `{optionsdoc.COMMAND}` from the repository root")


def test_the_command_prints_the_reference() -> None:
    made = subprocess.run([sys.executable, "-m", "evserver.tools.optionsdoc"], cwd=REPO,
                          capture_output=True, text=True, timeout=30, check=True)
    assert made.stdout == optionsdoc.render()
    assert optionsdoc.COMMAND == "python3 -m evserver.tools.optionsdoc > docs/options.md"


def test_every_option_has_a_row_in_its_group() -> None:
    """A row per option under its group's heading, with its flags, key, default and help."""
    doc = optionsdoc.render()
    sections = {part.split("\n", 1)[0]: part for part in doc.split("\n## ")[1:]}
    for opt in config.OPTIONS:
        section = sections[GROUPS[opt.group]]
        row = next((line for line in section.splitlines()
                    if line.startswith("| ") and f"`{opt.long}" in line), None)
        assert row is not None, opt.long
        assert f"`{opt.key}`" in row and cmdline.help_text(opt).replace("|", "\\|") in row
        assert row.count(" | ") == 3, row  # four cells: none is empty but the default's
    for flag in cmdline.FLAGS:
        assert f"`{flag.long}" in sections[GROUPS[flag.group]], flag.long


def test_defaults_are_stated_and_do_not_depend_on_this_machine() -> None:
    """The defaults that depend on where and on what it runs are described, not printed."""
    doc = optionsdoc.render()
    assert "| **`-p PORT`, `--port PORT`** | `port` (integer) | `8080` |" in doc
    assert "min(32, CPUs + 4)" in doc
    assert str(REPO) not in doc


def test_the_file_rules_name_the_special_keys() -> None:
    doc = optionsdoc.render().split("## The TOML file", 1)[1]
    for text in ('`workers = "auto"`', "`no-log = true`", "`[mime-types]`", "`root`",
                 "`auth-file`", "`header`", "`recv_size`"):
        assert text in doc, text
