package moto

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/smithy-go"
)

// fakeMoto answers as moto does: numbers for cpu/memory, HTML 500s.
func fakeMoto() *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if strings.Contains(string(body), "unknown") {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = io.WriteString(w, "<!doctype html><title>500 Internal Server Error</title>")
			return
		}
		_, _ = io.WriteString(w, `{"task":{"taskArn":"arn:aws:ecs:eu-west-1:123456789012:task/c/x","cpu":256,"memory":512,"desiredStatus":"STOPPED","containers":[{"name":"ssh","cpu":64,"memory":128}]}}`)
	}))
}

func TestMend(t *testing.T) {
	moto := fakeMoto()
	defer moto.Close()
	target, _ := url.Parse(moto.URL)
	proxy := httptest.NewServer(New(target))
	defer proxy.Close()
	c := ecs.New(ecs.Options{Region: "eu-west-1", BaseEndpoint: aws.String(proxy.URL),
		Credentials: credentials.NewStaticCredentialsProvider("a", "b", "")})

	out, err := c.StopTask(context.Background(), &ecs.StopTaskInput{Task: aws.String("x")})
	if err != nil {
		t.Fatalf("the SDK cannot read the mended answer: %v", err)
	}
	if aws.ToString(out.Task.Cpu) != "256" || aws.ToString(out.Task.Containers[0].Memory) != "128" {
		t.Fatalf("task %+v", out.Task)
	}

	unknown := map[string]error{}
	_, unknown["StopTask"] = c.StopTask(context.Background(), &ecs.StopTaskInput{Task: aws.String("unknown")})
	_, unknown["ListTagsForResource"] = c.ListTagsForResource(context.Background(), &ecs.ListTagsForResourceInput{ResourceArn: aws.String("unknown")})
	_, unknown["TagResource"] = c.TagResource(context.Background(), &ecs.TagResourceInput{ResourceArn: aws.String("unknown"), Tags: []types.Tag{{Key: aws.String("k"), Value: aws.String("v")}}})
	for action, err := range unknown {
		var ae smithy.APIError
		if !errors.As(err, &ae) || ae.ErrorCode() != "InvalidParameterException" || !strings.Contains(ae.ErrorMessage(), "not found") {
			t.Errorf("%s of an unknown task: %v", action, err)
		}
	}
}
