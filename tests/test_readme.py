"""The README's examples stay true: every `sleuth ...` command in it runs on the fixtures."""

from __future__ import annotations

import re
import shlex

import pytest

from tests.conftest import ROOT, run_cli

README = (ROOT / "README.md").read_text(encoding="utf-8")
BLOCKS = re.findall(r"```sh\n(.*?)```", README, flags=re.S)


def sleuth_commands() -> list[list[str]]:
    commands = []
    for block in BLOCKS:
        for line in block.splitlines():
            for part in line.split("&&"):
                words = shlex.split(part, comments=True)
                if words and words[0] == "sleuth":
                    commands.append(words[1:])
    return commands


def test_quick_start_is_two_commands():
    quick = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    assert len(re.findall(r"```sh\n(.*?)```", quick, flags=re.S)) == 2
    assert "pytest" in quick


@pytest.mark.parametrize("args", sleuth_commands(), ids=" ".join)
def test_readme_command_runs(args, tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    args = [str(tmp_path / "case") if a == "case" else a for a in args]
    # Files a command writes (-o) go to the test's folder, never into the checkout.
    args = [str(tmp_path / a) if i and args[i - 1] in ("-o", "--output") and a != str(tmp_path / "case") else a
            for i, a in enumerate(args)]  # fmt: skip
    if args[0] != "ingest" and str(tmp_path / "case") in args:
        run_cli(["ingest", "-q", "-s", "fixtures/incident", "-o", tmp_path / "case"])
    result = run_cli(args)
    assert result.stdout.strip() or result.stderr.strip()
