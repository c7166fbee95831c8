"""The closed sets of names the analyzer and the spec share, each as a ``Literal``.

One owner for each: the plan cuts with a :data:`Split`, the parameters cell types its
values with :data:`ParameterType`, the linker tells where a name comes from with a
:data:`NameKind`, and the RNG lint says how a step uses the random state
(:data:`RandomStateUse`), a metrics cell's dict is a :data:`ClassificationKind` chart.
The spec's schema lists the same values.
"""

from __future__ import annotations

from typing import Literal

Split = Literal["tags", "headings", "cells", "none"]
SPLITS: tuple[Split, ...] = ("headings", "cells", "none")  # the cuts of an untagged notebook
ParameterType = Literal["int", "float", "str", "bool", "list", "dict", "none"]
NameKind = Literal["value", "parameter", "import", "definition", "skip"]
RandomStateUse = Literal["draws", "seeds"]
ClassificationKind = Literal["confusion_matrix", "roc_curve"]

__all__ = ["SPLITS", "ClassificationKind", "NameKind", "ParameterType", "RandomStateUse", "Split"]
