"""PipelineSpec: the typed, versioned pipeline every engine, target and runtime consumes.

- :mod:`.model`: the frozen dataclasses (``PipelineSpec``, ``StepSpec``, ``Parameter``,
  ``Metric``, ``Edge``, ``StepSettings`` …) with ``to_dict``/``to_json`` and
  ``PipelineSpec.from_dict``, which checks a document against the schema once;
- :mod:`.build`: the spec of a linked pipeline (``build_spec``) and a step's code;
- :mod:`.schema`: the JSON Schema shipped in the package and its compiled validator
  (``python -m cellpipe.core.spec`` regenerates ``core/spec_validator.py``).
"""

from cellpipe.core.kinds import NameKind, ParameterType, RandomStateUse, Split
from cellpipe.core.spec.build import PARAMETERS_GLOBAL, build_spec, spec_to_json, step_prelude
from cellpipe.core.spec.model import (
    SETTING_NAMES,
    SPEC_VERSION,
    CodeSpan,
    Edge,
    ImportedModule,
    Metric,
    NameOrigin,
    NotebookRef,
    Parameter,
    PipelineInfo,
    PipelineSpec,
    StepCell,
    StepFiles,
    StepSettings,
    StepSpec,
    freeze,
    thaw,
)
from cellpipe.core.spec.schema import (
    SCHEMA_FILE,
    inlined_schema,
    load_schema,
    validate_spec,
    validator_code,
)

__all__ = [
    "PARAMETERS_GLOBAL", "SCHEMA_FILE", "SETTING_NAMES", "SPEC_VERSION", "CodeSpan", "Edge",
    "ImportedModule", "Metric", "NameKind", "NameOrigin", "NotebookRef", "Parameter",
    "ParameterType", "PipelineInfo", "PipelineSpec", "RandomStateUse", "Split", "StepCell",
    "StepFiles", "StepSettings", "StepSpec", "build_spec", "freeze", "inlined_schema",
    "load_schema", "spec_to_json", "step_prelude", "thaw", "validate_spec", "validator_code",
]
