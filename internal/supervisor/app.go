package supervisor

import (
	"errors"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/bastion-ttl/bastion-ttl/internal/awscreds"
	"github.com/bastion-ttl/bastion-ttl/internal/backoff"
	"github.com/bastion-ttl/bastion-ttl/internal/buildinfo"
	"github.com/bastion-ttl/bastion-ttl/internal/clock"
	"github.com/bastion-ttl/bastion-ttl/internal/envconfig"
	"github.com/bastion-ttl/bastion-ttl/internal/identityproof"
	"github.com/bastion-ttl/bastion-ttl/internal/lifetime"
	"github.com/bastion-ttl/bastion-ttl/internal/logging"
	"github.com/bastion-ttl/bastion-ttl/internal/sessions"
	"github.com/bastion-ttl/bastion-ttl/internal/startcache"
	"github.com/bastion-ttl/bastion-ttl/internal/stopapi"
	"github.com/bastion-ttl/bastion-ttl/internal/stopclient"
	"github.com/bastion-ttl/bastion-ttl/internal/taskmeta"
)

// app is the wiring every command shares.
type app struct {
	cfg      config
	environ  map[string]string
	log      *slog.Logger
	clock    clock.Clock
	stdout   io.Writer
	logOut   io.Writer // where log lines go: stdout, or stderr for status
	endpoint taskmeta.Endpoint
	stopper  *stopclient.Client // nil in dry run and for status

	// The health check's fail-safe and log copy (failsafe.go); tests swap them.
	containerPID    int
	containerStdout string
	signal          func(pid int) error
	procRoot        string // where sessions are counted from: /proc
	execAgentDir    string // whose presence says the task has ECS Exec (sessions.ExecAgentDir)

	samplerMu sync.Mutex // the watch loop and GET /status both count
	sampler   *sessions.Sampler

	cacheWarned sync.Once     // the start cache's directory is refused: said once
	extending   chan struct{} // holds a token while an extension is asked (extend.go)
}

func newApp(environ map[string]string, clk clock.Clock, stdout, logTo io.Writer, stops bool) (*app, error) {
	cfg, err := loadConfig(environ, stops)
	if err != nil {
		return nil, err
	}
	a := &app{
		cfg:      cfg,
		environ:  environ,
		log:      logging.New(logTo, cfg.LogFormat, cfg.level),
		clock:    clk,
		stdout:   stdout,
		logOut:   logTo,
		endpoint: taskmeta.Discover(getenvOf(environ)),

		containerPID:    containerPID,
		containerStdout: containerStdout,
		signal:          signalContainer,
		procRoot:        "/proc",
		execAgentDir:    sessions.ExecAgentDir,
		extending:       make(chan struct{}, 1),
	}
	if stops && !cfg.DryRun {
		if a.stopper, err = a.newStopper(); err != nil {
			return nil, err
		}
	}
	return a, nil
}

func getenvOf(environ map[string]string) func(string) string {
	return func(k string) string { return environ[k] }
}

// newStopper builds the signed terminate client; it makes no request, so a
// missing region or credentials source is a configuration error at start.
func (a *app) newStopper() (*stopclient.Client, error) {
	getenv := getenvOf(a.environ)
	region, err := stopclient.SigningRegion(a.cfg.url, getenv)
	if err != nil {
		return nil, envconfig.Invalid("AWS_REGION", "", "not set, and BASTION_TERMINATE_URL is not an execute-api host naming a region")
	}
	// One signing region for both routes: they are one API.
	if r, err := stopclient.SigningRegion(a.cfg.extendURL, getenv); err == nil && r != region {
		return nil, envconfig.Invalid("BASTION_EXTEND_URL", a.cfg.extendURL.String(), "is in region "+r+", BASTION_TERMINATE_URL in "+region+": both routes are one API's")
	}
	sts, err := identityproof.Endpoint(region, getenv(identityproof.EndpointVariable))
	if err != nil {
		return nil, envconfig.Invalid(identityproof.EndpointVariable, getenv(identityproof.EndpointVariable), err.Error())
	}
	creds, err := awscreds.FromEnv(getenv)
	if errors.Is(err, awscreds.ErrNone) {
		return nil, envconfig.Invalid("AWS_ACCESS_KEY_ID", "", "not set, and no container credentials endpoint (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI): give the task a role")
	} else if err != nil {
		return nil, envconfig.Invalid("AWS_CONTAINER_CREDENTIALS_FULL_URI", getenv("AWS_CONTAINER_CREDENTIALS_FULL_URI"), err.Error())
	}
	return &stopclient.Client{
		URL:         a.cfg.url.String(),
		ExtendURL:   a.cfg.extendURL.String(),
		Region:      region,
		STS:         sts,
		Credentials: creds,
		Clock:       a.clock,
		Backoff:     backoff.Policy{Base: 250 * time.Millisecond, Max: 5 * time.Second},
		Log:         a.log,
		UserAgent:   "bastion-ttl-supervisor/" + buildinfo.Short(),
	}, nil
}

func (a *app) waiter(b backoff.Policy) *taskmeta.Waiter {
	return &taskmeta.Waiter{
		Client:    &taskmeta.Client{URL: a.endpoint.TaskURL},
		Container: a.cfg.Container,
		Clock:     a.clock,
		Backoff:   b,
		Log:       a.log,
	}
}

// cacheSource is the key of the start cache: what the start is read from.
// The v2 URL is the same for every task on an instance, so the hostname
// (the task's own) is added there.
func cacheSource(ep taskmeta.Endpoint, container, hostname string) string {
	source := ep.TaskURL + "\x00" + container
	if ep.Version == 2 {
		source += "\x00" + hostname
	}
	return source
}

// openStartCache opens the start cache's directory, or returns nil when it
// is not the process's own (see package startcache): the check then reads
// the metadata every time, and says so once.
func (a *app) openStartCache() *startcache.Dir {
	path := startcache.DirPath(getenvOf(a.environ))
	dir, err := startcache.OpenDir(path)
	if err != nil {
		a.cacheWarned.Do(func() {
			a.log.Warn("start cache not usable, reading the task metadata at every check", "path", path, "err", err.Error())
		})
		return nil
	}
	return dir
}

func hostname() string {
	h, _ := os.Hostname()
	return h
}

// stopRequest is the request that ends the task of start, for reason.
func stopRequest(start taskmeta.Start, reason string) stopapi.Request {
	return stopapi.Request{
		TaskARN: start.TaskARN,
		Cluster: stopclient.ClusterForRequest(start.TaskARN, start.Cluster),
		Reason:  reason,
	}
}

func (a *app) lifetimeAttrs(start taskmeta.Start, lt lifetime.Lifetime) []any {
	return a.attrsAt(start, lt.TTL, lt.Deadline())
}

// attrsAt are the log attributes of a bastion whose deadline is deadline.
func (a *app) attrsAt(start taskmeta.Start, ttl time.Duration, deadline time.Time) []any {
	return []any{
		"task_arn", start.TaskARN,
		"started_at", start.Time.UTC().Format(time.RFC3339Nano),
		"ttl", ttl.String(),
		"deadline", deadline.UTC().Format(time.RFC3339Nano),
		"left", max(deadline.Sub(a.clock.Now()), 0).Round(time.Millisecond).String(),
	}
}
