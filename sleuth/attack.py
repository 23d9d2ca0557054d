"""MITRE ATT&CK vocabulary shared by every producer of findings: tactic names and technique ids.

GuardDuty finding types map to tactics and techniques through the data table
`sleuth/data/guardduty_tactics.csv` (see `tactic_table`), keyed by the type's ThreatPurpose (the part
before `:`) with more specific rows for known types.
"""

from __future__ import annotations

import csv
import fnmatch
import io
import re
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import resources

# ATT&CK's enterprise tactics in kill-chain order; the two newest are appended, out of that order.
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
# Detective's tactic chain, left to right (the order of a finding group's tactics): ATT&CK v19's
# split of Defense Evasion takes its place, and the tactics before Initial Access come first.
KILL_CHAIN: tuple[str, ...] = (
    *ATTACK_TACTICS[: ATTACK_TACTICS.index("Defense Evasion") + 1],
    "Stealth",
    "Defense Impairment",
    *ATTACK_TACTICS[ATTACK_TACTICS.index("Defense Evasion") + 1 : ATTACK_TACTICS.index("Stealth")],
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
_TACTIC_ID_IN_TEXT = re.compile(r"\bTA\d{4}\b")
_TECHNIQUE = re.compile(r"^T\d{4}(?:\.(?:\d{3}|A\d{3}))?$")
_TECHNIQUE_IN_TEXT = re.compile(r"\bT\d{4}(?:\.(?:\d{3}|A\d{3}))?\b")


def canonical_tactic(value: str) -> str:
    """An ATT&CK tactic by its usual name ("DefenseEvasion", "defense_evasion", "TA0005" → "Defense Evasion");
    anything else is returned stripped."""
    text = value.strip()
    found = _TACTIC_ID_IN_TEXT.search(text)
    if found and found.group(0) in _TACTIC_IDS:
        return _TACTIC_IDS[found.group(0)]
    return _TACTIC_KEYS.get(re.sub(r"[^a-z]", "", text.lower()), text)


def technique_ids(text: str) -> list[str]:
    """The technique ids named in free text ("T1078.004 - Valid Accounts: Cloud Accounts" → ["T1078.004"])."""
    return _TECHNIQUE_IN_TEXT.findall(text)


# ---------------------------------------------------------------------------------------------
# The GuardDuty tactic table: sleuth/data/guardduty_tactics.csv, loaded and validated once.

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
        rule = _rule(line, row)
        key = (rule.purpose.lower(), rule.type.lower())
        if key in seen:
            raise ValueError(f"guardduty tactic table line {line}: duplicate row for {rule.purpose or '*'} {rule.type}")
        seen.add(key)
        rules.append(rule)
    return TacticTable(tuple(rules))


def _rule(line: int, row: dict[str, str]) -> TacticRule:
    """One validated row; ValueError naming the line when it is not."""
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
    return TacticRule(line, purpose, pattern, tactics, techniques, row["note"].strip())


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
