"""Talking to S3: `s3://` urls, the read-only client, and boto3 failures turned into SourceErrors."""

from __future__ import annotations

import re
from typing import Any

import boto3
import botocore.config
import botocore.exceptions

from sleuth.errors import SourceError
from sleuth.report.escape import visible

# Only these operations may ever be sent: sleuth reads, it never writes (enforced by a client hook).
READ_ONLY_OPERATIONS = frozenset({"ListObjectsV2", "GetObject", "HeadObject", "HeadBucket", "GetBucketLocation"})

_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


# --------------------------------------------------------------------------------------------- urls


def parse_url(url: str) -> tuple[str, str]:
    """`s3://bucket/prefix` -> (bucket, prefix). The prefix may be empty; it is never normalised."""
    if not url.startswith("s3://"):
        raise SourceError(f"{visible(url)}: not an S3 url", "write it as s3://bucket/prefix")
    rest = url[len("s3://") :]
    bucket, _, prefix = rest.partition("/")
    if not bucket:
        raise SourceError(f"{visible(url)}: the bucket name is missing", "write it as s3://bucket/prefix")
    if not _BUCKET_NAME.match(bucket) or ".." in bucket:
        raise SourceError(
            f"{visible(url)}: {visible(bucket)!r} is not a valid S3 bucket name",
            "bucket names are 3-63 lowercase letters, digits, dots and hyphens: check the url",
        )
    if "\x00" in prefix:
        raise SourceError(f"{visible(url)}: the prefix contains a NUL character", "check the url")
    return bucket, prefix


def display_name(bucket: str, key: str) -> str:
    """How reports name an object or prefix: `s3://bucket/key`."""
    return f"s3://{bucket}/{key}"


# ------------------------------------------------------------------------------------------- client


def make_client(
    profile: str | None = None,
    region: str | None = None,
    endpoint_url: str | None = None,
    max_parallel: int = 8,
) -> Any:
    """An S3 client from the standard credential chain, refusing every operation that is not a read.

    Without `endpoint_url`, boto3 itself honours AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL (S3-compatible
    stores); AWS_MAX_ATTEMPTS still applies on top of the standard retry mode.
    """
    try:
        session = boto3.session.Session(profile_name=profile, region_name=region)
    except botocore.exceptions.ProfileNotFound as exc:
        raise SourceError(
            f"the AWS profile {visible(profile or '')!r} does not exist",
            "check --profile against ~/.aws/config (aws configure list-profiles)",
        ) from exc
    config = botocore.config.Config(
        retries={"mode": "standard"},
        connect_timeout=5,
        read_timeout=60,
        max_pool_connections=max(10, max_parallel + 2),
    )
    try:
        client = session.client("s3", endpoint_url=endpoint_url or None, config=config)
    except ValueError as exc:  # a malformed endpoint url
        raise SourceError(
            f"cannot use the S3 endpoint {visible(str(endpoint_url))}: {exc}", "check --endpoint-url"
        ) from exc
    client.meta.events.register("before-call.s3.*", _refuse_writes)
    return client


def _refuse_writes(model: Any, **_: Any) -> None:
    if model.name not in READ_ONLY_OPERATIONS:
        raise SourceError(
            f"refusing to send S3 {model.name}: sleuth only reads its sources",
            "this is a bug in sleuth: please report it",
        )


# ------------------------------------------------------------------------------------------- errors

_CREDENTIAL_CODES = {
    "ExpiredToken",
    "ExpiredTokenException",
    "InvalidAccessKeyId",
    "InvalidToken",
    "SignatureDoesNotMatch",
    "TokenRefreshRequired",
    "RequestExpired",
    "InvalidClientTokenId",
    "UnrecognizedClientException",
}
_DENIED_CODES = {"AccessDenied", "AllAccessDisabled", "AccountProblem", "Forbidden", "403"}
_MISSING_CODES = {"NoSuchKey", "404"}
_REDIRECT_CODES = {"PermanentRedirect", "AuthorizationHeaderMalformed", "IllegalLocationConstraintException"}
_REFRESH = "refresh your credentials: aws sso login, or pick others with --profile / AWS_PROFILE"
_NO_CREDENTIALS = (
    botocore.exceptions.NoCredentialsError
    | botocore.exceptions.PartialCredentialsError
    | botocore.exceptions.CredentialRetrievalError
    | botocore.exceptions.TokenRetrievalError
    | botocore.exceptions.SSOError
)
_UNREACHABLE = botocore.exceptions.ConnectionError | botocore.exceptions.HTTPClientError  # refused, DNS, timeouts, TLS


def is_missing_object(exc: botocore.exceptions.ClientError) -> bool:
    """Did S3 answer that the object does not exist?"""
    return _error_code(exc) in _MISSING_CODES


def translate_error(exc: BaseException, bucket: str, prefix: str = "", key: str | None = None) -> SourceError:
    """A SourceError naming the bucket/prefix and the fix, for any boto3/botocore failure."""
    where = display_name(bucket, key if key is not None else prefix)
    if isinstance(exc, SourceError):
        return exc
    if isinstance(exc, _NO_CREDENTIALS):
        return SourceError(f"{where}: no usable AWS credentials ({visible(str(exc))})", _REFRESH)
    if isinstance(exc, botocore.exceptions.ProfileNotFound):
        return SourceError(f"{where}: {visible(str(exc))}", "check --profile against ~/.aws/config")
    if isinstance(exc, _UNREACHABLE):
        return SourceError(
            f"{where}: cannot reach S3 ({visible(str(exc))})",
            "check network access to S3 (proxy, VPC endpoint) or --endpoint-url / AWS_ENDPOINT_URL_S3",
        )
    if isinstance(exc, botocore.exceptions.ClientError):
        return _translate_client_error(exc, bucket, prefix, where)
    if isinstance(exc, botocore.exceptions.BotoCoreError):
        return SourceError(f"{where}: {visible(str(exc))}", "re-run; check the url, credentials and --endpoint-url")
    return SourceError(f"{where}: {visible(repr(exc))}", "re-run; if it persists, report it")


def _translate_client_error(exc: botocore.exceptions.ClientError, bucket: str, prefix: str, where: str) -> SourceError:
    """An error S3 answered with, by its code (or HTTP status when the code is missing)."""
    code = _error_code(exc)
    status = (exc.response.get("ResponseMetadata") or {}).get("HTTPStatusCode")
    message = visible(str((exc.response.get("Error") or {}).get("Message") or code or exc))
    if code == "NoSuchBucket":
        return SourceError(f"s3://{bucket}: no such bucket", "check the bucket name")
    if code in _CREDENTIAL_CODES:
        return SourceError(f"{where}: the AWS credentials were refused ({code}: {message})", _REFRESH)
    if code in _DENIED_CODES or status == 403:
        return SourceError(
            f"{where}: access denied ({code or status}: {message})",
            f"the credentials need s3:ListBucket on arn:aws:s3:::{bucket} and s3:GetObject on "
            f"arn:aws:s3:::{bucket}/{prefix}* (and kms:Decrypt for SSE-KMS objects)",
        )
    if code in _REDIRECT_CODES or status == 301:
        return SourceError(f"{where}: the bucket is in another region ({message})", "pass --region REGION")
    if code in _MISSING_CODES:
        return SourceError(f"{where}: no such object", "the object was deleted while sleuth read it: re-run")
    return SourceError(f"{where}: S3 refused the request ({code or status}: {message})", "re-run; check the url")


def _error_code(exc: botocore.exceptions.ClientError) -> str:
    return str((exc.response.get("Error") or {}).get("Code") or "")
