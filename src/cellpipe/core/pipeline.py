"""The linked pipeline and :func:`link` (kept here: the names other modules import).

The work is in :mod:`cellpipe.core.linker` (the DAG), :mod:`cellpipe.core.resolve` (name
resolution in a step), :mod:`cellpipe.core.file_links` (files between steps) and
:mod:`cellpipe.core.linked` (the data they build).
"""

from __future__ import annotations

from cellpipe.core.linked import Edge, NameSource, Pipeline, Step
from cellpipe.core.linker import link

__all__ = ["Edge", "NameSource", "Pipeline", "Step", "link"]
