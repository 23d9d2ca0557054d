"""The story of an investigation, written from the data: severity with its reasons, the first
intrusion and its entry vector, a timeline with the noise folded, and a summary paragraph."""

from __future__ import annotations

from collections import Counter

import orjson
import polars as pl

from sleuth.correlate.entities import failed, instance_launches, normalized_ip
from sleuth.correlate.indicators import data_sent_out
from sleuth.correlate.remediation import IAM_PERSISTENCE
from sleuth.severity import severity_label

_FOLD_MIN = 3  # read-only successes repeated at least this often become one timeline row
_TIMELINE_MAX = 200


def severity(indicators: list[dict], related: pl.DataFrame, incident) -> tuple[float, list[str]]:
    """Informational to Critical: the highest of the reasons below, each stated."""
    score, reasons = 0.0, []

    def raise_to(value: float, reason: str) -> None:
        nonlocal score
        reasons.append(f"{severity_label(value)}: {reason}")
        score = max(score, value)

    if len(related):
        top = related.row(0, named=True)
        raise_to(float(top["severity"]), f"related finding {top['title']} ({top['severity']:g})")
    ttps = [i for i in indicators if i["type"] == "TTP_OBSERVED" and (i["api_success_count"] or 0) > 0]
    tactics = {i["tactic"] for i in ttps if (i.get("severity") or 0) > 0}
    if len(tactics) >= 3:
        raise_to(7.0, f"successful activity across {len(tactics)} ATT&CK tactics ({', '.join(sorted(tactics))})")
    tampering = [i for i in indicators if i["type"] == "LOGGING_TAMPERING"]
    if any(i["succeeded"] for i in tampering):
        raise_to(7.5, "logging or monitoring was turned off")
    elif tampering:
        raise_to(5.0, "logging or monitoring tampering was attempted")
    persistence = [i for i in ttps if i["api_name"].split(":")[-1] in IAM_PERSISTENCE]
    if persistence:
        raise_to(
            7.0,
            "credentials or permissions were created (" + ", ".join(sorted({i["api_name"] for i in persistence})) + ")",
        )
    outbound = data_sent_out(indicators)
    if outbound:
        total = sum(i["bytes"] for i in outbound)
        to_attacker = {i["peer_address"] for i in outbound} <= set(incident.addresses)
        raise_to(8.0, f"{total:,} bytes sent to the attacker's address" if to_attacker else
                 f"{total:,} bytes sent to external addresses")  # fmt: skip
    if any(i["type"] == "FLAGGED_IP_ADDRESS" for i in indicators):
        raise_to(7.0, "an address on a threat-intel list was involved")
    turned_off = [i for i in tampering if i["succeeded"]]
    if persistence and (turned_off or outbound) and incident.addresses:
        raise_to(9.0, "access from the attacker's address, persistence, and tampering or data transfer together")
    if not reasons:
        reasons.append("Informational: no indicator of compromise beyond the activity listed")
    return score, reasons


def _vector(event: dict, failures_before: int, from_attacker: bool) -> str:
    action, key, session = event["action"], event["access_key"] or "", event["session"] or ""
    principal = event["principal"] or "an unknown principal"
    if action == "ConsoleLogin":
        guessed = (
            f" after {failures_before} failed sign-ins from the same address (password guessing)"
            if failures_before
            else ""
        )
        return f"console sign-in as {principal}{guessed}: a stolen or guessed password"
    if session.split(":")[-1].startswith("i-"):
        return f"instance role credentials ({session}) used from outside the instance: stolen instance credentials"
    if key.startswith("AKIA"):
        if from_attacker:
            return f"long-term access key {key} of {principal} used from the attacker's address: a leaked key"
        return (
            f"long-term access key {key} of {principal}, from an address it also uses: its holder's machine, "
            "or the key, is compromised"
        )
    if action.startswith("AssumeRoleWith"):
        return f"federated sign-in ({action}) as {principal}"
    if key.startswith("ASIA"):
        return f"temporary credentials {key} of {principal} used from the attacker's address: a stolen session"
    return f"API call {action} by {principal}"


def _with_earlier(incident) -> pl.DataFrame:
    """The incident's events with those from the attacker's addresses before the scope, earliest first."""
    return pl.concat([incident.earlier, incident.events]) if len(incident.earlier) else incident.events


def first_intrusion(incident) -> dict | None:
    """The earliest event of the incident from the attacker's addresses, and the entry vector it suggests."""
    events = _with_earlier(incident)
    if events.is_empty():
        return None
    ips = events.with_columns(normalized_ip().alias("_ip"))
    attacker = ips.filter(pl.col("_ip").is_in(list(incident.addresses))) if incident.addresses else ips.head(0)
    source = attacker if len(attacker) else ips
    source = source.with_columns(failed().alias("_failed"))
    first = source.sort("time", "event_id").row(0, named=True)
    entry = first
    if first["action"] == "ConsoleLogin" and first["_failed"]:
        success = source.filter((pl.col("action") == "ConsoleLogin") & ~pl.col("_failed"))
        if len(success):
            entry = success.sort("time").row(0, named=True)
    failures = source.filter((pl.col("action") == "ConsoleLogin") & failed() & (pl.col("time") <= entry["time"]))
    return {
        "time": first["time"],
        "event_id": first["event_id"],
        "action": first["action"],
        "principal": first["principal"],
        "source_ip": first["_ip"] or first["src_ip"],
        "outcome": "failure" if first["_failed"] else "success",
        "entry_time": entry["time"],
        "entry_event_id": entry["event_id"],
        "entry_action": entry["action"],
        "failed_attempts_before": len(failures),
        "failed_attempt_times": failures["time"].to_list(),
        "vector": _vector(entry, len(failures), bool(len(attacker))),
        "from_attacker_address": bool(len(attacker)),
    }


def unique_ids(events: pl.DataFrame) -> pl.DataFrame:
    """Events keyed by their row (`event_id`), the record's own id kept as `original_id`: sample and
    hand-made logs reuse eventIDs, and joins on them would multiply rows."""
    return events.with_columns(
        pl.col("event_id").alias("original_id"), pl.int_range(pl.len()).cast(pl.String).alias("event_id")
    )


def timeline(incident) -> pl.DataFrame:
    """Key events in time order; read-only successes repeated `_FOLD_MIN`+ times fold into one row."""
    from sleuth.correlate.detect.mapped import label_events

    events = _with_earlier(incident)
    columns = {
        "time": pl.Datetime("us", "UTC"),
        "principal": pl.String,
        "action": pl.String,
        "outcome": pl.String,
        "error_code": pl.String,  # the error of an outcome "failure" ("Failure" when the record names none)
        "source_ip": pl.String,
        "tactic": pl.String,
        "count": pl.UInt32,
        "event_id": pl.String,
        "request": pl.String,  # requestParameters as JSON text (raw evidence; null for folded rows)
        "error_message": pl.String,
    }
    if events.is_empty():
        return pl.DataFrame(schema=columns)
    events = unique_ids(events)
    labels = (
        label_events(events)
        .sort(["event_id", "severity"], descending=[False, True])
        .unique("event_id", keep="first")
        .select("event_id", pl.col("tactics").list.first().alias("tactic"))
    )
    rows = events.join(labels, on="event_id", how="left").with_columns(
        normalized_ip().fill_null(pl.col("src_ip")).alias("source_ip"),
        pl.when(~failed()).then(pl.lit("success")).otherwise(pl.lit("failure")).alias("outcome"),
        pl.when(failed()).then(pl.col("error_code").fill_null(pl.lit("Failure"))).alias("error_code"),
    )
    noise = (pl.col("read_only") & ~failed() & pl.col("tactic").is_null()).fill_null(False)
    repeated = rows.filter(noise).group_by("principal", "action", "source_ip").agg(pl.len().alias("n"))
    folded_keys = repeated.filter(pl.col("n") >= _FOLD_MIN).select("principal", "action", "source_ip")
    folded = (
        rows.filter(noise)
        .join(folded_keys, on=["principal", "action", "source_ip"], how="semi")
        .group_by("principal", "action", "source_ip")
        .agg(pl.col("time").min(), pl.len().alias("count"), pl.col("original_id").first())
        .select(
            "time",
            "principal",
            (pl.col("count").cast(pl.String) + " x " + pl.col("action")).alias("action"),
            pl.lit("success").alias("outcome"),
            pl.lit(None, pl.String).alias("error_code"),
            "source_ip",
            pl.lit(None, pl.String).alias("tactic"),
            "count",
            pl.concat_str(pl.lit("first: "), pl.col("original_id")).alias("event_id"),
            pl.lit(None, pl.String).alias("request"),
            pl.lit(None, pl.String).alias("error_message"),
        )
    )
    folded_ids = rows.filter(noise).join(folded_keys, on=["principal", "action", "source_ip"], how="semi")
    kept = rows.join(folded_ids.select("event_id"), on="event_id", how="anti")
    single = kept.select(
        "time",
        "principal",
        "action",
        "outcome",
        "error_code",
        "source_ip",
        "tactic",
        pl.lit(1, pl.UInt32).alias("count"),
        pl.col("original_id").alias("event_id"),
        "request",
        "error_message",
    )
    merged = pl.concat([single.cast(columns), folded.cast(columns)]).sort("time", "event_id")
    return merged.head(_TIMELINE_MAX)


def daily(incident) -> pl.DataFrame:
    events = incident.events
    if events.is_empty():
        return pl.DataFrame(schema={"day": pl.Date, "success": pl.UInt32, "failure": pl.UInt32})
    return (
        events.group_by(pl.col("time").dt.date().alias("day"))
        .agg(
            (~failed()).sum().alias("success"),
            failed().sum().alias("failure"),
        )
        .sort("day")
    )


def resources(incident) -> pl.DataFrame:
    """What the incident's write and failed calls acted on: the records' resource ARNs, the instances
    a launch made, and the names request parameters give (`userName: tracy_stone`, `name: <trail>`;
    many events, StopLogging and CreateUser among them, carry no `resources`). A name an ARN of the
    same event already holds (a bucket and its ARN) is counted once."""
    schema = {"resource": pl.String, "actions": pl.List(pl.String), "calls": pl.UInt32, "failures": pl.UInt32}
    events = incident.events
    if events.is_empty():
        return pl.DataFrame(schema=schema)
    touched = events.filter(~pl.col("read_only").fill_null(False) | failed())
    launched: dict[str, set[str]] = {}
    for event_id, instance in instance_launches(touched.lazy()).select("event_id", "instance_id").iter_rows():
        launched.setdefault(event_id, set()).add(instance)
    actions: dict[str, set[str]] = {}
    calls: Counter = Counter()
    failures: Counter = Counter()
    rows = touched.select("event_id", "action", "resources", "request", failed().alias("_failed"))
    for event_id, action, arns, request, was_failed in rows.iter_rows():
        names = set(arns or []) | {f"instanceId: {i}" for i in launched.get(event_id, ())}
        names |= {f"{key}: {value}" for key, value in _request_names(request) if not _named_by(value, names)}
        for name in names:
            actions.setdefault(name, set()).add(action)
            calls[name] += 1
            failures[name] += int(bool(was_failed))
    table = [(name, sorted(actions[name]), calls[name], failures[name]) for name in calls]
    return pl.DataFrame(table, schema=schema, orient="row").sort(["calls", "resource"], descending=[True, False])


_NAME_MAX = 200  # characters of a request value kept as a resource name


def _request_names(request: str | None) -> list[tuple[str, str]]:
    """(key, value) of the request fields that name what a call acted on (mapped.TARGET_PATHS), at any
    depth; `name` only at the top (nested, it names other things: an instance profile of a launch)."""
    from sleuth.correlate.detect.mapped import TARGET_PATHS

    if not request:
        return []
    try:
        document = orjson.loads(request)
    except orjson.JSONDecodeError:
        return []
    found: list[tuple[str, str]] = []
    stack = [(document, 0)]
    while stack:
        node, depth = stack.pop()
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        for key, value in items:
            if isinstance(value, dict | list) and depth < 4:
                stack.append((value, depth + 1))
            elif isinstance(value, str) and value and key in TARGET_PATHS and (key != "name" or depth == 0):
                found.append((str(key), value[:_NAME_MAX]))
    return found


def _named_by(value: str, names: set[str]) -> bool:
    """The value is the last part of one of the event's ARNs (arn:aws:s3:::bucket, .../user/alice)."""
    return any(name.endswith((f":{value}", f"/{value}")) for name in names if name.startswith("arn:"))


def summary(target: dict, incident, indicators: list[dict], first: dict | None, score: float) -> str:
    """One paragraph a responder can paste into a ticket."""
    counts = Counter(i["type"] for i in indicators)
    tactics = sorted({i["tactic"] for i in indicators if i["type"] == "TTP_OBSERVED" and i["tactic"]})
    actors = set(incident.events["principal"].drop_nulls().to_list()) if len(incident.events) else set()
    who = ", ".join(sorted(p.split(":", 5)[-1] for p in actors | incident.principals)) or "no known principal"
    about = f" ({target['title']})" if target.get("title") else ""
    parts = [
        f"{severity_label(score) or 'Informational'} investigation of {target['type']} {target['id']}{about}: "
        f"{len(incident.events)} events by {who} in the scope"
    ]
    if incident.addresses:
        parts.append(f"from the attacker's address(es) {', '.join(sorted(incident.addresses))}")
    text = " ".join(parts) + "."
    if first:
        source = "from the attacker's source" if first["from_attacker_address"] else "of the incident"
        text += (
            f" The first activity {source} was {first['action']} ({first['outcome']}) at "
            f"{first['time']:%Y-%m-%d %H:%M} UTC; the entry vector suggested is {first['vector']}."
        )
    if tactics:
        text += f" Techniques were seen across {len(tactics)} ATT&CK tactics: {', '.join(tactics)}."
    tamper = [i for i in indicators if i["type"] == "LOGGING_TAMPERING"]
    if tamper:
        done = sorted({i["api_name"] for i in tamper if i["succeeded"]})
        tried = sorted({f"{i['api_name']} ({i['error_code']})" for i in tamper if i["api_name"] not in done})
        if done:
            text += f" Logging tampering succeeded: {', '.join(done)}."
        if tried:
            text += f" Logging tampering {'also ' if done else ''}attempted and failed: {', '.join(tried)}."
    keys = [i for i in indicators if i["type"] == "CREDENTIAL_LINEAGE" and i["kind"] == "access_key"]
    if keys:
        text += (
            " New access keys were created: "
            + ", ".join(f"{i['issued_key']} for {i['issued_to'].split(':', 5)[-1]}" for i in keys)
            + "."
        )
    transfer = data_sent_out(indicators)
    if transfer:
        total = sum(i["bytes"] for i in transfer)
        peers = ", ".join(sorted({i["peer_address"] for i in transfer}))
        text += f" {total:,} bytes went out to {peers}."
    if counts.get("RELATED_FINDING"):
        text += f" {counts['RELATED_FINDING']} related findings."
    return text

