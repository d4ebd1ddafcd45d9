package stophandler

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/bastion-ttl/bastion-ttl/internal/stopapi"
)

// fakeRecorder keeps the usages handed to it, failing with err.
type fakeRecorder struct {
	got []stopapi.Usage
	arn []string
	err error
}

func (f *fakeRecorder) RecordUsage(_ context.Context, taskARN string, u stopapi.Usage) error {
	f.arn, f.got = append(f.arn, taskARN), append(f.got, u)
	return f.err
}

var _ UsageRecorder = (*fakeRecorder)(nil)

// aUsage is a summary as the supervisor sends it.
func aUsage() stopapi.Usage {
	return stopapi.Usage{
		Samples: 31, From: time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC), To: time.Date(2026, 5, 4, 10, 30, 0, 0, time.UTC),
		MemoryPeakBytes: 210 << 20, MemoryLimitBytes: 512 << 20, CPUSeconds: 42.5, CPUPeakVCPU: 0.31,
		NetRxBytes: 2398415937, NetTxBytes: 1259037719,
	}
}

func usageEvent(body, caller string) events.APIGatewayV2HTTPRequest {
	ev := event("POST", body, caller)
	ev.RouteKey, ev.RawPath = "POST /usage", "/usage"
	return ev
}

func marshal(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// Every route takes the task's usage and hands it, once authorized, to the
// recorder; POST /usage does nothing else.
func TestUsageRecordedOnEveryRoute(t *testing.T) {
	u := aUsage()
	tests := []struct {
		name   string
		ev     events.APIGatewayV2HTTPRequest
		status int
		stops  int
		tags   int
	}{
		{"POST /terminate", event("POST", marshal(stopapi.Request{TaskARN: taskARN, Reason: "TTL 30m expired", Usage: &u}), self), 202, 1, 0},
		{"POST /extend", extendEvent(marshal(stopapi.ExtendRequest{TaskARN: taskARN, TTL: "2h", Usage: &u}), self), 200, 0, 1},
		{"POST /usage", usageEvent(marshal(stopapi.UsageRequest{TaskARN: taskARN, Usage: u}), self), 202, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &fakeRecorder{}
			f := &fakeECS{}
			var log bytes.Buffer
			svc := newService(f, &log)
			svc.UsageRecorder = rec
			resp, _ := svc.Handle(context.Background(), proven(tt.ev))
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.status, resp.Body)
			}
			if len(f.calls) != tt.stops || len(f.tagCalls) != tt.tags {
				t.Fatalf("StopTask %d, TagResource %d; want %d, %d", len(f.calls), len(f.tagCalls), tt.stops, tt.tags)
			}
			if len(rec.got) != 1 || rec.arn[0] != taskARN || rec.got[0] != u {
				t.Fatalf("recorded %v %+v, want %s %+v", rec.arn, rec.got, taskARN, u)
			}
			if !strings.Contains(log.String(), `"usage_samples":31`) || !strings.Contains(log.String(), `"usage_recorded":true`) {
				t.Fatalf("log: %s", log.String())
			}
		})
	}
}

// POST /usage answers 202 with the task and the samples it took.
func TestUsageAnswer(t *testing.T) {
	var log bytes.Buffer
	resp, _ := newService(&fakeECS{}, &log).Handle(context.Background(), proven(usageEvent(marshal(stopapi.UsageRequest{TaskARN: taskARN, Usage: aUsage()}), self)))
	var got stopapi.UsageAccepted
	if err := json.Unmarshal([]byte(resp.Body), &got); err != nil || resp.StatusCode != 202 {
		t.Fatalf("status %d body %s: %v", resp.StatusCode, resp.Body, err)
	}
	if got != (stopapi.UsageAccepted{TaskARN: taskARN, Samples: 31}) {
		t.Fatalf("answer %+v", got)
	}
	if !strings.Contains(log.String(), `"msg":"usage request"`) || !strings.Contains(log.String(), `"outcome":"recorded"`) {
		t.Fatalf("log: %s", log.String())
	}
}

// A record that fails is logged; the stop, the extension and the answer
// go on as if there were no recorder.
func TestUsageRecordFailureFailsNothing(t *testing.T) {
	u := aUsage()
	for _, ev := range []events.APIGatewayV2HTTPRequest{
		event("POST", marshal(stopapi.Request{TaskARN: taskARN, Usage: &u}), self),
		usageEvent(marshal(stopapi.UsageRequest{TaskARN: taskARN, Usage: u}), self),
	} {
		f := &fakeECS{}
		var log bytes.Buffer
		svc := newService(f, &log)
		svc.UsageRecorder = &fakeRecorder{err: errors.New("dynamodb: throttled")}
		resp, _ := svc.Handle(context.Background(), proven(ev))
		if resp.StatusCode != 202 {
			t.Fatalf("%s: status %d: %s", ev.RawPath, resp.StatusCode, resp.Body)
		}
		if !strings.Contains(log.String(), "usage not recorded") || !strings.Contains(log.String(), `"usage_recorded":false`) {
			t.Fatalf("log: %s", log.String())
		}
	}
}

// The same proof, validation and self-only rule as a stop: nothing is
// recorded for a refused request.
func TestUsageRefusals(t *testing.T) {
	u := aUsage()
	bad := func(edit func(*stopapi.Usage)) *stopapi.Usage {
		c := u
		edit(&c)
		return &c
	}
	other := "arn:aws:sts::123456789012:assumed-role/bastion-task-role/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	tests := []struct {
		name   string
		ev     events.APIGatewayV2HTTPRequest
		status int
		want   string
	}{
		{"no usage", usageEvent(`{"taskArn":"`+taskARN+`"}`, self), 400, "usage.samples"},
		{"zero samples", usageEvent(marshal(stopapi.UsageRequest{TaskARN: taskARN, Usage: *bad(func(u *stopapi.Usage) { u.Samples = 0 })}), self), 400, "usage.samples"},
		{"negative memory", usageEvent(marshal(stopapi.UsageRequest{TaskARN: taskARN, Usage: *bad(func(u *stopapi.Usage) { u.MemoryPeakBytes = -1 })}), self), 400, "usage.memoryPeakBytes"},
		{"from after to", usageEvent(marshal(stopapi.UsageRequest{TaskARN: taskARN, Usage: *bad(func(u *stopapi.Usage) { u.From = u.To.Add(time.Second) })}), self), 400, "usage.from is after usage.to"},
		{"absurd vCPU", usageEvent(marshal(stopapi.UsageRequest{TaskARN: taskARN, Usage: *bad(func(u *stopapi.Usage) { u.CPUPeakVCPU = 1e6 })}), self), 400, "usage.cpuPeakVcpu"},
		{"negative CPU seconds", usageEvent(marshal(stopapi.UsageRequest{TaskARN: taskARN, Usage: *bad(func(u *stopapi.Usage) { u.CPUSeconds = -3 })}), self), 400, "usage.cpuSeconds"},
		{"unknown member", usageEvent(`{"taskArn":"`+taskARN+`","usage":{"samples":1,"from":"2026-05-04T10:00:00Z","to":"2026-05-04T10:00:00Z","gpu":1}}`, self), 400, "taskArn, cluster and usage"},
		{"a reason is not a usage field", usageEvent(`{"taskArn":"`+taskARN+`","reason":"x","usage":`+marshal(u)+`}`, self), 400, "taskArn, cluster and usage"},
		{"bad usage on terminate", event("POST", marshal(stopapi.Request{TaskARN: taskARN, Usage: bad(func(u *stopapi.Usage) { u.NetRxBytes = -5 })}), self), 400, "usage.netRxBytes"},
		{"bad usage on extend", extendEvent(marshal(stopapi.ExtendRequest{TaskARN: taskARN, TTL: "2h", Usage: bad(func(u *stopapi.Usage) { u.Samples = -1 })}), self), 400, "usage.samples"},
		{"another task's usage", usageEvent(marshal(stopapi.UsageRequest{TaskARN: taskARN, Usage: u}), other), 403, "only its own task"},
		{"GET", func() events.APIGatewayV2HTTPRequest {
			ev := usageEvent(marshal(stopapi.UsageRequest{TaskARN: taskARN, Usage: u}), self)
			ev.RequestContext.HTTP.Method = "GET"
			return ev
		}(), 405, "not allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &fakeRecorder{}
			status, _, f, log := answer(t, proven(tt.ev), func(s *Service) { s.UsageRecorder = rec })
			if status != tt.status || !strings.Contains(log, tt.want) {
				t.Fatalf("status %d, want %d with %q; log: %s", status, tt.status, tt.want, log)
			}
			if len(rec.got) > 0 || len(f.calls) > 0 || len(f.tagCalls) > 0 {
				t.Fatalf("a refused request recorded %d usages, stopped %d, tagged %d", len(rec.got), len(f.calls), len(f.tagCalls))
			}
		})
	}
}

// A proof made for POST /terminate does not carry a POST /usage of the
// same body: the binding names the route.
func TestUsageProofBoundToItsRoute(t *testing.T) {
	body := marshal(stopapi.UsageRequest{TaskARN: taskARN, Usage: aUsage()})
	ev := usageEvent(body, self)
	setProof(&ev, proofOf(self, userIDOf(self), "terminate", []byte(body), time.Now()))
	rec := &fakeRecorder{}
	status, code, _, _ := answer(t, ev, func(s *Service) { s.UsageRecorder = rec })
	if status != 403 || code != stopapi.CodeIdentityProofInvalid || len(rec.got) > 0 {
		t.Fatalf("status %d code %s recorded %d", status, code, len(rec.got))
	}
}

// Without a recorder the usage is checked and logged, and dropped.
func TestUsageWithoutRecorder(t *testing.T) {
	status, _, _, log := answer(t, proven(usageEvent(marshal(stopapi.UsageRequest{TaskARN: taskARN, Usage: aUsage()}), self)))
	if status != 202 || !strings.Contains(log, `"usage_cpu_seconds":42.5`) || strings.Contains(log, "usage_recorded") {
		t.Fatalf("status %d log %s", status, log)
	}
}
