#!/usr/bin/env python3
"""Benchmark `sleuth ingest` against jq and DuckDB over the same CloudTrail files.

    python bench/run.py --corpus /tmp/ctbench [--repeat 3] [--out bench/results.json]
                        [--only sleuth] [--sleuth-cmd "search --action StopLogging" ...]
    python bench/run.py --case /tmp/ctcase --sleuth-cmd "profile alice" --sleuth-cmd summary [--repeat 5]
                        [--peer "profile alice=bench/peers/profile.sql" ...]

Every measured command runs in a fresh wrapper process that times it and reports
getrusage(RUSAGE_CHILDREN): the peak RSS of the largest process the command started (for
a pipeline, its biggest member) and its CPU time. Repetitions are interleaved across tools
(round-robin) and the page cache is warmed first, so every tool reads the corpus from RAM.
DuckDB lives in its own venv (bench/.venv-peers), created on first use. With --case, a --peer runs a
DuckDB SQL script (bench/peers/*.sql) beside a sleuth command on the case's Parquet.
"""

import argparse
import datetime
import gzip
import json
import os
import platform
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

BENCH = Path(__file__).resolve().parent
PEERS = BENCH / ".venv-peers"
TOOLS = ("sleuth", "jq", "duckdb")  # for --kind vpcflow, "jq" is awk (jq reads no flow text)
JQ_FILTER = ".Records[] | [.eventTime,.eventName,.eventSource,.sourceIPAddress,.userIdentity.arn,.errorCode]"

# Runs one command (argv list, or a string for the shell), prints one JSON line about it.
WRAPPER = r"""
import json, resource, subprocess, sys, time
spec = json.loads(sys.argv[1])
with open(spec["stdout"], "wb") as out:
    t0 = time.perf_counter()
    p = subprocess.run(spec["cmd"], shell=isinstance(spec["cmd"], str), stdout=out, stderr=subprocess.PIPE,
                       executable="/bin/bash" if isinstance(spec["cmd"], str) else None)
    wall = time.perf_counter() - t0
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"rc": p.returncode, "wall_s": wall, "maxrss_kb": ru.ru_maxrss, "cpu_s": ru.ru_utime + ru.ru_stime,
                  "stderr": p.stderr.decode(errors="replace")[-2000:]}))
"""

# DuckDB doing comparable work: unnest Records into the 6 columns, write them to Parquet. The schema
# is given explicitly (DuckDB's best case: no sampling pass; all other keys are skipped).
DUCKDB_SQL = """COPY (SELECT r.eventTime, r.eventName, r.eventSource, r.sourceIPAddress, r.userIdentity.arn AS arn,
  r.errorCode FROM (SELECT unnest(Records) AS r FROM read_json({glob}, compression='gzip', columns={{'Records':
  'STRUCT(eventTime VARCHAR, eventName VARCHAR, eventSource VARCHAR, sourceIPAddress VARCHAR,
  userIdentity STRUCT(arn VARCHAR), errorCode VARCHAR)[]'}}))) TO {out} (FORMAT parquet)"""
# VPC flow text (gen_vpcflow.py): DuckDB reads every column of the default format to Parquet.
DUCKDB_FLOW_SQL = """COPY (SELECT * FROM read_csv({glob}, compression='gzip', delim=' ', header=true,
  nullstr='-', columns={{'version': 'INTEGER', 'account-id': 'VARCHAR', 'interface-id': 'VARCHAR',
  'srcaddr': 'VARCHAR', 'dstaddr': 'VARCHAR', 'srcport': 'INTEGER', 'dstport': 'INTEGER', 'protocol': 'INTEGER',
  'packets': 'BIGINT', 'bytes': 'BIGINT', 'start': 'BIGINT', 'end': 'BIGINT', 'action': 'VARCHAR',
  'log-status': 'VARCHAR'}})) TO {out} (FORMAT parquet)"""
AWK_FLOW = "awk 'FNR > 1 && $14 == \"OK\" { bytes[$3] += $10 } END { n = 0; for (k in bytes) n++; print n }'"
DUCKDB_SCRIPT = """import sys, duckdb
con = duckdb.connect()
con.execute(sys.argv[1])
print(con.execute("SELECT count(*) FROM read_parquet(?)", [sys.argv[2]]).fetchone()[0])"""

# A --peer on a case: every statement of the SQL script, each result fetched whole; prints their row counts.
CASE_PEER_SCRIPT = """import sys, duckdb
con = duckdb.connect()
print(*(len(con.execute(statement).fetchall()) for statement in con.extract_statements(sys.argv[1])))"""
PEER_PLACEHOLDERS = r"\{(?:events|case|arg)\}"  # replaced by quoted SQL strings

PATTERNS = {"cloudtrail": "*.json.gz", "vpcflow": "*.log.gz"}


def sql_quote(s):
    return "'" + s.replace("'", "''") + "'"


def corpus_stats(corpus, kind="cloudtrail"):
    """Files, records, compressed and raw bytes. CloudTrail records are counted as "eventVersion" keys
    (CloudTrail writes exactly one per record, and no nested object has one); flow records as lines
    after each file's header."""
    files = sorted(Path(corpus).rglob(PATTERNS[kind]))
    records = raw = 0
    unreadable = []
    for f in files:
        try:
            body = gzip.decompress(f.read_bytes())
        except (OSError, EOFError, zlib.error) as exc:
            unreadable.append(f"{f}: {exc}")
            continue
        records += body.count(b'"eventVersion"') if kind == "cloudtrail" else body.count(b"\n") - 1
        raw += len(body)
    if unreadable:
        print(f"warning: {len(unreadable)} unreadable file(s), e.g. {unreadable[0]}", file=sys.stderr)
    gz = sum(f.stat().st_size for f in files)
    return {"path": str(corpus), "files": len(files), "records": records, "bytes_gz": gz, "bytes_raw": raw,
            "unreadable": unreadable}


def machine():
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else "?"
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    now = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    return {"nproc": len(os.sched_getaffinity(0)), "cpu": cpu, "mem_gb": round(mem, 1), "os": platform.platform(),
            "python": platform.python_version(), "date": now}


def version(argv):
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        return (out.stdout or out.stderr).strip().splitlines()[0] if out.returncode == 0 else None
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return None


def peers_python(install):
    """The DuckDB venv's python, creating the venv and installing duckdb if needed; None if unavailable."""
    python = PEERS / "bin" / "python"
    if version([str(python), "-c", "import duckdb; print(duckdb.__version__)"]):
        return python
    if not install:
        return None
    print(f"setting up {PEERS} (pip install duckdb) ...", file=sys.stderr)
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(PEERS)], check=True)
    ok = subprocess.run([str(python), "-m", "pip", "install", "-q", "duckdb"]).returncode == 0
    return python if ok else None


def measure(cmd, scratch):
    """Run cmd once in a fresh wrapper process; returns its JSON report."""
    spec = {"cmd": cmd, "stdout": str(Path(scratch) / "stdout")}
    out = subprocess.run([sys.executable, "-c", WRAPPER, json.dumps(spec)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def warm_cache(corpus):
    for f in Path(corpus).rglob("*.json.gz"):
        f.read_bytes()


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--corpus", type=Path, help="folder of CloudTrail *.json.gz (gen_cloudtrail.py)")
    p.add_argument("--case", type=Path,
                   help="an existing case store: time only the --sleuth-cmd commands (and --peer) on it, no ingest")
    p.add_argument("--kind", choices=PATTERNS, default="cloudtrail",
                   help="vpcflow: a gen_vpcflow.py corpus; the peers are awk and DuckDB read_csv")
    p.add_argument("--repeat", type=int, default=3, help="runs per tool; the median is reported (default 3)")
    p.add_argument("--out", type=Path, default=BENCH / "results.json", help="raw numbers (default bench/results.json)")
    p.add_argument("--only", action="append", choices=TOOLS, help="run only this tool (repeatable)")
    p.add_argument("--sleuth-cmd", action="append", default=[], metavar="CMD",
                   help='extra sleuth command timed as `sleuth CMD -s CASE -q` on the case built by the first '
                        'ingest, e.g. "search --action StopLogging" (repeatable)')
    p.add_argument("--peer", action="append", default=[], metavar="CMD=SQL",
                   help="with --case: run the DuckDB script SQL beside `sleuth CMD` (added to --sleuth-cmd if "
                        "missing); in SQL, {events} {case} {arg} become quoted strings: the case's events Parquet "
                        "glob, the case folder, CMD's last word (repeatable; see bench/README.md)")
    p.add_argument("--no-install", action="store_true", help="do not create bench/.venv-peers or pip install duckdb")
    p.add_argument("--tmp", default=None, help="scratch folder for cases and outputs (default: system temp)")
    args = p.parse_args()
    if args.case:
        return case_only(args)
    if not args.corpus:
        p.error("give --corpus (or --case with --sleuth-cmd)")
    stats, info = corpus_stats(args.corpus, args.kind), machine()
    if not stats["records"]:
        sys.exit(f"no records under {args.corpus}")
    sleuth, commands, unavailable, versions = setup(args, args.only or list(TOOLS))
    extra = {f"sleuth {c}": shlex.split(c) for c in args.sleuth_cmd} if "sleuth ingest" in commands else {}
    if args.sleuth_cmd and not extra:
        print("--sleuth-cmd ignored: sleuth ingest is not run or unavailable", file=sys.stderr)
    warm_cache(args.corpus)
    runs = measure_all(args, sleuth, commands, extra)
    doc = {"machine": info, "corpus": stats, "repeat": args.repeat, "versions": versions,
           "commands": {n: describe(make("TMP")) for n, make in commands.items()}
           | {n: shlex.join(["sleuth", *argv, "-s", "CASE", "-q"]) for n, argv in extra.items()},
           "results": summarize(runs, unavailable, stats["records"], extra)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    print(table(doc))
    print(f"\nraw numbers: {args.out}", file=sys.stderr)


def case_stats(case):
    """A case store's size: events (from its manifest), Parquet files and bytes (not its derived/ caches)."""
    manifest = json.loads((Path(case) / "manifest.json").read_text())
    files = [f for f in Path(case).rglob("*.parquet") if "derived" not in f.relative_to(case).parts]
    return {"path": str(case), "case": True, "records": manifest["totals"]["kept"], "files": len(files),
            "bytes_parquet": sum(f.stat().st_size for f in files), "time_range": manifest.get("time_range")}


def case_peers(args, case):
    """--peer CMD=SQL: name -> (sleuth command it stands beside, argv, description); also the versions
    and the unavailable peers. Adds each CMD to args.sleuth_cmd if missing."""
    peers, unavailable = {}, {}
    python = peers_python(not args.no_install) if args.peer else None
    duckdb = python and version([str(python), "-c", "import duckdb; print(duckdb.__version__)"])
    for spec in args.peer:
        command, _, file = spec.rpartition("=")
        if not command.strip() or not Path(file).is_file():
            sys.exit(f"--peer {spec!r}: give CMD=SQL_FILE, CMD as in --sleuth-cmd and an existing SQL file")
        command = command.strip()
        if command not in args.sleuth_cmd:
            args.sleuth_cmd.append(command)
        name = f"duckdb {command}"
        if name in peers or name in unavailable:  # a second peer of the same command
            name += f" ({Path(file).stem})"
        if not duckdb:
            unavailable[name] = f"could not set up duckdb in {PEERS}"
            continue
        arg = shlex.split(command)[-1]
        values = {"{events}": str(Path(case).resolve() / "events" / "**" / "*.parquet"),
                  "{case}": str(Path(case).resolve()), "{arg}": arg}
        text = Path(file).read_text()
        sql = re.sub(PEER_PLACEHOLDERS, lambda m, v=values: sql_quote(v[m.group(0)]), text)
        shown = f"{{arg}}={sql_quote(arg)}, " if "{arg}" in text else ""
        peers[name] = (f"sleuth {command}", [str(python), "-c", CASE_PEER_SCRIPT, sql],
                       f"duckdb {duckdb} ({PEERS.name} python): {file} with {shown}"
                       "{events}='CASE/events/**/*.parquet'")
    return peers, unavailable, ({"duckdb": duckdb} if args.peer else {})


def case_only(args):
    """--case: each --sleuth-cmd and --peer `--repeat` times (interleaved) on an existing case; median,
    spread and, for a peer, the ratio of its median to its sleuth command's."""
    if not (Path(args.case) / "manifest.json").is_file():
        sys.exit(f"{args.case} is not a case store (no manifest.json): build one with sleuth ingest")
    peers, unavailable, versions = case_peers(args, args.case)
    if not args.sleuth_cmd:
        sys.exit("--case needs at least one --sleuth-cmd or --peer")
    sleuth = shutil.which("sleuth", path=str(Path(sys.executable).parent)) or shutil.which("sleuth")
    if not sleuth:
        sys.exit("no `sleuth` console script: pip install -e . in this venv")
    stats, info = case_stats(args.case), machine()
    extra = {f"sleuth {c}": shlex.split(c) for c in args.sleuth_cmd}
    jobs = {}  # each sleuth command, then its peers
    for name, argv in extra.items():
        jobs[name] = [sleuth, *argv, "-s", str(args.case), "-q"]
        jobs |= {peer: cmd for peer, (of, cmd, _) in peers.items() if of == name}
    for f in Path(args.case).rglob("*.parquet"):  # warm the page cache
        f.read_bytes()
    runs = {name: [] for name in jobs}
    with tempfile.TemporaryDirectory(prefix="sleuth-bench-", dir=args.tmp) as scratch:
        for cmd in jobs.values():  # one untimed run each: imports and files in the cache
            measure(cmd, scratch)
        for rep in range(args.repeat):
            # a sleuth command and its peers run back to back, in the other order on every other round
            for group in extra:
                names = [n for n in jobs if n == group or (n in peers and peers[n][0] == group)]
                for name in names if rep % 2 == 0 else names[::-1]:
                    r = measure(jobs[name], scratch)
                    r["load_before"] = os.getloadavg()[0]
                    if name in peers and not r["rc"]:
                        r["rows"] = [int(n) for n in (Path(scratch) / "stdout").read_text().split()]
                    runs[name].append(r)
                    print(f"[{rep + 1}/{args.repeat}] {name} ... {r['wall_s']:.2f}s rc={r['rc']}", file=sys.stderr)
                    if r["rc"]:
                        print(r["stderr"], file=sys.stderr)
    results = summarize(runs, unavailable, stats["records"], jobs)
    medians = {r["tool"]: r.get("median_s") for r in results}
    for row in results:
        ok = [r["wall_s"] for r in row.get("runs", []) if r["rc"] == 0]
        if ok:
            row |= {"min_s": min(ok), "max_s": max(ok)}
        if row["tool"] in peers:
            row["peer_of"] = of = peers[row["tool"]][0]
            if row.get("median_s") and medians.get(of):
                row["ratio_vs_sleuth"] = row["median_s"] / medians[of]
    doc = {"machine": info, "corpus": stats, "repeat": args.repeat,
           "versions": {"sleuth": version([sleuth, "--version"]), **versions,
                        "sleuth_tree": source_tree()},
           "commands": {n: shlex.join(["sleuth", *argv, "-s", "CASE", "-q"]) for n, argv in extra.items()}
           | {n: desc for n, (_, _, desc) in peers.items()},
           "results": results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    print(case_table(doc))
    print(f"\nraw numbers: {args.out}", file=sys.stderr)


def source_tree():
    """The commit the sleuth code comes from, and whether sleuth/ has uncommitted changes (None: no git)."""
    head = version(["git", "-C", str(BENCH.parent), "rev-parse", "--short", "HEAD"])
    changed = subprocess.run(["git", "-C", str(BENCH.parent), "status", "--porcelain", "--", "sleuth"],
                             capture_output=True, text=True).stdout.strip()
    return head and head + (" + uncommitted changes in sleuth/" if changed else "")


def case_table(doc):
    m, c = doc["machine"], doc["corpus"]
    lines = [f"Machine: {m['nproc']} CPUs ({m['cpu']}), {m['mem_gb']} GB RAM; {m['date']}",
             f"Case: {c['path']}: {c['records']:,} events, {c['files']} Parquet files, "
             f"{c['bytes_parquet'] / 2**20:,.0f} MB; median of {doc['repeat']} runs; "
             "ratio = peer median / its sleuth command's median", "",
             "| command | median s | min s | max s | median CPU s | peak RSS MB | ratio vs sleuth |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for r in doc["results"]:
        if "median_s" not in r:
            lines.append(f"| {r['tool']} | {r['status']} | | | | | |")
            continue
        ratio = f"{r['ratio_vs_sleuth']:.2f}x" if r.get("ratio_vs_sleuth") else "—"
        note = "" if r["status"] == "ok" else f" ({r['status']})"
        lines.append(f"| {r['tool']}{note} | {r['median_s']:.2f} | {r['min_s']:.2f} | {r['max_s']:.2f} | "
                     f"{r['median_cpu_s']:.2f} | {r['peak_rss_mb']:,.0f} | {ratio} |")
    return "\n".join(lines)


def setup(args, tools):
    """The command builder (scratch dir -> argv or shell string) of each available tool."""
    sleuth = shutil.which("sleuth", path=str(Path(sys.executable).parent)) or shutil.which("sleuth")
    commands, unavailable, versions = {}, {}, {}
    glob = str(args.corpus.resolve() / "**" / PATTERNS[args.kind])
    flows = args.kind == "vpcflow"
    if "sleuth" in tools:
        versions["sleuth"] = sleuth and version([sleuth, "--version"])
        if versions["sleuth"]:
            commands["sleuth ingest"] = lambda d: [sleuth, "ingest", "-s", str(args.corpus), "-o", f"{d}/case", "-q"]
        else:
            unavailable["sleuth ingest"] = "no working `sleuth` console script (not installed yet?)"
    if "jq" in tools and flows:
        versions["awk"] = version(["awk", "--version"]) or "awk"
        commands["awk"] = lambda d: (f"set -o pipefail; find {shlex.quote(str(args.corpus))} -name '*.log.gz' "
                                     f"-print0 | sort -z | xargs -0 zcat -- | {AWK_FLOW} > /dev/null")
    elif "jq" in tools:
        versions["jq"] = version(["jq", "--version"])
        if versions["jq"] and shutil.which("zcat"):
            commands["jq"] = lambda d: (f"set -o pipefail; find {shlex.quote(str(args.corpus))} -name '*.json.gz' "
                                        f"-print0 | sort -z | xargs -0 zcat -- | jq -c {shlex.quote(JQ_FILTER)} "
                                        "> /dev/null")
        else:
            unavailable["jq"] = "jq or zcat not found (Debian: apt-get install jq gzip)"
    if "duckdb" in tools:
        python = peers_python(not args.no_install)
        versions["duckdb"] = python and version([str(python), "-c", "import duckdb; print(duckdb.__version__)"])
        if versions["duckdb"]:
            def duckdb_cmd(d):
                template = DUCKDB_FLOW_SQL if flows else DUCKDB_SQL
                sql = template.format(glob=sql_quote(glob), out=sql_quote(f"{d}/out.parquet"))
                return [str(python), "-c", DUCKDB_SCRIPT, sql, f"{d}/out.parquet"]
            commands["duckdb"] = duckdb_cmd
        else:
            unavailable["duckdb"] = f"could not set up duckdb in {PEERS}"
    return sleuth, commands, unavailable, versions


def measure_all(args, sleuth, commands, extra):
    """Interleaved repetitions of every command, then the extra sleuth commands on the first case."""
    runs = {name: [] for name in [*commands, *extra]}
    case_dir = None  # the first ingest's case, kept for --sleuth-cmd
    with tempfile.TemporaryDirectory(prefix="sleuth-bench-", dir=args.tmp) as scratch:
        for rep in range(args.repeat):
            for name, make in commands.items():
                d = tempfile.mkdtemp(dir=scratch)
                print(f"[{rep + 1}/{args.repeat}] {name} ...", file=sys.stderr, end=" ", flush=True)
                r = measure(make(d), d)
                runs[name].append(r)
                print(f"{r['wall_s']:.2f}s rc={r['rc']}", file=sys.stderr)
                if r["rc"]:
                    print(r["stderr"], file=sys.stderr)
                if name == "duckdb" and not r["rc"]:
                    r["rows"] = int((Path(d) / "stdout").read_text().split()[-1])
                if name == "sleuth ingest" and case_dir is None and not r["rc"]:
                    case_dir = f"{d}/case"
                else:
                    shutil.rmtree(d)
        for name, argv in extra.items():
            for rep in range(args.repeat):
                if case_dir is None:
                    break
                r = measure([sleuth, *argv, "-s", case_dir, "-q"], scratch)
                runs[name].append(r)
                print(f"[{rep + 1}/{args.repeat}] {name} ... {r['wall_s']:.2f}s rc={r['rc']}", file=sys.stderr)
    return runs


def describe(cmd):
    """A readable command line for the JSON (the DuckDB script is shown as its SQL)."""
    if isinstance(cmd, str):
        return cmd
    return "duckdb: " + " ".join(cmd[3].split()) if cmd[2] == DUCKDB_SCRIPT else shlex.join(cmd)


def summarize(runs, unavailable, records, extra=()):
    """Median wall time, records/s and peak RSS per tool; extra sleuth commands get no records/s."""
    results = []
    for name, rs in runs.items():
        ok = [r for r in rs if r["rc"] == 0]
        row = {"tool": name, "runs": rs, "status": "ok" if rs and len(ok) == len(rs) else "failed"}
        if ok:
            median = statistics.median(r["wall_s"] for r in ok)
            row |= {"median_s": median, "peak_rss_mb": max(r["maxrss_kb"] for r in ok) / 1024,
                    "median_cpu_s": statistics.median(r["cpu_s"] for r in ok),
                    "records_per_s": None if name in extra else records / median}
        results.append(row)
    results += [{"tool": name, "status": f"unavailable: {why}"} for name, why in unavailable.items()]
    base = next((r.get("median_s") for r in results if r["tool"] == "sleuth ingest"), None)
    for r in results:
        if base and r.get("median_s") and r.get("records_per_s"):
            r["ratio_vs_sleuth"] = r["median_s"] / base
    return results


def table(doc):
    m, c = doc["machine"], doc["corpus"]
    lines = [f"Machine: {m['nproc']} CPUs ({m['cpu']}), {m['mem_gb']} GB RAM, {m['os']}; {m['date']}",
             f"Corpus: {c['path']}: {c['files']} files, {c['records']:,} records, {c['bytes_gz'] / 2**20:,.0f} MB gz, "
             f"{c['bytes_raw'] / 2**20:,.0f} MB raw; median of {doc['repeat']} runs; ratio = time / sleuth ingest time",
             "", "| tool | median s | records/s | ratio vs sleuth | peak RSS MB |", "|---|---:|---:|---:|---:|"]
    for r in doc["results"]:
        if "median_s" not in r:
            lines.append(f"| {r['tool']} | {r['status']} | | | |")
            continue
        rps = f"{r['records_per_s']:,.0f}" if r.get("records_per_s") else "—"
        ratio = f"{r['ratio_vs_sleuth']:.2f}x" if r.get("ratio_vs_sleuth") else "—"
        note = "" if r["status"] == "ok" else f" ({r['status']})"
        lines.append(f"| {r['tool']}{note} | {r['median_s']:.2f} | {rps} | {ratio} | {r['peak_rss_mb']:,.0f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
