package identityproof_test

import (
	"testing"

	"github.com/bastion-ttl/bastion-ttl/internal/identityproof"
)

// Route is the one rule both ends bind a proof with: the last element of
// the path, whatever the stage or a custom domain's base path before it,
// trailing slashes ignored.
func TestRoute(t *testing.T) {
	for path, want := range map[string]string{
		"/terminate":                "terminate",
		"/extend":                   "extend",
		"/prod/terminate":           "terminate",
		"/prod/extend":              "extend",
		"/bastion/v1/terminate":     "terminate",
		"/terminate/":               "terminate",
		"/prod/terminate//":         "terminate",
		"terminate":                 "terminate",
		"/":                         "",
		"":                          "",
		"/prod/terminate/extend":    "extend",
		"/prod/%2Fterminate/extend": "extend",
	} {
		if got := identityproof.Route(path); got != want {
			t.Errorf("Route(%q) = %q, want %q", path, got, want)
		}
	}
}
