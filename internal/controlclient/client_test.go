package controlclient

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/bastion-ttl/bastion-ttl/internal/controlapi"
)

// sidecarStatus is a sidecar's answer, as controlapi's testdata has it.
func sidecarStatus(*testing.T) []byte {
	return []byte(`{
  "schemaVersion": 1,
  "source": "sidecar",
  "taskArn": "arn:aws:ecs:us-west-2:111122223333:task/default/e9028f8d5d8e4f258373e7b93ce9a3c3",
  "startedAt": "2026-11-24T10:00:01Z",
  "ttl": "2h0m0s",
  "deadline": "2026-11-24T10:55:01Z",
  "reason": "idle",
  "remaining": "7m40s",
  "remainingSeconds": 460,
  "expired": false,
  "idleTimeout": "15m0s",
  "idleDeadline": "2026-11-24T10:55:01Z",
  "connections": 0,
  "extendedTo": "2026-11-24T12:00:01Z",
  "maxTtl": "12h0m0s",
  "registered": true,
  "warning": "this bastion stops in 7m40s (idle limit)"
}
`)
}

// serve answers every request with status and body, recording the last request.
func serve(t *testing.T, status int, body string, last *http.Request) *Client {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if last != nil {
			b, _ := io.ReadAll(r.Body)
			*last = *r.Clone(context.Background())
			last.Body = io.NopCloser(strings.NewReader(string(b)))
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return &Client{Addr: strings.TrimPrefix(srv.URL, "http://")}
}

func TestStatus(t *testing.T) {
	t.Run("success", func(t *testing.T) {
		var req http.Request
		s, err := serve(t, 200, string(sidecarStatus(t)), &req).Status(context.Background())
		if err != nil || s.Source != controlapi.SourceSidecar || *s.Reason != controlapi.ReasonIdle || req.Method != http.MethodGet || req.URL.Path != controlapi.StatusPath {
			t.Fatalf("status %+v, %v; request %s %s", s, err, req.Method, req.URL.Path)
		}
	})
	t.Run("no sidecar", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		if _, err := (&Client{Addr: addr}).Status(context.Background()); !errors.Is(err, ErrNoSidecar) {
			t.Fatalf("err %v, want ErrNoSidecar", err)
		}
	})
	t.Run("start not known yet", func(t *testing.T) {
		_, err := serve(t, 503, `{"code":"Unavailable","error":"the start time is not known yet"}`, nil).Status(context.Background())
		var refused *RefusedError
		if !errors.As(err, &refused) || refused.Status != 503 || refused.Body.Code != controlapi.CodeUnavailable || err.Error() != "the start time is not known yet" {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("not a sidecar's answer", func(t *testing.T) {
		for name, body := range map[string]string{
			"not JSON":          "<html>hello</html>",
			"another service's": `{"status":"ok"}`,
			"an escape":         strings.Replace(string(sidecarStatus(t)), `"warning": "this bastion stops in 7m40s`, `"warning": "this bastion stops in \u001b]0;owned\u0007`, 1),
		} {
			if _, err := serve(t, 200, body, nil).Status(context.Background()); !errors.Is(err, ErrNotASidecar) {
				t.Errorf("%s: err %v, want ErrNotASidecar", name, err)
			}
		}
	})
	t.Run("a redirect is not followed", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "http://127.0.0.1:1/elsewhere", http.StatusFound)
		}))
		defer srv.Close()
		_, err := (&Client{Addr: strings.TrimPrefix(srv.URL, "http://")}).Status(context.Background())
		var refused *RefusedError
		if !errors.As(err, &refused) || refused.Status != http.StatusFound {
			t.Fatalf("err %v, want the 302 itself", err)
		}
	})
	t.Run("context cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := serve(t, 200, string(sidecarStatus(t)), nil).Status(ctx); !errors.Is(err, ErrNoSidecar) {
			t.Fatalf("err %v", err)
		}
	})
}

func TestExtend(t *testing.T) {
	var extended map[string]any
	if err := json.Unmarshal(sidecarStatus(t), &extended); err != nil {
		t.Fatal(err)
	}
	extended["capped"] = true
	answer, _ := json.Marshal(extended)
	t.Run("success", func(t *testing.T) {
		var req http.Request
		ans, err := serve(t, 200, string(answer), &req).Extend(context.Background(), 30*time.Minute)
		body, _ := io.ReadAll(req.Body)
		if err != nil || !ans.Capped || req.Method != http.MethodPost || req.URL.Path != controlapi.ExtendPath ||
			req.Header.Get("Content-Type") != controlapi.ContentType || string(body) != `{"by":"30m0s"}` {
			t.Fatalf("answer %+v, %v; request %s %s %q %s", ans, err, req.Method, req.URL.Path, req.Header.Get("Content-Type"), body)
		}
	})
	t.Run("refused, the error shown", func(t *testing.T) {
		_, err := serve(t, 409, `{"code":"CapReached","error":"the TTL is already at its cap of 12h0m0s"}`, nil).Extend(context.Background(), time.Hour)
		var refused *RefusedError
		if !errors.As(err, &refused) || refused.Body.Code != controlapi.CodeCapReached || err.Error() != "the TTL is already at its cap of 12h0m0s" {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("refused, an error not shown", func(t *testing.T) {
		_, err := serve(t, 409, `{"code":"CapReached","error":"\u001b]0;owned\u0007"}`, nil).Extend(context.Background(), time.Hour)
		var refused *RefusedError
		if !errors.As(err, &refused) || strings.Contains(err.Error(), "\x1b") || err.Error() != "the sidecar answered 409" {
			t.Fatalf("err %q", err)
		}
	})
	t.Run("not a sidecar's answer", func(t *testing.T) {
		if _, err := serve(t, 200, `{"ttl":"12h"}`, nil).Extend(context.Background(), time.Hour); !errors.Is(err, ErrNotASidecar) {
			t.Fatalf("err %v", err)
		}
	})
}

// Both requests pass the server's check of who may ask (controlapi.CheckLocal):
// the client sends the address it was given as Host, and no Origin.
func TestRequestsPassCheckLocal(t *testing.T) {
	var req http.Request
	c := serve(t, 200, string(sidecarStatus(t)), &req)
	if _, err := c.Status(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := controlapi.CheckLocal(&req); err != nil || req.Host != c.Addr {
		t.Fatalf("GET /status with Host %q: %v", req.Host, err)
	}
	if _, err := c.Extend(context.Background(), 30*time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := controlapi.CheckLocal(&req); err != nil || req.Method != http.MethodPost {
		t.Fatalf("%s %s with Host %q: %v", req.Method, req.URL.Path, req.Host, err)
	}
}
