// Package ledger keeps one DynamoDB item per bastion: what ECS said of it
// (from its Task State Change events), what bastion-ttl did to it (the
// terminate function's registration, extensions and stops, the sweeper's
// stops) and, once it has stopped, how it ended and whether bastion-ttl
// kept its promise (a verdict, and the lateness it is judged on).
//
// Several writers share an item and none waits for another: every write
// sets only its own attributes, and after each one the writer recomputes
// the outcome (Policy.Decide) from the item as it then is and stores it,
// unless another write came in between (which then does the same). So
// every order of arrival converges on the outcome of the whole item.
package ledger

import (
	"time"

	"github.com/bastion-ttl/bastion-ttl/internal/stopapi"
)

// MaxExtensions is the most extensions an item lists; later ones are
// counted in extensionsOmitted.
const MaxExtensions = 100

// The item's attributes, by the names DynamoDB stores. Times are strings,
// UTC, with milliseconds (TimeLayout), so they sort as they compare;
// durations are Go durations ("2h0m0s").
const (
	// The key and the indexes' keys.
	AttrTaskARN   = "taskArn"   // partition key: the task's ARN
	AttrOwner     = "owner"     // who ran it (tag bastion-ttl-owner, a user ID): OwnerIndex's partition key
	AttrFamily    = "family"    // its task definition's family: FamilyIndex's partition key
	AttrCreatedAt = "createdAt" // ECS's createdAt: both indexes' sort key

	// ECS's, from the events (the ledger function's).
	AttrECSVersion      = "ecsVersion" // detail.version of the newest event applied
	AttrCluster         = "clusterArn" // its cluster
	AttrTaskDefinition  = "taskDefinitionArn"
	AttrGroup           = "group"      // family:<name> for a standalone task
	AttrStartedBy       = "startedBy"  // bastion-ttl for the launcher's
	AttrLastStatus      = "lastStatus" // PROVISIONING ... STOPPED
	AttrDesiredStatus   = "desiredStatus"
	AttrConnectivityAt  = "connectivityAt" // network ready
	AttrPullStartedAt   = "pullStartedAt"  // Fargate bills from here
	AttrStartedAt       = "startedAt"      // ECS's start (later than the supervisor's)
	AttrStoppingAt      = "stoppingAt"     // the stop began: what the verdict holds against the deadline
	AttrStoppedAt       = "stoppedAt"
	AttrStopCode        = "stopCode" // UserInitiated, EssentialContainerExited, ...
	AttrStoppedReason   = "stoppedReason"
	AttrContainers      = "containers"      // name -> {exitCode, lastStatus, reason}
	AttrCPU             = "cpu"             // the task's CPU units, as ECS reports them ("256"): Fargate bills them
	AttrMemory          = "memory"          // the task's memory in MiB ("512")
	AttrCPUArchitecture = "cpuArchitecture" // x86_64 or arm64 (the ecs.cpu-architecture attribute)

	// The tag the launcher writes (why), kept since StopTask deletes tags.
	AttrReason = "reason"

	// The terminate function's (POST /extend, POST /terminate, usage).
	AttrRegisteredAt      = "registeredAt"      // the supervisor's first POST /extend
	AttrSupervisorStart   = "supervisorStart"   // the start its deadline counts from
	AttrTTLAsked          = "ttlAsked"          // the TTL it registered with
	AttrTTL               = "ttl"               // the TTL now (after extensions, capped)
	AttrCap               = "cap"               // the stack's cap when last asked
	AttrExtensions        = "extensions"        // list of {at, asked, ttl, capped}, at most MaxExtensions
	AttrExtensionsOmitted = "extensionsOmitted" // extensions past MaxExtensions, counted only
	AttrStop              = "stop"              // the terminate function's stop: {at, how, why}
	AttrUsage             = "usage"             // the supervisor's latest usage summary

	// The sweeper's.
	AttrSweep = "sweep" // the sweeper's stop: {at, how, why}

	// The outcome (whoever wrote last computes it).
	AttrDeadline   = "deadline"   // supervisorStart + ttl
	AttrEnding     = "ending"     // Ending
	AttrVerdict    = "verdict"    // Verdict
	AttrWhy        = "why"        // the verdict in words
	AttrLatenessMs = "latenessMs" // stoppingAt - deadline, milliseconds (a number, negative when early)
	AttrExpiresAt  = "expiresAt"  // the table's TTL attribute: epoch seconds
	AttrRev        = "rev"        // counts the writes: the outcome is stored only against the state it was computed from
)

// The indexes.
const (
	OwnerIndex  = "owner-createdAt"  // a person's bastions, newest last
	FamilyIndex = "family-createdAt" // a family's bastions
)

// TimeLayout is how times are stored: fixed width, so that they sort.
const TimeLayout = "2006-01-02T15:04:05.000Z07:00"

// Ending is how a bastion ended.
type Ending string

// The endings.
const (
	EndingTTL      Ending = "ttl"                 // the supervisor asked, at its TTL
	EndingIdle     Ending = "idle"                // the supervisor asked, idle
	EndingPerson   Ending = "stopped by a person" // StopTask by someone else (UserInitiated, no record of ours)
	EndingSweeper  Ending = "sweeper"             // the sweeper stopped it
	EndingFailSafe Ending = "fail-safe"           // the supervisor's container exited 1
	EndingOther    Ending = "other"               // anything else: a crash, a failed start, Spot, ...
)

// Verdict is whether bastion-ttl kept its promise: never before the
// deadline, never long after it.
type Verdict string

// The verdicts.
const (
	OnTime   Verdict = "on time"  // no later than deadline + grace + one sweep period, and not early by our hand
	Fallback Verdict = "fallback" // the fail-safe or the sweeper ended it: the first line failed
	Late     Verdict = "late"     // stopping after deadline + grace + one sweep period
	Early    Verdict = "early"    // bastion-ttl stopped it for its TTL before its deadline
	Unknown  Verdict = "unknown"  // no deadline was registered: Why says why
)

// Broken says whether v is a broken promise (the PromiseBroken metric).
func (v Verdict) Broken() bool { return v == Late || v == Early }

// Container is what the last event said of one container.
type Container struct {
	LastStatus string
	ExitCode   *int
	Reason     string
}

// Extension is one POST /extend after the registration.
type Extension struct {
	At     time.Time
	Asked  time.Duration // the TTL asked for
	TTL    time.Duration // the TTL granted (never lower than before, at most the cap)
	Capped bool
}

// Stop is a stop bastion-ttl made, in its own words.
type Stop struct {
	At  time.Time // when StopTask was accepted
	How Ending    // ttl, idle or other (the terminate function); sweeper
	Why string    // the stop reason it gave ECS
}

// Item is one bastion's record. Zero values are attributes not (yet) known.
type Item struct {
	TaskARN string
	Owner   string
	Reason  string
	Family  string

	// ECS's.
	ECSVersion                                                           int64
	Cluster, TaskDefinition, Group, StartedBy, LastStatus, DesiredStatus string
	CreatedAt, ConnectivityAt, PullStartedAt, StartedAt                  time.Time
	StoppingAt, StoppedAt                                                time.Time
	StopCode, StoppedReason                                              string
	Containers                                                           map[string]Container
	CPU, Memory, CPUArchitecture                                         string // the task's size, as ECS reports it

	// The terminate function's.
	RegisteredAt, SupervisorStart time.Time
	TTLAsked, TTL, Cap            time.Duration
	Extensions                    []Extension
	ExtensionsOmitted             int64 // past MaxExtensions
	Stop                          *Stop
	Usage                         *stopapi.Usage // the supervisor's latest summary

	// The sweeper's.
	Sweep *Stop

	// The outcome, as stored.
	Outcome Outcome
	Rev     int64
}
