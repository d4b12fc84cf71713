"""``crmsync setup`` against a bare sandbox portal: creates the properties once, then nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from connector.cli import app
from connector.sandbox.hubspot import HubSpotSandbox
from connector.sandbox.hubspot.store import STAGE_PROPERTY

from .conftest import NOW, ROOT, TOKEN


def test_setup_creates_the_stage_property_then_is_idempotent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with HubSpotSandbox(contacts=3, token=TOKEN, now=NOW, with_stage_property=False) as bare:
        config = tmp_path / "config.toml"
        config.write_text(
            f'[paths]\nmappings = "{ROOT / "mappings"}"\njobs = "{tmp_path}"\nrules = "{ROOT / "mappings" / "lifecycle.toml"}"\n'
            f'[connections.portal]\ntype = "hubspot"\nbase_url = "{bare.url}"\ntoken_env = "TEST_HUBSPOT_TOKEN"\n'
        )
        monkeypatch.setenv("TEST_HUBSPOT_TOKEN", TOKEN)
        runner = CliRunner()
        first = runner.invoke(app, ["--config", str(config), "setup"])
        assert first.exit_code == 0, first.output
        assert "created crmsync_lifecycle_stage" in first.output
        assert STAGE_PROPERTY in bare.store.properties
        second = runner.invoke(app, ["--config", str(config), "setup"])
        assert second.exit_code == 0 and "already exists" in second.output
        assert bare.log.calls("properties.create") == 3
        assert TOKEN not in first.output + second.output
        monkeypatch.setenv("TEST_HUBSPOT_TOKEN", "wrong")
        refused = runner.invoke(app, ["--config", str(config), "setup"])
        assert refused.exit_code == 1
