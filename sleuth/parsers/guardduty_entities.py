"""The entities of a GuardDuty finding, as `finding_entities` rows: (entity type, entity id, role).

Roles: `actor` (who acted), `target` (what was acted on), `network peer`, `signal` (a finding an
attack sequence is built from) and `attack sequence` (the sequence a finding belongs to). The
finding's resource is a target unless GuardDuty gives its role as ACTOR. IAM identities are ARNs;
container clusters, pods and Kubernetes subjects join their name, cluster and account with `~`.
"""

from __future__ import annotations

import re
from typing import Any

from sleuth.netaddr import parse_ip

# Lenient readers of a JSON value: GuardDuty fields come and go, and a wrong type reads as absent.


def as_text(value: Any) -> str | None:
    if isinstance(value, str):
        value = value.strip()
        return value or None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def as_dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list:
    return value if isinstance(value, list) else []


def as_dicts(value: Any) -> list[dict]:
    return [item for item in as_list(value) if isinstance(item, dict)]


def finding_entities(finding: dict, account: str | None, partition: str) -> list[tuple[str, str, str]]:
    """The (entity type, entity id, role) rows of one finding whose keys are lower-cased."""
    service = as_dict(finding.get("service"))
    resource_role = "actor" if (as_text(service.get("resourcerole")) or "").upper() == "ACTOR" else "target"
    entities = _Entities(account, partition, resource_role)
    entities.add("AwsAccount", account, "target")
    _resource_entities(as_dict(finding.get("resource")), entities)
    _action_entities(as_dict(service.get("action")), entities)
    _sequence_entities(as_dict(as_dict(service.get("detection")).get("sequence")), entities)
    entities.add("Finding", _finding_id(finding.get("associatedattacksequencearn")), "attack sequence")
    return list(entities.rows)


class _Entities:
    """The entity rows of one finding, deduplicated, in the order found."""

    def __init__(self, account: str | None, partition: str, resource_role: str) -> None:
        self.account = account
        self.partition = partition
        self.resource_role = resource_role
        self.rows: dict[tuple[str, str, str], None] = {}

    def add(self, entity_type: str, entity_id: Any, role: str) -> None:
        text = as_text(entity_id)
        if text:
            self.rows.setdefault((entity_type, text, role), None)

    def ip(self, value: Any, role: str) -> None:
        address = parse_ip(as_text(value))
        if address is not None and not address.is_unspecified:
            self.add("IpAddress", str(address), role)

    def remote_ip(self, details: Any, role: str) -> None:
        details = as_dict(details)
        self.ip(details.get("ipaddressv4"), role)
        self.ip(details.get("ipaddressv6"), role)

    def iam_arn(self, kind: str, name: Any, account: Any = None) -> str | None:
        name, account = as_text(name), as_text(account) or self.account
        if not name or not account:
            return None
        if name.startswith("arn:"):
            return name
        return f"arn:{self.partition}:iam::{account}:{kind}/{name}"

    def principal(self, user_type: Any, name: Any, principal_id: Any, role: str, account: Any = None) -> None:
        """An IAM identity described by (type, name, principal id), as GuardDuty gives it."""
        kind = (as_text(user_type) or "").lower()
        principal = as_text(principal_id)
        account = as_text(account) or self.account
        if kind == "iamuser":
            self.add("AwsUser", self.iam_arn("user", name, account), role)
        elif kind == "assumedrole":
            self.add("AwsRole", self.iam_arn("role", name, account), role)
            if principal and ":" in principal:
                self.add("AwsRoleSession", principal, role)
        elif kind == "root" and account:
            self.add("AwsUser", f"arn:{self.partition}:iam::{account}:root", role)
        elif kind == "federateduser" and account and as_text(name):
            self.add("FederatedUser", f"arn:{self.partition}:sts::{account}:federated-user/{as_text(name)}", role)

    def cluster(self, name: Any, kind: str, account: Any = None) -> str | None:
        name, account = as_text(name), as_text(account) or self.account
        if not name or not account:
            return None
        if name.startswith("arn:"):
            name = name.rsplit("/", 1)[-1]
        entity_id = f"{name}~{account}~{kind}"
        self.add("ContainerCluster", entity_id, self.resource_role)
        return name


_INSTANCE_ID = re.compile(r"\bi-[0-9a-f]{8,17}\b")


def _finding_id(uid: Any) -> str | None:
    text = as_text(uid)
    if text and "/finding/" in text:
        return text.rsplit("/finding/", 1)[1] or None
    return text


def _resource_entities(resource: dict, entities: _Entities) -> None:
    role = entities.resource_role
    key = as_dict(resource.get("accesskeydetails"))
    entities.add("AccessKey", key.get("accesskeyid"), "actor")
    entities.principal(key.get("usertype"), key.get("username"), key.get("principalid"), "actor")

    instance = as_dict(resource.get("instancedetails"))
    entities.add("Ec2Instance", instance.get("instanceid"), role)
    for interface in as_dicts(instance.get("networkinterfaces")):
        entities.ip(interface.get("privateipaddress"), role)
        for private in as_dicts(interface.get("privateipaddresses")):
            entities.ip(private.get("privateipaddress"), role)
        entities.ip(interface.get("publicip"), role)
        for address in as_list(interface.get("ipv6addresses")):
            entities.ip(address, role)

    for bucket in as_dicts(resource.get("s3bucketdetails")):
        name = as_text(bucket.get("name")) or (as_text(bucket.get("arn")) or "").removeprefix("arn:aws:s3:::")
        entities.add("S3Bucket", name, role)

    eks = as_dict(resource.get("eksclusterdetails"))
    cluster = entities.cluster(eks.get("name") or eks.get("arn"), "EKS")
    ecs = as_dict(resource.get("ecsclusterdetails"))
    entities.cluster(ecs.get("name") or ecs.get("arn"), "ECS")
    for container in as_dicts(as_dict(ecs.get("taskdetails")).get("containers")):
        entities.add("ContainerImage", container.get("image"), role)
    entities.add("ContainerImage", as_dict(resource.get("containerdetails")).get("image"), role)

    _kubernetes_entities(as_dict(resource.get("kubernetesdetails")), cluster, entities)

    lambda_details = as_dict(resource.get("lambdadetails"))
    entities.add("AwsRole", lambda_details.get("role"), role)


def _kubernetes_entities(kubernetes: dict, cluster: str | None, entities: _Entities) -> None:
    """The subjects and pod of a Kubernetes resource; their ids need the EKS cluster's name."""
    role = entities.resource_role
    user = as_dict(kubernetes.get("kubernetesuserdetails"))
    impersonated = as_dict(user.get("impersonateduser"))
    for subject in (user.get("username"), impersonated.get("username")):
        if as_text(subject) and cluster and entities.account:
            entities.add("KubernetesSubject", f"{as_text(subject)}~{cluster}~{entities.account}", "actor")
    workload = as_dict(kubernetes.get("kubernetesworkloaddetails"))
    if (as_text(workload.get("type")) or "").lower() in ("pod", "pods") and cluster and as_text(workload.get("uid")):
        entities.add("ContainerPod", f"{as_text(workload.get('uid'))}~{cluster}~{entities.account}~EKS", role)
    for container in as_dicts(workload.get("containers")):
        entities.add("ContainerImage", container.get("image"), role)


_AFFECTED = {
    "aws::s3::bucket": ("S3Bucket", None),
    "aws::iam::role": ("AwsRole", "role"),
    "aws::iam::user": ("AwsUser", "user"),
    "aws::ec2::instance": ("Ec2Instance", None),
}


def _action_entities(action: dict, entities: _Entities) -> None:
    role = entities.resource_role
    api = as_dict(action.get("awsapicallaction"))
    entities.remote_ip(api.get("remoteipdetails"), "actor")
    entities.add("AwsAccount", as_dict(api.get("remoteaccountdetails")).get("accountid"), "actor")
    entities.add("Domain", as_dict(api.get("domaindetails")).get("domain"), "actor")
    entities.add("UserAgent", api.get("useragent"), "actor")
    for kind, value in as_dict(api.get("affectedresources")).items():
        entity_type, iam_kind = _AFFECTED.get(kind, (None, None))
        if entity_type and iam_kind:
            entities.add(entity_type, entities.iam_arn(iam_kind, value), "target")
        elif entity_type:
            entities.add(entity_type, value, "target")

    network = as_dict(action.get("networkconnectionaction"))
    entities.remote_ip(network.get("remoteipdetails"), "network peer")
    entities.remote_ip(network.get("localipdetails"), role)

    for probe in as_dicts(as_dict(action.get("portprobeaction")).get("portprobedetails")):
        entities.remote_ip(probe.get("remoteipdetails"), "network peer")
        entities.remote_ip(probe.get("localipdetails"), role)

    dns = as_dict(action.get("dnsrequestaction"))
    entities.add("Domain", dns.get("domain"), "network peer")

    kubernetes = as_dict(action.get("kubernetesapicallaction"))
    entities.remote_ip(kubernetes.get("remoteipdetails"), "actor")
    for address in as_list(kubernetes.get("sourceips")):
        entities.ip(address, "actor")
    entities.add("UserAgent", kubernetes.get("useragent"), "actor")

    entities.remote_ip(as_dict(action.get("rdsloginattemptaction")).get("remoteipdetails"), "actor")


def _sequence_entities(sequence: dict, entities: _Entities) -> None:
    """Actors, resources, endpoints and finding signals of an attack sequence."""
    for actor in as_dicts(sequence.get("actors")):
        _sequence_actor(actor, entities)
    for resource in as_dicts(sequence.get("resources")):
        _sequence_resource(resource, entities)
    for endpoint in as_dicts(sequence.get("endpoints")):
        entities.ip(endpoint.get("ip"), "network peer")
        entities.add("Domain", endpoint.get("domain"), "network peer")
    for signal in as_dicts(sequence.get("signals")):
        if (as_text(signal.get("type")) or "").upper() == "FINDING":
            entities.add("Finding", _finding_id(signal.get("uid")), "signal")


def _sequence_actor(actor: dict, entities: _Entities) -> None:
    user, session = as_dict(actor.get("user")), as_dict(actor.get("session"))
    account = as_text(as_dict(user.get("account")).get("uid"))
    if account != entities.account:  # an actor from another account
        entities.add("AwsAccount", account, "actor")
    entities.add("AccessKey", user.get("credentialuid"), "actor")
    kind = (as_text(user.get("type")) or "").lower()
    uid, issuer = as_text(user.get("uid")), as_text(session.get("issuer"))
    candidates = (uid, as_text(session.get("uid")))
    session_id = next((v for v in candidates if v and ":" in v and not v.startswith("arn:")), None)
    if kind == "assumedrole" and issuer and ":role/" in issuer:
        entities.add("AwsRole", issuer, "actor")
        entities.add("AwsRoleSession", session_id, "actor")
    else:
        name = uid if uid and uid.startswith("arn:") else user.get("name")
        entities.principal(user.get("type"), name, session_id, "actor", account)


def _sequence_resource(resource: dict, entities: _Entities) -> None:
    kind = (as_text(resource.get("resourcetype")) or "").upper()
    uid, name = as_text(resource.get("uid")), as_text(resource.get("name"))
    account = as_text(resource.get("accountid"))
    data = as_dict(resource.get("data"))
    if kind == "S3_BUCKET":
        entities.add("S3Bucket", name or (uid or "").removeprefix("arn:aws:s3:::").split("/", 1)[0], "target")
    elif kind == "EC2_INSTANCE":
        found = next((m.group(0) for v in (uid, name) if v for m in [_INSTANCE_ID.search(v)] if m), None)
        entities.add("Ec2Instance", found or uid, "target")
    elif kind == "ACCESS_KEY":
        entities.add("AccessKey", uid, "target")
        key = as_dict(data.get("accesskey"))
        entities.principal(key.get("usertype"), key.get("username"), key.get("principalid"), "target", account)
    elif kind == "EKS_CLUSTER":
        entities.cluster(name or uid, "EKS", account)
    elif kind == "ECS_CLUSTER":
        entities.cluster(name or uid, "ECS", account)
    elif kind == "CONTAINER":
        entities.add("ContainerImage", as_dict(data.get("container")).get("image"), "target")
