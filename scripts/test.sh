#!/usr/bin/env bash
# Install what the tests need and run every check: lint, types, import layers, tests.
# Usage: bash scripts/test.sh [extra pytest args]
set -euo pipefail
# The side panel ships prebuilt (src/cellpipe/labextension): no node build on install.
export SKIP_JUPYTER_BUILDER=1
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

# graphviz's `dot` renders `cellpipe graph --format svg`; install it so that path is tested.
if ! command -v dot >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  echo "== installing graphviz (apt)"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq graphviz >/dev/null) \
    || echo "warning: could not install graphviz; the SVG test checks the clear error instead"
fi

# The docker tests build and run real images: a daemon, a registry on 127.0.0.1:5000 and a
# local base image (no public registry is reachable here). Under CI=true this must work.
echo "== docker engine, registry and base image"
if ! bash scripts/docker_up.sh; then
  if [ "${CI:-}" = "true" ]; then
    echo "error: CI=true needs Docker for the docker tests (scripts/docker_up.sh failed)" >&2
    exit 1
  fi
  echo "warning: Docker is not available: the docker tests will skip and say why" >&2
fi
export CELLPIPE_TEST_BASE_IMAGE=${CELLPIPE_TEST_BASE_IMAGE:-cellpipe-base:bookworm}

# The browser tests drive JupyterLab in Debian's Chromium (no browser download works here).
if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  echo "== installing chromium (apt)"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
    || echo "warning: could not install chromium; the browser tests will say so"
fi

[ -x .venv/bin/python ] || "$PY" -m venv .venv
echo "== installing cellpipe[test] into .venv"
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[test]"
export PATH="$PWD/.venv/bin:$PATH"

echo "== ruff"
ruff check src kernel_ext tests benchmarks sample_notebooks
echo "== mypy (strict, src/)"
mypy
echo "== import layers"
# both top-level packages, even where an older editable install only knows src/
PYTHONPATH="$PWD/src:$PWD/kernel_ext${PYTHONPATH:+:$PYTHONPATH}" lint-imports
echo "== pytest"
set +e
python -m pytest -p no:cacheprovider "$@"
status=$?
set -e
# pytest exits 5 when it collected nothing: that is a failure here, not a pass.
if [ "$status" -eq 5 ]; then
  echo "error: pytest collected no tests" >&2
  exit 1
fi
exit "$status"
