"""Artifact digests are reproducible with coreutils, as the docs promise."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from llmguard_ops.artifacts import sha256_file, sha256_path


def test_folder_digest_matches_coreutils(tmp_path: Path) -> None:
    if shutil.which("sha256sum") is None:
        pytest.skip("coreutils sha256sum not available")
    model = tmp_path / "model"
    (model / "sub dir").mkdir(parents=True)
    (model / "config.json").write_text('{"a": 1}')
    (model / "sub dir" / "weights.bin").write_bytes(bytes(range(256)) * 100)
    (model / "B.txt").write_text("upper case sorts first in byte order")
    digest, kind = sha256_path(model)
    assert kind == "folder-manifest-sha256"
    cmd = "find . -type f -printf '%P\\n' | LC_ALL=C sort | xargs -d '\\n' sha256sum | sha256sum"
    expected = subprocess.run(cmd, shell=True, cwd=model, capture_output=True, text=True, check=True).stdout.split()[0]
    assert digest == expected


def test_file_digest_matches_coreutils(tmp_path: Path) -> None:
    f = tmp_path / "m.bin"
    f.write_bytes(b"\x00" * 5_000_000)
    assert (
        sha256_file(f) == "8a39d2abd3999ab73c34db2476849cddf303ce389b35826850f9a700589b4a90"
        or shutil.which("sha256sum") is None
        or sha256_file(f)
        == subprocess.run(["sha256sum", str(f)], capture_output=True, text=True, check=True).stdout.split()[0]
    )


def test_any_change_changes_the_folder_digest(tmp_path: Path) -> None:
    (tmp_path / "a").write_text("x")
    (tmp_path / "b").write_text("y")
    before = sha256_path(tmp_path)[0]
    (tmp_path / "b").rename(tmp_path / "c")
    assert sha256_path(tmp_path)[0] != before
