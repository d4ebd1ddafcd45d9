package supervisor

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/bastion-ttl/bastion-ttl/internal/envconfig"
	"github.com/bastion-ttl/bastion-ttl/internal/logging"
	"github.com/bastion-ttl/bastion-ttl/internal/stopclient"
)

// controlOff disables the control endpoint.
const controlOff = "off"

// loopbackPort checks that addr is a loopback host:port (the endpoint is
// for the task's own containers, never the network) and returns the port.
func loopbackPort(addr string) (uint16, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return 0, errors.New("not a host:port")
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return 0, errors.New("not a loopback address")
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

// config is the supervisor's configuration; README.md documents each variable.
type config struct {
	TTL          time.Duration   `env:"BASTION_TTL" envDefault:"30m"`
	TerminateURL string          `env:"BASTION_TERMINATE_URL"`
	ExtendURL    string          `env:"BASTION_EXTEND_URL"`
	Container    string          `env:"BASTION_CONTAINER"`
	Grace        time.Duration   `env:"BASTION_GRACE" envDefault:"2m"`
	DryRun       bool            `env:"BASTION_DRY_RUN"`
	FailSafe     string          `env:"BASTION_FAILSAFE" envDefault:"exit"`
	IdleTimeout  time.Duration   `env:"BASTION_IDLE_TIMEOUT" envDefault:"0"`
	IdlePorts    []string        `env:"BASTION_IDLE_PORTS"`
	WarnBefore   []time.Duration `env:"BASTION_WARN_BEFORE" envDefault:"10m,1m"`
	ControlAddr  string          `env:"BASTION_CONTROL_ADDR" envDefault:"127.0.0.1:8311"`
	LogFormat    string          `env:"BASTION_LOG_FORMAT" envDefault:"json"`
	LogLevel     string          `env:"BASTION_LOG_LEVEL" envDefault:"info"`

	url         *url.URL // parsed TerminateURL; nil when not needed
	extendURL   *url.URL // parsed ExtendURL, or the route beside url
	level       slog.Level
	idlePorts   map[uint16]bool // nil: every port something listens on
	controlPort uint16          // never a session port
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
	if c.Grace < MinGrace {
		bad("BASTION_GRACE", fmt.Sprintf("must be at least %v, time for one stop request", MinGrace))
	}
	if c.FailSafe != failSafeExit && c.FailSafe != failSafeNone {
		bad("BASTION_FAILSAFE", "use exit or none")
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
