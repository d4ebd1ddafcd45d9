package launcher

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/smithy-go"

	"github.com/bastion-ttl/bastion-ttl/internal/termtext"
)

// StackOutputs are the outputs of the stack (template.yaml) that give the
// defaults.
var StackOutputs = []string{"ClusterName", "TaskDefinition", "Subnets", "SecurityGroups", "MaxTTL", "IdleTimeout", "LedgerTableName"}

// defaults are what the stack records for launching: its outputs.
type defaults struct {
	found          bool
	cluster        string
	taskDefinition string
	subnets        []string
	securityGroups []string
	maxTTL         time.Duration // 0: not known
	idleTimeout    string
	ledgerTable    string
}

// stackDefaults reads the stack's outputs; a stack that does not exist
// gives none (flags can say everything).
func stackDefaults(ctx context.Context, env Env, stack string) (defaults, error) {
	var d defaults
	out, err := env.Stacks.DescribeStacks(ctx, &cloudformation.DescribeStacksInput{StackName: aws.String(stack)})
	var ae smithy.APIError
	if errors.As(err, &ae) && ae.ErrorCode() == "ValidationError" && strings.Contains(ae.ErrorMessage(), "does not exist") {
		return d, nil
	}
	if err != nil {
		return d, awsError("the stack "+stack+" (cloudformation describe-stacks)", err)
	}
	if len(out.Stacks) == 0 {
		return d, nil
	}
	d.found = true
	for _, o := range out.Stacks[0].Outputs {
		// Whoever deployed the stack wrote its outputs, which are printed
		// in many places; a valid name or ID is unchanged by Safe.
		v := termtext.Safe(aws.ToString(o.OutputValue))
		switch aws.ToString(o.OutputKey) {
		case "ClusterName":
			d.cluster = v
		case "TaskDefinition":
			d.taskDefinition = v
		case "Subnets":
			d.subnets = splitList(v)
		case "SecurityGroups":
			d.securityGroups = splitList(v)
		case "MaxTTL":
			if m, err := time.ParseDuration(v); err == nil {
				d.maxTTL = m
			}
		case "IdleTimeout":
			d.idleTimeout = v // "0": off, which the launch says
		case "LedgerTableName":
			d.ledgerTable = v
		}
	}
	return d, nil
}

// need is a value the command cannot do without, with where it may come from.
func need(value, flagName, envName, output, stack string, d defaults) error {
	if value != "" {
		return nil
	}
	where := fmt.Sprintf("the stack %s, which does not exist (--stack)", stack)
	if d.found {
		where = fmt.Sprintf("the stack %s's output %s, which it does not have", stack, output)
	}
	return badf("no %s: pass --%s, set %s, or deploy it in %s", flagName, flagName, envName, where)
}

// errNoCredentials marks a failure to get AWS credentials (no profile, an
// expired SSO session...), which the SDK wraps in no type of its own.
var errNoCredentials = errors.New("no usable AWS credentials")

// MarkCredentials is p, whose failures wrap errNoCredentials: awsError
// tells them apart from AWS's answers with errors.Is, not by their text.
func MarkCredentials(p aws.CredentialsProvider) aws.CredentialsProvider {
	return aws.CredentialsProviderFunc(func(ctx context.Context) (aws.Credentials, error) {
		c, err := p.Retrieve(ctx)
		if err != nil {
			return c, fmt.Errorf("%w: %w", errNoCredentials, err)
		}
		return c, nil
	})
}

// awsError says what an AWS call failed at, and what to do about missing
// credentials, the commonest failure on a laptop (bad input: exit 2). What
// AWS said is made safe for a terminal: an error message may quote a
// request's text (a tag, a reason) that someone else wrote.
func awsError(what string, err error) error {
	if errors.Is(err, errNoCredentials) {
		return badf("no usable AWS credentials (%s): set AWS_PROFILE and run aws sso login, or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY", what)
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "ExpiredToken", "ExpiredTokenException", "InvalidClientTokenId", "UnrecognizedClientException", "AccessDenied", "AccessDeniedException":
			return badf("%s: %s: %s (check AWS_PROFILE and the region)", what, termtext.Safe(ae.ErrorCode()), termtext.Safe(ae.ErrorMessage()))
		}
		return fmt.Errorf("%s: %s: %s", what, termtext.Safe(ae.ErrorCode()), termtext.Safe(ae.ErrorMessage()))
	}
	return fmt.Errorf("%s: %w", what, safeError{err})
}

// safeError is err, its text made safe for a terminal; errors.Is and As
// still see err.
type safeError struct{ err error }

func (e safeError) Error() string { return termtext.Safe(e.err.Error()) }
func (e safeError) Unwrap() error { return e.err }
