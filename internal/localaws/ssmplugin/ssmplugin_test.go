package ssmplugin

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// The stand-in reads both forms of the session, and refuses what the real
// plugin would not take.
func TestParseArgs(t *testing.T) {
	answer := `{"SessionId":"s-1","TokenValue":"tok","StreamUrl":"http://127.0.0.1:1/v1/data-channel/s-1"}`
	request := `{"Target":"ecs:bastions_t_r","DocumentName":"AWS-StartPortForwardingSession","Parameters":{"portNumber":["22"],"localPortNumber":["2222"]}}`
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	st, _, err := parseArgs([]string{answer, "eu-west-1", "StartSession", "", request, "https://ssm.eu-west-1.amazonaws.com"}, env(nil), "1.2.497.0")
	if err != nil || st.Form != "json" || st.SessionID != "s-1" || st.Params["localPortNumber"][0] != "2222" {
		t.Fatalf("JSON form: %+v, %v", st, err)
	}
	st, _, err = parseArgs([]string{ResponseVar, "eu-west-1", "StartSession", "dev", request, "https://ssm.eu-west-1.amazonaws.com"}, env(map[string]string{ResponseVar: answer}), DefaultVersion)
	if err != nil || st.Form != "env" || st.Profile != "dev" {
		t.Fatalf("env form: %+v, %v", st, err)
	}
	for name, args := range map[string][]string{
		"env form to an old plugin": {ResponseVar, "eu-west-1", "StartSession", "", request, "https://x"},
		"five arguments":            {answer, "eu-west-1", "StartSession", request, "https://x"},
		"not StartSession":          {answer, "eu-west-1", "ExecuteCommand", "", request, "https://x"},
		"no token":                  {`{"SessionId":"s","StreamUrl":"u"}`, "eu-west-1", "StartSession", "", request, "https://x"},
		"not an ECS target":         {answer, "eu-west-1", "StartSession", "", `{"Target":"i-0123"}`, "https://x"},
	} {
		if _, _, err := parseArgs(args, env(map[string]string{ResponseVar: answer}), "1.2.497.0"); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	var out bytes.Buffer
	if code := Run(context.Background(), []string{"--version"}, env(map[string]string{EnvVersion: "1.2.497.0"}), nil, &out, &out); code != 0 || strings.TrimSpace(out.String()) != "1.2.497.0" {
		t.Fatalf("--version: %d %q", code, out.String())
	}
}
