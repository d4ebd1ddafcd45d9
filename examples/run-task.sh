#!/usr/bin/env bash
# Start a bastion for 2 hours instead of its task definition's BASTION_TTL.
# The overrides file sets BASTION_TTL for this launch only; the tag marks the
# task for the sweeper, which stops it even if the supervisor never does.
set -euo pipefail
: "${CLUSTER:?the cluster given to the stack as ClusterName}"
: "${SUBNET:?a private subnet id}" "${SECURITY_GROUP:?a security group id}"

aws ecs run-task \
  --cluster "$CLUSTER" \
  --launch-type FARGATE \
  --task-definition bastion-ssh \
  --network-configuration "awsvpcConfiguration={subnets=[$SUBNET],securityGroups=[$SECURITY_GROUP],assignPublicIp=DISABLED}" \
  --overrides file://examples/sidecar-overrides.json \
  --tags key=bastion-ttl,value=2h \
  --query 'tasks[0].taskArn' --output text
