"""Synth-time settings of the CDK app, read from CDK context (`cdk.json` or `-c key=value`).

Context decides the *shape* of the template (a new or an imported VPC, how Kafka authenticates);
values that change per deployment without changing the shape (Kafka brokers, the image tag) are
CloudFormation parameters instead (see stack.py). A bad value raises InfraConfigError naming the
context key, before anything is synthesized.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, cast

KafkaAuth = Literal["sasl_scram", "sasl_plain", "tls", "none"]
Architecture = Literal["X86_64", "ARM64"]

KAFKA_AUTH_MODES: dict[str, tuple[str, str | None]] = {
    # mode: (librdkafka security.protocol, sasl.mechanism)
    "sasl_scram": ("SASL_SSL", "SCRAM-SHA-512"),  # MSK with SASL/SCRAM, Redpanda, Aiven
    "sasl_plain": ("SASL_SSL", "PLAIN"),  # Confluent Cloud API keys
    "tls": ("SSL", None),  # MSK TLS without client auth
    "none": ("PLAINTEXT", None),  # a broker inside the VPC, tests
}

# Metric names as CloudWatch shows them after the ADOT collector ships the services' Prometheus
# metrics (namespace "tickpipe", dimension "service"). Override in context if a service renames them.
DEFAULT_METRICS = {
    "processorLagMetric": "tickpipe_processor_consumer_lag",
    "sinkLagMetric": "tickpipe_sink_consumer_lag",
    "processorDlqMetric": "tickpipe_processor_dead_letters_total",
    "sinkDlqMetric": "tickpipe_sink_dlq_rows_total",
}


class InfraConfigError(ValueError):
    """A context value is missing or invalid; the message names the key and what is expected."""


@dataclass(frozen=True)
class InfraSettings:
    """Everything the stack reads from context, validated."""

    vpc_id: str | None = None  # None: the stack creates a VPC
    private_subnet_ids: tuple[str, ...] = ()
    availability_zones: tuple[str, ...] = ()
    kafka_auth: KafkaAuth = "sasl_scram"
    architecture: Architecture = "X86_64"
    subscriptions_key: str = "subscriptions.csv"
    filter_rules_key: str = "filter-rules.yaml"
    processor_max_tasks: int = 4
    sink_max_tasks: int = 4
    alarm_email: str | None = None
    metric_names: tuple[tuple[str, str], ...] = tuple(DEFAULT_METRICS.items())
    adot_image: str = "public.ecr.aws/aws-observability/aws-otel-collector:v0.40.0"
    # The live console (`tickpipe web`) is optional and off: with it on, a Fargate service listening
    # on 8080 with its token from Secrets Manager, reachable from `web_ingress_cidr` only (default:
    # the VPC's own range), never from the internet (no public IP, no load balancer).
    web_console: bool = False
    web_ingress_cidr: str | None = None

    def metric(self, key: str) -> str:
        return dict(self.metric_names)[key]

    @classmethod
    def from_context(cls, get: Callable[[str], Any]) -> InfraSettings:
        """Build from a context getter (`node.try_get_context`); unknown values fail loudly."""
        vpc_id = _optional_str(get, "vpcId")
        subnets = _str_list(get, "privateSubnetIds")
        zones = _str_list(get, "availabilityZones")
        if vpc_id is not None:
            if not re.fullmatch(r"vpc-[0-9a-f]{8,17}", vpc_id):
                raise InfraConfigError(f"vpcId: expected vpc-xxxxxxxx, got {vpc_id!r}")
            if len(subnets) < 2 or len(subnets) != len(zones):
                raise InfraConfigError(
                    "privateSubnetIds and availabilityZones: an imported VPC needs at least two private "
                    "subnets (with a NAT route) and one availability zone per subnet, in the same order"
                )
        elif subnets or zones:
            raise InfraConfigError("privateSubnetIds/availabilityZones only apply with vpcId")
        kafka_auth = _choice(get, "kafkaAuth", tuple(KAFKA_AUTH_MODES), cls.kafka_auth)
        architecture = _choice(get, "cpuArchitecture", ("X86_64", "ARM64"), cls.architecture)
        metrics = dict(DEFAULT_METRICS)
        for key in DEFAULT_METRICS:
            metrics[key] = _optional_str(get, key) or metrics[key]
        email = _optional_str(get, "alarmEmail")
        if email is not None and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", email):
            raise InfraConfigError(f"alarmEmail: not an e-mail address: {email!r}")
        web_console = _bool(get, "webConsole", cls.web_console)
        web_ingress_cidr = _web_ingress_cidr(get)
        if web_console and vpc_id is not None and web_ingress_cidr is None:
            raise InfraConfigError(
                "webIngressCidr: with an imported VPC (vpcId) the console needs the CIDR allowed to "
                "reach it (the VPC's range is not known without a lookup), e.g. 10.0.0.0/16"
            )
        return cls(
            vpc_id=vpc_id,
            private_subnet_ids=subnets,
            availability_zones=zones,
            kafka_auth=cast(KafkaAuth, kafka_auth),
            architecture=cast(Architecture, architecture),
            subscriptions_key=_optional_str(get, "subscriptionsKey") or cls.subscriptions_key,
            filter_rules_key=_optional_str(get, "filterRulesKey") or cls.filter_rules_key,
            processor_max_tasks=_positive_int(get, "processorMaxTasks", cls.processor_max_tasks),
            sink_max_tasks=_positive_int(get, "sinkMaxTasks", cls.sink_max_tasks),
            alarm_email=email,
            metric_names=tuple(metrics.items()),
            adot_image=_optional_str(get, "adotImage") or cls.adot_image,
            web_console=web_console,
            web_ingress_cidr=web_ingress_cidr,
        )


def _optional_str(get: Callable[[str], Any], key: str) -> str | None:
    value = get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise InfraConfigError(f"{key}: expected a string, got {value!r}")
    return value.strip()


def _str_list(get: Callable[[str], Any], key: str) -> tuple[str, ...]:
    value = get(key)
    if value is None or value == "":
        return ()
    if isinstance(value, str):  # `-c privateSubnetIds=subnet-a,subnet-b` on the command line
        value = [part for part in value.split(",") if part.strip()]
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise InfraConfigError(f"{key}: expected a list of strings, got {value!r}")
    return tuple(item.strip() for item in value)


def _choice(get: Callable[[str], Any], key: str, allowed: tuple[str, ...], default: str) -> str:
    value = get(key)
    if value is None:
        return default
    if value not in allowed:
        raise InfraConfigError(f"{key}: expected one of {', '.join(allowed)}, got {value!r}")
    return str(value)


def _bool(get: Callable[[str], Any], key: str, default: bool) -> bool:
    value = get(key)
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()  # `-c webConsole=true` arrives as a string
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off"):
        return False
    raise InfraConfigError(f"{key}: expected true or false, got {value!r}")


def _web_ingress_cidr(get: Callable[[str], Any]) -> str | None:
    cidr = _optional_str(get, "webIngressCidr")
    if cidr is None:
        return None
    try:
        network = ipaddress.IPv4Network(cidr)
    except ValueError:
        raise InfraConfigError(
            f"webIngressCidr: expected an IPv4 CIDR such as 10.0.0.0/16, got {cidr!r}"
        ) from None
    if network.prefixlen == 0:
        raise InfraConfigError("webIngressCidr: 0.0.0.0/0 would open the console to every address")
    return str(network)


def _positive_int(get: Callable[[str], Any], key: str, default: int) -> int:
    value = get(key)
    if value is None:
        return default
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise InfraConfigError(f"{key}: expected a whole number, got {value!r}") from None
    if number < 1:
        raise InfraConfigError(f"{key}: must be at least 1, got {number}")
    return number
