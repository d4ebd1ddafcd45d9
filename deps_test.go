package bastionttl_test

import (
	"os/exec"
	"strings"
	"testing"
)

// The production binaries link no support code (the local AWS stand-ins,
// the test environment and its template, IAM and tool drivers), and the supervisor, which starts at every health
// check, does not link the SDK's config package (its package init alone
// costs more than a whole check) nor regexp (patterns compiled at package
// init are paid at every check too). Nor does it link the tag's rule
// (package ttltag): it reads its TTL from its environment, never from the
// tag, and the rule reads the tag with the SDK's ECS types.
func TestProductionBinariesLinkNoSupportCode(t *testing.T) {
	const module = "github.com/bastion-ttl/bastion-ttl/"
	// The parents of the support code, each denied with every package
	// under it (internal/testenv/samtemplate and iamsim, which the
	// template's tests share, among them); and template/, the template's
	// tests, whose package has no code to link.
	support := []string{module + "internal/localaws", module + "internal/testenv", module + "template"}
	for _, parent := range support {
		out, err := exec.Command("go", "list", "./"+strings.TrimPrefix(parent, module)+"/...").CombinedOutput()
		if err != nil || len(strings.Fields(string(out))) == 0 {
			t.Fatalf("go list %s/...: %v %s: the deny list names a parent that is gone", parent, err, out)
		}
		t.Logf("denied: %s", strings.Join(strings.Fields(string(out)), " "))
	}
	denied := map[string][]string{
		"./supervisor":       append([]string{module + "internal/ttltag", "github.com/aws/aws-sdk-go-v2/config", "github.com/aws/aws-sdk-go-v2/service/", "regexp"}, support...),
		"./lambda/terminate": support,
		"./lambda/sweep":     support,
		"./lambda/taskroles": support,
		"./cmd/bastion-ttl":  support,
		"./lambda/ledger":    support,
	}
	for pkg, deny := range denied {
		out, err := exec.Command("go", "list", "-deps", "-tags", "lambda.norpc", pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list -deps %s: %v\n%s", pkg, err, out)
		}
		deps := strings.Fields(string(out))
		if len(deps) < 10 {
			t.Fatalf("go list -deps %s listed only %v", pkg, deps)
		}
		for _, dep := range deps {
			for _, d := range deny {
				if dep == d || strings.HasPrefix(dep, d+"/") || (strings.HasSuffix(d, "/") && strings.HasPrefix(dep, d)) {
					t.Errorf("%s links %s", pkg, dep)
				}
			}
		}
	}
}
