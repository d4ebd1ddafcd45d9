#!/usr/bin/env bash
# The VPC endpoints a bastion in subnets without a route out needs: to pull
# its image (ECR, and S3 for the layers), to write its logs, and to reach
# the private API (execute-api). Prints the execute-api endpoint's ID, for
# the stack's VpcEndpointIds.
#
#   examples/private-endpoints.sh [--no-private-dns]
#
# Private DNS is on for ECR and Logs, so that their usual names resolve to
# the endpoints. For execute-api it is on too unless --no-private-dns is
# given, and mind what it does: every *.execute-api name then resolves to
# the endpoint, from anywhere in the VPC, and the endpoint serves private
# APIs only, so every call from the VPC to a public API (a public-mode
# bastion-ttl stack's too) fails with 403. With --no-private-dns the VPC's
# public API calls are left alone, and the private API is reached by the
# endpoint-specific name: TerminateUrl as
# https://<api>-<vpce-id>.execute-api.<region>.amazonaws.com/prod/terminate
# (or the endpoint's own DNS name with a Host or x-apigw-api-id header).
set -euo pipefail
api_dns=--private-dns-enabled
case "${1:-}" in
"") ;;
--no-private-dns) api_dns=--no-private-dns-enabled ;;
*)
	echo "usage: $0 [--no-private-dns]" >&2
	exit 2
	;;
esac
: "${VPC:?the VPC id}" "${SUBNETS:?the bastions subnet ids, space-separated}"
: "${SECURITY_GROUP:?a security group admitting 443 from the bastions}" "${ROUTE_TABLE:?the route table of those subnets}"
REGION=${REGION:-${AWS_REGION:-${AWS_DEFAULT_REGION:-$(aws configure get region)}}}

for service in ecr.api ecr.dkr logs; do
	# shellcheck disable=SC2086 # one argument per subnet
	aws ec2 create-vpc-endpoint --vpc-id "$VPC" --vpc-endpoint-type Interface \
		--service-name "com.amazonaws.$REGION.$service" --subnet-ids $SUBNETS \
		--security-group-ids "$SECURITY_GROUP" --private-dns-enabled --query 'VpcEndpoint.VpcEndpointId' --output text >/dev/null
done
aws ec2 create-vpc-endpoint --vpc-id "$VPC" --vpc-endpoint-type Gateway \
	--service-name "com.amazonaws.$REGION.s3" --route-table-ids "$ROUTE_TABLE" --query 'VpcEndpoint.VpcEndpointId' --output text >/dev/null
# shellcheck disable=SC2086
aws ec2 create-vpc-endpoint --vpc-id "$VPC" --vpc-endpoint-type Interface \
	--service-name "com.amazonaws.$REGION.execute-api" --subnet-ids $SUBNETS \
	--security-group-ids "$SECURITY_GROUP" "$api_dns" --query 'VpcEndpoint.VpcEndpointId' --output text
if [ "$api_dns" = --private-dns-enabled ]; then
	echo "private DNS is on for execute-api: public APIs called from this VPC now fail with 403 (--no-private-dns leaves it off)" >&2
else
	echo "private DNS is off for execute-api: set TerminateUrl to https://<api>-<this vpce-id>.execute-api.$REGION.amazonaws.com/prod/terminate" >&2
fi
