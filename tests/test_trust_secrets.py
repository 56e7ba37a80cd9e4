"""A planted secret appears in no output after a model raises an error that contains it.

Two secrets: one the suite interpolates with ``${VAR}`` (an API key handed to the model),
one only present in a secret-looking environment variable (``*_TOKEN``). The model's
exception message and a printed line carry both; every file of the run folder, the run
history, stdout and stderr of the real CLI must hold neither, in any spelling.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from llmguard_ops.redact import MASK, Redactor, for_text
from trust_support import project, run_cli


def test_a_secret_in_a_model_error_reaches_no_output(tmp_path: Path) -> None:
    api_key = "sk-" + secrets.token_hex(20)
    token = "tok_" + secrets.token_hex(12)
    suite = project(
        tmp_path,
        predict=(
            "import os, sys\n"
            "print('calling endpoint with', os.environ['TRUST_API_KEY'], file=sys.stderr)\n"
            "raise RuntimeError('HTTP 401 {\"error\": \"bad key ' + os.environ['TRUST_API_KEY'] + "
            "'\", \"session\": \"' + os.environ['SERVICE_TOKEN'] + '\"}')"
        ),
    )
    # the suite names the key as ${VAR}: its value is a secret of this run
    text = suite.read_text().replace("name: trust\n", 'name: trust\nmetadata: {key: "${TRUST_API_KEY}"}\n')
    suite.write_text(text)
    history = tmp_path / "history"
    out = tmp_path / "out"
    ran = run_cli(
        suite,
        out,
        "--dev-key",
        env={
            "TRUST_API_KEY": api_key,
            "SERVICE_TOKEN": token,
            "LLMGUARD_HISTORY_DIR": str(history),
        },
    )
    assert ran.code == 1, ran.err
    result = ran.report["checks"][0]
    assert result["status"] == "error" and MASK in result["error"]["message"]
    files = [p for p in [*out.rglob("*"), *history.rglob("*")] if p.is_file()]
    names = {p.name for p in files}
    assert {"report.json", "attestation.dsse.json", "junit.xml", "report.html", "summary.md"} <= names
    assert any(p.parent == history for p in files), "the run history was written"
    import base64

    for secret in (api_key, token):
        spellings = [secret.encode(), base64.b64encode(secret.encode())[:24]]
        for path in files:
            blob = path.read_bytes()
            # the attestation's payload is base64: decode it and look inside too
            if path.name == "attestation.dsse.json":
                import json

                blob += base64.b64decode(json.loads(blob)["payload"])
            for needle in spellings:
                assert needle not in blob, f"secret leaked into {path}"
        assert secret not in ran.out and secret not in ran.err
    assert MASK in ran.err  # the printed line was masked, not dropped


def test_the_redactor_masks_references_and_secret_names_only() -> None:
    env = {
        "MY_API_KEY": "abcdef123456",
        "DB_PASSWORD": "hunter22hunter",
        "HOME": "/root",
        "COLOR": "bluebluebluee",
        "SHORT_TOKEN": "abc",
        "DATA": "not-a-name-secret",
    }
    redactor = for_text("path: ${DATA}/x.csv\n", env)
    masked = redactor.text("k=abcdef123456 p=hunter22hunter c=bluebluebluee d=not-a-name-secret t=abc")
    assert masked == f"k={MASK} p={MASK} c=bluebluebluee d={MASK} t=abc"
    assert redactor.data({"abcdef123456": ["x hunter22hunter"]}) == {MASK: [f"x {MASK}"]}
    assert not Redactor(["/"])  # existing paths and short values are not secrets
    # a webhook token pasted with its trailing newline is masked in a traceback line
    assert Redactor(["whk_0123456789\n"]).text("Authorization: Bearer whk_0123456789") == (
        f"Authorization: Bearer {MASK}"
    )
