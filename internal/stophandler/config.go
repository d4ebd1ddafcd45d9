package stophandler

import (
	"errors"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/bastion-ttl/bastion-ttl/internal/ecsarn"
	"github.com/bastion-ttl/bastion-ttl/internal/envconfig"
	"github.com/bastion-ttl/bastion-ttl/internal/identityproof"
	"github.com/bastion-ttl/bastion-ttl/internal/logging"
)

// Config is the function's configuration; docs/api.md documents each variable.
type Config struct {
	Policy   Policy
	Region   string        // the function's own: tasks elsewhere are refused
	Account  string        // the function's own (BASTION_ACCOUNT_ID); empty: the event's
	MaxTTL   time.Duration // the cap of POST /extend
	LogLevel slog.Level
	Function string // the function's name, the metrics' dimension
	// STS is the endpoint proofs of identity must name and are sent to.
	STS *url.URL
	// AcceptUnproven lets requests without a proof through, for a stack
	// upgraded before its bastions' supervisors; off by default.
	AcceptUnproven bool
}

type settings struct {
	AllowedClusters []string      `env:"BASTION_ALLOWED_CLUSTERS,required,notEmpty"`
	TaskRoles       []string      `env:"BASTION_TASK_ROLES,required,notEmpty"`
	RequireSelf     bool          `env:"BASTION_REQUIRE_SELF" envDefault:"true"`
	MaxTTL          time.Duration `env:"BASTION_MAX_TTL" envDefault:"12h"`
	LogLevel        string        `env:"BASTION_LOG_LEVEL" envDefault:"info"`
	Region          string        `env:"AWS_REGION,required,notEmpty"`
	Function        string        `env:"AWS_LAMBDA_FUNCTION_NAME" envDefault:"terminate"`
	AcceptUnproven  bool          `env:"BASTION_ACCEPT_UNPROVEN" envDefault:"false"`
	Account         string        `env:"BASTION_ACCOUNT_ID"`
	STSEndpoint     string        `env:"AWS_ENDPOINT_URL_STS"`
}

// Load reads the configuration from environ. Every problem is reported, each
// naming its variable and value (errors.Is(err, envconfig.ErrInvalid)).
func Load(environ map[string]string) (Config, error) {
	var s settings
	if err := envconfig.Parse(&s, environ); err != nil {
		return Config{}, err
	}
	var errs []error
	bad := func(name, reason string) { errs = append(errs, envconfig.Invalid(name, environ[name], reason)) }
	allowed, err := ecsarn.ParseClusters(s.AllowedClusters)
	if err != nil {
		bad("BASTION_ALLOWED_CLUSTERS", "want comma-separated cluster names or ARNs")
	}
	roles, err := ParseRoles(s.TaskRoles)
	if err != nil {
		bad("BASTION_TASK_ROLES", "want comma-separated role names or role IDs (AROA...) of the bastion task roles: "+err.Error())
	}
	if s.MaxTTL <= 0 {
		bad("BASTION_MAX_TTL", "must be a duration greater than zero, e.g. 12h")
	}
	if a := s.Account; a != "" && (len(a) != 12 || strings.Trim(a, "0123456789") != "") {
		bad("BASTION_ACCOUNT_ID", "want the function's 12-digit account ID")
	}
	sts, err := identityproof.Endpoint(s.Region, s.STSEndpoint)
	if err != nil {
		bad(identityproof.EndpointVariable, err.Error())
	}
	level, err := logging.Level(s.LogLevel)
	if err != nil {
		bad("BASTION_LOG_LEVEL", "use debug, info, warn or error")
	}
	return Config{
		Policy:   Policy{Roles: roles, RequireSelf: s.RequireSelf, Allowed: allowed},
		Region:   s.Region,
		Account:  s.Account,
		MaxTTL:   s.MaxTTL,
		LogLevel: level,
		Function: s.Function,
		STS:      sts,

		AcceptUnproven: s.AcceptUnproven,
	}, errors.Join(errs...)
}

// RolesByName returns the entries of p.Roles that are role names, not
// unique role IDs.
func (p Policy) RolesByName() []string {
	var names []string
	for _, r := range p.Roles {
		if !roleID.MatchString(r) {
			names = append(names, r)
		}
	}
	return names
}

// WarnRolesByName says, once at cold start, that BASTION_TASK_ROLES trusts
// roles by name: the template passes unique IDs, a deployment made by hand
// may still give names, and those are weaker.
func WarnRolesByName(log *slog.Logger, p Policy) {
	names := p.RolesByName()
	if len(names) == 0 {
		return
	}
	log.Warn("BASTION_TASK_ROLES names roles instead of giving their unique IDs: a role deleted and created again under the same name is trusted, "+
		"and so is one whose trust policy admits more than ecs-tasks.amazonaws.com; give each role's RoleId (aws iam get-role --role-name NAME --query Role.RoleId), as the template does",
		"roles", strings.Join(names, ","))
}
