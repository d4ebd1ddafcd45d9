package launcher

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// PluginName is AWS's Session Manager plugin, which carries every session's
// stream (the launcher only opens the session, as the AWS CLI does).
const PluginName = "session-manager-plugin"

// pluginInstall is how to get the plugin, in the one line a missing one gets.
const pluginInstall = "install AWS's Session Manager plugin: https://docs.aws.amazon.com/systems-manager/latest/userguide/session-manager-working-with-install-plugin.html (macOS: brew install --cask session-manager-plugin)"

// responseVar is the variable a plugin newer than envFormSince reads the
// session from, when its first argument is this name: the session's token
// then stays out of the process list.
const (
	responseVar  = "AWS_SSM_START_SESSION_RESPONSE"
	envFormSince = "1.2.497.0"
)

// Plugin runs the session-manager-plugin.
type Plugin interface {
	// Version is what `session-manager-plugin --version` prints;
	// ErrNoPlugin when it is not installed.
	Version(ctx context.Context) (string, error)
	// Run runs it with args and extra environment until it exits; ctx's end
	// asks it to stop, as Ctrl-C does.
	Run(ctx context.Context, args, env []string, stdin io.Reader, stdout, stderr io.Writer) error
}

// ErrNoPlugin is a plugin that is not on PATH.
var ErrNoPlugin = errors.New(PluginName + " is not on PATH")

// PathPlugin is the plugin found on PATH.
type PathPlugin struct {
	// OwnGroup runs each plugin in a process group of its own, so that
	// the terminal's Ctrl-C, meant for --exec's client, leaves the forwards
	// be. Only then: in the terminal's group, a plugin also ends with it.
	OwnGroup bool
}

// Version runs the plugin with --version.
func (PathPlugin) Version(ctx context.Context) (string, error) {
	path, err := exec.LookPath(PluginName)
	if err != nil {
		return "", ErrNoPlugin
	}
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, "--version").Output()
	if err != nil {
		return "", fmt.Errorf("%s --version: %w", path, err)
	}
	return strings.TrimSpace(string(out)), nil
}

// Run starts the plugin as the AWS CLI does; ctx's end sends it SIGINT.
func (p PathPlugin) Run(ctx context.Context, args, env []string, stdin io.Reader, stdout, stderr io.Writer) error {
	path, err := exec.LookPath(PluginName)
	if err != nil {
		return ErrNoPlugin
	}
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, stdout, stderr
	cmd.Cancel = func() error {
		if runtime.GOOS == "windows" { // no SIGINT to send there
			return cmd.Process.Kill()
		}
		return cmd.Process.Signal(os.Interrupt)
	}
	cmd.WaitDelay = 5 * time.Second
	if p.OwnGroup {
		ownProcessGroup(cmd)
	}
	return cmd.Run()
}

// pluginArgs are the plugin's arguments for a started session, as the AWS
// CLI gives them: the session (as JSON, or, for plugins newer than
// 1.2.497.0, the name of the variable in env that holds it), the region,
// StartSession, the profile, the request and the endpoint.
func pluginArgs(version string, answer, request []byte, region, profile, endpoint string) (args, env []string) {
	first := string(answer)
	if versionAbove(version, envFormSince) {
		first, env = responseVar, []string{responseVar + "=" + string(answer)}
	}
	return []string{first, region, "StartSession", profile, string(request), endpoint}, env
}

// versionAbove reports whether dotted version a is above b.
func versionAbove(a, b string) bool {
	as, bs := strings.Split(strings.TrimSpace(a), "."), strings.Split(b, ".")
	for i := range max(len(as), len(bs)) {
		var x, y int
		if i < len(as) {
			x, _ = strconv.Atoi(as[i])
		}
		if i < len(bs) {
			y, _ = strconv.Atoi(bs[i])
		}
		if x != y {
			return x > y
		}
	}
	return false
}
