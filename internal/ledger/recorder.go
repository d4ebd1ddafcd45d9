package ledger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/bastion-ttl/bastion-ttl/internal/ecsarn"
	"github.com/bastion-ttl/bastion-ttl/internal/envconfig"
	"github.com/bastion-ttl/bastion-ttl/internal/logging"
	"github.com/bastion-ttl/bastion-ttl/internal/ttltag"
)

// Tags is the ECS call the ledger function makes: a running task's tags
// (owner and reason), which StopTask deletes.
type Tags interface {
	ListTagsForResource(context.Context, *ecs.ListTagsForResourceInput, ...func(*ecs.Options)) (*ecs.ListTagsForResourceOutput, error)
}

var _ Tags = (*ecs.Client)(nil)

// Recorder is the ledger function: it records each ECS Task State Change
// event of its cluster's bastions.
type Recorder struct {
	Store   *Store
	ECS     Tags
	Cluster string // the cluster's name: events of any other are ignored
	Region  string // the function's region; empty: not checked
	Log     *slog.Logger
}

// Handle records one event. An event that is not a task state change of
// the cluster is logged and dropped (nil: retrying would not help); a
// failed write is an error, so that Lambda retries the event.
func (r *Recorder) Handle(ctx context.Context, raw json.RawMessage) error {
	e, err := ParseEvent(raw)
	if err != nil {
		r.Log.ErrorContext(ctx, "event dropped", "err", err.Error(), "bytes", len(raw))
		return nil
	}
	attrs := []any{"task_arn", e.TaskARN, "version", e.Version, "last_status", e.LastStatus}
	if !r.ours(e) {
		r.Log.ErrorContext(ctx, "event of another cluster dropped", append(attrs, "cluster", e.ClusterARN)...)
		return nil
	}
	// Owner and reason: from the tags, while the task runs. The
	// registration writes them too; either may come first.
	if e.LastStatus == "RUNNING" {
		out, err := r.ECS.ListTagsForResource(ctx, &ecs.ListTagsForResourceInput{ResourceArn: aws.String(e.TaskARN)})
		if err != nil {
			r.Log.WarnContext(ctx, "could not read the task's tags: owner and reason come from the registration only", append(attrs, "err", err.Error())...)
		} else {
			owner, _ := ttltag.Value(out.Tags, ttltag.OwnerKey)
			reason, _ := ttltag.Value(out.Tags, ttltag.ReasonKey)
			if err := r.Store.SetTags(ctx, e.TaskARN, owner, reason); err != nil {
				r.Log.ErrorContext(ctx, "tags not recorded", append(attrs, "err", err.Error())...)
				return err
			}
		}
	}
	if err := r.Store.ApplyEvent(ctx, e); err != nil {
		r.Log.ErrorContext(ctx, "event not recorded", append(attrs, "err", err.Error())...)
		return err
	}
	r.Log.InfoContext(ctx, "event recorded", attrs...)
	return nil
}

// ours says whether e is of the function's cluster, in its region: the
// cluster ARN's name, and the task ARN in that same cluster, region and
// account (an event the rule did not send, e.g. a direct invocation, may
// say anything).
func (r *Recorder) ours(e TaskStateChange) bool {
	c, err := ecsarn.ParseCluster(e.ClusterARN)
	if err != nil || c.Name != r.Cluster || (r.Region != "" && c.Region != r.Region) {
		return false
	}
	t, err := ecsarn.ParseTask(e.TaskARN)
	return err == nil && t.Cluster == c.Name && t.Region == c.Region && t.Account == c.Account && t.Partition == c.Partition
}

// FunctionConfig is the ledger function's configuration: the ledger's
// (Load), and its own.
type FunctionConfig struct {
	Config
	Cluster  string
	Region   string
	LogLevel slog.Level
}

type functionSettings struct {
	Cluster  string `env:"BASTION_CLUSTER,required,notEmpty"`
	Region   string `env:"AWS_REGION,required,notEmpty"`
	LogLevel string `env:"BASTION_LOG_LEVEL" envDefault:"info"`
}

// LoadFunction reads the ledger function's configuration; LEDGER_TABLE is
// required here.
func LoadFunction(environ map[string]string) (FunctionConfig, error) {
	cfg, err := Load(environ)
	var s functionSettings
	if perr := envconfig.Parse(&s, environ); perr != nil {
		return FunctionConfig{}, errors.Join(err, perr)
	}
	errs := []error{err}
	if cfg.Table == "" {
		errs = append(errs, envconfig.Invalid(TableVariable, "", "required: the ledger's DynamoDB table"))
	}
	c, cerr := ecsarn.ParseCluster(s.Cluster)
	if cerr != nil {
		errs = append(errs, envconfig.Invalid("BASTION_CLUSTER", s.Cluster, "want the bastions' cluster name or ARN"))
	}
	level, lerr := logging.Level(s.LogLevel)
	if lerr != nil {
		errs = append(errs, envconfig.Invalid("BASTION_LOG_LEVEL", s.LogLevel, "use debug, info, warn or error"))
	}
	if err := errors.Join(errs...); err != nil {
		return FunctionConfig{}, fmt.Errorf("ledger: %w", err)
	}
	return FunctionConfig{Config: cfg, Cluster: c.Name, Region: s.Region, LogLevel: level}, nil
}
