package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// The demo's whole flow, as `make demo` runs it, with a 1 s TTL.
func TestDemo(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	var out bytes.Buffer
	began := time.Now()
	if err := run(ctx, time.Second, &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if took := time.Since(began); took < time.Second {
		t.Errorf("the task was stopped after %v, before its 1s TTL", took)
	}
	for _, want := range []string{
		"signature verified", "authorized", "API answered 202", "SIGTERM: exit 0",
		"task " + taskID + " STOPPED", `bastion-ttl: TTL 1s expired (started `,
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("timeline lacks %q:\n%s", want, out.String())
		}
	}
}
