package launcher

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/bastion-ttl/bastion-ttl/internal/cli"
	"github.com/bastion-ttl/bastion-ttl/internal/ecsarn"
	"github.com/bastion-ttl/bastion-ttl/internal/fargate"
	"github.com/bastion-ttl/bastion-ttl/internal/ledger"
	"github.com/bastion-ttl/bastion-ttl/internal/termtext"
)

// Me is --owner's value for the caller: her user ID, the owner tag's value.
const Me = "ME"

// Past is one line of history: one bastion (or job) from the ledger.
type Past struct {
	TaskID  string `json:"taskId"`
	TaskARN string `json:"taskArn"`
	Family  string `json:"family"`
	Owner   string `json:"owner"`  // the user ID of who ran it
	Reason  string `json:"reason"` // why, as they said
	// StartedAt is ECS's start (its creation when it never started);
	// StoppedAt is null while it runs.
	StartedAt       *time.Time `json:"startedAt"`
	StoppedAt       *time.Time `json:"stoppedAt"`
	LifetimeSeconds float64    `json:"lifetimeSeconds"` // StartedAt to StoppedAt, or to now
	Ending          string     `json:"ending"`          // the ledger's ending; "running"
	Verdict         string     `json:"verdict"`
	LatenessSeconds *float64   `json:"latenessSeconds"` // stopping less deadline; null: no deadline
	CPU             int        `json:"cpu"`             // CPU units (1024 a vCPU); 0: not recorded
	MemoryMiB       int        `json:"memoryMiB"`
	Architecture    string     `json:"architecture"` // x86_64 or arm64
	Region          string     `json:"region"`
	PeakMemoryBytes *int64     `json:"peakMemoryBytes"` // null: no usage report
	PeakVCPU        *float64   `json:"peakVcpu"`
	// BilledSeconds is Fargate's billed time (pull start to stop, at least
	// a minute); CostUSD its on-demand price, null when the size or the
	// region's rate is not known.
	BilledSeconds *float64 `json:"billedSeconds"`
	CostUSD       *float64 `json:"costUsd"`
}

// ledgerFlags are the flags of the commands that read the ledger.
type ledgerFlags struct {
	stack, table, rates string
	since               sinceFlag
}

func (l *ledgerFlags) register(fs *flag.FlagSet, environ map[string]string) {
	fs.StringVar(&l.stack, "stack", cmp.Or(environ["BASTION_STACK"], "bastion-ttl"), "the deployed stack whose outputs give the defaults")
	fs.StringVar(&l.table, "table", environ["BASTION_LEDGER_TABLE"], "the ledger's DynamoDB table (default: the stack's output LedgerTableName)")
	fs.StringVar(&l.rates, "rates", "", "a JSON file of Fargate rates, {region: {x86_64|arm64: {vcpuHour, gbHour}}}, over the built-in table")
	l.since = sinceFlag(30 * 24 * time.Hour)
	fs.Var(&l.since, "since", "how far back: 30d, 12h, 2w")
}

// resolve is the table and the rates; d is the stack's defaults when they
// were read (the table's name was not given).
func (l *ledgerFlags) resolve(ctx context.Context, env Env) (table string, rates fargate.Rates, d defaults, err error) {
	rates = fargate.Public
	if l.rates != "" {
		if rates, err = fargate.ReadRates(l.rates); err != nil {
			return "", nil, d, badf("--rates %s: %v", termtext.Safe(l.rates), safeError{err})
		}
	}
	if env.Ledger == nil {
		return "", nil, d, errors.New("no DynamoDB client")
	}
	if l.table != "" {
		return l.table, rates, d, nil
	}
	if d, err = stackDefaults(ctx, env, l.stack); err != nil {
		return "", nil, d, err
	}
	return d.ledgerTable, rates, d, need(d.ledgerTable, "table", "BASTION_LEDGER_TABLE", "LedgerTableName", l.stack, d)
}

// sinceFlag is --since: a Go duration, or whole days (30d) or weeks (2w).
type sinceFlag time.Duration

func (s *sinceFlag) String() string {
	if s == nil {
		return ""
	}
	d := time.Duration(*s)
	if d%(24*time.Hour) == 0 {
		return strconv.FormatInt(int64(d/(24*time.Hour)), 10) + "d"
	}
	return d.String()
}

func (s *sinceFlag) Set(v string) error {
	unit := map[byte]time.Duration{'d': 24 * time.Hour, 'w': 7 * 24 * time.Hour}
	var d time.Duration
	var err error
	if n := len(v); n > 1 && unit[v[n-1]] > 0 {
		var k int
		k, err = strconv.Atoi(v[:n-1])
		d = time.Duration(k) * unit[v[n-1]]
	} else {
		d, err = time.ParseDuration(v)
	}
	if err != nil {
		return errors.New("not a duration such as 30d, 2w or 12h")
	}
	if d <= 0 || d > 10*366*24*time.Hour {
		return errors.New("must be more than 0 and at most 10 years")
	}
	*s = sinceFlag(d)
	return nil
}

// historyCmd is bastion-ttl history.
func historyCmd(env *Env) *cli.Command {
	var l ledgerFlags
	var owner, family string
	var asJSON bool
	return &cli.Command{
		Name:      "history",
		UsageLine: "history [--since 30d] [--owner ME|ID] [--family F] [--json]",
		Short:     "list past bastions and jobs from the ledger: who, why, how they ended, use and cost",
		Long: `History lists the ledger's bastions and jobs, newest first: who ran each and
why, when it started, its lifetime, how it ended, its lateness, its peak
memory and CPU, and its Fargate cost. By default it lists yours (--owner ME,
your user ID): a launcher may read only her own. --owner ID names another
owner (a user ID such as AROA...:bob, or an older tag's ARN); --family F lists
one family (the family index: operators). Cost is Fargate's on-demand price
(per second from the image pull to the stop, one minute at least) at the
built-in rates, or --rates; a region without a rate shows ?.`,
		Flags: func(fs *flag.FlagSet) error {
			l.register(fs, env.Environ)
			fs.StringVar(&owner, "owner", "", "whose: ME (the default without --family), or a user ID")
			fs.StringVar(&family, "family", "", "one task definition family")
			fs.BoolVar(&asJSON, "json", false, "print JSON")
			return nil
		},
		Run: withAWS(env, func(ctx context.Context, args []string) error {
			return historyCommand(ctx, args, *env, l, owner, family, asJSON)
		}),
	}
}

func historyCommand(ctx context.Context, args []string, env Env, l ledgerFlags, owner, family string, asJSON bool) error {
	if len(args) > 0 {
		return badf("history takes no arguments, got %q", args)
	}
	if owner == "" && family == "" {
		owner = Me
	}
	if err := checkName("--owner", owner); err != nil {
		return err
	}
	if err := checkName("--family", family); err != nil {
		return err
	}
	table, rates, _, err := l.resolve(ctx, env)
	if err != nil {
		return err
	}
	if owner == Me {
		c, err := whoCalls(ctx, env)
		if err != nil {
			return err
		}
		owner = c.userID
	}
	now := env.Clock.Now()
	items, err := ledger.Read(ctx, env.Ledger, table, ledger.Selection{Owner: owner, Family: family, Since: now.Add(-time.Duration(l.since))})
	if err != nil {
		return awsError("the ledger "+table+" (dynamodb query)", err)
	}
	missing := map[string]bool{}
	rows := make([]Past, 0, len(items))
	for _, it := range items {
		p := past(it, now, rates)
		if p.CostUSD == nil && p.CPU > 0 {
			missing[p.Region] = true
		}
		rows = append(rows, p)
	}
	if err := printHistory(env, rows, asJSON); err != nil {
		return err
	}
	noteMissingRates(env, missing)
	return nil
}

// checkName refuses a flag's value no table key can be: empty when given,
// or text no terminal should see.
func checkName(flagName, v string) error {
	if termtext.HasUnsafe(v) || len(v) > 1024 {
		return badf("%s %q: not a user ID or a family", flagName, termtext.Safe(v))
	}
	return nil
}

// noteMissingRates says once which regions had no rate.
func noteMissingRates(env Env, missing map[string]bool) {
	if len(missing) == 0 || env.Stderr == nil {
		return
	}
	regions := slices.Sorted(maps.Keys(missing))
	fmt.Fprintf(env.Stderr, "bastion-ttl: no Fargate rates for %s (built in: %s, as of %s): cost shown as ?; pass --rates FILE\n",
		termtext.Safe(strings.Join(regions, ", ")), strings.Join(slices.Sorted(maps.Keys(fargate.Public)), ", "), fargate.RatesDate)
}

// taskSize is an item's size, region and architecture, as Fargate bills it.
func taskSize(it ledger.Item) (size fargate.Size, known bool, region, arch string) {
	size, known = fargate.ParseSize(it.CPU, it.Memory)
	if t, err := ecsarn.ParseTask(it.TaskARN); err == nil {
		region = t.Region
	}
	return size, known, region, cmp.Or(it.CPUArchitecture, fargate.X86)
}

// billedSpan is what Fargate bills an item from and to: the pull's start
// (else ECS's start, else its creation) to its stop (else now).
func billedSpan(it ledger.Item, now time.Time) (from, to time.Time, running bool) {
	from = it.PullStartedAt
	if from.IsZero() {
		from = cmp.Or(it.StartedAt, it.CreatedAt)
	}
	to = it.StoppedAt
	if to.IsZero() {
		return from, now, true
	}
	return from, to, false
}

func past(it ledger.Item, now time.Time, rates fargate.Rates) Past {
	size, known, region, arch := taskSize(it)
	p := Past{
		TaskID: taskID(it.TaskARN), TaskARN: termtext.Safe(it.TaskARN), Family: termtext.Safe(it.Family),
		Owner: termtext.Safe(it.Owner), Reason: termtext.Safe(it.Reason), Ending: termtext.Safe(string(it.Outcome.Ending)),
		Verdict: termtext.Safe(string(it.Outcome.Verdict)), CPU: size.CPU, MemoryMiB: size.MemoryMiB,
		Architecture: termtext.Safe(arch), Region: termtext.Safe(region),
	}
	start := cmp.Or(it.StartedAt, it.CreatedAt)
	if !start.IsZero() {
		p.StartedAt = &start
	}
	from, to, running := billedSpan(it, now)
	if running {
		p.Ending = "running"
	} else {
		p.StoppedAt = &to
	}
	if !start.IsZero() {
		p.LifetimeSeconds = max(to.Sub(start), 0).Seconds()
	}
	if it.Outcome.HasLateness {
		s := it.Outcome.Lateness.Seconds()
		p.LatenessSeconds = &s
	}
	if u := it.Usage; u != nil {
		m, c := u.MemoryPeakBytes, u.CPUPeakVCPU
		p.PeakMemoryBytes, p.PeakVCPU = &m, &c
	}
	if known && !from.IsZero() {
		b := fargate.Billed(from, to).Seconds()
		p.BilledSeconds = &b
		if rate, ok := rates.Lookup(region, arch); ok {
			c := fargate.Cost(size, from, to, rate)
			p.CostUSD = &c
		}
	}
	return p
}

func printHistory(env Env, rows []Past, asJSON bool) error {
	if asJSON {
		return printJSON(env, rows)
	}
	if len(rows) == 0 {
		_, err := fmt.Fprintln(env.Stdout, "no bastions in the ledger for that selection")
		return err
	}
	tw := tabwriter.NewWriter(env.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TASK\tFAMILY\tWHO\tWHY\tSTARTED\tLIFETIME\tENDED\tLATENESS\tPEAK MEM\tPEAK CPU\tCOST")
	for _, p := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", p.TaskID, dash(p.Family), dash(ownerName(p.Owner)), dash(oneLine(p.Reason)),
			stamp(p.StartedAt), roundDuration(p.LifetimeSeconds), dash(p.Ending), lateness(p.LatenessSeconds),
			peakMemory(p.PeakMemoryBytes, p.MemoryMiB), peakCPU(p.PeakVCPU, p.CPU), usd(p.CostUSD, p.CPU > 0))
	}
	return tw.Flush()
}

// ownerName is the session name of a role's user ID (or of an older
// tag's ARN); a user's ID as it is.
func ownerName(owner string) string { return owner[strings.LastIndexAny(owner, "/:")+1:] }

func dash(s string) string { return cmp.Or(s, "-") }

// oneLine keeps a reason to one short cell.
func oneLine(s string) string {
	if r := []rune(s); len(r) > 40 {
		return string(r[:39]) + "…"
	}
	return s
}

func roundDuration(seconds float64) string {
	return (time.Duration(seconds) * time.Second).Round(time.Second).String()
}

func lateness(s *float64) string {
	if s == nil {
		return "-"
	}
	d := (time.Duration(*s*1000) * time.Millisecond).Round(time.Second)
	if d > 0 {
		return "+" + d.String()
	}
	return d.String()
}

func peakMemory(b *int64, sizeMiB int) string {
	if b == nil {
		return "-"
	}
	s := strconv.FormatInt(*b>>20, 10) + " MiB"
	if sizeMiB > 0 {
		s += " of " + strconv.Itoa(sizeMiB)
	}
	return s
}

func peakCPU(v *float64, units int) string {
	if v == nil {
		return "-"
	}
	s := strconv.FormatFloat(*v, 'f', 2, 64)
	if units > 0 {
		s += " of " + strconv.FormatFloat(float64(units)/1024, 'f', -1, 64)
	}
	return s + " vCPU"
}

// usd is a cost; ? when the rate is missing, - when the size is.
func usd(c *float64, sized bool) string {
	switch {
	case c != nil:
		return "$" + strconv.FormatFloat(*c, 'f', 4, 64)
	case sized:
		return "?"
	}
	return "-"
}
