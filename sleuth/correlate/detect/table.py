"""The CloudTrail → ATT&CK mapping table: `sleuth/data/cloudtrail_attack.csv`, loaded and validated once.

Columns:
  id             kebab-case, unique: the detection id of the row (finding type `sleuth:<Tactic>/<id>`)
  service        eventSource, e.g. cloudtrail.amazonaws.com
  action         eventName (Lambda's versioned names without their version: UpdateFunctionCode)
  condition      empty, or the name of a condition implemented in `_conditions.CONDITIONS`
  tactic         ATT&CK tactic names, `;`-separated, the first one primary
  technique      ATT&CK technique ids (pre-v19 numbering), `;`-separated, the first one primary
  technique_v19  the ids ATT&CK v19 gave those techniques, where it renumbered them (else empty)
  severity       0-10 on GuardDuty's scale; 0 marks a context row: it labels events with their
                 technique (for investigations) but never makes a finding on its own
  title          what happened, as a responder reads it ("CloudTrail logging stopped")
  rationale      one line: why the event matters, and when it is benign

An event of a row's service and action matches the row when the row's condition holds for it. When
several rows match one event, the most severe wins (then the one with a condition, then the earlier).
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

from sleuth.attack import ATTACK_TACTICS
from sleuth.correlate.detect._conditions import CONDITIONS
from sleuth.correlate.detect.base import Detection

COLUMNS = ("id", "service", "action", "condition", "tactic", "technique", "technique_v19", "severity", "title",
           "rationale")  # fmt: skip
_ID = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_TECHNIQUE = re.compile(r"^T\d{4}(?:\.\d{3})?$")
_SERVICE = re.compile(r"^[a-z0-9][a-z0-9.-]*\.amazonaws\.com$")
_ACTION = re.compile(r"^[A-Za-z][A-Za-z0-9]*$")
# Lambda's API names carry their version (UpdateFunctionCode20150331v2): the table holds the base name.
LAMBDA_VERSION = r"\d{8}(?:v\d+)?$"
CONTEXT_SEVERITY = 0.0
FALSE_POSITIVES = (
    "Legitimate administration (infrastructure-as-code, a change ticket): confirm the actor, the source "
    "address and user agent, and whether the change was planned."
)


@dataclass(frozen=True)
class MappedRule:
    """One validated row of the table."""

    line: int
    id: str
    service: str
    action: str
    condition: str
    tactics: tuple[str, ...]
    techniques: tuple[str, ...]
    techniques_v19: tuple[str, ...]
    severity: float
    title: str
    rationale: str

    @property
    def context_only(self) -> bool:
        """A context row labels events (for investigations) but makes no finding."""
        return self.severity <= CONTEXT_SEVERITY

    @property
    def all_techniques(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(self.techniques + self.techniques_v19))

    def detection(self) -> Detection:
        """The row as a detection (metadata of its findings)."""
        return Detection(
            id=self.id,
            title=self.title,
            severity=self.severity,
            tactic=self.tactics[0],
            technique=self.techniques[0],
            description=self.rationale,
            false_positives=FALSE_POSITIVES,
            techniques=tuple(t for t in self.all_techniques if t != self.techniques[0]),
            tactics=self.tactics[1:],
        )


def _split(cell: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in cell.split(";") if part.strip())


def parse_table(text: str, name: str = "cloudtrail_attack.csv") -> tuple[MappedRule, ...]:
    """Read and validate the CSV text of a mapping table; a bad row raises ValueError naming its line."""
    reader = csv.DictReader(io.StringIO(text))
    if tuple(reader.fieldnames or ()) != COLUMNS:
        raise ValueError(f"{name}: columns must be {','.join(COLUMNS)}, got {','.join(reader.fieldnames or [])}")
    rules: list[MappedRule] = []
    ids: dict[str, int] = {}
    keys: dict[tuple[str, str, str], int] = {}
    for row in reader:
        line = reader.line_num
        if None in row or any(value is None for value in row.values()):
            raise ValueError(f"{name} line {line}: expected {len(COLUMNS)} cells")
        rule = _rule(name, line, {key: value.strip() for key, value in row.items()})
        if rule.id in ids:
            raise ValueError(f"{name} line {line}: duplicate id {rule.id!r} (first on line {ids[rule.id]})")
        key = (rule.service, rule.action, rule.condition)
        if key in keys:
            raise ValueError(
                f"{name} line {line}: duplicate row for {rule.service} {rule.action}"
                f"{' [' + rule.condition + ']' if rule.condition else ''} (first on line {keys[key]})"
            )
        ids[rule.id], keys[key] = line, line
        rules.append(rule)
    return tuple(rules)


def _rule(name: str, line: int, row: dict[str, str]) -> MappedRule:
    problems = []
    if not _ID.match(row["id"]):
        problems.append(f"id {row['id']!r} is not kebab-case")
    if not _SERVICE.match(row["service"]):
        problems.append(f"service {row['service']!r} is not an eventSource such as iam.amazonaws.com")
    if not _ACTION.match(row["action"]):
        problems.append(f"action {row['action']!r} is not an eventName")
    elif row["service"] == "lambda.amazonaws.com" and re.search(LAMBDA_VERSION, row["action"]):
        problems.append(f"action {row['action']!r}: write Lambda actions without their API version")
    if row["condition"] and row["condition"] not in CONDITIONS:
        problems.append(f"unknown condition {row['condition']!r} (known: {', '.join(sorted(CONDITIONS))})")
    tactics, techniques, v19 = _split(row["tactic"]), _split(row["technique"]), _split(row["technique_v19"])
    if not tactics:
        problems.append("no tactic")
    problems.extend(f"unknown ATT&CK tactic {t!r}" for t in tactics if t not in ATTACK_TACTICS)
    if not techniques:
        problems.append("no technique")
    problems.extend(f"bad technique id {t!r}" for t in techniques + v19 if not _TECHNIQUE.match(t))
    try:
        severity = float(row["severity"])
    except ValueError:
        severity = -1.0
        problems.append(f"severity {row['severity']!r} is not a number")
    else:
        if not 0 <= severity <= 10:
            problems.append(f"severity {row['severity']} is outside 0-10")
    for column in ("title", "rationale"):
        if not row[column]:
            problems.append(f"{column} is empty")
    if problems:
        raise ValueError(f"{name} line {line}: " + "; ".join(problems))
    return MappedRule(line, row["id"], row["service"], row["action"], row["condition"], tactics, techniques, v19,
                      severity, row["title"], row["rationale"])  # fmt: skip


@cache
def mapped_rules() -> tuple[MappedRule, ...]:
    """The shipped table, read and validated on first use."""
    text = resources.files("sleuth").joinpath("data/cloudtrail_attack.csv").read_text(encoding="utf-8")
    return parse_table(text)
