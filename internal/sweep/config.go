package sweep

import (
	"errors"
	"log/slog"
	"time"

	"github.com/bastion-ttl/bastion-ttl/internal/ecsarn"
	"github.com/bastion-ttl/bastion-ttl/internal/envconfig"
	"github.com/bastion-ttl/bastion-ttl/internal/logging"
)

// Config is the sweeper function's configuration; docs/sweeper.md documents each variable.
type Config struct {
	Clusters []string // names or ARNs, as given
	MaxTTL   time.Duration
	Grace    time.Duration
	DryRun   bool
	Parallel int
	LogLevel slog.Level
	Region   string
	Function string // the function's name, the metrics' dimension
}

type settings struct {
	AllowedClusters []string      `env:"BASTION_ALLOWED_CLUSTERS,required,notEmpty"`
	MaxTTL          time.Duration `env:"BASTION_MAX_TTL" envDefault:"12h"`
	Grace           time.Duration `env:"BASTION_GRACE" envDefault:"2m"`
	DryRun          bool          `env:"BASTION_SWEEP_DRY_RUN"`
	Parallel        int           `env:"BASTION_SWEEP_PARALLEL" envDefault:"10"`
	LogLevel        string        `env:"BASTION_LOG_LEVEL" envDefault:"info"`
	Region          string        `env:"AWS_REGION,required,notEmpty"`
	Function        string        `env:"AWS_LAMBDA_FUNCTION_NAME" envDefault:"sweep"`
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
	clusters, err := ecsarn.ParseClusters(s.AllowedClusters)
	if err != nil {
		bad("BASTION_ALLOWED_CLUSTERS", "want comma-separated cluster names or ARNs")
	}
	if s.MaxTTL <= 0 {
		bad("BASTION_MAX_TTL", "must be greater than zero")
	}
	if s.Grace < 0 {
		bad("BASTION_GRACE", "must not be negative")
	}
	if s.Parallel < 1 || s.Parallel > 100 {
		bad("BASTION_SWEEP_PARALLEL", "must be between 1 and 100")
	}
	level, err := logging.Level(s.LogLevel)
	if err != nil {
		bad("BASTION_LOG_LEVEL", "use debug, info, warn or error")
	}
	c := Config{MaxTTL: s.MaxTTL, Grace: s.Grace, DryRun: s.DryRun, Parallel: s.Parallel, LogLevel: level, Region: s.Region, Function: s.Function}
	for _, cl := range clusters {
		c.Clusters = append(c.Clusters, cl.String())
	}
	return c, errors.Join(errs...)
}
