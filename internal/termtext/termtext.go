// Package termtext is the one rule for text that came from elsewhere (an
// AWS answer, a control endpoint's) on its way to a person's terminal. No
// control character (C0, DEL, C1) may reach it as it is: a terminal acts on
// them (an escape sequence sets the window title, clears the screen, writes
// the clipboard). No format character (Unicode Cf) either: the bidi
// controls U+202A-U+202E and U+2066-U+2069 reorder what a person reads, and
// zero-width ones hide what is there. Nor a byte that is not UTF-8: a lone
// 0x9b is CSI to an 8-bit terminal.
//
// Checks that refuse such text (the control endpoint's contract, the stop
// API's reasons) use HasUnsafe; printers that show it anyway (the launcher)
// use Safe.
package termtext

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// IsUnsafe reports whether r may not reach a terminal as it is.
func IsUnsafe(r rune) bool {
	return unicode.IsControl(r) || unicode.Is(unicode.Cf, r)
}

// HasUnsafe reports whether s holds a character that may not reach a
// terminal as it is, or a byte that is not UTF-8.
func HasUnsafe(s string) bool {
	return !utf8.ValidString(s) || strings.ContainsFunc(s, IsUnsafe)
}

// Safe is s with each unsafe character replaced by its Go escape (\x1b,
// \u009b, \u202e), and each byte that is not UTF-8 by \xNN. A visible
// marker rather than nothing: a person sees that something was there, and
// text closed up around a removed sequence cannot pass for other text.
// ASCII, so any console shows it.
func Safe(s string) string {
	if !HasUnsafe(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r < 0x80 && IsUnsafe(r):
			fmt.Fprintf(&b, `\x%02x`, r)
		case r <= 0xffff && IsUnsafe(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		case IsUnsafe(r):
			fmt.Fprintf(&b, `\U%08x`, r)
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}
