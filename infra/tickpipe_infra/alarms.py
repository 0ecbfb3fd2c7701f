"""CloudWatch alarms: consumer lag, dead-letter growth, and a producer that is not running.

Lag and DLQ counts are the services' own Prometheus metrics, shipped by the ADOT sidecar into the
"tickpipe" namespace with a "service" dimension. Counters arrive as per-scrape increments, so the
DLQ alarm's Sum over five minutes is "messages dead-lettered in those five minutes".
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from tickpipe_infra.settings import InfraSettings

NAMESPACE = "tickpipe"


class Alarms(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: InfraSettings,
        lag_threshold: cdk.CfnParameter,
        producer: ecs.FargateService,
        cluster: ecs.ICluster,
        key: kms.IKey,
    ) -> None:
        super().__init__(scope, construct_id)
        self.topic = sns.Topic(
            self, "Topic", display_name="tickpipe alarms", enforce_ssl=True, master_key=key
        )
        if settings.alarm_email:
            self.topic.add_subscription(subscriptions.EmailSubscription(settings.alarm_email))
        notify = actions.SnsAction(self.topic)
        self.alarms: list[cloudwatch.Alarm] = []
        for service in ("processor", "sink"):
            lag = cloudwatch.Metric(
                namespace=NAMESPACE,
                metric_name=settings.metric(f"{service}LagMetric"),
                dimensions_map={"service": service},
                statistic="Maximum",
                period=cdk.Duration.minutes(1),
            )
            self._alarm(
                f"{service.capitalize()}Lag",
                lag,
                threshold=lag_threshold.value_as_number,
                periods=5,
                description=f"{service} consumer lag above the threshold for 5 minutes: scale out or look",
                notify=notify,
            )
            dlq = cloudwatch.Metric(
                namespace=NAMESPACE,
                metric_name=settings.metric(f"{service}DlqMetric"),
                dimensions_map={"service": service},
                statistic="Sum",
                period=cdk.Duration.minutes(5),
            )
            self._alarm(
                f"{service.capitalize()}DeadLetters",
                dlq,
                threshold=0,
                periods=1,
                description=f"{service} wrote to its dead-letter topic: read tp.dlq.reason on <topic>.dlq",
                notify=notify,
            )
        running = cloudwatch.Metric(
            namespace="ECS/ContainerInsights",
            metric_name="RunningTaskCount",
            dimensions_map={"ClusterName": cluster.cluster_name, "ServiceName": producer.service_name},
            statistic="Minimum",
            period=cdk.Duration.minutes(1),
        )
        self._alarm(
            "ProducerNotRunning",
            running,
            threshold=1,
            periods=5,
            description="no producer task for 5 minutes: no market data is being read",
            notify=notify,
            comparison=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
            missing=cloudwatch.TreatMissingData.BREACHING,
        )

    def _alarm(
        self,
        construct_id: str,
        metric: cloudwatch.Metric,
        *,
        threshold: float,
        periods: int,
        description: str,
        notify: actions.SnsAction,
        comparison: cloudwatch.ComparisonOperator = cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        missing: cloudwatch.TreatMissingData = cloudwatch.TreatMissingData.NOT_BREACHING,
    ) -> None:
        alarm = metric.create_alarm(
            self,
            construct_id,
            alarm_name=f"tickpipe-{construct_id}",
            alarm_description=description,
            threshold=threshold,
            evaluation_periods=periods,
            comparison_operator=comparison,
            treat_missing_data=missing,
        )
        alarm.add_alarm_action(notify)
        alarm.add_ok_action(notify)
        self.alarms.append(alarm)
