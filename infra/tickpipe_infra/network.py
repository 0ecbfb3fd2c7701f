"""The VPC (new, or imported by id without a lookup) and the tasks' security group.

Tasks run in private subnets with no public IP. They need outbound HTTPS (Polygon's websocket, ECR,
Secrets Manager, CloudWatch), Kafka and ClickHouse; nothing connects to them, so the security group
has no ingress rule at all. The optional console (settings.web_console) has its own group: the
same egress, and ingress on its port from one CIDR (the VPC's range unless set). An imported VPC
is described by ids in context, so synthesis never needs AWS credentials (tests synthesize offline).
"""

from __future__ import annotations

from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from constructs import Construct

from tickpipe_infra.settings import InfraSettings

# Outbound ports: HTTPS; Kafka (9092 plaintext/Confluent, 9094 MSK TLS, 9096 MSK SASL/SCRAM);
# ClickHouse over HTTP(S) (8123 self-hosted, 8443 ClickHouse Cloud).
EGRESS_PORTS = {
    443: "HTTPS: Polygon websocket, ECR, Secrets Manager, CloudWatch",
    9092: "Kafka (plaintext or Confluent Cloud SASL_SSL)",
    9094: "Kafka (MSK TLS)",
    9096: "Kafka (MSK SASL/SCRAM)",
    8123: "ClickHouse HTTP",
    8443: "ClickHouse HTTPS (ClickHouse Cloud)",
}


class Network(Construct):
    def __init__(self, scope: Construct, construct_id: str, settings: InfraSettings, key: kms.IKey) -> None:
        super().__init__(scope, construct_id)
        if settings.vpc_id is None:
            self.vpc: ec2.IVpc = self._new_vpc(key)
        else:
            self.vpc = ec2.Vpc.from_vpc_attributes(
                self,
                "Vpc",
                vpc_id=settings.vpc_id,
                availability_zones=list(settings.availability_zones),
                private_subnet_ids=list(settings.private_subnet_ids),
            )
        self.task_security_group = ec2.SecurityGroup(
            self,
            "TaskSecurityGroup",
            vpc=self.vpc,
            description="tickpipe tasks: no ingress; egress to HTTPS, Kafka and ClickHouse only",
            allow_all_outbound=False,
        )
        for port, why in EGRESS_PORTS.items():
            self.task_security_group.add_egress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(port), why)
        self.settings = settings

    def web_security_group(self, port: int) -> ec2.SecurityGroup:
        """The console's group: egress like the tasks', ingress on `port` from one CIDR only."""
        group = ec2.SecurityGroup(
            self,
            "WebSecurityGroup",
            vpc=self.vpc,
            description="tickpipe console: ingress on its port from one CIDR; egress like the tasks",
            allow_all_outbound=False,
        )
        for egress, why in EGRESS_PORTS.items():
            group.add_egress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(egress), why)
        cidr = self.settings.web_ingress_cidr
        peer = ec2.Peer.ipv4(cidr) if cidr else ec2.Peer.ipv4(self.vpc.vpc_cidr_block)
        group.add_ingress_rule(peer, ec2.Port.tcp(port), "the console (token required), from inside only")
        return group

    @property
    def task_subnets(self) -> ec2.SubnetSelection:
        return ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS)

    @property
    def task_subnet_ids(self) -> list[str]:
        """The same subnets by id (a scheduled task's network configuration names them)."""
        ids: list[str] = self.vpc.select_subnets(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS).subnet_ids
        return ids

    def _new_vpc(self, key: kms.IKey) -> ec2.Vpc:
        vpc = ec2.Vpc(
            self,
            "Vpc",
            max_azs=2,
            nat_gateways=1,  # one NAT gateway: the largest fixed cost here (docs/deploy.md, costs)
            subnet_configuration=[
                ec2.SubnetConfiguration(name="public", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=24),
                ec2.SubnetConfiguration(
                    name="private", subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS, cidr_mask=22
                ),
            ],
            gateway_endpoints={
                "S3": ec2.GatewayVpcEndpointOptions(service=ec2.GatewayVpcEndpointAwsService.S3)
            },
        )
        # Rejected traffic only: enough to debug a security group, a fraction of the cost of ALL.
        flow_logs = logs.LogGroup(
            self, "FlowLogs", retention=logs.RetentionDays.ONE_MONTH, encryption_key=key
        )
        vpc.add_flow_log(
            "FlowLog",
            destination=ec2.FlowLogDestination.to_cloud_watch_logs(flow_logs),
            traffic_type=ec2.FlowLogTrafficType.REJECT,
        )
        return vpc
