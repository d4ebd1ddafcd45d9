package logging

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
)

func TestLevel(t *testing.T) {
	for name, want := range map[string]slog.Level{"debug": slog.LevelDebug, "INFO": slog.LevelInfo, "warn": slog.LevelWarn, "error": slog.LevelError} {
		if got, err := Level(name); err != nil || got != want {
			t.Errorf("Level(%q) = %v, %v", name, got, err)
		}
	}
	for _, bad := range []string{"", "verbose", "info+2"} {
		if _, err := Level(bad); err == nil {
			t.Errorf("Level(%q) accepted", bad)
		}
	}
}

func TestNewJSONAndText(t *testing.T) {
	var buf bytes.Buffer
	New(&buf, "json", slog.LevelInfo).Info("hello", "task_arn", "arn:x")
	New(&buf, "json", slog.LevelInfo).Debug("hidden")
	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil || line["task_arn"] != "arn:x" {
		t.Fatalf("json line %q: %v", buf.String(), err)
	}
	buf.Reset()
	New(&buf, "text", slog.LevelDebug).Debug("shown", "k", 1)
	if !strings.Contains(buf.String(), "msg=shown k=1") {
		t.Fatalf("text line %q", buf.String())
	}
	if CheckFormat("json") != nil || CheckFormat("text") != nil || CheckFormat("xml") == nil {
		t.Fatal("CheckFormat")
	}
}
