// Package stack starts, on loopback, the local counterpart of a deployed
// bastion-ttl stack: ECS (the in-memory stand-in, or another endpoint such
// as moto), STS, the terminate function and the API Gateway route in front
// of it. The demo, the end-to-end tests and the benchmarks all start it
// here, so they run the same wiring.
//
// With Config.Ledger it also keeps the ledger as the template does: the
// table's name for the terminate function (and SweepEnv, the sweeper's),
// and the ledger function, fed the cluster's ECS Task State Change events
// by an ecsevents.Source through the template's rule.
//
// The function is configured from one environment list, the one the
// template gives it (Env): in process it is read with stophandler.Load, and
// out of process (Config.Bootstrap, the real bootstrap under the Runtime
// Interface Emulator) it is that process's environment.
package stack

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/bastion-ttl/bastion-ttl/internal/ecsarn"
	"github.com/bastion-ttl/bastion-ttl/internal/ledger"
	"github.com/bastion-ttl/bastion-ttl/internal/localaws/apigateway"
	"github.com/bastion-ttl/bastion-ttl/internal/localaws/ecsapi"
	"github.com/bastion-ttl/bastion-ttl/internal/localaws/ecsevents"
	"github.com/bastion-ttl/bastion-ttl/internal/localaws/sts"
	"github.com/bastion-ttl/bastion-ttl/internal/logging"
	"github.com/bastion-ttl/bastion-ttl/internal/stophandler"
)

// Routes are the API's, as the template declares them.
var Routes = []string{"POST /terminate", "POST /extend", "POST /usage"}

// Config says what to start. Region, Account, Clusters and TaskRoles are
// required; the rest is optional.
type Config struct {
	Region    string
	Account   string   // the stack's own (BASTION_ACCOUNT_ID, requestContext.accountId)
	Clusters  []string // BASTION_ALLOWED_CLUSTERS
	TaskRoles []string // BASTION_TASK_ROLES: role IDs (AROA...) or names
	// Callers are the identities STS and API Gateway both know (TaskCaller
	// makes a task's role session).
	Callers []sts.Caller
	MaxTTL  time.Duration // BASTION_MAX_TTL; zero: the function's default
	// ECS is the in-memory ECS to serve, set up by the caller (tasks,
	// OnStop, faults); nil: a new one. ECSEndpoint, when set, is used
	// instead and nothing is served for ECS (moto).
	ECS         *ecsapi.Server
	ECSEndpoint string
	// Stage, when set, makes the API the private REST API's stage: its URL
	// ends /<Stage> and the function gets payload 1.0.
	Stage string
	// Bootstrap, when set, starts the function out of process with env and
	// returns its Lambda invoke URL; otherwise it runs in process.
	Bootstrap func(env map[string]string) (invokeURL string, err error)
	// Log receives the in-process function's JSON log; nil discards it.
	Log io.Writer
	// Observe hears what STS and API Gateway did (part "STS" or "API
	// Gateway"), for the demo's timeline.
	Observe func(part, event string, attrs ...any)
	// STSFail and Invoke inject faults: STS answering an error status and
	// code (sts.Server.Fail), and a wrapper around the function's invoker.
	STSFail func(*http.Request) (status int, code string)
	Invoke  func(apigateway.Invoker) apigateway.Invoker
	// Ledger, when set, keeps the ledger.
	Ledger *Ledger
}

// Ledger is the ledger's part of the stack.
type Ledger struct {
	Table    string // made by the caller, as the template makes it (testenv.CreateLedgerTable)
	DynamoDB string // the table's endpoint (moto)
	// Bootstrap starts the ledger function (the real bootstrap under the
	// emulator) with env and returns its Lambda invoke URL.
	Bootstrap func(env map[string]string) (invokeURL string, err error)
	// Families are the template's BastionFamilies: their tasks' events
	// match the rule, as do the launcher's (startedBy bastion-ttl).
	Families []string
	Every    time.Duration // the event source's polling; zero: 100ms
}

// Stack is what Start started. Close stops its servers.
type Stack struct {
	ECS      *ecsapi.Server // nil with Config.ECSEndpoint
	ECSURL   string
	STS      *sts.Server
	STSURL   string
	Gateway  *apigateway.Gateway
	APIURL   string               // the API's base URL: the stage's for a REST API
	Function *stophandler.Service // nil with Config.Bootstrap
	// With Config.Ledger: the ledger function's invoke URL, and the event
	// source that feeds it.
	LedgerURL string
	Events    *ecsevents.Source

	config      Config
	servers     []*httptest.Server
	stopEvents  context.CancelFunc
	eventsEnded chan struct{}
}

// Start starts the stack described by c.
func Start(c Config) (*Stack, error) {
	if c.Region == "" || c.Account == "" || len(c.Clusters) == 0 || len(c.TaskRoles) == 0 {
		return nil, errors.New("stack: Region, Account, Clusters and TaskRoles are required")
	}
	s := &Stack{ECSURL: c.ECSEndpoint, config: c}
	started := false
	defer func() {
		if !started { // an error, or a Bootstrap that ended its goroutine (t.Fatal)
			s.Close()
		}
	}()
	if s.ECSURL == "" {
		s.ECS = c.ECS
		if s.ECS == nil {
			s.ECS = ecsapi.New()
		}
		s.ECSURL = s.serve(s.ECS)
	}
	observe := func(part string) func(string, ...any) {
		if c.Observe == nil {
			return nil
		}
		return func(event string, attrs ...any) { c.Observe(part, event, attrs...) }
	}
	s.STS = &sts.Server{Region: c.Region, Callers: c.Callers, Now: time.Now, Fail: c.STSFail, Observe: observe("STS")}
	s.STSURL = s.serve(s.STS)

	if c.Ledger != nil {
		if err := s.startLedger(c); err != nil {
			return nil, err
		}
	}
	env := c.Env(s.ECSURL, s.STSURL)
	var invoke apigateway.Invoker
	if c.Bootstrap != nil {
		url, err := c.Bootstrap(env)
		if err != nil {
			return nil, err
		}
		invoke = apigateway.InvokeURL(url)
		if c.Stage != "" {
			invoke = apigateway.RESTInvokeURL(url, c.Stage)
		}
	} else {
		fn, err := inProcess(env, c.Log)
		if err != nil {
			return nil, err
		}
		s.Function = fn
		invoke = fn.Handle
		if c.Stage != "" {
			invoke = apigateway.REST(fn.HandleREST, c.Stage)
		}
	}
	if c.Invoke != nil {
		invoke = c.Invoke(invoke)
	}
	s.Gateway = &apigateway.Gateway{Routes: Routes, Region: c.Region, AccountID: c.Account, Callers: c.Callers,
		Invoke: invoke, Now: time.Now, Stage: c.Stage, Observe: observe("API Gateway")}
	s.APIURL = s.serve(s.Gateway)
	if c.Stage != "" {
		s.APIURL += "/" + c.Stage
	}
	started = true
	return s, nil
}

// Env is the terminate function's environment, as the template sets it,
// for ECS at ecsURL and STS at stsURL: the credentials are the function
// role's stand-in, which the local ECS does not check.
func (c Config) Env(ecsURL, stsURL string) map[string]string {
	env := c.functionEnv(ecsURL)
	env["AWS_ENDPOINT_URL_STS"] = stsURL
	env["AWS_LAMBDA_FUNCTION_TIMEOUT"] = "10"
	env["BASTION_ALLOWED_CLUSTERS"] = strings.Join(c.Clusters, ",")
	env["BASTION_TASK_ROLES"] = strings.Join(c.TaskRoles, ",")
	env["BASTION_ACCOUNT_ID"] = c.Account
	if c.MaxTTL > 0 {
		env["BASTION_MAX_TTL"] = c.MaxTTL.String()
	}
	c.ledgerEnv(env)
	return env
}

// ledgerEnv adds the ledger's table and endpoint to a function's env,
// with Config.Ledger.
func (c Config) ledgerEnv(env map[string]string) {
	if c.Ledger != nil {
		env[ledger.TableVariable] = c.Ledger.Table
		env["AWS_ENDPOINT_URL_DYNAMODB"] = c.Ledger.DynamoDB
	}
}

// functionEnv is what every function's environment holds: the region, the
// role's stand-in credentials, and ECS's endpoint.
func (c Config) functionEnv(ecsURL string) map[string]string {
	return map[string]string{
		"AWS_REGION":                  c.Region,
		"AWS_ACCESS_KEY_ID":           functionKeyID,
		"AWS_SECRET_ACCESS_KEY":       functionSecret,
		"AWS_ENDPOINT_URL_ECS":        ecsURL,
		"AWS_LAMBDA_FUNCTION_TIMEOUT": "30",
	}
}

// SweepEnv is the sweeper's environment, as the template sets it, for
// this stack's ECS (and ledger).
func (s *Stack) SweepEnv() map[string]string {
	c := s.config
	env := c.functionEnv(s.ECSURL)
	env["BASTION_ALLOWED_CLUSTERS"] = strings.Join(c.Clusters, ",")
	if c.MaxTTL > 0 {
		env["BASTION_MAX_TTL"] = c.MaxTTL.String()
	}
	c.ledgerEnv(env)
	return env
}

// startLedger starts the ledger function, as the template configures it,
// and the event source that delivers the first cluster's task state
// changes to it through the template's rule.
func (s *Stack) startLedger(c Config) error {
	cluster := c.Clusters[0]
	env := c.functionEnv(s.ECSURL)
	env["BASTION_CLUSTER"] = cluster
	c.ledgerEnv(env)
	url, err := c.Ledger.Bootstrap(env)
	if err != nil {
		return err
	}
	s.LedgerURL = url
	clusterARN := cluster
	if !strings.HasPrefix(cluster, "arn:") {
		clusterARN = "arn:aws:ecs:" + c.Region + ":" + c.Account + ":cluster/" + cluster
	}
	rule := ecsevents.Rule{ClusterARN: clusterARN, StartedBy: []string{"bastion-ttl"}}
	for _, f := range c.Ledger.Families {
		rule.Groups = append(rule.Groups, "family:"+f)
	}
	s.Events = &ecsevents.Source{
		ECS: ecs.New(ecs.Options{Region: c.Region, BaseEndpoint: aws.String(s.ECSURL),
			Credentials: credentials.NewStaticCredentialsProvider(functionKeyID, functionSecret, "")}),
		Cluster: cluster, Region: c.Region, Account: c.Account, Rule: rule,
		Deliver: func(ctx context.Context, event []byte) error { return invokeAsync(ctx, url, event) },
		Every:   c.Ledger.Every, Now: time.Now,
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.stopEvents, s.eventsEnded = cancel, make(chan struct{})
	go func() {
		defer close(s.eventsEnded)
		s.Events.Run(ctx)
	}()
	return nil
}

// invokeAsync delivers an event to a function as EventBridge does; a
// function error is an error, so that the event is delivered again.
func invokeAsync(ctx context.Context, url string, event []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(event))
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || bytes.Contains(body, []byte(`"errorType"`)) {
		return fmt.Errorf("the function answered %s: %s", resp.Status, body)
	}
	return nil
}

const (
	functionKeyID  = "AKIDLOCALTERMINATEFN"
	functionSecret = "local-terminate-function-secret"
)

// inProcess builds the function from env as its main does
// (stophandler.Load, stophandler.New), but with an ECS client that never
// retries: ECS's answer (a throttle, a 503) reaches the
// caller as the function's status, which the fault tests rely on.
func inProcess(env map[string]string, log io.Writer) (*stophandler.Service, error) {
	cfg, err := stophandler.Load(env)
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = io.Discard
	}
	ledgerCfg, err := ledger.Load(env)
	if err != nil {
		return nil, err
	}
	creds := credentials.NewStaticCredentialsProvider(functionKeyID, functionSecret, "")
	client := ecs.New(ecs.Options{Region: cfg.Region, BaseEndpoint: aws.String(env["AWS_ENDPOINT_URL_ECS"]),
		Credentials: creds, Retryer: aws.NopRetryer{}})
	svc := stophandler.New(cfg, client, logging.New(log, "json", cfg.LogLevel))
	if ledgerCfg.Table != "" { // as the function's main wires it
		db := dynamodb.New(dynamodb.Options{Region: cfg.Region, BaseEndpoint: aws.String(env["AWS_ENDPOINT_URL_DYNAMODB"]), Credentials: creds})
		store := ledger.NewStore(ledgerCfg, db, svc.Log)
		svc.Ledger, svc.UsageRecorder = store, store
	}
	return svc, nil
}

func (s *Stack) serve(h http.Handler) string {
	srv := httptest.NewServer(h)
	s.servers = append(s.servers, srv)
	return srv.URL
}

// Close stops the event source and every server Start started.
func (s *Stack) Close() {
	if s.stopEvents != nil {
		s.stopEvents()
		<-s.eventsEnded
	}
	for _, srv := range s.servers {
		srv.Close()
	}
}

// TaskCaller is a task's role session as ECS makes it (named after the
// task) and as STS and API Gateway report it: the assumed-role ARN, and the
// user ID <roleID>:<task ID>.
func TaskCaller(account, roleName, roleID, taskARN string, creds aws.Credentials) sts.Caller {
	id := ecsarn.TaskID(taskARN)
	return sts.Caller{
		Credentials: creds,
		ARN:         "arn:aws:sts::" + account + ":assumed-role/" + roleName + "/" + id,
		UserID:      roleID + ":" + id,
		AccountID:   account,
	}
}
