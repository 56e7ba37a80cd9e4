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
# a local signing key for the demo; in CI keep the private key in the secret store
if [ ! -f .llmguard/keys/llmguard.key ]; then
    .venv/bin/llmguard keygen --out .llmguard/keys
fi
set +e
.venv/bin/llmguard run suites/demo/suite.yaml --out llmguard-out --key .llmguard/keys/llmguard.key "$@"
status=$?
set -e
case "$status" in
    0) echo "demo: PROMOTE (exit 0)";;
    1) echo "demo: BLOCK (exit 1)";;
    3) echo "demo: REVIEW (exit 3)";;
    *) echo "demo: error (exit $status)" >&2; exit "$status";;
esac
# A deploy step verifies the candidate alone (exit 0 only for a PROMOTE); the demo also
# accepts the baseline and a REVIEW/BLOCK decision, which verify reports as accepted by flag.
.venv/bin/llmguard verify llmguard-out/attestation.dsse.json --key .llmguard/keys/llmguard.pub \
    --artifact suites/demo/models/candidate.skops --artifact suites/demo/models/champion.skops \
    --role candidate --role baseline --allow-decision REVIEW --allow-decision BLOCK
echo "demo: outputs in llmguard-out/ (report.json, report.html, attestation.dsse.json, junit.xml, summary.md, model_card.md)"
