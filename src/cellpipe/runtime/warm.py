"""Imported by the local engine's warm server: builds what every step would build again.

Step processes fork from a server that preloaded modules. Building a validator is pure
Python that starts no threads, so doing it once in the server (not in each of N steps) is
safe for fork and saves about 50 ms per step (nbformat compiles its notebook schema).
"""

from __future__ import annotations

import nbformat.validator

from cellpipe.core.spec import _validator

nbformat.validator.get_validator(version=4, version_minor=nbformat.v4.nbformat_minor)
_validator()
