package ecsarn

import (
	"errors"
	"testing"
)

func TestParseTask(t *testing.T) {
	good := map[string]Task{
		"arn:aws:ecs:us-west-2:111122223333:task/default/e9028f8d5d8e4f258373e7b93ce9a3c3":                 {"aws", "us-west-2", "111122223333", "default", "e9028f8d5d8e4f258373e7b93ce9a3c3"},
		"arn:aws:ecs:ap-southeast-2:123456789012:task/7c1aa905-5bc8-4582-8ee6-91c717699340":                {"aws", "ap-southeast-2", "123456789012", "", "7c1aa905-5bc8-4582-8ee6-91c717699340"},
		"arn:aws-us-gov:ecs:us-gov-west-1:123456789012:task/my_Cluster-1/0123456789abcdef0123456789abcdef": {"aws-us-gov", "us-gov-west-1", "123456789012", "my_Cluster-1", "0123456789abcdef0123456789abcdef"},
	}
	for s, want := range good {
		got, err := ParseTask(s)
		if err != nil || got != want {
			t.Errorf("ParseTask(%q) = %+v, %v; want %+v", s, got, err, want)
		}
		if got.String() != s {
			t.Errorf("String() = %q, want %q", got.String(), s)
		}
	}
	bad := []string{
		"",
		"arn:aws:ecs:us-west-2:111122223333:task/default/e9028f8d5d8e4f258373e7b93ce9a3c3/extra",
		"arn:aws:ecs:us-west-2:111122223333:task/default/../e9028f8d5d8e4f258373e7b93ce9a3c3",
		"arn:aws:ecs:us-west-2:111122223333:container/default/e9028f8d5d8e4f258373e7b93ce9a3c3",
		"arn:aws:ecs:us-west-2:1111:task/default/e9028f8d5d8e4f258373e7b93ce9a3c3",
		"arn:aws:ec2:us-west-2:111122223333:task/default/e9028f8d5d8e4f258373e7b93ce9a3c3",
		"arn:aws:ecs:US-WEST-2:111122223333:task/default/e9028f8d5d8e4f258373e7b93ce9a3c3",
		"arn:aws:ecs:us-west-2:111122223333:task/default/E9028F8D5D8E4F258373E7B93CE9A3C3",
		"arn:aws:ecs:us-west-2:111122223333:task/default/*",
		"arn:aws:ecs:us-west-2:111122223333:task//e9028f8d5d8e4f258373e7b93ce9a3c3",
		"arn:aws:ecs:us-west-2:111122223333:task/de fault/e9028f8d5d8e4f258373e7b93ce9a3c3",
		"arn:aws:ecs:us-west-2:111122223333:task/default/e9028f8d5d8e4f258373e7b93ce9a3c",
		"arn:xyz:ecs:us-west-2:111122223333:task/default/e9028f8d5d8e4f258373e7b93ce9a3c3",
		"arn:aws:ecs::111122223333:task/default/e9028f8d5d8e4f258373e7b93ce9a3c3",
	}
	for _, s := range bad {
		if got, err := ParseTask(s); !errors.Is(err, ErrMalformed) {
			t.Errorf("ParseTask(%q) = %+v, %v; want ErrMalformed", s, got, err)
		}
	}
}

func TestParseCluster(t *testing.T) {
	if c, err := ParseCluster("bastions"); err != nil || c.Name != "bastions" || c.Account != "" {
		t.Errorf("name: %+v %v", c, err)
	}
	if c, err := ParseCluster("arn:aws:ecs:eu-west-1:123456789012:cluster/bastions"); err != nil || c.Name != "bastions" || c.Account != "123456789012" || c.Region != "eu-west-1" {
		t.Errorf("arn: %+v %v", c, err)
	}
	for _, s := range []string{"", "a/b", "arn:aws:ecs:eu-west-1:123456789012:task/bastions", "arn:aws:ecs:eu-west-1:123456789012:cluster/"} {
		if _, err := ParseCluster(s); !errors.Is(err, ErrMalformed) {
			t.Errorf("ParseCluster(%q) = %v", s, err)
		}
	}
}

func TestParseClusters(t *testing.T) {
	got, err := ParseClusters([]string{" bastions", "", "arn:aws:ecs:eu-west-1:123456789012:cluster/jump "})
	if err != nil || len(got) != 2 || got[0].String() != "bastions" || got[1].String() != "arn:aws:ecs:eu-west-1:123456789012:cluster/jump" {
		t.Fatalf("ParseClusters = %v, %v", got, err)
	}
	for _, bad := range [][]string{nil, {" ", ","}, {"a/b"}, {"bastions", "arn:aws:ecs:eu-west-1:123456789012:task/x/y"}} {
		if _, err := ParseClusters(bad); err == nil {
			t.Errorf("ParseClusters(%q) accepted", bad)
		}
	}
}

// TaskID and ClusterName read the name every caller shows or passes on
// (the launcher's lines, ECS Exec's target), the one ParseTask and
// ParseCluster find in a good ARN, and the reference itself when it is a
// name already.
func TestTaskIDAndClusterName(t *testing.T) {
	for ref, want := range map[string]string{
		"arn:aws:ecs:us-west-2:111122223333:task/default/e9028f8d5d8e4f258373e7b93ce9a3c3":          "e9028f8d5d8e4f258373e7b93ce9a3c3",
		"arn:aws:ecs:ap-southeast-2:123456789012:task/7c1aa905-5bc8-4582-8ee6-91c717699340":         "7c1aa905-5bc8-4582-8ee6-91c717699340",
		"arn:aws-cn:ecs:cn-north-1:123456789012:task/my_Cluster-1/0123456789abcdef0123456789abcdef": "0123456789abcdef0123456789abcdef",
		"e9028f8d5d8e4f258373e7b93ce9a3c3": "e9028f8d5d8e4f258373e7b93ce9a3c3",
		"":                                 "",
	} {
		if got := TaskID(ref); got != want {
			t.Errorf("TaskID(%q) = %q, want %q", ref, got, want)
		}
		if task, err := ParseTask(ref); err == nil && task.ID != TaskID(ref) {
			t.Errorf("TaskID(%q) = %q, ParseTask finds %q", ref, TaskID(ref), task.ID)
		}
	}
	for ref, want := range map[string]string{
		"arn:aws:ecs:eu-west-1:123456789012:cluster/bastions":                "bastions",
		"arn:aws-us-gov:ecs:us-gov-west-1:123456789012:cluster/my_Cluster-1": "my_Cluster-1",
		"bastions": "bastions",
		"":         "",
	} {
		if got := ClusterName(ref); got != want {
			t.Errorf("ClusterName(%q) = %q, want %q", ref, got, want)
		}
		if c, err := ParseCluster(ref); err == nil && c.Name != ClusterName(ref) {
			t.Errorf("ClusterName(%q) = %q, ParseCluster finds %q", ref, ClusterName(ref), c.Name)
		}
	}
}
