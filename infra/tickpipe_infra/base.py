"""The base stack: what must exist, and be filled in, before any service can start.

ECR repositories (the images are pushed here), the configuration bucket (the subscriptions CSV),
the export bucket (the Parquet cold tier `tickpipe export` writes),
the secrets (the Polygon key, Kafka and ClickHouse credentials) and the KMS key that encrypts them.
Deploying these first lets `infra/deploy.sh` stop and ask for the secret values and the CSV before
the services stack exists: services started on placeholder secrets would crash-loop, trip the
deployment circuit breaker and roll the whole stack back.
"""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from tickpipe_infra.settings import KAFKA_AUTH_MODES, InfraSettings
from tickpipe_infra.storage import EXPORT_PREFIX, config_bucket, encryption_key, export_bucket

# Image name -> the Dockerfile it is built from (paths relative to the repository root). The
# console's image (web) gets a repository only when the console is enabled (settings.web_console).
IMAGES = {
    "producer": "producer/Dockerfile",
    "processor": "processor/Dockerfile",
    "sink": "clickhouse/Dockerfile",
    "history": "deploy/history/Dockerfile",  # `tickpipe repair`, `tickpipe daily`
    "research": "deploy/research/Dockerfile",  # `tickpipe export`
}
WEB_IMAGE = {"web": "deploy/web/Dockerfile"}
# Secret names are fixed so that docs and deploy.sh can name them; values never appear in code.
POLYGON_SECRET = "tickpipe/polygon-api-key"  # noqa: S105 (a name, not a value)
CLICKHOUSE_SECRET = "tickpipe/clickhouse-dsn"  # noqa: S105
KAFKA_SECRET = "tickpipe/kafka-sasl"  # noqa: S105
WEB_TOKEN_SECRET = "tickpipe/web-token"  # noqa: S105


class BaseStack(cdk.Stack):
    """ECR, the config bucket, the secrets (generated placeholders until the operator sets them)."""

    def __init__(
        self, scope: Construct, construct_id: str, *, settings: InfraSettings, **kwargs: Any
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        images = {**IMAGES, **(WEB_IMAGE if settings.web_console else {})}
        self.repositories = {image: self._repository(image) for image in images}
        self.key = encryption_key(self)
        self.bucket = config_bucket(self)
        self.export_bucket = export_bucket(self)
        self.polygon_key = self._secret(
            "PolygonApiKey", POLYGON_SECRET, "Polygon/Massive API key for the producer (a plain string)"
        )
        self.clickhouse_dsn = self._secret(
            "ClickHouseDsn",
            CLICKHOUSE_SECRET,
            "CLICKHOUSE_DSN for the sink: https://user:password@host:8443/db",
        )
        self.kafka_credentials: secretsmanager.Secret | None = None
        if KAFKA_AUTH_MODES[settings.kafka_auth][1] is not None:
            self.kafka_credentials = self._secret(
                "KafkaCredentials",
                KAFKA_SECRET,
                'Kafka SASL credentials: {"username": "...", "password": "..."}',
                secretsmanager.SecretStringGenerator(
                    secret_string_template='{"username": "tickpipe"}',  # noqa: S106 (a placeholder user)
                    generate_string_key="password",
                ),
            )
        self.web_token: secretsmanager.Secret | None = None
        if settings.web_console:
            # The generated value is the token (32 letters and digits): nothing to set by hand.
            self.web_token = self._secret(
                "WebToken",
                WEB_TOKEN_SECRET,
                "WEB_TOKEN of the live console: every request must carry it (?token= or a header)",
                secretsmanager.SecretStringGenerator(
                    password_length=32, exclude_punctuation=True, include_space=False
                ),
            )
        cdk.CfnOutput(self, "ConfigBucketName", value=self.bucket.bucket_name)
        cdk.CfnOutput(self, "ExportUri", value=f"s3://{self.export_bucket.bucket_name}/{EXPORT_PREFIX}")
        for output, key in (
            ("SubscriptionsUri", settings.subscriptions_key),
            ("FilterRulesUri", settings.filter_rules_key),
        ):
            cdk.CfnOutput(self, output, value=f"s3://{self.bucket.bucket_name}/{key}")

    def _repository(self, image: str) -> ecr.Repository:
        repository = ecr.Repository(
            self,
            f"{image.capitalize()}Repository",
            repository_name=f"tickpipe/{image}",
            image_scan_on_push=True,
            # A tag names one build forever: rolling back means deploying the previous tag.
            image_tag_mutability=ecr.TagMutability.IMMUTABLE,
            # KMS with the AWS-managed aws/ecr key: encrypted under KMS, no key to pay for or manage.
            encryption=ecr.RepositoryEncryption.KMS,
            removal_policy=cdk.RemovalPolicy.RETAIN,
            lifecycle_rules=[ecr.LifecycleRule(description="keep the last 30 images", max_image_count=30)],
        )
        cdk.CfnOutput(self, f"{image.capitalize()}RepositoryUri", value=repository.repository_uri)
        return repository

    def _secret(
        self,
        construct_id: str,
        name: str,
        description: str,
        generator: secretsmanager.SecretStringGenerator | None = None,
    ) -> secretsmanager.Secret:
        """A secret holding a generated placeholder: `put-secret-value` sets the real one."""
        secret = secretsmanager.Secret(
            self,
            construct_id,
            secret_name=name,
            description=description,
            encryption_key=self.key,
            generate_secret_string=generator,
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        cdk.CfnOutput(self, f"{construct_id}Secret", value=secret.secret_name)
        return secret
