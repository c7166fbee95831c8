"""Imported by the local engine's warm server: builds what every step would build again.

Step processes fork from a server that preloaded modules; what each step would otherwise
build for itself is built here once, before any fork: the step's IPython shell (~80 ms),
the marshal format plugins (an entry-point scan, ~50 ms) and the spec's compiled
validator. Nothing here starts a thread or opens a file that a fork would share.
"""

from __future__ import annotations

import cellpipe.core.spec_validator  # noqa: F401
from cellpipe.marshal.registry import REGISTRY
from cellpipe.runtime.execute import warm_shell

REGISTRY.plugins()
warm_shell()
