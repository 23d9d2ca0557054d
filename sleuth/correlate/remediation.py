"""Remediation steps and prevention for an investigation, from `sleuth/data/remediation.toml`.

The table holds the wording and the AWS CLI templates; this module decides which apply to the
entities the investigation found and fills them with the real ids.
"""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from datetime import datetime
from functools import cache
from importlib import resources

import polars as pl

from sleuth.correlate.indicators import data_sent_out

_KINDS = {
    "access_key",
    "access_key_rotate",
    "root_access_key",
    "temporary_key",
    "role",
    "user",
    "user_policy",
    "user_inline_policy",
    "role_policy",
    "new_user",
    "root",
    "instance",
    "bucket",
    "attacker_ip",
    "tampering",
}
_CONDITIONS = {
    "console_without_mfa",
    "root_used",
    "tampering",
    "instance_credentials",
    "iam_persistence",
    "least_privilege",
    "brute_force",
    "exfiltration",
    "flagged_ip",
}


# IAM calls that give an attacker a way back in (users, keys, passwords, policies, trust).
IAM_PERSISTENCE = {
    "CreateUser",
    "CreateAccessKey",
    "CreateLoginProfile",
    "UpdateLoginProfile",
    "AttachUserPolicy",
    "AttachRolePolicy",
    "PutUserPolicy",
    "PutRolePolicy",
    "UpdateAssumeRolePolicy",
    "CreatePolicyVersion",
    "AddUserToGroup",
    "CreateRole",
}


@cache
def table() -> dict:
    """The shipped table, validated: every step names a known kind, every prevention a known condition."""
    text = resources.files("sleuth").joinpath("data/remediation.toml").read_text(encoding="utf-8")
    data = tomllib.loads(text)
    for step in data.get("step", []):
        if step.get("applies") not in _KINDS or not all(step.get(k) for k in ("title", "command", "why")):
            raise ValueError(f"sleuth/data/remediation.toml: bad step {step}")
    for item in data.get("prevention", []):
        if item.get("when") not in _CONDITIONS or not all(item.get(k) for k in ("title", "detail")):
            raise ValueError(f"sleuth/data/remediation.toml: bad prevention {item}")
    return data


_PLACEHOLDER = re.compile(r"\{([a-z_0-9]+)\}")


_VERBATIM = {"restore"}  # values that are themselves commands from the shipped table


def fill(template: str, values: dict, shell: bool = False) -> str:
    """`{name}` placeholders filled from `values`; a missing one stays visible as <name> for the
    responder to fill in. Other braces (JSON in a command) are left alone. In a command (`shell`)
    every value from the logs is shell-quoted: a name written by an attacker must not become code
    when a responder pastes the command."""

    def value(match: re.Match) -> str:
        name = match.group(1)
        found = values.get(name)
        if found in (None, ""):
            return f"<{name.replace('_', '-')}>"
        text = str(found)
        return shlex.quote(text) if shell and name not in _VERBATIM else text

    return _PLACEHOLDER.sub(value, template)


def _render(kind: str, values: dict) -> list[dict]:
    return [
        {
            "applies": kind,
            "title": fill(step["title"], values),
            "command": fill(step["command"], values, shell=True),
            "why": fill(step["why"], values),
        }
        for step in table()["step"]
        if step["applies"] == kind
    ]


def _name(arn: str) -> str:
    return arn.rsplit("/", 1)[-1]


def revoke_policy(moment: datetime) -> str:
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Deny",
                "Action": "*",
                "Resource": "*",
                "Condition": {"DateLessThan": {"aws:TokenIssueTime": moment.strftime("%Y-%m-%dT%H:%M:%SZ")}},
            }
        ],
    }
    return json.dumps(policy, separators=(",", ":"))


def steps(incident, indicators: list[dict], moment: datetime) -> list[dict]:
    """Containment first (keys, sessions, instances), then eradication (users, policies, buckets, logging)."""
    now_text = moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    revoke = revoke_policy(moment)
    out: list[dict] = []
    events = incident.events
    links = incident.links
    created_users = _created_users(events)  # by CreateUser in the scope (a key for an existing user is not one)
    key_owner = _key_owners(events, links)
    for key in sorted(incident.keys | set(key_owner)):
        owner = key_owner.get(key, "")
        if key.startswith("ASIA"):
            continue
        if owner.endswith(":root"):
            out += _render("root_access_key", {"key": key})
        else:
            values = {"key": key, "user_name": _name(owner) if owner else None}
            out += _render("access_key", values)
            if owner not in created_users:  # a user the attacker made gets no new key: it is removed
                out += _render("access_key_rotate", values)
    roles = {p for p in incident.principals if ":role/" in p}
    for key in sorted(k for k in incident.keys if k.startswith("ASIA")):
        owner = key_owner.get(key, "")
        if ":role/" in owner:
            out += _render("temporary_key", {"key": key, "role_name": _name(owner), "revoke_policy": revoke})
            roles.discard(owner)
    for role in sorted(roles):
        out += _render("role", {"role_name": _name(role), "revoke_policy": revoke, "now": now_text})
    for principal in sorted(incident.principals):
        if principal.endswith(":root"):
            out += _render("root", {"account": principal.split(":")[4]})
        elif ":user/" in principal and principal not in created_users:
            out += _render("user", {"user_name": _name(principal)})
    out += _policy_steps(events)
    for user in sorted(created_users):
        if ":user/" in user:
            out += _render("new_user", {"user_name": _name(user)})
    vpcs = _vpcs(incident)
    for instance in sorted(incident.instances):
        out += _render("instance", {"instance": instance, "vpc_id": vpcs.get(instance, "<vpc-id>")})
    for bucket in sorted(_exposed_buckets(events)):
        out += _render("bucket", {"bucket": bucket})
    for address in sorted(incident.addresses):
        cidr = f"{address}/32" if ":" not in address else f"{address}/128"
        out += _render("attacker_ip", {"ip": address, "cidr": cidr})
    for item in indicators:
        if item["type"] == "LOGGING_TAMPERING" and item["succeeded"]:  # a failed attempt changed nothing
            name = _tampered_name(item.get("request"))
            restore = item["restore"].replace("{name}", shlex.quote(name) if name else "<name>")
            out += _render("tampering", {"what": item["what"], "restore": restore})
    unique: dict[str, dict] = {}
    for step in out:
        unique.setdefault(step["command"], step)
    return [{"step": n, **step} for n, step in enumerate(unique.values(), start=1)]


def _created_users(events: pl.DataFrame) -> set[str]:
    if events.is_empty():
        return set()
    made = events.filter((pl.col("action") == "CreateUser") & pl.col("error_code").is_null())
    names = made["request"].str.json_path_match("$.userName").drop_nulls().to_list()
    accounts = made["account"].to_list()
    return {f"arn:aws:iam::{account}:user/{name}" for name, account in zip(names, accounts, strict=False)}


def _key_owners(events: pl.DataFrame, links: pl.DataFrame) -> dict[str, str]:
    owners: dict[str, str] = {}
    if not events.is_empty():
        for key, principal in events.select("access_key", "principal").unique(maintain_order=True).iter_rows():
            if key and principal:
                owners.setdefault(key, principal)
    for key, owner in links.select("issued_key", "issued_to").iter_rows():
        if key and owner:
            owners.setdefault(key, owner)
    return owners


def _policy_steps(events: pl.DataFrame) -> list[dict]:
    """Policies attached or put during the incident, to take off again."""
    out: list[dict] = []
    if events.is_empty():
        return out
    changes = events.filter(
        pl.col("action").is_in(["AttachUserPolicy", "PutUserPolicy", "AttachRolePolicy"])
        & pl.col("error_code").is_null()
    )
    for action, request in changes.select("action", "request").iter_rows():
        data = _json(request)
        if action == "AttachUserPolicy":
            out += _render("user_policy", {"user_name": data.get("userName"), "policy": data.get("policyArn")})
        elif action == "PutUserPolicy":
            out += _render("user_inline_policy", {"user_name": data.get("userName"), "policy": data.get("policyName")})
        else:
            out += _render("role_policy", {"role_name": data.get("roleName"), "policy": data.get("policyArn")})
    return out


def _json(text: str | None) -> dict:
    try:
        value = json.loads(text or "{}")
    except ValueError:
        return {}
    return {k: v for k, v in value.items() if isinstance(v, str)} if isinstance(value, dict) else {}


def _tampered_name(request: str | None) -> str | None:
    data = _json(request)
    for key in (
        "name",
        "trailName",
        "detectorId",
        "configurationRecorderName",
        "deliveryChannelName",
        "logGroupName",
        "resolverQueryLogConfigId",
        "analyzerName",
        "bucketName",
        "eventDataStore",
    ):
        if data.get(key):
            return data[key].rsplit("/", 1)[-1] if key == "name" and data[key].startswith("arn:") else data[key]
    return None


def _vpcs(incident) -> dict[str, str]:
    flows = incident.flows
    if flows.is_empty():
        return {}
    pairs = flows.select("instance_id", "vpc_id").drop_nulls().unique()
    return dict(pairs.iter_rows())


def _exposed_buckets(events: pl.DataFrame) -> set[str]:
    if events.is_empty():
        return set()
    changed = events.filter(
        pl.col("action").is_in(
            [
                "PutBucketPolicy",
                "PutBucketAcl",
                "DeletePublicAccessBlock",
                "PutBucketPublicAccessBlock",
                "DeleteBucketPolicy",
                "PutBucketReplication",
            ]
        )
        & pl.col("error_code").is_null()
    )
    return set(changed["request"].str.json_path_match("$.bucketName").drop_nulls().to_list())


# --- prevention ------------------------------------------------------------------------------


def prevention(incident, indicators: list[dict], related: pl.DataFrame) -> list[dict]:
    evidence = _evidence(incident, indicators, related)
    out = []
    for item in table()["prevention"]:
        for values in evidence.get(item["when"], []):
            out.append(
                {
                    "control": fill(item["title"], values),
                    "detail": fill(item["detail"], values),
                    "because": item["when"],
                }
            )
    return out


def _evidence(incident, indicators: list[dict], related: pl.DataFrame) -> dict[str, list[dict]]:
    events = incident.events
    found: dict[str, list[dict]] = {}
    if events.is_empty():
        return found
    logins = events.filter((pl.col("action") == "ConsoleLogin") & pl.col("error_code").is_null())
    no_mfa = logins.filter(~pl.col("mfa").fill_null(False))["principal"].drop_nulls().unique().sort().to_list()
    if no_mfa:
        found["console_without_mfa"] = [{"principals": ", ".join(p.split(":", 5)[-1] for p in no_mfa)}]
    if any(p.endswith(":root") for p in incident.principals):
        found["root_used"] = [{}]
    tampering = sorted({i["api_name"] for i in indicators if i["type"] == "LOGGING_TAMPERING"})
    if tampering:
        found["tampering"] = [{"actions": ", ".join(tampering)}]
    types = " ".join(related["type"].to_list()) if len(related) else ""
    if "InstanceCredentialExfiltration" in types or "instance-credentials" in types:
        found["instance_credentials"] = [{}]
    persistence = sorted(
        set(events.filter(pl.col("error_code").is_null() & pl.col("action").is_in(list(IAM_PERSISTENCE)))["action"])
    )
    if persistence:
        found["iam_persistence"] = [{"actions": ", ".join(persistence)}]
    used = (
        events.filter(pl.col("error_code").is_null() & ~pl.col("principal").str.ends_with(":root"))
        .group_by("principal")
        .agg((pl.col("service").str.replace(r"\.amazonaws\.com$", "") + ":" + pl.col("action")).unique().sort())
    )
    found["least_privilege"] = [
        {
            "principal": p.split(":", 5)[-1],
            "count": len(apis),
            "apis": ", ".join(apis[:15]) + (" ..." if len(apis) > 15 else ""),
        }
        for p, apis in used.sort("principal").iter_rows()
        if p
    ]
    if "brute-force" in types or "BruteForce" in types:
        found["brute_force"] = [{}]
    outbound = sorted({i["peer_address"] for i in data_sent_out(indicators)})
    if outbound:
        found["exfiltration"] = [{"peers": ", ".join(outbound)}]
    flagged = sorted({i["ip_address"] for i in indicators if i["type"] == "FLAGGED_IP_ADDRESS"})
    if flagged:
        found["flagged_ip"] = [{"ips": ", ".join(flagged)}]
    return found
