// Package ssmplugin is a stand-in for AWS's session-manager-plugin, the
// program the AWS CLI (and bastion-ttl connect) hands a started session to.
// It reads the same arguments in either form the real one takes (the
// session as JSON, or the name of the environment variable
// AWS_SSM_START_SESSION_RESPONSE that holds it, for plugins newer than
// 1.2.497.0), checks them, fetches the session from the SSM stand-in's
// stream URL with its token, and then does what the session is for: a port
// forward listens on the local port and forwards each connection to the
// target (the remote host, or the task's own port), so bytes really move;
// an ECS Exec shell echoes its input. Its main is under
// session-manager-plugin/, which tests build; the demo calls Run in process.
package ssmplugin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The environment the stand-in reads.
const (
	// EnvVersion is what --version answers (default DefaultVersion).
	EnvVersion = "SSM_PLUGIN_STANDIN_VERSION"
	// EnvTaskHost is where the task's own port is (AWS-StartPortForwardingSession): default 127.0.0.1.
	EnvTaskHost = "SSM_PLUGIN_STANDIN_TASK_HOST"
	// EnvExitOnce names a file: when it does not exist, the plugin creates
	// it and exits 1 after its first forwarded connection closes, as a
	// session that times out does.
	EnvExitOnce = "SSM_PLUGIN_STANDIN_EXIT_ONCE"
	// EnvLog names a file the plugin appends what it was given to, one JSON line a start.
	EnvLog = "SSM_PLUGIN_STANDIN_LOG"
	// ResponseVar is the variable newer plugins read the session from.
	ResponseVar = "AWS_SSM_START_SESSION_RESPONSE"
)

// DefaultVersion is a plugin newer than 1.2.497.0.
const DefaultVersion = "1.2.707.0"

// Started is what the plugin was given, as it logs it.
type Started struct {
	Form      string              `json:"form"` // "json" or "env"
	SessionID string              `json:"sessionId"`
	Region    string              `json:"region"`
	Operation string              `json:"operation"`
	Profile   string              `json:"profile"`
	Target    string              `json:"target"`
	Document  string              `json:"document"`
	Params    map[string][]string `json:"parameters"`
	Endpoint  string              `json:"endpoint"`
}

// Run is the plugin's main: args without the program name. It returns the
// exit code; ctx's end is a Ctrl-C (exit 0).
func Run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) int {
	version := getenv(EnvVersion)
	if version == "" {
		version = DefaultVersion
	}
	if len(args) == 1 && args[0] == "--version" {
		fmt.Fprintln(stdout, version)
		return 0
	}
	st, answer, err := parseArgs(args, getenv, version)
	if err != nil {
		fmt.Fprintln(stderr, "session-manager-plugin:", err)
		return 2
	}
	if p := getenv(EnvLog); p != "" {
		if f, err := os.OpenFile(p, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644); err == nil {
			_ = json.NewEncoder(f).Encode(st)
			f.Close()
		}
	}
	// The data channel: the session must be one SSM opened, and live.
	if err := fetchSession(ctx, answer); err != nil {
		fmt.Fprintln(stderr, "session-manager-plugin:", err)
		return 1
	}
	fmt.Fprintf(stdout, "\nStarting session with SessionId: %s\n", st.SessionID)
	if st.Document == "" {
		return shell(ctx, stdin, stdout)
	}
	return forward(ctx, st, getenv, stdout, stderr)
}

type answerDoc struct {
	SessionID  string `json:"SessionId"`
	TokenValue string `json:"TokenValue"`
	StreamURL  string `json:"StreamUrl"`
}

func parseArgs(args []string, getenv func(string) string, version string) (Started, answerDoc, error) {
	var st Started
	var ans answerDoc
	if len(args) != 6 {
		return st, ans, fmt.Errorf("want 6 arguments (answer, region, StartSession, profile, request, endpoint), got %d: %q", len(args), args)
	}
	raw := args[0]
	st.Form = "json"
	if raw == ResponseVar {
		if !newer(version, "1.2.497.0") {
			return st, ans, fmt.Errorf("plugin %s reads the session from its first argument, not from %s", version, ResponseVar)
		}
		st.Form, raw = "env", getenv(ResponseVar)
	}
	if err := json.Unmarshal([]byte(raw), &ans); err != nil {
		return st, ans, fmt.Errorf("the session (%s form): %v", st.Form, err)
	}
	if ans.SessionID == "" || ans.TokenValue == "" || ans.StreamURL == "" {
		return st, ans, fmt.Errorf("the session lacks SessionId, TokenValue or StreamUrl: %s", raw)
	}
	st.SessionID, st.Region, st.Operation, st.Profile, st.Endpoint = ans.SessionID, args[1], args[2], args[3], args[5]
	if st.Region == "" || st.Operation != "StartSession" || !strings.HasPrefix(st.Endpoint, "http") {
		return st, ans, fmt.Errorf("region %q, operation %q, endpoint %q: want a region, StartSession and a URL", st.Region, st.Operation, st.Endpoint)
	}
	var req struct {
		Target       string
		DocumentName string
		Parameters   map[string][]string
	}
	if err := json.Unmarshal([]byte(args[4]), &req); err != nil {
		return st, ans, fmt.Errorf("the request: %v", err)
	}
	if !strings.HasPrefix(req.Target, "ecs:") {
		return st, ans, fmt.Errorf("target %q is not an ECS target", req.Target)
	}
	st.Target, st.Document, st.Params = req.Target, req.DocumentName, req.Parameters
	return st, ans, nil
}

// newer reports whether version a is above b, dotted numbers compared in turn.
func newer(a, b string) bool {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
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

func fetchSession(ctx context.Context, ans answerDoc) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, ans.StreamURL, nil)
	if err != nil {
		return fmt.Errorf("stream URL %q: %v", ans.StreamURL, err)
	}
	req.Header.Set("Authorization", ans.TokenValue)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("open the data channel: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("open the data channel: %s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	return nil
}

func one(params map[string][]string, key string) string {
	if v := params[key]; len(v) == 1 {
		return v[0]
	}
	return ""
}

func forward(ctx context.Context, st Started, getenv func(string) string, stdout, stderr io.Writer) int {
	port := one(st.Params, "portNumber")
	host := one(st.Params, "host")
	switch st.Document {
	case "AWS-StartPortForwardingSessionToRemoteHost":
		if host == "" {
			fmt.Fprintln(stderr, "session-manager-plugin: no host parameter")
			return 2
		}
	case "AWS-StartPortForwardingSession":
		host = getenv(EnvTaskHost)
		if host == "" {
			host = "127.0.0.1"
		}
	default:
		fmt.Fprintf(stderr, "session-manager-plugin: document %q is not a port forward\n", st.Document)
		return 2
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		fmt.Fprintf(stderr, "session-manager-plugin: portNumber %q\n", port)
		return 2
	}
	local := one(st.Params, "localPortNumber")
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", local))
	if err != nil {
		fmt.Fprintln(stderr, "session-manager-plugin:", err)
		return 1
	}
	defer ln.Close()
	_, bound, _ := net.SplitHostPort(ln.Addr().String())
	fmt.Fprintf(stdout, "Port %s opened for sessionId %s.\nWaiting for connections...\n", bound, st.SessionID)
	target := net.JoinHostPort(host, port)
	exitOnce := getenv(EnvExitOnce)
	dropped := make(chan struct{})
	var dropOnce sync.Once
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			fmt.Fprintf(stdout, "\nConnection accepted for session [%s]\n", st.SessionID)
			go func() {
				pipe(conn, target, stderr)
				if exitOnce == "" {
					return
				}
				if _, err := os.Stat(exitOnce); errors.Is(err, os.ErrNotExist) {
					_ = os.WriteFile(exitOnce, nil, 0o644)
					dropOnce.Do(func() { close(dropped) })
				}
			}()
		}
	}()
	select {
	case <-ctx.Done():
		return 0
	case <-dropped:
		fmt.Fprintf(stderr, "\nSessionId: %s : session timed out\n", st.SessionID)
		return 1
	}
}

// pipe copies conn to and from the target until both sides are done.
func pipe(conn net.Conn, target string, stderr io.Writer) {
	defer conn.Close()
	up, err := net.DialTimeout("tcp", target, 5*time.Second)
	if err != nil {
		fmt.Fprintf(stderr, "session-manager-plugin: dial %s: %v\n", target, err)
		return
	}
	defer up.Close()
	done := make(chan struct{}, 2)
	cp := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		if c, ok := dst.(*net.TCPConn); ok {
			_ = c.CloseWrite()
		}
		done <- struct{}{}
	}
	go cp(up, conn)
	go cp(conn, up)
	<-done
	<-done
}

// shell is an ECS Exec session's stand-in: each line in comes back out.
func shell(ctx context.Context, stdin io.Reader, stdout io.Writer) int {
	lines := make(chan string)
	go func() {
		defer close(lines)
		buf := make([]byte, 4096)
		for {
			n, err := stdin.Read(buf)
			if n > 0 {
				lines <- string(buf[:n])
			}
			if err != nil {
				return
			}
		}
	}()
	fmt.Fprint(stdout, "# ")
	for {
		select {
		case <-ctx.Done():
			return 0
		case l, ok := <-lines:
			if !ok {
				fmt.Fprintln(stdout, "\nExiting session")
				return 0
			}
			fmt.Fprint(stdout, l)
		}
	}
}
