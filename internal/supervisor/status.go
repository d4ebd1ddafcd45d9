package supervisor

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/bastion-ttl/bastion-ttl/internal/backoff"
	"github.com/bastion-ttl/bastion-ttl/internal/lifetime"
)

// statusReport is the output of status --json.
type statusReport struct {
	TaskARN   string    `json:"taskArn"`
	StartedAt time.Time `json:"startedAt"`
	TTL       string    `json:"ttl"`
	Deadline  time.Time `json:"deadline"`
	Left      string    `json:"left"`
	LeftSecs  float64   `json:"leftSeconds"`
	Expired   bool      `json:"expired"`
}

// status prints the bastion's start, TTL, deadline and time left for a person.
func (a *app) status(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	asJSON := fs.Bool("json", false, "print JSON")
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 {
		return usagef("status takes only --json, got %q", args)
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	start, err := a.waiter(backoff.Policy{Base: 100 * time.Millisecond, Max: time.Second}).Wait(ctx)
	if err != nil {
		return err
	}
	lt := lifetime.Lifetime{Start: start.Time, TTL: a.cfg.TTL}
	now := a.clock.Now()
	r := statusReport{
		TaskARN: start.TaskARN, StartedAt: start.Time.UTC(), TTL: a.cfg.TTL.String(),
		Deadline: lt.Deadline().UTC(), Left: lt.Left(now).Round(time.Second).String(),
		LeftSecs: lt.Left(now).Seconds(), Expired: lt.Expired(now),
	}
	if *asJSON {
		enc := json.NewEncoder(a.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	left := r.Left
	if r.Expired {
		left = fmt.Sprintf("none: expired %s ago", now.Sub(lt.Deadline()).Round(time.Second))
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "task\t%s\n", r.TaskARN)
	fmt.Fprintf(tw, "started\t%s\n", r.StartedAt.Format(time.RFC3339))
	fmt.Fprintf(tw, "ttl\t%s\n", r.TTL)
	fmt.Fprintf(tw, "deadline\t%s\n", r.Deadline.Format(time.RFC3339))
	fmt.Fprintf(tw, "left\t%s\n", left)
	return tw.Flush()
}
