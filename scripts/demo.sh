#!/usr/bin/env bash
# Set up cellpipe in a virtual environment and show it on a sample notebook.
# Usage: bash scripts/demo.sh [NOTEBOOK]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e .
NB=${1:-sample_notebooks/tabular_tags.ipynb}
export PATH="$PWD/.venv/bin:$PATH"

echo "== cellpipe lint $NB"
cellpipe lint "$NB"
echo
echo "== cellpipe graph $NB (mermaid)"
cellpipe graph "$NB"
mkdir -p build
cellpipe compile "$NB" -o "build/$(basename "$NB" .ipynb).pipeline.json"
echo
echo "The pipeline spec (steps, data edges, generated step code) is in build/."
echo "Running it on the local engine arrives with 'cellpipe run' (issue 3)."
