"""Imported by the local engine's warm server: builds what every step would build again.

Step processes fork from a server that preloaded modules; what each step would otherwise
build for itself is built here once, before any fork: the step's IPython shell (~80 ms),
the marshal format plugins (an entry-point scan, ~50 ms), the spec's compiled validator,
and the modules a step imports on its way (the local store, cloudpickle, the report
writer: ~8 ms a step otherwise). Nothing here starts a thread or opens a file that a fork
would share.
"""

from __future__ import annotations

import bdb  # noqa: F401 - imported by the shell's first cell
import encodings.ascii  # noqa: F401
import uuid  # noqa: F401

import cloudpickle  # noqa: F401
import IPython.core.logger  # noqa: F401

import cellpipe.core.spec_validator
import cellpipe.marshal.local
import cellpipe.runtime.report  # noqa: F401
from cellpipe.marshal.registry import REGISTRY
from cellpipe.runtime.execute import warm_shell

REGISTRY.plugins()
warm_shell()
