package stopclient

import (
	"errors"
	"testing"
)

func TestParseURL(t *testing.T) {
	good := []string{
		"https://abc123.execute-api.eu-west-1.amazonaws.com/terminate",
		"http://127.0.0.1:8080/terminate",
		"http://localhost/terminate",
		"http://[::1]:9/terminate",
	}
	for _, s := range good {
		if _, err := ParseURL(s); err != nil {
			t.Errorf("ParseURL(%q) = %v", s, err)
		}
	}
	bad := []string{"", "ftp://example.com/terminate", "http://example.com/terminate", "http://10.0.0.1/terminate",
		"not a url", "/terminate", "https://", "https://user:pw@example.com/t", "mailto:x@example.com", "https://x.example/#frag",
		"https://abc123.execute-api.eu-west-1.amazonaws.com", "https://abc123.execute-api.eu-west-1.amazonaws.com/",
		"http://127.0.0.1:8080", "https://abc123.execute-api.eu-west-1.amazonaws.com/terminate?x=1"}
	for _, s := range bad {
		if _, err := ParseURL(s); !errors.Is(err, ErrBadURL) {
			t.Errorf("ParseURL(%q) = %v, want ErrBadURL", s, err)
		}
	}
}

func TestSigningRegion(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	tests := []struct {
		url  string
		vars map[string]string
		want string
	}{
		{"https://abc.execute-api.eu-west-1.amazonaws.com/terminate", map[string]string{"AWS_REGION": "us-east-1"}, "eu-west-1"},
		{"https://abc.execute-api.cn-north-1.amazonaws.com.cn/terminate", nil, "cn-north-1"},
		// A private REST API: its private DNS name, and the name through one endpoint.
		{"https://a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com/prod/terminate", map[string]string{"AWS_REGION": "us-east-1"}, "eu-west-1"},
		{"https://a1b2c3d4e5-vpce-0123456789abcdef0.execute-api.eu-west-1.amazonaws.com/prod/terminate", nil, "eu-west-1"},
		{"https://bastion.example.com/terminate", map[string]string{"AWS_REGION": "ap-southeast-2", "AWS_DEFAULT_REGION": "us-east-1"}, "ap-southeast-2"},
		{"http://127.0.0.1:1/terminate", map[string]string{"AWS_DEFAULT_REGION": "us-east-1"}, "us-east-1"},
	}
	for _, tt := range tests {
		u, _ := ParseURL(tt.url)
		if got, err := SigningRegion(u, env(tt.vars)); err != nil || got != tt.want {
			t.Errorf("SigningRegion(%q) = %q, %v; want %q", tt.url, got, err, tt.want)
		}
	}
	u, _ := ParseURL("https://bastion.example.com/terminate")
	if _, err := SigningRegion(u, env(nil)); !errors.Is(err, ErrBadURL) {
		t.Errorf("no region: %v", err)
	}
}

func TestClusterForRequest(t *testing.T) {
	if c := ClusterForRequest("arn:aws:ecs:r:1:task/default/abc", "arn:aws:ecs:r:1:cluster/default"); c != "" {
		t.Errorf("new format: %q", c)
	}
	if c := ClusterForRequest("arn:aws:ecs:r:1:task/abc", "arn:aws:ecs:r:1:cluster/Demo"); c != "arn:aws:ecs:r:1:cluster/Demo" {
		t.Errorf("old format: %q", c)
	}
}

func TestExtendURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://abc123.execute-api.eu-west-1.amazonaws.com/terminate":                                 "https://abc123.execute-api.eu-west-1.amazonaws.com/extend",
		"https://abc123.execute-api.eu-west-1.amazonaws.com/prod/terminate":                            "https://abc123.execute-api.eu-west-1.amazonaws.com/prod/extend",
		"https://a1b2c3d4e5-vpce-0123456789abcdef0.execute-api.eu-west-1.amazonaws.com/prod/terminate": "https://a1b2c3d4e5-vpce-0123456789abcdef0.execute-api.eu-west-1.amazonaws.com/prod/extend",
		"http://127.0.0.1:8080/v1/stop":                                                                "http://127.0.0.1:8080/v1/extend",
		"https://bastions.example.com/bastion/terminate/":                                              "https://bastions.example.com/bastion/extend",
	} {
		u, err := ParseURL(in)
		if err != nil {
			t.Fatal(err)
		}
		if got := ExtendURL(u).String(); got != want {
			t.Errorf("ExtendURL(%s) = %s, want %s", in, got, want)
		}
		if u.String() != in {
			t.Errorf("ExtendURL changed its argument to %s", u)
		}
	}
}
