#!/usr/bin/env bash
# The LLM release on a fresh machine, offline: install, train the two small causal LMs, run
# suites/llm/release.yaml. Prints the decision; the outputs land in llmguard-out/llm/. Exits 0
# when the run produced a decision (PROMOTE, REVIEW or BLOCK) and non-zero when something
# went wrong. The candidate is worse than the champion on purpose: expect BLOCK.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 DEEPEVAL_TELEMETRY_OPT_OUT=YES
# the models are tiny: one torch thread per process is faster than several competing ones
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
if [ ! -x .venv/bin/llmguard ] || ! .venv/bin/python -c "import llmguard_ops, torch, transformers, tokenizers" 2>/dev/null; then
    "$PYTHON" -m venv .venv
    .venv/bin/python -m pip install --quiet --upgrade pip
    .venv/bin/python -m pip install --quiet -c constraints/ci.txt -e ".[all]"
fi
.venv/bin/python suites/llm/train_models.py
# a local signing key for the demo; in CI keep the private key in the secret store
if [ ! -f .llmguard/keys/llmguard.key ]; then
    .venv/bin/llmguard keygen --out .llmguard/keys
fi
set +e
.venv/bin/llmguard run suites/llm/release.yaml --out llmguard-out/llm --key .llmguard/keys/llmguard.key "$@"
status=$?
set -e
case "$status" in
    0) echo "llm-demo: PROMOTE (exit 0)";;
    1) echo "llm-demo: BLOCK (exit 1)";;
    3) echo "llm-demo: REVIEW (exit 3)";;
    *) echo "llm-demo: error (exit $status)" >&2; exit "$status";;
esac
# A deploy step verifies the candidate alone (exit 0 only for a PROMOTE); the demo also
# accepts the champion and a REVIEW/BLOCK decision, which verify reports as accepted by flag.
.venv/bin/llmguard verify llmguard-out/llm/attestation.dsse.json --key .llmguard/keys/llmguard.pub \
    --artifact suites/llm/models/candidate --artifact suites/llm/models/champion \
    --role candidate --role baseline --allow-decision REVIEW --allow-decision BLOCK
echo "llm-demo: outputs in llmguard-out/llm/ (report.json, report.html, attestation.dsse.json, model_card.md, ...)"
