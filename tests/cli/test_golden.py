"""Golden files for rendered output over the fixture incident (pytest --update-golden to refresh)."""

from __future__ import annotations

import pytest

from tests.conftest import INCIDENT, check_golden, run_cli


@pytest.mark.parametrize("fmt", ["table", "markdown", "json"])
def test_search_golden(fmt, update_golden):
    args = ["search", "-s", INCIDENT, "--ip", "203.0.113.66", "-f", fmt]
    text = run_cli(args).stdout.replace(str(INCIDENT), "<fixtures>/incident")
    check_golden(f"search-attacker.{fmt}", text, update_golden)


@pytest.mark.parametrize("fmt", ["table", "markdown"])
def test_sources_golden(fmt, update_golden):
    text = run_cli(["sources", "-s", INCIDENT, "-f", fmt]).stdout
    check_golden(f"sources-incident.{fmt}", text, update_golden)
