package launcher

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// ConfigName is the config file's name, in a repository (the nearest
// ancestor directory that has one) or in the user's config directory
// (<config dir>/bastion-ttl/bastion-ttl.yaml). The nearer wins; they are
// not merged.
const ConfigName = "bastion-ttl.yaml"

// Config is the config file: named connections a team can share.
type Config struct {
	Connections map[string]Connection `yaml:"connections"`
}

// Connection is one named connection: what connect's flags would say.
type Connection struct {
	Description    string   `yaml:"description"`
	Stack          string   `yaml:"stack"`
	Cluster        string   `yaml:"cluster"`
	TaskDefinition string   `yaml:"task-definition"`
	To             string   `yaml:"to"`
	LocalPort      int      `yaml:"local-port"`
	Shell          bool     `yaml:"shell"`
	TTL            string   `yaml:"ttl"`
	Idle           string   `yaml:"idle"`
	Subnets        []string `yaml:"subnets"`
	SecurityGroups []string `yaml:"security-groups"`
}

var connectionName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// findConfig is the config file to read: named (it must exist), else the
// nearest bastion-ttl.yaml from dir up, else the user's; "" when none.
func findConfig(named, dir, userDir string) (string, error) {
	if named != "" {
		if _, err := os.Stat(named); err != nil {
			return "", badf("--config %s: %v", named, errors.Unwrap(err))
		}
		return named, nil
	}
	for d := dir; d != ""; {
		p := filepath.Join(d, ConfigName)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		parent := filepath.Dir(d)
		if parent == d {
			break
		}
		d = parent
	}
	if userDir != "" {
		p := filepath.Join(userDir, "bastion-ttl", ConfigName)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", nil
}

// loadConfig reads and checks a config file: an unknown field, a bad value
// or a bad name is an error that names the file, and the line where YAML
// can say it.
func loadConfig(path string) (Config, error) {
	var c Config
	b, err := os.ReadFile(path)
	if err != nil {
		return c, badf("%s: %v", path, errors.Unwrap(err))
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return c, badf("%s: %s", path, strings.ReplaceAll(strings.TrimPrefix(err.Error(), "yaml: "), "\n ", ";"))
	}
	for _, name := range slices.Sorted(maps.Keys(c.Connections)) {
		if err := c.Connections[name].check(name); err != nil {
			return c, badf("%s: %v", path, err)
		}
	}
	return c, nil
}

func (c Connection) check(name string) error {
	if !connectionName.MatchString(name) {
		return fmt.Errorf("connection %q: a name is letters, digits, '.', '_' and '-'", name)
	}
	if c.To != "" {
		if _, _, err := splitTarget(c.To); err != nil {
			return fmt.Errorf("connection %s: to: %v", name, err)
		}
	}
	if c.To != "" && c.Shell {
		return fmt.Errorf("connection %s: to and shell: a connection is one or the other", name)
	}
	if c.LocalPort < 0 || c.LocalPort > 65535 {
		return fmt.Errorf("connection %s: local-port %d is not a port (1-65535)", name, c.LocalPort)
	}
	if c.TTL != "" {
		if d, err := time.ParseDuration(c.TTL); err != nil || d <= 0 {
			return fmt.Errorf("connection %s: ttl %q is not a positive duration such as 2h", name, c.TTL)
		}
	}
	if c.Idle != "" && c.Idle != "0" {
		if d, err := time.ParseDuration(c.Idle); err != nil || d < 0 {
			return fmt.Errorf("connection %s: idle %q is not 0 (off) or a duration such as 15m", name, c.Idle)
		}
	}
	return nil
}

// splitTarget is HOST:PORT's host and port.
func splitTarget(s string) (string, int, error) {
	host, port, err := net.SplitHostPort(s)
	if err != nil || host == "" {
		return "", 0, fmt.Errorf("%q is not HOST:PORT (such as mydb.example.internal:5432)", s)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return "", 0, fmt.Errorf("%q: port %q is not 1-65535", s, port)
	}
	return host, n, nil
}
