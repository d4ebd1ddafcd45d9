package supervisor

import (
	"strings"
	"testing"
	"time"
)

// The STS endpoint the proof is made for is configuration: a bad one names
// its variable and exits 2 before anything is sent.
func TestBadSTSEndpointExits2(t *testing.T) {
	t.Parallel()
	for _, v := range []string{"http://sts.example.com", "https://sts.eu-west-1.amazonaws.com/path", "not a url"} {
		api := newAPIServer(t, 202)
		env := baseEnv(t, metadataServer(t, time.Now().Add(-time.Hour), 0), api, "10s")
		env["AWS_ENDPOINT_URL_STS"] = v
		code, out := runOnce(t, env, "check")
		if code != 2 || !strings.Contains(out, "AWS_ENDPOINT_URL_STS") || len(api.Hits()) != 0 {
			t.Errorf("%q: exit %d, %d requests:\n%s", v, code, len(api.Hits()), out)
		}
	}
}
