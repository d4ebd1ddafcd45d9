// Package filterpattern matches CloudWatch Logs JSON filter patterns
// ({ $.status = 429 }), so that a test can feed the template's metric
// filters the log lines they are meant to count.
//
// Test support only, like the rest of internal/testenv.
package filterpattern

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode"
)

// Pattern is a CloudWatch Logs JSON filter pattern ({ $.status = 429 }),
// compiled. The syntax is CloudWatch's ("Filter pattern
// syntax", "Using filter patterns to match terms in JSON log events"):
// property selectors ($.a.b, $.a[0]), = != < > <= >=, a quoted or bare
// string with * wildcards, a number, IS NULL / IS TRUE / IS FALSE, NOT
// EXISTS, && and || (&& binds first) and parentheses.
//
// Where CloudWatch's documentation leaves a case open, it takes the strict
// reading, so that a pattern that passes here matches in CloudWatch too: a
// quoted string matches only a JSON string ("429" never the number 429), a
// number only a JSON number, and a property that is absent makes every
// comparison false, != included.
type Pattern struct{ root node }

type node interface{ eval(event any) bool }

// Compile compiles a JSON filter pattern; anything else is an error.
func Compile(pattern string) (*Pattern, error) {
	p := strings.TrimSpace(pattern)
	if !strings.HasPrefix(p, "{") || !strings.HasSuffix(p, "}") {
		return nil, fmt.Errorf("%q: not a JSON filter pattern ({ ... })", pattern)
	}
	toks, err := lexPattern(p[1 : len(p)-1])
	if err != nil {
		return nil, fmt.Errorf("%q: %w", pattern, err)
	}
	ps := &patternParser{toks: toks}
	root, err := ps.or()
	if err == nil && ps.pos < len(ps.toks) {
		err = fmt.Errorf("unexpected %q", ps.toks[ps.pos].text)
	}
	if err != nil {
		return nil, fmt.Errorf("%q: %w", pattern, err)
	}
	return &Pattern{root}, nil
}

// Matches says whether a log event (one line) is counted: only a JSON
// object can match a JSON pattern.
func (f *Pattern) Matches(line string) bool {
	var event any
	dec := json.NewDecoder(strings.NewReader(line))
	dec.UseNumber()
	if err := dec.Decode(&event); err != nil {
		return false
	}
	if _, ok := event.(map[string]any); !ok {
		return false
	}
	return f.root.eval(event)
}

type token struct {
	kind string // sel, op, str, bare, num, (, ), &&, ||, word
	text string
}

var numberRe = regexp.MustCompile(`^-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$`)

func lexPattern(s string) ([]token, error) {
	var toks []token
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n':
			i++
		case c == '(' || c == ')':
			toks = append(toks, token{string(c), string(c)})
			i++
		case strings.HasPrefix(s[i:], "&&") || strings.HasPrefix(s[i:], "||"):
			toks = append(toks, token{s[i : i+2], s[i : i+2]})
			i += 2
		case strings.HasPrefix(s[i:], "!=") || strings.HasPrefix(s[i:], "<=") || strings.HasPrefix(s[i:], ">="):
			toks = append(toks, token{"op", s[i : i+2]})
			i += 2
		case c == '=' || c == '<' || c == '>':
			toks = append(toks, token{"op", string(c)})
			i++
		case c == '"':
			var b strings.Builder
			j := i + 1
			for ; j < len(s) && s[j] != '"'; j++ {
				if s[j] == '\\' && j+1 < len(s) {
					j++
				}
				b.WriteByte(s[j])
			}
			if j == len(s) {
				return nil, fmt.Errorf("unterminated string at %d", i)
			}
			toks = append(toks, token{"str", b.String()})
			i = j + 1
		default:
			j := i
			for j < len(s) && !strings.ContainsRune(" \t\n()=!<>&|\"", rune(s[j])) {
				j++
			}
			if j == i {
				return nil, fmt.Errorf("unexpected %q at %d", c, i)
			}
			word := s[i:j]
			kind := "bare"
			switch {
			case strings.HasPrefix(word, "$"):
				kind = "sel"
			case numberRe.MatchString(word):
				kind = "num"
			case word == "IS" || word == "NOT" || word == "NULL" || word == "TRUE" || word == "FALSE" || word == "EXISTS":
				kind = "word"
			}
			toks = append(toks, token{kind, word})
			i = j
		}
	}
	return toks, nil
}

type patternParser struct {
	toks []token
	pos  int
}

func (p *patternParser) peek() token {
	if p.pos < len(p.toks) {
		return p.toks[p.pos]
	}
	return token{}
}

func (p *patternParser) next() token { t := p.peek(); p.pos++; return t }

type orNode []node
type andNode []node

func (n orNode) eval(e any) bool {
	for _, c := range n {
		if c.eval(e) {
			return true
		}
	}
	return false
}

func (n andNode) eval(e any) bool {
	for _, c := range n {
		if !c.eval(e) {
			return false
		}
	}
	return true
}

func (p *patternParser) or() (node, error) {
	var n orNode
	for {
		a, err := p.and()
		if err != nil {
			return nil, err
		}
		n = append(n, a)
		if p.peek().kind != "||" {
			break
		}
		p.next()
	}
	if len(n) == 1 {
		return n[0], nil
	}
	return n, nil
}

func (p *patternParser) and() (node, error) {
	var n andNode
	for {
		a, err := p.unary()
		if err != nil {
			return nil, err
		}
		n = append(n, a)
		if p.peek().kind != "&&" {
			break
		}
		p.next()
	}
	if len(n) == 1 {
		return n[0], nil
	}
	return n, nil
}

func (p *patternParser) unary() (node, error) {
	if p.peek().kind == "(" {
		p.next()
		n, err := p.or()
		if err != nil {
			return nil, err
		}
		if p.next().kind != ")" {
			return nil, fmt.Errorf("missing )")
		}
		return n, nil
	}
	sel := p.next()
	if sel.kind != "sel" {
		return nil, fmt.Errorf("want a property selector ($.name), got %q", sel.text)
	}
	path, err := parseSelector(sel.text)
	if err != nil {
		return nil, err
	}
	switch t := p.next(); {
	case t.kind == "word" && t.text == "IS":
		switch w := p.next(); w.text {
		case "NULL":
			return check{path, func(v any, ok bool) bool { return ok && v == nil }}, nil
		case "TRUE", "FALSE":
			want := w.text == "TRUE"
			return check{path, func(v any, ok bool) bool { b, isBool := v.(bool); return ok && isBool && b == want }}, nil
		default:
			return nil, fmt.Errorf("IS %q", w.text)
		}
	case t.kind == "word" && t.text == "NOT":
		if w := p.next(); w.text != "EXISTS" {
			return nil, fmt.Errorf("NOT %q", w.text)
		}
		return check{path, func(_ any, ok bool) bool { return !ok }}, nil
	case t.kind == "op":
		return comparison(path, t.text, p.next())
	default:
		return nil, fmt.Errorf("want an operator after %s, got %q", sel.text, t.text)
	}
}

// check applies test to the value at path (ok false: no such property).
type check struct {
	path []any // string keys, int indexes
	test func(v any, ok bool) bool
}

func (c check) eval(e any) bool {
	v, ok := lookup(e, c.path)
	return c.test(v, ok)
}

func comparison(path []any, op string, val token) (node, error) {
	switch val.kind {
	case "num":
		want, _ := strconv.ParseFloat(val.text, 64)
		cmp := map[string]func(a, b float64) bool{
			"=": func(a, b float64) bool { return a == b }, "!=": func(a, b float64) bool { return a != b },
			"<": func(a, b float64) bool { return a < b }, ">": func(a, b float64) bool { return a > b },
			"<=": func(a, b float64) bool { return a <= b }, ">=": func(a, b float64) bool { return a >= b },
		}[op]
		return check{path, func(v any, ok bool) bool {
			n, isNum := v.(json.Number)
			if !ok || !isNum {
				return false
			}
			f, err := n.Float64()
			return err == nil && cmp(f, want)
		}}, nil
	case "str", "bare":
		if op != "=" && op != "!=" {
			return nil, fmt.Errorf("%s on a string", op)
		}
		re := wildcard(val.text)
		return check{path, func(v any, ok bool) bool {
			s, isStr := v.(string)
			if !ok || !isStr {
				return false
			}
			return re.MatchString(s) == (op == "=")
		}}, nil
	}
	return nil, fmt.Errorf("want a value after %s, got %q", op, val.text)
}

// wildcard is the whole-value match of a pattern string, * for any run of
// characters.
func wildcard(s string) *regexp.Regexp {
	parts := strings.Split(s, "*")
	for i, p := range parts {
		parts[i] = regexp.QuoteMeta(p)
	}
	return regexp.MustCompile(`^(?s)` + strings.Join(parts, ".*") + `$`)
}

var selectorPart = regexp.MustCompile(`^(?:\.([A-Za-z_@][A-Za-z0-9_@-]*)|\[([0-9]+)\])`)

func parseSelector(s string) ([]any, error) {
	rest, path := strings.TrimPrefix(s, "$"), []any{}
	for rest != "" {
		m := selectorPart.FindStringSubmatch(rest)
		if m == nil {
			return nil, fmt.Errorf("bad property selector %q", s)
		}
		if m[1] != "" {
			path = append(path, m[1])
		} else {
			n, _ := strconv.Atoi(m[2])
			path = append(path, n)
		}
		rest = rest[len(m[0]):]
	}
	if len(path) == 0 || !unicode.IsLetter(rune(s[2])) && s[2] != '_' && s[2] != '@' {
		return nil, fmt.Errorf("bad property selector %q", s)
	}
	return path, nil
}

func lookup(v any, path []any) (any, bool) {
	for _, k := range path {
		switch k := k.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				return nil, false
			}
			if v, ok = m[k]; !ok {
				return nil, false
			}
		case int:
			a, ok := v.([]any)
			if !ok || k >= len(a) {
				return nil, false
			}
			v = a[k]
		}
	}
	return v, true
}
