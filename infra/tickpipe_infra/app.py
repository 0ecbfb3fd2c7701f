"""Build the CDK app: used by app.py (the CLI) and by the tests (offline synthesis)."""

from __future__ import annotations

import os

import aws_cdk as cdk

from tickpipe_infra.base import BaseStack
from tickpipe_infra.settings import InfraSettings
from tickpipe_infra.stack import TickpipeStack

BASE_STACK = "TickpipeBase"
SERVICES_STACK = "Tickpipe"


def build_app(app: cdk.App | None = None) -> cdk.App:
    app = app or cdk.App()
    settings = InfraSettings.from_context(app.node.try_get_context)
    # Account and region from the CLI's credentials when deploying; environment-agnostic otherwise.
    account, region = os.environ.get("CDK_DEFAULT_ACCOUNT"), os.environ.get("CDK_DEFAULT_REGION")
    env = cdk.Environment(account=account, region=region) if account and region else None
    base = BaseStack(
        app,
        BASE_STACK,
        settings=settings,
        env=env,
        description="tickpipe: ECR repositories, configuration bucket, secrets and their KMS key",
    )
    TickpipeStack(
        app,
        SERVICES_STACK,
        settings=settings,
        base=base,
        env=env,
        description="tickpipe: Polygon -> Kafka -> ClickHouse services on ECS Fargate",
    )
    cdk.Tags.of(app).add("project", "tickpipe")
    return app
