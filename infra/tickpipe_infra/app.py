"""Build the CDK app: used by app.py (the CLI) and by the tests (offline synthesis)."""

from __future__ import annotations

import os

import aws_cdk as cdk

from tickpipe_infra.registry import RegistryStack
from tickpipe_infra.settings import InfraSettings
from tickpipe_infra.stack import TickpipeStack

REGISTRY_STACK = "TickpipeRegistry"
SERVICES_STACK = "Tickpipe"


def build_app(app: cdk.App | None = None) -> cdk.App:
    app = app or cdk.App()
    settings = InfraSettings.from_context(app.node.try_get_context)
    # Account and region from the CLI's credentials when deploying; environment-agnostic otherwise.
    account, region = os.environ.get("CDK_DEFAULT_ACCOUNT"), os.environ.get("CDK_DEFAULT_REGION")
    env = cdk.Environment(account=account, region=region) if account and region else None
    RegistryStack(app, REGISTRY_STACK, env=env, description="tickpipe: ECR repositories for the images")
    TickpipeStack(
        app,
        SERVICES_STACK,
        settings=settings,
        env=env,
        description="tickpipe: Polygon -> Kafka -> ClickHouse services on ECS Fargate",
    )
    cdk.Tags.of(app).add("project", "tickpipe")
    return app
