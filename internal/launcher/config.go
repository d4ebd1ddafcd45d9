package launcher

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/bastion-ttl/bastion-ttl/internal/dbauth"
	"github.com/bastion-ttl/bastion-ttl/internal/ttltag"
)

// ConfigName is the config file's name. Two are read: the repository's,
// the nearest one from the working directory up to the repository's root
// (or $HOME), and the user's own, <config dir>/bastion-ttl/bastion-ttl.yaml.
// A connection of the repository's shadows the user's of the same name.
// Each must be the user's and written by no one else (readConfig).
const ConfigName = "bastion-ttl.yaml"

// Config is the config file: named connections a team can share.
type Config struct {
	Connections map[string]Connection `yaml:"connections"`
	// Groups are connections opened together, through one bastion:
	// `connect morning` is `connect orders-db cache`.
	Groups map[string][]string `yaml:"groups"`
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
	Reason         string   `yaml:"reason"`
	// Exec is the client --exec starts when no command follows it, once
	// the forwards are ready: argv, not a shell line. Never without --exec.
	Exec []string `yaml:"exec"`
	// Engine says which client variables --exec sets (postgres, mysql,
	// redis); "" infers it from to's port.
	Engine string `yaml:"engine"`
	// IAMAuth is the database user an RDS IAM token is made for.
	IAMAuth string `yaml:"iam-auth"`
}

var connectionName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// Where a config file comes from, as the listing and the notes say it.
const (
	fromRepository = "repository"
	fromYours      = "yours"
	fromFlag       = "--config"
)

// configFile is one config file read.
type configFile struct {
	path, from string
	info       os.FileInfo // the open file's, to tell two names of one file apart
	Config
}

// configFiles are the files connect reads, the one that wins first.
type configFiles []configFile

// readConfigs reads the file --config names, alone; else the repository's
// (findConfig) and the user's own, the repository's first.
func readConfigs(named string, ce ConnectEnv) (configFiles, error) {
	if named != "" {
		if _, err := os.Stat(named); err != nil {
			return nil, badf("--config %s: %v", named, errors.Unwrap(err))
		}
		f, err := readConfig(named, fromFlag)
		if err != nil {
			return nil, err
		}
		return configFiles{f}, nil
	}
	var files configFiles
	if p := findConfig(ce.WorkDir, ce.HomeDir); p != "" {
		f, err := readConfig(p, fromRepository)
		if err != nil {
			return nil, err
		}
		files = append(files, f)
	}
	if ce.UserConfigDir == "" {
		return files, nil
	}
	p := filepath.Join(ce.UserConfigDir, "bastion-ttl", ConfigName)
	if _, err := os.Stat(p); err != nil {
		return files, nil
	}
	f, err := readConfig(p, fromYours)
	if err != nil {
		return nil, err
	}
	if len(files) == 1 && os.SameFile(files[0].info, f.info) {
		return configFiles{f}, nil // the search found the user's own file
	}
	return append(files, f), nil
}

// findConfig is the nearest bastion-ttl.yaml from dir up to the search's
// top (searchTop); "" when there is none.
func findConfig(dir, home string) string {
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	top := searchTop(dir, home)
	for d := dir; ; d = filepath.Dir(d) {
		p := filepath.Join(d, ConfigName)
		if _, err := os.Stat(p); err == nil {
			return p
		}
		if d == top || filepath.Dir(d) == d {
			return ""
		}
	}
}

// searchTop is the highest directory the search reads: the first one from
// dir up that is a repository's root (it holds .git, a directory, or a file
// in a worktree, of the user's: git refuses a repository of someone else's
// too) or home. When neither is met (dir is outside every repository and
// outside home, /tmp/x say), it is dir itself: nothing marks where the
// user's own directories end, and every one above may be shared, which is
// how a file planted in one redirected a connection.
func searchTop(dir, home string) string {
	var homeInfo os.FileInfo
	if home != "" {
		homeInfo, _ = os.Stat(home)
	}
	for d := dir; ; d = filepath.Dir(d) {
		if g, err := os.Lstat(filepath.Join(d, ".git")); err == nil && ownedByUser(g) {
			return d
		}
		if homeInfo != nil {
			if fi, err := os.Stat(d); err == nil && os.SameFile(fi, homeInfo) {
				return d
			}
		}
		if filepath.Dir(d) == d {
			return dir
		}
	}
}

// maxConfigSize bounds what is read of a config file.
const maxConfigSize = 1 << 20

// readConfig reads and checks a config file. The file must be the user's
// and writable by no one else (checkTrust), as judged on the file opened,
// so that a file swapped in after a look is not read either. An unknown
// field, a bad value or a bad name is an error that names the file, and
// the line where YAML can say it.
func readConfig(path, from string) (configFile, error) {
	f := configFile{path: path, from: from}
	file, err := openConfig(path)
	if err != nil {
		return f, badf("%s: %v", path, errors.Unwrap(err))
	}
	defer file.Close()
	if f.info, err = file.Stat(); err != nil {
		return f, badf("%s: %v", path, errors.Unwrap(err))
	}
	if !f.info.Mode().IsRegular() {
		return f, badf("refused %s: not a regular file (%s)", path, f.info.Mode().Type())
	}
	if err := checkTrust(path, f.info); err != nil {
		return f, badf("refused %s: %v", path, err)
	}
	b, err := io.ReadAll(io.LimitReader(file, maxConfigSize+1))
	if err != nil {
		return f, badf("%s: %v", path, errors.Unwrap(err))
	}
	if len(b) > maxConfigSize {
		return f, badf("%s: larger than %d bytes: not a config file", path, maxConfigSize)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&f.Config); err != nil && !errors.Is(err, io.EOF) {
		return f, badf("%s: %s", path, strings.ReplaceAll(strings.TrimPrefix(err.Error(), "yaml: "), "\n ", ";"))
	}
	for _, name := range slices.Sorted(maps.Keys(f.Connections)) {
		if err := f.Connections[name].check(name); err != nil {
			return f, badf("%s: %v", path, err)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(f.Groups)) {
		if err := f.checkGroup(name); err != nil {
			return f, badf("%s: %v", path, err)
		}
	}
	return f, nil
}

// checkGroup checks a group of f: its members are named once each and may
// live in another file; a group may not share a connection's name.
func (f configFile) checkGroup(name string) error {
	if !connectionName.MatchString(name) {
		return fmt.Errorf("group %q: a name is letters, digits, '.', '_' and '-'", name)
	}
	if _, ok := f.Connections[name]; ok {
		return fmt.Errorf("group %s is also a connection's name", name)
	}
	members := f.Groups[name]
	if len(members) == 0 {
		return fmt.Errorf("group %s has no connections", name)
	}
	for i, m := range members {
		if !connectionName.MatchString(m) {
			return fmt.Errorf("group %s: %q is not a connection's name", name, m)
		}
		if slices.Contains(members[:i], m) {
			return fmt.Errorf("group %s names %s twice", name, m)
		}
	}
	return nil
}

// group is the group of that name, from the first file that has it.
func (fs configFiles) group(name string) ([]string, bool) {
	for _, f := range fs {
		if g, ok := f.Groups[name]; ok {
			return g, true
		}
	}
	return nil, false
}

// connection is the connection of that name, the file it comes from, and
// the file whose connection of the same name it shadows (nil: none).
func (fs configFiles) connection(name string) (c Connection, from, shadowed *configFile, ok bool) {
	for i := range fs {
		got, has := fs[i].Connections[name]
		switch {
		case !has:
		case from == nil:
			c, from, ok = got, &fs[i], true
		case shadowed == nil:
			shadowed = &fs[i]
		}
	}
	return c, from, shadowed, ok
}

// names is every connection's name, from every file, sorted, once each.
func (fs configFiles) names() []string {
	var out []string
	for _, f := range fs {
		out = append(out, slices.Collect(maps.Keys(f.Connections))...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// paths is the files' paths, "A or B".
func (fs configFiles) paths() string {
	var ps []string
	for _, f := range fs {
		ps = append(ps, f.path)
	}
	return strings.Join(ps, " or ")
}

// unknown is the error for a name no file has.
func (fs configFiles) unknown(name, userDir string) error {
	switch len(fs) {
	case 0:
		return badf("no connection %q: no %s here or above (up to the repository's root or your home directory), nor in %s (--config names one)",
			name, ConfigName, filepath.Join(cmp.Or(userDir, "<config dir>"), "bastion-ttl"))
	}
	has := cmp.Or(strings.Join(fs.names(), ", "), "none")
	if len(fs) == 1 {
		return badf("no connection %q in %s (it has: %s)", name, fs.paths(), has)
	}
	return badf("no connection %q in %s (they have: %s)", name, fs.paths(), has)
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
	if err := ttltag.CheckReason(c.Reason); err != nil {
		return fmt.Errorf("connection %s: reason %q %v", name, c.Reason, err)
	}
	if c.Shell && (len(c.Exec) > 0 || c.IAMAuth != "") {
		return fmt.Errorf("connection %s: shell with exec or iam-auth: those need a port forward", name)
	}
	if c.Engine != "" && dbauth.EngineFor(c.Engine, 0) == dbauth.Other {
		return fmt.Errorf("connection %s: engine %q is not postgres, mysql or redis (or RDS's names for them)", name, c.Engine)
	}
	if c.IAMAuth != "" {
		if err := dbauth.CheckUser(c.IAMAuth); err != nil {
			return fmt.Errorf("connection %s: iam-auth: %v", name, err)
		}
		if c.To == "" {
			return fmt.Errorf("connection %s: iam-auth needs to: the database's own HOST:PORT, which the token is signed for", name)
		}
		_, port, _ := splitTarget(c.To)
		if e := dbauth.EngineFor(c.Engine, port); e != dbauth.Postgres && e != dbauth.MySQL {
			return fmt.Errorf("connection %s: iam-auth is for postgres and mysql, and its engine is %s: set engine", name, e)
		}
	}
	if len(c.Exec) > 0 && c.Exec[0] == "" {
		return fmt.Errorf("connection %s: exec's first word, the program, is empty", name)
	}
	if c.Idle != "" && c.Idle != "0" {
		if d, err := time.ParseDuration(c.Idle); err != nil || d < 0 {
			return fmt.Errorf("connection %s: idle %q is not 0 (off) or a duration such as 15m", name, c.Idle)
		}
	}
	return nil
}

// hostName is a DNS name's shape: what a to: may name besides an IP
// address. A file's to: is shown in status lines and signed for.
var hostName = regexp.MustCompile(`^[A-Za-z0-9_]([A-Za-z0-9._-]*[A-Za-z0-9])?$`)

// splitTarget is HOST:PORT's host and port.
func splitTarget(s string) (string, int, error) {
	host, port, err := net.SplitHostPort(s)
	if err != nil || host == "" {
		return "", 0, fmt.Errorf("%q is not HOST:PORT (such as mydb.example.internal:5432)", s)
	}
	if _, ipErr := netip.ParseAddr(host); ipErr != nil && !hostName.MatchString(host) {
		return "", 0, fmt.Errorf("%q: host %q is not a DNS name or an IP address", s, host)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return "", 0, fmt.Errorf("%q: port %q is not 1-65535", s, port)
	}
	return host, n, nil
}
