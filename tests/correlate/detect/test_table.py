"""The CloudTrail → ATT&CK mapping table (sleuth/data/cloudtrail_attack.csv) and the GuardDuty tactic table."""

from __future__ import annotations

from pathlib import Path

import pytest

from sleuth import attack
from sleuth.correlate.detect import table
from sleuth.correlate.detect._conditions import CONDITIONS

HEADER = ",".join(table.COLUMNS) + "\n"
GOOD = "cloudtrail-stop-logging,cloudtrail.amazonaws.com,StopLogging,,Defense Evasion,T1562.008,T1685.002,7,t,r\n"


def test_the_shipped_table_is_valid_and_large_enough():
    rules = table.mapped_rules()
    assert len(rules) >= 80
    assert len({rule.id for rule in rules}) == len(rules)
    assert len({(r.service, r.action, r.condition) for r in rules}) == len(rules)
    for rule in rules:
        assert set(rule.tactics) <= set(attack.ATTACK_TACTICS), rule.id
        assert not rule.condition or rule.condition in CONDITIONS, rule.id
        if not rule.context_only:
            assert rule.detection().severity == rule.severity  # a valid Detection
    assert sum(not rule.context_only for rule in rules) >= 80  # rows that make findings


def test_the_table_is_loaded_once():
    assert table.mapped_rules() is table.mapped_rules()


REQUIRED = [
    ("cloudtrail", "StopLogging"), ("cloudtrail", "DeleteTrail"), ("cloudtrail", "UpdateTrail"),
    ("cloudtrail", "PutEventSelectors"), ("ec2", "DeleteFlowLogs"), ("guardduty", "DeleteDetector"),
    ("guardduty", "UpdateDetector"), ("guardduty", "DisassociateFromMasterAccount"),
    ("guardduty", "DeletePublishingDestination"), ("config", "StopConfigurationRecorder"),
    ("config", "DeleteConfigurationRecorder"), ("config", "DeleteDeliveryChannel"),
    ("route53resolver", "DeleteResolverQueryLogConfig"), ("route53resolver", "DisassociateResolverQueryLogConfig"),
    ("organizations", "LeaveOrganization"), ("iam", "CreateUser"), ("iam", "CreateAccessKey"),
    ("iam", "CreateLoginProfile"), ("iam", "UpdateLoginProfile"), ("iam", "AttachUserPolicy"),
    ("iam", "PutUserPolicy"), ("iam", "UpdateAssumeRolePolicy"), ("iam", "CreateRole"), ("iam", "AddUserToGroup"),
    ("iam", "CreatePolicyVersion"), ("iam", "SetDefaultPolicyVersion"), ("ec2", "GetPasswordData"),
    ("ec2", "ModifyInstanceAttribute"), ("ssm", "SendCommand"), ("ssm", "StartSession"),
    ("lambda", "UpdateFunctionCode"), ("lambda", "AddPermission"), ("secretsmanager", "GetSecretValue"),
    ("secretsmanager", "BatchGetSecretValue"), ("ssm", "GetParameter"), ("ssm", "GetParameters"),
    ("kms", "ScheduleKeyDeletion"), ("kms", "DisableKey"), ("s3", "PutBucketPolicy"), ("s3", "PutBucketAcl"),
    ("s3", "DeleteBucketPolicy"), ("s3", "PutBucketReplication"), ("s3", "PutBucketLifecycle"),
    ("ec2", "CreateKeyPair"), ("ec2", "ImportKeyPair"), ("ec2", "RunInstances"),
    ("ec2", "AuthorizeSecurityGroupIngress"), ("sts", "GetCallerIdentity"), ("sts", "GetFederationToken"),
    ("signin", "ConsoleLogin"), ("ec2", "ModifySnapshotAttribute"), ("ec2", "ModifyImageAttribute"),
    ("ec2", "CopySnapshot"), ("ec2", "SharedSnapshotCopyInitiated"), ("rds", "ModifyDBSnapshotAttribute"),
    ("rds", "ModifyDBClusterSnapshotAttribute"), ("iam", "CreateVirtualMFADevice"), ("iam", "DeactivateMFADevice"),
    ("securityhub", "DisableSecurityHub"), ("route53domains", "TransferDomainToAnotherAwsAccount"),
    ("ec2", "DescribeInstanceAttribute"), ("ec2-instance-connect", "SendSSHPublicKey"),
    ("ec2-instance-connect", "SendSerialConsoleSSHPublicKey"), ("ec2", "EnableSerialConsoleAccess"),
    ("lambda", "UpdateFunctionConfiguration"), ("rolesanywhere", "CreateTrustAnchor"),
    ("rolesanywhere", "CreateProfile"), ("bedrock", "InvokeModel"), ("bedrock", "PutFoundationModelEntitlement"),
]  # fmt: skip


@pytest.mark.parametrize(("service", "action"), REQUIRED, ids=[f"{s}:{a}" for s, a in REQUIRED])
def test_the_table_covers(service, action):
    assert any(r.service == f"{service}.amazonaws.com" and r.action == action for r in table.mapped_rules())


def test_discovery_reads_are_never_above_low():
    for rule in table.mapped_rules():
        if rule.action.startswith(("Get", "List", "Describe")) and rule.tactics[0] == "Discovery":
            assert rule.severity < 4, rule.id
    caller = next(r for r in table.mapped_rules() if r.action == "GetCallerIdentity")
    assert caller.context_only and caller.tactics == ("Discovery",)


def test_v19_ids_only_where_renumbered():
    renumbered = {"T1562", "T1562.001", "T1562.007", "T1562.008"}
    for rule in table.mapped_rules():
        if rule.techniques_v19:
            assert set(rule.techniques) & renumbered, rule.id


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (GOOD.replace(",7,", ",11,"), "outside 0-10"),
        (GOOD.replace(",7,", ",high,"), "not a number"),
        (GOOD.replace("Defense Evasion", "Defence Evasion"), "unknown ATT&CK tactic"),
        (GOOD.replace("T1562.008,T1685", "1562.008,T1685"), "bad technique id"),
        (GOOD.replace("T1685.002", "T1685.2"), "bad technique id"),
        (GOOD.replace(",,Defense", ",no_such_condition,Defense"), "unknown condition 'no_such_condition'"),
        (GOOD.replace("cloudtrail-stop-logging", "Stop_Logging"), "not kebab-case"),
        (GOOD.replace("cloudtrail.amazonaws.com", "cloudtrail"), "not an eventSource"),
        (GOOD.replace(",t,r", ",,r"), "title is empty"),
        (GOOD.replace("Defense Evasion,T1562.008", ",T1562.008"), "no tactic"),
        (
            "lambda-x,lambda.amazonaws.com,UpdateFunctionCode20150331v2,,Persistence,T1525,,3,t,r\n",
            "without their API version",
        ),
        (GOOD.rstrip("\n") + ",extra\n", "expected 10 cells"),
    ],
)
def test_a_bad_row_is_refused_naming_its_line(row, message):
    with pytest.raises(ValueError, match="line 2") as caught:
        table.parse_table(HEADER + row)
    assert message in str(caught.value)


def test_duplicates_are_refused():
    with pytest.raises(ValueError, match="line 3: duplicate id"):
        table.parse_table(HEADER + GOOD + GOOD.replace("StopLogging", "DeleteTrail"))
    with pytest.raises(ValueError, match=r"line 3: duplicate row for cloudtrail.amazonaws.com StopLogging \(first on"):
        table.parse_table(HEADER + GOOD + GOOD.replace("cloudtrail-stop-logging", "another-id"))
    # the same event under another condition is a different row
    other = GOOD.replace("cloudtrail-stop-logging", "failed-stop").replace(",,Defense", ",failed,Defense")
    assert len(table.parse_table(HEADER + GOOD + other)) == 2


def test_wrong_columns_are_refused():
    with pytest.raises(ValueError, match="columns must be"):
        table.parse_table("service,action\ncloudtrail.amazonaws.com,StopLogging\n")


def test_every_row_is_one_line_of_the_file():
    text = Path(table.__file__).resolve().parents[2].joinpath("data", "cloudtrail_attack.csv").read_text("utf-8")
    assert len(text.strip().splitlines()) == len(table.mapped_rules()) + 1


# ---------------------------------------------------------------------------------------------
# The GuardDuty table: every purpose and the known finding types map to tactics and techniques.

_KNOWN_TYPES = """
Backdoor:EC2/C&CActivity.B!DNS Backdoor:EC2/DenialOfService.UdpOnTcpPorts Backdoor:EC2/Spambot
Behavior:EC2/NetworkPortUnusual Behavior:EC2/TrafficVolumeUnusual CryptoCurrency:EC2/BitcoinTool.B
DefenseEvasion:EC2/UnusualDoHActivity Impact:EC2/BitcoinDomainRequest.Reputation
Impact:EC2/SuspiciousDomainRequest.Reputation Impact:EC2/MaliciousDomainRequest.Custom Impact:EC2/PortSweep
Impact:EC2/WinRMBruteForce Recon:EC2/PortProbeEMRUnprotectedPort Recon:EC2/Portscan Trojan:EC2/BlackholeTraffic!DNS
Trojan:EC2/DGADomainRequest.C!DNS Trojan:EC2/DNSDataExfiltration Trojan:EC2/PhishingDomainRequest!DNS
Trojan:EC2/DriveBySourceTraffic!DNS Trojan:EC2/DropPoint UnauthorizedAccess:EC2/MaliciousIPCaller.Custom
UnauthorizedAccess:EC2/MetadataDNSRebind UnauthorizedAccess:EC2/RDPBruteForce UnauthorizedAccess:EC2/TorRelay
DefenseEvasion:IAMUser/BedrockLoggingDisabled PenTest:IAMUser/KaliLinux Policy:IAMUser/ShortTermRootCredentialUsage
Recon:IAMUser/TorIPCaller Stealth:IAMUser/CloudTrailLoggingDisabled Stealth:IAMUser/PasswordPolicyChange
UnauthorizedAccess:IAMUser/ConsoleLoginSuccess.B UnauthorizedAccess:IAMUser/ResourceCredentialExfiltration.InsideAWS
UnauthorizedAccess:IAMUser/TorIPCaller Discovery:S3/AnomalousBehavior Discovery:S3/MaliciousIPCaller.Custom
Exfiltration:S3/MaliciousIPCaller Impact:S3/AnomalousBehavior.Permission Impact:S3/AnomalousBehavior.Write
Impact:S3/MaliciousIPCaller PenTest:S3/PentooLinux Policy:S3/BucketAnonymousAccessGranted
Policy:S3/AccountBlockPublicAccessDisabled Stealth:S3/ServerAccessLoggingDisabled
UnauthorizedAccess:S3/MaliciousIPCaller.Custom Object:S3/MaliciousFile CredentialAccess:Kubernetes/TorIPCaller
DefenseEvasion:Kubernetes/SuccessfulAnonymousAccess Impact:Kubernetes/MaliciousIPCaller.Custom
Discovery:Kubernetes/MaliciousIPCaller Persistence:Kubernetes/SuccessfulAnonymousAccess
Execution:Kubernetes/ExecInKubeSystemPod Policy:Kubernetes/AdminAccessToDefaultServiceAccount
Policy:Kubernetes/KubeflowDashboardExposed CredentialAccess:Kubernetes/AnomalousBehavior.SecretsAccessed
Discovery:Kubernetes/AnomalousBehavior.PermissionChecked Execution:Kubernetes/AnomalousBehavior.WorkloadDeployed
Persistence:Kubernetes/AnomalousBehavior.WorkloadDeployed!ContainerWithSensitiveMount
PrivilegeEscalation:Kubernetes/AnomalousBehavior.RoleBindingCreated Backdoor:Runtime/C&CActivity.B
Impact:Runtime/CryptoMinerExecuted DefenseEvasion:Runtime/ProcessInjection.Ptrace
DefenseEvasion:Runtime/PtraceAntiDebugging
DefenseEvasion:Runtime/SuspiciousCommand Execution:Runtime/ReverseShell Execution:Runtime/SuspiciousTool
Execution:Runtime/SuspiciousShellCreated Persistence:Runtime/SensitiveFileModified
PrivilegeEscalation:Runtime/UserfaultfdUsage PrivilegeEscalation:Runtime/ElevationToRoot
Trojan:Runtime/DropPoint!DNS UnauthorizedAccess:Runtime/TorClient Execution:EC2/MaliciousFile!Snapshot
Execution:S3/MaliciousFile!RecoveryPoint CredentialAccess:RDS/AnomalousBehavior.SuccessfulBruteForce
CredentialAccess:RDS/AnomalousBehavior.SuccessfulLogin CredentialAccess:RDS/TorIPCaller.SuccessfulLogin
Discovery:RDS/MaliciousIPCaller Backdoor:Lambda/C&CActivity.B CryptoCurrency:Lambda/BitcoinTool.B
UnauthorizedAccess:Lambda/MaliciousIPCaller.Custom Exfiltration:S3/ObjectRead.Unusual Impact:S3/ObjectDelete.Unusual
Discovery:S3/BucketEnumeration.Unusual Persistence:IAMUser/NetworkPermissions Recon:IAMUser/UserPermissions
PrivilegeEscalation:IAMUser/AdministrativePermissions ResourceConsumption:IAMUser/ComputeResources
Stealth:IAMUser/LoggingConfigurationModified UnauthorizedAccess:IAMUser/ConsoleLogin
Persistence:Kubernetes/ContainerWithSensitiveMount CredentialAccess:EC2/UnsecuredCredentials
CredentialAccess:RDS/ModifyAuthenticationProcess DefenseImpairment:Organizations/ModifyCloudResourceHierarchy
"""
KNOWN_TYPES = [name for line in _KNOWN_TYPES.splitlines() for name in line.split()]
# Not listed: *:IAMUser/AnomalousBehavior (the anomaly model spans many APIs of its purpose; the calls
# map to techniques in sleuth's own table) and AttackSequence:* (techniques from their signals).


@pytest.mark.parametrize("finding_type", KNOWN_TYPES)
def test_known_guardduty_types_map_to_tactics_and_techniques(finding_type):
    tactics, techniques = attack.tactics_for(finding_type)
    assert tactics and techniques, finding_type


def test_every_guardduty_purpose_is_known_and_attack_purposes_have_a_tactic():
    table_ = attack.tactic_table()
    purposes = {
        "Backdoor", "Behavior", "CredentialAccess", "CryptoCurrency", "DefenseEvasion", "Discovery", "Execution",
        "Exfiltration", "Impact", "InitialAccess", "Object", "PenTest", "Persistence", "Policy", "PrivilegeEscalation",
        "Recon", "Stealth", "Trojan", "UnauthorizedAccess", "AttackSequence", "ResourceConsumption",
        "DefenseImpairment",
    }  # fmt: skip
    assert {p.lower() for p in purposes} <= table_.purposes
    for purpose in purposes - {"AttackSequence", "Behavior", "Policy"}:  # no tactic of their own: by type
        tactics, _, known = table_.lookup(f"{purpose}:EC2/SomethingNew")
        assert known and tactics, purpose
