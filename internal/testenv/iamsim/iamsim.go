// Package iamsim decides IAM requests against IAM documents with an
// independent IAM policy simulator, @cloud-copilot/iam-simulate: node, and
// the simulator pinned by testdata/iam-simulate/package-lock.json (AGPL-3.0,
// so a test tool that no artifact carries; make iam-simulator installs it).
// testdata/iam-simulate/simulate.mjs is its other end: it reads the
// documents and the requests as JSON on stdin and answers the decisions,
// and checks each condition key of a document against the keys the action
// offers, from the simulator's own action data (the simulator only ignores
// a key an action lacks, where AWS never matches the condition).
//
// Where node or the simulator is missing, a test skips loudly (fails under
// BASTION_TEST_STRICT=1), as for the other tools of package testenv.
//
// Test support only, like the rest of internal/testenv.
package iamsim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/bastion-ttl/bastion-ttl/internal/testenv"
)

// Dir is the simulator's directory, from the module's root.
const Dir = "internal/testenv/iamsim/testdata/iam-simulate"

// The decisions a Request may want.
const (
	Allowed          = "Allowed"
	Denied           = "Denied" // either way: implicitly or explicitly
	ExplicitlyDenied = "ExplicitlyDenied"
	ImplicitlyDenied = "ImplicitlyDenied" // only ever in a Result
)

// Request is one request put to the simulator, and the decision it must get.
type Request struct {
	Name      string         `json:"name"`
	Principal string         `json:"principal"`
	Action    string         `json:"action"`
	Resource  string         `json:"resource"`
	Account   string         `json:"account"` // the resource's owner
	Context   map[string]any `json:"context,omitempty"`
	// Identity names the principal's identity policies, ResourcePolicy the
	// resource's policy, among the documents the request is decided with.
	Identity       []string `json:"identity,omitempty"`
	ResourcePolicy string   `json:"resourcePolicy,omitempty"`
	// Want is the decision it must get: Allowed, Denied or ExplicitlyDenied.
	Want string `json:"-"`
}

// Result is the simulator's answer to one request.
type Result struct {
	Name     string `json:"name"`
	Decision string `json:"decision"` // Allowed, ImplicitlyDenied or ExplicitlyDenied
	// IgnoredContextKeys are keys of the request's context that AWS does not
	// supply for its action and resource.
	IgnoredContextKeys []string `json:"ignoredContextKeys"`
	Error              string   `json:"error"` // the simulator refused the request
}

// Problem is a condition key of a document that its action does not offer.
type Problem struct {
	Policy, Statement, Action, Key, Why string
}

// Simulate decides reqs against policies (IAM documents by name, as
// encoding/json decodes them), and checks every policy's condition keys
// against its actions' own.
func Simulate(t testing.TB, policies map[string]any, reqs []Request) ([]Result, []Problem) {
	t.Helper()
	node := testenv.Need(t, "node", "apt-get install nodejs npm (node 18 or later)")
	root, err := testenv.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, Dir)
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "@cloud-copilot", "iam-simulate", "package.json")); err != nil {
		testenv.Missing(t, "the IAM simulator @cloud-copilot/iam-simulate", "make iam-simulator (npm ci in "+Dir+")")
	}
	check := slices.Sorted(maps.Keys(policies))
	in, err := json.Marshal(map[string]any{"policies": policies, "requests": reqs, "check": check})
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(node, filepath.Join(dir, "simulate.mjs"))
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("simulate.mjs: %v\n%s", err, stderr.String())
	}
	var got struct {
		Results  []Result
		Problems []Problem
	}
	if err := json.Unmarshal(out, &got); err != nil || len(got.Results) != len(reqs) {
		t.Fatalf("simulate.mjs said %d results for %d requests (%v):\n%s", len(got.Results), len(reqs), err, out)
	}
	return got.Results, got.Problems
}

// FixturePrefix starts the name of a document that is the corpus's own (a
// caller's policy, a role that trusts the account), not one under test:
// Check does not ask it to be tested both ways.
const FixturePrefix = "fixture: "

// Check decides reqs against policies and fails t for each request decided
// otherwise than it Wants, given context AWS would not supply, or refused by
// the simulator; for each condition key an action does not offer; and for
// each document under test that no request is allowed by, or none denied
// (a corpus that tests a document one way only proves little).
func Check(t testing.TB, policies map[string]any, reqs []Request) {
	t.Helper()
	results, problems := Simulate(t, policies, reqs)
	for i, r := range results {
		q := reqs[i]
		switch {
		case r.Error != "":
			t.Errorf("%s: the simulator refused the request: %s", q.Name, r.Error)
		case len(r.IgnoredContextKeys) > 0:
			t.Errorf("%s: context %v is not what AWS supplies for %s on %s", q.Name, r.IgnoredContextKeys, q.Action, q.Resource)
		case q.Want == Denied && r.Decision == Allowed, q.Want != Denied && r.Decision != q.Want:
			t.Errorf("%s: %s, want %s\n  %s %s by %s, context %s", q.Name, r.Decision, q.Want, q.Action, q.Resource, q.Principal, jsonOf(q.Context))
		}
	}
	for _, p := range problems {
		t.Errorf("%s, statement %s: %s", p.Policy, p.Statement, p.Why)
	}
	for name := range policies {
		if strings.HasPrefix(name, FixturePrefix) {
			continue
		}
		var allowed, denied bool
		for i, q := range reqs {
			if slices.Contains(q.Identity, name) || q.ResourcePolicy == name {
				allowed = allowed || results[i].Decision == Allowed
				denied = denied || (results[i].Decision != Allowed && results[i].Error == "")
			}
		}
		if !allowed || !denied {
			t.Errorf("%s: the corpus has no request it allows (%v) or none it denies (%v)", name, allowed, denied)
		}
	}
	t.Logf("%d requests, %d documents", len(reqs), len(policies))
}

func jsonOf(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}
