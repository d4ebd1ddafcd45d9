package taskroles

import (
	"errors"
	"strings"
	"testing"

	"github.com/bastion-ttl/bastion-ttl/internal/localaws/iamapi"
)

// The trust policy of GetRole's example answer in the IAM API Reference
// (GetRole, "Example"), byte for byte as IAM returns it: URL-encoded.
const referenceExample = `%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%7B%22Sid%22%3A%22%22%2C%22Effect%22%3A%22Allow%22%2C%22Principal%22%3A%7B%22Service%22%3A%22ec2.amazonaws.com%22%7D%2C%22Action%22%3A%22sts%3AAssumeRole%22%7D%5D%7D`

// Trust policies in the shapes IAM stores, each URL-encoded as GetRole
// returns it: which admit ECS tasks alone.
func TestCheckTrust(t *testing.T) {
	tests := []struct {
		name   string
		policy string
		want   string // "" if trusted, else what the refusal must name
	}{
		// Trusted.
		{"ECS tasks with the stack's conditions", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ecs-tasks.amazonaws.com"},"Action":"sts:AssumeRole","Condition":{"StringEquals":{"aws:SourceAccount":"111122223333"},"ArnLike":{"aws:SourceArn":"arn:aws:ecs:eu-west-1:111122223333:*"}}}]}`, ""},
		{"ECS tasks, as the console writes it", "{\n    \"Version\": \"2012-10-17\",\n    \"Statement\": [\n        {\n            \"Sid\": \"\",\n            \"Effect\": \"Allow\",\n            \"Principal\": {\n                \"Service\": \"ecs-tasks.amazonaws.com\"\n            },\n            \"Action\": \"sts:AssumeRole\"\n        }\n    ]\n}", ""},
		{"ECS tasks in a list, one statement as an object", `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"Service":["ecs-tasks.amazonaws.com"]},"Action":["sts:AssumeRole","sts:TagSession"]}}`, ""},
		{"ECS tasks, and a Deny of everyone else", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ecs-tasks.amazonaws.com"},"Action":"sts:AssumeRole"},{"Effect":"Deny","Principal":"*","Action":"sts:AssumeRole","Condition":{"StringNotEquals":{"aws:SourceAccount":"111122223333"}}}]}`, ""},
		{"no statement allows anyone", `{"Version":"2012-10-17","Statement":[]}`, ""},

		// Refused.
		{"the IAM API Reference's example: EC2", "", `Service principal "ec2.amazonaws.com"`},
		{"ECS tasks and Lambda", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":["ecs-tasks.amazonaws.com","lambda.amazonaws.com"]},"Action":"sts:AssumeRole"}]}`, `Service principal "lambda.amazonaws.com"`},
		{"ECS, not ECS tasks", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ecs.amazonaws.com"},"Action":"sts:AssumeRole"}]}`, `Service principal "ecs.amazonaws.com"`},
		{"the account itself", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"sts:AssumeRole"}]}`, `AWS principal "arn:aws:iam::111122223333:root"`},
		{"conditionless cross-account", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"444455556666"},"Action":"sts:AssumeRole"}]}`, `AWS principal "444455556666"`},
		{"cross-account with an external ID", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::444455556666:root"},"Action":"sts:AssumeRole","Condition":{"StringEquals":{"sts:ExternalId":"x1"}}}]}`, `AWS principal "arn:aws:iam::444455556666:root"`},
		{"a role of the account, beside ECS tasks", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ecs-tasks.amazonaws.com","AWS":"arn:aws:iam::111122223333:role/admin"},"Action":"sts:AssumeRole"}]}`, `AWS principal "arn:aws:iam::111122223333:role/admin"`},
		{"a second statement for a user", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ecs-tasks.amazonaws.com"},"Action":"sts:AssumeRole"},{"Sid":"Debug","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:user/mallory"},"Action":"sts:AssumeRole"}]}`, `statement Debug admits the AWS principal "arn:aws:iam::111122223333:user/mallory"`},
		{"AWS wildcard", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"sts:AssumeRole","Condition":{"StringEquals":{"aws:PrincipalOrgID":"o-a1b2c3d4e5"}}}]}`, `AWS principal "*"`},
		{"principal wildcard", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"sts:AssumeRole"}]}`, `the principal "*"`},
		{"GitHub's OIDC provider", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"arn:aws:iam::111122223333:oidc-provider/token.actions.githubusercontent.com"},"Action":"sts:AssumeRoleWithWebIdentity","Condition":{"StringEquals":{"token.actions.githubusercontent.com:aud":"sts.amazonaws.com"},"StringLike":{"token.actions.githubusercontent.com:sub":"repo:octo-org/*"}}}]}`, `Federated principal "arn:aws:iam::111122223333:oidc-provider/token.actions.githubusercontent.com"`},
		{"SAML", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"arn:aws:iam::111122223333:saml-provider/Okta"},"Action":"sts:AssumeRoleWithSAML","Condition":{"StringEquals":{"SAML:aud":"https://signin.aws.amazon.com/saml"}}}]}`, `Federated principal "arn:aws:iam::111122223333:saml-provider/Okta"`},
		{"a canonical user", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"CanonicalUser":"79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be"},"Action":"sts:AssumeRole"}]}`, `CanonicalUser principal`},
		{"NotPrincipal", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","NotPrincipal":{"AWS":"arn:aws:iam::111122223333:user/bob"},"Action":"sts:AssumeRole"}]}`, "NotPrincipal"},
		{"Allow with no principal", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole"}]}`, "no principal"},
		{"not a policy", `not json`, "not a policy document"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			encoded := iamapi.Encode(tt.policy)
			if tt.policy == "" {
				encoded = referenceExample
			}
			if !strings.HasPrefix(encoded, "%7B") && tt.want != "not a policy document" {
				t.Fatalf("fixture not URL-encoded as IAM returns it: %s", encoded)
			}
			err := CheckTrust("my-bastion-role", encoded)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("trusted, want refused")
			}
			if !strings.Contains(err.Error(), "my-bastion-role") || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not name the role and %q", err, tt.want)
			}
			if tt.want != "not a policy document" && !errors.Is(err, ErrUntrusted) {
				t.Errorf("error %v is not ErrUntrusted", err)
			}
		})
	}
}

// A trust policy that is not URL-encoded at all (a '%' that starts no
// escape) is refused, not guessed at.
func TestCheckTrustRefusesBadEncoding(t *testing.T) {
	if err := CheckTrust("r", "%7B%ZZ"); err == nil || !strings.Contains(err.Error(), "role r") {
		t.Errorf("err = %v", err)
	}
}
