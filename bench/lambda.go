package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/bastion-ttl/bastion-ttl/internal/localaws/ecsapi"
	"github.com/bastion-ttl/bastion-ttl/internal/localaws/stack"
	"github.com/bastion-ttl/bastion-ttl/internal/localaws/sts"
	"github.com/bastion-ttl/bastion-ttl/internal/testenv"
)

const (
	benchTaskID     = "0f3a9c1be7d84a52b6c1d2e3f4a5b6c7"
	benchTaskARN    = "arn:aws:ecs:eu-west-1:123456789012:task/bastions/" + benchTaskID
	benchClusterARN = "arn:aws:ecs:eu-west-1:123456789012:cluster/bastions"
)

func stopEvent() events.APIGatewayV2HTTPRequest {
	ev := events.APIGatewayV2HTTPRequest{Version: "2.0", RouteKey: "POST /terminate", RawPath: "/terminate", Body: `{"taskArn":"` + benchTaskARN + `","reason":"TTL 30m0s expired"}`}
	ev.RequestContext.HTTP.Method = http.MethodPost
	ev.RequestContext.AccountID = "123456789012"
	ev.RequestContext.Authorizer = &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{
		IAM: &events.APIGatewayV2HTTPRequestContextAuthorizerIAMDescription{UserARN: "arn:aws:sts::123456789012:assumed-role/bastion/" + benchTaskID, UserID: "AROAZBASTIONTASKROLE1:" + benchTaskID},
	}
	return ev
}

// benchConfig is the local stack the function benchmarks run: the bench
// task's role session is the caller STS knows.
func benchConfig() stack.Config {
	return stack.Config{
		Region: "eu-west-1", Account: "123456789012", Clusters: []string{"bastions"}, TaskRoles: []string{"AROAZBASTIONTASKROLE1"},
		Callers: []sts.Caller{stack.TaskCaller("123456789012", "bastion", "AROAZBASTIONTASKROLE1", benchTaskARN, benchCreds)},
	}
}

// benchWarmHandler times the warm handler in process: the real SDK client
// signing and sending StopTask to the local ECS, the proof checked by the
// local STS (which verifies its signature, as STS does).
func benchWarmHandler(n int) ([]row, error) {
	c := benchConfig()
	c.ECS = ecsapi.New()
	c.ECS.Add(ecsapi.Task{ARN: benchTaskARN, ClusterARN: benchClusterARN, StartedAt: time.Now()})
	st, err := stack.Start(c)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	svc := st.Function
	// timeIt runs the handler n times (after 50 that warm the connection
	// pools) on the events ev makes, which are made outside the timing.
	timeIt := func(ev func() events.APIGatewayV2HTTPRequest) ([]time.Duration, error) {
		var times []time.Duration
		for i := range n + 50 {
			e := ev()
			began := time.Now()
			resp, _ := svc.Handle(context.Background(), e)
			if resp.StatusCode != http.StatusAccepted {
				return nil, fmt.Errorf("warm handler: status %d %s", resp.StatusCode, resp.Body)
			}
			if i >= 50 {
				times = append(times, time.Since(began))
			}
		}
		slices.Sort(times)
		return times, nil
	}
	proven, err := timeIt(func() events.APIGatewayV2HTTPRequest { return withProof(stopEvent(), st.STSURL) })
	if err != nil {
		return nil, err
	}
	svc.Prover.AcceptUnproven = true
	unproven, err := timeIt(stopEvent)
	if err != nil {
		return nil, err
	}
	median, p99 := proven[len(proven)/2], proven[len(proven)*99/100]
	added := proven[len(proven)/2] - unproven[len(unproven)/2]
	return []row{
		{fmt.Sprintf("terminate handler, warm, in process, real SDK to the local ECS, proof checked by the local STS: median (p99) of %d", n),
			fmt.Sprintf("%.2f ms (%.2f ms)", ms(median), ms(p99)), "<= 5 ms", verdict(median <= 5*time.Millisecond)},
		{"... of which the proof of identity (the same without one, BASTION_ACCEPT_UNPROVEN): its checks and one STS round trip on loopback, the local STS verifying the signature; in AWS add STS's own latency",
			fmt.Sprintf("%.2f ms (without: %.2f ms)", ms(added), ms(unproven[len(unproven)/2])), "", ""},
	}, nil
}

var initReport = regexp.MustCompile(`INIT REPORT\(durationMs: ([0-9.]+)\)`)

// benchColdStart starts the bootstrap under the Runtime Interface Emulator
// runs times and reads the emulator's init duration of each first invocation.
func benchColdStart(rie, bootstrap string, runs int) (row, error) {
	var inits []float64
	for range runs {
		addr, cmd, out, err := startEmulator(rie, bootstrap, benchConfig().Env("http://127.0.0.1:9", ""))
		if err != nil {
			return row{}, err
		}
		ev, _ := json.Marshal(events.APIGatewayV2HTTPRequest{Version: "2.0"})
		var resp *http.Response
		for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
			if resp, err = http.Post(testenv.InvokeURL(addr), "application/json", bytes.NewReader(ev)); err == nil {
				break
			}
		}
		if resp != nil {
			resp.Body.Close()
		}
		time.Sleep(100 * time.Millisecond)
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		m := initReport.FindStringSubmatch(out.String())
		if m == nil {
			return row{}, fmt.Errorf("no INIT REPORT in the emulator's output:\n%s", out.String())
		}
		v, _ := strconv.ParseFloat(m[1], 64)
		inits = append(inits, v)
	}
	slices.Sort(inits)
	median := inits[len(inits)/2]
	return row{fmt.Sprintf("terminate cold start under the emulator (INIT REPORT durationMs), median (max) of %d", runs),
		fmt.Sprintf("%.1f ms (%.1f ms)", median, inits[len(inits)-1]), "<= 50 ms", verdict(median <= 50)}, nil
}

// startEmulator runs the terminate bootstrap under the emulator with env
// and returns the emulator's address.
func startEmulator(rie, bootstrap string, env map[string]string) (string, *exec.Cmd, *bytes.Buffer, error) {
	cmd, addr, err := testenv.EmulatorCommand(rie, bootstrap, env)
	if err != nil {
		return "", nil, nil, err
	}
	out := &bytes.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return "", nil, nil, err
	}
	return addr, cmd, out, nil
}

// benchWarmEmulator times warm invocations of the terminate bootstrap under
// the emulator (the round trip through its invoke API), StopTask answered
// by a local ECS endpoint.
func benchWarmEmulator(rie, bootstrap string, n int) (row, error) {
	c := benchConfig()
	c.ECS = ecsapi.New()
	c.ECS.Add(ecsapi.Task{ARN: benchTaskARN, ClusterARN: benchClusterARN, StartedAt: time.Now()})
	var out *bytes.Buffer
	var cmd *exec.Cmd
	c.Bootstrap = func(env map[string]string) (string, error) {
		env["BASTION_LOG_LEVEL"] = "warn"
		var addr string
		var err error
		addr, cmd, out, err = startEmulator(rie, bootstrap, env)
		return testenv.InvokeURL(addr), err
	}
	st, err := stack.Start(c)
	if err != nil {
		return row{}, err
	}
	defer st.Close()
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	invoke := st.Gateway.Invoke
	var times []time.Duration
	for end := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, err := invoke(context.Background(), withProof(stopEvent(), st.STSURL)); err == nil {
			break
		} else if time.Now().After(end) {
			return row{}, fmt.Errorf("emulator not answering: %v\n%s", err, out.String())
		}
	}
	for i := range n + 20 {
		ev := withProof(stopEvent(), st.STSURL)
		began := time.Now()
		resp, err := invoke(context.Background(), ev)
		if err != nil || resp.StatusCode != http.StatusAccepted {
			return row{}, fmt.Errorf("warm invoke: %v %d %s", err, resp.StatusCode, resp.Body)
		}
		if i >= 20 {
			times = append(times, time.Since(began))
		}
	}
	slices.Sort(times)
	return row{fmt.Sprintf("terminate warm invocation under the emulator, round trip: median (p99) of %d", n),
		fmt.Sprintf("%.2f ms (%.2f ms)", ms(times[len(times)/2]), ms(times[len(times)*99/100])), "", ""}, nil
}
