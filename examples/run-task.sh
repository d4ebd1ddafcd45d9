#!/usr/bin/env bash
# Start a bastion with the AWS CLI alone; `bastion-ttl run` does this, and
# waits, and says how to connect. One TTL sets both the supervisor's
# BASTION_TTL (for this launch only) and the bastion-ttl tag the sweeper
# reads, so the two cannot disagree.
set -euo pipefail
: "${CLUSTER:?the cluster given to the stack as ClusterName}"
: "${SUBNET:?a private subnet id}" "${SECURITY_GROUP:?a security group id}"
TTL=${TTL:-2h}
# The owner tag holds your user ID, the one value examples/launcher-policy.json admits.
OWNER=$(aws sts get-caller-identity --query UserId --output text)

aws ecs run-task \
  --cluster "$CLUSTER" \
  --launch-type FARGATE \
  --task-definition bastion-ssh \
  --started-by bastion-ttl \
  --network-configuration "awsvpcConfiguration={subnets=[$SUBNET],securityGroups=[$SECURITY_GROUP],assignPublicIp=DISABLED}" \
  --overrides "{\"containerOverrides\":[{\"name\":\"supervisor\",\"environment\":[{\"name\":\"BASTION_TTL\",\"value\":\"$TTL\"}]}]}" \
  --tags "key=bastion-ttl,value=$TTL" "key=bastion-ttl-owner,value=$OWNER" \
  --query 'tasks[0].taskArn' --output text
