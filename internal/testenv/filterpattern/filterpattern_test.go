package filterpattern

import (
	"testing"
)

// The matcher itself, on the documentation's own kinds of pattern: a wrong
// matcher would make the template's filter tests prove nothing.
func TestFilterPatternMatcher(t *testing.T) {
	line := `{"eventType":"UpdateTrail","sourceIPAddress":"123.123.1.2","status":429,"code":"429","latency":1500,` +
		`"msg":"stop request answered","error":true,"none":null,"users":[{"email":"a@example.com"}],"nested":{"id":7}}`
	cases := []struct {
		pattern string
		want    bool
	}{
		{`{ $.eventType = "UpdateTrail" }`, true},
		{`{ $.eventType = UpdateTrail }`, true},
		{`{ $.eventType = "Update*" }`, true},
		{`{ $.eventType = "*Trail" }`, true},
		{`{ $.eventType = "Update" }`, false}, // whole value, not a substring
		{`{ $.eventType != "UpdateTrail" }`, false},
		{`{ $.sourceIPAddress != 123.123.* }`, false},
		{`{ $.sourceIPAddress != 124.* }`, true},
		{`{ $.status = 429 }`, true},
		{`{ $.status = "429" }`, false}, // a number is not the string "429"
		{`{ $.code = "429" }`, true},
		{`{ $.code = 429 }`, false}, // nor a string the number
		{`{ $.status >= 400 }`, true},
		{`{ $.status < 400 }`, false},
		{`{ $.latency > 1000.5 }`, true},
		{`{ $.missing != "x" }`, false}, // an absent property compares false
		{`{ $.missing NOT EXISTS }`, true},
		{`{ $.status NOT EXISTS }`, false},
		{`{ $.none IS NULL }`, true},
		{`{ $.error IS TRUE }`, true},
		{`{ $.error IS FALSE }`, false},
		{`{ $.users[0].email = "*@example.com" }`, true},
		{`{ $.users[1].email = "*" }`, false},
		{`{ $.nested.id = 7 }`, true},
		{`{ ($.status = 429) && ($.msg = "stop request answered") }`, true},
		{`{ ($.status = 429) && ($.msg = "extend request answered") }`, false},
		{`{ ($.status = 500) || ($.msg = "stop*") }`, true},
		{`{ $.status = 500 || $.status = 429 && $.code = "nope" }`, false}, // && binds first
		{`{ ($.status = 500 || $.status = 429) && $.code = "429" }`, true},
	}
	for _, c := range cases {
		f, err := Compile(c.pattern)
		if err != nil {
			t.Errorf("%s: %v", c.pattern, err)
			continue
		}
		if got := f.Matches(line); got != c.want {
			t.Errorf("%s matches = %v, want %v", c.pattern, got, c.want)
		}
	}
	f, _ := Compile(`{ $.status = 429 }`)
	for _, notJSON := range []string{`status 429`, `[429]`, `"429"`, ``} {
		if f.Matches(notJSON) {
			t.Errorf("%q matches a JSON pattern", notJSON)
		}
	}
	for _, bad := range []string{`status = 429`, `{ status = 429 }`, `{ $.status = }`, `{ ($.status = 429 }`, `{ $.msg = "open }`, `{ $.msg < "a" }`} {
		if _, err := Compile(bad); err == nil {
			t.Errorf("%s compiles", bad)
		}
	}
}
