package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/bastion-ttl/bastion-ttl/internal/localaws/ecsapi"
	"github.com/bastion-ttl/bastion-ttl/internal/sweep"
	"github.com/bastion-ttl/bastion-ttl/internal/testenv/clocktest"
)

// benchSweep times a sweep of n running tasks in one cluster (a fifth of
// them expired bastions) with the real SDK client against a local ECS
// endpoint, best and median of runs.
func benchSweep(n, runs int) (row, error) {
	now := time.Now()
	var times []time.Duration
	for range runs {
		fake := ecsapi.New()
		tasks, expired := ecsapi.Fleet("eu-west-1", "123456789012", "bastions", n, now)
		fake.Add(tasks...)
		srv := httptest.NewServer(fake)
		sw := &sweep.Sweeper{
			ECS: ecs.New(ecs.Options{Region: "eu-west-1", BaseEndpoint: aws.String(srv.URL),
				Credentials: credentials.NewStaticCredentialsProvider("AKIDBENCH", "bench", ""),
				Retryer:     sweep.NewRetryer(8, 5*time.Second)}),
			Clusters: []string{"bastions"}, MaxTTL: 12 * time.Hour, Grace: 2 * time.Minute,
			Clock: clocktest.NewFake(now), Log: slog.New(slog.NewJSONHandler(io.Discard, nil)),
		}
		began := time.Now()
		rep, err := sw.Run(context.Background())
		took := time.Since(began)
		calls := fake.Calls()
		srv.Close()
		if err != nil || rep.Stopped != len(expired) {
			return row{}, fmt.Errorf("sweep: %v, report %+v", err, rep)
		}
		if want := 2*((n+99)/100) + len(expired); calls["ListTasks"]+calls["DescribeTasks"]+calls["StopTask"] != want {
			return row{}, fmt.Errorf("sweep made %v calls, want %d", calls, want)
		}
		times = append(times, took)
	}
	slices.Sort(times)
	return row{fmt.Sprintf("sweeper, %d running tasks, %d expired, local ECS endpoint: median (best) of %d", n, n/5, runs),
		fmt.Sprintf("%.2f s (%.2f s)", times[len(times)/2].Seconds(), times[0].Seconds()), "< 10 s", verdict(times[len(times)/2] < 10*time.Second)}, nil
}
