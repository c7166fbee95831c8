"""Imported by the local engine's warm server: loads what every step would load again.

Step processes fork from a server that preloaded modules; the spec's compiled validator
(a large generated module) is loaded once there, not in each of N steps.
"""

from __future__ import annotations

import cellpipe.core.spec_validator  # noqa: F401
