package launcher

import (
	"context"
	"flag"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/bastion-ttl/bastion-ttl/internal/cli"
	"github.com/bastion-ttl/bastion-ttl/internal/fargate"
	"github.com/bastion-ttl/bastion-ttl/internal/ledger"
	"github.com/bastion-ttl/bastion-ttl/internal/termtext"
)

// The headroom rule: the size proposed holds the family's peaks times
// these, and never less than a size whose limit a bastion reached (a peak
// at the limit is a floor, not a measure of what it needed).
const (
	CPUHeadroom    = 1.5
	MemoryHeadroom = 1.25
	// AtLimit is how close to its size a peak counts as reaching it.
	AtLimit = 0.95
	// MinReports is how many bastions with a usage report rightsize needs.
	MinReports = 3
)

// Rightsizing is what rightsize found (its --json).
type Rightsizing struct {
	Family    string `json:"family"`
	Since     string `json:"since"`     // the window, e.g. 30d
	Bastions  int    `json:"bastions"`  // the family's items in the window
	WithUsage int    `json:"withUsage"` // those with a usage report and a size
	// Note says why there is no proposal, when there is none.
	Note            string        `json:"note,omitempty"`
	Region          string        `json:"region,omitempty"`
	Architecture    string        `json:"architecture,omitempty"`
	Current         *fargate.Size `json:"current"` // the newest bastion's size
	PeakVCPU        float64       `json:"peakVcpu"`
	PeakMemoryBytes int64         `json:"peakMemoryBytes"`
	CPULimitHit     bool          `json:"cpuLimitHit"`
	MemoryLimitHit  bool          `json:"memoryLimitHit"`
	NeedVCPU        float64       `json:"needVcpu"`
	NeedMemoryMiB   int           `json:"needMemoryMiB"`
	Proposed        *fargate.Size `json:"proposed"`
	// Costs at the region's rate (null: no rate; the proposal then ranks
	// sizes by us-east-1's). HoursPer30Days is the family's billed hours in
	// the window, scaled to 30 days.
	CurrentHourlyUSD  *float64 `json:"currentHourlyUsd"`
	ProposedHourlyUSD *float64 `json:"proposedHourlyUsd"`
	HoursPer30Days    float64  `json:"hoursPer30Days"`
	MonthlySavingUSD  *float64 `json:"monthlySavingUsd"`
}

// rightsizeCmd is bastion-ttl rightsize.
func rightsizeCmd(env *Env) *cli.Command {
	var l ledgerFlags
	var family string
	var asJSON bool
	return &cli.Command{
		Name:      "rightsize",
		UsageLine: "rightsize [--family F] [--since 30d] [--json]",
		Short:     "propose the cheapest Fargate size that fits a family's observed peaks",
		Long: fmt.Sprintf(`Rightsize reads the ledger's bastions (or jobs) of one family (default: the
stack's task definition's) since --since, and proposes the cheapest valid
Fargate size holding their peak vCPU × %g and peak memory × %g, never below
a size whose limit one of them reached (%g%% of it). It says the monthly
saving at the observed use: the difference of the hourly costs times the
family's billed hours per 30 days. It needs %d bastions with a usage report.
It reads the family index: operators.`, CPUHeadroom, MemoryHeadroom, AtLimit*100, MinReports),
		Flags: func(fs *flag.FlagSet) error {
			l.register(fs, env.Environ)
			fs.StringVar(&family, "family", "", "the task definition family (default: the stack's TaskDefinition)")
			fs.BoolVar(&asJSON, "json", false, "print JSON")
			return nil
		},
		Run: withAWS(env, func(ctx context.Context, args []string) error {
			return rightsizeCommand(ctx, args, *env, l, family, asJSON)
		}),
	}
}

func rightsizeCommand(ctx context.Context, args []string, env Env, l ledgerFlags, family string, asJSON bool) error {
	if len(args) > 0 {
		return badf("rightsize takes no arguments, got %q", args)
	}
	if err := checkName("--family", family); err != nil {
		return err
	}
	table, rates, d, err := l.resolve(ctx, env)
	if err != nil {
		return err
	}
	if family == "" {
		if !d.found {
			if d, err = stackDefaults(ctx, env, l.stack); err != nil {
				return err
			}
		}
		if family = familyOf(d.taskDefinition); family == "" {
			return badf("no family: pass --family, or deploy the stack %s with BastionTaskDefinition (its output TaskDefinition)", l.stack)
		}
	}
	now := env.Clock.Now()
	window := time.Duration(l.since)
	items, err := ledger.Read(ctx, env.Ledger, table, ledger.Selection{Family: family, Since: now.Add(-window)})
	if err != nil {
		return awsError("the ledger "+table+" (dynamodb query)", err)
	}
	r, missing := rightsize(items, family, l.since.String(), window, now, rates)
	if asJSON {
		err = printJSON(env, r)
	} else {
		err = printRightsizing(env, r)
	}
	if missing != "" {
		noteMissingRates(env, map[string]bool{missing: true})
	}
	return err
}

// familyOf is a task definition's family: from its ARN, family:revision,
// or name.
func familyOf(td string) string {
	if _, rest, ok := strings.Cut(td, ":task-definition/"); ok {
		td = rest
	}
	f, _, _ := strings.Cut(td, ":")
	return f
}

// rightsize applies the rule to a family's items; missing is the region
// whose rate the table lacks ("" when none).
func rightsize(items []ledger.Item, family, since string, window time.Duration, now time.Time, rates fargate.Rates) (r Rightsizing, missing string) {
	r = Rightsizing{Family: termtext.Safe(family), Since: since, Bastions: len(items)}
	var hours float64
	var newest *ledger.Item
	for i, it := range items {
		size, known, _, _ := taskSize(it)
		if !known {
			continue
		}
		from, to, _ := billedSpan(it, now)
		if !from.IsZero() {
			hours += fargate.Billed(from, to).Hours()
		}
		u := it.Usage
		if u == nil {
			continue
		}
		r.WithUsage++
		if newest == nil {
			newest = &items[i] // items come newest first
		}
		r.PeakVCPU = math.Max(r.PeakVCPU, u.CPUPeakVCPU)
		r.PeakMemoryBytes = max(r.PeakMemoryBytes, u.MemoryPeakBytes)
		if u.CPUPeakVCPU >= AtLimit*size.VCPU() {
			r.CPULimitHit = true
			r.NeedVCPU = math.Max(r.NeedVCPU, size.VCPU())
		}
		if float64(u.MemoryPeakBytes) >= AtLimit*float64(size.MemoryMiB)*(1<<20) {
			r.MemoryLimitHit = true
			r.NeedMemoryMiB = max(r.NeedMemoryMiB, size.MemoryMiB)
		}
	}
	r.HoursPer30Days = hours * float64(30*24*time.Hour) / float64(window)
	if r.WithUsage < MinReports {
		r.Note = fmt.Sprintf("too few bastions of %s with a usage report since %s: %d of %d; rightsize needs %d", r.Family, since, r.WithUsage, r.Bastions, MinReports)
		return r, ""
	}
	current, _, region, arch := taskSize(*newest)
	r.Current, r.Region, r.Architecture = &current, termtext.Safe(region), termtext.Safe(arch)
	r.NeedVCPU = math.Max(r.NeedVCPU, r.PeakVCPU*CPUHeadroom)
	r.NeedMemoryMiB = max(r.NeedMemoryMiB, int(math.Ceil(float64(r.PeakMemoryBytes)*MemoryHeadroom/(1<<20))))
	rate, priced := rates.Lookup(region, arch)
	rank := rate
	if !priced {
		missing = r.Region
		rank, _ = fargate.Public.Lookup("us-east-1", arch)
	}
	proposed, err := fargate.Cheapest(r.NeedVCPU, r.NeedMemoryMiB, rank)
	if err != nil {
		r.Note = err.Error()
		return r, missing
	}
	r.Proposed = &proposed
	if priced {
		c, p := fargate.Hourly(current, rate), fargate.Hourly(proposed, rate)
		s := (c - p) * r.HoursPer30Days
		r.CurrentHourlyUSD, r.ProposedHourlyUSD, r.MonthlySavingUSD = &c, &p, &s
	}
	return r, missing
}

func printRightsizing(env Env, r Rightsizing) error {
	var b strings.Builder
	fmt.Fprintf(&b, "family %s: %d bastions since %s, %d with a usage report\n", r.Family, r.Bastions, r.Since, r.WithUsage)
	if r.Current == nil {
		fmt.Fprintln(&b, r.Note)
		_, err := fmt.Fprint(env.Stdout, b.String())
		return err
	}
	limits := ""
	if r.CPULimitHit {
		limits += " (vCPU reached its limit)"
	}
	if r.MemoryLimitHit {
		limits += " (memory reached its limit)"
	}
	fmt.Fprintf(&b, "peak use:  %.2f vCPU, %d MiB%s\n", r.PeakVCPU, r.PeakMemoryBytes>>20, limits)
	fmt.Fprintf(&b, "need:      %.2f vCPU, %d MiB (peaks × %g vCPU, × %g memory)\n", r.NeedVCPU, r.NeedMemoryMiB, CPUHeadroom, MemoryHeadroom)
	fmt.Fprintf(&b, "current:   %s (cpu %d, memory %d)%s\n", r.Current, r.Current.CPU, r.Current.MemoryMiB, perHour(r.CurrentHourlyUSD))
	if r.Proposed == nil {
		fmt.Fprintln(&b, r.Note)
	} else {
		fmt.Fprintf(&b, "proposed:  %s (cpu %d, memory %d)%s\n", r.Proposed, r.Proposed.CPU, r.Proposed.MemoryMiB, perHour(r.ProposedHourlyUSD))
		switch s := r.MonthlySavingUSD; {
		case *r.Proposed == *r.Current:
			fmt.Fprintln(&b, "the current size is already the cheapest that fits")
		case s == nil:
			fmt.Fprintf(&b, "saving: ? (no rate for %s)\n", r.Region)
		case *s >= 0:
			fmt.Fprintf(&b, "saving: $%.2f a month at %.1f billed hours per 30 days (%s, %s)\n", *s, r.HoursPer30Days, r.Region, r.Architecture)
		default:
			fmt.Fprintf(&b, "the current size is too small: $%.2f a month more at %.1f billed hours per 30 days\n", -*s, r.HoursPer30Days)
		}
	}
	_, err := fmt.Fprint(env.Stdout, b.String())
	return err
}

func perHour(c *float64) string {
	if c == nil {
		return ""
	}
	return "  $" + strconv.FormatFloat(*c, 'f', 6, 64) + "/h"
}
