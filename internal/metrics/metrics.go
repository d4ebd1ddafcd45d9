// Package metrics makes a function's JSON log line a CloudWatch embedded
// metric format (EMF) document: CloudWatch Logs extracts the metrics from
// the line itself, so reporting one costs no API call, no agent and no
// latency. The format is small and documented (Specification: Embedded
// metric format); writing it here beats a dependency.
package metrics

import (
	"log/slog"
	"time"
)

// Namespace holds every metric of bastion-ttl.
const Namespace = "bastion-ttl"

// The dimensions, named in capitals so as not to meet the log's own keys.
const (
	Function = "Function" // the Lambda function's name
	Cluster  = "Cluster"  // an allowed cluster's name, never one a caller made up
	// Ledger is the ledger table's name: the one dimension of the
	// ledger's metrics, which three functions report (LedgerAttrs).
	Ledger = "Ledger"
)

// The metrics the functions report besides the terminate function's error
// codes (stopapi.Code*), by the names the template's alarms and dashboard read.
const (
	Accepted     = "Accepted"     // a stop accepted
	Extended     = "Extended"     // an extension recorded
	CapReached   = "CapReached"   // ... which the cap cut
	StoppedTTL   = "StoppedTTL"   // a stop for the TTL
	StoppedIdle  = "StoppedIdle"  // a stop for idleness
	StoppedOther = "StoppedOther" // a stop for another reason
	Unproven     = "Unproven"     // a request let through without a proof of identity (BASTION_ACCEPT_UNPROVEN)

	Scanned  = "Scanned"  // a sweep's running tasks described
	Marked   = "Marked"   // ... of which tagged bastion-ttl
	Expired  = "Expired"  // ... past start + TTL + grace
	Stopped  = "Stopped"  // ... stopped by the sweep: their supervisor did not
	Failed   = "Failed"   // a sweep's failed or unreached calls
	Duration = "Duration" // a sweep's time

	// FailSafeExits is counted by a metric filter on the bastions' log
	// group, from the supervisors' fail-safe lines, as FailSafeExits-<stack>.
	FailSafeExits = "FailSafeExits"

	// PromiseBroken counts bastions the ledger judged late or early
	// (package ledger's verdicts); Lateness is each stopped bastion's
	// stopping time less its supervisor's deadline, in seconds (negative
	// when before it).
	PromiseBroken = "PromiseBroken"
	Lateness      = "Lateness"
)

// Names is every metric above.
var Names = []string{Accepted, Extended, CapReached, StoppedTTL, StoppedIdle, StoppedOther, Unproven,
	Scanned, Marked, Expired, Stopped, Failed, Duration, FailSafeExits, PromiseBroken, Lateness}

// Units the functions report in.
const (
	Count        = "Count"
	Milliseconds = "Milliseconds"
	Seconds      = "Seconds"
)

// Metric is one value to report.
type Metric struct {
	Name  string
	Unit  string
	Value float64
}

// One is a count of one.
func One(name string) Metric { return Metric{Name: name, Unit: Count, Value: 1} }

type directive struct {
	Namespace  string       `json:"Namespace"`
	Dimensions [][]string   `json:"Dimensions"`
	Metrics    []definition `json:"Metrics"`
}

type definition struct {
	Name string `json:"Name"`
	Unit string `json:"Unit"`
}

// Attrs are the slog attributes that make a JSON log line an EMF document
// at now: the _aws metadata, the dimensions' values and one member per
// metric. function is always a dimension; cluster, when not empty, is a
// second dimension set (Function, Cluster) beside the first, so that the
// alarms can read the per-function total.
func Attrs(now time.Time, function, cluster string, ms ...Metric) []any {
	if len(ms) == 0 {
		return nil
	}
	if function == "" { // a dimension without a value voids the document
		function = "unnamed"
	}
	dims := [][]string{{Function}}
	attrs := []any{Function, function}
	if cluster != "" {
		dims = append(dims, []string{Function, Cluster})
		attrs = append(attrs, Cluster, cluster)
	}
	return document(now, dims, attrs, ms)
}

// LedgerAttrs are the attributes that make a JSON log line an EMF document
// whose one dimension is Ledger, the ledger table's name: the terminate
// function, the sweeper and the ledger function all judge bastions, and
// one metric per stack is what the alarm and the dashboard read.
func LedgerAttrs(now time.Time, table string, ms ...Metric) []any {
	if len(ms) == 0 {
		return nil
	}
	if table == "" {
		table = "unnamed"
	}
	return document(now, [][]string{{Ledger}}, []any{Ledger, table}, ms)
}

func document(now time.Time, dims [][]string, attrs []any, ms []Metric) []any {
	d := directive{Namespace: Namespace, Dimensions: dims}
	for _, m := range ms {
		d.Metrics = append(d.Metrics, definition{Name: m.Name, Unit: m.Unit})
		attrs = append(attrs, m.Name, m.Value)
	}
	return append([]any{slog.Group("_aws",
		"Timestamp", now.UnixMilli(),
		"CloudWatchMetrics", []directive{d},
	)}, attrs...)
}
