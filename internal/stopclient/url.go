package stopclient

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"

	"github.com/bastion-ttl/bastion-ttl/internal/stopapi"
)

// ErrBadURL is matched by the errors of ParseURL and SigningRegion.
var ErrBadURL = errors.New("bad terminate URL")

// ParseURL checks the terminate URL: absolute, https, or http only to a
// loopback host (a local test or demo), since the request carries a signature.
func ParseURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" || u.Opaque != "" {
		return nil, fmt.Errorf("%w: not an absolute URL", ErrBadURL)
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !isLoopback(u.Hostname()) {
			return nil, fmt.Errorf("%w: http is allowed only to a loopback host; use https", ErrBadURL)
		}
	default:
		return nil, fmt.Errorf("%w: scheme %q (use https)", ErrBadURL, u.Scheme)
	}
	if u.User != nil || u.Fragment != "" {
		return nil, fmt.Errorf("%w: no user info or fragment allowed", ErrBadURL)
	}
	// Without the route's path the request reaches API Gateway's own 404.
	if u.Path == "" || u.Path == "/" {
		return nil, fmt.Errorf("%w: needs the route's path, e.g. https://<api>.execute-api.<region>.amazonaws.com/terminate", ErrBadURL)
	}
	// A query would be signed, then ignored by the API: refuse the surprise.
	if u.RawQuery != "" || u.ForceQuery {
		return nil, fmt.Errorf("%w: no query allowed", ErrBadURL)
	}
	return u, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// SigningRegion is the region to sign for: the one in an API Gateway host
// (<api>.execute-api.<region>.amazonaws.com[.cn]), else the first of
// AWS_REGION and AWS_DEFAULT_REGION that is set.
func SigningRegion(u *url.URL, getenv func(string) string) (string, error) {
	labels := strings.Split(u.Hostname(), ".")
	for i := 0; i+2 < len(labels); i++ {
		if labels[i] == stopapi.SigningName && labels[i+2] == "amazonaws" {
			return labels[i+1], nil
		}
	}
	for _, k := range []string{"AWS_REGION", "AWS_DEFAULT_REGION"} {
		if r := getenv(k); r != "" {
			return r, nil
		}
	}
	return "", fmt.Errorf("%w: no region in host %q and neither AWS_REGION nor AWS_DEFAULT_REGION is set", ErrBadURL, u.Hostname())
}

// ClusterForRequest returns the cluster to send beside taskARN: only
// old-format ARNs (task/<id>) need it.
func ClusterForRequest(taskARN, cluster string) string {
	_, res, _ := strings.Cut(taskARN, ":task/")
	if strings.Contains(res, "/") {
		return ""
	}
	return cluster
}

// ExtendURL is the extend route beside a terminate URL: the same API and
// stage, the route (identityproof.Route: the last path element, trailing
// slashes ignored) replaced (…/prod/terminate -> …/prod/extend).
func ExtendURL(terminate *url.URL) *url.URL { return beside(terminate, "extend") }

// UsageURL is the usage route beside a terminate URL (…/prod/usage).
func UsageURL(terminate *url.URL) *url.URL { return beside(terminate, "usage") }

func beside(terminate *url.URL, route string) *url.URL {
	u := *terminate
	p := strings.TrimRight(u.Path, "/")
	dir := p[:strings.LastIndexByte(p, '/')+1]
	u.Path, u.RawPath = dir+route, ""
	return &u
}
