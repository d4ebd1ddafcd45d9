package stopclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bastion-ttl/bastion-ttl/internal/stopapi"
	"github.com/bastion-ttl/bastion-ttl/internal/testenv/clocktest"
)

var aUsage = stopapi.Usage{Samples: 3, From: time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC), To: time.Date(2026, 5, 4, 10, 2, 0, 0, time.UTC),
	MemoryPeakBytes: 3416064, MemoryLimitBytes: 512 << 20, CPUSeconds: 1.138, CPUPeakVCPU: 0.01, NetRxBytes: 84, NetTxBytes: 84}

// oldFunction stands for a function that predates the usage member: it
// refuses unknown fields with a 400, as stophandler always has.
type oldFunction struct {
	mu     sync.Mutex
	bodies []string
}

func (f *oldFunction) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.bodies = append(f.bodies, string(body))
	f.mu.Unlock()
	if err := verifyProof(r, body); err != nil {
		http.Error(w, err.Error(), http.StatusForbidden)
		return
	}
	var req struct {
		TaskARN, Cluster, Reason, TTL string
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		w.WriteHeader(400)
		_, _ = io.WriteString(w, `{"code":"BadRequest","error":"body is not a JSON object of taskArn, cluster and reason"}`)
		return
	}
	if r.URL.Path == "/extend" {
		_, _ = io.WriteString(w, `{"taskArn":"`+req.TaskARN+`","ttl":"`+req.TTL+`","capped":false,"maxTtl":"12h0m0s"}`)
		return
	}
	w.WriteHeader(202)
}

// A usage never costs a stop or an extension: refused with it (a function
// older than the member), the request goes again without it.
func TestUsageRefusedIsSentAgainWithout(t *testing.T) {
	f := &oldFunction{}
	srv := httptest.NewServer(f)
	defer srv.Close()
	var log bytes.Buffer
	c := newClient(srv.URL+"/terminate", clocktest.NewFake(time.Now()))
	c.ExtendURL = srv.URL + "/extend"
	c.Log = slog.New(slog.NewTextHandler(&log, nil))
	u := aUsage
	const arn = "arn:aws:ecs:eu-west-1:123456789012:task/c/0123456789abcdef0123456789abcdef"
	if err := c.Stop(context.Background(), stopapi.Request{TaskARN: arn, Reason: "TTL 1s expired", Usage: &u}); err != nil {
		t.Fatalf("Stop = %v", err)
	}
	if _, err := c.Extend(context.Background(), stopapi.ExtendRequest{TaskARN: arn, TTL: "2h", Usage: &u}); err != nil {
		t.Fatalf("Extend = %v", err)
	}
	if len(f.bodies) != 4 || !strings.Contains(f.bodies[0], `"usage":{"samples":3,`) || strings.Contains(f.bodies[1], "usage") ||
		!strings.Contains(f.bodies[2], `"usage":`) || strings.Contains(f.bodies[3], "usage") {
		t.Fatalf("bodies %q", f.bodies)
	}
	if strings.Count(log.String(), "update the stack") != 2 {
		t.Fatalf("log: %s", log.String())
	}
}

// A refusal for another reason is final all the same: one more attempt
// without the usage, then the error.
func TestUsageRefusalStaysARefusal(t *testing.T) {
	rec := &recorder{statuses: []int{400}}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	u := aUsage
	err := newClient(srv.URL+"/terminate", clocktest.NewFake(time.Now())).Stop(context.Background(), stopapi.Request{TaskARN: "bad", Usage: &u})
	if !errors.Is(err, ErrRejected) || len(rec.bodies) != 2 || rec.bodies[0].Usage == nil || rec.bodies[1].Usage != nil {
		t.Fatalf("Stop = %v after %d attempts", err, len(rec.bodies))
	}
}

// A usage the contract refuses is never sent: the request goes without.
func TestUsageOutOfBoundsIsLeftOut(t *testing.T) {
	rec := &recorder{statuses: []int{202}}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	u := aUsage
	u.To = u.From.Add(-time.Second)
	if err := newClient(srv.URL+"/terminate", clocktest.NewFake(time.Now())).Stop(context.Background(), stopapi.Request{TaskARN: "x", Usage: &u}); err != nil {
		t.Fatal(err)
	}
	if len(rec.bodies) != 1 || rec.bodies[0].Usage != nil {
		t.Fatalf("bodies %+v", rec.bodies)
	}
	c := newClient(srv.URL+"/terminate", clocktest.NewFake(time.Now()))
	c.UsageURL = srv.URL + "/usage"
	if err := c.SendUsage(context.Background(), stopapi.UsageRequest{TaskARN: "x", Usage: u}); !errors.Is(err, stopapi.ErrBadUsage) {
		t.Fatalf("SendUsage = %v", err)
	}
}

// POST /usage is signed and proven for its own route, and retried as a
// stop is until its context ends.
func TestSendUsage(t *testing.T) {
	rec := &recorder{statuses: []int{503, 202}}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	c := newClient(srv.URL+"/terminate", clocktest.NewFake(time.Now()))
	if err := c.SendUsage(context.Background(), stopapi.UsageRequest{TaskARN: "x", Usage: aUsage}); err == nil {
		t.Fatal("no usage URL, no error")
	}
	c.UsageURL = srv.URL + "/prod/usage"
	if err := c.SendUsage(context.Background(), stopapi.UsageRequest{TaskARN: "x", Usage: aUsage}); err != nil {
		t.Fatal(err)
	}
	if len(rec.bodies) != 2 || rec.badSigs != 0 || len(rec.proofs) != 2 {
		t.Fatalf("attempts %d, bad signatures or proofs %d", len(rec.bodies), rec.badSigs)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := c.SendUsage(ctx, stopapi.UsageRequest{TaskARN: "x", Usage: aUsage}); !errors.Is(err, context.Canceled) {
		t.Fatalf("SendUsage after its context = %v", err)
	}
}

func TestUsageURL(t *testing.T) {
	u, _ := ParseURL("https://abc123.execute-api.eu-west-1.amazonaws.com/prod/terminate")
	if got := UsageURL(u).String(); got != "https://abc123.execute-api.eu-west-1.amazonaws.com/prod/usage" {
		t.Fatal(got)
	}
}
