// Package samtemplate gives tests a SAM template as CloudFormation sees it:
// after the AWS::Serverless transform (what CloudFormation really creates),
// given parameter values as CloudFormation gives them to the transform, and
// then, if asked, resolved for those values (package cfn).
//
// The transform is sam-transform.py, embedded here and run with python3: the
// SAM translator that cfn-lint carries, with no AWS call. SAM resolves a few
// parameters itself (an API's Auth) and hashes them into the REST API
// deployment's logical ID, which is why the transform is given the values.
// Without cfn-lint, a test skips loudly (fails under BASTION_TEST_STRICT=1),
// as for the other tools of package testenv.
//
// A Stack transforms its file once for each set of parameters, however many
// tests of the package ask; the templates it returns are shared, and not to
// be changed.
//
// Test support only, like the rest of internal/testenv.
package samtemplate

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"maps"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/bastion-ttl/bastion-ttl/internal/testenv"
	"github.com/bastion-ttl/bastion-ttl/internal/testenv/cfn"
)

//go:embed sam-transform.py
var script string

// Transform is the template file at path after the SAM transform, given
// params (the others at their defaults), as JSON decodes it; conditions are
// left to CloudFormation. It runs the transform each time: Stack keeps the
// results.
func Transform(path string, params map[string]string) (cfn.Template, error) {
	args := []string{"-c", script, path}
	for _, k := range slices.Sorted(maps.Keys(params)) {
		args = append(args, k+"="+params[k])
	}
	out, err := exec.Command("python3", args...).Output()
	if ee, ok := err.(*exec.ExitError); ok {
		return nil, fmt.Errorf("SAM transform %s %v: %v\n%s", path, args[3:], err, ee.Stderr)
	} else if err != nil {
		return nil, fmt.Errorf("SAM transform %s %v: %v", path, args[3:], err)
	}
	var tpl cfn.Template
	if err := json.Unmarshal(out, &tpl); err != nil {
		return nil, fmt.Errorf("SAM transform %s %v output: %v", path, args[3:], err)
	}
	return tpl, nil
}

// Stack is one template file and its transforms, made once for each set
// of parameters.
type Stack struct {
	path string
	mu   sync.Mutex
	done map[string]*transform
}

type transform struct {
	once sync.Once
	tpl  cfn.Template
	err  error
}

// New is the Stack of the template file at path; nothing runs until a test
// asks for a transform.
func New(path string) *Stack {
	return &Stack{path: path, done: map[string]*transform{}}
}

// Path is the template file's path, as given to New.
func (s *Stack) Path() string { return s.path }

// Raw is the template after the SAM transform given params, conditions left
// to CloudFormation (what Rules and Conditions say is checked on it).
func (s *Stack) Raw(t testing.TB, params map[string]string) cfn.Template {
	t.Helper()
	testenv.Need(t, "cfn-lint", "pip install cfn-lint (it carries the SAM translator)")
	var key []string
	for _, k := range slices.Sorted(maps.Keys(params)) {
		key = append(key, k+"="+params[k])
	}
	s.mu.Lock()
	tr := s.done[strings.Join(key, " ")]
	if tr == nil {
		tr = &transform{}
		s.done[strings.Join(key, " ")] = tr
	}
	s.mu.Unlock()
	tr.once.Do(func() { tr.tpl, tr.err = Transform(s.path, params) })
	if tr.err != nil {
		t.Fatal(tr.err)
	}
	return tr.tpl
}

// Resolved is the template after the SAM transform given params, then
// resolved for params as CloudFormation deploys it (cfn.Resolve): what a
// stack deployed with those values holds.
func (s *Stack) Resolved(t testing.TB, params map[string]string) cfn.Template {
	t.Helper()
	tpl, err := cfn.Resolve(s.Raw(t, params), params)
	if err != nil {
		t.Fatal(err)
	}
	return tpl
}
