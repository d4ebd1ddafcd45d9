package dbauth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"maps"
	"net"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/feature/rds/auth"

	"github.com/bastion-ttl/bastion-ttl/internal/testenv"
)

const (
	accessKey    = "AKIAIOSFODNN7EXAMPLE"
	secretKey    = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	sessionToken = "IQoJb3JpZ2luX2VjE+/session/token=="
)

// botocoreJob is one token for testdata/botocore_rds_token.py to make.
type botocoreJob struct {
	Time         string `json:"time"`
	AccessKey    string `json:"access_key"`
	SecretKey    string `json:"secret_key"`
	SessionToken string `json:"session_token,omitempty"`
	Host         string `json:"host"`
	Port         int    `json:"port"`
	User         string `json:"user"`
	Region       string `json:"region"`
}

// botocoreTokens runs the judge on jobs, with no AWS_* variable of the
// caller's to sway it.
func botocoreTokens(t *testing.T, py string, jobs []botocoreJob) []string {
	t.Helper()
	in, err := json.Marshal(jobs)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(py, "testdata/botocore_rds_token.py")
	cmd.Stdin = bytes.NewReader(in)
	cmd.Env = slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "AWS_") })
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("botocore: %v\n%s", err, stderr.String())
	}
	var tokens []string
	if err := json.Unmarshal(out, &tokens); err != nil || len(tokens) != len(jobs) {
		t.Fatalf("botocore said %s (%v)", out, err)
	}
	return tokens
}

// splitToken returns a token's host:port/ part and its query.
func splitToken(t *testing.T, token string) (string, url.Values) {
	t.Helper()
	prefix, rawQuery, ok := strings.Cut(token, "?")
	if !ok {
		t.Fatalf("token without a query: %.60s…", token)
	}
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		t.Fatalf("token query: %v", err)
	}
	return prefix, q
}

// Tokens as botocore (the AWS CLI's generate-db-auth-token) makes them from
// the same inputs, frozen at the same second: a judge this project did not
// write. BuildAuthToken reads the clock itself, so the Go token is made
// first and botocore is given its X-Amz-Date.
func TestTokenAgreesWithBotocore(t *testing.T) {
	py := testenv.BotocorePython(t)
	const cliRegion = "us-east-1" // where the user's profile points
	cases := []struct {
		name, endpoint, user, session string
	}{
		{"postgres port", "orders.cluster-abc.eu-west-1.rds.amazonaws.com:5432", "app_user", ""},
		{"mysql port", "shop.c9akciq32.eu-west-1.rds.amazonaws.com:3306", "jane_doe", ""},
		{"session token", "orders.cluster-abc.eu-west-1.rds.amazonaws.com:5432", "app_user", sessionToken},
		{"database in another region than the CLI", "ledger.cluster-ro-xyz.ap-southeast-2.rds.amazonaws.com:5432", "reporter", sessionToken},
	}
	var jobs []botocoreJob
	var ours []string
	for _, c := range cases {
		host, portText, _ := net.SplitHostPort(c.endpoint)
		port, _ := strconv.Atoi(portText)
		region, ok := Region(host)
		if !ok {
			t.Fatalf("%s: Region(%q) found none", c.name, host)
		}
		token, err := Token(context.Background(), c.endpoint, region, c.user,
			credentials.NewStaticCredentialsProvider(accessKey, secretKey, c.session))
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		_, q := splitToken(t, token)
		ours = append(ours, token)
		jobs = append(jobs, botocoreJob{Time: q.Get("X-Amz-Date"), AccessKey: accessKey, SecretKey: secretKey,
			SessionToken: c.session, Host: host, Port: port, User: c.user, Region: region})
	}
	// The last case again, signed for the CLI's Region: the token RDS in
	// ap-southeast-2 would refuse, which Region is there to prevent.
	wrong := jobs[len(jobs)-1]
	wrong.Region = cliRegion
	boto := botocoreTokens(t, py, append(slices.Clone(jobs), wrong))

	for i, c := range cases {
		prefix, q := splitToken(t, ours[i])
		bprefix, bq := splitToken(t, boto[i])
		if prefix != bprefix {
			t.Errorf("%s: token starts %q, botocore's %q", c.name, prefix, bprefix)
		}
		if q.Get("X-Amz-Signature") == "" || q.Get("X-Amz-Signature") != bq.Get("X-Amz-Signature") {
			t.Errorf("%s: signature %q, botocore's %q", c.name, q.Get("X-Amz-Signature"), bq.Get("X-Amz-Signature"))
		}
		if !maps.EqualFunc(q, bq, slices.Equal) {
			t.Errorf("%s: query parameters differ:\n  ours     %v\n  botocore %v", c.name, q, bq)
		}
		if (c.session != "") != q.Has("X-Amz-Security-Token") {
			t.Errorf("%s: X-Amz-Security-Token present %v, want %v", c.name, q.Has("X-Amz-Security-Token"), c.session != "")
		}
	}
	_, q := splitToken(t, ours[len(ours)-1])
	_, wq := splitToken(t, boto[len(boto)-1])
	if !strings.Contains(q.Get("X-Amz-Credential"), "/ap-southeast-2/rds-db/") || q.Get("X-Amz-Signature") == wq.Get("X-Amz-Signature") {
		t.Errorf("signed for %s, the CLI's Region, not the database's: credential %s", cliRegion, q.Get("X-Amz-Credential"))
	}
	if !t.Failed() {
		t.Logf("botocore agrees on %d tokens, e.g. signature %s…", len(cases), q.Get("X-Amz-Signature")[:16])
	}
}

// The SDK's token has one of the two shapes withPathSlash knows; a third
// would make it pass the token on unmended.
func TestBuildAuthTokenShape(t *testing.T) {
	const endpoint = "orders.cluster-abc.eu-west-1.rds.amazonaws.com:5432"
	raw, err := auth.BuildAuthToken(context.Background(), endpoint, "eu-west-1", "app_user",
		credentials.NewStaticCredentialsProvider(accessKey, secretKey, ""))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(raw, endpoint+"?") && !strings.HasPrefix(raw, endpoint+"/?") {
		t.Fatalf("BuildAuthToken's token starts %.70q: neither host:port? nor host:port/?", raw)
	}
	if got := withPathSlash(raw, endpoint); !strings.HasPrefix(got, endpoint+"/?Action=connect&") {
		t.Errorf("withPathSlash: %.70q", got)
	}
}

func TestTokenRefusesBadInput(t *testing.T) {
	creds := credentials.NewStaticCredentialsProvider(accessKey, secretKey, "")
	const ep, region, user = "orders.cluster-abc.eu-west-1.rds.amazonaws.com:5432", "eu-west-1", "app_user"
	cases := []struct {
		name, endpoint, region, user string
		creds                        aws.CredentialsProvider
		want                         string // in the error
	}{
		{"no port", "orders.cluster-abc.eu-west-1.rds.amazonaws.com", region, user, creds, `endpoint "orders.cluster-abc.eu-west-1.rds.amazonaws.com": want the database's host:port`},
		{"port 0", "db.example.com:0", region, user, creds, `endpoint "db.example.com:0": want a port 1-65535`},
		{"port too big", "db.example.com:65536", region, user, creds, "want a port 1-65535"},
		{"port not a number", "db.example.com:pg", region, user, creds, "want a port 1-65535"},
		{"signed port", "db.example.com:+5432", region, user, creds, "want a port 1-65535"},
		{"a URL", "https://db.example.com:5432", region, user, creds, "want the database's host:port"},
		{"no host", ":5432", region, user, creds, "want a host name or IP address"},
		{"path in host", "db.example.com/x:5432", region, user, creds, "want a host name or IP address"},
		{"empty region", ep, "", user, creds, `region "": want an AWS Region`},
		{"not a region", ep, "Ireland", user, creds, `region "Ireland"`},
		{"empty user", ep, region, "", creds, "database user is empty"},
		{"space in user", ep, region, "app user", creds, `database user "app user": no spaces or control characters`},
		{"newline in user", ep, region, "app\nuser", creds, "no spaces or control characters"},
		{"not UTF-8 user", ep, region, "app\xffuser", creds, "no spaces or control characters"},
		{"no credentials", ep, region, user, nil, "no AWS credentials provider"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			token, err := Token(context.Background(), c.endpoint, c.region, c.user, c.creds)
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.want) || token != "" {
				t.Fatalf("Token(%q, %q, %q) = %q, %v; want ErrInvalid saying %q", c.endpoint, c.region, c.user, token, err, c.want)
			}
		})
	}
}

func TestTokenAcceptsOddButValidEndpoints(t *testing.T) {
	creds := credentials.NewStaticCredentialsProvider(accessKey, secretKey, "")
	for endpoint, prefix := range map[string]string{
		"10.0.12.7:5432":                "10.0.12.7:5432/?",
		"[fd00::7]:3306":                "[fd00::7]:3306/?",
		"db.internal.example.com:05432": "db.internal.example.com:5432/?", // the port as RDS sees it
		"Orders.Cluster-Abc.eu-west-1.rds.amazonaws.com:5432": "Orders.Cluster-Abc.eu-west-1.rds.amazonaws.com:5432/?",
	} {
		token, err := Token(context.Background(), endpoint, "eu-west-1", "app_user", creds)
		if err != nil || !strings.HasPrefix(token, prefix+"Action=connect&DBUser=app_user&") {
			t.Errorf("Token(%q) = %.60q, %v; want it to start %q", endpoint, token, err, prefix)
		}
	}
}

// A credentials failure is the SDK's, not bad input, and carries no token.
func TestTokenCredentialsError(t *testing.T) {
	failing := aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		return aws.Credentials{}, errors.New("no SSO session")
	})
	_, err := Token(context.Background(), "db.example.com:5432", "eu-west-1", "app_user", failing)
	if err == nil || errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "no SSO session") {
		t.Fatalf("err = %v; want the provider's error, not ErrInvalid", err)
	}
}
