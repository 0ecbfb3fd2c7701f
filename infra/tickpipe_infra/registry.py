"""The ECR repositories, in a stack of their own.

Images must be in ECR before an ECS service can start, and the services stack references them by
tag. Keeping the repositories apart lets `infra/deploy.sh` create them, push the images, and only
then deploy the services, in one command and without a half-created stack waiting on images.
"""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_ecr as ecr
from constructs import Construct

# Image name -> the Dockerfile it is built from (paths relative to the repository root).
IMAGES = {
    "producer": "producer/Dockerfile",
    "processor": "processor/Dockerfile",
    "sink": "clickhouse/Dockerfile",
}


def repository_name(image: str) -> str:
    return f"tickpipe/{image}"


class RegistryStack(cdk.Stack):
    """One private repository per service image: scanned on push, immutable tags, pruned."""

    def __init__(self, scope: Construct, construct_id: str, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        for image in IMAGES:
            repository = ecr.Repository(
                self,
                f"{image.capitalize()}Repository",
                repository_name=repository_name(image),
                image_scan_on_push=True,
                # A tag names one build forever: rolling back means deploying the previous tag.
                image_tag_mutability=ecr.TagMutability.IMMUTABLE,
                # KMS with the AWS-managed aws/ecr key: encrypted under KMS, no key to pay for or manage.
                encryption=ecr.RepositoryEncryption.KMS,
                removal_policy=cdk.RemovalPolicy.RETAIN,
                lifecycle_rules=[
                    ecr.LifecycleRule(description="keep the last 30 images", max_image_count=30)
                ],
            )
            cdk.CfnOutput(self, f"{image.capitalize()}RepositoryUri", value=repository.repository_uri)
