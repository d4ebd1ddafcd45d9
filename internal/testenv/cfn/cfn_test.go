package cfn_test

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/bastion-ttl/bastion-ttl/internal/testenv/cfn"
)

const template = `{
  "Parameters": {
    "Endpoint": {"Type": "String", "Default": "public"},
    "Extra": {"Type": "CommaDelimitedList", "Default": ""},
    "Topic": {"Type": "String", "Default": ""}
  },
  "Conditions": {
    "IsPrivate": {"Fn::Equals": [{"Ref": "Endpoint"}, "private"]},
    "IsPublic": {"Fn::Not": [{"Condition": "IsPrivate"}]},
    "HasExtra": {"Fn::Not": [{"Fn::Equals": [{"Fn::Join": ["", {"Ref": "Extra"}]}, ""]}]},
    "HasTopic": {"Fn::Not": [{"Fn::Equals": [{"Ref": "Topic"}, ""]}]}
  },
  "Rules": {"R": {"Assertions": []}},
  "Resources": {
    "Api": {"Type": "AWS::ApiGatewayV2::Api", "Properties": {
      "Name": {"Fn::If": ["IsPrivate", "private-api", "public-api"]},
      "Policy": {"Fn::If": ["IsPrivate", {"Statement": []}, {"Ref": "AWS::NoValue"}]},
      "Tags": [{"Fn::If": ["HasExtra", "extra", {"Ref": "AWS::NoValue"}]}, "always"],
      "Url": {"Fn::Sub": "https://${Api}.execute-api.${AWS::Region}.amazonaws.com/${Stage}"}
    }},
    "Alarm": {"Type": "AWS::CloudWatch::Alarm", "Condition": "HasTopic", "Properties": {"Topic": {"Ref": "Topic"}}},
    "Endpoint": {"Type": "AWS::EC2::VPCEndpoint", "Condition": "IsPrivate", "Properties": {"Id": {"Fn::GetAtt": ["Missing", "Arn"]}}}
  },
  "Outputs": {
    "AlarmArn": {"Condition": "HasTopic", "Value": {"Ref": "Alarm"}},
    "Name": {"Value": {"Fn::Sub": ["${Local}-${!Literal}", {"Local": {"Ref": "Endpoint"}}]}}
  }
}`

func parse(t *testing.T) cfn.Template {
	t.Helper()
	var tpl cfn.Template
	if err := json.Unmarshal([]byte(template), &tpl); err != nil {
		t.Fatal(err)
	}
	return tpl
}

func TestResolve(t *testing.T) {
	for _, tt := range []struct {
		params    map[string]string
		name      any
		policy    bool
		tags      []any
		resources []string
		outputs   []string
	}{
		{nil, "public-api", false, []any{"always"}, []string{"Api"}, []string{"Name"}},
		{map[string]string{"Endpoint": "private", "Extra": "a,b", "Topic": "arn:aws:sns:eu-west-1:123456789012:t"},
			"private-api", true, []any{"extra", "always"}, []string{"Alarm", "Api", "Endpoint"}, []string{"AlarmArn", "Name"}},
	} {
		tpl := parse(t)
		got, err := cfn.Resolve(tpl, tt.params)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := got["Conditions"]; ok {
			t.Error("Conditions kept")
		}
		if _, ok := got["Rules"]; ok {
			t.Error("Rules kept")
		}
		res := got["Resources"].(cfn.Template)
		props := res["Api"].(cfn.Template)["Properties"].(cfn.Template)
		if props["Name"] != tt.name {
			t.Errorf("%v: Name %v, want %v", tt.params, props["Name"], tt.name)
		}
		if _, ok := props["Policy"]; ok != tt.policy {
			t.Errorf("%v: Policy present = %v, want %v", tt.params, ok, tt.policy)
		}
		if !reflect.DeepEqual(props["Tags"], tt.tags) {
			t.Errorf("%v: Tags %v, want %v", tt.params, props["Tags"], tt.tags)
		}
		if _, ok := props["Url"].(cfn.Template)["Fn::Sub"]; !ok {
			t.Errorf("Fn::Sub was evaluated: %v", props["Url"])
		}
		if ids := keys(res); !slices.Equal(ids, tt.resources) {
			t.Errorf("%v: resources %v, want %v", tt.params, ids, tt.resources)
		}
		if ids := keys(got["Outputs"].(cfn.Template)); !slices.Equal(ids, tt.outputs) {
			t.Errorf("%v: outputs %v, want %v", tt.params, ids, tt.outputs)
		}
		if !reflect.DeepEqual(tpl, parse(t)) {
			t.Error("Resolve changed its input")
		}
	}
}

// A condition it cannot evaluate is an error, not a guess.
func TestResolveRefusesWhatItDoesNotEvaluate(t *testing.T) {
	tpl := parse(t)
	tpl["Conditions"].(cfn.Template)["Both"] = map[string]any{"Fn::And": []any{map[string]any{"Condition": "IsPrivate"}, map[string]any{"Condition": "HasTopic"}}}
	if _, err := cfn.Resolve(tpl, nil); err == nil || !strings.Contains(err.Error(), "Fn::And") {
		t.Fatalf("Fn::And: err = %v", err)
	}
}

func TestDanglingRefs(t *testing.T) {
	tpl, err := cfn.Resolve(parse(t), map[string]string{"Endpoint": "private"})
	if err != nil {
		t.Fatal(err)
	}
	// Stage (Fn::Sub) and Missing (Fn::GetAtt) are defined nowhere; Api,
	// Endpoint, AWS::Region, the Fn::Sub variable Local and ${!Literal} are.
	want := []string{"Resources.Api -> Stage", "Resources.Endpoint -> Missing"}
	if got := cfn.DanglingRefs(tpl); !slices.Equal(got, want) {
		t.Fatalf("DanglingRefs = %v, want %v", got, want)
	}
}

func keys(m cfn.Template) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
