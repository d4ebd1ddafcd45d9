package launcher

import (
	"strings"
	"testing"
)

// The plugin's arguments, as the AWS CLI builds them: the session as JSON
// up to plugin 1.2.497.0, the variable's name (and the variable) above it.
func TestPluginArgs(t *testing.T) {
	answer := []byte(`{"SessionId":"s-1","TokenValue":"tok","StreamUrl":"wss://x"}`)
	request := []byte(`{"Target":"ecs:c_t_r"}`)
	for _, tc := range []struct {
		version string
		first   string
		env     []string
	}{
		{"1.2.497.0", string(answer), nil},
		{"1.2.463.0", string(answer), nil},
		{"1.2.497.1", responseVar, []string{responseVar + "=" + string(answer)}},
		{"1.2.707.0\n", responseVar, []string{responseVar + "=" + string(answer)}},
		{"1.3.0.0", responseVar, []string{responseVar + "=" + string(answer)}},
	} {
		args, env := pluginArgs(tc.version, answer, request, "eu-west-1", "dev", "https://ecs.eu-west-1.amazonaws.com")
		want := []string{tc.first, "eu-west-1", "StartSession", "dev", string(request), "https://ecs.eu-west-1.amazonaws.com"}
		if strings.Join(args, "|") != strings.Join(want, "|") || strings.Join(env, "|") != strings.Join(tc.env, "|") {
			t.Errorf("version %q: args %q env %q; want %q %q", tc.version, args, env, want, tc.env)
		}
	}
}
