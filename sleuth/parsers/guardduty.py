"""GuardDuty findings in every shape AWS hands them out, into the `findings` and `finding_entities` frames.

Shapes (handbook §2): `aws guardduty get-findings` output (PascalCase `{"Findings": [...]}`), S3 export
files (JSON lines, camelCase, one finding per line), EventBridge events (the finding under `detail`,
one event per document or per line), a JSON array of findings and a single finding. Keys are matched
case-insensitively at every level: each finding's keys are lower-cased once, then read.

Findings are few (thousands, not millions), so this parser is orjson plus plain Python; only the
frames are polars. A record is one finding (or one event or line that should have been one): every
record read is kept or skipped with its reason. An input that is not JSON at all is an `error`.

Tactics and techniques come from the data table `sleuth/data/guardduty_tactics.csv` (see
`tactic_table`), keyed by the type's ThreatPurpose (the part before `:`) with more specific rows for
known types. Attack sequences (`AttackSequence:*`, GuardDuty Extended Threat Detection) take theirs
from their signals and ATTACK_TACTIC / ATTACK_TECHNIQUE indicators, or from the MITRE lines of their
description when the export dropped `service.detection.sequence`.
"""

from __future__ import annotations

import csv
import fnmatch
import io
import math
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from functools import cache, lru_cache
from importlib import resources
from typing import Any

import orjson
import polars as pl

from sleuth import schema
from sleuth.config import Config
from sleuth.netaddr import parse_ip
from sleuth.parsers.base import ParseResult
from sleuth.severity import severity_label

NAME = "guardduty"
FRAMES = ("findings", "finding_entities")
PRODUCER = "guardduty"

# ---------------------------------------------------------------------------------------------
# Sniffing: decide by content on the first 64 KB of decompressed text.

_BOM = b"\xef\xbb\xbf"
# CloudTrail keys (a CloudTrail record or lookup-events output) and Security Hub ASFF findings, which
# carry GuardDuty ARNs but are another format.
_NOT_OURS = re.compile(rb'"(?:eventversion|eventtime|records|cloudtrailevent|productarn)"\s*:')
_FINDING_ARN = re.compile(rb'"arn:aws[a-z-]*:guardduty:[^"]*/finding/')
_GUARDDUTY_EVENT = re.compile(rb'"source"\s*:\s*"aws\.guardduty"|"detail-type"\s*:\s*"guardduty finding"')
_SERVICE_NAME = re.compile(rb'"servicename"\s*:\s*"guardduty"')
_TYPE_GRAMMAR = re.compile(rb'"type"\s*:\s*"[a-z]+:[a-z0-9]+/[^"]+"')
_SCHEMA_VERSION = re.compile(rb'"schemaversion"\s*:\s*"2\.')
_NO_FINDINGS = re.compile(rb'\{\s*"findings"\s*:\s*\[\s*\]\s*\}\s*\Z')  # get-findings that found nothing


def sniff(head: bytes) -> bool:
    """GuardDuty findings in any accepted shape; never CloudTrail, Security Hub ASFF or flow-log text."""
    text = head.removeprefix(_BOM).lstrip()
    if text[:1] not in (b"{", b"["):
        return False
    text = text.lower()
    if _NOT_OURS.search(text):
        return False
    if _FINDING_ARN.search(text) or _GUARDDUTY_EVENT.search(text) or _NO_FINDINGS.match(text):
        return True
    has_type = _TYPE_GRAMMAR.search(text) is not None
    return has_type and (_SERVICE_NAME.search(text) is not None or _SCHEMA_VERSION.search(text) is not None)


# ---------------------------------------------------------------------------------------------
# The tactic table: sleuth/data/guardduty_tactics.csv, loaded and validated once.

ATTACK_TACTICS: tuple[str, ...] = (
    "Reconnaissance",
    "Resource Development",
    "Initial Access",
    "Execution",
    "Persistence",
    "Privilege Escalation",
    "Defense Evasion",
    "Credential Access",
    "Discovery",
    "Lateral Movement",
    "Collection",
    "Command and Control",
    "Exfiltration",
    "Impact",
    # ATT&CK v19 split Defense Evasion into these two; indicators may start using them.
    "Stealth",
    "Defense Impairment",
)
_TACTIC_IDS = {
    "TA0043": "Reconnaissance",
    "TA0042": "Resource Development",
    "TA0001": "Initial Access",
    "TA0002": "Execution",
    "TA0003": "Persistence",
    "TA0004": "Privilege Escalation",
    "TA0005": "Defense Evasion",
    "TA0006": "Credential Access",
    "TA0007": "Discovery",
    "TA0008": "Lateral Movement",
    "TA0009": "Collection",
    "TA0011": "Command and Control",
    "TA0010": "Exfiltration",
    "TA0040": "Impact",
}
_TACTIC_KEYS = {re.sub(r"[^a-z]", "", name.lower()): name for name in ATTACK_TACTICS}
_TECHNIQUE = re.compile(r"^T\d{4}(?:\.(?:\d{3}|A\d{3}))?$")
_TECHNIQUE_IN_TEXT = re.compile(r"\bT\d{4}(?:\.(?:\d{3}|A\d{3}))?\b")
_TACTIC_ID_IN_TEXT = re.compile(r"\bTA\d{4}\b")
_PURPOSE = re.compile(r"^[A-Za-z][A-Za-z0-9]*$")
_TABLE_COLUMNS = ("purpose", "type", "tactic", "technique", "note")


@dataclass(frozen=True)
class TacticRule:
    """One row of the tactic table: a purpose (empty: any), a type glob (empty: the purpose's row)."""

    line: int
    purpose: str
    type: str
    tactics: tuple[str, ...]
    techniques: tuple[str, ...]
    note: str

    @property
    def specificity(self) -> tuple[int, int, int]:
        literal = len(self.type.replace("*", "").replace("?", ""))
        return (1 if self.type else 0, literal, 1 if self.purpose else 0)


@dataclass(frozen=True, eq=False)  # hashed by identity: lookups are cached per table
class TacticTable:
    rules: tuple[TacticRule, ...]

    @property
    def purposes(self) -> frozenset[str]:
        return frozenset(rule.purpose.lower() for rule in self.rules if rule.purpose)

    def lookup(self, finding_type: str | None) -> tuple[tuple[str, ...], tuple[str, ...], bool]:
        """(tactics, techniques, purpose known) for a finding type."""
        return _lookup(self, (finding_type or "").strip())


def _split_cell(cell: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in cell.split(";") if part.strip())


def parse_tactic_table(text: str) -> TacticTable:
    """Read and validate the CSV text of a tactic table; a bad row raises ValueError naming its line."""
    reader = csv.DictReader(io.StringIO(text))
    if tuple(reader.fieldnames or ()) != _TABLE_COLUMNS:
        raise ValueError(f"guardduty tactic table: columns must be {','.join(_TABLE_COLUMNS)}, got {reader.fieldnames}")
    rules: list[TacticRule] = []
    seen: set[tuple[str, str]] = set()
    for row in reader:
        line = reader.line_num
        if None in row or any(value is None for value in row.values()):
            raise ValueError(f"guardduty tactic table line {line}: expected {len(_TABLE_COLUMNS)} cells")
        purpose, pattern = row["purpose"].strip(), row["type"].strip()
        tactics, techniques = _split_cell(row["tactic"]), _split_cell(row["technique"])
        if purpose and not _PURPOSE.match(purpose):
            raise ValueError(f"guardduty tactic table line {line}: bad purpose {purpose!r}")
        if not purpose and not pattern:
            raise ValueError(f"guardduty tactic table line {line}: a row needs a purpose, a type, or both")
        if pattern:
            if not pattern.startswith("*") and (":" not in pattern or "/" not in pattern):
                raise ValueError(f"guardduty tactic table line {line}: type {pattern!r} is not Purpose:Resource/Name")
            head = pattern.split(":", 1)[0]
            if purpose and head.lower() != purpose.lower() and head != "*":
                raise ValueError(f"guardduty tactic table line {line}: type {pattern!r} is not of purpose {purpose}")
        for tactic in tactics:
            if tactic not in ATTACK_TACTICS:
                raise ValueError(f"guardduty tactic table line {line}: unknown ATT&CK tactic {tactic!r}")
        for technique in techniques:
            if not _TECHNIQUE.match(technique):
                raise ValueError(f"guardduty tactic table line {line}: bad technique id {technique!r}")
        key = (purpose.lower(), pattern.lower())
        if key in seen:
            raise ValueError(f"guardduty tactic table line {line}: duplicate row for {purpose or '*'} {pattern}")
        seen.add(key)
        rules.append(TacticRule(line, purpose, pattern, tactics, techniques, row["note"].strip()))
    return TacticTable(tuple(rules))


@cache
def tactic_table() -> TacticTable:
    """The shipped table, read and validated on first use."""
    text = resources.files("sleuth").joinpath("data/guardduty_tactics.csv").read_text(encoding="utf-8")
    return parse_tactic_table(text)


@lru_cache(maxsize=4096)
def _lookup(table: TacticTable, finding_type: str) -> tuple[tuple[str, ...], tuple[str, ...], bool]:
    """The most specific matching row gives the tactics, and the most specific one with techniques
    gives those; ties go to the earlier row. A type row with an empty cell inherits from the purpose."""
    purpose = finding_type.split(":", 1)[0].lower() if ":" in finding_type else ""
    lowered = finding_type.lower()
    matches = [
        rule
        for rule in table.rules
        if (not rule.purpose or rule.purpose.lower() == purpose)
        and (fnmatch.fnmatchcase(lowered, rule.type.lower()) if rule.type else rule.purpose.lower() == purpose)
    ]
    matches.sort(key=lambda rule: (tuple(-x for x in rule.specificity), rule.line))
    tactics = next((rule.tactics for rule in matches if rule.tactics), ())
    techniques = next((rule.techniques for rule in matches if rule.techniques), ())
    return tactics, techniques, bool(purpose) and purpose in table.purposes


def tactics_for(finding_type: str | None) -> tuple[list[str], list[str]]:
    """ATT&CK tactics and technique ids for a GuardDuty finding type (empty lists when unknown)."""
    tactics, techniques, _ = tactic_table().lookup(finding_type)
    return list(tactics), list(techniques)


def canonical_tactic(value: str) -> str:
    """An ATT&CK tactic by its usual name ("DefenseEvasion", "defense_evasion", "TA0005" → "Defense Evasion");
    anything else is returned stripped."""
    text = value.strip()
    found = _TACTIC_ID_IN_TEXT.search(text)
    if found and found.group(0) in _TACTIC_IDS:
        return _TACTIC_IDS[found.group(0)]
    return _TACTIC_KEYS.get(re.sub(r"[^a-z]", "", text.lower()), text)


# ---------------------------------------------------------------------------------------------
# Severity (labels by sleuth.severity's bands) and times.


def _severity(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return None
    if isinstance(value, int | float) and math.isfinite(value):
        return float(value)
    return None


_ISO = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?\s*(Z|[+-]\d{2}:?\d{2})?$",
    re.IGNORECASE,
)


def parse_time(value: Any) -> datetime | None:
    """GuardDuty's time forms: ISO 8601 (`...Z`, offsets, a space for the `T`, up to nanoseconds, as the
    S3 export writes them) and epoch seconds or milliseconds. Naive times are UTC."""
    try:
        if isinstance(value, str):
            match = _ISO.match(value.strip())
            if not match:
                return None
            year, month, day, hour, minute, second, fraction, zone = match.groups()
            micro = int((fraction or "0")[:6].ljust(6, "0"))
            tz = UTC
            if zone and zone.upper() != "Z":
                sign = -1 if zone[0] == "-" else 1
                digits = zone[1:].replace(":", "")
                tz = timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))
            moment = datetime(
                int(year), int(month), int(day), int(hour), int(minute), int(second or 0), micro, tzinfo=tz
            )
            return moment.astimezone(UTC)
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            seconds = value / 1000 if abs(value) >= 1e11 else value
            return datetime.fromtimestamp(seconds, UTC)
    except (ValueError, OverflowError, OSError):
        return None
    return None


# ---------------------------------------------------------------------------------------------
# Reading documents into records.


@dataclass
class _Record:
    value: Any  # the finding as read (original keys), or whatever stood in its place
    envelope: dict | None = None  # lower-cased EventBridge envelope fields (account, region)
    skip: str | None = None  # a reason to skip it, decided while unwrapping


def _records(data: bytes, result: ParseResult) -> Iterator[_Record]:
    """Every record of one input; lines that are not JSON are counted and skipped here."""
    data = data.removeprefix(_BOM)
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        yield from _json_lines(data, result, exc)
        return
    yield from _unwrap(document)


def _json_lines(data: bytes, result: ParseResult, exc: Exception) -> Iterator[_Record]:
    lines = [line for line in data.split(b"\n") if line.strip()]
    parsed: list[Any] = []
    for line in lines:
        try:
            parsed.append(orjson.loads(line))
        except orjson.JSONDecodeError as line_exc:
            parsed.append(line_exc)
    if len(lines) < 2 or not any(isinstance(item, dict | list) for item in parsed):
        result.error = ("nesting too deep: " if "depth" in str(exc) else "invalid JSON: ") + str(exc)
        return
    for item in parsed:
        if isinstance(item, Exception):
            result.read += 1
            result.skip("nesting too deep" if "depth" in str(item) else "invalid JSON")
        else:
            yield from _unwrap(item)


def _get(mapping: dict, key: str) -> Any:
    """A key of a record whose keys are not yet lower-cased (wrappers only: a handful of keys)."""
    if key in mapping:
        return mapping[key]
    for name, value in mapping.items():
        if isinstance(name, str) and name.lower() == key:
            return value
    return None


def _unwrap(document: Any) -> Iterator[_Record]:
    if isinstance(document, list):
        for item in document:
            yield _unwrap_one(item)
        return
    if isinstance(document, dict):
        findings = _get(document, "findings")
        if isinstance(findings, list) and _get(document, "id") is None:
            for item in findings:
                yield _unwrap_one(item)
            return
    yield _unwrap_one(document)


def _unwrap_one(item: Any) -> _Record:
    """An EventBridge event gives its `detail`; any other object is taken as a finding."""
    if not isinstance(item, dict):
        return _Record(item)
    detail = _get(item, "detail")
    detail_type = _get(item, "detail-type")
    if isinstance(detail, dict) and (detail_type is not None or _get(item, "source") is not None):
        if isinstance(detail_type, str) and detail_type.strip().lower() != "guardduty finding":
            return _Record(item, skip=f"not a GuardDuty finding event ({detail_type.strip()[:60]})")
        envelope = {"account": _get(item, "account"), "region": _get(item, "region")}
        return _Record(detail, envelope)
    return _Record(item)


def _too_deep(value: Any, limit: int) -> bool:
    """Whether `value` nests deeper than `limit` (iterative: input may nest ~1000 deep)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        if isinstance(item, dict):
            stack.extend((child, depth + 1) for child in item.values() if isinstance(child, dict | list))
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item if isinstance(child, dict | list))
    return False


def _lower(value: Any) -> Any:
    """The same JSON with every object key lower-cased (call only on values of bounded depth)."""
    if isinstance(value, dict):
        return {str(key).lower(): _lower(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_lower(item) for item in value]
    return value


# ---------------------------------------------------------------------------------------------
# One finding -> one findings row and its entity rows.


def _text(value: Any) -> str | None:
    if isinstance(value, str):
        value = value.strip()
        return value or None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def _dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list:
    return value if isinstance(value, list) else []


def _dicts(value: Any) -> list[dict]:
    return [item for item in _list(value) if isinstance(item, dict)]


def _union(*groups: Any) -> list[str]:
    out: dict[str, None] = {}
    for group in groups:
        for item in group:
            if item:
                out.setdefault(item, None)
    return list(out)


class _Entities:
    """The entity rows of one finding, deduplicated, in the order found."""

    def __init__(self, account: str | None, partition: str, resource_role: str) -> None:
        self.account = account
        self.partition = partition
        self.resource_role = resource_role
        self.rows: dict[tuple[str, str, str], None] = {}

    def add(self, entity_type: str, entity_id: Any, role: str) -> None:
        text = _text(entity_id)
        if text:
            self.rows.setdefault((entity_type, text, role), None)

    def ip(self, value: Any, role: str) -> None:
        address = parse_ip(_text(value))
        if address is not None and not address.is_unspecified:
            self.add("IpAddress", str(address), role)

    def remote_ip(self, details: Any, role: str) -> None:
        details = _dict(details)
        self.ip(details.get("ipaddressv4"), role)
        self.ip(details.get("ipaddressv6"), role)

    def iam_arn(self, kind: str, name: Any, account: Any = None) -> str | None:
        name, account = _text(name), _text(account) or self.account
        if not name or not account:
            return None
        if name.startswith("arn:"):
            return name
        return f"arn:{self.partition}:iam::{account}:{kind}/{name}"

    def principal(self, user_type: Any, name: Any, principal_id: Any, role: str, account: Any = None) -> None:
        """An IAM identity described by (type, name, principal id), as GuardDuty gives it."""
        kind = (_text(user_type) or "").lower()
        principal = _text(principal_id)
        account = _text(account) or self.account
        if kind == "iamuser":
            self.add("AwsUser", self.iam_arn("user", name, account), role)
        elif kind == "assumedrole":
            self.add("AwsRole", self.iam_arn("role", name, account), role)
            if principal and ":" in principal:
                self.add("AwsRoleSession", principal, role)
        elif kind == "root" and account:
            self.add("AwsUser", f"arn:{self.partition}:iam::{account}:root", role)
        elif kind == "federateduser" and account and _text(name):
            self.add("FederatedUser", f"arn:{self.partition}:sts::{account}:federated-user/{_text(name)}", role)

    def cluster(self, name: Any, kind: str, account: Any = None) -> str | None:
        name, account = _text(name), _text(account) or self.account
        if not name or not account:
            return None
        if name.startswith("arn:"):
            name = name.rsplit("/", 1)[-1]
        entity_id = f"{name}~{account}~{kind}"
        self.add("ContainerCluster", entity_id, self.resource_role)
        return name


_INSTANCE_ID = re.compile(r"\bi-[0-9a-f]{8,17}\b")


def _finding_id(uid: Any) -> str | None:
    text = _text(uid)
    if text and "/finding/" in text:
        return text.rsplit("/finding/", 1)[1] or None
    return text


def _resource_entities(resource: dict, entities: _Entities) -> None:
    role = entities.resource_role
    key = _dict(resource.get("accesskeydetails"))
    entities.add("AccessKey", key.get("accesskeyid"), "actor")
    entities.principal(key.get("usertype"), key.get("username"), key.get("principalid"), "actor")

    instance = _dict(resource.get("instancedetails"))
    entities.add("Ec2Instance", instance.get("instanceid"), role)
    for interface in _dicts(instance.get("networkinterfaces")):
        entities.ip(interface.get("privateipaddress"), role)
        for private in _dicts(interface.get("privateipaddresses")):
            entities.ip(private.get("privateipaddress"), role)
        entities.ip(interface.get("publicip"), role)
        for address in _list(interface.get("ipv6addresses")):
            entities.ip(address, role)

    for bucket in _dicts(resource.get("s3bucketdetails")):
        name = _text(bucket.get("name")) or (_text(bucket.get("arn")) or "").removeprefix("arn:aws:s3:::")
        entities.add("S3Bucket", name, role)

    eks = _dict(resource.get("eksclusterdetails"))
    cluster = entities.cluster(eks.get("name") or eks.get("arn"), "EKS")
    ecs = _dict(resource.get("ecsclusterdetails"))
    entities.cluster(ecs.get("name") or ecs.get("arn"), "ECS")
    for container in _dicts(_dict(ecs.get("taskdetails")).get("containers")):
        entities.add("ContainerImage", container.get("image"), role)
    entities.add("ContainerImage", _dict(resource.get("containerdetails")).get("image"), role)

    kubernetes = _dict(resource.get("kubernetesdetails"))
    user = _dict(kubernetes.get("kubernetesuserdetails"))
    impersonated = _dict(user.get("impersonateduser"))
    for subject in (user.get("username"), impersonated.get("username")):
        if _text(subject) and cluster and entities.account:
            entities.add("KubernetesSubject", f"{_text(subject)}~{cluster}~{entities.account}", "actor")
    workload = _dict(kubernetes.get("kubernetesworkloaddetails"))
    if (_text(workload.get("type")) or "").lower() in ("pod", "pods") and cluster and _text(workload.get("uid")):
        entities.add("ContainerPod", f"{_text(workload.get('uid'))}~{cluster}~{entities.account}~EKS", role)
    for container in _dicts(workload.get("containers")):
        entities.add("ContainerImage", container.get("image"), role)

    lambda_details = _dict(resource.get("lambdadetails"))
    entities.add("AwsRole", lambda_details.get("role"), role)


_AFFECTED = {
    "aws::s3::bucket": ("S3Bucket", None),
    "aws::iam::role": ("AwsRole", "role"),
    "aws::iam::user": ("AwsUser", "user"),
    "aws::ec2::instance": ("Ec2Instance", None),
}


def _action_entities(action: dict, entities: _Entities) -> None:
    role = entities.resource_role
    api = _dict(action.get("awsapicallaction"))
    entities.remote_ip(api.get("remoteipdetails"), "actor")
    entities.add("AwsAccount", _dict(api.get("remoteaccountdetails")).get("accountid"), "actor")
    entities.add("Domain", _dict(api.get("domaindetails")).get("domain"), "actor")
    entities.add("UserAgent", api.get("useragent"), "actor")
    for kind, value in _dict(api.get("affectedresources")).items():
        entity_type, iam_kind = _AFFECTED.get(kind, (None, None))
        if entity_type and iam_kind:
            entities.add(entity_type, entities.iam_arn(iam_kind, value), "target")
        elif entity_type:
            entities.add(entity_type, value, "target")

    network = _dict(action.get("networkconnectionaction"))
    entities.remote_ip(network.get("remoteipdetails"), "network peer")
    entities.remote_ip(network.get("localipdetails"), role)

    for probe in _dicts(_dict(action.get("portprobeaction")).get("portprobedetails")):
        entities.remote_ip(probe.get("remoteipdetails"), "network peer")
        entities.remote_ip(probe.get("localipdetails"), role)

    dns = _dict(action.get("dnsrequestaction"))
    entities.add("Domain", dns.get("domain"), "network peer")

    kubernetes = _dict(action.get("kubernetesapicallaction"))
    entities.remote_ip(kubernetes.get("remoteipdetails"), "actor")
    for address in _list(kubernetes.get("sourceips")):
        entities.ip(address, "actor")
    entities.add("UserAgent", kubernetes.get("useragent"), "actor")

    entities.remote_ip(_dict(action.get("rdsloginattemptaction")).get("remoteipdetails"), "actor")


def _sequence_entities(sequence: dict, entities: _Entities) -> None:
    """Actors, resources, endpoints and finding signals of an attack sequence."""
    for actor in _dicts(sequence.get("actors")):
        user, session = _dict(actor.get("user")), _dict(actor.get("session"))
        account = _text(_dict(user.get("account")).get("uid"))
        if account != entities.account:  # an actor from another account
            entities.add("AwsAccount", account, "actor")
        entities.add("AccessKey", user.get("credentialuid"), "actor")
        kind = (_text(user.get("type")) or "").lower()
        uid, issuer = _text(user.get("uid")), _text(session.get("issuer"))
        candidates = (uid, _text(session.get("uid")))
        session_id = next((v for v in candidates if v and ":" in v and not v.startswith("arn:")), None)
        if kind == "assumedrole" and issuer and ":role/" in issuer:
            entities.add("AwsRole", issuer, "actor")
            entities.add("AwsRoleSession", session_id, "actor")
        else:
            name = uid if uid and uid.startswith("arn:") else user.get("name")
            entities.principal(user.get("type"), name, session_id, "actor", account)

    for resource in _dicts(sequence.get("resources")):
        kind = (_text(resource.get("resourcetype")) or "").upper()
        uid, name = _text(resource.get("uid")), _text(resource.get("name"))
        account = _text(resource.get("accountid"))
        data = _dict(resource.get("data"))
        if kind == "S3_BUCKET":
            entities.add("S3Bucket", name or (uid or "").removeprefix("arn:aws:s3:::").split("/", 1)[0], "target")
        elif kind == "EC2_INSTANCE":
            found = next((m.group(0) for v in (uid, name) if v for m in [_INSTANCE_ID.search(v)] if m), None)
            entities.add("Ec2Instance", found or uid, "target")
        elif kind == "ACCESS_KEY":
            entities.add("AccessKey", uid, "target")
            key = _dict(data.get("accesskey"))
            entities.principal(key.get("usertype"), key.get("username"), key.get("principalid"), "target", account)
        elif kind == "EKS_CLUSTER":
            entities.cluster(name or uid, "EKS", account)
        elif kind == "ECS_CLUSTER":
            entities.cluster(name or uid, "ECS", account)
        elif kind == "CONTAINER":
            entities.add("ContainerImage", _dict(data.get("container")).get("image"), "target")

    for endpoint in _dicts(sequence.get("endpoints")):
        entities.ip(endpoint.get("ip"), "network peer")
        entities.add("Domain", endpoint.get("domain"), "network peer")

    for signal in _dicts(sequence.get("signals")):
        if (_text(signal.get("type")) or "").upper() == "FINDING":
            entities.add("Finding", _finding_id(signal.get("uid")), "signal")


def _indicator_values(indicators: Any, key: str) -> list[str]:
    values: list[str] = []
    for indicator in _dicts(indicators):
        if (_text(indicator.get("key")) or "").upper() == key:
            values.extend(text for text in map(_text, _list(indicator.get("values"))) if text)
    return values


_DESCRIPTION_TACTICS = re.compile(r"tactics observed:\s*([^\n]*)", re.IGNORECASE)
_DESCRIPTION_TECHNIQUES = re.compile(r"techniques observed:\s*([^\n]*)", re.IGNORECASE)


def _technique_ids(values: list[str]) -> list[str]:
    """Technique ids from indicator values ("T1078.004 - Valid Accounts: ..."); a value naming no id is kept."""
    out: list[str] = []
    for value in values:
        ids = _TECHNIQUE_IN_TEXT.findall(value)
        out.extend(ids or [value])
    return out


def _sequence_ttps(sequence: dict, description: str | None, table: TacticTable) -> tuple[list[str], list[str]]:
    """The union of an attack sequence's tactics and techniques over its indicators and signals."""
    tactics: list[str] = []
    techniques: list[str] = []
    groups = [sequence.get("sequenceindicators")]
    groups += [signal.get("signalindicators") for signal in _dicts(sequence.get("signals"))]
    for indicators in groups:
        tactics.extend(canonical_tactic(v) for v in _indicator_values(indicators, "ATTACK_TACTIC"))
        techniques.extend(_technique_ids(_indicator_values(indicators, "ATTACK_TECHNIQUE")))
    for signal in _dicts(sequence.get("signals")):
        if (_text(signal.get("type")) or "").upper() == "FINDING":
            signal_tactics, signal_techniques, _ = table.lookup(_text(signal.get("name")))
            tactics.extend(signal_tactics)
            techniques.extend(signal_techniques)
    if not tactics and not techniques:
        for text in (_text(sequence.get("description")), description):
            if not text:
                continue
            found = _DESCRIPTION_TACTICS.search(text)
            if found:
                tactics.extend(canonical_tactic(part) for part in found.group(1).split(",") if part.strip())
            found = _DESCRIPTION_TECHNIQUES.search(text)
            if found:
                techniques.extend(_TECHNIQUE_IN_TEXT.findall(found.group(1)))
            if tactics or techniques:
                break
    return _union(tactics), _union(techniques)


@dataclass
class _Finding:
    row: dict[str, Any]
    entities: list[tuple[str, str, str]]
    sample: bool
    unknown_purpose: str | None


def _is_sample(finding: dict) -> bool:
    info = _dict(_dict(finding.get("service")).get("additionalinfo"))
    title = _text(finding.get("title")) or ""
    return info.get("sample") is True or title.startswith("[SAMPLE]")


_MAX_DEPTH = 256  # whatever the config says: key lower-casing recurses, and Python's stack is ~1000 deep


def _finding(record: _Record, origin: str, config: Config, table: TacticTable) -> _Finding | str:
    """The rows of one finding, or the reason it is skipped."""
    if record.skip:
        return record.skip
    if not isinstance(record.value, dict):
        return "not a JSON object"
    if _too_deep(record.value, min(config.max_json_depth, _MAX_DEPTH)):
        return "nesting too deep"
    try:
        raw = orjson.dumps(record.value)
    except (orjson.JSONEncodeError, TypeError):
        return "unserialisable record"
    if len(raw) > config.max_record_bytes:
        return "record too large"
    finding = _lower(record.value)
    if "productarn" in finding:
        return "Security Hub (ASFF) finding, not GuardDuty's format"
    finding_id = _text(finding.get("id"))
    if not finding_id or not isinstance(finding.get("id"), str):
        return "not a finding (no id)"

    service = _dict(finding.get("service"))
    created, updated = parse_time(finding.get("createdat")), parse_time(finding.get("updatedat"))
    first_seen = parse_time(service.get("eventfirstseen")) or created or updated
    last_seen = parse_time(service.get("eventlastseen")) or updated or first_seen
    if first_seen is None:
        return "no usable time"

    envelope = record.envelope or {}
    account = _text(finding.get("accountid")) or _text(envelope.get("account"))
    region = _text(finding.get("region")) or _text(envelope.get("region"))
    finding_type = _text(finding.get("type"))
    description = _text(finding.get("description"))
    partition = _text(finding.get("partition"))
    if not partition:
        arn = _text(finding.get("arn")) or ""
        partition = arn.split(":")[1] if arn.startswith("arn:") and arn.count(":") > 2 else "aws"

    tactics, techniques, known = table.lookup(finding_type)
    tactics, techniques = list(tactics), list(techniques)
    sequence = _dict(_dict(service.get("detection")).get("sequence"))
    purpose = finding_type.split(":", 1)[0] if finding_type and ":" in finding_type else None
    if sequence or (purpose or "").lower() == "attacksequence":
        sequence_tactics, sequence_techniques = _sequence_ttps(sequence, description, table)
        tactics, techniques = _union(sequence_tactics, tactics), _union(sequence_techniques, techniques)

    severity = _severity(finding.get("severity"))
    resource_role = "actor" if (_text(service.get("resourcerole")) or "").upper() == "ACTOR" else "target"
    entities = _Entities(account, partition, resource_role)
    entities.add("AwsAccount", account, "target")
    _resource_entities(_dict(finding.get("resource")), entities)
    _action_entities(_dict(service.get("action")), entities)
    _sequence_entities(sequence, entities)
    entities.add("Finding", _finding_id(finding.get("associatedattacksequencearn")), "attack sequence")

    row = {
        "finding_id": finding_id,
        "producer": PRODUCER,
        "type": finding_type,
        "title": _text(finding.get("title")),
        "description": description,
        "severity": severity,
        "severity_label": severity_label(severity),
        "account": account,
        "region": region,
        "first_seen": first_seen,
        "last_seen": last_seen,
        "tactics": tactics,
        "techniques": techniques,
        "event_ids": [],
        "raw": raw.decode(),
        "updated_at": updated or created or last_seen,
        "origin": origin,
    }
    unknown = None if known else (purpose or finding_type or "(no type)")
    return _Finding(row, list(entities.rows), _is_sample(finding), unknown)


# ---------------------------------------------------------------------------------------------
# Inputs -> frames.


def parse(data: bytes, origin: str, config: Config) -> ParseResult:
    """One input on its own (tests, small jobs): its accounting with its frames attached."""
    frames, (result,) = parse_many([(data, origin)], config)
    result.frames = frames
    return result


def parse_many(inputs: list[tuple[bytes, str]], config: Config) -> tuple[dict[str, pl.DataFrame], list[ParseResult]]:
    """A batch of inputs: the batch's frames and each input's accounting (read = kept + skipped)."""
    table = tactic_table()
    results: list[ParseResult] = []
    rows: list[dict[str, Any]] = []
    entity_rows: list[tuple[str, str, str, str, datetime]] = []
    for data, origin in inputs:
        result = ParseResult(format=NAME)
        results.append(result)
        try:
            _parse_input(data, origin, config, table, result, rows, entity_rows)
        except Exception as exc:  # a bug must not sink the batch: the input is reported, not parsed
            result.read, result.kept, result.skipped = 0, 0, Counter()
            result.error = f"cannot parse: {type(exc).__name__}: {exc}"
    return _frames(rows, entity_rows), results


def _parse_input(
    data: bytes,
    origin: str,
    config: Config,
    table: TacticTable,
    result: ParseResult,
    rows: list[dict[str, Any]],
    entity_rows: list[tuple[str, str, str, str, datetime]],
) -> None:
    if not data.strip():
        result.warnings.append("empty input: no findings")
        return
    input_rows: list[dict[str, Any]] = []
    input_entities: list[tuple[str, str, str, str, datetime]] = []
    samples = 0
    unknown: Counter = Counter()
    for record in _records(data, result):
        result.read += 1
        outcome = _finding(record, origin, config, table)
        if isinstance(outcome, str):
            result.skip(outcome)
            continue
        input_rows.append(outcome.row)
        first_seen = outcome.row["first_seen"]
        finding_id = outcome.row["finding_id"]
        input_entities.extend((finding_id, kind, entity, role, first_seen) for kind, entity, role in outcome.entities)
        samples += outcome.sample
        if outcome.unknown_purpose:
            unknown[outcome.unknown_purpose] += 1
    if result.error:
        return
    rows.extend(input_rows)
    entity_rows.extend(input_entities)
    result.kept = len(input_rows)
    if not result.read:
        result.warnings.append("no findings in input")
    if samples:
        result.warnings.append(f"{samples} sample finding(s) generated by GuardDuty: not real activity")
    for purpose, count in sorted(unknown.items()):
        result.warnings.append(
            f"{count} finding(s) of unknown purpose {purpose[:80]!r}: kept without a tactic "
            "(add it to sleuth/data/guardduty_tactics.csv)"
        )


def _frames(
    rows: list[dict[str, Any]], entity_rows: list[tuple[str, str, str, str, datetime]]
) -> dict[str, pl.DataFrame]:
    findings = pl.DataFrame({name: [row[name] for row in rows] for name in schema.FINDINGS}, schema=schema.FINDINGS)
    entity_columns = list(schema.FINDING_ENTITIES)
    entities = pl.DataFrame(
        {name: [row[i] for row in entity_rows] for i, name in enumerate(entity_columns)},
        schema=schema.FINDING_ENTITIES,
    )
    return {
        "findings": schema.conform(findings, "findings"),
        "finding_entities": schema.conform(entities, "finding_entities"),
    }
