package termtext_test

import (
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/bastion-ttl/bastion-ttl/internal/termtext"
)

// The rule, character by character: what a terminal acts on (C0, DEL, C1),
// what reorders or hides text (format characters: the bidi controls, the
// zero-width ones), and bytes that are not UTF-8 are shown as escapes;
// everything else, non-ASCII letters and U+FFFD written out included, is
// left as it is.
func TestSafe(t *testing.T) {
	for _, tt := range []struct {
		in, want string
	}{
		{"bastion-ttl: TTL 2h0m0s expired", "bastion-ttl: TTL 2h0m0s expired"},
		{"", ""},
		{"Essential container in task exited", "Essential container in task exited"},
		{"AROAEXAMPLE:alice@example.com", "AROAEXAMPLE:alice@example.com"},
		{"café Ω 日本 \ufffd", "café Ω 日本 \ufffd"}, // letters, and U+FFFD itself, are shown
		{"\x1b]0;pwned\x07\x1b[2J", `\x1b]0;pwned\x07\x1b[2J`},
		{"\x00\x01\x08\x0a\x0d\x1f", `\x00\x01\x08\x0a\x0d\x1f`}, // C0, newline and carriage return too
		{"a\tb", `a\x09b`},
		{"del\x7f", `del\x7f`},
		{"\u0080\u009b2J\u009f", `\u0080\u009b2J\u009f`}, // C1, as UTF-8
		{"\xc2\x9b2J", `\u009b2J`},
		{"lone \x9b2J and \xff", `lone \x9b2J and \xff`}, // not UTF-8
		{"\u202aa\u202bb\u202cc\u202dd\u202ee", `\u202aa\u202bb\u202cc\u202dd\u202ee`},
		{"\u2066a\u2067b\u2068c\u2069", `\u2066a\u2067b\u2068c\u2069`},
		{"ad\u200bmin\u200d\ufeff\u00ad", `ad\u200bmin\u200d\ufeff\u00ad`}, // zero-width and soft hyphen
		{"tag \U000e0041", `tag \U000e0041`},                               // a tag character (Cf)
	} {
		got := termtext.Safe(tt.in)
		if got != tt.want {
			t.Errorf("Safe(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if termtext.HasUnsafe(got) {
			t.Errorf("Safe(%q) = %q still has an unsafe character", tt.in, got)
		}
		if unsafe := got != tt.in; termtext.HasUnsafe(tt.in) != unsafe {
			t.Errorf("HasUnsafe(%q) = %v, want %v", tt.in, !unsafe, unsafe)
		}
	}
}

// Every rune of the ranges the rule names is unsafe; the printable
// neighbours of the bidi controls are not.
func TestIsUnsafe(t *testing.T) {
	var unsafe []rune
	for r := rune(0); r <= 0x1f; r++ {
		unsafe = append(unsafe, r)
	}
	for r := rune(0x7f); r <= 0x9f; r++ {
		unsafe = append(unsafe, r)
	}
	unsafe = append(unsafe, 0x202a, 0x202b, 0x202c, 0x202d, 0x202e, 0x2066, 0x2067, 0x2068, 0x2069, 0x200e, 0x200f, 0x061c)
	for _, r := range unsafe {
		if !termtext.IsUnsafe(r) {
			t.Errorf("IsUnsafe(%U) = false", r)
		}
	}
	for _, r := range []rune{' ', '~', 0xa0, 0xe9, 0x2030, 0x2070, 0xfffd, 0x1f600} {
		if termtext.IsUnsafe(r) {
			t.Errorf("IsUnsafe(%U) = true", r)
		}
	}
}

// Whatever goes in, what comes out is valid UTF-8 with no unsafe character.
func FuzzSafe(f *testing.F) {
	f.Add("\x1b]0;pwned\x07")
	f.Add("\xc2\x9b\xe2\x80\xae\xff")
	f.Fuzz(func(t *testing.T, s string) {
		got := termtext.Safe(s)
		if !utf8.ValidString(got) || termtext.HasUnsafe(got) || strings.ContainsAny(got, "\x1b\x07\u009b") {
			t.Fatalf("Safe(%q) = %q", s, got)
		}
		if !termtext.HasUnsafe(s) && got != s {
			t.Fatalf("Safe changed safe text %q to %q", s, got)
		}
	})
}

func ExampleSafe() {
	fmt.Println(termtext.Safe("stopped by ops\x1b]0;pwned\x07 \u202eevil"))
	// Output: stopped by ops\x1b]0;pwned\x07 \u202eevil
}
