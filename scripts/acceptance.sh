#!/usr/bin/env bash
# The acceptance test on a real AWS account (docs/acceptance.md): with the
# caller's credentials it deploys the stack under a throw-away name, starts a
# bastion with a 2-minute TTL through the launcher, and checks from AWS's own
# answers that
#   1. the bastion stopped after its deadline and before deadline + grace,
#      with a stop reason starting "bastion-ttl";
#   2. a direct invoke of the terminate function with a forged event (the
#      bastion's own identity in requestContext, no proof) is refused with
#      403 IdentityProofInvalid, and the bastion keeps running;
#   3. the sweeper stops a tagged task that has no supervisor;
# then deletes everything it made, also when a step fails, and says what the
# run cost in minutes.
#
#   scripts/acceptance.sh          the real thing (about 15 minutes)
#   scripts/acceptance.sh --plan   print every AWS call it would make, make none
#   scripts/acceptance.sh --moto   against moto_server (AWS_ENDPOINT_URL): only
#                                  what moto serves (no sam, no Lambda, no Fargate)
#
# Environment: AWS_REGION (or the CLI's configured region), SUPERVISOR_IMAGE
# (a supervisor image that sends proofs of identity, 0.2.0 or later; default:
# the one examples/sidecar-task-definition.json names), KEYS_URL (public SSH
# keys for the bastion; default https://github.com/github.keys),
# ACCEPTANCE_NAME (the throw-away name; default bastion-ttl-acc-<random>).
# ACCEPTANCE_FAIL_AFTER=<step> fails the run after that step, to show that
# the cleanup still runs.
set -euo pipefail
cd "$(dirname "$0")/.."

mode=real
[ "${PLAN:-}" = 1 ] && mode=plan
for arg in "$@"; do
	case $arg in
	--plan) mode=plan ;;
	--moto) mode=moto ;;
	-h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) echo "acceptance: unknown argument $arg (want --plan or --moto)" >&2; exit 2 ;;
	esac
done
if [ "$mode" = moto ] && [ -z "${AWS_ENDPOINT_URL:-}" ]; then
	echo "acceptance: --moto needs AWS_ENDPOINT_URL, moto_server's URL" >&2
	exit 2
fi

TTL=2m TTL_S=120          # the bastion's, through the launcher
SWEEP_TTL=1m SWEEP_TTL_S=60 # the unsupervised task's tag
GRACE_S=120               # BASTION_GRACE of the supervisor and the sweeper (their default)
NAME=${ACCEPTANCE_NAME:-bastion-ttl-acc-$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')}
REGION=${AWS_REGION:-${AWS_DEFAULT_REGION:-}}
if [ -z "$REGION" ]; then
	if [ "$mode" = plan ]; then REGION=eu-west-1; else REGION=$(aws configure get region || true); fi
fi
[ -n "$REGION" ] || { echo "acceptance: no region: set AWS_REGION" >&2; exit 2; }
export AWS_REGION=$REGION AWS_DEFAULT_REGION=$REGION AWS_PAGER=""
SUPERVISOR_IMAGE=${SUPERVISOR_IMAGE:-$(jq -r '.containerDefinitions[] | select(.name == "supervisor") | .image' examples/sidecar-task-definition.json)}
KEYS_URL=${KEYS_URL:-https://github.com/github.keys}
example_grace=$(jq -r '.containerDefinitions[].environment[]? | select(.name == "BASTION_GRACE") | .value' examples/sidecar-task-definition.json)
[ "$example_grace" = 2m ] || { echo "acceptance: the example's BASTION_GRACE is '$example_grace'; the checks assume 2m" >&2; exit 2; }
work=$(mktemp -d)
began=$(date +%s)

exec 3>&1 # the plan and the report, whatever a command substitution captures
say() { printf '%s\n' "$*" >&3; }
fail() { say "FAIL $*"; exit 1; }
pass() { say "ok   $*"; }

# call PLACEHOLDER CMD...: run CMD (aws, sam, go, a script), or in plan mode
# print it and answer PLACEHOLDER in its stead.
call() {
	local placeholder=$1
	shift
	local line
	printf -v line '%q ' "$@"
	if [ "$mode" = plan ]; then
		say "${line% }"
		printf '%s' "$placeholder"
		return 0
	fi
	printf '+ %s\n' "${line% }" >&2
	"$@"
}

# real_only WHAT: true where the step needs what moto does not serve
# (CloudFormation with SAM, Lambda, Fargate running containers).
real_only() {
	if [ "$mode" = moto ]; then
		say "skip $1 (moto serves no $2)"
		return 1
	fi
}

# retry N CMD...: CMD until it succeeds, N times 10 s apart (a security
# group outlives its tasks' network interfaces by a minute or two).
retry() {
	local n=$1 i
	shift
	for ((i = 1; i < n; i++)); do
		"$@" && return 0
		sleep 10
	done
	"$@"
}

# stop_task TASK: stop it, and on a real account wait until it is stopped
# (a cluster with a task still stopping cannot be deleted). moto's tasks
# never get there by themselves.
stop_task() {
	aws ecs stop-task --cluster "$NAME" --task "$1" --reason "bastion-ttl acceptance cleanup" >/dev/null || return
	[ "$mode" = moto ] || aws ecs wait tasks-stopped --cluster "$NAME" --tasks "$1"
}

# plan_undo ENTRY: the AWS calls an entry of undo makes.
plan_undo() {
	case $1 in
	"stop_task "*)
		say "aws ecs stop-task --cluster $NAME --task ${1#stop_task } --reason 'bastion-ttl acceptance cleanup'"
		say "aws ecs wait tasks-stopped --cluster $NAME --tasks ${1#stop_task }"
		;;
	"retry "*) say "$(cut -d' ' -f3- <<<"$1")  (again every 10 s, up to $(cut -d' ' -f2 <<<"$1") times)" ;;
	*" && "*) say "${1%% && *}"; say "${1#* && }" ;;
	*) say "$1" ;;
	esac
}

# The cleanup: commands pushed as things are made, run last-made first on any
# exit. Each is tried once; one failing does not keep the others from running.
undo=()
on_exit() {
	local status=$? i
	trap - EXIT INT TERM
	[ $status -eq 0 ] || say "the run failed (exit $status); cleaning up"
	say "---- cleanup (on any exit, the last made first)"
	for ((i = ${#undo[@]} - 1; i >= 0; i--)); do
		if [ "$mode" = plan ]; then
			plan_undo "${undo[i]}"
		elif eval "${undo[i]}" >/dev/null 2>"$work/undo.err"; then
			say "done ${undo[i]}"
		else
			say "FAIL cleanup: '${undo[i]}': $(tr '\n' ' ' <"$work/undo.err")"
			[ $status -ne 0 ] || status=1
		fi
	done
	rm -rf "$work"
	[ "$mode" != plan ] || say "PLAN done: none of these calls was made"
	report
	exit $status
}
trap on_exit EXIT
trap 'exit 130' INT TERM

# What it cost: minutes of wall clock, and of Fargate tasks (0.25 vCPU,
# 0.5 GB each), as AWS recorded them.
task_seconds=0
report() {
	local minutes=$(( ($(date +%s) - began + 59) / 60 ))
	case $mode in
	plan) return 0 ;;
	moto) say "cost: $minutes minutes of wall clock, nothing on AWS"; return 0 ;;
	esac
	say "cost: $minutes minutes of wall clock; $(( (task_seconds + 59) / 60 )) Fargate task-minutes (0.25 vCPU, 0.5 GB); 3 Lambda invocations of the test's own; one CloudFormation stack for $minutes minutes"
}

step() {
	say "---- $1"
	last_step=$1
}
checkpoint() {
	if [ "${ACCEPTANCE_FAIL_AFTER:-}" = "$last_step" ]; then
		fail "after $last_step, as ACCEPTANCE_FAIL_AFTER asked"
	fi
}

# seconds of an ECS timestamp (the CLI prints ISO 8601 or epoch seconds).
epoch() {
	case $1 in
	'' | None | null) echo "" ;;
	*[!0-9.]*) date -d "$1" +%s ;;
	*) printf '%.0f\n' "$1" ;;
	esac
}

say "acceptance ($mode): $NAME in $REGION"

step caller
identity=$(call "arn:aws:sts::111122223333:assumed-role/acceptance/run" aws sts get-caller-identity --query Arn --output text)
account=$(cut -d: -f5 <<<"$identity")
partition=$(cut -d: -f2 <<<"$identity")
[ -n "$account" ] || fail "no account in the caller identity $identity"
pass "caller $identity"
checkpoint

step network
vpc=$(call vpc-0123456789abcdef0 aws ec2 describe-vpcs --filters Name=isDefault,Values=true --query 'Vpcs[0].VpcId' --output text)
[ -n "$vpc" ] && [ "$vpc" != None ] || fail "no default VPC in $REGION: the test places its tasks there"
subnets=$(call "subnet-0123456789abcdef0 subnet-0fedcba9876543210" aws ec2 describe-subnets --filters "Name=vpc-id,Values=$vpc" --query 'Subnets[].SubnetId' --output text)
subnets=$(tr -s ' \t' ',' <<<"$subnets")
[ -n "$subnets" ] || fail "the default VPC $vpc has no subnet"
sg=$(call sg-0123456789abcdef0 aws ec2 create-security-group --group-name "$NAME" --description "bastion-ttl acceptance test $NAME (no ingress)" --vpc-id "$vpc" --query GroupId --output text)
undo+=("retry 30 aws ec2 delete-security-group --group-id $sg")
pass "default VPC $vpc, subnets $subnets, security group $sg (no ingress)"
checkpoint

step cluster
call "" aws ecs create-cluster --cluster-name "$NAME" --query cluster.clusterArn --output text >/dev/null
undo+=("aws ecs delete-cluster --cluster $NAME")
pass "cluster $NAME"
checkpoint

# The stack makes the bastions' execution role; moto has no stack, so the
# run against it makes one of its own.
exec_role=""
if [ "$mode" = moto ]; then
	step execution-role
	trust='{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ecs-tasks.amazonaws.com"},"Action":"sts:AssumeRole"}]}'
	exec_role=$(call "arn:aws:iam::111122223333:role/$NAME-exec" aws iam create-role --role-name "$NAME-exec" --assume-role-policy-document "$trust" --query Role.Arn --output text)
	undo+=("aws iam delete-role --role-name $NAME-exec")
	pass "execution role $exec_role"
	checkpoint
fi

step artifacts-bucket
bucket="$NAME-$account"
if [ "$REGION" = us-east-1 ]; then
	call "" aws s3api create-bucket --bucket "$bucket" >/dev/null
else
	call "" aws s3api create-bucket --bucket "$bucket" --create-bucket-configuration "LocationConstraint=$REGION" >/dev/null
fi
undo+=("aws s3 rb s3://$bucket --force")
pass "bucket $bucket for sam deploy's artifacts"
checkpoint

step deploy
task_role_arn="arn:$partition:iam::$account:role/$NAME-exec" # moto: no stack, any role will do
terminate_url=https://example.invalid/terminate log_group=/ecs/$NAME max_ttl=1h
terminate_fn="" sweep_fn="" task_role_name=""
if real_only "sam build and sam deploy" "CloudFormation with the SAM transform"; then
	undo+=("aws cloudformation delete-stack --stack-name $NAME && aws cloudformation wait stack-delete-complete --stack-name $NAME")
	call "" sam build >&2
	call "" sam deploy --stack-name "$NAME" --s3-bucket "$bucket" --capabilities CAPABILITY_NAMED_IAM \
		--no-confirm-changeset --no-fail-on-empty-changeset \
		--parameter-overrides "ClusterName=$NAME" MaxTTL=1h "SweepSchedule=rate(1 minute)" LogRetentionInDays=1 \
		"BastionSubnets=$subnets" "BastionSecurityGroups=$sg" "BastionFamilies=$NAME-bastion" >&2
	outputs=$(call '[{"OutputKey":"BastionTaskRoleArn","OutputValue":"arn:aws:iam::111122223333:role/'"$NAME"'-BastionTaskRole-A1B2C3"},{"OutputKey":"TerminateUrl","OutputValue":"https://a1b2c3d4e5.execute-api.'"$REGION"'.amazonaws.com/terminate"},{"OutputKey":"BastionLogGroupName","OutputValue":"/ecs/'"$NAME"'"},{"OutputKey":"MaxTTL","OutputValue":"1h"},{"OutputKey":"BastionExecutionRoleArn","OutputValue":"arn:aws:iam::111122223333:role/'"$NAME"'-BastionExecutionRole-D4E5F6"},{"OutputKey":"LauncherPolicyArn","OutputValue":"arn:aws:iam::111122223333:policy/'"$NAME"'-launcher"}]' \
		aws cloudformation describe-stacks --stack-name "$NAME" --query 'Stacks[0].Outputs' --output json)
	output() { jq -r --arg k "$1" '.[] | select(.OutputKey == $k) | .OutputValue' <<<"$outputs"; }
	task_role_arn=$(output BastionTaskRoleArn) terminate_url=$(output TerminateUrl) log_group=$(output BastionLogGroupName) max_ttl=$(output MaxTTL)
	exec_role=$(output BastionExecutionRoleArn) launcher_policy=$(output LauncherPolicyArn)
	terminate_fn=$(call "$NAME-TerminateFunction-J1K2L3" aws cloudformation describe-stack-resource --stack-name "$NAME" --logical-resource-id TerminateFunction --query StackResourceDetail.PhysicalResourceId --output text)
	sweep_fn=$(call "$NAME-SweepFunction-M4N5O6" aws cloudformation describe-stack-resource --stack-name "$NAME" --logical-resource-id SweepFunction --query StackResourceDetail.PhysicalResourceId --output text)
	[ -n "$task_role_arn" ] && [ -n "$exec_role" ] && [ -n "$launcher_policy" ] && [ -n "$terminate_fn" ] && [ -n "$sweep_fn" ] || fail "the stack's outputs: $outputs"
	pass "stack $NAME: terminate $terminate_fn, sweep $sweep_fn"
fi
task_role_name=${task_role_arn##*/}
checkpoint

step task-definitions
# The example, filled from the stack's outputs, under a family of its own.
ROLE_ARN=$task_role_arn TERMINATE_URL=$terminate_url LOG_GROUP=$log_group MAX_TTL=$max_ttl KEYS_URL=$KEYS_URL \
	EXECUTION_ROLE_ARN=$exec_role REGION=$REGION examples/fill-task-definition.sh |
	jq --arg family "$NAME-bastion" --arg image "$SUPERVISOR_IMAGE" \
		'.family = $family | (.containerDefinitions[] | select(.name == "supervisor")).image = $image' >"$work/bastion.json"
bastion_td=$(call "arn:aws:ecs:$REGION:111122223333:task-definition/$NAME-bastion:1" aws ecs register-task-definition --cli-input-json "file://$work/bastion.json" --query taskDefinition.taskDefinitionArn --output text)
undo+=("aws ecs deregister-task-definition --task-definition $bastion_td")
# A task the sweeper must end: tagged, with no supervisor. (moto runs only
# bridge-mode definitions; Fargate only awsvpc.)
network=awsvpc
[ "$mode" = moto ] && network=bridge
jq -n --arg family "$NAME-unsupervised" --arg network "$network" '{
	family: $family, networkMode: $network, requiresCompatibilities: ["FARGATE"], cpu: "256", memory: "512",
	runtimePlatform: {operatingSystemFamily: "LINUX", cpuArchitecture: "ARM64"},
	containerDefinitions: [{name: "sleeper", image: "public.ecr.aws/docker/library/busybox:1.37", essential: true, cpu: 256, memory: 512, command: ["sleep", "3600"]}]}
	| if $network == "bridge" then del(.requiresCompatibilities) else . end' >"$work/unsupervised.json"
plain_td=$(call "arn:aws:ecs:$REGION:111122223333:task-definition/$NAME-unsupervised:1" aws ecs register-task-definition --cli-input-json "file://$work/unsupervised.json" --query taskDefinition.taskDefinitionArn --output text)
undo+=("aws ecs deregister-task-definition --task-definition $plain_td")
pass "task definitions $bastion_td (supervisor $SUPERVISOR_IMAGE) and $plain_td"
checkpoint

step unsupervised-task
placement=(--launch-type FARGATE --network-configuration "awsvpcConfiguration={subnets=[$subnets],securityGroups=[$sg],assignPublicIp=ENABLED}")
[ "$mode" = moto ] && placement=(--launch-type FARGATE)
orphan=$(call "arn:aws:ecs:$REGION:111122223333:task/$NAME/fedcba9876543210fedcba9876543210" aws ecs run-task --cluster "$NAME" --task-definition "$plain_td" "${placement[@]}" \
	--tags "key=bastion-ttl,value=$SWEEP_TTL" --query 'tasks[0].taskArn' --output text)
[ -n "$orphan" ] && [ "$orphan" != None ] || fail "run-task started nothing"
undo+=("stop_task $orphan")
# Marked as this run's, for anyone who finds it in the account.
call "" aws ecs tag-resource --resource-arn "$orphan" --tags "key=bastion-ttl-acceptance,value=$NAME" >/dev/null
tags=$(call '[{"key":"bastion-ttl","value":"1m"},{"key":"bastion-ttl-acceptance","value":"'"$NAME"'"}]' aws ecs describe-tasks --cluster "$NAME" --tasks "$orphan" --include TAGS --query 'tasks[0].tags' --output json)
[ "$(jq -r '[.[] | select(.key == "bastion-ttl") | .value][0]' <<<"$tags")" = "$SWEEP_TTL" ] || fail "the unsupervised task's tags: $tags"
pass "unsupervised task $orphan, tagged bastion-ttl=$SWEEP_TTL"
checkpoint

# describe TASK QUERY: one field of a task, as ECS answers it.
describe() {
	call "${3:-RUNNING}" aws ecs describe-tasks --cluster "$NAME" --tasks "$1" --query "tasks[0].$2" --output text
}

# wait_stopped TASK SECONDS: until ECS says STOPPED.
wait_stopped() {
	local until=$(($(date +%s) + $2))
	[ "$mode" = plan ] && { describe "$1" lastStatus STOPPED >/dev/null; return 0; }
	while [ "$(describe "$1" lastStatus)" != STOPPED ]; do
		[ "$(date +%s)" -lt "$until" ] || fail "$1 still not STOPPED after $2 s"
		sleep 10
	done
}

if real_only "the bastion, the forged invoke and the sweep" "Fargate task that runs a supervisor, nor Lambda"; then
	step launcher
	# A person who holds the stack's LauncherPolicy and nothing else: the
	# bastion below is started with that role's credentials alone.
	trust="{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Principal\":{\"AWS\":\"arn:$partition:iam::$account:root\"},\"Action\":\"sts:AssumeRole\"}]}"
	launcher_role=$(call "arn:aws:iam::111122223333:role/$NAME-launcher" aws iam create-role --role-name "$NAME-launcher" --assume-role-policy-document "$trust" --query Role.Arn --output text)
	undo+=("aws iam delete-role --role-name $NAME-launcher")
	call "" aws iam attach-role-policy --role-name "$NAME-launcher" --policy-arn "$launcher_policy"
	undo+=("aws iam detach-role-policy --role-name $NAME-launcher --policy-arn $launcher_policy")
	# A role made seconds before is not assumable everywhere at once.
	creds=$(call "ASIAEXAMPLELAUNCHER secret token" retry 6 aws sts assume-role --role-arn "$launcher_role" --role-session-name acceptance-launcher \
		--query 'Credentials.[AccessKeyId,SecretAccessKey,SessionToken]' --output text)
	read -r launcher_key launcher_secret launcher_token <<<"$creds"
	# A function, so that what call prints names it and not the secrets.
	as_launcher() { env -u AWS_PROFILE AWS_ACCESS_KEY_ID="$launcher_key" AWS_SECRET_ACCESS_KEY="$launcher_secret" AWS_SESSION_TOKEN="$launcher_token" "$@"; }
	pass "launcher role $launcher_role, holding $launcher_policy only"
	checkpoint

	step bastion
	started=$(call "started 0123456789abcdef0123456789abcdef in $NAME: TTL $TTL" as_launcher go run ./cmd/bastion-ttl run --stack "$NAME" --cluster "$NAME" \
		--task-definition "$bastion_td" --ttl "$TTL" --subnets "$subnets" --security-groups "$sg" --public-ip)
	[ "$mode" = plan ] && say "  (the launcher, as the launcher role: cloudformation describe-stacks, ecs describe-clusters, ecs describe-task-definition, ecs run-task with its tags, ecs describe-tasks until RUNNING)"
	bastion_id=$(sed -n 's/^started \([0-9a-f]\{32\}\) .*/\1/p' <<<"$started" | head -1)
	[ -n "$bastion_id" ] || fail "the launcher said: $started"
	bastion="arn:$partition:ecs:$REGION:$account:task/$NAME/$bastion_id"
	undo+=("stop_task $bastion")
	pass "bastion $bastion_id, TTL $TTL"
	checkpoint

	step launcher-reaches-only-its-own
	# The unsupervised task is not the launcher's: IAM must refuse its stop.
	if [ "$mode" = plan ]; then
		call "" as_launcher aws ecs stop-task --cluster "$NAME" --task "$orphan" --reason "bastion-ttl acceptance: must be refused"
		say "  (must fail with AccessDeniedException)"
	elif refused=$(as_launcher aws ecs stop-task --cluster "$NAME" --task "$orphan" --reason "bastion-ttl acceptance: must be refused" 2>&1); then
		fail "the launcher role stopped a task that is not its own"
	else
		[[ $refused == *AccessDenied* ]] || fail "stop-task of a task not the launcher's failed otherwise than AccessDenied: $refused"
	fi
	[ "$(describe "$orphan" desiredStatus)" = RUNNING ] || fail "the unsupervised task is no longer RUNNING after the launcher's refused stop"
	pass "the launcher role may not stop a task that is not its own (AccessDenied)"
	checkpoint

	step forged-invoke
	role_id=$(call AROAEXAMPLEBASTIONTASK aws iam get-role --role-name "$task_role_name" --query Role.RoleId --output text)
	jq -n --arg account "$account" --arg arn "arn:$partition:sts::$account:assumed-role/$task_role_name/$bastion_id" \
		--arg uid "$role_id:$bastion_id" --arg task "$bastion" '{
		version: "2.0", routeKey: "POST /terminate", rawPath: "/terminate", rawQueryString: "",
		headers: {"content-type": "application/json"},
		requestContext: {accountId: $account, apiId: "forged", domainName: "forged.invalid", http: {method: "POST", path: "/terminate", protocol: "HTTP/1.1", sourceIp: "203.0.113.7"},
			requestId: "forged", routeKey: "POST /terminate", stage: "$default",
			authorizer: {iam: {accessKey: "ASIAFORGEDFORGED", accountId: $account, callerId: $uid, userArn: $arn, userId: $uid}}},
		body: ({taskArn: $task, reason: "forged"} | tojson), isBase64Encoded: false}' >"$work/forged.json"
	call "" aws lambda invoke --function-name "$terminate_fn" --payload "fileb://$work/forged.json" "$work/forged-answer.json" >/dev/null
	answer=$( [ "$mode" = plan ] && echo '{"statusCode":403,"body":"{\"code\":\"IdentityProofInvalid\"}"}' || cat "$work/forged-answer.json")
	code=$(jq -r '.statusCode' <<<"$answer") error=$(jq -r '.body | fromjson | .code' <<<"$answer" 2>/dev/null || true)
	[ "$code" = 403 ] && [ "$error" = IdentityProofInvalid ] || fail "the forged event was answered $answer, want 403 IdentityProofInvalid"
	[ "$(describe "$bastion" desiredStatus)" = RUNNING ] || fail "the bastion is no longer RUNNING after the forged event"
	pass "forged event refused (403 IdentityProofInvalid); the bastion still runs"
	checkpoint

	step bastion-stops-itself
	wait_stopped "$bastion" $((TTL_S + GRACE_S + 240))
	reason=$(describe "$bastion" stoppedReason "bastion-ttl: ttl expired")
	start_s=$(epoch "$(describe "$bastion" startedAt 1764590400)") stop_s=$(epoch "$(describe "$bastion" stoppedAt 1764590530)")
	[ "$mode" = plan ] || {
		task_seconds=$((task_seconds + stop_s - start_s))
		[[ $reason == bastion-ttl* ]] || fail "the bastion's stoppedReason is '$reason', want one starting bastion-ttl"
		[ "$stop_s" -ge $((start_s + TTL_S)) ] || fail "the bastion stopped $((stop_s - start_s)) s after its start, before its deadline ($TTL_S s)"
		[ "$stop_s" -le $((start_s + TTL_S + GRACE_S)) ] || fail "the bastion stopped $((stop_s - start_s)) s after its start, past deadline + grace ($((TTL_S + GRACE_S)) s)"
		pass "the bastion stopped $((stop_s - start_s)) s after its start (deadline $TTL_S s, + grace $((TTL_S + GRACE_S)) s): $reason"
	}
	checkpoint

	step sweeper
	orphan_start=$(epoch "$(describe "$orphan" startedAt 1764590400)")
	if [ "$mode" != plan ]; then
		[ -n "$orphan_start" ] || fail "the unsupervised task never started: $(describe "$orphan" stoppedReason)"
		due=$((orphan_start + SWEEP_TTL_S + GRACE_S + 5))
		[ "$(date +%s)" -ge "$due" ] || sleep $((due - $(date +%s)))
	fi
	echo '{}' >"$work/sweep-event.json"
	call "" aws lambda invoke --function-name "$sweep_fn" --payload "fileb://$work/sweep-event.json" "$work/sweep-answer.json" >/dev/null
	wait_stopped "$orphan" 180
	reason=$(describe "$orphan" stoppedReason "bastion-ttl sweeper: ttl 1m0s and grace 2m0s passed")
	[ "$mode" = plan ] || {
		[[ $reason == "bastion-ttl sweeper"* ]] || fail "the unsupervised task's stoppedReason is '$reason', want the sweeper's"
		task_seconds=$((task_seconds + $(epoch "$(describe "$orphan" stoppedAt)") - orphan_start))
		pass "the sweeper stopped the unsupervised task: $reason"
	}
	checkpoint
else
	step stop
	call "" aws ecs stop-task --cluster "$NAME" --task "$orphan" --reason "bastion-ttl acceptance (moto)" >/dev/null
	[ "$(describe "$orphan" desiredStatus)" = STOPPED ] || fail "stop-task did not stop $orphan"
	pass "stop-task: $orphan desired STOPPED"
	checkpoint
fi
[ "$mode" = plan ] || say "PASS acceptance ($mode): $NAME"
