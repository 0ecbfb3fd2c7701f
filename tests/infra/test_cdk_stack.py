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


SERVICES = ("producer", "processor", "sink", "repair")
JOBS = ("history-daily", "export")


def _task_definition_id(template: Template, family: str) -> str:
    for logical_id, resource in _resources(template, "AWS::ECS::TaskDefinition").items():
        if resource["Properties"]["Family"] == f"tickpipe-{family}":
            return logical_id
    raise AssertionError(f"no task definition tickpipe-{family}")


def test_one_fargate_service_per_component(services: Template) -> None:
    services.resource_count_is("AWS::ECS::Cluster", 1)
    services.resource_count_is("AWS::ECS::Service", len(SERVICES))
    for name in SERVICES:
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


def test_exactly_one_repair_task_never_two(services: Template) -> None:
    """Its Kafka transactional.id would fence a second one: stopped before a new one starts."""
    repair = _service(services, "repair")["Properties"]
    assert repair["DesiredCount"] == 1
    assert repair["DeploymentConfiguration"]["MinimumHealthyPercent"] == 0
    assert repair["DeploymentConfiguration"]["MaximumPercent"] == 100
    assert _service_id(services, "repair") not in _scaled_services(services)
    container = _container(services, "repair")
    assert container["Command"] == ["repair"]
    assert "history" in str(container["Image"])  # the tickpipe/history repository
    env = {item["Name"]: item["Value"] for item in container["Environment"]}
    assert env["POLYGON_REST_URL"] == {"Ref": "PolygonRestUrl"}
    assert {"RAW_TOPIC", "KAFKA_BOOTSTRAP_SERVERS", "CLICKHOUSE_DATABASE"} <= set(env)


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
    for service in (*SERVICES, *JOBS):
        for statement in _role_statements(services, service):
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            assert all(not action.endswith(":*") and action != "*" for action in actions), statement
    assert not any("s3:" in str(s["Action"]) for s in _role_statements(services, "sink"))


def test_secrets_are_injected_never_plain_environment(base: Template, services: Template) -> None:
    producer = _container(services, "producer")
    assert {secret["Name"] for secret in producer["Secrets"]} >= {"POLYGON_API_KEY"}
    sink = _container(services, "sink")
    assert {secret["Name"] for secret in sink["Secrets"]} >= {"CLICKHOUSE_DSN"}
    wanted = {
        "repair": {"POLYGON_API_KEY", "CLICKHOUSE_DSN", "KAFKA_SASL_USERNAME", "KAFKA_SASL_PASSWORD"},
        "history-daily": {"POLYGON_API_KEY", "CLICKHOUSE_DSN"},
        "export": {"CLICKHOUSE_DSN"},
    }
    for name, names in wanted.items():
        container = _container(services, name)
        assert {secret["Name"] for secret in container["Secrets"]} == names, name
        env_names = {item["Name"] for item in container.get("Environment", [])}
        assert not {n for n in env_names if any(w in n for w in ("KEY", "PASSWORD", "SECRET", "DSN"))}
    polygon_arns = {
        str(secret["ValueFrom"])
        for name in ("producer", "repair", "history-daily")
        for secret in _container(services, name)["Secrets"]
        if secret["Name"] == "POLYGON_API_KEY"
    }
    assert len(polygon_arns) == 1, "one key, one secret"
    assert "tickpipe/polygon-api-key" in polygon_arns.pop()
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
    for name in JOBS:  # a job serves no port: no health check, no metrics sidecar, the same hardening
        container = _container(services, name)
        assert container["ReadonlyRootFilesystem"] is True
        assert container["User"] == "10001"
        assert container["LinuxParameters"]["InitProcessEnabled"] is True
        assert "HealthCheck" not in container
    for name, port in (("producer", "9101"), ("processor", "9102"), ("sink", "9103"), ("repair", "9104")):
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
    assert {f"/tickpipe/{name}" for name in (*SERVICES, *JOBS)} <= names
    repositories = {
        r["Properties"]["RepositoryName"] for r in _resources(base, "AWS::ECR::Repository").values()
    }
    assert repositories == {
        f"tickpipe/{image}" for image in ("producer", "processor", "sink", "history", "research")
    }
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


def _schedule(template: Template, name: str) -> dict[str, Any]:
    for resource in _resources(template, "AWS::Scheduler::Schedule").values():
        if resource["Properties"]["Name"] == f"tickpipe-{name}":
            return dict(resource["Properties"])
    raise AssertionError(f"no schedule tickpipe-{name}")


@pytest.mark.parametrize(
    ("job", "command", "parameter"),
    [("history-daily", ["daily"], "HistoryDailySchedule"), ("export", ["export"], "ExportSchedule")],
)
def test_daily_jobs_are_scheduled_fargate_tasks(
    services: Template, job: str, command: list[str], parameter: str
) -> None:
    """EventBridge Scheduler starts one Fargate task per run (ECS RunTask), in private subnets."""
    services.resource_count_is("AWS::Scheduler::Schedule", len(JOBS))
    schedule = _schedule(services, job)
    assert schedule["ScheduleExpression"] == {"Ref": parameter}
    assert schedule["ScheduleExpressionTimezone"] == "UTC"
    assert schedule["State"] == "ENABLED"
    target = schedule["Target"]
    (cluster_id,) = _resources(services, "AWS::ECS::Cluster")
    assert target["Arn"] == {"Fn::GetAtt": [cluster_id, "Arn"]}
    ecs_parameters = target["EcsParameters"]
    task_id = _task_definition_id(services, job)
    assert ecs_parameters["TaskDefinitionArn"] == {"Ref": task_id}
    assert ecs_parameters["LaunchType"] == "FARGATE"
    assert ecs_parameters["TaskCount"] == 1
    network = ecs_parameters["NetworkConfiguration"]["AwsvpcConfiguration"]
    assert network["AssignPublicIp"] == "DISABLED"
    producer = _service(services, "producer")["Properties"]["NetworkConfiguration"]["AwsvpcConfiguration"]
    assert network["Subnets"] == producer["Subnets"], "the services' private subnets"
    assert network["SecurityGroups"] == producer["SecurityGroups"], "the tasks' group: no ingress"
    assert target["RetryPolicy"]["MaximumRetryAttempts"] >= 1
    assert _container(services, job)["Command"] == command
    assert not any(
        _task_definition_id(services, job) in str(s["Properties"]["TaskDefinition"])
        for s in _resources(services, "AWS::ECS::Service").values()
    ), "a job is not a service"
    # The schedule's role may run exactly this task definition and pass exactly its roles.
    role_id = target["RoleArn"]["Fn::GetAtt"][0]
    role = _resources(services, "AWS::IAM::Role")[role_id]["Properties"]
    assert role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {
        "Service": "scheduler.amazonaws.com"
    }
    statements = [
        statement
        for policy in _resources(services, "AWS::IAM::Policy").values()
        if {"Ref": role_id} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]
    by_action = {str(statement["Action"]): statement for statement in statements}
    assert set(by_action) == {"ecs:RunTask", "iam:PassRole"}
    assert by_action["ecs:RunTask"]["Resource"] == {"Ref": task_id}
    passed = str(by_action["iam:PassRole"]["Resource"])
    assert "*" not in passed
    assert passed.count("Fn::GetAtt") == 2


def test_history_daily_gets_the_rest_settings_and_export_its_bucket(
    services: Template, base: Template
) -> None:
    daily = {i["Name"]: i["Value"] for i in _container(services, "history-daily")["Environment"]}
    assert daily["POLYGON_REST_URL"] == {"Ref": "PolygonRestUrl"}
    assert daily["METRICS_PORT"] == "0"
    export = {i["Name"]: i["Value"] for i in _container(services, "export")["Environment"]}
    assert "tickpipe-export" not in str(export["EXPORT_URI"])  # the base stack's bucket, not the default
    assert str(export["EXPORT_URI"]).startswith("s3://") or "s3://" in str(export["EXPORT_URI"])
    buckets = _resources(base, "AWS::S3::Bucket")
    assert len(buckets) == 2  # configuration and export
    for bucket in buckets.values():
        assert bucket["Properties"]["PublicAccessBlockConfiguration"]["RestrictPublicBuckets"] is True
        assert bucket["Properties"]["VersioningConfiguration"] == {"Status": "Enabled"}
    statements = _role_statements(services, "export")
    s3_actions = sorted(
        action
        for statement in statements
        for action in (
            statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        )
        if action.startswith("s3:")
    )
    assert s3_actions == sorted(
        ["s3:AbortMultipartUpload", "s3:DeleteObject", "s3:GetObject", "s3:ListBucket", "s3:PutObject"]
    )
    for statement in statements:
        if "s3:PutObject" in statement["Action"]:
            assert "/tickpipe/*" in str(statement["Resource"]), "writes under the export prefix only"
    for name in ("repair", "history-daily"):
        assert not any("s3:" in str(s["Action"]) for s in _role_statements(services, name))


def test_web_console_is_off_by_default(services: Template, base: Template) -> None:
    with pytest.raises(AssertionError):
        _service(services, "web")
    assert "WEB_TOKEN" not in str(services.to_json())
    assert "tickpipe/web" not in str(base.to_json())  # no repository, no token secret


@pytest.fixture(scope="module")
def with_web(tmp_path_factory: pytest.TempPathFactory) -> tuple[Template, Template]:
    synth = synthesize(tmp_path_factory.mktemp("web"), {"webConsole": "true"})
    return Template.from_json(synth.templates["Tickpipe"]), Template.from_json(
        synth.templates["TickpipeBase"]
    )


def test_web_console_when_enabled_is_private_and_needs_its_token(with_web: tuple[Template, Template]) -> None:
    services, base = with_web
    web = _service(services, "web")["Properties"]
    network = web["NetworkConfiguration"]["AwsvpcConfiguration"]
    assert network["AssignPublicIp"] == "DISABLED"
    container = _container(services, "web")
    assert container["Command"] == ["web", "--web-host", "0.0.0.0", "--web-port", "8080"]
    assert {secret["Name"] for secret in container["Secrets"]} >= {"WEB_TOKEN", "CLICKHOUSE_DSN"}
    assert "tickpipe/web-token" in str(container["Secrets"])
    env = {item["Name"]: item["Value"] for item in container["Environment"]}
    assert "WEB_TOKEN" not in env
    assert env["METRICS_PORT"] == "8080"  # the health check's /healthz is on the console's port
    assert container["HealthCheck"]["Command"][:2] == ["CMD", "python"]
    services.resource_count_is("AWS::ElasticLoadBalancingV2::LoadBalancer", 0)
    # The only ingress anywhere: 8080 on the console's group, from the VPC's own range.
    ingress = [
        rule
        for group in _resources(services, "AWS::EC2::SecurityGroup").values()
        for rule in group["Properties"].get("SecurityGroupIngress", [])
    ]
    assert len(ingress) == 1, ingress
    rule = ingress[0]
    assert (rule["FromPort"], rule["ToPort"], rule["IpProtocol"]) == (8080, 8080, "tcp")
    (vpc_id,) = _resources(services, "AWS::EC2::VPC")
    assert rule["CidrIp"] == {"Fn::GetAtt": [vpc_id, "CidrBlock"]}
    assert (
        web["NetworkConfiguration"]["AwsvpcConfiguration"]["SecurityGroups"]
        != _service(services, "sink")["Properties"]["NetworkConfiguration"]["AwsvpcConfiguration"][
            "SecurityGroups"
        ]
    )
    secrets = {
        s["Properties"]["Name"]: s["Properties"]
        for s in _resources(base, "AWS::SecretsManager::Secret").values()
    }
    assert "tickpipe/web-token" in secrets
    generated = secrets["tickpipe/web-token"]["GenerateSecretString"]
    assert generated["PasswordLength"] >= 16  # the console refuses a shorter token
    repositories = {
        r["Properties"]["RepositoryName"] for r in _resources(base, "AWS::ECR::Repository").values()
    }
    assert "tickpipe/web" in repositories


def test_web_console_settings_are_checked(tmp_path_factory: pytest.TempPathFactory) -> None:
    from tickpipe_infra.settings import InfraConfigError, InfraSettings

    def settings(**context: Any) -> InfraSettings:
        return InfraSettings.from_context(context.get)

    assert settings().web_console is False
    assert settings(webConsole=True, webIngressCidr="10.1.0.0/16").web_ingress_cidr == "10.1.0.0/16"
    with pytest.raises(InfraConfigError, match="webConsole"):
        settings(webConsole="maybe")
    with pytest.raises(InfraConfigError, match="webIngressCidr"):
        settings(webConsole="true", webIngressCidr="0.0.0.0/0")
    with pytest.raises(InfraConfigError, match="webIngressCidr"):
        settings(webConsole="true", webIngressCidr="not-a-cidr")
    imported = {
        "vpcId": "vpc-0123456789abcdef0",
        "privateSubnetIds": "subnet-aaaa1111,subnet-bbbb2222",
        "availabilityZones": ["us-east-1a", "us-east-1b"],
    }
    with pytest.raises(InfraConfigError, match="webIngressCidr"):
        settings(webConsole="true", **imported)
    synth = synthesize(
        tmp_path_factory.mktemp("web-imported"),
        {"webConsole": True, "webIngressCidr": "10.8.0.0/24", **imported},
    )
    ingress = [
        rule
        for group in _resources(
            Template.from_json(synth.templates["Tickpipe"]), "AWS::EC2::SecurityGroup"
        ).values()
        for rule in group["Properties"].get("SecurityGroupIngress", [])
    ]
    assert [rule["CidrIp"] for rule in ingress] == ["10.8.0.0/24"]
