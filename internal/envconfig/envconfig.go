// Package envconfig fills a configuration struct from environment variables
// with caarlos0/env and reports every error by the variable's name and value,
// never by the Go field name a user cannot see.
package envconfig

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"
)

// ErrInvalid is matched (errors.Is) by every configuration error.
var ErrInvalid = errors.New("invalid configuration")

// VarError is a bad or missing value of one environment variable.
type VarError struct {
	Name   string // the variable, e.g. BASTION_TTL
	Value  string // the value as given
	Reason string // what is wrong, for a person
}

func (e *VarError) Error() string {
	if e.Value == "" {
		return fmt.Sprintf("%s: %s", e.Name, e.Reason)
	}
	return fmt.Sprintf("%s=%q: %s", e.Name, e.Value, e.Reason)
}

// Is makes errors.Is(err, ErrInvalid) true.
func (e *VarError) Is(target error) bool { return target == ErrInvalid }

// Invalid returns a *VarError.
func Invalid(name, value, reason string) error {
	return &VarError{Name: name, Value: value, Reason: reason}
}

// Parse fills cfg, a pointer to a flat struct with `env` tags, from environ.
// Errors are *VarError values (joined when there are several).
func Parse(cfg any, environ map[string]string) error {
	err := env.ParseWithOptions(cfg, env.Options{Environment: environ})
	if err == nil {
		return nil
	}
	var agg env.AggregateError
	if !errors.As(err, &agg) {
		return fmt.Errorf("envconfig: %w", err)
	}
	keys := fieldKeys(cfg)
	var out []error
	for _, e := range agg.Errors {
		out = append(out, translate(e, keys, environ))
	}
	return errors.Join(out...)
}

func translate(err error, keys map[string]string, environ map[string]string) error {
	var pe env.ParseError
	var unset env.VarIsNotSetError
	var empty env.EmptyVarError
	switch {
	case errors.As(err, &pe):
		key := keys[pe.Name]
		return Invalid(key, environ[key], parseReason(pe.Type))
	case errors.As(err, &unset):
		return Invalid(unset.Key, "", "required but not set")
	case errors.As(err, &empty):
		return Invalid(empty.Key, "", "must not be empty")
	default:
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
}

func parseReason(t reflect.Type) string {
	switch t {
	case reflect.TypeFor[time.Duration]():
		return "not a duration (use a Go duration such as 90s, 30m or 2h)"
	case reflect.TypeFor[bool]():
		return "not a boolean (use true or false)"
	default:
		return "cannot be read as " + t.String()
	}
}

// fieldKeys maps each field name of the struct behind cfg to its variable.
func fieldKeys(cfg any) map[string]string {
	t := reflect.TypeOf(cfg)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	keys := make(map[string]string, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		key, _, _ := strings.Cut(f.Tag.Get("env"), ",")
		keys[f.Name] = key
	}
	return keys
}

// Environ turns os.Environ-style "KEY=value" pairs into a map.
func Environ(pairs []string) map[string]string {
	m := make(map[string]string, len(pairs))
	for _, kv := range pairs {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return m
}
