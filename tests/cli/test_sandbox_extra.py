"""``crmsync demo`` / ``crmsync sandbox`` without the sandbox extra, and the sandbox folder's hygiene."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from connector.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]

WITHOUT_EXTRA = """
import sys
for name in ("faker", "trustme", "uvicorn", "starlette", "lark"):
    sys.modules[name] = None  # as if not installed: importing it raises ImportError
from connector.cli import run
sys.argv = ["crmsync", *sys.argv[1:]]
run()
"""


@pytest.mark.parametrize("command", ["demo", "sandbox"])
def test_without_the_extra_one_line_says_how_to_install_it(command: str, tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_EXTRA, command, "--dir", str(tmp_path / "x")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )

    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        'error: the sandbox CRMs are not installed: pip install "crmsync[sandbox]" (or ".[sandbox]" from a clone)'
    ]
    assert done.stdout == ""


def test_a_restarted_sandbox_folder_loses_the_old_store_but_a_foreign_folder_is_refused(tmp_path: Path) -> None:
    from connector.cli.demo import CONFIG_MARKER, prepare_folder

    ours = tmp_path / "ours"
    ours.mkdir()
    (ours / "config.toml").write_text(f"{CONFIG_MARKER} Secrets come from the environment.\n")
    for name in ("crmsync.db", "crmsync.db-wal", "crmsync.db-shm"):
        (ours / name).write_bytes(b"old checkpoints")
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "config.toml").write_text('[store]\nurl = "sqlite:///crmsync.db"\n')
    (theirs / "crmsync.db").write_bytes(b"a real store")

    assert prepare_folder(ours) is True
    assert sorted(p.name for p in ours.iterdir()) == ["config.toml"]
    assert prepare_folder(tmp_path / "new") is False
    with pytest.raises(ConfigError, match="did not write for the sandbox"):
        prepare_folder(theirs)
    assert (theirs / "crmsync.db").read_bytes() == b"a real store"
