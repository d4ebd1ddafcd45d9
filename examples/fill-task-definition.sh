#!/usr/bin/env bash
# Prints examples/sidecar-task-definition.json (or TASK_DEFINITION) with your
# values, for
#   aws ecs register-task-definition --cli-input-json file://<it>
# ROLE_ARN, EXECUTION_ROLE_ARN, TERMINATE_URL, LOG_GROUP and MAX_TTL are the
# stack's outputs BastionTaskRoleArn, BastionExecutionRoleArn, TerminateUrl,
# BastionLogGroupName and MaxTTL; KEYS_URL serves your public SSH keys
# (https://github.com/<you>.keys).
set -euo pipefail
: "${ROLE_ARN:?the output BastionTaskRoleArn of the stack}" "${TERMINATE_URL:?the output TerminateUrl}" "${LOG_GROUP:?the output BastionLogGroupName}"
# The stack's own: the launcher policy lets people pass no other (not the
# account's general ecsTaskExecutionRole, whose rights a task role override
# would hand them).
: "${EXECUTION_ROLE_ARN:?the output BastionExecutionRoleArn of the stack}"
: "${MAX_TTL:?the output MaxTTL (the supervisor believes no TTL above it)}"
: "${KEYS_URL:?a URL serving your public SSH keys}"
TASK_DEFINITION=${TASK_DEFINITION:-$(dirname "$0")/sidecar-task-definition.json}
REGION=${REGION:-${AWS_REGION:-${AWS_DEFAULT_REGION:-$(aws configure get region)}}}
# A restart policy on the supervisor's container turns its fail-safe exit
# (1, or 2 for a configuration error) into a restart: the task would not stop.
restarting=$(jq -r '.containerDefinitions[]
  | select(any(.environment[]?; .name == "BASTION_TERMINATE_URL"))
  | select(.restartPolicy.enabled == true and ((.restartPolicy.ignoredExitCodes // []) | (index(1) == null or index(2) == null)))
  | .name' "$TASK_DEFINITION")
if [ -n "$restarting" ]; then
	echo "fill-task-definition.sh: container $restarting runs the supervisor and has a restart policy: its fail-safe exit would restart it instead of stopping the task; remove restartPolicy, or add 1 and 2 to its ignoredExitCodes" >&2
	exit 1
fi
# ECS stops a task only when an essential container exits: a supervisor's
# container that is not essential (the sidecar, or the container whose
# health check runs it) stops nothing by its fail-safe. Left out, essential
# is true.
optional=$(jq -r '.containerDefinitions[]
  | select(any(.environment[]?; .name == "BASTION_TERMINATE_URL"))
  | select(.essential == false)
  | .name' "$TASK_DEFINITION")
if [ -n "$optional" ]; then
	echo "fill-task-definition.sh: container $optional runs the supervisor and is not essential: its fail-safe would stop nothing; set \"essential\": true on it" >&2
	exit 1
fi
jq --arg role "$ROLE_ARN" --arg url "$TERMINATE_URL" --arg group "$LOG_GROUP" --arg region "$REGION" \
   --arg exec "$EXECUTION_ROLE_ARN" --arg keys "$KEYS_URL" --arg max "$MAX_TTL" '
  .taskRoleArn = $role | .executionRoleArn = $exec
  | (.containerDefinitions[].environment[]? | select(.name == "BASTION_TERMINATE_URL")).value = $url
  | (.containerDefinitions[].environment[]? | select(.name == "BASTION_MAX_TTL")).value = $max
  | (.containerDefinitions[].environment[]? | select(.name == "PUBLIC_KEY_URL")).value = $keys
  | .containerDefinitions[].logConfiguration.options["awslogs-group"] = $group
  | .containerDefinitions[].logConfiguration.options["awslogs-region"] = $region' \
  "$TASK_DEFINITION"
