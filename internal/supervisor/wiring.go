package supervisor

import (
	"errors"
	"log/slog"
	"os"
	"time"

	"github.com/bastion-ttl/bastion-ttl/internal/awscreds"
	"github.com/bastion-ttl/bastion-ttl/internal/backoff"
	"github.com/bastion-ttl/bastion-ttl/internal/buildinfo"
	"github.com/bastion-ttl/bastion-ttl/internal/clock"
	"github.com/bastion-ttl/bastion-ttl/internal/envconfig"
	"github.com/bastion-ttl/bastion-ttl/internal/identityproof"
	"github.com/bastion-ttl/bastion-ttl/internal/stopapi"
	"github.com/bastion-ttl/bastion-ttl/internal/stopclient"
	"github.com/bastion-ttl/bastion-ttl/internal/taskmeta"
	taskusage "github.com/bastion-ttl/bastion-ttl/internal/usage"
)

// The pieces the commands are built from: the signed stop client, the
// metadata waiter, the stop request and the log attributes of a deadline.

func getenvOf(environ map[string]string) func(string) string {
	return func(k string) string { return environ[k] }
}

// newStopper builds the signed stop API client; it makes no request, so a
// missing region or credentials source is a configuration error at start.
func newStopper(cfg config, environ map[string]string, clk clock.Clock, log *slog.Logger) (*stopclient.Client, error) {
	getenv := getenvOf(environ)
	region, err := stopclient.SigningRegion(cfg.url, getenv)
	if err != nil {
		return nil, envconfig.Invalid("AWS_REGION", "", "not set, and BASTION_TERMINATE_URL is not an execute-api host naming a region")
	}
	// One signing region for both routes: they are one API.
	if r, err := stopclient.SigningRegion(cfg.extendURL, getenv); err == nil && r != region {
		return nil, envconfig.Invalid("BASTION_EXTEND_URL", cfg.extendURL.String(), "is in region "+r+", BASTION_TERMINATE_URL in "+region+": both routes are one API's")
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
		URL:         cfg.url.String(),
		ExtendURL:   cfg.extendURL.String(),
		UsageURL:    stopclient.UsageURL(cfg.url).String(),
		Region:      region,
		STS:         sts,
		Credentials: creds,
		Clock:       clk,
		Backoff:     backoff.Policy{Base: 250 * time.Millisecond, Max: 5 * time.Second},
		Log:         log,
		UserAgent:   "bastion-ttl-supervisor/" + buildinfo.Short(),
	}, nil
}

// metadata is where a command reads the task's start: the endpoint, the
// container whose start counts, and the clock and log of its retries.
type metadata struct {
	endpoint  taskmeta.Endpoint
	container string
	clock     clock.Clock
	log       *slog.Logger
}

func newMetadata(cfg config, environ map[string]string, clk clock.Clock, log *slog.Logger) metadata {
	return metadata{endpoint: taskmeta.Discover(getenvOf(environ)), container: cfg.Container, clock: clk, log: log}
}

// sampler reads the task's stats beside the metadata (package usage).
func (m metadata) sampler() *taskusage.Sampler {
	return &taskusage.Sampler{StatsURL: m.endpoint.StatsURL, TaskURL: m.endpoint.TaskURL, Clock: m.clock, Log: m.log}
}

func (m metadata) waiter(b backoff.Policy) *taskmeta.Waiter {
	return &taskmeta.Waiter{
		Client:    &taskmeta.Client{URL: m.endpoint.TaskURL},
		Container: m.container,
		Clock:     m.clock,
		Backoff:   b,
		Log:       m.log,
	}
}

func hostname() string {
	h, _ := os.Hostname()
	return h
}

// stopRequest is the request that ends the task of start, for reason,
// with the task's usage so far (nil: none).
func stopRequest(start taskmeta.Start, reason string, u *stopapi.Usage) stopapi.Request {
	return stopapi.Request{
		TaskARN: start.TaskARN,
		Cluster: stopclient.ClusterForRequest(start.TaskARN, start.Cluster),
		Reason:  reason,
		Usage:   u,
	}
}

// deadlineAttrs are the log attributes of a bastion whose deadline is
// deadline, at now.
func deadlineAttrs(start taskmeta.Start, ttl time.Duration, deadline, now time.Time) []any {
	return []any{
		"task_arn", start.TaskARN,
		"started_at", start.Time.UTC().Format(time.RFC3339Nano),
		"ttl", ttl.String(),
		"deadline", deadline.UTC().Format(time.RFC3339Nano),
		"left", max(deadline.Sub(now), 0).Round(time.Millisecond).String(),
	}
}
