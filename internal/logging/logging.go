// Package logging builds the log/slog logger every binary of the project
// uses: JSON (or text) to one writer, level chosen by name.
package logging

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
)

// Level parses debug, info, warn or error (any case).
func Level(name string) (slog.Level, error) {
	var l slog.Level
	switch strings.ToLower(name) {
	case "debug", "info", "warn", "error":
		err := l.UnmarshalText([]byte(name))
		return l, err
	}
	return l, fmt.Errorf("unknown level %q (use debug, info, warn or error)", name)
}

// CheckFormat accepts json or text.
func CheckFormat(format string) error {
	if format != "json" && format != "text" {
		return fmt.Errorf("unknown format %q (use json or text)", format)
	}
	return nil
}

// New returns a logger writing format ("json" or "text") to w at level.
func New(w io.Writer, format string, level slog.Level) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}
