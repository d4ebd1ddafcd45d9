package metrics

import (
	"bytes"
	"flag"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/bastion-ttl/bastion-ttl/internal/testenv/emfcheck"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// line is the JSON log line that attrs make, without the time attribute.
func line(msg string, attrs ...any) []byte {
	var b bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&b, &slog.HandlerOptions{ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
		if len(groups) == 0 && a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}}))
	log.Info(msg, attrs...)
	return b.Bytes()
}

func TestGolden(t *testing.T) {
	now := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	for name, got := range map[string][]byte{
		"terminate.golden": line("terminate request", append([]any{"outcome", "stopped"}, Attrs(now, "bastion-ttl-TerminateFunction-AbC", "bastions", One("Accepted"), One("StoppedTTL"))...)...),
		"sweep.golden": line("sweep done", append([]any{"stopped", 2}, Attrs(now, "bastion-ttl-SweepFunction-XyZ", "",
			Metric{"Scanned", Count, 120}, Metric{"Stopped", Count, 2}, Metric{"Duration", Milliseconds, 431})...)...),
	} {
		path := filepath.Join("testdata", name)
		if *update {
			if err := os.WriteFile(path, got, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s:\n got %s\nwant %s", name, got, want)
		}
		if err := emfcheck.Check(got); err != nil {
			t.Errorf("%s is not an EMF document: %v", name, err)
		}
	}
}

func TestNoMetricsNoDocument(t *testing.T) {
	if a := Attrs(time.Now(), "fn", "c"); a != nil {
		t.Fatalf("Attrs without metrics = %v", a)
	}
}
