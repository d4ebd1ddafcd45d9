package awscreds

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

func envOf(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestStatic(t *testing.T) {
	p, err := FromEnv(envOf(map[string]string{"AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "SECRET", "AWS_SESSION_TOKEN": "TOK"}))
	if err != nil {
		t.Fatal(err)
	}
	c, err := p.Retrieve(context.Background())
	if err != nil || c.AccessKeyID != "AKID" || c.SecretAccessKey != "SECRET" || c.SessionToken != "TOK" {
		t.Fatalf("Retrieve = %+v, %v", c, err)
	}
}

func TestNone(t *testing.T) {
	if _, err := FromEnv(envOf(nil)); !errors.Is(err, ErrNone) {
		t.Fatalf("err = %v", err)
	}
}

func TestEndpoint(t *testing.T) {
	if e, _ := Endpoint(envOf(map[string]string{"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "/v2/credentials/abc"})); e != "http://169.254.170.2/v2/credentials/abc" {
		t.Errorf("relative: %q", e)
	}
	for full, ok := range map[string]bool{
		"https://creds.example/x":        true,
		"http://127.0.0.1:9000/creds":    true,
		"http://169.254.170.23/v1/creds": true,
		"http://[fd00:ec2::23]/v1/creds": true,
		"http://10.0.0.8/creds":          false,
		"http://evil.example/creds":      false,
		"file:///etc/passwd":             false,
		"::not a url":                    false,
	} {
		_, err := Endpoint(envOf(map[string]string{"AWS_CONTAINER_CREDENTIALS_FULL_URI": full}))
		if (err == nil) != ok {
			t.Errorf("full %q: err = %v", full, err)
		}
	}
}

func TestContainerEndpointWithTokenFile(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "token-from-file" {
			http.Error(w, `{"code":"AccessDenied","message":"bad token"}`, http.StatusForbidden)
			return
		}
		_, _ = w.Write([]byte(`{"AccessKeyId":"ASIAX","SecretAccessKey":"S","Token":"T","Expiration":"2099-01-01T00:00:00Z"}`))
	}))
	defer srv.Close()
	file := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(file, []byte("token-from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := FromEnv(envOf(map[string]string{
		"AWS_CONTAINER_CREDENTIALS_FULL_URI":     srv.URL + "/creds",
		"AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": file,
		"AWS_CONTAINER_AUTHORIZATION_TOKEN":      "ignored",
	}))
	if err != nil {
		t.Fatal(err)
	}
	c, err := p.Retrieve(context.Background())
	if err != nil || c.AccessKeyID != "ASIAX" || c.SessionToken != "T" {
		t.Fatalf("Retrieve = %+v, %v", c, err)
	}
}

func fromServer(t *testing.T, h http.HandlerFunc) aws.CredentialsProvider {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	p, err := FromEnv(envOf(map[string]string{"AWS_CONTAINER_CREDENTIALS_FULL_URI": srv.URL + "/creds"}))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestHungEndpointTimesOut(t *testing.T) {
	defer func(d time.Duration) { FetchTimeout = d }(FetchTimeout)
	FetchTimeout = 100 * time.Millisecond
	release := make(chan struct{})
	defer close(release)
	p := fromServer(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	began := time.Now()
	if _, err := p.Retrieve(context.Background()); err == nil {
		t.Fatal("Retrieve from a hung endpoint succeeded")
	}
	// The SDK retries a few times; each attempt is cut at FetchTimeout.
	if took := time.Since(began); took > 2*time.Second {
		t.Fatalf("Retrieve took %v", took)
	}
}

func TestEndpointRedirectIsNotFollowed(t *testing.T) {
	var elsewhere atomic.Int32
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		elsewhere.Add(1)
		_, _ = w.Write([]byte(`{"AccessKeyId":"ASIAX","SecretAccessKey":"S","Token":"T","Expiration":"2099-01-01T00:00:00Z"}`))
	}))
	defer target.Close()
	p := fromServer(t, func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, target.URL, http.StatusFound) })
	if _, err := p.Retrieve(context.Background()); err == nil {
		t.Fatal("credentials came through a redirect")
	}
	if n := elsewhere.Load(); n != 0 {
		t.Fatalf("the redirect target got %d requests (with the authorization token)", n)
	}
}

func TestRefreshesBeforeExpiry(t *testing.T) {
	var fetches atomic.Int32
	p := fromServer(t, func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		exp := time.Now().Add(RefreshBefore / 4).UTC().Format(time.RFC3339)
		_, _ = w.Write([]byte(`{"AccessKeyId":"ASIAX","SecretAccessKey":"S","Token":"T","Expiration":"` + exp + `"}`))
	})
	for range 2 {
		if _, err := p.Retrieve(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if n := fetches.Load(); n != 2 {
		t.Fatalf("%d fetches for credentials expiring within %v; want a refresh each time", n, RefreshBefore)
	}
}
