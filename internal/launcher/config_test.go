package launcher

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Which file is read: --config, else the nearest bastion-ttl.yaml from the
// working directory up (the repository's), else the user's.
func TestFindConfig(t *testing.T) {
	root := t.TempDir()
	repo := filepath.Join(root, "repo")
	deep := filepath.Join(repo, "services", "api")
	user := filepath.Join(root, "home", ".config")
	if err := os.MkdirAll(deep, 0o755); err != nil {
		t.Fatal(err)
	}
	if got, err := findConfig("", deep, user); err != nil || got != "" {
		t.Fatalf("no file anywhere: %q, %v", got, err)
	}
	writeFile(t, filepath.Join(user, "bastion-ttl", ConfigName), "connections: {}\n")
	if got, _ := findConfig("", deep, user); got != filepath.Join(user, "bastion-ttl", ConfigName) {
		t.Fatalf("the user's file alone: %q", got)
	}
	writeFile(t, filepath.Join(repo, ConfigName), "connections: {}\n")
	if got, _ := findConfig("", deep, user); got != filepath.Join(repo, ConfigName) {
		t.Fatalf("the repository's and the user's: %q, want the nearer, the repository's", got)
	}
	writeFile(t, filepath.Join(deep, ConfigName), "connections: {}\n")
	if got, _ := findConfig("", deep, user); got != filepath.Join(deep, ConfigName) {
		t.Fatalf("two in the repository: %q, want the nearest", got)
	}
	named := filepath.Join(root, "team.yaml")
	writeFile(t, named, "connections: {}\n")
	if got, _ := findConfig(named, deep, user); got != named {
		t.Fatalf("--config: %q", got)
	}
	if _, err := findConfig(filepath.Join(root, "missing.yaml"), deep, user); err == nil || !strings.Contains(err.Error(), "--config "+filepath.Join(root, "missing.yaml")+": no such file") {
		t.Fatalf("--config of a missing file: %v", err)
	}
}

// Every field, and every error a file can have, with its line where YAML
// can say it.
func TestLoadConfig(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	writeFile(t, good, `connections:
  db:
    description: the orders database
    stack: bastion-ttl
    to: orders.cluster-abc.eu-west-1.rds.amazonaws.com:5432
    local-port: 15432
    ttl: 1h
    idle: 20m
  ssh:
    cluster: bastions
    task-definition: bastion:3
    subnets: [subnet-1, subnet-2]
    security-groups: [sg-1]
  box:
    shell: true
    idle: "0"
`)
	cfg, err := loadConfig(good)
	if err != nil {
		t.Fatal(err)
	}
	db := cfg.Connections["db"]
	if len(cfg.Connections) != 3 || db.To != "orders.cluster-abc.eu-west-1.rds.amazonaws.com:5432" || db.LocalPort != 15432 || db.TTL != "1h" || db.Idle != "20m" ||
		cfg.Connections["ssh"].SecurityGroups[0] != "sg-1" || !cfg.Connections["box"].Shell {
		t.Fatalf("%+v", cfg)
	}
	for _, tc := range []struct{ name, body, want string }{
		{"unknown field", "connections:\n  db:\n    to: db:5432\n    localport: 5432\n", "line 4: field localport not found"},
		{"unknown top-level field", "connection:\n  db: {}\n", "line 1: field connection not found"},
		{"to not host:port", "connections:\n  db:\n    to: db\n", `connection db: to: "db" is not HOST:PORT`},
		{"local port out of range", "connections:\n  db:\n    to: db:5432\n    local-port: 70000\n", "local-port 70000 is not a port"},
		{"ttl not a duration", "connections:\n  db:\n    to: db:5432\n    ttl: soon\n", `ttl "soon" is not a positive duration`},
		{"to and shell", "connections:\n  db:\n    to: db:5432\n    shell: true\n", "to and shell"},
		{"bad name", "connections:\n  \"my db\":\n    to: db:5432\n", `connection "my db": a name is letters`},
		{"not YAML", "connections: [\n", "bad.yaml: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, "bad.yaml")
			writeFile(t, p, tc.body)
			_, err := loadConfig(p)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), p+": ") || strings.Contains(err.Error(), "\n") {
				t.Fatalf("%v, want one line starting %s: with %q", err, p, tc.want)
			}
		})
	}
}

// connect with neither a name nor --to/--shell lists the file's connections.
func TestConnectListsConnections(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, ConfigName), "connections:\n  db:\n    description: orders\n    to: orders.internal:5432\n    local-port: 15432\n  box:\n    cluster: bastions\n    shell: true\n")
	var out, errs bytes.Buffer
	env := Env{Environ: map[string]string{}, Stdout: &out, Stderr: &errs, Connect: ConnectEnv{WorkDir: filepath.Join(dir)}}
	if code := ExitCode(Run(t.Context(), []string{"connect"}, env), &errs); code != 0 {
		t.Fatalf("exit %d: %s", code, errs.String())
	}
	want := "connections in " + filepath.Join(dir, ConfigName) + " (bastion-ttl connect NAME):\n" +
		"  box  a shell in the bastion                   cluster bastions\n" +
		"  db   localhost:15432 -> orders.internal:5432  stack bastion-ttl  orders\n"
	if out.String() != want {
		t.Fatalf("got:\n%q\nwant:\n%q", out.String(), want)
	}
	out.Reset()
	env.Connect.WorkDir = t.TempDir()
	if code := ExitCode(Run(t.Context(), []string{"connect", "--config", filepath.Join(dir, ConfigName)}, env), &errs); code != 0 || out.String() != want {
		t.Fatalf("--config alone: exit %d\n%s%s", code, out.String(), errs.String())
	}
	out.Reset()
	if code := ExitCode(Run(t.Context(), []string{"connect"}, env), &errs); code != 2 || !strings.Contains(errs.String(), "nothing to connect to: pass --to HOST:PORT or --shell") {
		t.Fatalf("no file: exit %d: %s", code, errs.String())
	}
}
