"""tickpipe on AWS: ECS Fargate services, S3, Secrets Manager, ECR and alarms (AWS CDK in Python)."""
