package startcache

import (
	"os"
	"testing"
	"time"
)

func TestSaveLoad(t *testing.T) {
	dir := t.TempDir()
	src := "http://169.254.170.2/v4/abc/task\x00"
	p := Path(dir, src)
	if p == Path(dir, src+"ssh") {
		t.Fatal("different sources share a path")
	}
	if _, ok := Load(p, src); ok {
		t.Fatal("loaded a missing file")
	}
	e := Entry{Source: src, TaskARN: "arn:aws:ecs:r:1:task/c/x", StartedAt: time.Date(2026, 1, 1, 0, 0, 0, 5, time.UTC)}
	if err := Save(p, e); err != nil {
		t.Fatal(err)
	}
	got, ok := Load(p, src)
	if !ok || got.TaskARN != e.TaskARN || !got.StartedAt.Equal(e.StartedAt) {
		t.Fatalf("Load = %+v, %v", got, ok)
	}
	if _, ok := Load(p, "other source"); ok {
		t.Fatal("entry served for another source")
	}
	for _, junk := range []string{"", "{", `{"source":"` + "x" + `"}`, `{"source":"http://169.254.170.2/v4/abc/task\u0000","taskArn":"a"}`} {
		_ = os.WriteFile(p, []byte(junk), 0o600)
		if _, ok := Load(p, src); ok {
			t.Fatalf("loaded junk %q", junk)
		}
	}
}
