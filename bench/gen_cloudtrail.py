#!/usr/bin/env python3
"""Generate a benign, realistic synthetic CloudTrail corpus in the AWS S3 key layout.

  OUT/AWSLogs/<acct>/CloudTrail/<region>/YYYY/MM/DD/<acct>_CloudTrail_<region>_<YYYYMMDDTHHmmZ>_<rand16>.json.gz

Each file is the gzip of compact JSON {"Records":[...]} in CloudTrail's key order (eventVersion
first). No attack is planted. The output depends only on the arguments: the shared "world"
(accounts, principals, IPs, user agents, resources) derives from --seed and every file has its
own RNG seeded from (seed, file index), so files are generated in parallel with identical results.
"""

import argparse
import calendar
import os
import random
import string
import sys
import time
import uuid
from itertools import accumulate
from multiprocessing import Pool

import orjson

try:  # ISA-L writes the same gzip format several times faster than zlib
    from isal.igzip import compress as gzip_compress
except ImportError:  # pragma: no cover
    from gzip import compress as gzip_compress

REGIONS = ["us-east-1", "us-west-2", "eu-west-1", "eu-central-1", "ap-southeast-2", "ap-northeast-1", "us-east-2"]
UPPER, MIXED = string.ascii_uppercase + string.digits, string.ascii_letters + string.digits
# Public /16 and /24 prefixes callers come from: AWS itself, CI runners (Azure), ISPs, documentation ranges.
AWS_NETS = ["3.80", "3.236", "18.204", "34.201", "35.172", "44.192", "52.3", "52.95", "54.86", "54.239", "13.48"]
CI_NETS = ["20.42", "20.57", "4.175", "40.77", "52.176", "172.176", "104.45"]
ISP_NETS = ["73.162", "24.5", "71.178", "98.207", "76.102", "81.2", "86.143", "92.40", "109.150", "176.24", "82.65",
            "90.211", "151.30", "2.101", "110.33", "121.200", "1.36", "49.36", "187.11", "198.51.100", "203.0.113"]
NAMES = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "mallory", "niaj",
         "olivia", "peggy", "rupert", "sybil", "trent", "victor", "walter", "xena", "yusuf", "zoe", "liam", "emma"]
SURNAMES = ["smith", "jones", "brown", "taylor", "wilson", "davies", "evans", "thomas", "walker", "wright", "green",
            "hall", "clarke", "patel", "khan", "lee", "martin", "garcia", "muller", "rossi", "novak", "silva", "kim"]
# Role kind -> role names; kind decides who assumes the role, its session names, IPs and user agents.
ROLES = {"ec2": ["web-app-instance", "batch-worker-instance", "bastion-ssm", "eks-node-group", "jenkins-agent"],
         "lambda": ["lambda-image-resize", "lambda-etl-loader", "lambda-slack-notify", "lambda-cost-report",
                    "lambda-log-shipper", "lambda-api-handler", "lambda-s3-indexer", "lambda-cleanup"],
         "ecs": ["ecs-task-orders", "ecs-task-payments", "ecs-task-frontend", "ecs-task-search"],
         "sso": ["AdministratorAccess", "ReadOnlyAccess", "PowerUserAccess", "DeveloperAccess", "Billing"],
         "ci": ["terraform-deployer", "github-actions-deploy", "jenkins-build"],
         "app": ["OrganizationAccountAccessRole", "SecurityAudit", "datadog-integration", "backup-role"]}
SESSION_UAS = {"ec2": ["boto", "cli", "java", "ssm"], "lambda": ["node", "boto"], "ecs": ["java", "go", "boto"],
               "sso": ["web", "web", "cli"], "ci": ["tf", "cli"], "app": ["boto", "go"]}
SESSION_WEIGHT = {"ec2": 6, "lambda": 5, "ecs": 5, "sso": 2, "ci": 2, "app": 1}
SERVICE = {"ec2": "ec2.amazonaws.com", "lambda": "lambda.amazonaws.com", "ecs": "ecs-tasks.amazonaws.com",
           "sso": "sso.amazonaws.com"}
TLS = [("TLSv1.3", "TLS_AES_128_GCM_SHA256")] * 3 + [("TLSv1.2", "ECDHE-RSA-AES128-GCM-SHA256")]
DATA_EVENTS = {"GetObject", "PutObject", "ListObjects", "DeleteObject", "Invoke"}
GLOBAL_SOURCES = {"iam", "signin", "organizations"}  # logged in us-east-1 only
READ_ONLY = ("Describe", "List", "Get", "Lookup", "Filter", "Decrypt", "GenerateDataKey", "AssumeRole")

# "source Name weight [@actor-kind] [key=value ...] | Name weight ...": weights are relative
# frequencies; "$kind" is filled by FILL (a bare "$kind" merges a dict), other values are JSON.
CATALOG = r"""
ec2 DescribeInstances 60 $instances filterSet={} | DescribeInstanceStatus 20 @ec2 instancesSet={} filterSet={}
ec2 DescribeSecurityGroups 22 securityGroupSet={} $sgs | DescribeVpcs 10 vpcSet={} filterSet={}
ec2 DescribeSubnets 10 subnetSet={} $vpcfilter | DescribeNetworkInterfaces 10 networkInterfaceIdSet={} $vpcfilter
ec2 DescribeVolumes 10 volumeSet={} filterSet={} maxResults=500 | DescribeRegions 8 regionSet={} allRegions=false
ec2 DescribeImages 5 ownersSet={"items":[{"owner":"amazon"}]} imagesSet={} | StartInstances 1 $state
ec2 CreateTags 3 resourcesSet=$instanceset tagSet={"items":[{"key":"Owner","value":"platform-team"}]} \
| StopInstances 1 $state
s3 ListBuckets 14 Host="s3.amazonaws.com" | GetBucketLocation 18 $bucket location="" | GetBucketAcl 9 $bucket acl=""
s3 GetBucketPolicy 5 $bucket policy="" | GetBucketVersioning 5 $bucket versioning=""
s3 GetObject 30 $object | PutObject 12 $object | DeleteObject 2 $object
s3 ListObjects 10 $bucket list-type="2" prefix="data/" encoding-type="url"
iam ListUsers 6 | ListRoles 8 maxItems=1000 | ListPolicies 4 scope="Local" onlyAttached=false
iam GetRole 14 roleName=$role | ListAttachedRolePolicies 9 roleName=$role | ListRolePolicies 6 roleName=$role
iam GetUser 6 userName=$user | ListAccessKeys 5 userName=$user | ListMFADevices 3 userName=$user
iam GetPolicyVersion 6 policyArn="arn:aws:iam::aws:policy/ReadOnlyAccess" versionId="v112"
iam CreateAccessKey 0.25 @ci $userkey | DeleteAccessKey 0.2 @ci $userkey
iam AttachRolePolicy 0.2 @ci roleName=$role policyArn="arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess"
organizations DescribeOrganization 2
signin ConsoleLogin 2.5
sts AssumeRole 75 | AssumeRoleWithWebIdentity 5 | GetCallerIdentity 35
kms Decrypt 50 $kms | GenerateDataKey 20 $kms keySpec="AES_256" | DescribeKey 8 $kms | RotateKey 0.05
lambda ListFunctions20150331 8 | GetFunction20150331v2 8 functionName=$function | Invoke 12 @lambda $invoke
cloudtrail DescribeTrails 4 trailNameList=[] includeShadowTrails=true | GetTrailStatus 4 name=$trail
cloudtrail LookupEvents 3 maxResults=50 lookupAttributes=[{"attributeKey":"ReadOnly","attributeValue":"false"}]
logs CreateLogStream 18 @lambda logGroupName=$loggroup logStreamName=$logstream
logs DescribeLogGroups 8 logGroupNamePrefix="/aws/lambda/"
logs FilterLogEvents 4 logGroupName=$loggroup filterPattern="ERROR"
secretsmanager GetSecretValue 18 @ecs secretId=$secret
ssm GetParameter 16 name=$param withDecryption=true | GetParameters 8 names=$params withDecryption=false
ssm UpdateInstanceInformation 14 @ec2 instanceId=$instance agentVersion="3.3.1142.0" agentStatus="Active" \
platformType="Linux" platformName="Amazon\u0020Linux" platformVersion="2023" agentName="amazon-ssm-agent"
dynamodb DescribeTable 12 tableName=$table | ListTables 4
ecr GetAuthorizationToken 8 @ecs registryIds=$acctlist
monitoring DescribeAlarms 8 maxRecords=100
monitoring GetMetricStatistics 8 namespace="AWS/EC2" metricName="CPUUtilization" period=300 statistics=["Average"]
elasticloadbalancing DescribeTargetHealth 6 targetGroupArn=$tg
autoscaling DescribeAutoScalingGroups 6 maxRecords=100
cloudformation DescribeStacks 5 @ci stackName=$stack
guardduty ListDetectors 2
"""


def alnum(r, n, chars=UPPER):
    return "".join(r.choices(chars, k=n))


def hexs(r, n):
    return f"{r.getrandbits(4 * n):0{n}x}"


def uuid4(r):
    return str(uuid.UUID(int=r.getrandbits(128), version=4))


def iso(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def ip_in(r, nets):
    net = r.choice(nets)
    return net + "".join(f".{r.randrange(1, 255)}" for _ in range(3 - net.count(".")))


def cum(weights):  # cumulative weights, for random.choices
    return list(accumulate(weights))


def pick(r, items, cum_weights):
    return r.choices(items, cum_weights=cum_weights)[0]


def make_uas(r):
    """A few dozen user-agent strings; "{cmd}" and "{svc}" are filled in per event."""
    v = r.randrange
    oses = [("Linux/5.10.220-209.869.amzn2.x86_64", "amzn.2"), ("Linux/6.5.0-1020-aws", "ubuntu.22"),
            ("Darwin/23.4.0", "darwin"), ("Windows/10", "windows")]
    return {"cli": [f"aws-cli/2.{v(13, 19)}.{v(40)} Python/3.11.{v(6, 10)} {o} exe/x86_64.{d} prompt/off "
                    "command/{cmd}" for o, d in oses for _ in range(3)],
            "boto": [f"Boto3/1.34.{p} md/Botocore#1.34.{p} ua/2.0 os/linux#5.10.{v(200, 230)}-amzn2.x86_64 "
                     f"md/arch#x86_64 lang/python#3.{r.choice([9, 11, 12])}.{v(12)} md/pyimpl#CPython "
                     f"cfg/retry-mode#legacy Botocore/1.34.{p}" for p in r.sample(range(20, 160), 8)],
            "tf": [f"APN/1.0 HashiCorp/1.0 Terraform/1.{v(5, 10)}.{v(6)} (+https://www.terraform.io) "
                   f"terraform-provider-aws/5.{v(30, 80)}.0 (+https://registry.terraform.io/providers/hashicorp/aws) "
                   f"aws-sdk-go-v2/1.30.{v(5)} os/linux lang/go#1.22.{v(8)} md/GOOS#linux md/GOARCH#amd64 "
                   f"api/{{svc}}#1.{v(20, 180)}.0" for _ in range(4)],
            "go": [f"aws-sdk-go/1.{v(44, 56)}.{v(300)} (go1.2{v(4)}; linux; amd64)" for _ in range(4)],
            "java": [f"aws-sdk-java/2.25.{v(70)} Linux/5.10.219-208.866.amzn2.x86_64 OpenJDK_64-Bit_Server_VM/"
                     f"17.0.{j}+7-LTS Java/17.0.{j} vendor/Amazon.com_Inc. io/sync" for j in (8, 11)],
            "node": [f"aws-sdk-nodejs/2.{v(1400, 1700)}.0 linux/v18.19.0 exec-env/AWS_Lambda_nodejs18.x promise",
                     "aws-sdk-js/3.540.0 ua/2.0 os/linux lang/js md/nodejs#20.11.1 api/{svc}#3.540.0"],
            "ssm": [f"aws-sdk-go/1.44.{v(300)} (go1.20.{v(10)}; linux; amd64) amazon-ssm-agent/3.3.{v(300, 1500)}.0"],
            "web": [f"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
                    f"Chrome/{x}.0.0.0 Safari/537.36" for x in range(124, 131)]
            + [f"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7; rv:{x}.0) Gecko/20100101 Firefox/{x}.0"
               for x in range(125, 130)]}


def session_name(r, kind, role, res):
    return {"ec2": lambda: r.choice(res["instances"]), "ecs": lambda: hexs(r, 32),
            "lambda": lambda: role.removeprefix("lambda-"),
            "sso": lambda: f"{r.choice(NAMES)}.{r.choice(SURNAMES)}@acme.example",
            "ci": lambda: r.choice(["GitHubActions", f"terraform-{r.randrange(10**9)}", f"jenkins-{r.randrange(999)}"]),
            "app": lambda: r.choice([f"botocore-session-{r.randrange(17 * 10**8, 18 * 10**8)}", role])}[kind]()


def build_world(seed, n_accounts):
    """Accounts with IAM users, roles and their sessions, and resources; identical in every process."""
    r = random.Random(f"world:{seed}")
    ua = make_uas(r)
    office = [ip_in(r, ISP_NETS) for _ in range(12)]  # shared NAT egress of the offices
    accounts = []
    for _ in range(n_accounts):
        acct = str(r.randrange(10**11, 10**12))
        res = {"instances": [f"i-0{hexs(r, 16)}" for _ in range(60)], "kms": [uuid4(r) for _ in range(8)],
               "buckets": [f"acme-{b}-{acct}" for b in ("prod-data", "logs-archive", "artifacts", "backups", "exports",
                                                         "athena-results", "terraform-state", "ml-datasets")],
               "functions": [f.removeprefix("lambda-") for f in ROLES["lambda"]],
               "tables": ["orders", "payments", "sessions", "users", "inventory", "audit-log"],
               "vpcs": [f"vpc-0{hexs(r, 16)}" for _ in range(4)], "sgs": [f"sg-0{hexs(r, 16)}" for _ in range(20)]}
        names = set()
        while len(names) < 135:
            names.add(f"{r.choice(NAMES)}.{r.choice(SURNAMES)}")
        users = []  # humans (half of them also use the console) and service users with static keys
        for name in sorted(names) + [f"svc-{r.choice(['etl', 'backup', 'ci'])}-{i}" for i in range(15)]:
            human = not name.startswith("svc-")
            users.append({"name": name, "id": "AIDA" + alnum(r, 17), "arn": f"arn:aws:iam::{acct}:user/{name}",
                          "key": "AKIA" + alnum(r, 16), "console": human and r.random() < 0.5, "mfa": r.random() < 0.8,
                          "ips": [r.choice(office) if human and r.random() < 0.4 else
                                  ip_in(r, ISP_NETS if human else AWS_NETS) for _ in range(r.randint(1, 3))],
                          "uas": [r.choice(ua[k]) for k in r.sample(["cli", "boto", "tf", "go"] if human else
                                                                    ["boto", "go", "java"], 2)],
                          "w": r.paretovariate(1.2)})  # a few users are far more active than most
        sessions = []
        for kind, role_names in ROLES.items():
            for rn in role_names:
                path, rn = ("aws-reserved/sso.amazonaws.com/", f"AWSReservedSSO_{rn}_{hexs(r, 16)}") \
                    if kind == "sso" else ("", rn)
                role = {"name": rn, "id": "AROA" + alnum(r, 17), "arn": f"arn:aws:iam::{acct}:role/{path}{rn}",
                        "kind": kind}
                for _ in range(r.randint(4, 30)):
                    private = kind in ("ec2", "ecs") and r.random() < 0.3  # calls through a VPC endpoint
                    nets = {"ci": CI_NETS, "sso": ISP_NETS}.get(kind, AWS_NETS)
                    ips = [f"10.{r.randrange(256)}.{r.randrange(256)}.{r.randrange(1, 255)}" if private
                           else ip_in(r, nets) for _ in range(r.randint(1, 4))]
                    sessions.append({"role": role, "name": session_name(r, kind, rn, res), "key": "ASIA" + alnum(r, 16),
                                     "ips": ips, "private": private, "w": SESSION_WEIGHT[kind] * r.paretovariate(1.5),
                                     "uas": [r.choice(ua[k]) for k in SESSION_UAS[kind]]})
        accounts.append({"acct": acct, "res": res, "users": users, "sessions": sessions, "office": office,
                         "web": ua["web"], "vpce": f"vpce-0{hexs(r, 16)}", "user_cw": cum([u["w"] for u in users]),
                         "sess_cw": cum([s["w"] for s in sessions]), "by_kind": {}})
        for kind in ROLES:
            of_kind = [s for s in sessions if s["role"]["kind"] == kind]
            accounts[-1]["by_kind"][kind] = (of_kind, cum([s["w"] for s in of_kind]))
    return accounts


def parse_catalog():
    """CATALOG -> [(source, name, weight, actor kind or None, [(key or None, value)])]."""
    out = []
    for line in CATALOG.replace("\\\n", "").strip().splitlines():
        src, line = line.split(" ", 1)
        for entry in line.split(" | "):
            name, weight, *rest = entry.split()
            hint = rest.pop(0)[1:] if rest and rest[0].startswith("@") else None
            params = [(k or None, v if v.startswith("$") else orjson.loads(v))
                      for k, _, v in (p.partition("=") if p[0] != "$" else ("", "", p) for p in rest)]
            out.append((src, name, float(weight), hint, params))
    return out


class Ev:
    """Scratch state of one event while it is being built."""

    __slots__ = ("A", "acct", "console", "details", "err", "etype", "extra", "host", "ident", "ip", "name", "r",
                 "region", "req", "res", "resources", "resp", "rid", "src", "t", "tls", "ua", "vpce")

    def __init__(self, r, A, region, t, src, name):
        self.r, self.A, self.res, self.acct, self.region, self.t = r, A, A["res"], A["acct"], region, t
        self.src, self.name, self.rid, self.etype = src, name, uuid4(r), "AwsApiCall"
        self.console, self.tls = False, True
        self.req = self.resp = self.extra = self.resources = self.vpce = self.err = self.details = self.host = None

    def arn(self, service, rest):
        return f"arn:aws:{service}:{self.region}:{self.acct}:{rest}"

    def choice(self, kind):
        return self.r.choice(self.res[kind])


def items(key, values):  # the EC2 API's {"items": [...]} list shape
    return {"items": [{key: v} for v in values]}


def s3_bucket(e, key=None):
    b = e.choice("buckets")
    e.rid, e.host = hexs(e.r, 16).upper(), f"{b}.s3.{e.region}.amazonaws.com"
    e.resources = [{"accountId": e.acct, "type": "AWS::S3::Bucket", "ARN": f"arn:aws:s3:::{b}"}]
    return {"bucketName": b, "Host": e.host} | ({"key": key} if key else {})


def s3_object(e):
    r = e.r
    key = f"{r.choice(['data/raw/', 'logs/2026/', 'exports/daily/', 'models/'])}{hexs(r, 12)}.{r.choice(['gz', 'csv'])}"
    req, size = s3_bucket(e, key), r.randrange(200, 5_000_000)
    e.resources.insert(0, {"type": "AWS::S3::Object", "ARN": f"arn:aws:s3:::{req['bucketName']}/{key}"})
    e.extra = {"SignatureVersion": "SigV4", "CipherSuite": "TLS_AES_128_GCM_SHA256",
               "bytesTransferredIn": size if e.name == "PutObject" else 0, "AuthenticationMethod": "AuthHeader",
               "x-amz-id-2": alnum(r, 76, MIXED + "+/"), "bytesTransferredOut": size if e.name == "GetObject" else 0}
    if e.name == "PutObject":
        e.resp = {"x-amz-server-side-encryption": "aws:kms", "x-amz-version-id": alnum(r, 32, MIXED)}
    return req


def kms_key(e):
    key = e.arn("kms", "key/" + e.choice("kms"))
    e.resources = [{"accountId": e.acct, "type": "AWS::KMS::Key", "ARN": key}]
    ctx = e.r.choice([{"aws:s3:arn": f"arn:aws:s3:::{e.choice('buckets')}"}, {"aws:ebs:id": f"vol-0{hexs(e.r, 16)}"},
                      {"aws:lambda:FunctionArn": e.arn("lambda", "function:" + e.choice("functions"))}])
    return {"keyId": key} | ({} if e.name == "DescribeKey" else {"encryptionContext": ctx})


def ec2_state(e):
    i, now, before = e.choice("instances"), {"code": 0, "name": "pending"}, {"code": 80, "name": "stopped"}
    if e.name == "StopInstances":
        now, before = {"code": 64, "name": "stopping"}, {"code": 16, "name": "running"}
    e.resp = {"requestId": e.rid, "instancesSet": {"items": [{"instanceId": i, "currentState": now,
                                                              "previousState": before}]}}
    return {"instancesSet": items("instanceId", [i])}


def iam_user_key(e):
    user, key = e.r.choice(e.A["users"])["name"], "AKIA" + alnum(e.r, 16)
    if e.name == "DeleteAccessKey":
        return {"userName": user, "accessKeyId": key}
    e.resp = {"accessKey": {"userName": user, "accessKeyId": key, "status": "Active", "createDate": cred_time(e.t)}}
    return {"userName": user}


def cred_time(t):  # the date format IAM/STS use inside responseElements
    return time.strftime("%b %-d, %Y, %-I:%M:%S %p", time.gmtime(t))


def lambda_invoke(e):
    fn = e.arn("lambda", "function:" + e.choice("functions"))
    e.resources = [{"accountId": e.acct, "type": "AWS::Lambda::Function", "ARN": fn}]
    return {"functionName": fn, "invocationType": e.r.choice(["RequestResponse", "Event"])}


# "$kind" fillers used by CATALOG. Those used bare return a dict merged into requestParameters.
FILL = {
    "bucket": s3_bucket, "object": s3_object, "kms": kms_key, "state": ec2_state, "userkey": iam_user_key,
    "invoke": lambda_invoke,
    "instances": lambda e: {"instancesSet": items("instanceId", e.r.sample(e.res["instances"], e.r.randint(1, 3)))
                            if e.r.random() < 0.5 else {}},
    "sgs": lambda e: {"securityGroupIdSet": items("groupId", [e.choice("sgs")]), "filterSet": {}},
    "vpcfilter": lambda e: {"filterSet": {"items": [{"name": "vpc-id",
                                                     "valueSet": items("value", [e.choice("vpcs")])}]}},
    "instance": lambda e: e.choice("instances"),
    "instanceset": lambda e: items("resourceId", [e.choice("instances")]),
    "role": lambda e: e.r.choice(e.A["sessions"])["role"]["name"],
    "user": lambda e: e.r.choice(e.A["users"])["name"],
    "function": lambda e: e.choice("functions"),
    "table": lambda e: e.choice("tables"),
    "trail": lambda e: e.arn("cloudtrail", "trail/org-trail"),
    "loggroup": lambda e: "/aws/lambda/" + e.choice("functions"),
    "logstream": lambda e: time.strftime("%Y/%m/%d/[$LATEST]", time.gmtime(e.t)) + hexs(e.r, 32),
    "secret": lambda e: e.arn("secretsmanager", f"secret:prod/{e.choice('tables')}/db-credentials-Xk3p9Q"),
    "param": lambda e: f"/prod/{e.choice('functions')}/{e.r.choice(['db_host', 'api_url', 'flags'])}",
    "params": lambda e: [FILL["param"](e) for _ in range(e.r.randint(2, 4))],
    "acctlist": lambda e: [e.acct],
    "tg": lambda e: e.arn("elasticloadbalancing", f"targetgroup/{e.choice('tables')}-tg/{hexs(e.r, 16)}"),
    "stack": lambda e: e.r.choice(["network", "eks-cluster", "data-platform", "monitoring"]) + "-stack",
}


def session_identity(e, s, key=True):
    role, acct = s["role"], e.acct
    return {"type": "AssumedRole", "principalId": f"{role['id']}:{s['name']}",
            "arn": f"arn:aws:sts::{acct}:assumed-role/{role['name']}/{s['name']}", "accountId": acct,
            **({"accessKeyId": s["key"]} if key else {}), "sessionContext": {
                "sessionIssuer": {"type": "Role", "principalId": role["id"], "arn": role["arn"], "accountId": acct,
                                  "userName": role["name"]}, "webIdFederationData": {},
                "attributes": {"creationDate": iso(e.t - e.r.randrange(5, 3600)), "mfaAuthenticated": "false"}}}


def user_identity(e, u, key=None):
    return {"type": "IAMUser", "principalId": u["id"], "arn": u["arn"], "accountId": e.acct,
            **({"accessKeyId": key} if key else {}), "userName": u["name"]}


def root_identity(e, key=None):
    ident = {"type": "Root", "principalId": e.acct, "arn": f"arn:aws:iam::{e.acct}:root", "accountId": e.acct}
    if key:
        ident |= {"accessKeyId": key, "sessionContext": {"attributes": {
            "creationDate": iso(e.t - e.r.randrange(60, 3600)), "mfaAuthenticated": "true"}}}
    return ident


def set_actor(e, hint):
    """Pick who makes a call: mostly role sessions, some IAM users (access keys or console), rarely root."""
    r, A, x = e.r, e.A, e.r.random()
    if hint is None and x < 0.0001:
        e.ident = root_identity(e, "ASIA" + alnum(r, 16))
        e.ip, e.ua, e.console = r.choice(A["office"]), r.choice(A["web"]), True
    elif hint is None and x < 0.3:
        u = pick(r, A["users"], A["user_cw"])
        e.ip = r.choice(u["ips"])
        if u["console"] and r.random() < 0.3:  # browsing the console: temporary ASIA credentials
            e.ident = user_identity(e, u, "ASIA" + alnum(r, 16))
            e.ident["sessionContext"] = {"sessionIssuer": {}, "webIdFederationData": {}, "attributes": {
                "creationDate": iso(e.t - r.randrange(60, 28800)), "mfaAuthenticated": "true" if u["mfa"] else "false"}}
            e.ua, e.console = r.choice(A["web"]), True
        else:
            e.ident, e.ua = user_identity(e, u, u["key"]), r.choice(u["uas"])
    else:
        s = pick(r, *A["by_kind"][hint]) if hint and r.random() < 0.8 else pick(r, A["sessions"], A["sess_cw"])
        e.ident, e.ip, e.ua = session_identity(e, s), r.choice(s["ips"]), r.choice(s["uas"])
        e.vpce, e.console = A["vpce"] if s["private"] else None, e.ua.startswith("Mozilla")
        if e.src == "kms" and r.random() < 0.4:  # KMS calls made on the principal's behalf by a service
            e.ident["invokedBy"] = e.ip = e.ua = r.choice(["s3.amazonaws.com", "secretsmanager.amazonaws.com",
                                                           "ssm.amazonaws.com", "lambda.amazonaws.com"])
            e.tls, e.vpce = False, None
    if e.console and r.random() < 0.15:  # console actions proxied by another AWS service
        e.ip = e.ua = "AWS Internal"
        e.tls = False


def assume_role(e):
    """AssumeRole[WithWebIdentity]: the returned ASIA key is the one the session then uses."""
    r, A, web = e.r, e.A, e.name == "AssumeRoleWithWebIdentity"
    s = pick(r, *A["by_kind"]["ci"]) if web else pick(r, A["sessions"], A["sess_cw"])
    role, kind, sub = s["role"], s["role"]["kind"], "repo:acme/infrastructure:ref:refs/heads/main"
    oidc = f"arn:aws:iam::{e.acct}:oidc-provider/token.actions.githubusercontent.com"
    if web:
        e.ident = {"type": "WebIdentityUser", "principalId": f"{oidc}:sts.amazonaws.com:{sub}", "userName": sub,
                   "identityProvider": oidc}
        e.ip, e.ua = r.choice(s["ips"]), r.choice(s["uas"])
    elif kind in SERVICE:  # EC2, Lambda, ECS and Identity Center assume their roles themselves
        e.ident, e.ip, e.ua, e.tls = {"type": "AWSService", "invokedBy": SERVICE[kind]}, SERVICE[kind], SERVICE[kind], 0
    else:
        set_actor(e, None)
    e.req = {"roleArn": role["arn"], "roleSessionName": s["name"]}
    if kind != "ec2":
        e.req["durationSeconds"] = r.choice([900, 3600, 3600, 43200])
    e.resp = {"credentials": {"accessKeyId": s["key"], "sessionToken": "IQoJb3JpZ2luX2VjE" + alnum(r, 80, MIXED),
                              "expiration": cred_time(e.t + 3600)},
              "assumedRoleUser": {"assumedRoleId": f"{role['id']}:{s['name']}",
                                  "arn": f"arn:aws:sts::{e.acct}:assumed-role/{role['name']}/{s['name']}"}}
    if web:
        e.resp |= {"subjectFromWebIdentityToken": sub, "audience": "sts.amazonaws.com", "provider": oidc}
    e.resources = [{"accountId": e.acct, "type": "AWS::IAM::Role", "ARN": role["arn"]}]


def console_login(e):
    """ConsoleLogin by IAM users (a few failures), Identity Center federation, and rarely root."""
    r, A, x, mfa, fail = e.r, e.A, e.r.random(), True, False
    if x < 0.01:
        e.ident, e.ip = root_identity(e), r.choice(A["office"])
    elif x < 0.3:
        s = pick(r, *A["by_kind"]["sso"])
        e.ident, e.ip, mfa = session_identity(e, s, key=False), r.choice(s["ips"]), False
    else:
        u = next(u for u in iter(lambda: pick(r, A["users"], A["user_cw"]), None) if u["console"])
        e.ident, e.ip, mfa, fail = user_identity(e, u), r.choice(u["ips"]), u["mfa"], r.random() < 0.04
    e.ua, e.rid, e.etype, e.host = r.choice(A["web"]), None, "AwsConsoleSignIn", "signin.aws.amazon.com"
    e.resp = {"ConsoleLogin": "Failure" if fail else "Success"}
    e.err = (None, "Failed authentication") if fail else None
    e.extra = {"LoginTo": "https://console.aws.amazon.com/console/home?hashArgs=%23&isauthcode=true",
               "MobileVersion": "No", "MFAUsed": "Yes" if mfa else "No"}


def rotate_key(e):  # scheduled KMS key rotation: an AwsServiceEvent with no caller
    e.ident, e.ip, e.ua = {"accountId": e.acct, "invokedBy": "AWS Internal"}, "AWS Internal", "AWS Internal"
    e.etype, e.rid, e.tls, e.details = "AwsServiceEvent", None, False, {"keyId": e.choice("kms")}
    e.resources = [{"accountId": e.acct, "type": "AWS::KMS::Key", "ARN": e.arn("kms", "key/" + e.details["keyId"])}]


def add_error(e):
    r, action, arn = e.r, f"{e.src}:{e.name.rstrip('0123456789v')}", e.ident.get("arn", "")
    if r.random() < 0.25:
        e.err = ("ThrottlingException", "Rate exceeded")
    elif e.src == "ec2":
        e.err = ("Client.UnauthorizedOperation", f"You are not authorized to perform this operation. User: {arn} is "
                 f"not authorized to perform: {action} because no identity-based policy allows the {action} action. "
                 f"Encoded authorization failure message: {alnum(r, 120, MIXED + '-_')}")
    else:
        e.err = ("AccessDenied", "Access Denied" if e.src == "s3" else f"User: {arn} is not authorized to perform: "
                 f"{action} because no identity-based policy allows the {action} action")
    e.resp = None


def record(r, A, region, t, entry):
    """Build one CloudTrail record: a dict in CloudTrail's own key order."""
    src, name, _, hint, params = entry
    e = Ev(r, A, region, t, src, name)
    special = {"ConsoleLogin": console_login, "RotateKey": rotate_key, "AssumeRole": assume_role,
               "AssumeRoleWithWebIdentity": assume_role}.get(name)
    if special:
        special(e)
    else:
        set_actor(e, hint)
        req = {}
        for key, val in params:
            val = FILL[val[1:]](e) if isinstance(val, str) and val[:1] == "$" else val
            req.update(val) if key is None else req.__setitem__(key, val)
        e.req = req or None
    if "{" in e.ua:
        e.ua = e.ua.replace("{cmd}", f"{src}.{kebab(name)}").replace("{svc}", src)
    if e.err is None and "arn" in e.ident and e.etype == "AwsApiCall" and r.random() < 0.033:  # ~3% of all
        add_error(e)
    data = name in DATA_EVENTS
    rec = {"eventVersion": "1.10" if data else "1.09" if e.etype != "AwsApiCall" else "1.11", "userIdentity": e.ident,
           "eventTime": iso(t), "eventSource": f"{src}.amazonaws.com", "eventName": name, "awsRegion": region,
           "sourceIPAddress": e.ip, "userAgent": e.ua}
    if e.err:
        rec |= ({"errorCode": e.err[0]} if e.err[0] else {}) | {"errorMessage": e.err[1]}
    rec |= {"requestParameters": e.req, "responseElements": e.resp}
    optional = [("additionalEventData", e.extra), ("requestID", e.rid), ("eventID", uuid4(r)),
                ("readOnly", name.startswith(READ_ONLY)), ("resources", e.resources), ("eventType", e.etype),
                ("managementEvent", not data), ("recipientAccountId", e.acct), ("vpcEndpointId", e.vpce),
                ("serviceEventDetails", e.details), ("eventCategory", "Data" if data else "Management")]
    rec |= {k: v for k, v in optional if v is not None}
    if e.tls:
        host = e.host or (f"{src}.amazonaws.com" if src in GLOBAL_SOURCES else f"{src}.{region}.amazonaws.com")
        version, suite = r.choice(TLS)
        rec["tlsDetails"] = {"tlsVersion": version, "cipherSuite": suite, "clientProvidedHostHeader": host}
    if e.console:
        rec["sessionCredentialFromConsole"] = "true"
    return rec


def kebab(name):  # DescribeInstances -> describe-instances (the aws-cli command name)
    return "".join("-" + c.lower() if c.isupper() else c for c in name).lstrip("-")


G = {}  # per-process state, set by init()


def init(seed, n_accounts, regions, out):
    catalog = parse_catalog()
    G.update(seed=seed, accounts=build_world(seed, n_accounts), out=out, catalog={})
    for reg in regions:
        entries = [c for c in catalog if reg == "us-east-1" or c[0] not in GLOBAL_SOURCES]
        G["catalog"][reg] = (entries, cum([c[2] for c in entries]))


def write_file(task):
    """Write one log file; returns (records, gzip bytes, raw bytes)."""
    idx, acct_i, region, t0, t1, n = task
    r, A = random.Random(f"{G['seed']}:{idx}"), G["accounts"][acct_i]
    times = sorted(int(r.uniform(t0, t1)) for _ in range(n))
    body = orjson.dumps({"Records": [record(r, A, region, t, pick(r, *G["catalog"][region])) for t in times]})
    # Keyed by the delivery day (the day of the last record); stamped with its 5-minute slot.
    day, stamp = time.gmtime(times[-1]), time.gmtime(times[-1] - times[-1] % 300)
    folder = os.path.join(G["out"], "AWSLogs", A["acct"], "CloudTrail", region, time.strftime("%Y/%m/%d", day))
    os.makedirs(folder, exist_ok=True)
    name = f"{A['acct']}_CloudTrail_{region}_{time.strftime('%Y%m%dT%H%MZ', stamp)}_{alnum(r, 16, MIXED)}.json.gz"
    gz = gzip_compress(body, 3, mtime=0)
    with open(os.path.join(folder, name), "wb") as f:
        f.write(gz)
    return n, len(gz), len(body)


def plan(args, regions):
    """Split the records into files of ~per-file records. Each (account, region) stream covers the whole
    period in consecutive windows; us-east-1 (home of the global services) gets twice the traffic."""
    r, sizes, total = random.Random(f"plan:{args.seed}"), [], 0
    while total < args.records:
        sizes.append(min(r.randint(args.per_file // 2, args.per_file * 3 // 2), args.records - total))
        total += sizes[-1]
    streams = [(a, reg) for a in range(args.accounts) for reg in regions for _ in range(1 + (reg == "us-east-1"))]
    by_stream = {}
    for i, n in enumerate(sizes):
        by_stream.setdefault(streams[i % len(streams)], []).append((i, n))
    start, span = calendar.timegm(time.strptime(args.start, "%Y-%m-%d")), args.days * 86400
    return [(i, a, reg, start + span * k / len(files), start + span * (k + 1) / len(files), n)
            for (a, reg), files in by_stream.items() for k, (i, n) in enumerate(files)]


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, help="output directory (the AWSLogs/ tree is created inside)")
    p.add_argument("--records", type=int, default=1_000_000)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--accounts", type=int, default=3)
    p.add_argument("--regions", type=int, default=4, choices=range(1, len(REGIONS) + 1), metavar="N",
                   help="use the first N of " + ", ".join(REGIONS))
    p.add_argument("--days", type=int, default=14)
    p.add_argument("--start", default="2026-10-01", help="first day, UTC (default: %(default)s)")
    p.add_argument("--per-file", type=int, default=500)
    p.add_argument("--jobs", type=int, default=os.cpu_count())
    args = p.parse_args()
    regions, t0 = REGIONS[: args.regions], time.time()
    if os.path.exists(os.path.join(args.out, "AWSLogs")):  # stale files would break determinism
        sys.exit(f"{args.out}/AWSLogs already exists: remove it or choose another --out")
    with Pool(args.jobs, init, (args.seed, args.accounts, regions, args.out)) as pool:
        stats = list(pool.imap_unordered(write_file, plan(args, regions), chunksize=4))
    n, gz, raw = (sum(s[k] for s in stats) for k in range(3))
    print(f"files={len(stats)} records={n} bytes_gz={gz} bytes_raw={raw} avg_record={raw / max(n, 1):.0f}B "
          f"ratio={raw / max(gz, 1):.1f}x seconds={time.time() - t0:.1f}", file=sys.stderr)


if __name__ == "__main__":
    main()
