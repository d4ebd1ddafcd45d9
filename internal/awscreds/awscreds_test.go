package awscreds

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
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
