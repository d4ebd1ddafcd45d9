package sweep

import (
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
)

// NewRetryer is the SDK's standard retryer (throttling, 5xx and network
// errors, with exponential backoff and jitter up to maxBackoff), with more
// attempts than the default three and without the client-side retry quota:
// a sweep of thousands of stops must not give up on a task because earlier
// calls were throttled. The run's own deadline bounds the retrying.
func NewRetryer(maxAttempts int, maxBackoff time.Duration) aws.Retryer {
	return retry.NewStandard(func(o *retry.StandardOptions) {
		o.MaxAttempts = maxAttempts
		o.MaxBackoff = maxBackoff
		o.RateLimiter = ratelimit.None
	})
}
