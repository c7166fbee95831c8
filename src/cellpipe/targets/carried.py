"""One image for every step, no build: the code travels with the pipeline.

With ``--image`` (or, when no ``--registry``/``--images`` is given, the pipeline's base
image) every step runs the same image, which must already hold cellpipe and the libraries
the steps import (``cellpipe requirements NB`` lists them). Each step's slice of the spec
travels in the compiled document: in the KFP component's code, or as Argo input artifacts
(``core.layout.CARRIED_SPEC``), started by :func:`start_script`, which says clearly what
to install when the image lacks cellpipe instead of Python's bare ``No module named``.
"""

from __future__ import annotations

from cellpipe import __version__

__all__ = ["missing_runtime_message", "runtime_requirement", "start_script"]


def runtime_requirement() -> str:
    """The requirement line of the cellpipe that compiled the pipeline."""
    return f"cellpipe=={__version__}"


def missing_runtime_message() -> str:
    """What a step started in an image without cellpipe prints before it exits."""
    return (f"cellpipe: this image has no cellpipe step runtime; install it in the image "
            f"(pip install '{runtime_requirement()}') with the libraries the steps import "
            "(`cellpipe requirements NOTEBOOK` lists them), or build per-step images with "
            "`cellpipe build NOTEBOOK --registry …`")


def start_script() -> str:
    """The Python file that starts a step's runtime in a shared image (Argo)."""
    return f'''\
"""cellpipe: start a step's runtime (compiled by cellpipe {__version__})."""
import sys

try:
    from cellpipe.runtime.__main__ import main
except ImportError as error:
    sys.stderr.write({missing_runtime_message()!r} + " (" + str(error) + ")\\n")
    sys.exit(2)
sys.exit(main(sys.argv[1:]))
'''
