"""Where tickpipe keeps state on AWS: the encryption key and the configuration bucket.

Also the one place checkov skips are written: as metadata on the resource they concern, in the
template, each with its reason (tests/infra/test_infra_lint.py fails on a skip without one).
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

# Checks that do not fit the one-shot Lambdas CDK generates for custom resources (CloudFormation
# invokes them synchronously, a handful of times per deployment, outside the data path).
PROVIDER_LAMBDA_SKIPS = {
    "CKV_AWS_115": "invoked once per deployment by CloudFormation; a concurrency limit protects nothing",
    "CKV_AWS_116": "invoked synchronously; a failure fails the deployment, a dead-letter queue stays empty",
    "CKV_AWS_117": "it calls only the EC2 API; inside the VPC it would need the NAT for that anyway",
}
BUCKET_SKIPS = {
    "CKV_AWS_18": "two small configuration objects: versioning keeps every edit with its time, and "
    "CloudTrail data events are the audit trail if wanted; an access-log bucket would itself need "
    "logging and lifecycle for no extra insight",
}


def explain_skips(resource: cdk.CfnResource, skips: dict[str, str]) -> None:
    """Checkov reads `Metadata.checkov.skip` from the template: the reason travels with the resource."""
    resource.add_metadata(
        "checkov", {"skip": [{"id": check, "comment": why} for check, why in skips.items()]}
    )


def explain_cdk_provider_lambdas(stack: cdk.Stack) -> None:
    """Mark CDK's own custom-resource Lambdas (it locks the VPC's default security group with one)."""
    for construct in stack.node.find_all():
        if (
            isinstance(construct, cdk.CfnResource)
            and construct.cfn_resource_type == "AWS::Lambda::Function"
            and "CustomResourceProvider" in construct.node.path
        ):
            explain_skips(construct, PROVIDER_LAMBDA_SKIPS)


def encryption_key(scope: Construct) -> kms.Key:
    """One customer-managed key for the secrets, the log groups and the alarm topic.

    The services that encrypt with it on our behalf (CloudWatch Logs for the log groups,
    CloudWatch alarms publishing to the encrypted topic) are named in its policy; the tasks'
    execution roles get decrypt through the secrets' grants.
    """
    key = kms.Key(
        scope,
        "Key",
        alias="alias/tickpipe",
        description="tickpipe: secrets, logs and alarm notifications",
        enable_key_rotation=True,
        removal_policy=cdk.RemovalPolicy.RETAIN,
    )
    log_groups = f"arn:{cdk.Aws.PARTITION}:logs:{cdk.Aws.REGION}:{cdk.Aws.ACCOUNT_ID}:log-group:*"
    key.add_to_resource_policy(
        iam.PolicyStatement(
            sid="CloudWatchLogsEncryptTickpipeLogGroups",
            principals=[iam.ServicePrincipal(f"logs.{cdk.Aws.REGION}.amazonaws.com")],
            actions=[
                "kms:Encrypt*",
                "kms:Decrypt*",
                "kms:ReEncrypt*",
                "kms:GenerateDataKey*",
                "kms:Describe*",
            ],
            resources=["*"],  # in a key policy, "*" means this key
            conditions={"ArnLike": {"kms:EncryptionContext:aws:logs:arn": log_groups}},
        )
    )
    key.add_to_resource_policy(
        iam.PolicyStatement(
            sid="CloudWatchAlarmsPublishToEncryptedTopic",
            principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
            actions=["kms:Decrypt", "kms:GenerateDataKey*"],
            resources=["*"],
            conditions={"StringEquals": {"aws:SourceAccount": cdk.Aws.ACCOUNT_ID}},
        )
    )
    return key


def config_bucket(scope: Construct) -> s3.Bucket:
    """The subscriptions CSV (and filter rules). Versioned: every edit can be rolled back."""
    bucket = s3.Bucket(
        scope,
        "ConfigBucket",
        versioned=True,
        encryption=s3.BucketEncryption.S3_MANAGED,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        enforce_ssl=True,
        object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        removal_policy=cdk.RemovalPolicy.RETAIN,
        lifecycle_rules=[
            s3.LifecycleRule(
                id="expire-old-versions",
                noncurrent_version_expiration=cdk.Duration.days(365),
                noncurrent_versions_to_retain=50,
            )
        ],
    )
    resource = bucket.node.default_child
    assert isinstance(resource, cdk.CfnResource)
    explain_skips(resource, BUCKET_SKIPS)
    return bucket


EXPORT_PREFIX = "tickpipe"
EXPORT_BUCKET_SKIPS = {
    "CKV_AWS_18": "written once a day by the export task alone; CloudTrail data events are the "
    "audit trail if wanted, and an access-log bucket would itself need logging and lifecycle",
}


def export_bucket(scope: Construct) -> s3.Bucket:
    """The Parquet cold tier (`tickpipe export`). Versioned: a re-exported day keeps the replaced
    files for 30 days; private, TLS only, SSE-S3 (ClickHouse's s3() writes with plain SigV4)."""
    bucket = s3.Bucket(
        scope,
        "ExportBucket",
        versioned=True,
        encryption=s3.BucketEncryption.S3_MANAGED,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        enforce_ssl=True,
        object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        removal_policy=cdk.RemovalPolicy.RETAIN,
        lifecycle_rules=[
            s3.LifecycleRule(
                id="expire-replaced-exports",
                noncurrent_version_expiration=cdk.Duration.days(30),
                abort_incomplete_multipart_upload_after=cdk.Duration.days(2),
            )
        ],
    )
    resource = bucket.node.default_child
    assert isinstance(resource, cdk.CfnResource)
    explain_skips(resource, EXPORT_BUCKET_SKIPS)
    return bucket
