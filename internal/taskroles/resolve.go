package taskroles

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/smithy-go"
	"github.com/bastion-ttl/bastion-ttl/internal/clock"
)

// MaxRoles is how many role names the template grants iam:GetRole on: one
// ARN per name, and CloudFormation can build only as many as it spells out.
const MaxRoles = 10

// IAM is the one IAM call the resolver makes.
type IAM interface {
	GetRole(ctx context.Context, in *iam.GetRoleInput, opts ...func(*iam.Options)) (*iam.GetRoleOutput, error)
}

var _ IAM = (*iam.Client)(nil)

// What IAM allows in a role name, and what its unique role IDs look like.
var (
	roleName = regexp.MustCompile(`^[\w+=,.@-]{1,64}$`)
	roleID   = regexp.MustCompile(`^AROA[A-Z0-9]{12,124}$`)
)

// Resolve returns the unique ID of each named role, in order, after
// checking that only ECS tasks may assume it. Every error names the role.
// AccessDenied is asked again for up to patience: the function's own grant,
// made seconds before, may not have reached all of IAM yet (waiting on clk;
// nil: the system's).
func Resolve(ctx context.Context, api IAM, names []string, patience time.Duration, clk clock.Clock) ([]string, error) {
	if clk == nil {
		clk = clock.System{}
	}
	if len(names) > MaxRoles {
		return nil, fmt.Errorf("%d extra task roles given; the template lets the resolver read at most %d", len(names), MaxRoles)
	}
	ids := make([]string, 0, len(names))
	for _, name := range names {
		if !roleName.MatchString(name) {
			return nil, fmt.Errorf("%q is not a role name: give names, not ARNs or paths", name)
		}
		out, err := getRole(ctx, api, name, patience, clk)
		var missing *types.NoSuchEntityException
		switch {
		case errors.As(err, &missing):
			return nil, fmt.Errorf("role %s does not exist", name)
		case err != nil:
			return nil, fmt.Errorf("role %s: get role: %w", name, err)
		case out.Role == nil:
			return nil, fmt.Errorf("role %s: IAM answered no role", name)
		}
		id := aws.ToString(out.Role.RoleId)
		if !roleID.MatchString(id) {
			return nil, fmt.Errorf("role %s: IAM answered the role ID %q, not one starting AROA", name, id)
		}
		if err := CheckTrust(name, aws.ToString(out.Role.AssumeRolePolicyDocument)); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, nil
}

func getRole(ctx context.Context, api IAM, name string, patience time.Duration, clk clock.Clock) (*iam.GetRoleOutput, error) {
	give := clk.Now().Add(patience)
	wait := 500 * time.Millisecond
	for {
		out, err := api.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(name)})
		var api smithy.APIError
		if err == nil || !errors.As(err, &api) || api.ErrorCode() != "AccessDenied" || clk.Now().Add(wait).After(give) {
			return out, err
		}
		if clk.Sleep(ctx, wait) != nil {
			return out, err
		}
		wait = min(2*wait, 4*time.Second)
	}
}

// Names reads the custom resource's RoleNames property: the list
// CloudFormation passes for a CommaDelimitedList (or one comma-separated
// string), empty members dropped.
func Names(v any) ([]string, error) {
	var raw []string
	switch v := v.(type) {
	case nil:
	case string:
		raw = strings.Split(v, ",")
	case []any:
		for _, e := range v {
			s, ok := e.(string)
			if !ok {
				return nil, fmt.Errorf("RoleNames holds %v, not a role name", e)
			}
			raw = append(raw, s)
		}
	default:
		return nil, fmt.Errorf("RoleNames is %T, want a list of role names", v)
	}
	var names []string
	for _, n := range raw {
		if n = strings.TrimSpace(n); n != "" {
			names = append(names, n)
		}
	}
	return names, nil
}
