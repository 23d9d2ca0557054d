"""The conditions a row of the CloudTrail mapping table may name (`sleuth/data/cloudtrail_attack.csv`).

A condition narrows a row to the events of its service and action that matter: `ConsoleLogin` only
without MFA, `AuthorizeSecurityGroupIngress` only to the whole internet. Each takes the candidate
events (canonical `events` columns, already limited to the row's service and action) and returns one
boolean per row. Most are polars expressions over the JSON text of `request` / `response`; the few
that must read a policy document parse only the rows a cheap text test lets through.

The JSON text of requests is not in one layout (separators differ between parse paths, and policy
documents are JSON strings inside JSON, so their quotes are escaped): the patterns allow both.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson
import polars as pl

from sleuth.correlate.entities import failed

# A JSON key, in plain or escaped (policy-inside-a-string) form, and a quote of either form.
_Q = r'\\?"'


def _key(name: str) -> str:
    return rf"{_Q}{name}{_Q}\s*:\s*"


def _text(column: str, pattern: str) -> pl.Expr:
    """`column` matches the regular expression (null text: no match)."""
    return pl.col(column).str.contains(pattern).fill_null(False)


def failed_expr() -> pl.Expr:
    """The call did not succeed: an error code, or a console sign-in that failed (which has none)."""
    return failed()


def succeeded_expr() -> pl.Expr:
    return ~failed_expr()


_HUMAN_CALLERS = ["IAMUser", "Root"]


def _request_value(path: str) -> pl.Expr:
    return pl.col("request").str.json_path_match(path)


# --- policy documents (parsed in Python, on the few rows a text test lets through) -------------


def _loads(text: str | None) -> Any:
    if not text:
        return None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return None


def _documents(value: Any, depth: int = 0) -> Iterator[dict]:
    """Every policy document (a dict with a Statement) in a request: nested, or as JSON text
    (sometimes URL-encoded) inside it."""
    if depth > 12:
        return
    if isinstance(value, dict):
        if "Statement" in value:
            yield value
            return
        for item in value.values():
            yield from _documents(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            yield from _documents(item, depth + 1)
    elif isinstance(value, str):
        text = value.strip()
        if text.startswith("%7B") or text.startswith("%7b"):
            text = urllib.parse.unquote(text)
        if text.startswith("{") and "Statement" in text:
            yield from _documents(_loads(text), depth + 1)


def _statements(document: dict) -> list[dict]:
    statements = document.get("Statement")
    statements = statements if isinstance(statements, list) else [statements]
    return [s for s in statements if isinstance(s, dict) and str(s.get("Effect", "")).lower() == "allow"]


def _as_list(value: Any) -> list:
    return value if isinstance(value, list) else [value]


def _principals(statement: dict) -> list[str]:
    """The AWS principals of a statement ("*" for everyone)."""
    principal = statement.get("Principal")
    if principal == "*":
        return ["*"]
    if isinstance(principal, dict):
        return [str(p) for p in _as_list(principal.get("AWS")) if p is not None]
    return []


_ACCOUNT_IN_ARN = re.compile(r"^arn:[^:]+:(?:iam|sts)::(\d{12}):")
_ACCOUNT = re.compile(r"^\d{12}$")


def _account_of(principal: str) -> str | None:
    if _ACCOUNT.match(principal):
        return principal
    found = _ACCOUNT_IN_ARN.match(principal)
    return found.group(1) if found else None


def _unconditional(statement: dict) -> bool:
    return not statement.get("Condition")


def foreign_accounts(request: str | None, own: str | None) -> list[str]:
    """Accounts other than `own` (or "*") that a request trusts, grants or sends data to: AWS
    principals of Allow statements, a resource-policy `principal` field, a replication destination."""
    value = _loads(request)
    found: list[str] = []
    for document in _documents(value):
        for statement in _statements(document):
            for principal in _principals(statement):
                account = "*" if principal == "*" else _account_of(principal)
                if account and account != own:
                    found.append(account)
    if isinstance(value, dict):
        principal = value.get("principal")
        if isinstance(principal, str):
            account = "*" if principal.strip() == "*" else _account_of(principal.strip())
            if account and account != own:
                found.append(account)
        found.extend(_destination_accounts(value, own))
    return list(dict.fromkeys(found))


def _destination_accounts(value: Any, own: str | None, depth: int = 0) -> Iterator[str]:
    """Replication destinations in another account (`Destination.Account`)."""
    if depth > 8:
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if key.lower() == "destination" and isinstance(item, dict):
                account = str(item.get("Account") or item.get("account") or "")
                if _ACCOUNT.match(account) and account != own:
                    yield account
            else:
                yield from _destination_accounts(item, own, depth + 1)
    elif isinstance(value, list):
        for item in value:
            yield from _destination_accounts(item, own, depth + 1)


def shared_accounts(request: str | None) -> list[str]:
    """Accounts (or "all") a snapshot, image or DB snapshot permission adds."""
    value = _loads(request)
    found: list[str] = []
    if not isinstance(value, dict):
        return found
    for attribute in ("createVolumePermission", "launchPermission"):
        add = value.get(attribute, {}).get("add", {}) if isinstance(value.get(attribute), dict) else {}
        items = add.get("items") if isinstance(add, dict) else None
        for item in items if isinstance(items, list) else []:
            if isinstance(item, dict):
                found.extend(str(v) for k, v in item.items() if k in ("userId", "group", "organizationArn") and v)
    for item in _as_list(value.get("valuesToAdd")):
        if item is not None:
            found.append(str(item))
    return list(dict.fromkeys(found))


def _per_row(frame: pl.DataFrame, prefilter: pl.Expr, test: Callable[[dict], bool]) -> pl.Series:
    """A test in Python, run only on the rows `prefilter` lets through."""
    candidates = frame.select(prefilter.fill_null(False).alias("c")).to_series()
    rows = candidates.arg_true().to_list()
    result = [False] * len(frame)
    if rows:
        subset = frame[rows].select("request", "account").to_dicts()
        for row, record in zip(rows, subset, strict=True):
            result[row] = test(record)
    return pl.Series("condition", result, dtype=pl.Boolean)


_ADMIN_POLICIES = ("AdministratorAccess", "IAMFullAccess", "PowerUserAccess", "AWSOrganizationsFullAccess")


def _grants_everything(statement: dict) -> bool:
    actions = {str(a).lower() for a in _as_list(statement.get("Action"))}
    resources = {str(r) for r in _as_list(statement.get("Resource"))}
    return bool(actions & {"*", "iam:*", "*:*"}) and "*" in resources


def _admin_document(record: dict) -> bool:
    return any(_grants_everything(s) for d in _documents(_loads(record["request"])) for s in _statements(d))


def _public_document(record: dict) -> bool:
    return any(
        "*" in _principals(s) and _unconditional(s)
        for d in _documents(_loads(record["request"]))
        for s in _statements(d)
    )


_ADMIN_PORTS = (22, 23, 3389, 5985, 5986, 1433, 1521, 3306, 5432, 6379, 9200, 11211, 27017, 2375, 2376)


def _opens_admin_port(record: dict) -> bool:
    """An ingress rule to the whole internet that covers SSH, RDP, a database or every port."""
    value = _loads(record["request"])
    permissions: list[dict] = []
    if isinstance(value, dict):
        if "cidrIp" in value or "cidrIpv6" in value:  # the older flat form: cidrIp, fromPort, toPort, ipProtocol
            permissions.append({k: v for k, v in value.items() if k != "ipPermissions"})
        items = value.get("ipPermissions", {})
        items = items.get("items") if isinstance(items, dict) else None
        permissions.extend(item for item in items or [] if isinstance(item, dict))
    for permission in permissions:
        if not _world_open_text(orjson.dumps(permission).decode()):
            continue
        protocol = str(permission.get("ipProtocol", ""))
        if protocol in ("-1", "all"):
            return True
        try:
            low, high = int(permission.get("fromPort", -1)), int(permission.get("toPort", -1))
        except (TypeError, ValueError):
            continue
        if low == -1 or any(low <= port <= high for port in _ADMIN_PORTS):
            return True
    return False


_WORLD = _key("cidrIp(?:v6)?") + _Q + r'[^"\\]*/0' + _Q
_WORLD_RE = re.compile(_WORLD)


def _world_open_text(text: str) -> bool:
    return bool(_WORLD_RE.search(text))


# --- the conditions --------------------------------------------------------------------------


@dataclass(frozen=True)
class Condition:
    name: str
    description: str
    test: Callable[[pl.DataFrame], pl.Series]


def _expr(expr_factory: Callable[[], pl.Expr]) -> Callable[[pl.DataFrame], pl.Series]:
    def test(frame: pl.DataFrame) -> pl.Series:
        return frame.select(expr_factory().fill_null(False).alias("condition")).to_series()

    return test


def _for_other_user() -> pl.Expr:
    target = _request_value("$.userName")
    return (
        pl.col("actor_type").is_in(_HUMAN_CALLERS)
        & target.is_not_null()
        & (pl.col("user_name").is_null() | (target != pl.col("user_name")) | (pl.col("actor_type") == "Root"))
    )


def _shared(frame: pl.DataFrame) -> pl.Series:
    prefilter = _text("request", r'"add"\s*:\s*\{|"valuesToAdd"\s*:\s*\[\s*"')
    return _per_row(frame, prefilter, lambda record: bool(shared_accounts(record["request"])))


def _foreign(frame: pl.DataFrame) -> pl.Series:
    everyone = _key("[Pp]rincipal") + _Q + r"\*|" + _key("AWS") + r"\[?\s*" + _Q + r"\*"
    prefilter = _text("request", r"\d{12}|%22Principal%22|" + everyone)
    return _per_row(frame, prefilter, lambda record: bool(foreign_accounts(record["request"], record["account"])))


def _admin(frame: pl.DataFrame) -> pl.Series:
    by_arn = frame.select(
        _request_value("$.policyArn").str.contains(r":policy/(?:" + "|".join(_ADMIN_POLICIES) + ")$").fill_null(False)
    ).to_series()
    by_document = _per_row(frame, _text("request", _key("Resource") + "|%22Resource%22"), _admin_document)
    return by_arn | by_document


def _public_policy(frame: pl.DataFrame) -> pl.Series:
    prefilter = _text(
        "request", _key("Principal") + r"(?:" + _Q + r"\*|\{\s*" + _key("AWS") + r"\[?\s*" + _Q + r"\*)|%22Principal%22"
    )
    return _per_row(frame, prefilter, _public_document)


def _public_acl() -> pl.Expr:
    groups = r"acs\.amazonaws\.com/groups/global/(?:AllUsers|AuthenticatedUsers)"
    canned = _key("x-amz-acl") + r"\[?\s*" + _Q + r"(?:public-read|public-read-write|authenticated-read)"
    return _text("request", groups) | _text("request", canned)


def _admin_port(frame: pl.DataFrame) -> pl.Series:
    return _per_row(frame, _text("request", _WORLD), _opens_admin_port)


CONDITIONS: dict[str, Condition] = {
    c.name: c
    for c in [
        Condition("succeeded", "the call succeeded", _expr(succeeded_expr)),
        Condition("failed", "the call failed (an error code, or a failed console sign-in)", _expr(failed_expr)),
        Condition(
            "no_mfa",
            "a successful console sign-in by an IAM user or root without MFA (federated sign-ins do MFA at their "
            "identity provider and are not counted)",
            _expr(
                lambda: (
                    pl.col("actor_type").is_in(_HUMAN_CALLERS)
                    & _text("additional", _key("MFAUsed") + _Q + "No")
                    & succeeded_expr()
                )
            ),
        ),
        Condition("by_root", "the caller is the account's root user", _expr(lambda: pl.col("actor_type") == "Root")),
        Condition(
            "for_root",
            "the root user acts on its own credentials (no userName in the request)",
            _expr(lambda: (pl.col("actor_type") == "Root") & _request_value("$.userName").is_null()),
        ),
        Condition(
            "for_other_user",
            "an IAM user or root acts on another IAM user (request userName differs from the caller's); role "
            "sessions, usually automation, are left to the row without condition",
            _expr(_for_other_user),
        ),
        Condition(
            "admin_policy",
            "attaches AdministratorAccess, IAMFullAccess, PowerUserAccess or AWSOrganizationsFullAccess, or writes "
            'a policy with an Allow statement of Action "*" (or "iam:*") on Resource "*"',
            _admin,
        ),
        Condition(
            "foreign_principal",
            'a policy or permission that trusts or grants another AWS account, or everyone ("*"), or a replication '
            "destination in another account",
            _foreign,
        ),
        Condition(
            "shared_with_other_account",
            'adds a create-volume / launch / restore permission for another account or for "all"',
            _shared,
        ),
        Condition(
            "public_bucket_policy",
            'a bucket policy with an Allow statement for Principal "*" (or AWS "*") without a Condition',
            _public_policy,
        ),
        Condition(
            "public_acl",
            "an ACL granting AllUsers or AuthenticatedUsers, or a public canned ACL",
            _expr(_public_acl),
        ),
        Condition(
            "public_access_block_off",
            "a public access block configuration with a setting turned off",
            _expr(
                lambda: _text(
                    "request",
                    _key("(?:BlockPublicAcls|IgnorePublicAcls|BlockPublicPolicy|RestrictPublicBuckets)") + "false",
                )
            ),
        ),
        Condition(
            "world_open_ingress",
            "an ingress rule from 0.0.0.0/0 or ::/0 (any address ending in /0)",
            _expr(lambda: _text("request", _WORLD)),
        ),
        Condition(
            "world_open_admin_port",
            "an ingress rule from the whole internet covering SSH, RDP, WinRM, a database port, or every port",
            _admin_port,
        ),
        Condition(
            "world_open_acl",
            "a network ACL entry allowing inbound traffic from 0.0.0.0/0 or ::/0",
            _expr(
                lambda: (
                    _text("request", _key("(?:cidrBlock|ipv6CidrBlock)") + _Q + r'[^"\\]*/0' + _Q)
                    & _text("request", _key("ruleAction") + _Q + "allow")
                    & _text("request", _key("egress") + "false")
                )
            ),
        ),
        Condition(
            "with_decryption",
            "SecureString values are returned decrypted (withDecryption true)",
            _expr(lambda: _text("request", _key("withDecryption") + "true")),
        ),
        Condition(
            "user_data",
            "reads or writes an instance's user data",
            _expr(lambda: _text("request", _key("userData") + "|" + _key("attribute") + _Q + "userData")),
        ),
        Condition(
            "excludes_management_events",
            "event selectors that stop logging management events or write events",
            _expr(
                lambda: (
                    _text("request", _key("includeManagementEvents") + "false")
                    | _text("request", _key("readWriteType") + _Q + "ReadOnly")
                )
            ),
        ),
        Condition(
            "disables",
            "turns the feature off (enable / enabled false)",
            _expr(lambda: _text("request", _key("[Ee]nabled?") + "false")),
        ),
        Condition(
            "logging_off",
            "bucket logging configuration without a LoggingEnabled target",
            _expr(lambda: pl.col("request").is_not_null() & ~_text("request", _key("LoggingEnabled"))),
        ),
        Condition(
            "expiration_rule",
            "a lifecycle configuration that expires (deletes) objects",
            _expr(lambda: _text("request", _key("(?:Expiration|NoncurrentVersionExpiration)"))),
        ),
        Condition(
            "versioning_suspended",
            "bucket versioning suspended (or MFA delete turned off)",
            _expr(lambda: _text("request", _key("Status") + _Q + "Suspended|" + _key("MfaDelete") + _Q + "Disabled")),
        ),
        Condition(
            "gpu_instance",
            "GPU, accelerator or very large instance types (p*, g*, inf*, trn*, dl*, x*, u-*, *.metal ...)",
            _expr(
                lambda: _text(
                    "request",
                    _key("instanceType") + _Q + r"(?:p\d|g\d|inf\d|trn\d|dl\d|vt\d|f\d|x\d|u-|hpc|[a-z0-9]+\.metal)",
                )
            ),
        ),
        Condition(
            "lambda_layers",
            "sets the function's layers (code that runs with the function: an extension can read every invocation)",
            _expr(lambda: _text("request", _key("layers") + r"\[\s*" + _Q)),
        ),
        Condition(
            "auth_type_none",
            "a function URL without authentication (AuthType NONE)",
            _expr(lambda: _text("request", _key("authType") + _Q + "NONE")),
        ),
        Condition(
            "publicly_accessible",
            "makes a database instance reachable from the internet (publiclyAccessible true)",
            _expr(lambda: _text("request", _key("publiclyAccessible") + "true")),
        ),
        Condition(
            "master_password",
            "resets a database's master user password",
            _expr(lambda: _text("request", _key("masterUserPassword"))),
        ),
    ]
}
