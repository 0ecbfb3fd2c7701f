#!/usr/bin/env bash
# Deploy tickpipe to ECS Fargate in one command (infra/README.md, docs/deploy.md):
#
#   KAFKA_BOOTSTRAP_SERVERS=b-1.example.kafka.us-east-1.amazonaws.com:9096 infra/deploy.sh
#
# 1. bootstraps CDK in the account/region (idempotent); 2. deploys the base stack (ECR, the config
# bucket, the secrets); 3. stops with exit code 3 and says what to do if a secret still holds its
# generated placeholder or the CSV is not uploaded (services would crash-loop and roll back);
# 4. builds and pushes the images tagged with the git commit (tags are immutable: a tag already in
# ECR is not rebuilt; the console's only if its repository exists, i.e. with WEB_CONSOLE=true);
# 5. deploys the services stack running that tag.
# WEB_CONSOLE=true adds the optional live console (`-c webConsole=true`; docs/deploy.md).
# Later deploys may omit KAFKA_BOOTSTRAP_SERVERS: CloudFormation keeps the previous value.
# Needs: AWS credentials (the usual chain), Docker with buildx, Node.js (npx), and this repo's
# Python environment with the infra extra (`pip install -e '.[infra]'`) active or in .venv.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
cd "$here"
if [[ -x "$root/.venv/bin/python" && -z "${VIRTUAL_ENV:-}" ]]; then
  export PATH="$root/.venv/bin:$PATH"  # cdk.json runs `python3 app.py`
fi

tag="${IMAGE_TAG:-$(git -C "$root" rev-parse --short=12 HEAD)}"
if [[ -z "${IMAGE_TAG:-}" && -n "$(git -C "$root" status --porcelain)" ]]; then
  echo "deploy.sh: the work tree has uncommitted changes; commit them or set IMAGE_TAG" >&2
  exit 2
fi
platform="${PLATFORM:-linux/amd64}"  # linux/arm64 with -c cpuArchitecture=ARM64
cdk=(npx --yes aws-cdk@2)
context=()
if [[ -n "${WEB_CONSOLE:-}" ]]; then
  context+=(-c "webConsole=$WEB_CONSOLE")
fi
account="$(aws sts get-caller-identity --query Account --output text)"
region="${AWS_REGION:-${AWS_DEFAULT_REGION:-$(aws configure get region)}}"
registry="$account.dkr.ecr.$region.amazonaws.com"

"${cdk[@]}" bootstrap "aws://$account/$region"
"${cdk[@]}" deploy TickpipeBase --require-approval never "${context[@]}"

output() {
  aws cloudformation describe-stacks --stack-name TickpipeBase \
    --query "Stacks[0].Outputs[?OutputKey=='$1'].OutputValue" --output text
}
pending=()
for secret in tickpipe/polygon-api-key tickpipe/clickhouse-dsn tickpipe/kafka-sasl; do
  # One version is the generated placeholder; put-secret-value adds the second.
  if versions="$(aws secretsmanager list-secret-version-ids --secret-id "$secret" \
      --query 'length(Versions)' --output text 2>/dev/null)" && [[ "$versions" -lt 2 ]]; then
    pending+=("set the secret $secret (aws secretsmanager put-secret-value)")
  fi
done
for uri in "$(output SubscriptionsUri)" "$(output FilterRulesUri)"; do
  if ! aws s3 ls "$uri" >/dev/null 2>&1; then
    pending+=("upload $uri (aws s3 cp)")
  fi
done
if ((${#pending[@]})); then
  echo "deploy.sh: the base stack is ready; before the services can start (docs/deploy.md, step 5):" >&2
  printf '  - %s\n' "${pending[@]}" >&2
  echo "then run infra/deploy.sh again." >&2
  exit 3
fi

aws ecr get-login-password --region "$region" | docker login --username AWS --password-stdin "$registry"
for image in producer:producer/Dockerfile processor:processor/Dockerfile sink:clickhouse/Dockerfile \
    history:deploy/history/Dockerfile research:deploy/research/Dockerfile web:deploy/web/Dockerfile; do
  name="${image%%:*}"
  dockerfile="${image#*:}"
  uri="$registry/tickpipe/$name:$tag"
  if ! aws ecr describe-repositories --region "$region" --repository-names "tickpipe/$name" \
      >/dev/null 2>&1; then
    continue  # not part of this deployment (the console when it is off)
  fi
  if aws ecr describe-images --region "$region" --repository-name "tickpipe/$name" \
      --image-ids imageTag="$tag" >/dev/null 2>&1; then
    echo "$uri is already in ECR; not rebuilt"
    continue
  fi
  docker buildx build --platform "$platform" --file "$root/$dockerfile" --tag "$uri" --push "$root"
done

parameters=(--parameters "ImageTag=$tag")
if [[ -n "${KAFKA_BOOTSTRAP_SERVERS:-}" ]]; then
  parameters+=(--parameters "KafkaBootstrapServers=$KAFKA_BOOTSTRAP_SERVERS")
fi
"${cdk[@]}" deploy Tickpipe --require-approval never "${context[@]}" "${parameters[@]}"
