package supervisor

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/bastion-ttl/bastion-ttl/internal/controlapi"
	"github.com/bastion-ttl/bastion-ttl/internal/envconfig"
	"github.com/bastion-ttl/bastion-ttl/internal/logging"
	"github.com/bastion-ttl/bastion-ttl/internal/stopclient"
)

// controlOff disables the control endpoint.
const controlOff = "off"

// loopbackPort checks that addr is a loopback host:port (the endpoint is
// for the task's own containers, never the network) and returns the port.
// The host is one the endpoint answers as Host (controlapi.LoopbackName):
// supervisor status and extend send the address they are given.
func loopbackPort(addr string) (uint16, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return 0, errors.New("not a host:port")
	}
	if !controlapi.LoopbackName(host) {
		return 0, errors.New("not 127.0.0.1, localhost or [::1]")
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || n == 0 {
		return 0, errors.New("not a port")
	}
	return uint16(n), nil
}

// MinGrace is the least grace: below it a stop request could not even be
// sent between the deadline and the fail-safe.
const MinGrace = 5 * time.Second

// BASTION_FAILSAFE values.
const (
	failSafeExit = "exit" // at deadline + grace, end the task from inside
	failSafeNone = "none" // only log; the sweeper is the backstop
)

// config is the supervisor's configuration; docs/supervisor.md documents each variable.
type config struct {
	TTL           time.Duration   `env:"BASTION_TTL" envDefault:"30m" help:"lifetime after the container's StartedAt, a Go duration"`
	MaxTTL        time.Duration   `env:"BASTION_MAX_TTL" envDefault:"12h" help:"the stack's MaxTTL: the longest TTL believed, whatever the API answers"`
	TerminateURL  string          `env:"BASTION_TERMINATE_URL" help:"URL of POST /terminate (the stack's TerminateUrl); required unless dry run"`
	ExtendURL     string          `env:"BASTION_EXTEND_URL" help:"URL of POST /extend (default: beside the terminate URL)"`
	Container     string          `env:"BASTION_CONTAINER" help:"the container whose StartedAt starts the clock (default: the earliest)"`
	Grace         time.Duration   `env:"BASTION_GRACE" envDefault:"2m" help:"after the deadline, before the fail-safe; at least 5s"`
	DryRun        bool            `env:"BASTION_DRY_RUN" envDefault:"false" help:"decide and log, never stop"`
	FailSafe      string          `env:"BASTION_FAILSAFE" envDefault:"exit" help:"check: exit (SIGTERM to PID 1 at deadline + grace) or none"`
	IdleTimeout   time.Duration   `env:"BASTION_IDLE_TIMEOUT" envDefault:"0" help:"watch: stop after this long without a session; 0 is off"`
	IdlePorts     []string        `env:"BASTION_IDLE_PORTS" help:"watch: the ports whose inbound connections are sessions (default: every listening one)"`
	WarnBefore    []time.Duration `env:"BASTION_WARN_BEFORE" envDefault:"10m,1m" help:"watch: warn this long before the deadline"`
	ControlAddr   string          `env:"BASTION_CONTROL_ADDR" envDefault:"127.0.0.1:8311" help:"the control endpoint (status, extend), loopback only; off disables it"`
	UsageInterval time.Duration   `env:"BASTION_USAGE_INTERVAL" envDefault:"60s" help:"watch: sample the task's stats this often, sent with the API requests (check: once, when it stops); 0 is off"`
	LogFormat     string          `env:"BASTION_LOG_FORMAT" envDefault:"json" help:"json or text"`
	LogLevel      string          `env:"BASTION_LOG_LEVEL" envDefault:"info" help:"debug, info, warn or error"`

	url         *url.URL // parsed TerminateURL; nil when not needed
	extendURL   *url.URL // parsed ExtendURL, or the route beside url
	level       slog.Level
	idlePorts   map[uint16]bool // nil: every port something listens on
	controlPort uint16          // never a session port
}

// variables is every BASTION_* variable with its default and meaning, from
// config's tags, for the usage text: the image has no README.
func variables() string {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "variable\tdefault\tmeaning")
	t := reflect.TypeFor[config]()
	for i := range t.NumField() {
		f := t.Field(i)
		if name := f.Tag.Get("env"); name != "" {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", name, cmp.Or(f.Tag.Get("envDefault"), "-"), f.Tag.Get("help"))
		}
	}
	_ = tw.Flush()
	return b.String()
}

// loadConfig parses and validates the configuration. needURL is false for
// commands that never send a stop request.
func loadConfig(environ map[string]string, needURL bool) (config, error) {
	var c config
	if err := envconfig.Parse(&c, environ); err != nil {
		return c, err
	}
	var errs []error
	bad := func(name, reason string) { errs = append(errs, envconfig.Invalid(name, environ[name], reason)) }
	if c.TTL <= 0 {
		bad("BASTION_TTL", "must be greater than zero")
	}
	switch {
	case c.MaxTTL <= 0:
		bad("BASTION_MAX_TTL", "must be greater than zero (the stack's MaxTTL output)")
	case c.TTL > c.MaxTTL:
		// The sweeper would stop the bastion at the cap, before the
		// deadline this sidecar would tell people.
		errs = append(errs, envconfig.Invalid("BASTION_TTL", cmp.Or(environ["BASTION_TTL"], c.TTL.String()), fmt.Sprintf("is above BASTION_MAX_TTL %s, the stack's cap: the sweeper would stop the bastion there", c.MaxTTL)))
	}
	if c.Grace < MinGrace {
		bad("BASTION_GRACE", fmt.Sprintf("must be at least %v, time for one stop request", MinGrace))
	}
	if c.FailSafe != failSafeExit && c.FailSafe != failSafeNone {
		bad("BASTION_FAILSAFE", "use exit or none")
	}
	if c.UsageInterval < 0 || (c.UsageInterval > 0 && c.UsageInterval < time.Second) {
		bad("BASTION_USAGE_INTERVAL", "use 0 (off) or a duration of at least 1s")
	}
	if c.IdleTimeout < 0 || (c.IdleTimeout > 0 && c.IdleTimeout < time.Second) {
		bad("BASTION_IDLE_TIMEOUT", "use 0 (off) or a duration of at least 1s")
	}
	for _, p := range c.IdlePorts {
		n, err := strconv.ParseUint(strings.TrimSpace(p), 10, 16)
		if err != nil || n == 0 {
			bad("BASTION_IDLE_PORTS", "want comma-separated TCP ports, e.g. 22,2222")
			break
		}
		if c.idlePorts == nil {
			c.idlePorts = map[uint16]bool{}
		}
		c.idlePorts[uint16(n)] = true
	}
	if c.ControlAddr != controlOff {
		if port, err := loopbackPort(c.ControlAddr); err != nil {
			bad("BASTION_CONTROL_ADDR", err.Error()+`; use a loopback host:port such as 127.0.0.1:8311, or "off"`)
		} else {
			c.controlPort = port
		}
	}
	for _, w := range c.WarnBefore {
		if w <= 0 {
			bad("BASTION_WARN_BEFORE", "want comma-separated positive durations, e.g. 10m,1m")
			break
		}
	}
	if err := logging.CheckFormat(c.LogFormat); err != nil {
		bad("BASTION_LOG_FORMAT", "use json or text")
	}
	level, err := logging.Level(c.LogLevel)
	if err != nil {
		bad("BASTION_LOG_LEVEL", "use debug, info, warn or error")
	}
	c.level = level
	if needURL {
		switch {
		case c.TerminateURL == "" && !c.DryRun:
			bad("BASTION_TERMINATE_URL", "required (the URL of POST /terminate) unless BASTION_DRY_RUN=true")
		case c.TerminateURL != "":
			u, err := stopclient.ParseURL(c.TerminateURL)
			if err != nil {
				bad("BASTION_TERMINATE_URL", strings.TrimPrefix(err.Error(), stopclient.ErrBadURL.Error()+": "))
				break
			}
			c.url, c.extendURL = u, stopclient.ExtendURL(u)
			if c.ExtendURL != "" {
				if c.extendURL, err = stopclient.ParseURL(c.ExtendURL); err != nil {
					bad("BASTION_EXTEND_URL", strings.TrimPrefix(err.Error(), stopclient.ErrBadURL.Error()+": "))
				}
			}
		}
	}
	return c, errors.Join(errs...)
}
