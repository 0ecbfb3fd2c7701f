"""The services stack: the ECS cluster, the Fargate services, the scheduled jobs, autoscaling, alarms.

Services: producer, processor, sink, repair (and the console when `webConsole` is on). Jobs, each
an EventBridge Scheduler schedule starting a Fargate task: the daily history job and the export.

It uses what the base stack (base.py) holds: images, the config bucket, the secrets, the key.

Deploy-time values are CloudFormation parameters (Kafka brokers, the image tag, ...), so one
synthesized template serves every environment; shape decisions are CDK context (settings.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from tickpipe_infra.alarms import Alarms
from tickpipe_infra.base import (
    CLICKHOUSE_SECRET,
    KAFKA_SECRET,
    POLYGON_SECRET,
    WEB_TOKEN_SECRET,
    BaseStack,
)
from tickpipe_infra.network import Network
from tickpipe_infra.schedules import ScheduledTask
from tickpipe_infra.services import ServiceSpec, TickpipeService, TickpipeTask
from tickpipe_infra.settings import KAFKA_AUTH_MODES, InfraSettings
from tickpipe_infra.storage import EXPORT_PREFIX, explain_cdk_provider_lambdas

WEB_PORT = 8080


class TickpipeStack(cdk.Stack):
    def __init__(
        self, scope: Construct, construct_id: str, *, settings: InfraSettings, base: BaseStack, **kwargs: Any
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.add_dependency(base)
        self.settings = settings
        self.base = base
        p = self._parameters()
        # The base stack's resources are imported by name or ARN, not passed as objects: CDK
        # would otherwise write this stack's roles into their resource policies, and each stack
        # would then depend on the other.
        self.key = kms.Key.from_key_arn(self, "Key", base.key.key_arn)
        network = Network(self, "Network", settings, self.key)
        self.bucket = base.bucket
        polygon_key = secretsmanager.Secret.from_secret_name_v2(self, "PolygonApiKey", POLYGON_SECRET)
        clickhouse_dsn = secretsmanager.Secret.from_secret_name_v2(self, "ClickHouseDsn", CLICKHOUSE_SECRET)
        kafka_env, kafka_secrets = self._kafka_client(p["KafkaBootstrapServers"])
        common_env = {
            **kafka_env,
            "RAW_TOPIC": p["RawTopic"].value_as_string,
            "FILTERED_TOPIC": p["FilteredTopic"].value_as_string,
        }

        cluster = ecs.Cluster(
            self,
            "Cluster",
            cluster_name="tickpipe",
            vpc=network.vpc,
            container_insights_v2=ecs.ContainerInsights.ENABLED,
        )
        metrics_logs = logs.LogGroup(
            self,
            "MetricsLogs",
            log_group_name="/tickpipe/metrics",
            retention=logs.RetentionDays.ONE_WEEK,
            encryption_key=self.key,
        )
        architecture = (
            ecs.CpuArchitecture.ARM64 if settings.architecture == "ARM64" else ecs.CpuArchitecture.X86_64
        )

        repositories: dict[str, ecr.IRepository] = {}

        def repository(image: str) -> ecr.IRepository:
            if image not in repositories:
                repositories[image] = ecr.Repository.from_repository_name(
                    self, f"{image.capitalize()}Repository", f"tickpipe/{image}"
                )
            return repositories[image]

        def service(
            spec: ServiceSpec, image: str, security_group: ec2.ISecurityGroup | None = None
        ) -> TickpipeService:
            return TickpipeService(
                self,
                spec.name.capitalize(),
                spec=spec,
                cluster=cluster,
                repository=repository(image),
                image_tag=p["ImageTag"].value_as_string,
                architecture=architecture,
                subnets=network.task_subnets,
                security_group=security_group or network.task_security_group,
                metrics_log_group=metrics_logs,
                adot_image=settings.adot_image,
                key=self.key,
            )

        def job(spec: ServiceSpec, image: str, schedule: cdk.CfnParameter, description: str) -> TickpipeTask:
            task = TickpipeTask(
                self,
                "".join(part.capitalize() for part in spec.name.split("-")),
                spec=spec,
                repository=repository(image),
                image_tag=p["ImageTag"].value_as_string,
                architecture=architecture,
                metrics_log_group=metrics_logs,
                adot_image=settings.adot_image,
                key=self.key,
            )
            ScheduledTask(
                task,
                "Scheduled",
                task=task,
                cluster=cluster,
                subnets=network.task_subnet_ids,
                security_group=network.task_security_group,
                expression=schedule.value_as_string,
                description=description,
            )
            return task

        subscriptions_uri = f"s3://{self.bucket.bucket_name}/{settings.subscriptions_key}"
        self.producer = service(
            ServiceSpec(
                name="producer",
                command="producer",
                metrics_port=9101,
                cpu=512,
                memory_mib=1024,
                environment={
                    **common_env,
                    "POLYGON_FEED": p["PolygonFeed"].value_as_string,
                    "POLYGON_MARKET": p["PolygonMarket"].value_as_string,
                    "POLYGON_SECURE": "true",
                    "SUBSCRIPTIONS_URI": subscriptions_uri,
                },
                secrets={**kafka_secrets, "POLYGON_API_KEY": ecs.Secret.from_secrets_manager(polygon_key)},
                # Polygon evicts a second connection per key: exactly one task, never two, not
                # even during a deployment (the old task stops before the new one starts).
                desired_count=1,
                min_healthy_percent=0,
                max_healthy_percent=100,
            ),
            "producer",
        )
        self._grant_read_object(self.producer.task_role, settings.subscriptions_key, "ReadSubscriptionsCsv")

        self.processor = service(
            ServiceSpec(
                name="processor",
                command="processor",
                metrics_port=9102,
                cpu=1024,
                memory_mib=2048,
                environment={
                    **common_env,
                    "FILTER_RULES": f"s3://{self.bucket.bucket_name}/{settings.filter_rules_key}",
                },
                secrets=kafka_secrets,
            ),
            "processor",
        )
        self._grant_read_object(self.processor.task_role, settings.filter_rules_key, "ReadFilterRules")

        self.sink = service(
            ServiceSpec(
                name="sink",
                command="sink",
                metrics_port=9103,
                cpu=512,
                memory_mib=1024,
                environment={**common_env, "CLICKHOUSE_DATABASE": p["ClickHouseDatabase"].value_as_string},
                secrets={**kafka_secrets, "CLICKHOUSE_DSN": ecs.Secret.from_secrets_manager(clickhouse_dsn)},
            ),
            "sink",
        )

        # Gap repair: one task (its Kafka transactional.id fences a second one), stopped before a
        # new one starts, like the producer. It reads the gaps, asks REST and writes RAW_TOPIC.
        clickhouse_secret = {"CLICKHOUSE_DSN": ecs.Secret.from_secrets_manager(clickhouse_dsn)}
        polygon_secret = {"POLYGON_API_KEY": ecs.Secret.from_secrets_manager(polygon_key)}
        rest_env = {
            "POLYGON_REST_URL": p["PolygonRestUrl"].value_as_string,
            "REQUESTS_PER_MINUTE": p["RequestsPerMinute"].value_as_string,
            "CLICKHOUSE_DATABASE": p["ClickHouseDatabase"].value_as_string,
        }
        self.repair = service(
            ServiceSpec(
                name="repair",
                command="repair",
                metrics_port=9104,
                cpu=512,
                memory_mib=1024,
                environment={**common_env, **rest_env},
                secrets={**kafka_secrets, **polygon_secret, **clickhouse_secret},
                desired_count=1,
                min_healthy_percent=0,
                max_healthy_percent=100,
            ),
            "history",
        )

        # The daily jobs: a task per run, started by EventBridge Scheduler, exiting when done.
        self.daily = job(
            ServiceSpec(
                name="history-daily",
                command="daily",
                metrics_port=0,
                cpu=512,
                memory_mib=1024,
                environment=rest_env,
                secrets={**polygon_secret, **clickhouse_secret},
                health_check=False,
                metrics_sidecar=False,
            ),
            "history",
            p["HistoryDailySchedule"],
            "tickpipe daily: yesterday's grouped daily bars, tickers, conditions; re-check of its gaps",
        )
        export_bucket = s3.Bucket.from_bucket_name(self, "ExportBucket", base.export_bucket.bucket_name)
        self.export = job(
            ServiceSpec(
                name="export",
                command="export",
                metrics_port=0,
                cpu=512,
                memory_mib=1024,
                environment={
                    "CLICKHOUSE_DATABASE": p["ClickHouseDatabase"].value_as_string,
                    "EXPORT_URI": f"s3://{export_bucket.bucket_name}/{EXPORT_PREFIX}",
                    "AWS_DEFAULT_REGION": cdk.Aws.REGION,
                },
                secrets=clickhouse_secret,
                health_check=False,
                metrics_sidecar=False,
            ),
            "research",
            p["ExportSchedule"],
            "tickpipe export: yesterday as Parquet in the export bucket (written by ClickHouse)",
        )
        self._grant_export(self.export.task_role, export_bucket)

        self.web: TickpipeService | None = None
        if settings.web_console:
            self.web = self._web(service, network, common_env, {**kafka_secrets, **clickhouse_secret}, p)

        # The producer has no scalable target on purpose (one task per key); the consumer groups
        # scale out up to the partition count (more tasks than partitions would sit idle).
        for scaled, limit in (
            (self.processor, settings.processor_max_tasks),
            (self.sink, settings.sink_max_tasks),
        ):
            scaling = scaled.service.auto_scale_task_count(min_capacity=1, max_capacity=limit)
            scaling.scale_on_cpu_utilization(
                "Cpu",
                target_utilization_percent=60,
                scale_out_cooldown=cdk.Duration.seconds(60),
                scale_in_cooldown=cdk.Duration.minutes(5),
            )

        alarms = Alarms(
            self,
            "Alarms",
            settings=settings,
            lag_threshold=p["LagAlarmThreshold"],
            key=self.key,
            producer=self.producer.service,
            cluster=cluster,
        )
        outputs = {
            "ClusterName": cluster.cluster_name,
            "AlarmTopicArn": alarms.topic.topic_arn,
        }
        for name, value in outputs.items():
            cdk.CfnOutput(self, name, value=value)
        explain_cdk_provider_lambdas(self)

    def _parameters(self) -> dict[str, cdk.CfnParameter]:
        specs: dict[str, dict[str, Any]] = {
            "ImageTag": dict(
                description="Image tag to run (the same tag in all three ECR repositories), e.g. a git sha",
                allowed_pattern=r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}",
            ),
            "KafkaBootstrapServers": dict(
                description="Kafka brokers, host:port[,host:port] (MSK, Confluent Cloud, any)", min_length=1
            ),
            "RawTopic": dict(default="polygon_stream_aggregates", min_length=1),
            "FilteredTopic": dict(default="custom_filtered_stock_data_topic", min_length=1),
            "ClickHouseDatabase": dict(default="tickpipe", allowed_pattern=r"[A-Za-z_][A-Za-z0-9_]*"),
            "PolygonFeed": dict(default="socket.polygon.io", description="websocket host[:port]"),
            "PolygonMarket": dict(
                default="stocks", allowed_values=["stocks", "crypto", "forex", "options", "indices"]
            ),
            "PolygonRestUrl": dict(
                default="https://api.polygon.io",
                description="REST base URL for the repair and the daily job (api.massive.com also serves)",
                allowed_pattern=r"https://\S+",
            ),
            "RequestsPerMinute": dict(
                default="0",
                description="REST requests per minute your plan allows (free: 5); 0 = no limit",
                allowed_pattern=r"\d+(\.\d+)?",
            ),
            "HistoryDailySchedule": dict(
                default="cron(0 6 * * ? *)",
                description="when `tickpipe daily` runs (EventBridge Scheduler expression, UTC)",
                allowed_pattern=r"(cron|rate)\(.+\)",
            ),
            "ExportSchedule": dict(
                default="cron(30 6 * * ? *)",
                description="when `tickpipe export` runs for the day before (EventBridge Scheduler, UTC)",
                allowed_pattern=r"(cron|rate)\(.+\)",
            ),
        }
        params = {name: cdk.CfnParameter(self, name, type="String", **spec) for name, spec in specs.items()}
        params["LagAlarmThreshold"] = cdk.CfnParameter(
            self,
            "LagAlarmThreshold",
            type="Number",
            default=100_000,
            min_value=1,
            description="consumer lag (messages) that raises the lag alarms after 5 minutes",
        )
        return params

    def _kafka_client(self, bootstrap: cdk.CfnParameter) -> tuple[dict[str, str], dict[str, ecs.Secret]]:
        """KAFKA_* variables (librdkafka pass-through) and, for SASL, the credentials secret."""
        protocol, mechanism = KAFKA_AUTH_MODES[self.settings.kafka_auth]
        env = {"KAFKA_BOOTSTRAP_SERVERS": bootstrap.value_as_string, "KAFKA_SECURITY_PROTOCOL": protocol}
        if mechanism is None:
            return env, {}
        env["KAFKA_SASL_MECHANISM"] = mechanism
        credentials = secretsmanager.Secret.from_secret_name_v2(self, "KafkaCredentials", KAFKA_SECRET)
        return env, {
            "KAFKA_SASL_USERNAME": ecs.Secret.from_secrets_manager(credentials, "username"),
            "KAFKA_SASL_PASSWORD": ecs.Secret.from_secrets_manager(credentials, "password"),
        }

    def _web(
        self,
        service: Callable[[ServiceSpec, str, ec2.ISecurityGroup], TickpipeService],
        network: Network,
        common_env: dict[str, str],
        secrets: dict[str, ecs.Secret],
        p: dict[str, cdk.CfnParameter],
    ) -> TickpipeService:
        """The console (off by default): private subnets, its own security group, a token."""
        token = secretsmanager.Secret.from_secret_name_v2(self, "WebToken", WEB_TOKEN_SECRET)
        web = service(
            ServiceSpec(
                name="web",
                command="web",
                arguments=("--web-host", "0.0.0.0", "--web-port", str(WEB_PORT)),
                metrics_port=WEB_PORT,  # the health check asks /healthz on the console's own port
                cpu=512,
                memory_mib=1024,
                environment={**common_env, "CLICKHOUSE_DATABASE": p["ClickHouseDatabase"].value_as_string},
                secrets={**secrets, "WEB_TOKEN": ecs.Secret.from_secrets_manager(token)},
                metrics_sidecar=False,  # it serves no /metrics
            ),
            "web",
            network.web_security_group(WEB_PORT),
        )
        cdk.CfnOutput(self, "WebConsolePort", value=str(WEB_PORT))
        cdk.CfnOutput(self, "WebTokenSecret", value=WEB_TOKEN_SECRET)
        return web

    def _grant_export(self, role: iam.IRole, bucket: s3.IBucket) -> None:
        """The export replaces whole days under its prefix: list, read, write, delete there only."""
        objects = bucket.arn_for_objects(f"{EXPORT_PREFIX}/*")
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="ReplaceExportedDays",
                actions=["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"],
                resources=[objects],
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="ListExportedDays",
                actions=["s3:ListBucket"],
                resources=[bucket.bucket_arn],
                conditions={"StringLike": {"s3:prefix": [f"{EXPORT_PREFIX}/*", EXPORT_PREFIX]}},
            )
        )

    def _grant_read_object(self, role: iam.IRole, key: str, sid: str) -> None:
        """s3:GetObject on exactly one object: no listing, no other key, no write."""
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["s3:GetObject"], resources=[self.bucket.arn_for_objects(key)], sid=sid
            )
        )
