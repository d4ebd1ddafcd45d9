package samtemplate_test

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/bastion-ttl/bastion-ttl/internal/testenv/cfn"
	"github.com/bastion-ttl/bastion-ttl/internal/testenv/samtemplate"
)

const template = `AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Parameters:
  Topic:
    Type: String
    Default: ""
Conditions:
  HasTopic: !Not [!Equals [!Ref Topic, ""]]
Resources:
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: .
      Handler: bootstrap
      Runtime: provided.al2023
  Alarm:
    Type: AWS::CloudWatch::Alarm
    Condition: HasTopic
    Properties:
      AlarmActions: [!Ref Topic]
      ComparisonOperator: GreaterThanThreshold
      EvaluationPeriods: 1
      MetricName: Errors
      Namespace: AWS/Lambda
      Period: 60
      Statistic: Sum
      Threshold: 0
`

// The transform makes SAM's resources, sees the parameters given, and is
// made once for each set of them; Resolved takes the conditions.
func TestStack(t *testing.T) {
	path := filepath.Join(t.TempDir(), "template.yaml")
	if err := os.WriteFile(path, []byte(template), 0o644); err != nil {
		t.Fatal(err)
	}
	s := samtemplate.New(path)
	raw := s.Raw(t, nil)
	if len(cfn.Resources(raw, "AWS::Lambda::Function")) != 1 || len(cfn.Resources(raw, "AWS::IAM::Role")) != 1 {
		t.Errorf("after the transform: %v, want SAM's function and its role", raw["Resources"])
	}
	if raw["Conditions"] == nil || cfn.Resources(raw, "AWS::CloudWatch::Alarm")["Alarm"] == nil {
		t.Error("Raw took the conditions, which it leaves to CloudFormation")
	}
	if again := s.Raw(t, map[string]string{}); reflect.ValueOf(again).Pointer() != reflect.ValueOf(raw).Pointer() {
		t.Error("the same parameters were transformed twice")
	}
	if resolved := s.Resolved(t, nil); cfn.Resources(resolved, "AWS::CloudWatch::Alarm")["Alarm"] != nil {
		t.Error("Resolved with no Topic keeps the alarm")
	}
	topic := "arn:aws:sns:eu-west-1:111122223333:alarms"
	alarm := cfn.Resources(s.Resolved(t, map[string]string{"Topic": topic}), "AWS::CloudWatch::Alarm")["Alarm"]
	if alarm == nil || !reflect.DeepEqual(cfn.Get(alarm, "Properties", "AlarmActions"), []any{map[string]any{"Ref": "Topic"}}) {
		t.Errorf("Resolved with a Topic: alarm %v", alarm)
	}
	if s.Path() != path {
		t.Errorf("Path() = %s, want %s", s.Path(), path)
	}
	if _, err := samtemplate.Transform(path, map[string]string{"NoSuchParameter": "x"}); err == nil || !strings.Contains(err.Error(), "NoSuchParameter") {
		t.Errorf("a parameter the template lacks: err = %v", err)
	}
}
