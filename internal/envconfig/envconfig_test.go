package envconfig

import (
	"errors"
	"strings"
	"testing"
	"time"
)

type sample struct {
	TTL     time.Duration `env:"APP_TTL" envDefault:"30m"`
	DryRun  bool          `env:"APP_DRY_RUN"`
	Cluster string        `env:"APP_CLUSTER,required"`
}

func TestParseNamesTheVariable(t *testing.T) {
	tests := []struct {
		name    string
		environ map[string]string
		want    []string
	}{
		{"bad duration", map[string]string{"APP_TTL": "abc", "APP_CLUSTER": "c"}, []string{`APP_TTL="abc"`, "not a duration"}},
		{"bad bool", map[string]string{"APP_DRY_RUN": "maybe", "APP_CLUSTER": "c"}, []string{`APP_DRY_RUN="maybe"`, "not a boolean"}},
		{"missing required", map[string]string{}, []string{"APP_CLUSTER", "required"}},
		{"two at once", map[string]string{"APP_TTL": "1y"}, []string{`APP_TTL="1y"`, "APP_CLUSTER"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var cfg sample
			err := Parse(&cfg, tt.environ)
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if strings.Contains(err.Error(), `field "TTL"`) {
				t.Errorf("error names the Go field: %q", err)
			}
		})
	}
}

func TestParseDefaultsAndValues(t *testing.T) {
	var cfg sample
	if err := Parse(&cfg, map[string]string{"APP_CLUSTER": "bastions", "APP_DRY_RUN": "true"}); err != nil {
		t.Fatal(err)
	}
	if cfg.TTL != 30*time.Minute || !cfg.DryRun || cfg.Cluster != "bastions" {
		t.Fatalf("cfg = %+v", cfg)
	}
}

func TestEnviron(t *testing.T) {
	m := Environ([]string{"A=1", "B=x=y", "C="})
	if m["A"] != "1" || m["B"] != "x=y" || m["C"] != "" || len(m) != 3 {
		t.Fatalf("Environ = %v", m)
	}
}
