package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/bastion-ttl/bastion-ttl/internal/fargate"
	"github.com/bastion-ttl/bastion-ttl/internal/ledger"
	"github.com/bastion-ttl/bastion-ttl/internal/localaws/stack"
	"github.com/bastion-ttl/bastion-ttl/internal/testenv"
)

const ledgerTable = "bastion-ttl-ledger"

// ledgerPart is the ledger's part of the demo: its table in DynamoDB in
// moto_server, and the ledger function's real bootstrap under the Runtime
// Interface Emulator, which the local stack feeds the task's state changes.
type ledgerPart struct {
	config *stack.Ledger
	store  *ledger.Store
	dir    string
	logs   testenv.Buffer

	mu    sync.Mutex
	stops []func()
}

// startLedger starts moto_server and builds the ledger's bootstrap, side
// by side. Without moto_server or the emulator it returns why, and no
// ledger.
func startLedger(ctx context.Context) (l *ledgerPart, missing string, err error) {
	moto, err := testenv.FindTool("moto_server")
	if err != nil {
		return nil, "moto_server not found: pip install 'moto[server]'", nil
	}
	rie, err := testenv.FindTool("aws-lambda-rie")
	if err != nil {
		return nil, "aws-lambda-rie not found: make tools", nil
	}
	root, err := testenv.ModuleRoot()
	if err != nil {
		return nil, "", err
	}
	l = &ledgerPart{}
	defer func() {
		if err != nil {
			l.close()
		}
	}()
	if l.dir, err = os.MkdirTemp("", "demo-ledger"); err != nil {
		return nil, "", err
	}
	bootstrap := filepath.Join(l.dir, "bootstrap")
	built := make(chan error, 1)
	go func() { built <- testenv.BuildBootstrap(root, "lambda/ledger", bootstrap) }()
	url, stop, err := testenv.LaunchMoto(moto, &l.logs)
	if err != nil {
		return nil, "", errors.Join(err, <-built)
	}
	l.stopLater(stop)
	if err := <-built; err != nil {
		return nil, "", err
	}
	db := dynamodb.New(dynamodb.Options{Region: region, BaseEndpoint: aws.String(url),
		Credentials: credentials.NewStaticCredentialsProvider("AKIDDEMO", "demo", "")})
	if err := testenv.MakeLedgerTable(ctx, db, ledgerTable); err != nil {
		return nil, "", err
	}
	l.store = ledger.NewStore(ledger.Config{Table: ledgerTable}, db, slog.New(slog.NewTextHandler(io.Discard, nil)))
	l.config = &stack.Ledger{Table: ledgerTable, DynamoDB: url, Families: []string{"bastion"},
		Bootstrap: func(env map[string]string) (string, error) {
			url, stop, err := testenv.LaunchLambda(rie, bootstrap, env, &l.logs)
			if err == nil {
				l.stopLater(stop)
			}
			return url, err
		}}
	return l, "", nil
}

// stackConfig is the stack's ledger; nil without one.
func (l *ledgerPart) stackConfig() *stack.Ledger {
	if l == nil {
		return nil
	}
	return l.config
}

func (l *ledgerPart) stopLater(stop func()) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.stops = append(l.stops, stop)
}

func (l *ledgerPart) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, stop := range l.stops {
		stop()
	}
	if l.dir != "" {
		os.RemoveAll(l.dir)
	}
}

// judged waits for the item of the task to have its verdict and ECS's
// STOPPED.
func (l *ledgerPart) judged(ctx context.Context, taskARN string) (ledger.Item, error) {
	for {
		it, ok, err := l.store.Get(ctx, taskARN)
		if err != nil {
			return it, err
		}
		if ok && it.Outcome.Verdict != "" && it.LastStatus == "STOPPED" {
			return it, nil
		}
		select {
		case <-ctx.Done():
			return it, fmt.Errorf("the ledger has no verdict on the task: %w\nthe ledger function's log, its end:\n%s", ctx.Err(), tail(l.logs.String()))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func tail(s string) string {
	if len(s) > 3000 {
		return "..." + s[len(s)-3000:]
	}
	return s
}

// ledgerLine is the ledger's line for a bastion: how it ended, the
// verdict, the lateness, the supervisor's usage, the task's size and
// billed lifetime (from its image pull to its stop), and what that cost by
// Fargate's billing rule (package fargate). The demo's region has no
// checked rate, so the cost is at the table's us-east-1 rate, and says so.
func ledgerLine(it ledger.Item, cpu, memory string) string {
	o := it.Outcome
	lateness := "unknown"
	if o.HasLateness {
		lateness = o.Lateness.Round(time.Millisecond).String()
	}
	usage := "no usage"
	if u := it.Usage; u != nil {
		usage = fmt.Sprintf("peak memory %.1f MiB, CPU %.2fs", float64(u.MemoryPeakBytes)/(1<<20), u.CPUSeconds)
	}
	cost := "cost unknown (no size)"
	if size, ok := fargate.ParseSize(cpu, memory); ok {
		rateRegion := region
		rate, found := fargate.Public.Lookup(rateRegion, "")
		if !found {
			rateRegion = "us-east-1"
			rate, _ = fargate.Public.Lookup(rateRegion, "")
		}
		cost = fmt.Sprintf("cost $%.6f at %s's rates of %s (billed %s)", fargate.Cost(size, it.PullStartedAt, it.StoppedAt, rate), rateRegion, fargate.RatesDate,
			fargate.Billed(it.PullStartedAt, it.StoppedAt))
	}
	return fmt.Sprintf("ledger: ended %s, %s, lateness %s, %s, task %s CPU units / %s MiB for %s, %s",
		o.Ending, o.Verdict, lateness, usage, cpu, memory, it.StoppedAt.Sub(it.PullStartedAt).Round(time.Millisecond), cost)
}
