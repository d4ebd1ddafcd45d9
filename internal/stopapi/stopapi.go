// Package stopapi is the wire contract of the API a task calls to stop
// itself (POST /terminate), to ask for more time (POST /extend) or to report
// what it used (POST /usage): the request and answer bodies, the error
// codes and the limits (the tag POST /extend writes is package ttltag's). Its client (package stopclient) and its server (package
// stophandler) both import it; neither imports the other.
package stopapi

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// Limits of a request, enforced by the API.
const (
	MaxBodyBytes = 4096
	MaxReasonLen = 200 // characters
)

// SigningName is the service a request is signed for (API Gateway's).
const SigningName = "execute-api"

// Request is the body of POST /terminate.
type Request struct {
	TaskARN string `json:"taskArn"`
	// Cluster is needed only for old-format task ARNs (task/<id>).
	Cluster string `json:"cluster,omitempty"`
	Reason  string `json:"reason,omitempty"`
	// Usage is the task's usage so far, recorded beside the stop.
	Usage *Usage `json:"usage,omitempty"`
}

// ExtendRequest is the body of POST /extend. TTL is the whole lifetime
// wanted (a Go duration), not an increment, so a retry cannot extend twice.
type ExtendRequest struct {
	TaskARN string `json:"taskArn"`
	Cluster string `json:"cluster,omitempty"`
	TTL     string `json:"ttl"`
	// Usage is the task's usage so far, recorded beside the extension.
	Usage *Usage `json:"usage,omitempty"`
	// StartedAt is the start the supervisor counts the TTL from (RFC 3339),
	// for the ledger's deadline; optional (older supervisors send none).
	StartedAt string `json:"startedAt,omitempty"`
}

// UsageRequest is the body of POST /usage: the task's usage so far, sent
// when nothing else carries it (the sidecar's SIGTERM). The API records it
// and does nothing else.
type UsageRequest struct {
	TaskARN string `json:"taskArn"`
	Cluster string `json:"cluster,omitempty"`
	Usage   Usage  `json:"usage"`
}

// UsageAccepted is the body of a 202 answer to POST /usage: the usage was
// accepted for recording (a record that fails is the API's to log, not the
// caller's to retry).
type UsageAccepted struct {
	TaskARN string `json:"taskArn"`
	Samples int64  `json:"samples"`
}

// Usage is what a task used, as its supervisor sampled it from the task
// metadata endpoint's stats: peaks are the task's (the sum of its
// containers at one instant), not one container's. docs/supervisor.md
// gives the formulas.
type Usage struct {
	Samples int64     `json:"samples"` // how many samples the summary is made of, at least 1
	From    time.Time `json:"from"`    // the first sample
	To      time.Time `json:"to"`      // the last sample
	// MemoryPeakBytes is the most memory in use at one sample: usage less
	// inactive file pages, summed over the containers.
	MemoryPeakBytes int64 `json:"memoryPeakBytes"`
	// MemoryLimitBytes is the task's memory size (its Limits); 0 when the
	// task has none.
	MemoryLimitBytes int64 `json:"memoryLimitBytes"`
	// CPUSeconds is the CPU time the task's containers used from their
	// start to To.
	CPUSeconds float64 `json:"cpuSeconds"`
	// CPUPeakVCPU is the highest CPU rate between two samples, in vCPUs.
	CPUPeakVCPU float64 `json:"cpuPeakVcpu"`
	// NetRxBytes and NetTxBytes are the task's network counters, counted
	// once (in awsvpc every container reports the task's).
	NetRxBytes int64 `json:"netRxBytes"`
	NetTxBytes int64 `json:"netTxBytes"`
}

// Bounds of a usage summary, far above any task's: a value beyond them is
// a bug or a forgery, refused (400) by the API and never sent by the
// supervisor (CheckUsage).
const (
	MaxUsageSamples = 1 << 31
	MaxUsageBytes   = 1 << 50 // 1 PiB: memory and network counters
	MaxUsageVCPU    = 1024
	MaxUsageSpan    = 400 * 24 * time.Hour // from to to
	// MaxUsageCPUSeconds allows MaxUsageVCPU busy for MaxUsageSpan.
	MaxUsageCPUSeconds = MaxUsageVCPU * 400 * 24 * 3600
)

// ErrBadUsage is matched by CheckUsage's errors.
var ErrBadUsage = errors.New("bad usage")

// CheckUsage reports the first member of u out of the contract's bounds,
// naming it as the JSON does (usage.cpuSeconds). Both ends use it: the API
// refuses such a usage, the supervisor sends none rather than have a
// request refused for it.
func CheckUsage(u Usage) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrBadUsage, fmt.Sprintf(format, args...))
	}
	switch {
	case u.Samples < 1 || u.Samples > MaxUsageSamples:
		return bad("usage.samples must be 1 to %d", int64(MaxUsageSamples))
	case u.From.IsZero() || u.To.IsZero():
		return bad("usage.from and usage.to are required (RFC 3339)")
	case u.To.Before(u.From):
		return bad("usage.from is after usage.to")
	case u.To.Sub(u.From) > MaxUsageSpan:
		return bad("usage.from to usage.to spans more than %s", MaxUsageSpan)
	}
	for _, m := range []struct {
		name string
		v    int64
	}{{"memoryPeakBytes", u.MemoryPeakBytes}, {"memoryLimitBytes", u.MemoryLimitBytes}, {"netRxBytes", u.NetRxBytes}, {"netTxBytes", u.NetTxBytes}} {
		if m.v < 0 || m.v > MaxUsageBytes {
			return bad("usage.%s must be 0 to %d", m.name, int64(MaxUsageBytes))
		}
	}
	for _, m := range []struct {
		name   string
		v, max float64
	}{{"cpuSeconds", u.CPUSeconds, MaxUsageCPUSeconds}, {"cpuPeakVcpu", u.CPUPeakVCPU, MaxUsageVCPU}} {
		if math.IsNaN(m.v) || m.v < 0 || m.v > m.max {
			return bad("usage.%s must be 0 to %g", m.name, m.max)
		}
	}
	return nil
}

// Extended is the body of a 200 answer to POST /extend: the task's TTL now
// (never lower than it was, at most the API's cap), whether the cap cut the
// request, and the cap, so that the people on the bastion can be told.
type Extended struct {
	TaskARN string `json:"taskArn"`
	TTL     string `json:"ttl"`
	Capped  bool   `json:"capped"`
	MaxTTL  string `json:"maxTtl"`
}

// Accepted is the body of a 202 answer to POST /terminate.
type Accepted struct {
	TaskARN       string `json:"taskArn"`
	LastStatus    string `json:"lastStatus"`
	DesiredStatus string `json:"desiredStatus"`
}

// Code is the stable, machine-readable kind of an error answer. Clients
// decide on it, not on the status alone: API Gateway answers 404 and 403 of
// its own (a wrong path or stage, a bad signature) without a code.
type Code string

// The error codes of the API, each with the one status it comes with
// (docs/api.md's table).
const (
	CodeBadRequest Code = "BadRequest" // 400
	CodeForbidden  Code = "Forbidden"  // 403: a proven caller that may not act on the task
	// CodeIdentityProofInvalid (403): the proof of identity is missing,
	// malformed, not for this request, or refused by STS.
	CodeIdentityProofInvalid Code = "IdentityProofInvalid"
	CodeTaskNotFound         Code = "TaskNotFound"     // 404: the task is gone, the stop is done
	CodeMethodNotAllowed     Code = "MethodNotAllowed" // 405
	CodeTooLarge             Code = "TooLarge"         // 413
	CodeUnavailable          Code = "Unavailable"      // 503: retry
	CodeInternal             Code = "Internal"         // 500
)

// ErrorBody is the body of every 4xx and 5xx answer of the function.
type ErrorBody struct {
	Code  Code   `json:"code"`
	Error string `json:"error"`
}
