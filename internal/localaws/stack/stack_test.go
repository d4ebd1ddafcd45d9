package stack_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/bastion-ttl/bastion-ttl/internal/backoff"
	"github.com/bastion-ttl/bastion-ttl/internal/clock"
	"github.com/bastion-ttl/bastion-ttl/internal/localaws/ecsapi"
	"github.com/bastion-ttl/bastion-ttl/internal/localaws/stack"
	"github.com/bastion-ttl/bastion-ttl/internal/localaws/sts"
	"github.com/bastion-ttl/bastion-ttl/internal/stopapi"
	"github.com/bastion-ttl/bastion-ttl/internal/stopclient"
	"github.com/bastion-ttl/bastion-ttl/internal/stophandler"
	"github.com/bastion-ttl/bastion-ttl/internal/ttltag"
)

const (
	region  = "eu-west-1"
	account = "123456789012"
	me      = "arn:aws:ecs:eu-west-1:123456789012:task/bastions/0f3a9c1be7d84a52b6c1d2e3f4a5b6c7"
	victim  = "arn:aws:ecs:eu-west-1:123456789012:task/bastions/11111111111111111111111111111111"
	cluster = "arn:aws:ecs:eu-west-1:123456789012:cluster/bastions"
	roleID  = "AROAZBASTIONTASKROLE1"
)

var creds = aws.Credentials{AccessKeyID: "ASIASTACKTEST0000001", SecretAccessKey: "stack-test-secret", SessionToken: "token"}

func config() stack.Config {
	return stack.Config{
		Region: region, Account: account, Clusters: []string{"bastions"}, TaskRoles: []string{roleID},
		Callers: []sts.Caller{stack.TaskCaller(account, "bastion-task-role", roleID, me, creds)}, MaxTTL: time.Hour,
	}
}

// start starts c with the tasks in the in-memory ECS.
func start(t *testing.T, c stack.Config, tasks ...string) *stack.Stack {
	t.Helper()
	c.ECS = ecsapi.New()
	for _, arn := range tasks {
		c.ECS.Add(ecsapi.Task{ARN: arn, ClusterARN: cluster, StartedAt: time.Now()})
	}
	st, err := stack.Start(c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	return st
}

// client is the supervisor's stop client for the stack's API and STS.
func client(st *stack.Stack) *stopclient.Client {
	stsURL, _ := url.Parse(st.STSURL)
	return &stopclient.Client{
		URL: st.APIURL + "/terminate", ExtendURL: st.APIURL + "/extend", Region: region, STS: stsURL,
		Credentials: credentials.StaticCredentialsProvider{Value: creds},
		Clock:       clock.System{}, Backoff: backoff.Policy{Base: time.Millisecond, Max: time.Millisecond},
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
}

// The stack is the chain the supervisor meets: a signed request with its
// proof passes the gateway, STS and the function, and the task stops; the
// function's policy is the one Env gives it, so another task is refused.
func TestStackStopsTheCallerOnly(t *testing.T) {
	for _, stage := range []string{"", "prod"} {
		t.Run("stage "+stage, func(t *testing.T) {
			c := config()
			c.Stage = stage
			st := start(t, c, me, victim)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()

			err := client(st).Stop(ctx, stopapi.Request{TaskARN: victim, Reason: "not mine"})
			if rej := (*stopclient.RejectedError)(nil); !errors.As(err, &rej) || rej.Status != 403 {
				t.Fatalf("stopping another task: %v, want a 403", err)
			}
			if err := client(st).Stop(ctx, stopapi.Request{TaskARN: me, Reason: "TTL 1s expired"}); err != nil {
				t.Fatal(err)
			}
			got, _ := st.ECS.Task(me)
			if got.DesiredStatus != "STOPPED" || got.StoppedReason != stophandler.ReasonPrefix+"TTL 1s expired" {
				t.Fatalf("task %s, reason %q", got.DesiredStatus, got.StoppedReason)
			}
			if v, _ := st.ECS.Task(victim); v.DesiredStatus == "STOPPED" {
				t.Fatal("the other task was stopped")
			}
			if st.STS.Requests() != 2 {
				t.Fatalf("STS saw %d proofs, want 2", st.STS.Requests())
			}
		})
	}
}

// The cap the stack is configured with is the function's.
func TestStackCapsExtensions(t *testing.T) {
	st := start(t, config(), me)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	e, err := client(st).Extend(ctx, stopapi.ExtendRequest{TaskARN: me, TTL: "3h"})
	if err != nil || !e.Capped || e.TTL != "1h0m0s" {
		t.Fatalf("extend 3h: %+v %v, want capped at 1h", e, err)
	}
	if got, _ := st.ECS.Task(me); got.Tags[ttltag.Key] != "1h0m0s" {
		t.Fatalf("tag %q", got.Tags[ttltag.Key])
	}
}

// Env is a configuration the function accepts, and holds what it was given.
func TestEnvIsTheFunctionsConfiguration(t *testing.T) {
	env := config().Env("http://127.0.0.1:1", "http://127.0.0.1:2")
	cfg, err := stophandler.Load(env)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Region != region || cfg.Account != account || cfg.MaxTTL != time.Hour || cfg.STS.String() != "http://127.0.0.1:2" {
		t.Fatalf("config %+v", cfg)
	}
	if env["AWS_ENDPOINT_URL_ECS"] != "http://127.0.0.1:1" {
		t.Fatalf("ECS endpoint %q", env["AWS_ENDPOINT_URL_ECS"])
	}
}

func TestStartNeedsTheStacksIdentity(t *testing.T) {
	c := config()
	c.TaskRoles = nil
	if _, err := stack.Start(c); err == nil {
		t.Fatal("started without task roles")
	}
}

// usages keeps the usages the function hands its recorder.
type usages struct {
	mu  sync.Mutex
	got map[string][]stopapi.Usage
}

func (u *usages) RecordUsage(_ context.Context, taskARN string, v stopapi.Usage) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.got == nil {
		u.got = map[string][]stopapi.Usage{}
	}
	u.got[taskARN] = append(u.got[taskARN], v)
	return nil
}

// A usage travels in the body the signature and the proof cover, on each
// of the three routes, through the gateway and STS to the function's
// recorder; another task's is refused.
func TestStackCarriesUsage(t *testing.T) {
	u := stopapi.Usage{Samples: 12, From: time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC), To: time.Date(2026, 5, 4, 10, 11, 0, 0, time.UTC),
		MemoryPeakBytes: 3416064, MemoryLimitBytes: 512 << 20, CPUSeconds: 1.138, CPUPeakVCPU: 0.25, NetRxBytes: 2398415937, NetTxBytes: 1259037719}
	for _, stage := range []string{"", "prod"} {
		t.Run("stage "+stage, func(t *testing.T) {
			c := config()
			c.Stage = stage
			st := start(t, c, me, victim)
			rec := &usages{}
			st.Function.UsageRecorder = rec
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			cl := client(st)
			cl.UsageURL = st.APIURL + "/usage"

			if err := cl.SendUsage(ctx, stopapi.UsageRequest{TaskARN: me, Usage: u}); err != nil {
				t.Fatal(err)
			}
			if _, err := cl.Extend(ctx, stopapi.ExtendRequest{TaskARN: me, TTL: "30m", Usage: &u}); err != nil {
				t.Fatal(err)
			}
			if err := cl.Stop(ctx, stopapi.Request{TaskARN: me, Reason: "TTL 30m expired", Usage: &u}); err != nil {
				t.Fatal(err)
			}
			err := cl.SendUsage(ctx, stopapi.UsageRequest{TaskARN: victim, Usage: u})
			if rej := (*stopclient.RejectedError)(nil); !errors.As(err, &rej) || rej.Status != 403 {
				t.Fatalf("another task's usage: %v, want a 403", err)
			}
			if got := rec.got[me]; len(got) != 3 || got[0] != u || got[1] != u || got[2] != u || len(rec.got[victim]) != 0 {
				t.Fatalf("recorded %+v", rec.got)
			}
			if got, _ := st.ECS.Task(me); got.DesiredStatus != "STOPPED" {
				t.Fatalf("task %s", got.DesiredStatus)
			}
		})
	}
}
