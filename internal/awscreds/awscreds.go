// Package awscreds finds a container's AWS credentials the way the SDK does
// for ECS, without linking the SDK's whole default chain (its package init is
// paid at every health check): static keys from the environment, else the ECS
// container credentials endpoint, cached.
package awscreds

import (
	"errors"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/credentials/endpointcreds"
)

// ECSHost is the link-local address of the ECS container credentials endpoint.
const ECSHost = "http://169.254.170.2"

// FetchTimeout bounds one request to the credentials endpoint: a hung fetch
// must not hold up every stop attempt behind it.
var FetchTimeout = 2 * time.Second

// RefreshBefore is how long before they expire credentials are fetched
// again, so that a stop request never goes out signed with expired keys.
const RefreshBefore = 5 * time.Minute

// ErrNone means the environment names no credentials.
var ErrNone = errors.New("no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or run with an ECS task role (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI)")

// FromEnv returns a cached credentials provider chosen by getenv.
func FromEnv(getenv func(string) string) (aws.CredentialsProvider, error) {
	if id, secret := getenv("AWS_ACCESS_KEY_ID"), getenv("AWS_SECRET_ACCESS_KEY"); id != "" && secret != "" {
		return credentials.NewStaticCredentialsProvider(id, secret, getenv("AWS_SESSION_TOKEN")), nil
	}
	endpoint, err := Endpoint(getenv)
	if err != nil {
		return nil, err
	}
	p := endpointcreds.New(endpoint, func(o *endpointcreds.Options) {
		o.HTTPClient = &http.Client{
			Timeout:       FetchTimeout,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
		if file := getenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"); file != "" {
			// Read at every refresh: the agent may rotate the file.
			o.AuthorizationTokenProvider = endpointcreds.TokenProviderFunc(func() (string, error) {
				b, err := os.ReadFile(file)
				return strings.TrimSpace(string(b)), err
			})
		} else {
			o.AuthorizationToken = getenv("AWS_CONTAINER_AUTHORIZATION_TOKEN")
		}
	})
	return aws.NewCredentialsCache(p, func(o *aws.CredentialsCacheOptions) {
		o.ExpiryWindow = RefreshBefore
		o.ExpiryWindowJitterFrac = 0.5 // spread the refreshes over the last 2.5-5 min
	}), nil
}

// Endpoint is the container credentials URL: ECSHost plus
// AWS_CONTAINER_CREDENTIALS_RELATIVE_URI, else AWS_CONTAINER_CREDENTIALS_FULL_URI,
// which must be https or http to a loopback or ECS/EKS link-local host.
func Endpoint(getenv func(string) string) (string, error) {
	if rel := getenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"); rel != "" {
		return ECSHost + rel, nil
	}
	full := getenv("AWS_CONTAINER_CREDENTIALS_FULL_URI")
	if full == "" {
		return "", ErrNone
	}
	u, err := url.Parse(full)
	if err != nil || u.Host == "" {
		return "", errors.New("not a URL")
	}
	if u.Scheme == "https" || (u.Scheme == "http" && allowedHTTPHost(u.Hostname())) {
		return full, nil
	}
	return "", errors.New("must be https, or http to a loopback or ECS/EKS host")
}

func allowedHTTPHost(host string) bool {
	switch host {
	case "localhost", "169.254.170.2", "169.254.170.23", "fd00:ec2::23":
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
