package ledger

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/bastion-ttl/bastion-ttl/internal/metrics"
	"github.com/bastion-ttl/bastion-ttl/internal/stopapi"
)

// DynamoDB is the part of the DynamoDB API the store uses.
type DynamoDB interface {
	UpdateItem(context.Context, *dynamodb.UpdateItemInput, ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	GetItem(context.Context, *dynamodb.GetItemInput, ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
}

var _ DynamoDB = (*dynamodb.Client)(nil)

// Store writes the ledger. Each method is one writer's own attributes,
// upserted (the item may not exist yet), then the outcome recomputed.
type Store struct {
	DB     DynamoDB
	Table  string
	Policy Policy
	Log    *slog.Logger
}

// NewStore is the Store cfg describes.
func NewStore(cfg Config, db DynamoDB, log *slog.Logger) *Store {
	return &Store{DB: db, Table: cfg.Table, Policy: cfg.Policy, Log: log}
}

// Registration is a POST /extend the terminate function granted: the
// supervisor's first (its registration) or a later one (an extension).
type Registration struct {
	At     time.Time
	Asked  time.Duration // the TTL asked for
	TTL    time.Duration // the TTL granted
	Cap    time.Duration // the stack's cap
	Capped bool
	// SupervisorStart is the start the supervisor counts its deadline
	// from (the request's startedAt); zero when it sent none.
	SupervisorStart time.Time
	Owner, Reason   string // the task's tags, read by the function
}

// ApplyEvent records an ECS Task State Change: only when its version is
// newer than the item's (an older or duplicate event changes nothing), and
// only ECS's attributes.
func (s *Store) ApplyEvent(ctx context.Context, e TaskStateChange) error {
	u := newUpdate()
	u.set(AttrECSVersion, num(e.Version))
	for attr, v := range map[string]string{AttrCluster: e.ClusterARN, AttrTaskDefinition: e.TaskDefinitionARN, AttrFamily: e.Family(),
		AttrGroup: e.Group, AttrStartedBy: e.StartedBy, AttrLastStatus: e.LastStatus, AttrDesiredStatus: e.DesiredStatus,
		AttrStopCode: e.StopCode, AttrStoppedReason: e.StoppedReason, AttrCPU: e.CPU, AttrMemory: e.Memory, AttrCPUArchitecture: e.CPUArchitecture()} {
		if v != "" {
			u.set(attr, str(v))
		}
	}
	for attr, t := range map[string]*time.Time{AttrCreatedAt: e.CreatedAt, AttrConnectivityAt: e.ConnectivityAt, AttrPullStartedAt: e.PullStartedAt,
		AttrStartedAt: e.StartedAt, AttrStoppingAt: e.StoppingAt, AttrStoppedAt: e.StoppedAt} {
		if t != nil && !t.IsZero() {
			u.set(attr, tm(*t))
		}
	}
	if len(e.Containers) > 0 {
		u.set(AttrContainers, containersValue(e.Containers))
	}
	v := u.name(AttrECSVersion)
	cond := "attribute_not_exists(" + v + ") OR " + v + " < " + u.value(num(e.Version))
	_, err := s.write(ctx, e.TaskARN, u, cond, "event")
	return err
}

// SetTags records the owner and reason tags the ledger function read, where
// none is recorded yet.
func (s *Store) SetTags(ctx context.Context, taskARN, owner, reason string) error {
	u := newUpdate()
	if owner != "" {
		u.setIfNotExists(AttrOwner, str(owner))
	}
	if reason != "" {
		u.setIfNotExists(AttrReason, str(reason))
	}
	if len(u.sets) == 0 {
		return nil
	}
	_, err := s.write(ctx, taskARN, u, "", "tags")
	return err
}

// Extended records a granted POST /extend: the supervisor's registration
// when none is recorded, else an extension, appended when it changed the
// TTL (a retry, or a sidecar registering again, does not).
func (s *Store) Extended(ctx context.Context, taskARN string, r Registration) error {
	u := newUpdate()
	u.set(AttrRegisteredAt, tm(r.At))
	u.set(AttrTTLAsked, dur(r.Asked))
	u.set(AttrTTL, dur(r.TTL))
	u.set(AttrCap, dur(r.Cap))
	if !r.SupervisorStart.IsZero() {
		u.set(AttrSupervisorStart, tm(r.SupervisorStart))
	}
	if r.Owner != "" {
		u.set(AttrOwner, str(r.Owner))
	}
	if r.Reason != "" {
		u.set(AttrReason, str(r.Reason))
	}
	applied, err := s.write(ctx, taskARN, u, "attribute_not_exists("+u.name(AttrRegisteredAt)+")", "registration")
	if err != nil || applied {
		return err
	}
	// An extension: appended while the list is under MaxExtensions (a task
	// that extends by a second at a time cannot grow its item to
	// DynamoDB's 400 KB); past it, the TTL still moves and is counted.
	u = newUpdate()
	ext := u.name(AttrExtensions)
	u.sets = append(u.sets, ext+" = list_append(if_not_exists("+ext+", "+
		u.value(&types.AttributeValueMemberL{Value: []types.AttributeValue{}})+"), "+
		u.value(&types.AttributeValueMemberL{Value: []types.AttributeValue{extensionValue(Extension{At: r.At, Asked: r.Asked, TTL: r.TTL, Capped: r.Capped})}})+")")
	ttl := u.value(dur(r.TTL))
	u.sets = append(u.sets, u.name(AttrTTL)+" = "+ttl)
	u.set(AttrCap, dur(r.Cap))
	if !r.SupervisorStart.IsZero() {
		u.setIfNotExists(AttrSupervisorStart, tm(r.SupervisorStart))
	}
	changed := "attribute_exists(" + u.name(AttrRegisteredAt) + ") AND " + u.name(AttrTTL) + " <> " + ttl
	applied, err = s.write(ctx, taskARN, u, changed+" AND (attribute_not_exists("+ext+") OR size("+ext+") < "+u.value(num(MaxExtensions))+")", "extension")
	if err != nil || applied {
		return err
	}
	u = newUpdate()
	ttl = u.value(dur(r.TTL))
	u.sets = append(u.sets, u.name(AttrTTL)+" = "+ttl, u.name(AttrExtensionsOmitted)+" = if_not_exists("+u.name(AttrExtensionsOmitted)+", "+u.value(num(0))+") + "+u.value(num(1)))
	u.set(AttrCap, dur(r.Cap))
	_, err = s.write(ctx, taskARN, u, "attribute_exists("+u.name(AttrRegisteredAt)+") AND "+u.name(AttrTTL)+" <> "+ttl, "extension")
	return err
}

// Stopping records the terminate function's stop (the first, if it is
// asked again).
func (s *Store) Stopping(ctx context.Context, taskARN string, st Stop) error {
	return s.stop(ctx, taskARN, AttrStop, st, "stop")
}

// SweptStop records the sweeper's stop.
func (s *Store) SweptStop(ctx context.Context, taskARN string, st Stop) error {
	st.How = EndingSweeper
	return s.stop(ctx, taskARN, AttrSweep, st, "sweep")
}

func (s *Store) stop(ctx context.Context, taskARN, attr string, st Stop, what string) error {
	u := newUpdate()
	u.set(attr, stopValue(st))
	_, err := s.write(ctx, taskARN, u, "attribute_not_exists("+u.name(attr)+")", what)
	return err
}

// RecordUsage records the supervisor's usage summary. A summary that ends
// before the stored one (an earlier one, delivered late or retried)
// changes nothing: the later covers more. Compared by its end, not its
// samples: a restarted sidecar counts from one again.
func (s *Store) RecordUsage(ctx context.Context, taskARN string, usage stopapi.Usage) error {
	v, err := usageValue(usage)
	if err != nil {
		return fmt.Errorf("ledger: usage: %w", err)
	}
	u := newUpdate()
	u.set(AttrUsage, v)
	attr := u.name(AttrUsage)
	cond := "attribute_not_exists(" + attr + ") OR " + attr + "." + u.name("to") + " <= " + u.value(str(usage.To.UTC().Format(TimeLayout)))
	_, err = s.write(ctx, taskARN, u, cond, "usage")
	return err
}

// Get reads an item (strongly consistent); ok is false when there is none.
func (s *Store) Get(ctx context.Context, taskARN string) (Item, bool, error) {
	out, err := s.DB.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(s.Table),
		Key:            map[string]types.AttributeValue{AttrTaskARN: str(taskARN)},
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return Item{}, false, fmt.Errorf("ledger: get %s: %w", taskARN, err)
	}
	if len(out.Item) == 0 {
		return Item{}, false, nil
	}
	return decode(out.Item), true, nil
}

// write applies u to the item under cond (none when empty), then settles
// the outcome; applied is false when cond failed (which is no error: the
// write had nothing to add). A failed condition still settles from the
// item as it is, so that a retried delivery mends an outcome a crash left
// unwritten.
func (s *Store) write(ctx context.Context, taskARN string, u *update, cond, what string) (bool, error) {
	in := &dynamodb.UpdateItemInput{
		TableName:                 aws.String(s.Table),
		Key:                       map[string]types.AttributeValue{AttrTaskARN: str(taskARN)},
		UpdateExpression:          aws.String(u.expression(true)),
		ExpressionAttributeNames:  u.names,
		ExpressionAttributeValues: u.values,
		ReturnValues:              types.ReturnValueAllNew,
	}
	if cond != "" {
		in.ConditionExpression = aws.String(cond)
	}
	out, err := s.DB.UpdateItem(ctx, in)
	var ccf *types.ConditionalCheckFailedException
	switch {
	case errors.As(err, &ccf):
		it, ok, err := s.Get(ctx, taskARN)
		if err == nil && ok {
			err = s.settle(ctx, it)
		}
		return false, err
	case err != nil:
		return false, fmt.Errorf("ledger: %s of %s: %w", what, taskARN, err)
	}
	return true, s.settle(ctx, decode(out.Attributes))
}

// settle stores the outcome of it, unless the item has changed since it
// was read (rev): the write that changed it settles then.
func (s *Store) settle(ctx context.Context, it Item) error {
	o := s.Policy.Decide(it)
	was := it.Outcome
	if sameOutcome(was, o) {
		return nil
	}
	u := newUpdate()
	setOrRemove := func(attr string, v types.AttributeValue, present bool) {
		if present {
			u.set(attr, v)
		} else if storedHas(was, attr) {
			u.remove(attr)
		}
	}
	setOrRemove(AttrDeadline, tm(o.Deadline), !o.Deadline.IsZero())
	setOrRemove(AttrEnding, str(string(o.Ending)), o.Ending != "")
	setOrRemove(AttrVerdict, str(string(o.Verdict)), o.Verdict != "")
	setOrRemove(AttrWhy, str(o.Why), o.Why != "")
	setOrRemove(AttrLatenessMs, num(o.Lateness.Milliseconds()), o.HasLateness)
	setOrRemove(AttrExpiresAt, num(o.ExpiresAt.Unix()), !o.ExpiresAt.IsZero())
	rev := u.name(AttrRev)
	cond := rev + " = " + u.value(num(it.Rev))
	_, err := s.DB.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(s.Table),
		Key:                       map[string]types.AttributeValue{AttrTaskARN: str(it.TaskARN)},
		UpdateExpression:          aws.String(u.expression(false)),
		ConditionExpression:       aws.String(cond),
		ExpressionAttributeNames:  u.names,
		ExpressionAttributeValues: u.values,
	})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return nil // written since: that write settles
	}
	if err != nil {
		return fmt.Errorf("ledger: outcome of %s: %w", it.TaskARN, err)
	}
	s.report(it.TaskARN, was, o)
	return nil
}

// report logs an outcome that changed; a verdict or lateness newly known
// is also an EMF document (PromiseBroken, Lateness).
func (s *Store) report(taskARN string, was, o Outcome) {
	if o.Verdict == "" || (was.Verdict == o.Verdict && was.Ending == o.Ending && was.HasLateness == o.HasLateness && was.Lateness == o.Lateness) {
		return
	}
	attrs := []any{"task_arn", taskARN, "ending", string(o.Ending), "verdict", string(o.Verdict), "why", o.Why}
	if !o.Deadline.IsZero() {
		attrs = append(attrs, "deadline", o.Deadline.UTC().Format(time.RFC3339))
	}
	var ms []metrics.Metric
	if o.HasLateness {
		attrs = append(attrs, "lateness_ms", o.Lateness.Milliseconds())
		if !was.HasLateness {
			ms = append(ms, metrics.Metric{Name: metrics.Lateness, Unit: metrics.Seconds, Value: o.Lateness.Seconds()})
		}
	}
	if o.Verdict.Broken() && !was.Verdict.Broken() {
		ms = append(ms, metrics.One(metrics.PromiseBroken))
	}
	attrs = append(attrs, metrics.LedgerAttrs(time.Now(), s.Table, ms...)...)
	level := slog.LevelInfo
	if o.Verdict.Broken() {
		level = slog.LevelWarn
	}
	if s.Log != nil {
		s.Log.Log(context.Background(), level, "bastion accounted for", attrs...)
	}
}

func sameOutcome(a, b Outcome) bool {
	return a.Deadline.Equal(b.Deadline) && a.Ending == b.Ending && a.Verdict == b.Verdict && a.Why == b.Why &&
		a.HasLateness == b.HasLateness && a.Lateness.Milliseconds() == b.Lateness.Milliseconds() && a.ExpiresAt.Equal(b.ExpiresAt)
}

// storedHas says whether the stored outcome has attr.
func storedHas(o Outcome, attr string) bool {
	switch attr {
	case AttrDeadline:
		return !o.Deadline.IsZero()
	case AttrEnding:
		return o.Ending != ""
	case AttrVerdict:
		return o.Verdict != ""
	case AttrWhy:
		return o.Why != ""
	case AttrLatenessMs:
		return o.HasLateness
	case AttrExpiresAt:
		return !o.ExpiresAt.IsZero()
	}
	return false
}
