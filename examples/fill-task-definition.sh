#!/usr/bin/env bash
# Prints examples/sidecar-task-definition.json with your values, for
#   aws ecs register-task-definition --cli-input-json file://<it>
# ROLE_ARN, TERMINATE_URL and LOG_GROUP are the stack's outputs
# BastionTaskRoleArn, TerminateUrl and BastionLogGroupName; KEYS_URL serves
# your public SSH keys (https://github.com/<you>.keys).
set -euo pipefail
: "${ROLE_ARN:?the output BastionTaskRoleArn of the stack}" "${TERMINATE_URL:?the output TerminateUrl}" "${LOG_GROUP:?the output BastionLogGroupName}"
: "${KEYS_URL:?a URL serving your public SSH keys}"
REGION=${REGION:-${AWS_REGION:-${AWS_DEFAULT_REGION:-$(aws configure get region)}}}
EXECUTION_ROLE_ARN=${EXECUTION_ROLE_ARN:-arn:aws:iam::$(aws sts get-caller-identity --query Account --output text):role/ecsTaskExecutionRole}
jq --arg role "$ROLE_ARN" --arg url "$TERMINATE_URL" --arg group "$LOG_GROUP" --arg region "$REGION" \
   --arg exec "$EXECUTION_ROLE_ARN" --arg keys "$KEYS_URL" '
  .taskRoleArn = $role | .executionRoleArn = $exec
  | (.containerDefinitions[].environment[]? | select(.name == "BASTION_TERMINATE_URL")).value = $url
  | (.containerDefinitions[].environment[]? | select(.name == "PUBLIC_KEY_URL")).value = $keys
  | .containerDefinitions[].logConfiguration.options["awslogs-group"] = $group
  | .containerDefinitions[].logConfiguration.options["awslogs-region"] = $region' \
  "$(dirname "$0")/sidecar-task-definition.json"
