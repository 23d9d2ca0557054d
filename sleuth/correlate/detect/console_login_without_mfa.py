"""Console sign-in without MFA: a successful ConsoleLogin whose additionalEventData says MFAUsed "No".

Only the password stood between the console and whoever typed it. Federated sign-ins (SSO / Identity
Center, SAML, web identity, assumed roles) are left out: their MFA is enforced by the identity provider
upstream and CloudTrail always logs MFAUsed "No" for them. One hit per sign-in, keyed by the identity.

Severity: Low for an IAM user (a posture weakness: the user has no MFA device or is not required to use
one); High for root (CIS AWS 1.5: root must use MFA).
"""

from __future__ import annotations

import polars as pl

from sleuth.correlate.detect import _common as c
from sleuth.correlate.detect.base import Context, Detection, empty_hits

DETECTION = Detection(
    id="console-login-without-mfa",
    title="Console sign-in without MFA",
    severity=3.0,
    tactic="Initial Access",
    technique="T1078.004",
    description=(
        "A user signed in to the AWS console with a password alone (MFAUsed: No). A stolen or guessed "
        "password is enough to take over such an identity."
    ),
    false_positives=(
        "Users who have not enrolled an MFA device yet (fix the policy rather than the alert). SSO, SAML, "
        "web-identity and assumed-role sign-ins are left out: MFA for them is enforced upstream by the "
        "identity provider, and CloudTrail logs MFAUsed: No for them regardless."
    ),
)

_FEDERATED = ["AssumedRole", "FederatedUser", "SAMLUser", "WebIdentityUser", "IdentityCenterUser"]


def run(context: Context) -> pl.DataFrame:
    success = pl.col("response").str.contains(r'"ConsoleLogin"\s*:\s*"Success"').fill_null(False)
    no_mfa = pl.col("additional").str.contains(r'"MFAUsed"\s*:\s*"No"').fill_null(False) & (
        pl.col("mfa") != True  # noqa: E712
    ).fill_null(True)
    logins = context.events.filter(
        (pl.col("action") == "ConsoleLogin")
        & success
        & no_mfa
        & pl.col("error_code").is_null()
        & ~pl.col("actor_type").is_in(_FEDERATED).fill_null(False)
        & ~pl.col("principal").str.contains(r":assumed-role/|:federated-user/").fill_null(False)
    )
    if logins.is_empty():
        return empty_hits()
    root = pl.col("actor_type") == "Root"
    principal = pl.coalesce(
        pl.when(pl.col("principal").str.starts_with("arn:")).then("principal"),
        pl.when(root).then(pl.format("arn:aws:iam::{}:root", "account")),
        pl.format("arn:aws:iam::{}:user/{}", "account", "user_name"),
    )
    logins = logins.with_columns(principal=principal)
    address = pl.coalesce(c.ip(pl.col("src_ip")), pl.col("src_ip"), pl.lit("an unknown address"))
    return c.finish(
        logins.with_columns(
            detection_id=pl.lit(DETECTION.id),
            key_type=c.principal_type(),
            key_id=pl.col("principal"),
            severity=pl.when(root).then(7.0).otherwise(DETECTION.severity),
            first_seen=pl.col("time"),
            last_seen=pl.col("time"),
            count=pl.lit(1, pl.Int64),
            event_ids=pl.concat_list(pl.col("event_id")).list.drop_nulls(),
            entities=c.actor_entities(),
            title=pl.concat_str([pl.lit("Console sign-in without MFA by "), c.short_name(), pl.lit(" from "), address]),
            details=pl.concat_str(
                [
                    c.short_name(),
                    pl.lit(" signed in to the console at "),
                    pl.col("time").dt.strftime("%Y-%m-%d %H:%M:%S"),
                    pl.lit(" from "),
                    address,
                    pl.lit(" with a password only (MFAUsed: No)"),
                    pl.when(root).then(pl.lit("; this is the root user")).otherwise(pl.lit("")),
                ]
            ),
        )
    )
