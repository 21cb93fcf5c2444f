"""The named mutations, one module per topic. Importing this package registers every one of
them in cases.MUTATIONS (the package's __init__ does)."""
from __future__ import annotations

from . import (
    conditionals,
    fields,
    framing,
    line_ends,
    pipelines,
    ranges,
    request_line,
    valid,
)
from .pipelines import BAD_MIDDLE

__all__ = ["BAD_MIDDLE", "conditionals", "fields", "framing", "line_ends", "pipelines",
           "ranges", "request_line", "valid"]
