package stopclient

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/bastion-ttl/bastion-ttl/internal/identityproof"
	"github.com/bastion-ttl/bastion-ttl/internal/stopapi"
	"github.com/bastion-ttl/bastion-ttl/internal/testenv"
	"github.com/bastion-ttl/bastion-ttl/internal/testenv/clocktest"
)

// The supervisor's two signatures, the API request's and the proof's, as
// botocore computes them from the same inputs: a judge this project did not
// write. A request the real API Gateway or STS would refuse fails here.
func TestSignaturesAgreeWithBotocore(t *testing.T) {
	py := testenv.BotocorePython(t)
	var got *http.Request
	var gotBody []byte
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, gotBody = r.Clone(context.Background()), must(io.ReadAll(r.Body))
		w.WriteHeader(http.StatusAccepted)
	}))
	defer api.Close()
	at := time.Date(2026, 12, 1, 12, 34, 56, 0, time.UTC)
	c := &Client{
		URL: api.URL + "/prod/terminate", Region: "eu-west-1", STS: testSTS,
		Credentials: credentials.NewStaticCredentialsProvider("ASIAEXAMPLEKEY000001", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "IQoJb3JpZ2luX2VjE+/token=="),
		Clock:       clocktest.NewFake(at), Log: slog.New(slog.DiscardHandler), UserAgent: "bastion-ttl-supervisor/test",
	}
	if err := c.Stop(context.Background(), stopapi.Request{TaskARN: "arn:aws:ecs:eu-west-1:123456789012:task/bastions/0123456789abcdef0123456789abcdef", Reason: "TTL 30m0s expired"}); err != nil {
		t.Fatal(err)
	}
	proofURL, err := identityproof.Decode(got.Header.Get(identityproof.Header))
	if err != nil {
		t.Fatal(err)
	}
	pu, _ := url.Parse(proofURL)
	q := pu.Query()
	// botocore is given the request as it was, less what it adds itself.
	unsigned := url.URL{Scheme: pu.Scheme, Host: pu.Host, Path: pu.Path, RawQuery: "Action=GetCallerIdentity&Version=2011-06-15"}
	headers := map[string]string{}
	auth := got.Header.Get("Authorization")
	_, sh, _ := strings.Cut(auth, "SignedHeaders=")
	sh, _, _ = strings.Cut(sh, ",")
	for _, h := range strings.Split(sh, ";") {
		if h == "host" {
			headers["Host"] = got.Host
			continue
		}
		if h == "x-amz-security-token" || h == "x-amz-date" {
			continue // botocore sets these
		}
		headers[http.CanonicalHeaderKey(h)] = got.Header.Get(h)
	}
	job, _ := json.Marshal(map[string]any{
		"access_key": "ASIAEXAMPLEKEY000001", "secret_key": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "token": "IQoJb3JpZ2luX2VjE+/token==",
		"region": "eu-west-1", "time": at.Format("20060102T150405Z"), "expires": q.Get("X-Amz-Expires"),
		"proof_url": unsigned.String(), "binding": identityproof.Binding("POST", "terminate", gotBody),
		"api_url": "http://" + got.Host + got.URL.RequestURI(), "body": string(gotBody), "api_headers": headers,
	})
	cmd := exec.Command(py, "testdata/botocore_sign.py")
	cmd.Stdin = bytes.NewReader(job)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("botocore: %v\n%s", err, out)
	}
	var boto struct {
		ProofURL      string `json:"proof_url"`
		Authorization string `json:"authorization"`
	}
	if err := json.Unmarshal(out, &boto); err != nil {
		t.Fatalf("botocore said %s", out)
	}
	bu, _ := url.Parse(boto.ProofURL)
	if bq := bu.Query(); bq.Get("X-Amz-Signature") != q.Get("X-Amz-Signature") || bq.Get("X-Amz-SignedHeaders") != q.Get("X-Amz-SignedHeaders") {
		t.Errorf("proof: botocore signs\n  %s\nthe supervisor sent\n  %s", boto.ProofURL, proofURL)
	}
	if boto.Authorization != auth {
		t.Errorf("API request: botocore signs\n  %s\nthe supervisor sent\n  %s", boto.Authorization, auth)
	}
	sum := sha256.Sum256(gotBody)
	t.Logf("both agree: proof signature %s, API signature over body sha256 %s", q.Get("X-Amz-Signature")[:16], hex.EncodeToString(sum[:8]))
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
