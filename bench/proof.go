package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/bastion-ttl/bastion-ttl/internal/identityproof"
	"github.com/bastion-ttl/bastion-ttl/internal/stopclient"
)

var benchCreds = aws.Credentials{AccessKeyID: "ASIABENCHTASKROLE001", SecretAccessKey: "bench", SessionToken: strings.Repeat("t", 800)}

// withProof gives ev the proof a supervisor makes, for the STS at stsURL.
func withProof(ev events.APIGatewayV2HTTPRequest, stsURL string) events.APIGatewayV2HTTPRequest {
	p, err := stopclient.Prove(context.Background(), benchCreds, mustURL(stsURL), "eu-west-1", http.MethodPost, "terminate", []byte(ev.Body), time.Now())
	if err != nil {
		panic(err)
	}
	ev.Headers = map[string]string{strings.ToLower(identityproof.Header): p}
	return ev
}

// benchProve times making a proof, which every stop attempt of `watch` and
// of an expired `check` pays (with a role session's token of 800 bytes).
func benchProve(n int) (row, error) {
	endpoint, _ := identityproof.Endpoint("eu-west-1", "")
	body := []byte(`{"taskArn":"` + benchTaskARN + `","reason":"TTL 30m0s expired"}`)
	var times []time.Duration
	for range n {
		began := time.Now()
		if _, err := stopclient.Prove(context.Background(), benchCreds, endpoint, "eu-west-1", http.MethodPost, "terminate", body, time.Now()); err != nil {
			return row{}, err
		}
		times = append(times, time.Since(began))
	}
	slices.Sort(times)
	return row{fmt.Sprintf("making the proof of identity (presigning GetCallerIdentity), what each stop attempt of `watch` and an expired `check` adds: median (p99) of %d", n),
		fmt.Sprintf("%.3f ms (%.3f ms)", ms(times[len(times)/2]), ms(times[len(times)*99/100])), "<= 0.5 ms", verdict(times[len(times)/2] <= 500*time.Microsecond)}, nil
}

func mustURL(raw string) *url.URL {
	u, err := url.Parse(raw)
	if err != nil {
		panic(err)
	}
	return u
}
