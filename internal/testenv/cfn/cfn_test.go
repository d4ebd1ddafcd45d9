package cfn_test

import (
	"encoding/json"
	"maps"
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

func TestResources(t *testing.T) {
	got := cfn.Resources(parse(t), "AWS::CloudWatch::Alarm")
	if len(got) != 1 || got["Alarm"] == nil {
		t.Errorf("alarms = %v, want Alarm alone", slices.Sorted(maps.Keys(got)))
	}
	if got := cfn.Resources(parse(t), "AWS::IAM::Role"); len(got) != 0 {
		t.Errorf("roles = %v, want none", slices.Sorted(maps.Keys(got)))
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

// A parameter is the value given, else its Default; a list is a list.
func TestParameterValues(t *testing.T) {
	got := cfn.ParameterValues(parse(t), map[string]string{"Extra": "a,b", "Topic": "arn:aws:sns:eu-west-1:111122223333:t"})
	want := map[string]any{"Endpoint": "public", "Extra": []any{"a", "b"}, "Topic": "arn:aws:sns:eu-west-1:111122223333:t"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ParameterValues = %v, want %v", got, want)
	}
	if got := cfn.ParameterValues(parse(t), nil)["Extra"]; !reflect.DeepEqual(got, []any{""}) {
		t.Errorf("an empty CommaDelimitedList = %#v, want one empty string, as CloudFormation splits it", got)
	}
}

// Evaluate turns what Resolve leaves into concrete values, and refuses a
// name it is not given, however many names follow it.
func TestEvaluate(t *testing.T) {
	names := map[string]any{"AWS::Region": "eu-west-1", "AWS::AccountId": "111122223333", "Api": "a1b2c3", "Role.Arn": "arn:aws:iam::111122223333:role/r",
		"Names": []any{"x", "y"}}
	for _, c := range []struct{ in, want string }{
		{`{"Ref": "Api"}`, `"a1b2c3"`},
		{`{"Fn::GetAtt": ["Role", "Arn"]}`, `"arn:aws:iam::111122223333:role/r"`},
		{`{"Fn::Sub": "arn:aws:execute-api:${AWS::Region}:${AWS::AccountId}:${Api}/*"}`, `"arn:aws:execute-api:eu-west-1:111122223333:a1b2c3/*"`},
		{`{"Fn::Sub": ["${Local}-${!Literal}", {"Local": {"Ref": "Api"}}]}`, `"a1b2c3-${Literal}"`},
		{`{"Fn::Join": [",", [{"Ref": "Api"}, "z"]]}`, `"a1b2c3,z"`},
		{`{"Fn::Select": [1, {"Ref": "Names"}]}`, `"y"`},
		{`{"Fn::Split": [",", "p,q"]}`, `["p","q"]`},
		{`{"Resource": [{"Fn::Sub": "arn:aws:iam::${AWS::AccountId}:role/${Item}"}, "*"], "Effect": "Allow"}`, ``},
		{`{"Statement": [{"Resource": {"Fn::GetAtt": ["Role", "Arn"]}}]}`, `{"Statement":[{"Resource":"arn:aws:iam::111122223333:role/r"}]}`},
	} {
		var in any
		if err := json.Unmarshal([]byte(c.in), &in); err != nil {
			t.Fatal(err)
		}
		got, err := cfn.Evaluate(in, names)
		if c.want == "" {
			if err == nil || !strings.Contains(err.Error(), "Item") {
				t.Errorf("Evaluate(%s) = %v, %v; want an error naming Item", c.in, got, err)
			}
			continue
		}
		b, _ := json.Marshal(got)
		if err != nil || string(b) != c.want {
			t.Errorf("Evaluate(%s) = %s, %v; want %s", c.in, b, err, c.want)
		}
	}
	for _, in := range []any{
		map[string]any{"Fn::Sub": "${Unknown}-${Api}"}, // the unknown first, a known one after it
		map[string]any{"Fn::FindInMap": []any{"M", "k", "v"}},
		map[string]any{"Fn::Select": []any{5.0, []any{"only"}}},
	} {
		if got, err := cfn.Evaluate(in, names); err == nil {
			t.Errorf("Evaluate(%v) = %v, want an error", in, got)
		}
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
