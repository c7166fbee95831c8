#!/usr/bin/env bash
# Set up cellpipe in a virtual environment and show it on a sample notebook.
# Usage: bash scripts/demo.sh [NOTEBOOK]
set -euo pipefail
# The side panel ships prebuilt (src/cellpipe/labextension): no node build on install.
export SKIP_JUPYTER_BUILDER=1
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[arrow,report]" scikit-learn pandas matplotlib
NB=${1:-sample_notebooks/tabular_tags.ipynb}
export PATH="$PWD/.venv/bin:$PATH"

echo "== cellpipe lint $NB"
cellpipe lint -q "$NB"
echo
echo "== cellpipe graph $NB (mermaid)"
cellpipe graph "$NB"
echo
echo "== cellpipe run $NB   (each step a process; independent steps in parallel)"
cellpipe run "$NB"
echo
echo "== cellpipe run $NB -p C=0.5   (only the steps that read C, and what follows, run again)"
cellpipe run "$NB" -p C=0.5
echo
echo "== cellpipe runs $NB"
cellpipe runs "$NB"
