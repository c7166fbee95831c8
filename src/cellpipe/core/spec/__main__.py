"""``python -m cellpipe.core.spec``: regenerate the compiled validator after changing the schema."""

from pathlib import Path

from cellpipe.core.spec.schema import validator_code

target = Path(__file__).resolve().parents[1] / "spec_validator.py"
target.write_text(validator_code(), encoding="utf-8")
print(f"wrote {target}")
