// Package stopapi is the wire contract of the API a task calls to stop
// itself (POST /terminate) or to ask for more time (POST /extend): the
// request and answer bodies, the error codes and the limits (the tag
// POST /extend writes is package ttltag's). Its client (package stopclient) and its server (package
// stophandler) both import it; neither imports the other.
package stopapi

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
}

// ExtendRequest is the body of POST /extend. TTL is the whole lifetime
// wanted (a Go duration), not an increment, so a retry cannot extend twice.
type ExtendRequest struct {
	TaskARN string `json:"taskArn"`
	Cluster string `json:"cluster,omitempty"`
	TTL     string `json:"ttl"`
	// StartedAt is the start the supervisor counts the TTL from (RFC 3339),
	// for the ledger's deadline; optional (older supervisors send none).
	StartedAt string `json:"startedAt,omitempty"`
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

// Accepted is the body of a 202 answer.
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
