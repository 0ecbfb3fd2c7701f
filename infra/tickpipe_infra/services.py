"""One Fargate service per component (task definition, container, metrics sidecar, ECS service),
and the task definitions the scheduled jobs run (tickpipe_infra/schedules.py).

Every container runs as the image's non-root user on a read-only root filesystem (a small
task-local volume on /tmp), with an init process so SIGTERM reaches the service and it stops
gracefully, and with the same health check as the image's HEALTHCHECK (ECS ignores the latter).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from constructs import Construct

ADOT_CONFIG = (Path(__file__).parent / "adot-collector.yaml").read_text()
IMAGE_USER = "10001"  # the uid the Dockerfiles create


@dataclass(frozen=True)
class ServiceSpec:
    """What differs between the producer, the processor and the sink."""

    name: str
    command: str
    metrics_port: int
    cpu: int
    memory_mib: int
    environment: dict[str, str]
    secrets: dict[str, ecs.Secret] = field(default_factory=dict)
    desired_count: int = 1
    # Exactly-one services (the producer) stop the old task before starting the new one.
    min_healthy_percent: int = 100
    max_healthy_percent: int = 200
    # A job serves no port (no health check); the console has no /metrics to ship (no sidecar).
    health_check: bool = True
    metrics_sidecar: bool = True
    # Extra arguments after the command (`tickpipe web --web-host 0.0.0.0 ...`).
    arguments: tuple[str, ...] = ()


class TickpipeTask(Construct):
    """A Fargate task definition running one tickpipe command, with its log group and task role."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        spec: ServiceSpec,
        repository: ecr.IRepository,
        image_tag: str,
        architecture: ecs.CpuArchitecture,
        metrics_log_group: logs.ILogGroup,
        adot_image: str,
        key: kms.IKey,
    ) -> None:
        super().__init__(scope, construct_id)
        self.name = spec.name
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            log_group_name=f"/tickpipe/{spec.name}",
            retention=logs.RetentionDays.ONE_MONTH,
            removal_policy=cdk.RemovalPolicy.RETAIN,
            encryption_key=key,
        )
        # The task role is what the service's code may do in AWS: nothing until a grant adds it.
        self.task_role = iam.Role(
            self,
            "TaskRole",
            assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com"),
            description=f"tickpipe {spec.name}: only what this service reads or writes",
        )
        self.task_definition = ecs.FargateTaskDefinition(
            self,
            "Task",
            family=f"tickpipe-{spec.name}",
            cpu=spec.cpu,
            memory_limit_mib=spec.memory_mib,
            task_role=self.task_role,
            runtime_platform=ecs.RuntimePlatform(
                cpu_architecture=architecture, operating_system_family=ecs.OperatingSystemFamily.LINUX
            ),
        )
        self.task_definition.add_volume(name="tmp")
        container = self.task_definition.add_container(
            spec.name,
            image=ecs.ContainerImage.from_ecr_repository(repository, tag=image_tag),
            command=[spec.command, *spec.arguments],
            environment={**spec.environment, "METRICS_PORT": str(spec.metrics_port), "LOG_FORMAT": "json"},
            secrets=spec.secrets,
            logging=ecs.LogDriver.aws_logs(stream_prefix=spec.name, log_group=self.log_group),
            health_check=ecs.HealthCheck(
                command=["CMD", "python", "/usr/local/bin/tickpipe-healthcheck"],
                interval=cdk.Duration.seconds(15),
                timeout=cdk.Duration.seconds(5),
                start_period=cdk.Duration.seconds(60),
                retries=3,
            )
            if spec.health_check
            else None,
            readonly_root_filesystem=True,
            user=IMAGE_USER,
            linux_parameters=ecs.LinuxParameters(self, "Linux", init_process_enabled=True),
            stop_timeout=cdk.Duration.seconds(30),
            essential=True,
        )
        # The only writable path: a task-local volume (the root filesystem is read-only).
        tmp = ecs.MountPoint(container_path="/tmp", source_volume="tmp", read_only=False)  # noqa: S108
        container.add_mount_points(tmp)
        if spec.metrics_sidecar:
            self._add_metrics_sidecar(spec, metrics_log_group, adot_image)
        # The secrets are encrypted with our key: ECS may decrypt them, through Secrets Manager only.
        self.task_definition.obtain_execution_role().add_to_principal_policy(
            iam.PolicyStatement(
                sid="DecryptSecretsViaSecretsManager",
                actions=["kms:Decrypt"],
                resources=[key.key_arn],
                conditions={
                    "StringEquals": {"kms:ViaService": f"secretsmanager.{cdk.Aws.REGION}.amazonaws.com"}
                },
            )
        )

    def _add_metrics_sidecar(self, spec: ServiceSpec, metrics_log_group: logs.ILogGroup, image: str) -> None:
        """ADOT collector: Prometheus on localhost -> CloudWatch metrics (for the alarms)."""
        self.task_definition.add_container(
            "metrics",
            image=ecs.ContainerImage.from_registry(image),
            essential=False,  # losing metrics must not stop the pipeline
            environment={
                "AOT_CONFIG_CONTENT": ADOT_CONFIG.replace("__SERVICE__", spec.name).replace(
                    "__METRICS_PORT__", str(spec.metrics_port)
                )
            },
            logging=ecs.LogDriver.aws_logs(stream_prefix=f"{spec.name}-metrics", log_group=self.log_group),
            memory_reservation_mib=64,
            readonly_root_filesystem=True,
        )
        self.task_role.add_to_policy(
            iam.PolicyStatement(
                sid="WriteMetricsAsEmbeddedLogs",
                actions=["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
                resources=[
                    metrics_log_group.log_group_arn,
                    f"{metrics_log_group.log_group_arn}:log-stream:*",
                ],
            )
        )


class TickpipeService(TickpipeTask):
    """A Fargate service running one tickpipe command, in private subnets without a public IP.

    The task's parts are children of the service's construct itself (not of a nested one), so
    their logical ids, and the fixed-name log groups, stay those of earlier deployments.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        spec: ServiceSpec,
        cluster: ecs.ICluster,
        repository: ecr.IRepository,
        image_tag: str,
        architecture: ecs.CpuArchitecture,
        subnets: ec2.SubnetSelection,
        security_group: ec2.ISecurityGroup,
        metrics_log_group: logs.ILogGroup,
        adot_image: str,
        key: kms.IKey,
    ) -> None:
        super().__init__(
            scope,
            construct_id,
            spec=spec,
            repository=repository,
            image_tag=image_tag,
            architecture=architecture,
            metrics_log_group=metrics_log_group,
            adot_image=adot_image,
            key=key,
        )
        self.service = ecs.FargateService(
            self,
            "Service",
            service_name=f"tickpipe-{spec.name}",
            cluster=cluster,
            task_definition=self.task_definition,
            desired_count=spec.desired_count,
            min_healthy_percent=spec.min_healthy_percent,
            max_healthy_percent=spec.max_healthy_percent,
            assign_public_ip=False,
            vpc_subnets=subnets,
            security_groups=[security_group],
            circuit_breaker=ecs.DeploymentCircuitBreaker(rollback=True),
            platform_version=ecs.FargatePlatformVersion.LATEST,
            enable_execute_command=False,
        )
