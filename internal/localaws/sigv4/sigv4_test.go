package sigv4

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

var creds = aws.Credentials{AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: "secret", SessionToken: "tok"}

func lookup(id string) (aws.Credentials, bool) { return creds, id == creds.AccessKeyID }

func signed(t *testing.T, body []byte, at time.Time) *http.Request {
	t.Helper()
	r, _ := http.NewRequest(http.MethodPost, "http://127.0.0.1:8080/terminate", bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	sum := sha256.Sum256(body)
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, r, hex.EncodeToString(sum[:]), "execute-api", "eu-west-1", at); err != nil {
		t.Fatal(err)
	}
	r.Host = r.URL.Host
	r.Header.Set("Accept-Encoding", "gzip") // added by the transport after signing
	return r
}

func TestVerify(t *testing.T) {
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	body := []byte(`{"taskArn":"x"}`)

	s, err := Verify(signed(t, body, now), body, lookup, now, 5*time.Minute)
	if err != nil || s.AccessKeyID != "AKIDEXAMPLE" || s.Region != "eu-west-1" || s.Service != "execute-api" || !s.Time.Equal(now) {
		t.Fatalf("Verify = %+v, %v", s, err)
	}

	cases := map[string]func() (*http.Request, []byte){
		"tampered body": func() (*http.Request, []byte) { return signed(t, body, now), []byte(`{"taskArn":"y"}`) },
		"tampered signed header": func() (*http.Request, []byte) {
			r := signed(t, body, now)
			r.Header.Set("Content-Type", "text/plain")
			return r, body
		},
		"other path": func() (*http.Request, []byte) {
			r := signed(t, body, now)
			r.URL.Path = "/other"
			return r, body
		},
		"stale": func() (*http.Request, []byte) { return signed(t, body, now.Add(-10*time.Minute)), body },
		"no header": func() (*http.Request, []byte) {
			r := signed(t, body, now)
			r.Header.Del("Authorization")
			return r, body
		},
		"unknown key": func() (*http.Request, []byte) {
			r := signed(t, body, now)
			r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=OTHER/20261124/eu-west-1/execute-api/aws4_request, SignedHeaders=host, Signature=00")
			return r, body
		},
		"token dropped": func() (*http.Request, []byte) {
			r := signed(t, body, now)
			r.Header.Del("X-Amz-Security-Token")
			return r, body
		},
	}
	for name, mk := range cases {
		t.Run(name, func(t *testing.T) {
			r, b := mk()
			if _, err := Verify(r, b, lookup, now, 5*time.Minute); !errors.Is(err, ErrDenied) {
				t.Fatalf("err = %v, want ErrDenied", err)
			}
		})
	}
}
