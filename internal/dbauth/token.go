package dbauth

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/rds/auth"
)

// TokenLifetime is how long RDS accepts a token for a new login; a session
// already open outlives it. A client started later needs a fresh token.
const TokenLifetime = 15 * time.Minute

// ErrInvalid is wrapped by every error about Token's inputs: the caller's
// bad input (exit 2), not a failure to sign.
var ErrInvalid = errors.New("dbauth: invalid input")

// Token returns an RDS IAM auth token, the password for user at the
// database endpoint (its real host:port, not the local forward's: RDS
// checks the signed host), signed for region with creds. It is valid for
// TokenLifetime, so make one afresh for each client start.
func Token(ctx context.Context, endpoint, region, user string, creds aws.CredentialsProvider) (string, error) {
	hostPort, err := CheckEndpoint(endpoint)
	if err != nil {
		return "", err
	}
	if !validRegion(region) {
		return "", fmt.Errorf("%w: region %q: want an AWS Region such as eu-west-1", ErrInvalid, region)
	}
	if err := CheckUser(user); err != nil {
		return "", err
	}
	if creds == nil {
		return "", fmt.Errorf("%w: no AWS credentials provider", ErrInvalid)
	}
	token, err := auth.BuildAuthToken(ctx, hostPort, region, user, creds)
	if err != nil {
		return "", fmt.Errorf("dbauth: sign token for %s as %s: %w", hostPort, user, err)
	}
	return withPathSlash(token, hostPort), nil
}

// withPathSlash writes the token as the AWS CLI and botocore do,
// host:port/?query. BuildAuthToken (v1.7.12) leaves out the "/"; the
// signature is the same (both sign the path "/"), but some endpoints
// (Aurora with an internet access gateway) refuse the shorter form
// (aws/aws-sdk-go-v2#3365, still open).
func withPathSlash(token, hostPort string) string {
	if query, ok := strings.CutPrefix(token, hostPort+"?"); ok {
		return hostPort + "/?" + query
	}
	return token
}

// CheckEndpoint returns endpoint as host:port with a port 1-65535 and a
// host name or IP address, or an error naming it: what Token checks, for a
// caller to check before anything is started.
func CheckEndpoint(endpoint string) (string, error) {
	bad := func(why string) error {
		return fmt.Errorf("%w: endpoint %q: %s", ErrInvalid, endpoint, why)
	}
	host, port, err := net.SplitHostPort(endpoint)
	if err != nil {
		return "", bad("want the database's host:port, such as orders.cluster-abc.eu-west-1.rds.amazonaws.com:5432")
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || n == 0 {
		return "", bad("want a port 1-65535")
	}
	if !validHost(host) {
		return "", bad("want a host name or IP address before the port")
	}
	return net.JoinHostPort(host, strconv.FormatUint(n, 10)), nil
}

// validHost accepts an IP address or a DNS name: the signed host must be
// exactly what the database is reached as, so nothing URL-like slips in.
func validHost(host string) bool {
	if _, err := netip.ParseAddr(host); err == nil {
		return true
	}
	if host == "" || len(host) > 253 {
		return false
	}
	for _, label := range strings.Split(strings.TrimSuffix(host, "."), ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return true
}

// validRegion accepts the shape of every AWS Region name: lowercase words
// and a number, joined by "-" (eu-west-1, us-gov-west-1, cn-north-1).
func validRegion(region string) bool {
	parts := strings.Split(region, "-")
	if len(parts) < 3 {
		return false
	}
	for i, p := range parts {
		if p == "" {
			return false
		}
		last := i == len(parts)-1
		for _, r := range p {
			if last && !(r >= '0' && r <= '9') || !last && !(r >= 'a' && r <= 'z') {
				return false
			}
		}
	}
	return true
}

// CheckUser refuses what no database user name holds and what would turn
// the signed DBUser into something else in a log or a shell.
func CheckUser(user string) error {
	if user == "" {
		return fmt.Errorf("%w: database user is empty", ErrInvalid)
	}
	for _, r := range user {
		if unicode.IsSpace(r) || unicode.IsControl(r) || r == unicode.ReplacementChar {
			return fmt.Errorf("%w: database user %q: no spaces or control characters", ErrInvalid, user)
		}
	}
	return nil
}
