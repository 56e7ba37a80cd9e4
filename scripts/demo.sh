#!/usr/bin/env bash
# The main job on a fresh machine: install, train the demo models, run the demo suite.
# Prints the decision; the outputs land in llmguard-out/. Exits 0 when the run produced a
# decision (PROMOTE, REVIEW or BLOCK) and non-zero when something went wrong.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/llmguard ] || ! .venv/bin/python -c "import llmguard_ops, sklearn" 2>/dev/null; then
    "$PYTHON" -m venv .venv
    .venv/bin/python -m pip install --quiet --upgrade pip
    .venv/bin/python -m pip install --quiet -c constraints/ci.txt -e ".[all]"
fi
.venv/bin/python suites/demo/train_models.py
set +e
.venv/bin/llmguard run suites/demo/suite.yaml --out llmguard-out "$@"
status=$?
set -e
case "$status" in
    0) echo "demo: PROMOTE (exit 0)";;
    1) echo "demo: BLOCK (exit 1)";;
    3) echo "demo: REVIEW (exit 3)";;
    *) echo "demo: error (exit $status)" >&2; exit "$status";;
esac
echo "demo: outputs in llmguard-out/ (report.json)"
