package launcher

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/bastion-ttl/bastion-ttl/internal/cli"
	"github.com/bastion-ttl/bastion-ttl/internal/controlapi"
	"github.com/bastion-ttl/bastion-ttl/internal/controlclient"
	"github.com/bastion-ttl/bastion-ttl/internal/lifetime"
	"github.com/bastion-ttl/bastion-ttl/internal/termtext"
)

// defaultControlAddr is the sidecar's BASTION_CONTROL_ADDR when its task
// definition sets none.
const defaultControlAddr = "127.0.0.1:8311"

// extendCmd is bastion-ttl extend.
func extendCmd(env *Env) *cli.Command {
	var c common
	var task string
	return &cli.Command{
		Name:      "extend",
		UsageLine: "extend [--task ID] [--cluster C] DURATION",
		Short:     "give your running bastion more time, up to the stack's cap",
		Long: `Extend asks your bastion's sidecar for DURATION more (30m, say), as a
person on the bastion would with supervisor extend: through a short port
forward of the sidecar's control port (BASTION_CONTROL_ADDR). The sidecar
asks the API, which extends only the task itself and caps its TTL at the
stack's MaxTTL. Your bastion is the one with the latest deadline, or --task.`,
		Flags: func(fs *flag.FlagSet) error {
			c.register(fs, env.Environ)
			fs.StringVar(&task, "task", "", "the bastion's task ID or ARN (default: your bastion with the latest deadline)")
			return nil
		},
		Interspersed: true, // extend 30m --task ID
		Run: withAWS(env, func(ctx context.Context, args []string) error {
			if len(args) != 1 {
				return badf("extend takes one duration, such as 30m: bastion-ttl extend 30m")
			}
			by, err := controlapi.ParseBy(args[0])
			if err != nil {
				return badf("extend: %v", err)
			}
			return extendCommand(ctx, env, c, task, by)
		}),
	}
}

func extendCommand(ctx context.Context, env *Env, cm common, task string, by time.Duration) error {
	cluster, maxTTL, err := clusterAndCap(ctx, *env, cm)
	if err != nil {
		return err
	}
	who, err := whoCalls(ctx, *env)
	if err != nil {
		return err
	}
	bastions, err := list(ctx, *env, cluster, maxTTL)
	if err != nil {
		return err
	}
	b, err := ownBastion(bastions, who.userID, task, cluster)
	if err != nil {
		return err
	}
	d, err := env.ECS.DescribeTasks(ctx, &ecs.DescribeTasksInput{Cluster: aws.String(cluster), Tasks: []string{b.TaskARN}})
	if err != nil {
		return awsError("describe-tasks "+b.TaskID, err)
	}
	if len(d.Tasks) != 1 {
		return fmt.Errorf("the bastion %s is gone from %s", b.TaskID, cluster)
	}
	t := d.Tasks[0]
	td, err := env.ECS.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: t.TaskDefinitionArn})
	if err != nil {
		return awsError("the task definition of "+b.TaskID, err)
	}
	port, err := controlPort(td.TaskDefinition, b.TaskID)
	if err != nil {
		return err
	}
	sup, _, _ := supervisorContainer(td.TaskDefinition, "")
	container, _ := bastionContainer(td.TaskDefinition, sup)
	runtimeID, err := execReady(ctx, *env, cluster, t, container)
	if err != nil {
		return cli.Usage(err.Error())
	}
	local, err := kernelPort()
	if err != nil {
		return err
	}
	plugin := env.Connect.Plugin
	if plugin == nil {
		plugin = PathPlugin{}
	}
	version, err := plugin.Version(ctx)
	if err != nil {
		return badf("%v: %s", err, pluginInstall)
	}
	c := &connection{env: *env, ce: env.Connect, plugin: plugin, version: version, cluster: cluster, arn: b.TaskARN,
		container: container, runtimeID: runtimeID, who: who}
	f := newForward("", "", port, local)
	var ans controlapi.Extended
	err = c.through(ctx, f, func(ctx context.Context) error {
		var err error
		ans, err = (&controlclient.Client{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(local))}).Extend(ctx, by)
		return err
	})
	var refused *controlclient.RefusedError
	switch {
	case errors.As(err, &refused) && refused.Status == 409 && b.Deadline != nil:
		return fmt.Errorf("the bastion %s is at its cap already (the stack's MaxTTL): it stops at %s", b.TaskID, when(*b.Deadline))
	case errors.As(err, &refused) && refused.Status == 409:
		return fmt.Errorf("the bastion %s is at its cap already (the stack's MaxTTL)", b.TaskID)
	case errors.As(err, &refused):
		return fmt.Errorf("the bastion %s's sidecar refused: %s", b.TaskID, termtext.Safe(refused.Error()))
	case err != nil:
		return fmt.Errorf("extend %s: %w", b.TaskID, err)
	}
	capped := ""
	if ans.Capped {
		capped = ", capped at the stack's MaxTTL"
	}
	deadline := ans.Deadline
	if ans.ExtendedTo != nil {
		deadline = ans.ExtendedTo
	}
	ttl := "?"
	if ans.TTL != nil {
		ttl = termtext.Safe(*ans.TTL)
	}
	if deadline == nil {
		_, err := fmt.Fprintf(env.Stdout, "the bastion %s now has a TTL of %s%s\n", b.TaskID, ttl, capped)
		return err
	}
	_, err = fmt.Fprintf(env.Stdout, "the bastion %s now stops at %s (TTL %s, %s left%s)\n", b.TaskID, when(*deadline), ttl, lifetime.LeftText(*deadline, env.Clock.Now()), capped)
	return err
}

// ownBastion is the caller's running bastion: the one task names, which
// must be theirs, else theirs with the latest deadline.
func ownBastion(bastions []Bastion, userID, task, cluster string) (Bastion, error) {
	var mine *Bastion
	for i, b := range bastions {
		if task != "" && (b.TaskARN == task || b.TaskID == task) {
			if b.Owner != userID {
				return Bastion{}, badf("the bastion %s is not yours (its owner is %s): extend reaches only your own", b.TaskID, termtext.Safe(b.Owner))
			}
			if b.Status != "RUNNING" {
				return Bastion{}, badf("the bastion %s is %s, not RUNNING: nothing to extend yet", b.TaskID, termtext.Safe(b.Status))
			}
			return b, nil
		}
		if task == "" && b.Owner == userID && b.Status == "RUNNING" && b.Deadline != nil && (mine == nil || b.Deadline.After(*mine.Deadline)) {
			mine = &bastions[i]
		}
	}
	switch {
	case task != "":
		return Bastion{}, badf("no running bastion %s in %s", termtext.Safe(task), cluster)
	case mine == nil:
		return Bastion{}, badf("no running bastion of yours in %s to extend (bastion-ttl ls lists them)", cluster)
	}
	return *mine, nil
}

// controlPort is the port of the sidecar's control endpoint, from its task
// definition: BASTION_CONTROL_ADDR, else its default.
func controlPort(def *types.TaskDefinition, id string) (int, error) {
	sup, isCheck, err := supervisorContainer(def, "")
	if err != nil || sup == nil {
		return 0, badf("the bastion %s has no supervisor sidecar, whose control endpoint extend asks", id)
	}
	if isCheck {
		return 0, badf("the bastion %s runs the supervisor as its health check, which serves no control endpoint: nothing can extend it", id)
	}
	addr := defaultControlAddr
	for _, c := range def.ContainerDefinitions {
		if aws.ToString(c.Name) != aws.ToString(sup) {
			continue
		}
		for _, kv := range c.Environment {
			if aws.ToString(kv.Name) == "BASTION_CONTROL_ADDR" {
				addr = aws.ToString(kv.Value)
			}
		}
	}
	if strings.TrimSpace(addr) == "off" {
		return 0, badf("the bastion %s's sidecar serves no control endpoint (BASTION_CONTROL_ADDR off): nothing can extend it", id)
	}
	_, p, err := net.SplitHostPort(addr)
	port, perr := strconv.Atoi(p)
	if err != nil || perr != nil || port < 1 || port > 65535 {
		return 0, badf("the bastion %s's BASTION_CONTROL_ADDR %q is not HOST:PORT", id, termtext.Safe(addr))
	}
	return port, nil
}

// kernelPort is a local port nothing listens on now, the kernel's pick.
func kernelPort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("no free local port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// through runs do while one session forwards f, then ends the session.
func (c *connection) through(ctx context.Context, f *forward, do func(context.Context) error) error {
	id, args, extra, err := c.open(ctx, f)
	if err != nil {
		return err
	}
	defer c.terminate(ctx, id)
	pctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	ready := make(chan struct{})
	out := &readyWriter{w: c.env.Stderr, ready: ready, marker: "Waiting for connections"}
	go func() { done <- c.plugin.Run(pctx, args, extra, nil, out, c.env.Stderr) }()
	defer func() {
		cancel()
		<-done
	}()
	select {
	case <-ready:
	case <-after(ctx, c.env.Clock, readyAfter):
		// Not yet listening: whatever holds the port now is not the forward.
		return fmt.Errorf("the session to the control port did not listen within %s", readyAfter)
	case err := <-done:
		done <- err // for the deferred wait
		if err == nil {
			err = errors.New("the plugin exited")
		}
		return fmt.Errorf("the session to the control port: %w", err)
	case <-ctx.Done():
		return errInterrupted
	}
	return do(ctx)
}
