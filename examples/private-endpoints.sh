#!/usr/bin/env bash
# The VPC endpoints a bastion in subnets without a route out needs: to pull
# its image (ECR, and S3 for the layers), to write its logs, and to reach
# the private API (execute-api). Prints the execute-api endpoint's ID, for
# the stack's VpcEndpointIds. Private DNS on, so the usual names resolve to
# the endpoints.
set -euo pipefail
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
	--security-group-ids "$SECURITY_GROUP" --private-dns-enabled --query 'VpcEndpoint.VpcEndpointId' --output text
