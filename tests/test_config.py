"""sleuth.toml: defaults, overrides, and a clear error (exit 2) for every setting sleuth cannot use."""

from __future__ import annotations

import dataclasses

import pytest

from sleuth.config import Config, load_config
from sleuth.errors import ConfigError, ExitCode
from tests.conftest import run_cli


@pytest.fixture
def here(tmp_path, monkeypatch):
    """A working directory of its own, and no $SLEUTH_CONFIG from the environment."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SLEUTH_CONFIG", raising=False)
    return tmp_path


def write(folder, text: str, name: str = "sleuth.toml"):
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def error_of(folder, text: str) -> ConfigError:
    write(folder, text)
    with pytest.raises(ConfigError) as caught:
        load_config()
    assert caught.value.exit_code == ExitCode.USAGE
    assert "sleuth.toml" in caught.value.message and caught.value.fix
    return caught.value


def test_defaults_without_a_file(here):
    assert load_config() == Config()


def test_a_valid_file_overrides_the_defaults(here):
    write(
        here,
        """
        sources = ["../ct.json", "s3://bucket/AWSLogs/"]
        max_files = 5_000
        workers = 0
        key_date_slack_days = 0
        vpc_format = "version account-id srcaddr dstaddr"
        table_max_cell = 120
        """,
    )
    config = load_config()
    assert config.sources == ("../ct.json", "s3://bucket/AWSLogs/")
    assert (config.max_files, config.workers, config.key_date_slack_days) == (5_000, 0, 0)
    assert config.vpc_format == "version account-id srcaddr dstaddr"
    assert config.table_max_cell == 120
    assert config.batch_files == Config().batch_files  # the rest stays at the defaults


def test_an_empty_file_gives_the_defaults(here):
    write(here, "# nothing set\n")
    assert load_config() == Config()


def test_an_unknown_setting(here):
    error = error_of(here, "max_filez = 10\n")
    assert "max_filez" in error.message
    assert "max_files" in error.fix


def test_a_string_for_sources(here):
    error = error_of(here, 'sources = "../ct.json"\n')
    assert "sources" in error.message and '"../ct.json"' in error.message
    assert "a string" in error.message and "a list of strings" in error.message
    assert 'sources = ["../ct.json"]' in error.fix


def test_sources_that_are_not_all_strings(here):
    error = error_of(here, 'sources = ["a", 3]\n')
    assert "sources" in error.message and "a list of strings" in error.message


def test_a_bool_for_an_int(here):
    error = error_of(here, "max_files = true\n")
    assert "max_files = true" in error.message and "a boolean" in error.message
    assert "whole number" in error.message


@pytest.mark.parametrize(
    "text",
    [
        "max_files = -1",
        "max_record_bytes = 0",
        "batch_files = 0",
        "batch_bytes = -5",
        "s3_max_parallel = 0",
        "table_max_cell = 0",
        "gap_min_hours = -2",
        "max_decompressed_bytes = 0",
        "max_json_depth = 0",
    ],
)
def test_a_limit_that_must_be_positive(here, text):
    name = text.split(" = ")[0]
    error = error_of(here, text + "\n")
    assert text in error.message and "at least 1" in error.message
    assert name in error.fix


@pytest.mark.parametrize("text", ["workers = -1", "key_date_slack_days = -1"])
def test_counts_that_may_be_zero_but_not_negative(here, text):
    error = error_of(here, text + "\n")
    assert text in error.message and "at least 0" in error.message


@pytest.mark.parametrize(
    ("text", "given"),
    [
        ("batch_files = 2.5", "a decimal number"),
        ('batch_files = "24"', "a string"),
        ("workers = [1]", "a list"),
        ("vpc_format = 2", "a whole number"),
        ('vpc_format = ["version"]', "a list"),
        ("gap_min_hours = 2026-03-03", "a date"),
        ("table_max_cell = { n = 1 }", "a table"),
    ],
)
def test_wrong_types(here, text, given):
    error = error_of(here, text + "\n")
    assert text.split(" = ")[0] in error.message and given in error.message


def test_invalid_toml(here):
    error = error_of(here, "sources = [\n")
    assert "cannot read" in error.message and "TOML" in error.fix


def test_sleuth_config_names_the_file(here, monkeypatch):
    (here / "elsewhere").mkdir()
    path = write(here / "elsewhere", "max_files = 7\n", "my.toml")
    write(here, "max_files = 3\n")  # the working directory's file is not read when $SLEUTH_CONFIG is set
    monkeypatch.setenv("SLEUTH_CONFIG", str(path))
    assert load_config().max_files == 7
    assert load_config(here / "sleuth.toml").max_files == 3  # an explicit path comes first


def test_sleuth_config_errors_name_that_file(here, monkeypatch):
    path = write(here, "workers = false\n", "other.toml")
    monkeypatch.setenv("SLEUTH_CONFIG", str(path))
    with pytest.raises(ConfigError) as caught:
        load_config()
    assert str(path) in caught.value.message and "workers = false" in caught.value.message


def test_sleuth_config_naming_a_missing_file(here, monkeypatch):
    monkeypatch.setenv("SLEUTH_CONFIG", str(here / "missing.toml"))
    with pytest.raises(ConfigError, match=r"missing\.toml"):
        load_config()


def test_a_missing_explicit_path(here):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(here / "nope.toml")


def test_every_setting_can_be_set_to_its_default(here):
    """Each field of Config has a type the checks know (a new field with another type fails here)."""
    lines = []
    for field in dataclasses.fields(Config):
        value = getattr(Config(), field.name) if field.default is not dataclasses.MISSING else field.default_factory()
        if isinstance(value, tuple):
            lines.append(f"{field.name} = {list(value)!r}")
        elif isinstance(value, dict):
            lines.append(f"{field.name} = {{}}")
        elif isinstance(value, int | float):
            lines.append(f"{field.name} = {value!r}")
        elif value is not None:
            raise AssertionError(f"no TOML for {field.name} = {value!r}")
    write(here, "\n".join(lines) + "\n")
    assert load_config() == Config()


def test_the_cli_exits_2_with_the_message_and_walks_nothing(here):
    write(here, 'sources = "../ct.json"\n')
    result = run_cli(["search"], exit_code=2, env={"SLEUTH_CONFIG": ""})
    assert 'sources = "../ct.json" is a string, expected a list of strings' in result.stderr
    assert 'sources = ["../ct.json"]' in result.stderr


def test_a_decimal_setting_takes_numbers_above_zero(here):
    write(here, "spike_p_value = 0.01\nspike_min_ratio = 2\n")
    config = load_config()
    assert config.spike_p_value == 0.01 and config.spike_min_ratio == 2.0
    write(here, "spike_p_value = -1\n")
    with pytest.raises(ConfigError, match="spike_p_value = -1 is a negative number, expected a number above 0"):
        load_config()
