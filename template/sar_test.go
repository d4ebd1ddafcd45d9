package template_test

import (
	"os"
	"regexp"
	"slices"
	"testing"
)

// sarSupported is the AWS Serverless Application Repository's "List of
// Supported AWS Resources", the part of it this project could use: a
// template with any other resource type cannot be published (`sam publish`
// answers "The template contains unsupported resource types").
// Source: https://docs.aws.amazon.com/serverlessrepo/latest/devguide/list-supported-resources.html,
// as kept in github.com/awsdocs/aws-serverlessrepo-developer-guide,
// doc_source/list-supported-resources.md at commit 83c2822c2920f510ab20a59156dec5ec2e8e779c.
var sarSupported = []string{
	"AWS::ApiGateway::Deployment", "AWS::ApiGateway::RestApi", "AWS::ApiGateway::Stage",
	"AWS::ApiGatewayV2::Api", "AWS::ApiGatewayV2::Stage",
	"AWS::CloudFormation::CustomResource",
	"AWS::CloudWatch::Alarm", "AWS::CloudWatch::Dashboard",
	"AWS::DynamoDB::Table",
	"AWS::Events::Rule",
	"AWS::IAM::ManagedPolicy", "AWS::IAM::Policy", "AWS::IAM::Role",
	"AWS::Lambda::EventInvokeConfig", "AWS::Lambda::Function", "AWS::Lambda::Permission",
	"AWS::Logs::LogGroup", "AWS::Logs::MetricFilter",
	"AWS::Serverless::Api", "AWS::Serverless::Function", "AWS::Serverless::HttpApi",
}

// Every resource type of template.yaml, as written (what SAR reads) and as
// the SAM transform makes it (what SAR's deployment creates), is on SAR's
// list. A type added to the template that is not there fails here, before
// a release cannot be published.
func TestTemplatePublishesToTheServerlessApplicationRepository(t *testing.T) {
	b, err := os.ReadFile(stack.Path())
	if err != nil {
		t.Fatal(err)
	}
	// A resource is a two-space key under Resources; its Type, four spaces.
	resourcesAt := regexp.MustCompile(`(?m)^Resources:\n`).FindIndex(b)
	if resourcesAt == nil {
		t.Fatal("template.yaml has no Resources section")
	}
	section := b[resourcesAt[1]:]
	if end := regexp.MustCompile(`(?m)^\S`).FindIndex(section); end != nil {
		section = section[:end[0]]
	}
	written := map[string]string{}
	for _, m := range regexp.MustCompile(`(?m)^  ([A-Za-z0-9]+):\n    Type: (\S+)$`).FindAllSubmatch(section, -1) {
		written[string(m[1])] = string(m[2])
	}
	transformedTypes := map[string]string{}
	for id, r := range rawTransformed(t)["Resources"].(object) {
		transformedTypes[id], _ = get(r, "Type").(string)
	}
	if len(written) < 20 || len(transformedTypes) < len(written) {
		t.Fatalf("read %d resources in template.yaml and %d after the transform: the test reads the wrong shape", len(written), len(transformedTypes))
	}
	for what, types := range map[string]map[string]string{"template.yaml": written, "after the SAM transform": transformedTypes} {
		for id, typ := range types {
			if !slices.Contains(sarSupported, typ) {
				t.Errorf("%s: %s is a %s, which the Serverless Application Repository does not support", what, id, typ)
			}
		}
	}
}
