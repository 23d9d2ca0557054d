"""VPC Flow Logs into the `flows` frame, and NODATA / SKIPDATA records into `flow_status`.

Formats (handbook §2): the default version 2 format without a header line; text files whose first
line names the fields (as AWS writes S3 files: any of versions 2–8, any order, any subset); headerless
custom formats, given as `Config.vpc_format` (`"version account-id ..."` or the console's
`"${version} ${account-id} ..."`); and the Parquet delivery option (typed columns named with
underscores, `account_id`). Field names are matched with hyphens or underscores, in any case; names
sleuth does not use are read and dropped. `-` is null; `account-id` `unknown` is null too.

Accounting: every non-blank line that is not a header line is a record, and is kept (in `flows`, or
in `flow_status` when its log-status is NODATA or SKIPDATA) or skipped with one reason: "wrong field
count", "record too large", "non-numeric <field>", "out-of-range <field>", "unknown action",
"unknown log-status".

Speed: a well-formed text file (exactly one space between fields, no blank lines, the same field
count on every line: checked with two byte counts and polars' own refusal of over-long rows) is read
by polars' CSV reader with a space separator, all fields as text, and converted column by column.
Anything else (double spaces as in one AWS documentation example, blank lines, repeated header lines
from concatenated files, broken lines) takes the exact path: lines split with polars expressions,
each line checked on its own. Both paths give the same rows.

The field vocabulary (names, header lines, valid values, canonical columns) is in `vpcflow_format`.
"""

from __future__ import annotations

import io
import re

import polars as pl
from polars.exceptions import PanicException

from sleuth import schema
from sleuth.config import Config
from sleuth.parsers.base import ParseResult
from sleuth.parsers.vpcflow_format import (
    CHOICES,
    DEFAULT_FORMAT,
    HEADER_LIKE,
    INT_COLUMNS,
    KNOWN_FIELDS,
    NUMERIC_RANGES,
    TEXT_COLUMNS,
    USED_FIELDS,
    could_start_header,
    field_name,
    format_warnings,
    header_fields,
    parse_format,
    used_columns,
)

NAME = "vpcflow"
FRAMES = ("flows", "flow_status")

_STATUS_ONLY = ("NODATA", "SKIPDATA")
_S = pl.String()

# ---------------------------------------------------------------------------------------------
# Sniffing.


_DEFAULT_LINE = re.compile(
    r"^2 +(\d{12}|unknown|-) +(eni-[0-9a-f]+|-) +\S+ +\S+"
    r"(?: +(?:\d+|-)){5} +\d+ +\d+ +(ACCEPT|REJECT|-) +(OK|NODATA|SKIPDATA|-)$"
)
_VERDICTS = frozenset({"ACCEPT", "REJECT", "NODATA", "SKIPDATA"})
_NETWORK_TOKEN = re.compile(r"^(eni-[0-9a-f]{8,}|\d{1,3}(\.\d{1,3}){3}|[0-9a-f]{0,4}(:[0-9a-f]{0,4}){2,7})$")
_NOT_FLOW_CHARS = re.compile(r"[{}\[\]\"'=<>]")


def sniff(head: bytes) -> bool:
    """A VPC flow header line, a default-format line, a custom-format line (verdict and address words),
    or Parquet whose columns are flow fields (its schema sits in the footer: pass the whole content)."""
    try:
        if head.startswith(b"PAR1"):
            return _sniff_parquet(head)
        text = head.decode("utf-8", "replace")
        line = next((line.strip(" \t\r") for line in text.split("\n") if line.strip()), "")
        if not line or line[0] in "{[":
            return False
        fields = header_fields(line)
        if fields is not None:
            return sum(name in KNOWN_FIELDS for name in fields) >= 2
        if _DEFAULT_LINE.match(line):
            return True
        if _NOT_FLOW_CHARS.search(line):
            return False
        tokens = line.split()
        return (
            len(tokens) >= 3
            and any(token in _VERDICTS for token in tokens)
            and any(_NETWORK_TOKEN.match(token) for token in tokens)
        )
    except Exception:
        return False


def _sniff_parquet(data: bytes) -> bool:
    try:
        columns = pl.read_parquet_schema(io.BytesIO(data))
    except (Exception, PanicException):
        return False
    names = {field_name(name) for name in columns}
    return len(names & set(USED_FIELDS)) >= 3 and bool(names & {"srcaddr", "dstaddr", "interface-id", "log-status"})


# ---------------------------------------------------------------------------------------------
# Parsing.


def parse(data: bytes, origin: str, config: Config) -> ParseResult:
    """One input on its own (tests, small jobs): its accounting with its frames attached."""
    frames, (result,) = parse_many([(data, origin)], config)
    result.frames = frames
    return result


def parse_many(inputs: list[tuple[bytes, str]], config: Config) -> tuple[dict[str, pl.DataFrame], list[ParseResult]]:
    """A batch of inputs: each is split into raw text columns on its own, then one normalisation
    runs over the whole batch. Returns the batch's frames and each input's accounting."""
    results: list[ParseResult] = []
    raws: list[pl.DataFrame] = []
    for index, (data, origin) in enumerate(inputs):
        result = ParseResult(format=NAME)
        results.append(result)
        try:
            raw = _raw_input(data, origin, config, result)
        except (Exception, PanicException) as exc:  # never raise for content: the input is reported
            _fail(result, f"unreadable VPC flow log input: {_brief(exc)}")
            continue
        if raw is not None and raw.height:
            raws.append(raw.with_columns(pl.lit(index, pl.Int32).alias("_input")))
    origins = [origin for _, origin in inputs]
    try:
        flows, status = _normalise(_concat(raws), origins, results)
    except (Exception, PanicException):  # one odd input sinks the batch: normalise input by input
        flows, status = _normalise_each(raws, origins, results)
    return {"flows": flows, "flow_status": status}, results


def _normalise_each(
    raws: list[pl.DataFrame], origins: list[str], results: list[ParseResult]
) -> tuple[pl.DataFrame, pl.DataFrame]:
    flows, status = [schema.empty("flows")], [schema.empty("flow_status")]
    for result in results:  # undo what the batch pass counted before it failed
        result.kept = 0
        result.skipped.clear()
    for raw in raws:
        result = results[raw["_input"][0]]
        try:
            one_flows, one_status = _normalise(raw, origins, results)
        except (Exception, PanicException) as exc:
            _fail(result, f"unreadable VPC flow log input: {_brief(exc)}")
            continue
        flows.append(one_flows)
        status.append(one_status)
    return pl.concat(flows), pl.concat(status)


def _fail(result: ParseResult, error: str) -> None:
    result.error = error
    result.read = result.kept = 0
    result.skipped.clear()


def _brief(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:200]}" if text else type(exc).__name__


def _concat(raws: list[pl.DataFrame]) -> pl.DataFrame:
    if not raws:
        return pl.DataFrame(schema={"_input": pl.Int32, "_reason": _S})
    return raws[0] if len(raws) == 1 else pl.concat(raws, how="diagonal")


def _raw_input(data: bytes, origin: str, config: Config, result: ParseResult) -> pl.DataFrame | None:
    """One input as text columns named by field (only the used ones) plus `_reason` (set for records
    already known to be bad); sets `result.read`."""
    if data.startswith(b"PAR1"):
        raw, fields = _parquet(data, result)
    else:
        if not data.strip():
            result.warnings.append("empty input: no records")
            return None
        raw, fields = _text(_utf8(data, result), config, result)
    if raw is None:
        return None
    result.read = raw.height
    return _path_facts(raw, fields, origin)


_PATH_FACTS = re.compile(
    r"(?:AWSLogs/(?:aws-account-id=)?(\d{12})/(?:aws-service=)?vpcflowlogs/(?:aws-region=)?([a-z0-9-]+)/"
    r"|(?:^|/)(\d{12})_vpcflowlogs_([a-z0-9-]+?)_)"
)


def _path_facts(raw: pl.DataFrame, fields: set[str], origin: str) -> pl.DataFrame:
    """Account and region from the AWSLogs key (or file name) when the format lacks those fields."""
    missing = [name for name in ("account-id", "region") if name not in fields]
    match = _PATH_FACTS.search(origin.replace("\\", "/")) if missing else None
    if not match:
        return raw
    account, region = (match[1], match[2]) if match[1] else (match[3], match[4])
    facts = {"account-id": account, "region": region}
    return raw.with_columns(pl.lit(facts[name], _S).alias(name) for name in missing)


def _utf8(data: bytes, result: ParseResult) -> bytes:
    """Valid UTF-8 for polars, without a byte order mark (the reader has normally done this already)."""
    data = data.removeprefix(b"\xef\xbb\xbf")
    if data.isascii():
        return data
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        result.warnings.append(f"not valid UTF-8 (first bad byte at offset {exc.start}); shown as U+FFFD")
        return data.decode("utf-8", "replace").encode()
    return data


# ---------------------------------------------------------------------------------------------
# Text: the fast path and the exact path.


def _text(data: bytes, config: Config, result: ParseResult) -> tuple[pl.DataFrame, set[str]]:
    first_end = data.find(b"\n")
    first = data if first_end < 0 else data[:first_end]
    header = header_fields(first.decode().removesuffix("\r").strip(" "))
    configured = parse_format(config.vpc_format) if config.vpc_format else None
    fields = header or configured or DEFAULT_FORMAT
    if configured is not None and not set(configured) & set(USED_FIELDS):
        result.warnings.append(f"vpc_format names no VPC flow field sleuth reads: {config.vpc_format!r}")
    raw = _fast(data, fields, first if header else None, config)
    if raw is None:
        raw, formats, has_header = _exact(data, configured or DEFAULT_FORMAT, config)
    else:
        formats, has_header = [fields], header is not None
    format_warnings(raw, formats, has_header, configured, result)
    return raw, {name for fmt in formats for name in fmt}


def _fast(data: bytes, fields: tuple[str, ...], header: bytes | None, config: Config) -> pl.DataFrame | None:
    """polars' CSV reader for a well-formed file, or None when the file needs the exact path.

    polars refuses a line with more fields than the format and gives "" for an empty field (a double,
    leading or trailing space, a blank line) and for each missing one: no field may be empty or null."""
    n = len(fields)
    try:
        df = pl.read_csv(
            data,
            has_header=False,
            separator=" ",
            quote_char=None,
            schema={f"_{i}": _S for i in range(n)},
            empty_string_is_null=False,
            skip_lines=1 if header is not None else 0,
            raise_if_empty=False,
        )
    except (Exception, PanicException):  # a line with more fields than the format, for one
        return None
    if not df.height:
        return None
    lengths = [pl.col(f"_{i}").str.len_bytes() for i in range(n)]
    nulls, shortest, longest = df.select(
        pl.sum_horizontal(pl.all().null_count()).alias("nulls"),
        pl.min_horizontal(length.min() for length in lengths).alias("shortest"),
        pl.sum_horizontal(length.max() for length in lengths).alias("longest"),
    ).row(0)
    # No empty field, no line that could be over the size limit, no repeated header line.
    if nulls or not shortest or longest + n - 1 > config.max_record_bytes or could_start_header(df["_0"]):
        return None
    return df.with_columns(pl.lit(None, _S).alias("_reason")).select(*used_columns(fields, "_"), "_reason")


def _exact(data: bytes, fields: tuple[str, ...], config: Config) -> tuple[pl.DataFrame, list[tuple[str, ...]], bool]:
    """Line by line, with polars expressions: blank lines are not records, header lines (anywhere:
    concatenated files) set the format of the lines after them, runs of spaces are one separator.
    Returns the raw columns, the formats used and whether there was a header line."""
    lines = _lines(data).str.strip_chars(" ")
    df = pl.DataFrame({"line": lines}).filter(pl.col("line").str.len_bytes() > 0)
    crowded = df.select(pl.col("line").str.contains("  ", literal=True).arg_true()).to_series()
    if len(crowded):
        collapsed = df["line"].gather(crowded).str.replace_all(" +", " ")
        df = df.with_columns(df["line"].scatter(crowded, collapsed))
    candidates = df.filter(pl.col("line").str.contains(HEADER_LIKE))["line"].unique()
    headers = {line: fmt for line in candidates if (fmt := header_fields(line)) is not None}
    formats = [fields]
    if headers:
        df = df.with_columns(pl.col("line").is_in(list(headers)).alias("_header"))
        df = df.with_columns(pl.col("_header").cum_sum().alias("_segment"))
        segments = df.filter(pl.col("_header")).select("_segment", "line").iter_rows()
        formats += [headers[line] for _, line in segments]
        df = df.filter(~pl.col("_header"))
    else:
        df = df.with_columns(pl.lit(0, pl.UInt32).alias("_segment"))
    parts = []
    used = sorted(set(df["_segment"].unique().to_list()))
    for segment in used:
        part = df.filter(pl.col("_segment") == segment) if len(used) > 1 else df
        parts.append(_split(part["line"], formats[segment], config))
    if not parts:
        parts.append(pl.DataFrame(schema={"_reason": _S}))
    raw = parts[0] if len(parts) == 1 else pl.concat(parts, how="diagonal")
    return raw, [formats[segment] for segment in used] or [fields], bool(headers)


def _split(lines: pl.Series, fields: tuple[str, ...], config: Config) -> pl.DataFrame:
    """Normalised lines (single spaces, none at the ends) into the format's fields: n + 1 parts, so
    that a missing last field and a surplus field both show."""
    n = len(fields)
    df = pl.DataFrame({"line": lines}).select(
        (pl.col("line").str.len_bytes() > config.max_record_bytes).alias("_large"),
        pl.col("line").str.splitn(" ", n + 1).struct.unnest(),
    )
    df = df.with_columns(
        pl.when(pl.col("_large"))
        .then(pl.lit("record too large"))
        .when(pl.col(f"field_{n - 1}").is_null() | pl.col(f"field_{n}").is_not_null())
        .then(pl.lit("wrong field count"))
        .alias("_reason")
    )
    return df.select(*used_columns(fields, "field_"), "_reason")


_SEPARATORS = (b"\x1f", b"\x1e", b"\x1d", b"\x1c", b"\x01", b"\x02", b"\x7f")


def _lines(data: bytes) -> pl.Series:
    """The lines of the text (CRLF ends too), read by polars with a separator absent from the data."""
    for sep in _SEPARATORS:
        if sep not in data:
            return pl.read_csv(
                data,
                has_header=False,
                separator=sep.decode(),
                quote_char=None,
                schema={"line": _S},
                empty_string_is_null=False,
                raise_if_empty=False,
            ).to_series()
    return pl.Series("line", data.decode().replace("\r\n", "\n").split("\n"), dtype=_S)


# ---------------------------------------------------------------------------------------------
# Parquet delivery.


def _parquet(data: bytes, result: ParseResult) -> tuple[pl.DataFrame | None, set[str]]:
    try:
        table = pl.read_parquet(io.BytesIO(data))
    except (Exception, PanicException) as exc:
        result.error = f"unreadable Parquet: {_brief(exc)}"
        return None, set()
    columns: dict[str, str] = {}
    for column in table.columns:
        columns.setdefault(field_name(column), column)
    used = [name for name in USED_FIELDS if name in columns]
    if not {"srcaddr", "dstaddr", "interface-id", "log-status"} & set(used):
        result.error = "Parquet without VPC flow log columns (srcaddr, dstaddr, interface_id, log_status)"
        return None, set()
    raw = table.select(
        *(pl.col(columns[name]).cast(_S).alias(name) for name in used), pl.lit(None, _S).alias("_reason")
    )
    if "start" not in columns and raw.height:
        result.warnings.append("the format has no start field: these flows have no time")
    return raw, set(columns)


# ---------------------------------------------------------------------------------------------
# Normalisation: raw text columns -> the canonical frames, with every record accounted for.


def _normalise(raw: pl.DataFrame, origins: list[str], results: list[ParseResult]) -> tuple[pl.DataFrame, pl.DataFrame]:
    present = [name for name in USED_FIELDS if name in raw.columns]
    for name in USED_FIELDS:
        if name not in raw.columns:
            raw = raw.with_columns(pl.lit(None, _S).alias(name))
    numbers = {name: pl.col(name).cast(pl.Int64, strict=False) for name in NUMERIC_RANGES}
    raw = raw.with_columns(value.alias(f"#{name}") for name, value in numbers.items())
    checks: list[pl.Expr] = [pl.col("_reason")]
    for name in present:
        text = pl.col(name)
        given = text.is_not_null() & (text != "-")
        if name in NUMERIC_RANGES:
            value, (low, high) = pl.col(f"#{name}"), NUMERIC_RANGES[name]
            checks.append(pl.when(given & value.is_null()).then(pl.lit(f"non-numeric {name}")))
            checks.append(pl.when((value < low) | (value > high)).then(pl.lit(f"out-of-range {name}")))
        elif name in CHOICES:
            checks.append(pl.when(given & ~text.is_in(CHOICES[name])).then(pl.lit(f"unknown {name}")))
    raw = raw.with_columns(pl.coalesce(checks).alias("_reason"))
    kept = _account(raw, results)
    canonical = kept.select(
        *(_epoch(pl.col(f"#{name}")).alias(name) for name in ("start", "end")),
        *(_text_value(pl.col(field), column).alias(column) for column, field in TEXT_COLUMNS.items()),
        *(pl.col(f"#{field}").alias(column) for column, field in INT_COLUMNS.items()),
        pl.lit(pl.Series(origins, dtype=_S)).gather(pl.col("_input")).alias("origin")
        if origins
        else pl.lit(None, _S).alias("origin"),
    )
    is_status = pl.col("log_status").is_in(_STATUS_ONLY)
    flows = schema.conform(canonical.filter(~is_status.fill_null(False)), "flows")
    status = schema.conform(canonical.filter(is_status.fill_null(False)), "flow_status")
    return flows, status


def _account(raw: pl.DataFrame, results: list[ParseResult]) -> pl.DataFrame:
    """Count kept and skipped records against their inputs; the kept rows."""
    skipped = raw.filter(pl.col("_reason").is_not_null())
    for index, reason, count in skipped.group_by("_input", "_reason").len().iter_rows():
        results[index].skip(reason, count)
    kept = raw.filter(pl.col("_reason").is_null()) if skipped.height else raw
    if kept.height:
        first, last = kept.select(pl.col("_input").min().alias("a"), pl.col("_input").max().alias("b")).row(0)
        counts = [(first, kept.height)] if first == last else kept.group_by("_input").len().iter_rows()
        for index, count in counts:
            results[index].kept += count
    return kept


def _epoch(seconds: pl.Expr) -> pl.Expr:
    return pl.from_epoch(seconds, time_unit="s").dt.replace_time_zone("UTC")


def _text_value(text: pl.Expr, column: str) -> pl.Expr:
    if column == "account":  # AWS writes `unknown` when it does not know the account
        return pl.when(~text.is_in(["-", "unknown"])).then(text)
    return pl.when(text != "-").then(text)
