package launcher

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bastion-ttl/bastion-ttl/internal/cli"
	"github.com/bastion-ttl/bastion-ttl/internal/termtext"
)

// The search for the repository's file: from the working directory up to
// the repository's root or home, whichever comes first, both searched;
// outside both, the working directory alone. Nothing above is read.
func TestFindConfig(t *testing.T) {
	for _, tc := range []struct {
		name     string
		gitDirs  []string // directories holding a .git directory
		gitFiles []string // directories holding a .git file (a worktree)
		files    []string // directories holding a bastion-ttl.yaml
		work     string
		home     string // "": none known
		want     string // the directory of the file found; "-": none
	}{
		{"the nearest in the repository", []string{"home/src/repo"}, nil, []string{"home/src/repo", "home/src/repo/services/api"}, "home/src/repo/services/api", "home", "home/src/repo/services/api"},
		{"the repository's root is searched", []string{"home/src/repo"}, nil, []string{"home/src/repo", "home", "."}, "home/src/repo/services/api", "home", "home/src/repo"},
		{"above the repository's root: not read", []string{"home/src/repo"}, nil, []string{"home/src", "home", "."}, "home/src/repo/services/api", "home", "-"},
		{"above a repository outside home: not read", []string{"srv/repo"}, nil, []string{"srv", "."}, "srv/repo/services", "home", "-"},
		{"a worktree's .git file marks its root", nil, []string{"home/src/wt"}, []string{"home/src", "home"}, "home/src/wt/cmd", "home", "-"},
		{"a repository with no home known", []string{"srv/repo"}, nil, []string{"srv/repo"}, "srv/repo/a/b", "", "srv/repo"},
		{"home is searched", nil, nil, []string{"home", "."}, "home/notes/2026", "home", "home"},
		{"home's parent: not read", nil, nil, []string{"."}, "home/notes", "home", "-"},
		{"home within a repository: home is the top", []string{"."}, nil, []string{"."}, "home/notes", "home", "-"},
		{"outside both: the working directory is searched", nil, nil, []string{"tmp/x"}, "tmp/x", "home", "tmp/x"},
		{"outside both: its parent is not", nil, nil, []string{"tmp", "."}, "tmp/x", "home", "-"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			at := func(rel string) string { return filepath.Join(root, filepath.FromSlash(rel)) }
			for _, d := range append([]string{tc.work, tc.home}, tc.gitDirs...) {
				if err := os.MkdirAll(at(d), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			for _, d := range tc.gitDirs {
				if err := os.Mkdir(at(d+"/.git"), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			for _, d := range tc.gitFiles {
				writeFile(t, at(d+"/.git"), "gitdir: /elsewhere/.git/worktrees/wt\n")
			}
			for _, d := range tc.files {
				writeFile(t, at(d+"/"+ConfigName), "connections: {}\n")
			}
			home := ""
			if tc.home != "" {
				home = at(tc.home)
			}
			want := ""
			if tc.want != "-" {
				want = at(tc.want + "/" + ConfigName)
			}
			if got := findConfig(at(tc.work), home); got != want {
				t.Fatalf("found %q, want %q", got, want)
			}
		})
	}
}

// Both files are read, the repository's first; --config names the one
// file read; the user's own file found by the search is read once, as theirs.
func TestReadConfigs(t *testing.T) {
	root := t.TempDir()
	repo := filepath.Join(root, "repo")
	work := filepath.Join(repo, "services")
	user := filepath.Join(root, "config")
	if err := os.MkdirAll(filepath.Join(repo, ".git"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(work, 0o755); err != nil {
		t.Fatal(err)
	}
	ce := ConnectEnv{WorkDir: work, UserConfigDir: user}
	sources := func(fs configFiles) string {
		var out []string
		for _, f := range fs {
			out = append(out, f.from+" "+f.path+" "+strings.Join(configFiles{f}.names(), ","))
		}
		return strings.Join(out, "; ")
	}
	if fs, err := readConfigs("", ce); err != nil || len(fs) != 0 {
		t.Fatalf("no file anywhere: %s, %v", sources(fs), err)
	}
	yours := filepath.Join(user, "bastion-ttl", ConfigName)
	writeFile(t, yours, "connections:\n  orders-db:\n    to: mine:5432\n  scratch:\n    shell: true\n")
	if fs, err := readConfigs("", ce); err != nil || sources(fs) != "yours "+yours+" orders-db,scratch" {
		t.Fatalf("the user's file alone: %s, %v", sources(fs), err)
	}
	repos := filepath.Join(repo, ConfigName)
	writeFile(t, repos, "connections:\n  orders-db:\n    to: team:5432\n")
	fs, err := readConfigs("", ce)
	if err != nil || sources(fs) != "repository "+repos+" orders-db; yours "+yours+" orders-db,scratch" {
		t.Fatalf("both: %s, %v", sources(fs), err)
	}
	c, from, shadowed, ok := fs.connection("orders-db")
	if !ok || c.To != "team:5432" || from.path != repos || shadowed == nil || shadowed.path != yours {
		t.Fatalf("orders-db: %+v from %v shadowing %v; want the repository's, shadowing yours", c, from, shadowed)
	}
	if c, from, shadowed, ok := fs.connection("scratch"); !ok || !c.Shell || from.path != yours || shadowed != nil {
		t.Fatalf("scratch: %+v from %v shadowing %v; want yours, shadowing nothing", c, from, shadowed)
	}
	if err := fs.unknown("nope", user); err == nil || err.Error() != `no connection "nope" in `+repos+" or "+yours+" (they have: orders-db, scratch)" {
		t.Fatalf("unknown name: %v", err)
	}

	named := filepath.Join(root, "team.yaml")
	writeFile(t, named, "connections:\n  db:\n    to: db:5432\n")
	if fs, err := readConfigs(named, ce); err != nil || sources(fs) != "--config "+named+" db" {
		t.Fatalf("--config: %s, %v; want that file alone", sources(fs), err)
	}
	missing := filepath.Join(root, "missing.yaml")
	if _, err := readConfigs(missing, ce); err == nil || !strings.Contains(err.Error(), "--config "+missing+": no such file") {
		t.Fatalf("--config of a missing file: %v", err)
	}
	// From the user's config directory itself (it is under $HOME): one file, theirs.
	home := ConnectEnv{WorkDir: filepath.Join(user, "bastion-ttl"), HomeDir: root, UserConfigDir: user}
	if fs, err := readConfigs("", home); err != nil || sources(fs) != "yours "+yours+" orders-db,scratch" {
		t.Fatalf("from the user's own directory: %s, %v", sources(fs), err)
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
	cfg, err := readConfig(good, fromRepository)
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
		{"a group named as a connection", "connections:\n  db:\n    to: db:5432\ngroups:\n  db: [db]\n", "group db is also a connection's name"},
		{"an empty group", "groups:\n  morning: []\n", "group morning has no connections"},
		{"a group naming one twice", "groups:\n  morning: [db, db]\n", "group morning names db twice"},
		{"a group member's bad name", "groups:\n  morning: [\"a b\"]\n", `group morning: "a b" is not a connection's name`},
		{"an unknown engine", "connections:\n  db:\n    to: db:5432\n    engine: oracle\n", `engine "oracle" is not postgres, mysql or redis`},
		{"iam-auth without to", "connections:\n  db:\n    iam-auth: app\n", "iam-auth needs to"},
		{"iam-auth with a space", "connections:\n  db:\n    to: db:5432\n    iam-auth: \"a b\"\n", "iam-auth: "},
		{"exec in a shell", "connections:\n  db:\n    shell: true\n    exec: [psql]\n", "shell with exec or iam-auth"},
		{"exec without a program", "connections:\n  db:\n    to: db:5432\n    exec: [\"\"]\n", "exec's first word, the program, is empty"},
		{"ttl not a duration", "connections:\n  db:\n    to: db:5432\n    ttl: soon\n", `ttl "soon" is not a positive duration`},
		{"to and shell", "connections:\n  db:\n    to: db:5432\n    shell: true\n", "to and shell"},
		{"bad name", "connections:\n  \"my db\":\n    to: db:5432\n", `connection "my db": a name is letters`},
		{"not YAML", "connections: [\n", "bad.yaml: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, "bad.yaml")
			writeFile(t, p, tc.body)
			_, err := readConfig(p, fromRepository)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), p+": ") || strings.Contains(err.Error(), "\n") {
				t.Fatalf("%v, want one line starting %s: with %q", err, p, tc.want)
			}
		})
	}
}

// connect with neither a name nor --to/--shell lists the connections of
// both files, each with where it comes from, a shadowed one marked; with
// --config, that file's alone.
func TestConnectListsConnections(t *testing.T) {
	repo, user, repos, yours := twoConfigs(t)
	writeFile(t, repos, "connections:\n  db:\n    description: orders\n    to: orders.internal:5432\n    local-port: 15432\n  box:\n    cluster: bastions\n    shell: true\n")
	writeFile(t, yours, "connections:\n  db:\n    to: old.internal:5432\n  scratch:\n    stack: sandbox\ngroups:\n  morning: [db, scratch]\n")
	var out, errs bytes.Buffer
	env := Env{Environ: map[string]string{}, Stdout: &out, Stderr: &errs, Connect: ConnectEnv{WorkDir: repo, UserConfigDir: user}}
	if code := exitCode(Run(t.Context(), []string{"connect"}, env), &errs); code != 0 {
		t.Fatalf("exit %d: %s", code, errs.String())
	}
	want := "repository: " + repos + "\n" +
		"yours:      " + yours + "\n" +
		"connections (bastion-ttl connect NAME):\n" +
		"  box      repository        a shell in the bastion                   cluster bastions\n" +
		"  db       repository        localhost:15432 -> orders.internal:5432  stack bastion-ttl  orders\n" +
		"  db       yours (shadowed)  localhost:5432 -> old.internal:5432      stack bastion-ttl\n" +
		"  scratch  yours             the bastion's own port                   stack sandbox\n" +
		"groups (bastion-ttl connect GROUP: one bastion, a forward each):\n" +
		"  morning  yours  db, scratch\n"
	if out.String() != want {
		t.Fatalf("got:\n%s\nwant:\n%s", out.String(), want)
	}
	out.Reset()
	env.Connect.WorkDir = t.TempDir()
	want = "--config: " + repos + "\n" +
		"connections (bastion-ttl connect NAME):\n" +
		"  box  --config  a shell in the bastion                   cluster bastions\n" +
		"  db   --config  localhost:15432 -> orders.internal:5432  stack bastion-ttl  orders\n"
	if code := exitCode(Run(t.Context(), []string{"connect", "--config", repos}, env), &errs); code != 0 || out.String() != want {
		t.Fatalf("--config alone: exit %d\n%s%s\nwant:\n%s", code, out.String(), errs.String(), want)
	}
	out.Reset()
	env.Connect.UserConfigDir = t.TempDir()
	if code := exitCode(Run(t.Context(), []string{"connect"}, env), &errs); code != 2 || !strings.Contains(errs.String(), "nothing to connect to: pass --to HOST:PORT or --shell") {
		t.Fatalf("no file: exit %d: %s", code, errs.String())
	}
}

// connect NAME, when the repository's NAME shadows the user's, says so in
// one line on stderr before anything else: which file wins, which is
// shadowed. A name only the user's file has is used without a note.
func TestConnectSaysWhenTheRepositoryShadowsYours(t *testing.T) {
	t.Setenv("PATH", t.TempDir()) // no plugin: connect stops right after choosing
	repo, user, repos, yours := twoConfigs(t)
	writeFile(t, repos, "connections:\n  orders-db:\n    to: team.internal:5432\n")
	writeFile(t, yours, "connections:\n  orders-db:\n    to: mine.internal:5432\n  scratch:\n    to: scratch.internal:5432\n")
	env := Env{Environ: map[string]string{}, Connect: ConnectEnv{WorkDir: repo, UserConfigDir: user}}
	_, errs, code := runCLI(env, "connect", "orders-db")
	lines := strings.Split(strings.TrimSpace(errs), "\n")
	want := "bastion-ttl: note: connection orders-db is the repository's (" + repos + "), which shadows yours (" + yours + ")"
	if code != 2 || len(lines) != 2 || lines[0] != want || !strings.Contains(lines[1], "session-manager-plugin is not on PATH") {
		t.Fatalf("exit %d:\n%s\nwant first:\n%s", code, errs, want)
	}
	if _, errs, _ := runCLI(env, "connect", "scratch"); strings.Contains(errs, "note:") {
		t.Fatalf("a connection that shadows nothing got a note:\n%s", errs)
	}
	if _, errs, code := runCLI(env, "connect", "nope"); code != 2 || !strings.Contains(errs, `no connection "nope" in `+repos+" or "+yours+" (they have: orders-db, scratch)") {
		t.Fatalf("unknown name: exit %d: %s", code, errs)
	}
}

// twoConfigs is a repository (its root holds a .git) and a user config
// directory, and where each one's config file goes.
func twoConfigs(t *testing.T) (repo, user, repos, yours string) {
	root := t.TempDir()
	repo = filepath.Join(root, "repo")
	user = filepath.Join(root, "config")
	if err := os.MkdirAll(filepath.Join(repo, ".git"), 0o755); err != nil {
		t.Fatal(err)
	}
	return repo, user, filepath.Join(repo, ConfigName), filepath.Join(user, "bastion-ttl", ConfigName)
}

// A repository's file is someone else's text: the listing shows its
// control characters as escapes, never to the terminal as they are.
func TestConnectListsConnectionsSafely(t *testing.T) {
	repo, user, repos, _ := twoConfigs(t)
	writeFile(t, repos, "connections:\n  db:\n    description: \"orders \\e]0;pwned\\a\\e[2J\\u202e\"\n    cluster: \"bastions\\e[31m\"\n")
	var out, errs bytes.Buffer
	env := Env{Environ: map[string]string{}, Stdout: &out, Stderr: &errs, Connect: ConnectEnv{WorkDir: repo, UserConfigDir: user}}
	if code := exitCode(Run(t.Context(), []string{"connect"}, env), &errs); code != 0 {
		t.Fatalf("exit %d: %s", code, errs.String())
	}
	if i := strings.IndexFunc(out.String(), func(r rune) bool { return r != '\n' && termtext.IsUnsafe(r) }); i >= 0 {
		t.Errorf("the listing holds %U:\n%q", []rune(out.String()[i:])[0], out.String())
	}
	if !strings.Contains(out.String(), `orders \x1b]0;pwned\x07`) {
		t.Errorf("the listing does not show the description's escapes:\n%s", out.String())
	}
}

// A connection's reason is checked as --reason is, when the file is read.
func TestLoadConfigReason(t *testing.T) {
	p := filepath.Join(t.TempDir(), ConfigName)
	writeFile(t, p, "connections:\n  db:\n    to: db:5432\n    reason: \"INC-7: orders\"\n")
	if cfg, err := readConfig(p, fromRepository); err != nil || cfg.Connections["db"].Reason != "INC-7: orders" {
		t.Fatalf("%+v, %v", cfg, err)
	}
	writeFile(t, p, "connections:\n  db:\n    to: db:5432\n    reason: \"INC-7 \\u202e #x\"\n")
	if _, err := readConfig(p, fromRepository); !cli.IsUsage(err) || !strings.Contains(err.Error(), `connection db: reason "INC-7 \u202e #x" has '\u202e'`) {
		t.Fatalf("%v, want the connection, its reason and the character named", err)
	}
}
