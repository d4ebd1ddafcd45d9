package ledger

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"time"

	"github.com/bastion-ttl/bastion-ttl/internal/envconfig"
)

// TableVariable names the ledger's table; without it nothing is recorded.
const TableVariable = "LEDGER_TABLE"

// Config is what every writer of the ledger reads from its environment
// (the terminate function, the sweeper and the ledger function):
// docs/ledger.md documents each variable.
type Config struct {
	Table  string // empty: no ledger
	Policy Policy
}

type settings struct {
	Table               string        `env:"LEDGER_TABLE"`
	RetentionDays       int           `env:"LEDGER_RETENTION_DAYS" envDefault:"400"`
	Grace               time.Duration `env:"BASTION_GRACE" envDefault:"2m"`
	SweepSchedule       string        `env:"BASTION_SWEEP_SCHEDULE" envDefault:"rate(5 minutes)"`
	SupervisorContainer string        `env:"BASTION_SUPERVISOR_CONTAINER" envDefault:"supervisor"`
}

// Load reads the configuration from environ; Table is empty when
// LEDGER_TABLE is not set (the ledger is off).
func Load(environ map[string]string) (Config, error) {
	var s settings
	if err := envconfig.Parse(&s, environ); err != nil {
		return Config{}, err
	}
	var errs []error
	bad := func(name, reason string) { errs = append(errs, envconfig.Invalid(name, environ[name], reason)) }
	if s.RetentionDays < 1 {
		bad("LEDGER_RETENTION_DAYS", "must be a whole number of days, at least 1")
	}
	if s.Grace < 0 {
		bad("BASTION_GRACE", "must not be negative")
	}
	period, err := SchedulePeriod(s.SweepSchedule)
	if err != nil {
		bad("BASTION_SWEEP_SCHEDULE", err.Error())
	}
	return Config{Table: s.Table, Policy: Policy{
		Grace: s.Grace, SweepPeriod: period, SupervisorContainer: s.SupervisorContainer,
		Retention: time.Duration(s.RetentionDays) * 24 * time.Hour,
	}}, errors.Join(errs...)
}

var rate = regexp.MustCompile(`^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$`)

// SchedulePeriod is how often an EventBridge schedule expression runs: a
// rate's period; for a cron expression, whose gaps vary, an hour (the
// SweeperNotRunningAlarm's bound: a slower schedule sets it off).
func SchedulePeriod(expr string) (time.Duration, error) {
	m := rate.FindStringSubmatch(expr)
	if m == nil {
		if len(expr) > 5 && expr[:5] == "cron(" && expr[len(expr)-1] == ')' {
			return time.Hour, nil
		}
		return 0, fmt.Errorf("want an EventBridge schedule expression: rate(5 minutes) or cron(...)")
	}
	n, _ := strconv.Atoi(m[1])
	if n < 1 {
		return 0, fmt.Errorf("a rate of at least 1")
	}
	unit := map[string]time.Duration{"minute": time.Minute, "minutes": time.Minute, "hour": time.Hour, "hours": time.Hour, "day": 24 * time.Hour, "days": 24 * time.Hour}[m[2]]
	return time.Duration(n) * unit, nil
}
