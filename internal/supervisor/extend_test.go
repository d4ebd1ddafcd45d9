package supervisor

import (
	"strings"
	"testing"
)

// Whatever holds the control port answers supervisor extend: an error text
// with an escape sequence never reaches the terminal.
func TestExtendSquatterAnswersNeverReachTheTerminal(t *testing.T) {
	_, err := extendCLI(squatter(t), "30m")
	if err == nil || strings.Contains(err.Error(), "\x1b") || !strings.Contains(err.Error(), "answered 409") {
		t.Fatalf("extend: %q", err)
	}
}
