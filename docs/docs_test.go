// Package docs_test checks the documentation: docs/, and the README and
// the changelog it links from the repository's root.
package docs_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// Every relative link of the README and docs/ reaches a file, and a heading
// when it names one: the reference moved to docs/, and links rot first.
func TestDocsLinks(t *testing.T) {
	pages, _ := filepath.Glob("*.md")
	if len(pages) == 0 {
		t.Fatal("no docs/*.md")
	}
	pages = append(pages, "../README.md", "../CHANGELOG.md")
	link := regexp.MustCompile(`\]\(([^)\s]+)\)`)
	heading := regexp.MustCompile(`(?m)^#+ (.*)$`)
	anchorsOf := func(path string) map[string]bool {
		b, _ := os.ReadFile(path)
		out := map[string]bool{}
		for _, h := range heading.FindAllStringSubmatch(string(b), -1) {
			a := strings.ToLower(strings.TrimSpace(h[1]))
			a = regexp.MustCompile(`[^\w\- ]`).ReplaceAllString(a, "")
			out[strings.ReplaceAll(a, " ", "-")] = true
		}
		return out
	}
	for _, page := range pages {
		b, err := os.ReadFile(page)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range link.FindAllStringSubmatch(string(b), -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			path, anchor, _ := strings.Cut(target, "#")
			file := page
			if path != "" {
				file = filepath.Join(filepath.Dir(page), path)
			}
			if _, err := os.Stat(file); err != nil {
				t.Errorf("%s links to %s: no such file", page, target)
				continue
			}
			if anchor != "" && strings.HasSuffix(file, ".md") && !anchorsOf(file)[anchor] {
				t.Errorf("%s links to %s: no such heading", page, target)
			}
		}
	}
}
