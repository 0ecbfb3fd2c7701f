"""The services stack: the ECS cluster, three Fargate services, autoscaling and alarms.

It uses what the base stack (base.py) holds: images, the config bucket, the secrets, the key.

Deploy-time values are CloudFormation parameters (Kafka brokers, the image tag, ...), so one
synthesized template serves every environment; shape decisions are CDK context (settings.py).
"""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from tickpipe_infra.alarms import Alarms
from tickpipe_infra.base import CLICKHOUSE_SECRET, KAFKA_SECRET, POLYGON_SECRET, BaseStack
from tickpipe_infra.network import Network
from tickpipe_infra.services import ServiceSpec, TickpipeService
from tickpipe_infra.settings import KAFKA_AUTH_MODES, InfraSettings
from tickpipe_infra.storage import explain_cdk_provider_lambdas


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

        def service(spec: ServiceSpec, image: str) -> TickpipeService:
            return TickpipeService(
                self,
                spec.name.capitalize(),
                spec=spec,
                cluster=cluster,
                repository=ecr.Repository.from_repository_name(
                    self, f"{image.capitalize()}Repository", f"tickpipe/{image}"
                ),
                image_tag=p["ImageTag"].value_as_string,
                architecture=architecture,
                subnets=network.task_subnets,
                security_group=network.task_security_group,
                metrics_log_group=metrics_logs,
                adot_image=settings.adot_image,
                key=self.key,
            )

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

    def _grant_read_object(self, role: iam.IRole, key: str, sid: str) -> None:
        """s3:GetObject on exactly one object: no listing, no other key, no write."""
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["s3:GetObject"], resources=[self.bucket.arn_for_objects(key)], sid=sid
            )
        )
