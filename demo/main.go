// Command demo runs the whole bastion-ttl flow on one machine, in one
// process, without AWS or network: a Fargate task's metadata endpoint and
// credentials endpoint, the real supervisor (watch), an API Gateway stand-in
// verifying SigV4, the real terminate handler, and a local ECS endpoint.
//
// On Linux the bastion is a real TCP listener: a session (a real connection
// to it) keeps the bastion alive past its idle timeout, a person on the
// bastion extends its TTL with `supervisor extend`, and once the session
// closes the bastion stops for idleness, after its first TTL deadline.
// Elsewhere (no /proc/net/tcp to read sessions from) it stops at its TTL.
// People get in with `bastion-ttl connect` (the launcher's, through the
// stand-in session-manager-plugin in process): ops logs in through its
// forward of the bastion's own port, and someone else opens two forwards
// through the bastion with one connect, to a local "database" and "cache",
// bytes go through each; connect tells both when the bastion stops. It prints a timeline and exits 0 once the task is STOPPED with its reason.
//
//	go run ./demo [-ttl 5s]
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/bastion-ttl/bastion-ttl/internal/localaws/ecsapi"
	"github.com/bastion-ttl/bastion-ttl/internal/localaws/stack"
	"github.com/bastion-ttl/bastion-ttl/internal/localaws/sts"
	"github.com/bastion-ttl/bastion-ttl/internal/localaws/taskmetadata"
	"github.com/bastion-ttl/bastion-ttl/internal/supervisor"
	"github.com/bastion-ttl/bastion-ttl/internal/ttltag"
)

// The task is the metadata sample's: us-west-2, account 111122223333.
const (
	region     = "us-west-2"
	account    = "111122223333"
	clusterARN = "arn:aws:ecs:us-west-2:111122223333:cluster/default"
	taskARN    = taskmetadata.SampleTaskARN
	taskID     = "e9028f8d5d8e4f258373e7b93ce9a3c3"
	// What ECS hands the task for its task role: a session named after the task.
	taskRoleID  = "AROAZBASTIONTASKROLE1" // the role's unique ID, which the stack pins
	accessKeyID = "ASIADEMOTASKROLE0001"
	secretKey   = "demo-task-role-secret"
	token       = "demo-session-token"
	credsToken  = "demo-container-credentials-authorization"
)

func main() {
	ttl := flag.Duration("ttl", 5*time.Second, "the bastion's TTL (3s to 15s)")
	flag.Parse()
	if *ttl < 3*time.Second || *ttl > 15*time.Second {
		fmt.Fprintf(os.Stderr, "demo: -ttl=%s: use 3s to 15s\n", *ttl)
		os.Exit(2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), *ttl+20*time.Second)
	defer cancel()
	if err := run(ctx, *ttl, runtime.GOOS == "linux", os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

// timeline prints what happened, with the time since the task started.
type timeline struct {
	mu    sync.Mutex
	start time.Time
	out   io.Writer
}

func (t *timeline) say(who, format string, args ...any) {
	t.mu.Lock()
	defer t.mu.Unlock()
	fmt.Fprintf(t.out, "%7.3fs  %-18s %s\n", time.Since(t.start).Seconds(), who, fmt.Sprintf(format, args...))
}

// logLines calls f with each JSON log record written to it.
type logLines func(map[string]any)

func (f logLines) Write(p []byte) (int, error) {
	for _, line := range strings.Split(strings.TrimSpace(string(p)), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) == nil {
			f(rec)
		}
	}
	return len(p), nil
}

// The session scenario: the idle timeout, and the extension a person asks for.
const (
	idleTimeout = 3 * time.Second
	extendBy    = time.Minute
	fnMaxTTL    = time.Hour // the API's cap (the template's MaxTTL)
)

func run(ctx context.Context, ttl time.Duration, sessions bool, out io.Writer) error {
	// The ledger first: moto_server and the function's build take a moment.
	fmt.Fprintln(out, "starting the ledger: its DynamoDB table in moto_server, the ledger function's bootstrap under the Lambda emulator")
	ledgerPart, noLedger, err := startLedger(ctx)
	if err != nil {
		return fmt.Errorf("the ledger: %w", err)
	}
	if ledgerPart != nil {
		defer ledgerPart.close()
	}
	started := time.Now()
	tl := &timeline{start: started, out: out}
	fmt.Fprintf(out, "bastion-ttl demo: a Fargate bastion with a TTL of %s, all on this machine\n", ttl)
	if sessions {
		fmt.Fprintf(out, "(idle timeout %s; someone will log in, extend the TTL by %s, and leave)\n\n", idleTimeout, extendBy)
	} else {
		fmt.Fprintf(out, "(sessions are read from /proc/net/tcp, as on Fargate: not on %s, so this run shows the TTL alone)\n\n", runtime.GOOS)
	}

	// ECS: the task, running; a StopTask is what ECS then acts on.
	ecsAPI := ecsapi.New()
	// As bastion-ttl connect would start it: tagged with its TTL and its
	// owner (the person's user ID), with ECS Exec.
	ecsAPI.Add(ecsapi.Task{ARN: taskARN, ClusterARN: clusterARN, StartedAt: started, TaskDefinitionARN: taskDefARN,
		Containers: []string{"bastion", "supervisor"}, ExecuteCommand: true,
		Tags: map[string]string{ttltag.Key: ttl.String(), ttltag.OwnerKey: personUserID}, CPU: "256", Memory: "512"})
	stopped := make(chan ecsapi.Task, 1)
	ecsAPI.OnStop = func(t ecsapi.Task) { stopped <- t }
	tl.say("ECS", "task %s RUNNING (cluster default)", taskID)

	// The task's own endpoints: metadata v4 and container credentials.
	doc := taskmetadata.Document(taskARN, clusterARN, started)
	metaSrv := httptest.NewServer(taskmetadata.Handler(func() []byte { return doc }))
	defer metaSrv.Close()
	credsSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != credsToken {
			http.Error(w, `{"message":"unauthorized"}`, http.StatusUnauthorized)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]string{
			"AccessKeyId": accessKeyID, "SecretAccessKey": secretKey, "Token": token,
			"Expiration": time.Now().Add(time.Hour).UTC().Format(time.RFC3339),
		})
	}))
	defer credsSrv.Close()

	// The terminate function, in process, and the API in front of it.
	lambdaLog := logLines(func(rec map[string]any) {
		switch {
		case rec["outcome"] == "stopped":
			tl.say("terminate Lambda", "identity proof %v by STS; authorized (task role pinned, session name = task ID, cluster allowed), StopTask -> %v", rec["proof"], rec["status"])
		case rec["outcome"] == "extended":
			tl.say("terminate Lambda", "identity proof %v by STS; authorized; asked %v, recorded %v in the task's bastion-ttl tag (cap %v)", rec["proof"], rec["ttl_wanted"], rec["ttl"], fnMaxTTL)
		case rec["outcome"] == "recorded":
			tl.say("terminate Lambda", "identity proof %v by STS; the sidecar's usage summary recorded -> %v", rec["proof"], rec["status"])
		case rec["outcome"] != nil:
			tl.say("terminate Lambda", "%v %v: %v", rec["outcome"], rec["status"], rec["error"])
		case rec["level"] != "INFO" && rec["level"] != "DEBUG": // the ledger's writes say only what went wrong
			tl.say("terminate Lambda", "%v: %v %v", rec["level"], rec["msg"], rec["err"])
		}
	})
	// STS: the function sends it the supervisor's presigned
	// GetCallerIdentity and believes only the identity it answers. API
	// Gateway knows the same role session.
	taskRole := stack.TaskCaller(account, "bastion-ttl-BastionTaskRole", taskRoleID, taskARN,
		aws.Credentials{AccessKeyID: accessKeyID, SecretAccessKey: secretKey, SessionToken: token})
	local, err := stack.Start(stack.Config{
		Region: region, Account: account, Clusters: []string{"default"}, TaskRoles: []string{taskRoleID},
		Callers: []sts.Caller{taskRole}, MaxTTL: fnMaxTTL, ECS: ecsAPI, Log: lambdaLog, Ledger: ledgerPart.stackConfig(),
		Observe: func(part, event string, attrs ...any) {
			if part == "STS" {
				event = "GetCallerIdentity: " + event
			}
			tl.say(part, "%s %v", event, attrs)
		},
	})
	if err != nil {
		return err
	}
	defer local.Close()

	// The supervisor, as the sidecar: `supervisor watch`.
	accepted := make(chan struct{})
	supLog := logLines(func(rec map[string]any) {
		switch msg, _ := rec["msg"].(string); msg {
		case "deadline set":
			tl.say("supervisor", "StartedAt %v + TTL %v: deadline %v", rec["started_at"], rec["ttl"], rec["deadline"])
		case "TTL extended":
			tl.say("supervisor", "TTL extended from %v to %v: the TTL's deadline moves to %v", rec["ttl_before"], rec["ttl"], rec["ttl_deadline"])
		case "deadline reached, stopping the task":
			tl.say("supervisor", "deadline reached (%v): POST /terminate, SigV4-signed with the task role's credentials, with a presigned STS GetCallerIdentity as its proof of identity", rec["reason"])
		case "stop request answered":
			tl.say("supervisor", "API answered %v", rec["status"])
		case "stop accepted, waiting for ECS to stop the task":
			tl.say("supervisor", "stop accepted; waiting for ECS's SIGTERM")
			close(accepted)
		case "the bastion stops soon":
			tl.say("supervisor", "warning: the bastion stops in %v (%v limit)", rec["left"], rec["limit"])
		case "signal received, exiting":
			tl.say("supervisor", "SIGTERM: exit 0")
		default:
			if rec["level"] != "INFO" {
				tl.say("supervisor", "%v: %v %v", rec["level"], msg, rec["err"])
			}
		}
	})
	env := map[string]string{
		"ECS_CONTAINER_METADATA_URI_V4":      metaSrv.URL + "/v4/" + taskID + "-1",
		"BASTION_TERMINATE_URL":              local.APIURL + "/terminate",
		"AWS_ENDPOINT_URL_STS":               local.STSURL,
		"BASTION_TTL":                        ttl.String(),
		"BASTION_GRACE":                      "10s",
		"BASTION_CONTROL_ADDR":               "off",
		"AWS_REGION":                         region,
		"AWS_CONTAINER_CREDENTIALS_FULL_URI": credsSrv.URL + "/v2/credentials/" + taskID,
		"AWS_CONTAINER_AUTHORIZATION_TOKEN":  credsToken,
	}
	var people *bastion
	if sessions {
		if people, err = openBastion(tl); err != nil {
			return err
		}
		defer people.close()
		env["BASTION_CONTROL_ADDR"] = people.control
		env["BASTION_IDLE_TIMEOUT"] = idleTimeout.String()
		// This machine's other connections are not the bastion's: only its port.
		env["BASTION_IDLE_PORTS"] = people.port
		env["BASTION_WARN_BEFORE"] = "1s"
	}
	supCtx, sigterm := context.WithCancel(ctx)
	defer sigterm()
	exited := make(chan error, 1)
	go func() {
		exited <- supervisor.Run(supCtx, []string{"watch"}, supervisor.Env{Environ: env, Stdout: supLog, Stderr: supLog})
	}()
	sshPort := 2222
	if people != nil {
		sshPort, _ = strconv.Atoi(people.port)
	}
	def := demoTaskDefinition(sshPort)
	ecsAPI.TaskDefinitions = map[string]map[string]any{"bastion:1": def, taskDefARN: def}
	lt, err := openLaptops(tl, local.ECSURL)
	if err != nil {
		return err
	}
	defer lt.close()
	// Behind the bastion: a database and a cache, the laptop's two
	// connections of its bastion-ttl.yaml.
	behind := map[string]string{}
	for _, what := range []string{"db", "cache"} {
		ln, err := backend(what)
		if err != nil {
			return err
		}
		defer ln.Close()
		behind[what] = ln.Addr().String()
	}
	if err := lt.writeConnections(behind); err != nil {
		return err
	}
	var connects []<-chan connectResult
	if people != nil {
		// ops gets in as people do: bastion-ttl connect forwards the
		// bastion's own port (its SSH), and they log in through it.
		// Named: without --local-port, connect (at d05199c) forwards the
		// bastion's own port from localhost:0, a port the plugin picks.
		local, err := freePort()
		if err != nil {
			return err
		}
		ready, done := lt.connect(ctx, "ops: connect", started.Add(300*time.Millisecond), "--local-port", strconv.Itoa(local))
		connects = append(connects, done)
		go people.visit(ctx, started, ttl, ready)
	}
	// And someone reaches the database and the cache behind the bastion,
	// two forwards through it: after the extension when there is one.
	connectAt := started.Add(300 * time.Millisecond)
	if sessions {
		connectAt = started.Add(2200 * time.Millisecond)
	}
	ready, done := lt.connect(ctx, "laptop: connect", connectAt, "db", "cache")
	go func() {
		for range behind {
			select {
			case f := <-ready:
				if f.name == "cache" {
					go client(tl, "redis-cli", f.local, "PING", "the cache at "+behind["cache"])
				} else {
					go client(tl, "psql", f.local, "select 1", "the database at "+behind["db"])
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	connects = append(connects, done)

	select {
	case task := <-stopped:
		tl.say("ECS", "StopTask accepted; reason %q", task.StoppedReason)
	case err := <-exited:
		return fmt.Errorf("the supervisor exited before the task was stopped: %v", err)
	case <-ctx.Done():
		return errors.New("the task was not stopped in time")
	}
	// ECS stops the containers a moment after StopTask: SIGTERM first.
	select {
	case <-accepted:
		tl.say("ECS", "stopping the task: SIGTERM to its containers")
		sigterm()
	case err := <-exited:
		return fmt.Errorf("the supervisor exited before the task was stopped: %v", err)
	case <-ctx.Done():
		return errors.New("the task was not stopped in time")
	}
	if err := <-exited; err != nil {
		return fmt.Errorf("supervisor: %w", err)
	}
	final, _ := ecsAPI.Task(taskARN)
	want := "bastion-ttl: TTL " + ttl.String() + " expired"
	if sessions {
		want = "bastion-ttl: idle " + idleTimeout.String() + ": no session since "
	}
	if final.DesiredStatus != "STOPPED" || !strings.HasPrefix(final.StoppedReason, want) {
		return fmt.Errorf("task is %s with reason %q, want one starting %q", final.DesiredStatus, final.StoppedReason, want)
	}
	tl.say("ECS", "task %s STOPPED", taskID)
	// Every connect sees the bastion stop, and says so.
	var seen connectResult
	for _, done := range connects {
		select {
		case seen = <-done:
		case <-ctx.Done():
			return errors.New("bastion-ttl connect did not see the bastion stop")
		}
		if !strings.Contains(seen.said, "the bastion "+taskID+" stopped ("+final.StoppedReason+"); the connection is closed") {
			return fmt.Errorf("bastion-ttl connect ended with %q (%v), want the bastion's stop and its reason", seen.said, seen.err)
		}
	}
	tl.say("laptop", "%s", seen.said)
	if !sessions {
		fmt.Fprintf(out, "\nThe bastion stopped itself %s after its deadline, with the reason:\n  %s\nand the person connected through it was told:\n  %s\n",
			time.Since(started.Add(ttl)).Round(time.Millisecond), final.StoppedReason, seen.said)
	} else {
		if got, want := final.Tags[ttltag.Key], (ttl + extendBy).String(); got != want {
			return fmt.Errorf("the task's bastion-ttl tag is %q, want %q", got, want)
		}
		fmt.Fprintf(out, "\nThe session (ops' SSH, through bastion-ttl connect) kept the bastion alive past its %s idle timeout, the extension (tag bastion-ttl=%s)\n"+
			"carried it past its first deadline, and once nobody had been seen on it for %s it stopped itself:\n  %s\n"+
			"The person connected through it with bastion-ttl connect was told:\n  %s\n",
			idleTimeout, final.Tags[ttltag.Key], idleTimeout, final.StoppedReason, seen.said)
	}
	if ledgerPart == nil {
		fmt.Fprintf(out, "ledger: not run (%s)\n", noLedger)
		return nil
	}
	it, err := ledgerPart.judged(ctx, taskARN)
	if err != nil {
		return err
	}
	fmt.Fprintln(out, ledgerLine(it, final.CPU, final.Memory))
	return nil
}
