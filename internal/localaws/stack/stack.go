// Package stack starts, on loopback, the local counterpart of a deployed
// bastion-ttl stack: ECS (the in-memory stand-in, or another endpoint such
// as moto), STS, the terminate function and the API Gateway route in front
// of it. The demo, the end-to-end tests and the benchmarks all start it
// here, so they run the same wiring.
//
// The function is configured from one environment list, the one the
// template gives it (Env): in process it is read with stophandler.Load, and
// out of process (Config.Bootstrap, the real bootstrap under the Runtime
// Interface Emulator) it is that process's environment.
package stack

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/bastion-ttl/bastion-ttl/internal/ecsarn"
	"github.com/bastion-ttl/bastion-ttl/internal/localaws/apigateway"
	"github.com/bastion-ttl/bastion-ttl/internal/localaws/ecsapi"
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

	servers []*httptest.Server
}

// Start starts the stack described by c.
func Start(c Config) (*Stack, error) {
	if c.Region == "" || c.Account == "" || len(c.Clusters) == 0 || len(c.TaskRoles) == 0 {
		return nil, errors.New("stack: Region, Account, Clusters and TaskRoles are required")
	}
	s := &Stack{ECSURL: c.ECSEndpoint}
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
	env := map[string]string{
		"AWS_REGION":                  c.Region,
		"AWS_ACCESS_KEY_ID":           functionKeyID,
		"AWS_SECRET_ACCESS_KEY":       functionSecret,
		"AWS_ENDPOINT_URL_ECS":        ecsURL,
		"AWS_ENDPOINT_URL_STS":        stsURL,
		"AWS_LAMBDA_FUNCTION_TIMEOUT": "10",
		"BASTION_ALLOWED_CLUSTERS":    strings.Join(c.Clusters, ","),
		"BASTION_TASK_ROLES":          strings.Join(c.TaskRoles, ","),
		"BASTION_ACCOUNT_ID":          c.Account,
	}
	if c.MaxTTL > 0 {
		env["BASTION_MAX_TTL"] = c.MaxTTL.String()
	}
	return env
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
	client := ecs.New(ecs.Options{Region: cfg.Region, BaseEndpoint: aws.String(env["AWS_ENDPOINT_URL_ECS"]),
		Credentials: credentials.NewStaticCredentialsProvider(functionKeyID, functionSecret, ""), Retryer: aws.NopRetryer{}})
	return stophandler.New(cfg, client, logging.New(log, "json", cfg.LogLevel)), nil
}

func (s *Stack) serve(h http.Handler) string {
	srv := httptest.NewServer(h)
	s.servers = append(s.servers, srv)
	return srv.URL
}

// Close stops every server Start started.
func (s *Stack) Close() {
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
