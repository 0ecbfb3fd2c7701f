"""The synthesized CloudFormation says what the issue requires (CDK assertions, offline)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.infra.conftest import Synth, require_cdk, synthesize

require_cdk()
from aws_cdk.assertions import Match, Template  # noqa: E402  (after the check above)


@pytest.fixture(scope="module")
def services(synth: Synth) -> Template:
    return Template.from_json(synth.templates["Tickpipe"])


@pytest.fixture(scope="module")
def base(synth: Synth) -> Template:
    return Template.from_json(synth.templates["TickpipeBase"])


def _resources(template: Template, kind: str) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = template.find_resources(kind)
    return found


def _service_id(template: Template, name: str) -> str:
    for logical_id, resource in _resources(template, "AWS::ECS::Service").items():
        if resource["Properties"]["ServiceName"] == f"tickpipe-{name}":
            return logical_id
    raise AssertionError(f"no ECS service tickpipe-{name}")


def _service(template: Template, name: str) -> dict[str, Any]:
    return _resources(template, "AWS::ECS::Service")[_service_id(template, name)]


def _scaled_services(template: Template) -> set[str]:
    """Logical ids of the ECS services that have a scalable target (its ResourceId refers to them)."""
    targets = _resources(template, "AWS::ApplicationAutoScaling::ScalableTarget").values()
    ids = set(_resources(template, "AWS::ECS::Service"))
    return {
        logical for logical in ids for target in targets if logical in str(target["Properties"]["ResourceId"])
    }


def _container(template: Template, name: str) -> dict[str, Any]:
    for resource in _resources(template, "AWS::ECS::TaskDefinition").values():
        for container in resource["Properties"]["ContainerDefinitions"]:
            if container["Name"] == name:
                return dict(container)
    raise AssertionError(f"no container {name}")


def _role_statements(template: Template, service: str) -> list[dict[str, Any]]:
    """Every policy statement attached to the service's task role."""
    role_id = next(
        logical
        for logical, role in _resources(template, "AWS::IAM::Role").items()
        if f"tickpipe {service}:" in role["Properties"].get("Description", "")
    )
    statements = []
    for policy in _resources(template, "AWS::IAM::Policy").values():
        if {"Ref": role_id} in policy["Properties"]["Roles"]:
            statements += policy["Properties"]["PolicyDocument"]["Statement"]
    return statements


def test_one_fargate_service_per_component(services: Template) -> None:
    services.resource_count_is("AWS::ECS::Cluster", 1)
    services.resource_count_is("AWS::ECS::Service", 3)
    for name in ("producer", "processor", "sink"):
        assert _service(services, name)["Properties"]["LaunchType"] == "FARGATE"


def test_exactly_one_producer_task_never_two(services: Template) -> None:
    producer = _service(services, "producer")["Properties"]
    assert producer["DesiredCount"] == 1
    deployment = producer["DeploymentConfiguration"]
    assert deployment["MinimumHealthyPercent"] == 0  # old task stops first...
    assert deployment["MaximumPercent"] == 100  # ...so a new one never overlaps it
    assert _service_id(services, "producer") not in _scaled_services(services), (
        "the producer must not autoscale"
    )


def test_processor_and_sink_autoscale(services: Template) -> None:
    targets = _resources(services, "AWS::ApplicationAutoScaling::ScalableTarget")
    assert len(targets) == 2
    assert _scaled_services(services) == {_service_id(services, "processor"), _service_id(services, "sink")}
    for target in targets.values():
        assert target["Properties"]["MinCapacity"] == 1
        assert target["Properties"]["MaxCapacity"] >= 2
    services.resource_properties_count_is(
        "AWS::ApplicationAutoScaling::ScalingPolicy",
        {"PolicyType": "TargetTrackingScaling"},
        2,
    )


def test_no_public_ips_and_no_ingress(services: Template) -> None:
    for resource in _resources(services, "AWS::ECS::Service").values():
        network = resource["Properties"]["NetworkConfiguration"]["AwsvpcConfiguration"]
        assert network["AssignPublicIp"] == "DISABLED"
    for group in _resources(services, "AWS::EC2::SecurityGroup").values():
        assert not group["Properties"].get("SecurityGroupIngress")
    services.resource_count_is("AWS::EC2::SecurityGroupIngress", 0)


def test_config_bucket_is_versioned_encrypted_and_private(base: Template, services: Template) -> None:
    services.resource_count_is("AWS::S3::Bucket", 0)  # the one bucket lives in the base stack
    base.has_resource_properties(
        "AWS::S3::Bucket",
        {
            "VersioningConfiguration": {"Status": "Enabled"},
            "BucketEncryption": {"ServerSideEncryptionConfiguration": Match.any_value()},
            "PublicAccessBlockConfiguration": {
                "BlockPublicAcls": True,
                "BlockPublicPolicy": True,
                "IgnorePublicAcls": True,
                "RestrictPublicBuckets": True,
            },
        },
    )


def test_producer_may_read_exactly_the_csv(services: Template) -> None:
    s3_statements = [
        statement for statement in _role_statements(services, "producer") if "s3:" in str(statement["Action"])
    ]
    assert len(s3_statements) == 1, s3_statements
    statement = s3_statements[0]
    assert statement["Action"] == "s3:GetObject"
    assert statement["Effect"] == "Allow"
    resource = str(statement["Resource"])
    assert resource.endswith("/subscriptions.csv']}") or "/subscriptions.csv" in resource
    assert "*" not in resource.replace("log-stream:*", "")


def test_task_roles_have_no_wildcard_actions(services: Template) -> None:
    for service in ("producer", "processor", "sink"):
        for statement in _role_statements(services, service):
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            assert all(not action.endswith(":*") and action != "*" for action in actions), statement
    assert not any("s3:" in str(s["Action"]) for s in _role_statements(services, "sink"))


def test_secrets_are_injected_never_plain_environment(base: Template, services: Template) -> None:
    producer = _container(services, "producer")
    assert {secret["Name"] for secret in producer["Secrets"]} >= {"POLYGON_API_KEY"}
    sink = _container(services, "sink")
    assert {secret["Name"] for secret in sink["Secrets"]} >= {"CLICKHOUSE_DSN"}
    for name in ("producer", "processor", "sink"):
        container = _container(services, name)
        env_names = {item["Name"] for item in container.get("Environment", [])}
        leaked = {n for n in env_names if any(w in n for w in ("KEY", "PASSWORD", "SECRET", "DSN", "TOKEN"))}
        assert not leaked, f"{name}: secret-like variables in plain environment: {leaked}"
        assert {secret["Name"] for secret in container["Secrets"]} >= {
            "KAFKA_SASL_USERNAME",
            "KAFKA_SASL_PASSWORD",
        }
    base.resource_count_is("AWS::SecretsManager::Secret", 3)
    services.resource_count_is("AWS::SecretsManager::Secret", 0)
    for secret in _resources(base, "AWS::SecretsManager::Secret").values():
        assert "KmsKeyId" in secret["Properties"]
        assert "SecretString" not in secret["Properties"], "a value in the template"


def test_containers_are_hardened(services: Template) -> None:
    for name, port in (("producer", "9101"), ("processor", "9102"), ("sink", "9103")):
        container = _container(services, name)
        assert container["ReadonlyRootFilesystem"] is True
        assert container["User"] == "10001"
        assert container["LinuxParameters"]["InitProcessEnabled"] is True
        assert container["HealthCheck"]["Command"][:2] == ["CMD", "python"]
        assert {"Name": "METRICS_PORT", "Value": port} in container["Environment"]
        assert container["LogConfiguration"]["LogDriver"] == "awslogs"


def test_log_groups_ecr_and_kafka_parameters(services: Template, base: Template) -> None:
    names = {
        g["Properties"].get("LogGroupName") for g in _resources(services, "AWS::Logs::LogGroup").values()
    }
    assert {"/tickpipe/producer", "/tickpipe/processor", "/tickpipe/sink"} <= names
    base.resource_count_is("AWS::ECR::Repository", 3)
    base.has_resource_properties(
        "AWS::ECR::Repository",
        {"ImageTagMutability": "IMMUTABLE", "ImageScanningConfiguration": {"ScanOnPush": True}},
    )
    parameters = services.to_json()["Parameters"]
    assert {"KafkaBootstrapServers", "ImageTag", "ClickHouseDatabase"} <= set(parameters)
    assert "Default" not in parameters["KafkaBootstrapServers"]  # must be given at deploy time


def test_alarms_on_lag_and_dead_letters(services: Template) -> None:
    alarms = _resources(services, "AWS::CloudWatch::Alarm")
    by_name = {alarm["Properties"]["AlarmName"]: alarm["Properties"] for alarm in alarms.values()}
    for name in ("ProcessorLag", "SinkLag", "ProcessorDeadLetters", "SinkDeadLetters", "ProducerNotRunning"):
        assert f"tickpipe-{name}" in by_name, sorted(by_name)
        assert by_name[f"tickpipe-{name}"]["AlarmActions"], f"{name} notifies nobody"
    assert by_name["tickpipe-ProcessorDeadLetters"]["Threshold"] == 0


def test_imported_vpc_and_bad_context(tmp_path_factory: pytest.TempPathFactory) -> None:
    """An imported VPC creates none; a malformed context value fails naming the key."""
    from tickpipe_infra.settings import InfraConfigError

    imported = synthesize(
        tmp_path_factory.mktemp("imported"),
        {
            "vpcId": "vpc-0123456789abcdef0",
            "privateSubnetIds": "subnet-aaaa1111,subnet-bbbb2222",
            "availabilityZones": ["us-east-1a", "us-east-1b"],
            "kafkaAuth": "tls",
        },
    )
    template = Template.from_json(imported.templates["Tickpipe"])
    template.resource_count_is("AWS::EC2::VPC", 0)
    template.resource_count_is("AWS::EC2::NatGateway", 0)
    assert "KAFKA_SASL_PASSWORD" not in str(template.to_json())  # tls mode: no SASL secret at all
    Template.from_json(imported.templates["TickpipeBase"]).resource_count_is("AWS::SecretsManager::Secret", 2)
    with pytest.raises(InfraConfigError, match="kafkaAuth"):
        synthesize(tmp_path_factory.mktemp("bad"), {"kafkaAuth": "kerberos"})
