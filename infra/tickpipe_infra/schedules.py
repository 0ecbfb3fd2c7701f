"""Scheduled jobs: an EventBridge Scheduler schedule that starts a Fargate task (ECS RunTask).

The daily history job (`tickpipe daily`) and the daily export (`tickpipe export`) are tasks, not
services: each run starts one task that does its day and exits. The schedule's own role may run
exactly that task definition on the cluster and pass exactly its two roles; a run that cannot be
started is retried by the scheduler (twice, within an hour). The expression and its time zone are
CloudFormation parameters (stack.py), so moving a run needs no new synthesis.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_scheduler as scheduler
from constructs import Construct

from tickpipe_infra.services import TickpipeTask


class ScheduledTask(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        task: TickpipeTask,
        cluster: ecs.ICluster,
        subnets: list[str],
        security_group: ec2.ISecurityGroup,
        expression: str,
        description: str,
    ) -> None:
        super().__init__(scope, construct_id)
        definition = task.task_definition
        self.role = iam.Role(
            self,
            "SchedulerRole",
            assumed_by=iam.ServicePrincipal(
                "scheduler.amazonaws.com",
                conditions={"StringEquals": {"aws:SourceAccount": cdk.Aws.ACCOUNT_ID}},
            ),
            description=f"EventBridge Scheduler: run the {task.name} task, nothing else",
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="RunThisTaskOnThisCluster",
                actions=["ecs:RunTask"],
                resources=[definition.task_definition_arn],
                conditions={"ArnEquals": {"ecs:cluster": cluster.cluster_arn}},
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="PassTheTaskRoles",
                actions=["iam:PassRole"],
                resources=[task.task_role.role_arn, definition.obtain_execution_role().role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}},
            )
        )
        self.schedule = scheduler.CfnSchedule(
            self,
            "Schedule",
            name=f"tickpipe-{task.name}",
            description=description,
            schedule_expression=expression,
            schedule_expression_timezone="UTC",
            flexible_time_window=scheduler.CfnSchedule.FlexibleTimeWindowProperty(mode="OFF"),
            state="ENABLED",
            target=scheduler.CfnSchedule.TargetProperty(
                arn=cluster.cluster_arn,
                role_arn=self.role.role_arn,
                retry_policy=scheduler.CfnSchedule.RetryPolicyProperty(
                    maximum_event_age_in_seconds=3600, maximum_retry_attempts=2
                ),
                ecs_parameters=scheduler.CfnSchedule.EcsParametersProperty(
                    task_definition_arn=definition.task_definition_arn,
                    launch_type="FARGATE",
                    platform_version="LATEST",
                    task_count=1,
                    network_configuration=scheduler.CfnSchedule.NetworkConfigurationProperty(
                        awsvpc_configuration=scheduler.CfnSchedule.AwsVpcConfigurationProperty(
                            subnets=subnets,
                            security_groups=[security_group.security_group_id],
                            assign_public_ip="DISABLED",
                        )
                    ),
                    propagate_tags="TASK_DEFINITION",
                ),
            ),
        )
