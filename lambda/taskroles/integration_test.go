package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/cfn"
	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/bastion-ttl/bastion-ttl/internal/localaws/iamapi"
	"github.com/bastion-ttl/bastion-ttl/internal/testenv"
)

const ecsTrust = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ecs-tasks.amazonaws.com"},"Action":"sts:AssumeRole","Condition":{"StringEquals":{"aws:SourceAccount":"111122223333"}}}]}`

// A Create request as CloudFormation sends it to a custom resource's
// function (the event of the CloudFormation User Guide's "Custom resource
// request objects"), its response URL pointed at a local server.
func createEvent(responseURL string, names ...string) []byte {
	b, _ := json.Marshal(map[string]any{
		"RequestType": "Create", "ServiceToken": "arn:aws:lambda:eu-west-1:111122223333:function:bastion-ttl-TaskRolesFunction-A1B2C3",
		"ResponseURL": responseURL, "StackId": "arn:aws:cloudformation:eu-west-1:111122223333:stack/bastion-ttl/6a8e1c90-0f1e-11f0-9b6c-0a1b2c3d4e5f",
		"RequestId": "5d478078-13e9-baf0-464a-7ef285ecc786", "LogicalResourceId": "ExtraTaskRoleIds",
		"ResourceType": "AWS::CloudFormation::CustomResource",
		"ResourceProperties": map[string]any{
			"ServiceToken": "arn:aws:lambda:eu-west-1:111122223333:function:bastion-ttl-TaskRolesFunction-A1B2C3",
			"RoleNames":    names,
		},
	})
	return b
}

// answers records CloudFormation's side: the PUTs to the response URL.
func answers(t *testing.T) (string, <-chan cfn.Response) {
	ch := make(chan cfn.Response, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var a cfn.Response
		if r.Method != http.MethodPut || json.Unmarshal(b, &a) != nil {
			t.Errorf("response URL got %s %s", r.Method, b)
		}
		ch <- a
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/response?X-Amz-Signature=sig", ch
}

func start(t *testing.T, iamURL, timeout string) *testenv.Lambda {
	return testenv.StartLambda(t, testenv.BuildLambda(t, "../..", "lambda/taskroles"), map[string]string{
		"AWS_ENDPOINT_URL_IAM":        iamURL,
		"AWS_REGION":                  testenv.Region,
		"AWS_ACCESS_KEY_ID":           "AKIDTEST",
		"AWS_SECRET_ACCESS_KEY":       "test",
		"AWS_LAMBDA_FUNCTION_TIMEOUT": timeout,
	})
}

// The real bootstrap under the Runtime Interface Emulator resolves the
// names with the SDK against a local IAM and answers at the response URL.
func TestLambdaResolvesAndAnswers(t *testing.T) {
	stand := &iamapi.Server{Account: "111122223333", Credentials: aws.Credentials{AccessKeyID: "AKIDTEST", SecretAccessKey: "test"}}
	stand.Put(iamapi.Role{Name: "ops-bastion", ID: "AROAEXAMPLEOPSBASTION1", Trust: ecsTrust})
	stand.Put(iamapi.Role{Name: "shared", ID: "AROAEXAMPLESHAREDROLE1", Trust: strings.Replace(ecsTrust, `{"Service":"ecs-tasks.amazonaws.com"}`, `{"AWS":"444455556666"}`, 1)})
	iamSrv := httptest.NewServer(stand)
	t.Cleanup(iamSrv.Close)
	url, got := answers(t)
	fn := start(t, iamSrv.URL, "30")

	fn.Invoke(t, createEvent(url, "ops-bastion"))
	if a := <-got; a.Status != cfn.StatusSuccess || a.Data["RoleIds"] != "AROAEXAMPLEOPSBASTION1" || a.PhysicalResourceID == "" || a.LogicalResourceID != "ExtraTaskRoleIds" {
		t.Errorf("answer %+v", a)
	}
	fn.Invoke(t, createEvent(url, "ops-bastion", "shared"))
	if a := <-got; a.Status != cfn.StatusFailed || !strings.Contains(a.Reason, `role shared`) || !strings.Contains(a.Reason, `"444455556666"`) {
		t.Errorf("answer %+v, want FAILED naming the role shared and its principal", a)
	}
}

// An IAM that never answers: the function still answers FAILED, before its
// own deadline, and says why.
func TestLambdaAnswersWhenIAMHangs(t *testing.T) {
	stand := &iamapi.Server{Account: "111122223333", Credentials: aws.Credentials{AccessKeyID: "AKIDTEST", SecretAccessKey: "test"}, Delay: time.Minute}
	iamSrv := httptest.NewServer(stand)
	t.Cleanup(iamSrv.Close)
	url, got := answers(t)
	fn := start(t, iamSrv.URL, "8") // 3 s to resolve, 5 s kept to answer
	began := time.Now()
	fn.Invoke(t, createEvent(url, "ops-bastion"))
	select {
	case a := <-got:
		if a.Status != cfn.StatusFailed || !strings.Contains(a.Reason, "did not answer in time") {
			t.Errorf("answer %+v", a)
		}
		if took := time.Since(began); took > 8*time.Second {
			t.Errorf("answered after %v, past the function's 8 s", took)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no answer at the response URL")
	}
}
