"""Generate a synthetic VPC Flow Logs corpus in the S3 layout, for the flow-ingest benchmark.

    python bench/gen_vpcflow.py --out /tmp/flowbench --records 5000000 --seed 1

Files: OUT/AWSLogs/<account>/vpcflowlogs/<region>/YYYY/MM/DD/
       <account>_vpcflowlogs_<region>_fl-<id>_<YYYYMMDDTHHmmZ>_<hash>.log.gz
each a gzip of the default v2 format with its header line, as AWS delivers it, `--per-file` records
per file. Values come from polars expressions over hashed row numbers (deterministic for a seed),
so 5M records take seconds: many interfaces, mostly private addresses talking to each other and
to a few thousand public peers, 1-2% REJECT, a few NODATA records.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
from isal import igzip

HEADER = (
    "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status"
)
ACCOUNTS = ["111122223333", "444455556666"]
REGIONS = ["us-east-1", "eu-west-1"]


def _rand(seed: int, salt: int) -> pl.Expr:
    """A deterministic pseudo-random u64 per row."""
    return (pl.col("row").cast(pl.UInt64) + salt * 1_000_003).hash(seed=seed)


def _octets(r: pl.Expr) -> pl.Expr:
    return pl.concat_str([(r // (256**i) % 256).cast(pl.String) for i in range(3)], separator=".")


def file_lines(n: int, seed: int, salt: int, start_epoch: int, span_s: int, account: str) -> pl.DataFrame:
    r = [_rand(seed, salt * 16 + k) for k in range(8)]
    private = pl.concat_str([pl.lit("10."), _octets(r[0])])
    peer_private = pl.concat_str([pl.lit("10."), _octets(r[1] % 4096)])
    peer_public = pl.concat_str(
        [pl.lit("198.51."), (r[1] % 40).cast(pl.String), pl.lit("."), (r[2] % 250).cast(pl.String)]
    )
    outbound = r[3] % 2 == 0
    peer = pl.when(r[4] % 5 == 0).then(peer_public).otherwise(peer_private)
    service_port = (
        pl.when(r[5] % 8 == 1)
        .then(pl.lit("80"))
        .when(r[5] % 8 == 2)
        .then(pl.lit("22"))
        .when(r[5] % 8 == 3)
        .then(pl.lit("53"))
        .otherwise(pl.lit("443"))
    )
    ephemeral = (32768 + r[6] % 28000).cast(pl.String)
    start = (start_epoch + (r[7] % max(1, span_s))).cast(pl.Int64)
    packets = 1 + r[2] % 200
    nodata = r[0] % 997 == 0
    interface = pl.concat_str([pl.lit("eni-"), (r[4] % 300).cast(pl.String).str.zfill(17)])
    action = pl.when(r[6] % 64 == 0).then(pl.lit("REJECT")).otherwise(pl.lit("ACCEPT"))
    line = (
        pl.when(nodata)
        .then(
            pl.concat_str(
                [
                    pl.lit("2"),
                    pl.lit(account),
                    interface,
                    pl.lit("- - - - - - -"),
                    start.cast(pl.String),
                    (start + 60).cast(pl.String),
                    pl.lit("- NODATA"),
                ],
                separator=" ",
            )
        )
        .otherwise(
            pl.concat_str(
                [
                    pl.lit("2"),
                    pl.lit(account),
                    interface,
                    pl.when(outbound).then(private).otherwise(peer),
                    pl.when(outbound).then(peer).otherwise(private),
                    pl.when(outbound).then(ephemeral).otherwise(service_port),
                    pl.when(outbound).then(service_port).otherwise(ephemeral),
                    pl.lit("6"),
                    packets.cast(pl.String),
                    (packets * (40 + r[3] % 1400)).cast(pl.String),
                    start.cast(pl.String),
                    (start + 1 + r[5] % 59).cast(pl.String),
                    action,
                    pl.lit("OK"),
                ],
                separator=" ",
            )
        )
    )
    return pl.DataFrame({"row": pl.int_range(n, eager=True)}).select(line.alias("line"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--records", type=int, default=5_000_000)
    parser.add_argument("--per-file", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--days", type=int, default=7)
    args = parser.parse_args()
    if (args.out / "AWSLogs").exists():
        sys.exit(f"{args.out}/AWSLogs exists: choose an empty --out")
    began = time.perf_counter()
    files = (args.records + args.per_file - 1) // args.per_file
    first = int(datetime(2026, 10, 1, tzinfo=UTC).timestamp())
    span = args.days * 86400 // files
    written = 0
    size = 0
    for index in range(files):
        n = min(args.per_file, args.records - written)
        account, region = ACCOUNTS[index % 2], REGIONS[(index // 2) % 2]
        start = first + index * span
        lines = file_lines(n, args.seed, index, start, span, account)
        text = HEADER + "\n" + "\n".join(lines.to_series().to_list()) + "\n"
        when = datetime.fromtimestamp(start + span, UTC)
        folder = args.out / "AWSLogs" / account / "vpcflowlogs" / region / when.strftime("%Y/%m/%d")
        folder.mkdir(parents=True, exist_ok=True)
        name = f"{account}_vpcflowlogs_{region}_fl-0bench{index % 7:02d}_{when:%Y%m%dT%H%MZ}_{index:08x}.log.gz"
        data = igzip.compress(text.encode(), compresslevel=1)
        (folder / name).write_bytes(data)
        written += n
        size += len(data)
    seconds = time.perf_counter() - began
    print(f"files={files} records={written} bytes_gz={size} seconds={seconds:.1f}", file=sys.stderr)


if __name__ == "__main__":
    main()
