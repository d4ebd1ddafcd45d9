package launcher

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/bastion-ttl/bastion-ttl/internal/cli"
	"github.com/bastion-ttl/bastion-ttl/internal/lifetime"
	"github.com/bastion-ttl/bastion-ttl/internal/termtext"
	"github.com/bastion-ttl/bastion-ttl/internal/ttltag"
)

// Bastion is one line of ls.
type Bastion struct {
	TaskID    string     `json:"taskId"`
	TaskARN   string     `json:"taskArn"`
	StartedBy string     `json:"startedBy"`
	Owner     string     `json:"owner"` // the user ID (<RoleId>:<session>) of who ran it, when bastion-ttl did
	StartedAt *time.Time `json:"startedAt"`
	TTL       string     `json:"ttl"`
	Deadline  *time.Time `json:"deadline"`
	Left      string     `json:"left"`
	Status    string     `json:"status"`
	Reason    string     `json:"reason,omitempty"` // why it was started (its reason tag), in full
	// ConnectReuses marks the bastion that `bastion-ttl connect` by the caller would reuse.
	ConnectReuses bool `json:"connectReuses,omitempty"`
}

// lsCmd is bastion-ttl ls.
func lsCmd(env *Env) *cli.Command {
	var c common
	var asJSON bool
	return &cli.Command{
		Name:      "ls",
		UsageLine: "ls [--cluster C] [--json]",
		Short:     "list the running bastions",
		Long: `Ls lists the cluster's running bastions, oldest first, each with who
started it, its TTL, deadline, time left and reason (cut to 40 characters;
--json has it whole), and marks the one that
bastion-ttl connect would reuse.`,
		Flags: func(fs *flag.FlagSet) error {
			c.register(fs, env.Environ)
			fs.BoolVar(&asJSON, "json", false, "print JSON")
			return nil
		},
		Run: withAWS(env, func(ctx context.Context, args []string) error { return lsCommand(ctx, args, *env, c, asJSON) }),
	}
}

func lsCommand(ctx context.Context, args []string, env Env, c common, asJSON bool) error {
	if len(args) > 0 {
		return badf("ls takes no arguments, got %q", args)
	}
	cluster, maxTTL, err := clusterAndCap(ctx, env, c)
	if err != nil {
		return err
	}
	bastions, err := list(ctx, env, cluster, maxTTL)
	if err != nil {
		return err
	}
	reuse := markReuse(ctx, env, cluster, bastions)
	for i := range bastions {
		bastions[i] = bastions[i].shown()
	}
	if asJSON {
		if bastions == nil {
			bastions = []Bastion{}
		}
		return printJSON(env, bastions)
	}
	if len(bastions) == 0 {
		_, err := fmt.Fprintf(env.Stdout, "no bastions running in %s\n", cluster)
		return err
	}
	tw := tabwriter.NewWriter(env.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TASK\tSTARTED BY\tSTARTED\tTTL\tDEADLINE\tLEFT\tSTATUS\tREASON")
	for _, b := range bastions {
		who := b.StartedBy
		if b.Owner != "" {
			who = ownerName(b.Owner)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", b.TaskID, cmp.Or(who, "-"), stamp(b.StartedAt), b.TTL, stamp(b.Deadline), cmp.Or(b.Left, "-"), b.Status, cmp.Or(cut(b.Reason, reasonWidth), "-"))
	}
	if err := tw.Flush(); err != nil || reuse == "" {
		return err
	}
	_, err = fmt.Fprintln(env.Stdout, reuse)
	return err
}

// shown is b as ls prints it, JSON too: its text from ECS made safe for a
// terminal (package termtext), since `jq -r` prints JSON's strings raw. A
// tag ECS accepted loses nothing (its values hold no such character); one
// that had them shows where, as escapes.
func (b Bastion) shown() Bastion {
	for _, s := range []*string{&b.TaskID, &b.TaskARN, &b.StartedBy, &b.Owner, &b.TTL, &b.Status, &b.Reason} {
		*s = termtext.Safe(*s)
	}
	return b
}

// reasonWidth is the most characters of a reason the table shows; --json
// has it whole.
const reasonWidth = 40

// cut is s, at most n characters, ending in "…" when cut short.
func cut(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "…"
}

// printJSON is v as the commands' --json print it.
func printJSON(env Env, v any) error {
	enc := json.NewEncoder(env.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func stamp(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04Z")
}

// resolveCluster is the flag's, the environment's or the stack's cluster.
func resolveCluster(ctx context.Context, env Env, c common) (string, error) {
	cluster, _, err := clusterAndCap(ctx, env, c)
	return cluster, err
}

// clusterAndCap is resolveCluster's cluster, and the stack's cap when the
// stack was read for it (0: not known).
func clusterAndCap(ctx context.Context, env Env, c common) (cluster string, maxTTL time.Duration, err error) {
	if c.cluster != "" {
		return c.cluster, 0, nil
	}
	d, err := stackDefaults(ctx, env, c.stack)
	if err != nil {
		return "", 0, err
	}
	if err := need(d.cluster, "cluster", "BASTION_CLUSTER", "ClusterName", c.stack, d); err != nil {
		return "", 0, err
	}
	return d.cluster, d.maxTTL, nil
}

// list is the cluster's running tasks tagged bastion-ttl, oldest first,
// each with the TTL its tag gives under maxTTL (package ttltag's rule; 0:
// the cap is not known, and a value that says no TTL gives no deadline).
func list(ctx context.Context, env Env, cluster string, maxTTL time.Duration) ([]Bastion, error) {
	var arns []string
	pages := ecs.NewListTasksPaginator(env.ECS, &ecs.ListTasksInput{Cluster: aws.String(cluster), DesiredStatus: types.DesiredStatusRunning})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, clusterError(cluster, err)
		}
		arns = append(arns, page.TaskArns...)
	}
	now := env.Clock.Now()
	var out []Bastion
	for batch := range slices.Chunk(arns, 100) {
		d, err := env.ECS.DescribeTasks(ctx, &ecs.DescribeTasksInput{Cluster: aws.String(cluster), Tasks: batch, Include: []types.TaskField{types.TaskFieldTags}})
		if err != nil {
			return nil, awsError("describe-tasks", err)
		}
		for _, t := range d.Tasks {
			tags := map[string]string{}
			for _, tag := range t.Tags {
				tags[aws.ToString(tag.Key)] = aws.ToString(tag.Value)
			}
			ttlValue, marked := tags[ttltag.Key]
			if !marked {
				continue
			}
			b := Bastion{TaskID: taskID(aws.ToString(t.TaskArn)), TaskARN: aws.ToString(t.TaskArn), StartedBy: aws.ToString(t.StartedBy),
				Owner: tags[ttltag.OwnerKey], StartedAt: t.StartedAt, TTL: ttlValue, Status: aws.ToString(t.LastStatus), Reason: tags[ttltag.ReasonKey]}
			if life, _ := ttltag.Lifetime(ttlValue, aws.ToTime(t.StartedAt), maxTTL); life.TTL > 0 && t.StartedAt != nil {
				deadline := life.Deadline()
				b.TTL, b.Deadline = life.TTL.String(), &deadline
				b.Left = lifetime.LeftText(deadline, now)
			}
			out = append(out, b)
		}
	}
	// Oldest first; not started yet last; then by ID.
	slices.SortFunc(out, func(a, b Bastion) int {
		switch {
		case a.StartedAt == nil && b.StartedAt != nil:
			return 1
		case a.StartedAt != nil && b.StartedAt == nil:
			return -1
		case a.StartedAt != nil && !a.StartedAt.Equal(*b.StartedAt):
			return a.StartedAt.Compare(*b.StartedAt)
		}
		return strings.Compare(a.TaskID, b.TaskID)
	})
	return out, nil
}

// clusterError says a missing cluster plainly.
func clusterError(cluster string, err error) error {
	if nf := (*types.ClusterNotFoundException)(nil); errors.As(err, &nf) {
		return badf("cluster %q does not exist in this account and region: pass --cluster, or check AWS_PROFILE and AWS_REGION", cluster)
	}
	return awsError("list-tasks", err)
}
