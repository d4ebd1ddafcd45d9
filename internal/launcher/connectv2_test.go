package launcher

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/bastion-ttl/bastion-ttl/internal/controlapi"
	"github.com/bastion-ttl/bastion-ttl/internal/localaws/ssmplugin"
)

// localPortOf is the local port connect's status line gives the forward
// named name (lines "name: localhost:N -> ...").
func localPortOf(t *testing.T, out, name string) int {
	t.Helper()
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `: localhost:(\d+) -> `).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no status line for %s:\n%s", name, out)
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// Three connections of a group, through one bastion: each forward moves
// bytes both ways; one whose session drops reconnects alone, the others'
// sessions untouched; Ctrl-C ends all three. The third has no local-port
// and its remote port is taken here (its database listens on it): it gets
// a port the kernel picks, which is remembered for the next connect.
func TestConnectSeveralForwardsThroughOneBastion(t *testing.T) {
	standInPlugin(t)
	r := newRig(t)
	state := t.TempDir()
	r.env.Environ["XDG_STATE_HOME"] = state
	hosts, ports := [3]string{}, [3]int{}
	for i := range hosts {
		hosts[i], ports[i] = database(t)
	}
	localA, localB := freePort(t), freePort(t)
	writeFile(t, filepath.Join(r.env.Connect.WorkDir, ConfigName), fmt.Sprintf(`connections:
  orders-db:
    to: %s:%d
    local-port: %d
  cache:
    to: %s:%d
    local-port: %d
  search:
    to: %s:%d
groups:
  morning: [orders-db, cache, search]
`, hosts[0], ports[0], localA, hosts[1], ports[1], localB, hosts[2], ports[2]))
	// The first forward to close a connection has its plugin exit, once.
	t.Setenv(ssmplugin.EnvExitOnce, filepath.Join(t.TempDir(), "dropped"))

	c := r.connect(t, "morning", "--ttl", "1h")
	for _, name := range []string{"orders-db", "cache", "search"} {
		c.until(t, name+": localhost:", 1)
	}
	localC := localPortOf(t, c.out.String(), "search")
	if localC == ports[2] || localC == localA || localC == localB {
		t.Fatalf("search got local port %d: its remote port %d is taken here, and %d, %d are the others'", localC, ports[2], localA, localB)
	}
	if tasks := r.running(t); len(tasks) != 1 {
		t.Fatalf("%d bastions run, want one for the three", len(tasks))
	}
	// cache's connection closes first: its session drops and reconnects.
	exchange(t, localB, "get k")
	c.until(t, "cache: the session ended", 1)
	c.until(t, "cache: localhost:", 2)
	for i, local := range []int{localA, localB, localC} {
		exchange(t, local, "select "+strconv.Itoa(i))
	}
	out := c.out.String()
	if strings.Count(out, "orders-db: localhost:") != 1 || strings.Count(out, "search: localhost:") != 1 || strings.Contains(out, "orders-db: the session ended") {
		t.Fatalf("only cache's session should have reconnected:\n%s", out)
	}
	if got := r.ssm.Calls()["StartSession"]; got != 4 {
		t.Fatalf("%d sessions started, want 3 and cache's again", got)
	}
	c.cancel() // Ctrl-C
	if code := c.exit(t); code != 0 {
		t.Fatalf("Ctrl-C: exit %d\n%s%s", code, c.out.String(), c.errs.String())
	}
	for _, s := range r.ssm.Sessions() {
		if !s.Terminated {
			t.Errorf("session %s left open", s.ID)
		}
	}
	if strings.Count(c.out.String(), "session ended; the bastion") != 1 {
		t.Errorf("the leaving line, once:\n%s", c.out.String())
	}
	// search's port is remembered: the next connect takes it again.
	b, err := os.ReadFile(filepath.Join(state, "bastion-ttl", "ports.json"))
	var remembered map[string]int
	if err != nil || json.Unmarshal(b, &remembered) != nil || remembered["search"] != localC {
		t.Fatalf("remembered %s (%v), want search: %d", b, err, localC)
	}
	c = r.connect(t, "search")
	c.until(t, fmt.Sprintf("localhost:%d -> %s:%d", localC, hosts[2], ports[2]), 1)
	exchange(t, localC, "again")
	c.cancel()
	c.exit(t)
}

// heldPort is a loopback port this test listens on until it ends.
func heldPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln.Addr().(*net.TCPAddr).Port
}

// A local port in use is refused before anything is asked of AWS: exit
// 2, naming the port and the process holding it; not one ECS or SSM call.
func TestConnectTakenPortBeforeAnyRequest(t *testing.T) {
	port := heldPort(t)
	pid := "pid " + strconv.Itoa(os.Getpid())
	for _, tc := range []struct {
		name  string
		file  string
		state string
		args  []string
		want  string
	}{
		{"--local-port", "", "", []string{"--to", "db.internal:5432", "--local-port", strconv.Itoa(port)},
			fmt.Sprintf("local port %d for --to db.internal:5432 (--local-port) is in use by %s", port, pid)},
		{"a group's local-port", fmt.Sprintf("connections:\n  db:\n    to: db.internal:5432\n  cache:\n    to: cache.internal:6379\n    local-port: %d\ngroups:\n  morning: [db, cache]\n", port), "",
			[]string{"morning"}, fmt.Sprintf("local port %d for cache (bastion-ttl.yaml's local-port) is in use by %s", port, pid)},
		{"a remembered port", "connections:\n  db:\n    to: db.internal:5432\n", fmt.Sprintf(`{"db": %d}`, port),
			[]string{"db"}, fmt.Sprintf("local port %d for db (remembered from your last connect in ", port)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeAWS(t, "AROAEXAMPLEDEVELOPER1:alice")
			if tc.file != "" {
				writeFile(t, filepath.Join(f.env.Connect.WorkDir, ConfigName), tc.file)
			}
			if tc.state != "" {
				p := filepath.Join(f.env.Connect.HomeDir, ".local", "state", "bastion-ttl", "ports.json")
				if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
					t.Fatal(err)
				}
				writeFile(t, p, tc.state)
			}
			out, errs, code := f.run(5*time.Second, append([]string{"connect"}, tc.args...)...)
			if code != 2 || !strings.Contains(errs, tc.want) || !strings.Contains(errs, "nothing started") {
				t.Fatalf("exit %d, want 2 and %q:\n%s%s", code, tc.want, out, errs)
			}
			if calls := f.api.Calls(); len(calls) != 0 {
				t.Fatalf("ECS was asked %v", calls)
			}
			if calls := f.ssm.Calls(); len(calls) != 0 {
				t.Fatalf("SSM was asked %v", calls)
			}
		})
	}
}

// client is a shell script run as --exec's client: it writes what it was
// given and what the forward answered to a file, then exits with code.
func clientScript(t *testing.T, code int) (argv []string, report string) {
	t.Helper()
	report = filepath.Join(t.TempDir(), "client.out")
	script := `{ env | grep -E '^(PG|MYSQL|BASTION_TTL_)' | sort
exec 3<>"/dev/tcp/127.0.0.1/$PGPORT" && echo "select 1" >&3 && read -r line <&3 && echo "answer=$line"; } > "$REPORT"; exit ` + strconv.Itoa(code)
	t.Setenv("REPORT", report)
	return []string{"bash", "-c", script}, report
}

// --exec starts the client once the forwards are ready, with their
// addresses in its environment; the forwards close when it exits, and
// connect's exit code is the client's. A Ctrl-C after the start is the
// client's: connect waits for it. --iam-auth hands it a token signed for
// the real endpoint, never shown.
func TestConnectExec(t *testing.T) {
	standInPlugin(t)
	r := newRig(t)
	r.env.Connect.Credentials = credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", "")
	host, dbPort := database(t)
	cacheHost, cachePort := database(t)
	local := freePort(t)
	writeFile(t, filepath.Join(r.env.Connect.WorkDir, ConfigName), fmt.Sprintf(`connections:
  orders-db:
    to: %s:%d
    local-port: %d
    engine: postgres
  cache:
    to: %s:%d
`, host, dbPort, local, cacheHost, cachePort))

	argv, report := clientScript(t, 7)
	c := r.connect(t, append([]string{"orders-db", "cache", "--iam-auth", "app_user", "--exec", "--"}, argv...)...)
	if code := c.exit(t); code != 7 {
		t.Fatalf("exit %d, want the client's 7\n%s%s", code, c.out.String(), c.errs.String())
	}
	b, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	got := string(b)
	for _, want := range []string{
		"PGHOST=" + host + "\n", "PGHOSTADDR=127.0.0.1\n", fmt.Sprintf("PGPORT=%d\n", local), "PGUSER=app_user\n",
		fmt.Sprintf("PGPASSWORD=%s:%d/?Action=connect&DBUser=app_user&", host, dbPort),
		fmt.Sprintf("BASTION_TTL_LOCAL_ADDR=127.0.0.1:%d\n", local), fmt.Sprintf("BASTION_TTL_LOCAL_ADDR_ORDERS_DB=127.0.0.1:%d\n", local),
		"BASTION_TTL_LOCAL_ADDR_CACHE=127.0.0.1:", "answer=pong: select 1\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("the client lacks %q:\n%s", want, got)
		}
	}
	if said := c.out.String() + c.errs.String(); strings.Contains(said, "X-Amz-Signature") || strings.Contains(said, "DBUser=") {
		t.Errorf("connect showed the token:\n%s", said)
	}
	if len(r.ssm.Sessions()) != 2 {
		t.Errorf("sessions %+v, want two", r.ssm.Sessions())
	}
	for _, s := range r.ssm.Sessions() {
		if !s.Terminated {
			t.Errorf("session %s left open after the client exited", s.ID)
		}
	}

	// Ctrl-C once the client runs: the client's, and connect waits for it,
	// its forwards up.
	t.Setenv("REPORT", filepath.Join(t.TempDir(), "unused"))
	// The client uses the forward after the Ctrl-C: 3 if it still works.
	c = r.connect(t, "orders-db", "--exec", "--", "bash", "-c", `sleep 1; exec 3<>"/dev/tcp/127.0.0.1/$PGPORT" && echo hi >&3 && read -r l <&3 && [ "$l" = "pong: hi" ] && exit 3; exit 9`)
	waitFor(t, func() bool {
		return strings.Contains(c.errs.String(), "orders-db") || strings.Contains(c.errs.String(), "localhost:")
	})
	time.Sleep(200 * time.Millisecond) // the client starts
	c.cancel()
	if code := c.exit(t); code != 3 {
		t.Fatalf("Ctrl-C while the client runs: exit %d, want the client's 3 (9: the forward was gone)\n%s%s", code, c.out.String(), c.errs.String())
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
	}
}

// bastion-ttl extend asks the sidecar's control endpoint, through a
// forward of its port (BASTION_CONTROL_ADDR in the task definition), for
// the time asked: POST /extend {"by": "30m"} with a loopback Host, as
// supervisor extend on the bastion does. Only the caller's own bastion.
func TestExtendFromTheLaptop(t *testing.T) {
	standInPlugin(t)
	r := newRig(t)
	var asked []string
	deadline := time.Now().Add(2*time.Hour + 30*time.Minute).UTC().Truncate(time.Second)
	sidecar := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		raw, _ := io.ReadAll(req.Body)
		by, err := controlapi.DecodeExtendRequest(raw)
		asked = append(asked, fmt.Sprint(req.Method, " ", req.URL.Path, " by ", by, " ", err, " host ", req.Host))
		ttl, left, secs, reason, idle, conns := "2h30m0s", "2h29m", int64(8940), controlapi.ReasonTTL, "0s", 1
		s := controlapi.Status{SchemaVersion: controlapi.SchemaVersion, Source: controlapi.SourceSidecar, TaskARN: "arn:aws:ecs:us-east-1:123456789012:task/bastions/0123",
			StartedAt: time.Now().Add(-time.Minute).UTC(), TTL: &ttl, Deadline: &deadline, Reason: &reason, Remaining: &left, RemainingSeconds: &secs,
			IdleTimeout: &idle, Connections: &conns, ExtendedTo: &deadline}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(controlapi.Extended{Status: s, Capped: false})
	}))
	defer sidecar.Close()
	_, controlPort, _ := net.SplitHostPort(sidecar.Listener.Addr().String())

	ctx := context.Background()
	if _, err := r.ecs.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{Family: aws.String("bastion"), NetworkMode: types.NetworkModeBridge,
		ContainerDefinitions: []types.ContainerDefinition{
			{Name: aws.String("bastion"), Image: aws.String("openssh-server"), Memory: aws.Int32(256), Essential: aws.Bool(true)},
			{Name: aws.String("supervisor"), Image: aws.String("ghcr.io/bastion-ttl/supervisor:v0.1.0"), Memory: aws.Int32(64), Essential: aws.Bool(true), Command: []string{"watch"},
				Environment: []types.KeyValuePair{{Name: aws.String("BASTION_CONTROL_ADDR"), Value: aws.String("127.0.0.1:" + controlPort)}}},
		}}); err != nil {
		t.Fatal(err)
	}
	someone := r.bastion(t, "AROAOTHERPERSON:bob", "4h", true)
	mine := r.bastion(t, r.me, "2h", true)
	out, errs, code := runCLI(r.env, "extend", "30m")
	if code != 0 || len(asked) != 1 || !strings.HasPrefix(asked[0], "POST /extend by 30m0s <nil> host 127.0.0.1:") || strings.HasSuffix(asked[0], ":"+controlPort) {
		t.Fatalf("exit %d, the sidecar was asked %q (want one POST through the forward):\n%s%s", code, asked, out, errs)
	}
	if want := "the bastion " + taskID(mine) + " now stops at " + when(deadline) + " (TTL 2h30m0s, "; !strings.Contains(out, want) {
		t.Fatalf("said %q, want %q", out, want)
	}
	for _, s := range r.ssm.Sessions() {
		if !s.Terminated || !strings.Contains(s.Target, taskID(mine)) {
			t.Fatalf("session %+v: want one to %s, ended", s, taskID(mine))
		}
	}
	if _, errs, code := runCLI(r.env, "extend", "30m", "--task", taskID(someone)); code != 2 || !strings.Contains(errs, "is not yours") {
		t.Fatalf("someone else's: exit %d: %s", code, errs)
	}
	if _, errs, code := runCLI(r.env, "extend", "soon"); code != 2 || !strings.Contains(errs, `by is "soon"`) {
		t.Fatalf("a bad duration: exit %d: %s", code, errs)
	}
	if len(asked) != 1 {
		t.Fatalf("refused extends reached the sidecar: %q", asked)
	}
}

// A connection's exec: runs only when --exec asks for it, and only from
// your own file: a repository's is a teammate's text, and connect NAME
// alone starts no program a file names.
func TestConnectFileExecOnlyWithTheFlagFromYourFile(t *testing.T) {
	mark := filepath.Join(t.TempDir(), "ran")
	t.Setenv("MARK", mark)
	f := newFakeAWS(t, "AROAEXAMPLEDEVELOPER1:alice")
	conn := "connections:\n  db:\n    to: db.internal:5432\n    exec: [bash, -c, 'touch \"$MARK\"; exit 4']\n"
	repoFile := filepath.Join(f.env.Connect.WorkDir, ConfigName)
	writeFile(t, repoFile, conn)
	out, errs, code := f.runUntil("localhost:", 5*time.Second, "connect", "db", "--local-port", strconv.Itoa(freePort(t)))
	if _, err := os.Stat(mark); err == nil || code != 0 {
		t.Fatalf("connect db ran the file's exec (exit %d):\n%s%s", code, out, errs)
	}
	out, errs, code = f.run(10*time.Second, "connect", "db", "--exec", "--local-port", strconv.Itoa(freePort(t)))
	if _, err := os.Stat(mark); err == nil || code != 2 || !strings.Contains(errs, "connection db's exec: is the repository's, which connect does not run") {
		t.Fatalf("the repository's exec: exit %d, want 2 and nothing run:\n%s%s", code, out, errs)
	}
	if err := os.Remove(repoFile); err != nil {
		t.Fatal(err)
	}
	mine := filepath.Join(f.env.Connect.UserConfigDir, "bastion-ttl", ConfigName)
	if err := os.MkdirAll(filepath.Dir(mine), 0o700); err != nil {
		t.Fatal(err)
	}
	writeFile(t, mine, conn)
	out, errs, code = f.run(10*time.Second, "connect", "db", "--exec", "--local-port", strconv.Itoa(freePort(t)))
	if _, err := os.Stat(mark); err != nil || code != 4 || !strings.Contains(errs, "bastion-ttl: starting bash -c touch") {
		t.Fatalf("your own exec: with --exec: exit %d, want its 4 (%v):\n%s%s", code, err, out, errs)
	}
}

// A forward to the bastion's own port learns the port from the task
// definition, and its local port is then chosen (and checked) as any
// other's, before the bastion starts.
func TestConnectToTheBastionsOwnPortChoosesItsLocalPort(t *testing.T) {
	standInPlugin(t)
	r := newRig(t)
	port := strconv.Itoa(heldPort(t))
	if _, errs, code := runCLI(r.env, "connect", "--local-port", port); code != 2 || !strings.Contains(errs, "local port "+port+" for --to the bastion's own port (--local-port) is in use by pid") {
		t.Fatalf("a taken --local-port: exit %d: %s", code, errs)
	}
	if got := r.running(t); len(got) != 0 {
		t.Fatalf("a taken port started %v", got)
	}
	c := r.connect(t, "--ttl", "1h")
	c.until(t, "'s port 2222 (", 1)
	m := regexp.MustCompile(`localhost:(\d+) -> [-\w]+'s port 2222`).FindStringSubmatch(c.out.String())
	if m == nil || m[1] == "0" {
		t.Fatalf("the forward's line:\n%s", c.out.String())
	}
	c.cancel()
	c.exit(t)
}

// --print-token prints the RDS IAM token on stdout once the forward is
// ready, signed for the real endpoint (not the local port), and says on
// stderr what it is; without --print-token it is nowhere.
func TestConnectPrintsTheTokenOnlyWhenAsked(t *testing.T) {
	f := newFakeAWS(t, "AROAEXAMPLEDEVELOPER1:alice")
	f.env.Connect.Credentials = credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", "")
	local := strconv.Itoa(freePort(t))
	out, errs, code := f.runUntil("X-Amz-Signature=", 5*time.Second, "connect", "--to", "orders.cluster-abc.eu-west-1.rds.amazonaws.com:5432", "--local-port", local,
		"--iam-auth", "app_user", "--print-token")
	token := ""
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, "X-Amz-Signature=") {
			token = line
		}
	}
	if code != 0 || !strings.HasPrefix(token, "orders.cluster-abc.eu-west-1.rds.amazonaws.com:5432/?Action=connect&DBUser=app_user&") ||
		!strings.Contains(token, "%2Feu-west-1%2Frds-db%2Faws4_request") || !strings.Contains(errs, "the IAM token for app_user at orders.cluster-abc") {
		t.Fatalf("exit %d, want the token for the real endpoint in its region:\n%s%s", code, out, errs)
	}
	out, errs, _ = f.runUntil("localhost:", 5*time.Second, "connect", "--to", "orders.cluster-abc.eu-west-1.rds.amazonaws.com:5432", "--local-port", local, "--iam-auth", "app_user")
	if strings.Contains(out+errs, "X-Amz-Signature") {
		t.Fatalf("the token shown unasked:\n%s%s", out, errs)
	}
}

// Ports are remembered once the bastion is reached: a connect refused
// after its ports were chosen (a TTL above the cap) remembers nothing.
func TestConnectRemembersOnlyWhatItReached(t *testing.T) {
	f := newFakeAWS(t, "AROAEXAMPLEDEVELOPER1:alice")
	state := filepath.Join(f.env.Connect.HomeDir, ".local", "state", "bastion-ttl", "ports.json")
	if _, errs, code := f.run(5*time.Second, "connect", "--to", "db.internal:5432", "--ttl", "13h"); code != 2 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if _, err := os.Stat(state); err == nil {
		t.Fatal("a refused connect remembered its ports")
	}
	f.runUntil("localhost:", 5*time.Second, "connect", "--to", "db.internal:5432")
	if b, err := os.ReadFile(state); err != nil || !strings.Contains(string(b), `"to:db.internal:5432"`) {
		t.Fatalf("a connect that reached its bastion remembered %s (%v)", b, err)
	}
}
