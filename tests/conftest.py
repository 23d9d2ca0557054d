"""Shared test helpers: paths, the CLI helper, golden files, real-data skips."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "fixtures"
INCIDENT = FIXTURES / "incident"
SHAPES = FIXTURES / "shapes"
BROKEN = FIXTURES / "broken"
GOLDEN = Path(__file__).resolve().parent / "golden"
SHARED_DATA = Path(os.environ.get("SLEUTH_SHARED_DATA", ROOT.parent / "shared" / "data"))


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-golden", action="store_true", help="Rewrite golden files from current output.")


@pytest.fixture
def update_golden(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-golden"))


def shared(name: str) -> Path:
    """A folder of ../shared/data, or a skip with the reason when this clone has none."""
    path = SHARED_DATA / name
    if not path.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{path} is missing in CI, where ../shared/data must be present")
        pytest.skip(f"{path} not present (real data lives in ../shared/data beside the clone)")
    return path


@click.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True, "help_option_names": []})
@click.pass_context
def _entry(ctx: click.Context) -> None:
    from sleuth.cli import main

    main(list(ctx.args))


def run_cli(args: list[str], exit_code: int = 0, env: dict | None = None) -> Result:
    """Run sleuth's real entry point in-process; assert the exit code, showing the output when it differs."""
    environment = {"COLUMNS": "120", "NO_COLOR": "1", "SLEUTH_SOURCES": "", **(env or {})}
    result = CliRunner().invoke(_entry, [str(a) for a in args], env=environment, catch_exceptions=False)
    assert result.exit_code == exit_code, (
        f"sleuth {' '.join(map(str, args))} exited {result.exit_code}, expected {exit_code}\n"
        f"--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
    )
    return result


def check_golden(name: str, text: str, update: bool) -> None:
    path = GOLDEN / name
    if update or not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        if not update:
            pytest.fail(f"golden file {name} was missing and has been written: check it and re-run")
    assert text == path.read_text(encoding="utf-8"), f"output differs from {path} (pytest --update-golden)"


def raw_records(folder: Path) -> list[dict]:
    """Every record of the CloudTrail files under `folder`, read with the standard library (an oracle)."""
    records = []
    for path in [folder] if folder.is_file() else sorted(folder.rglob("*.json*")):
        data = path.read_bytes()
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
        document = json.loads(data)
        records.extend(document.get("Records", []) if isinstance(document, dict) else document)
    return records
