// Package cfn evaluates a CloudFormation template, as JSON after the SAM
// transform, the way CloudFormation does at deploy time for given parameter
// values, so that tests can hold what a stack really creates against what it
// must be.
//
// It evaluates: parameter values (given, else the Default; a
// CommaDelimitedList split into a list), every condition (Ref to a
// parameter, Condition, Fn::Equals, Fn::Not, Fn::Join), Fn::If anywhere,
// AWS::NoValue, and the Condition of resources and outputs. DanglingRefs
// finds references to what the template does not define.
//
// Resolve does not evaluate: Fn::Sub, Fn::GetAtt, Fn::Select, Fn::FindInMap
// (Mappings), Fn::And and Fn::Or (an error if a condition uses them), Ref to
// a resource or pseudo parameter; they are left as they are. Evaluate then
// turns what is left in a value (Ref, Fn::GetAtt, Fn::Sub, Fn::Join,
// Fn::Select, Fn::Split) into concrete strings, given the names a stack's
// deployment would give (physical IDs, ARNs, pseudo parameters), as the IAM
// documents a deployed stack holds. Nothing here checks a Rules assertion,
// a parameter constraint (AllowedPattern, AllowedValues) or a resource
// property, or runs a transform or macro: the SAM transform comes first
// (package samtemplate).
//
// Test support only, like the rest of internal/testenv.
package cfn

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// Template is a template, or any JSON object in it, as encoding/json
// decodes it.
type Template = map[string]any

// Resolve is tpl as CloudFormation deploys it with params (the others at
// their defaults): conditions evaluated, Fn::If branches taken,
// AWS::NoValue dropped, and the resources and outputs whose condition is
// false removed; the Conditions and Rules sections are left out. tpl is not
// changed.
func Resolve(tpl Template, params map[string]string) (Template, error) {
	r := &resolver{params: map[string]any{}, conds: map[string]bool{}}
	for name, v := range ParameterValues(tpl, params) {
		if l, ok := v.([]any); ok { // the conditions' evaluator works on []string
			ss := make([]string, len(l))
			for i, e := range l {
				ss[i] = e.(string)
			}
			r.params[name] = ss
		} else {
			r.params[name] = v
		}
	}
	conds, _ := tpl["Conditions"].(Template)
	for name := range conds {
		if err := r.condition(conds, name); err != nil {
			return nil, err
		}
	}
	out := Template{}
	for k, v := range tpl {
		if k == "Conditions" || k == "Rules" {
			continue
		}
		out[k], _ = r.walk(v)
	}
	resources := out["Resources"].(Template)
	for id, res := range resources {
		if c, ok := Get(res, "Condition").(string); ok && !r.conds[c] {
			delete(resources, id)
		}
	}
	if outs, ok := out["Outputs"].(Template); ok {
		for id, o := range outs {
			if c, ok := Get(o, "Condition").(string); ok && !r.conds[c] {
				delete(outs, id)
			}
		}
	}
	return out, nil
}

// ParameterValues are tpl's parameters as CloudFormation gives them for
// params: the value given, else the Default; a string, or for a
// CommaDelimitedList a list ([]any of strings, as encoding/json decodes one).
func ParameterValues(tpl Template, params map[string]string) map[string]any {
	out := map[string]any{}
	for name, p := range tpl["Parameters"].(Template) {
		v, ok := params[name]
		if !ok {
			v = fmt.Sprint(Get(p, "Default"))
		}
		if Get(p, "Type") == "CommaDelimitedList" {
			var l []any
			for _, s := range strings.Split(v, ",") {
				l = append(l, s)
			}
			out[name] = l
		} else {
			out[name] = v
		}
	}
	return out
}

type resolver struct {
	params map[string]any // string, or []string for a list
	conds  map[string]bool
}

func (r *resolver) condition(conds Template, name string) error {
	if _, done := r.conds[name]; done {
		return nil
	}
	v, err := r.eval(conds, conds[name])
	if err != nil {
		return fmt.Errorf("condition %s: %w", name, err)
	}
	b, ok := v.(bool)
	if !ok {
		return fmt.Errorf("condition %s is %v", name, v)
	}
	r.conds[name] = b
	return nil
}

// eval evaluates the intrinsics conditions use.
func (r *resolver) eval(conds Template, v any) (any, error) {
	m, ok := v.(Template)
	if !ok || len(m) != 1 {
		return v, nil
	}
	for fn, arg := range m {
		args := List(arg)
		switch fn {
		case "Ref":
			if p, ok := r.params[arg.(string)]; ok {
				return p, nil
			}
			return nil, fmt.Errorf("cannot evaluate Ref %v: not a parameter", arg)
		case "Condition":
			if err := r.condition(conds, arg.(string)); err != nil {
				return nil, err
			}
			return r.conds[arg.(string)], nil
		case "Fn::Equals":
			a, err1 := r.eval(conds, args[0])
			b, err2 := r.eval(conds, args[1])
			if err1 != nil || err2 != nil {
				return nil, fmt.Errorf("Fn::Equals: %v %v", err1, err2)
			}
			return fmt.Sprint(a) == fmt.Sprint(b), nil
		case "Fn::Not":
			c, err := r.eval(conds, args[0])
			return c != true, err
		case "Fn::Join":
			items, err := r.eval(conds, args[1])
			if err != nil {
				return nil, err
			}
			var parts []string
			for _, it := range List(items) {
				v, err := r.eval(conds, it)
				if err != nil {
					return nil, err
				}
				parts = append(parts, fmt.Sprint(v))
			}
			if ss, ok := items.([]string); ok {
				parts = ss
			}
			return strings.Join(parts, args[0].(string)), nil
		case "Fn::Split":
			s, err := r.eval(conds, args[1])
			if err != nil {
				return nil, err
			}
			return strings.Split(fmt.Sprint(s), args[0].(string)), nil
		case "Fn::Select":
			l, err := r.eval(conds, args[1])
			if err != nil {
				return nil, err
			}
			i, ok := args[0].(float64)
			items, isList := l.([]string)
			if !ok || !isList || int(i) >= len(items) {
				return nil, fmt.Errorf("Fn::Select %v of %v", args[0], l)
			}
			return items[int(i)], nil
		}
		return nil, fmt.Errorf("cannot evaluate %s", fn)
	}
	return nil, nil
}

// walk takes Fn::If branches and drops AWS::NoValue; keep is false for a
// value that is AWS::NoValue.
func (r *resolver) walk(v any) (any, bool) {
	switch v := v.(type) {
	case Template:
		if args, ok := v["Fn::If"].([]any); ok && len(v) == 1 {
			branch := args[2]
			if r.conds[args[0].(string)] {
				branch = args[1]
			}
			return r.walk(branch)
		}
		if v["Ref"] == "AWS::NoValue" && len(v) == 1 {
			return nil, false
		}
		out := Template{}
		for k, e := range v {
			if w, keep := r.walk(e); keep {
				out[k] = w
			}
		}
		return out, true
	case []any:
		out := []any{}
		for _, e := range v {
			if w, keep := r.walk(e); keep {
				out = append(out, w)
			}
		}
		return out, true
	}
	return v, true
}

var subRef = regexp.MustCompile(`\$\{([^!}][^}]*)\}`)

// DanglingRefs lists, sorted, every Ref, Fn::GetAtt and Fn::Sub reference
// of a resolved template to something it defines neither as a parameter nor
// as a resource ("Resources.Id -> Name"); pseudo parameters (AWS::...) and
// Fn::Sub's own variables are defined.
func DanglingRefs(tpl Template) []string {
	defined := map[string]bool{}
	for name := range tpl["Parameters"].(Template) {
		defined[name] = true
	}
	for id := range tpl["Resources"].(Template) {
		defined[id] = true
	}
	var bad []string
	check := func(name, where string) {
		name, _, _ = strings.Cut(name, ".")
		if !defined[name] && !strings.HasPrefix(name, "AWS::") {
			bad = append(bad, where+" -> "+name)
		}
	}
	var visit func(v any, where string)
	visit = func(v any, where string) {
		switch v := v.(type) {
		case Template:
			for k, e := range v {
				switch k {
				case "Ref":
					if s, ok := e.(string); ok {
						check(s, where)
					}
				case "Fn::GetAtt":
					if a := List(e); len(a) > 0 {
						check(fmt.Sprint(a[0]), where)
					}
				case "Fn::Sub":
					s, vars := e, Template{}
					if a, ok := e.([]any); ok {
						s, vars = a[0], a[1].(Template)
						visit(vars, where)
					}
					str, _ := s.(string)
					for _, m := range subRef.FindAllStringSubmatch(str, -1) {
						if _, local := vars[m[1]]; !local {
							check(m[1], where)
						}
					}
				}
				visit(e, where)
			}
		case []any:
			for _, e := range v {
				visit(e, where)
			}
		}
	}
	for _, section := range []string{"Resources", "Outputs"} {
		for id, v := range tpl[section].(Template) {
			visit(v, section+"."+id)
		}
	}
	slices.Sort(bad)
	return bad
}

// Resources are tpl's resources of type typ, by logical ID.
func Resources(tpl Template, typ string) map[string]Template {
	found := map[string]Template{}
	for id, r := range tpl["Resources"].(Template) {
		if r := r.(Template); r["Type"] == typ {
			found[id] = r
		}
	}
	return found
}

// Get follows path through nested maps of a template; nil where it ends.
func Get(v any, path ...string) any {
	for _, k := range path {
		m, ok := v.(Template)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

// List is v as a list: a lone value is a list of one, nil an empty one
// (CloudFormation accepts either where a list is meant).
func List(v any) []any {
	if l, ok := v.([]any); ok {
		return l
	}
	if v == nil {
		return nil
	}
	return []any{v}
}

var subVar = regexp.MustCompile(`\$\{([^}]*)\}`)

// Evaluate is v with every Ref, Fn::GetAtt, Fn::Sub, Fn::Join, Fn::Select
// and Fn::Split evaluated as CloudFormation would, where names holds each
// value: "Name" for a Ref (a parameter, a pseudo parameter such as
// AWS::Region, a resource's physical ID), "Name.Attribute" for a
// Fn::GetAtt. Run it on a value of a template Resolve has resolved (no
// Fn::If is left). A name names does not hold, or any other intrinsic
// function, is an error; v is not changed.
func Evaluate(v any, names map[string]any) (any, error) {
	return evaluator(names).value(v)
}

type evaluator map[string]any

func (e evaluator) lookup(name string) (any, error) {
	if v, ok := e[name]; ok {
		return v, nil
	}
	return nil, fmt.Errorf("no value for %s: add its physical name to the test", name)
}

func (e evaluator) value(v any) (any, error) {
	switch v := v.(type) {
	case Template:
		if len(v) == 1 {
			for fn, arg := range v {
				switch fn {
				case "Ref":
					return e.lookup(fmt.Sprint(arg))
				case "Fn::GetAtt":
					a := List(arg)
					return e.lookup(fmt.Sprint(a[0]) + "." + fmt.Sprint(a[1]))
				case "Fn::Sub":
					return e.sub(arg)
				case "Fn::Join":
					a := List(arg)
					items, err := e.value(a[1])
					if err != nil {
						return nil, err
					}
					var parts []string
					for _, it := range List(items) {
						parts = append(parts, fmt.Sprint(it))
					}
					return strings.Join(parts, fmt.Sprint(a[0])), nil
				case "Fn::Select":
					a := List(arg)
					items, err := e.value(a[1])
					if err != nil {
						return nil, err
					}
					i, ok := a[0].(float64)
					if l := List(items); ok && int(i) < len(l) {
						return l[int(i)], nil
					}
					return nil, fmt.Errorf("Fn::Select %v of %v", a[0], items)
				case "Fn::Split":
					a := List(arg)
					s, err := e.value(a[1])
					if err != nil {
						return nil, err
					}
					var out []any
					for _, p := range strings.Split(fmt.Sprint(s), fmt.Sprint(a[0])) {
						out = append(out, p)
					}
					return out, nil
				}
				if strings.HasPrefix(fn, "Fn::") {
					return nil, fmt.Errorf("cannot evaluate %s", fn)
				}
			}
		}
		out := Template{}
		for k, el := range v {
			w, err := e.value(el)
			if err != nil {
				return nil, err
			}
			out[k] = w
		}
		return out, nil
	case []any:
		out := []any{}
		for _, el := range v {
			w, err := e.value(el)
			if err != nil {
				return nil, err
			}
			out = append(out, w)
		}
		return out, nil
	}
	return v, nil
}

func (e evaluator) sub(arg any) (any, error) {
	s, vars := arg, Template{}
	if a, ok := arg.([]any); ok {
		s, vars = a[0], a[1].(Template)
	}
	var err error
	out := subVar.ReplaceAllStringFunc(fmt.Sprint(s), func(m string) string {
		name := m[2 : len(m)-1]
		if strings.HasPrefix(name, "!") {
			return "${" + name[1:] + "}"
		}
		var v any
		var verr error
		if local, ok := vars[name]; ok {
			v, verr = e.value(local)
		} else {
			v, verr = e.lookup(name)
		}
		if err == nil {
			err = verr // the first error: a later name must not hide it
		}
		return fmt.Sprint(v)
	})
	return out, err
}
