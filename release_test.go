// What a release ships from this repository: the Makefile's Lambda
// bootstraps (what `sam build` runs) and the release metadata, which must
// agree with the changelog and the examples' image. The root's tests are
// the checks that span the repository (this one, deps_test.go,
// acceptance_test.go); template.yaml's own are in template/, and
// template/sar_test.go checks it against the Serverless Application
// Repository.
package bastionttl_test

import (
	"bytes"
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/bastion-ttl/bastion-ttl/internal/testenv"
	"github.com/bastion-ttl/bastion-ttl/internal/testenv/cfn"
	"github.com/bastion-ttl/bastion-ttl/internal/testenv/samtemplate"
)

// Every function of template.yaml has its make target (sam build's), and
// its bootstrap a release build and archive.
func TestMakeBuildsTheBootstraps(t *testing.T) {
	tpl, err := os.ReadFile("template.yaml")
	if err != nil {
		t.Fatal(err)
	}
	functions := regexp.MustCompile(`(?m)^  (\w+):\n    Type: AWS::Serverless::Function$`).FindAllSubmatch(tpl, -1)
	if len(functions) < 4 {
		t.Fatalf("template.yaml has %d functions, want at least 4", len(functions))
	}
	makefile, _ := os.ReadFile("Makefile")
	release, _ := os.ReadFile(".goreleaser.yaml")
	for _, m := range functions {
		fn := string(m[1])
		dir := regexp.MustCompile(`(?m)^build-` + fn + `:\n\t\$\(call lambda,(\w+)\)$`).FindSubmatch(makefile)
		if dir == nil {
			t.Errorf("the Makefile has no build-%s: $(call lambda,DIR)", fn)
			continue
		}
		if !bytes.Contains(release, []byte("main: ./lambda/"+string(dir[1])+"\n")) || !bytes.Contains(release, []byte(`name_template: "`+string(dir[1])+`_{{ .Version }}_lambda_{{ .Arch }}"`)) {
			t.Errorf(".goreleaser.yaml builds or archives no lambda/%s (%s)", dir[1], fn)
		}
		t.Run(fn, func(t *testing.T) { checkBootstrap(t, fn) })
	}
}

func checkBootstrap(t *testing.T, function string) {
	testenv.Need(t, "make", "apt-get install make")
	dir := t.TempDir()
	cmd := exec.Command("make", "build-"+function, "ARTIFACTS_DIR="+dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make build-%s: %v\n%s", function, err, out)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 || entries[0].Name() != "bootstrap" {
		t.Fatalf("ARTIFACTS_DIR holds %v, want bootstrap alone", entries)
	}
	f, err := elf.Open(filepath.Join(dir, "bootstrap"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Machine != elf.EM_AARCH64 || f.Class != elf.ELFCLASS64 {
		t.Errorf("bootstrap is %v %v, want arm64", f.Class, f.Machine)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("bootstrap is dynamically linked (%v)", p.Type)
		}
	}
	if s := f.Section(".symtab"); s != nil {
		t.Error("bootstrap is not stripped (has .symtab)")
	}
	info, _ := os.Stat(filepath.Join(dir, "bootstrap"))
	if info.Mode()&0o111 == 0 {
		t.Error("bootstrap is not executable")
	}
}

// The release's version is said alike everywhere a user reads it: the
// changelog's latest release, the Serverless Application Repository
// listing, and the image the examples run.
func TestReleaseMetadataAgrees(t *testing.T) {
	app := cfn.Get(samtemplate.New("template.yaml").Raw(t, nil), "Metadata", "AWS::ServerlessRepo::Application")
	version, _ := cfn.Get(app, "SemanticVersion").(string)
	if cfn.Get(app, "SpdxLicenseId") != "Apache-2.0" || version == "" {
		t.Fatalf("SAR metadata %v", app)
	}
	for _, key := range []string{"LicenseUrl", "ReadmeUrl"} {
		if _, err := os.Stat(fmt.Sprint(cfn.Get(app, key))); err != nil {
			t.Errorf("%s: %v", key, err)
		}
	}
	changelog, err := os.ReadFile("CHANGELOG.md")
	if err != nil {
		t.Fatal(err)
	}
	latest := regexp.MustCompile(`(?m)^## \[(\d+\.\d+\.\d+)\]`).FindSubmatch(changelog)
	if latest == nil || string(latest[1]) != version {
		t.Errorf("CHANGELOG.md's latest release %q, SAR SemanticVersion %q", latest, version)
	}
	for _, f := range []string{"examples/sidecar-task-definition.json", "examples/healthcheck.Dockerfile"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), "ghcr.io/bastion-ttl/supervisor:v"+version) {
			t.Errorf("%s does not run the released image ghcr.io/bastion-ttl/supervisor:v%s", f, version)
		}
	}
}
