package taskmeta

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func decodeFile(t *testing.T, name string) *Task {
	t.Helper()
	f, err := os.Open("../localaws/taskmetadata/testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	task, err := Decode(f)
	if err != nil {
		t.Fatalf("Decode(%s): %v", name, err)
	}
	return task
}

func TestDecodeSamples(t *testing.T) {
	t.Run("v4 task", func(t *testing.T) {
		task := decodeFile(t, "v4-fargate-task.json")
		if task.TaskARN != "arn:aws:ecs:us-west-2:111122223333:task/default/e9028f8d5d8e4f258373e7b93ce9a3c3" ||
			task.Cluster != "arn:aws:ecs:us-west-2:111122223333:cluster/default" || len(task.Containers) != 1 {
			t.Fatalf("task = %+v", task)
		}
		got, err := task.StartedAt("")
		if want := mustTime(t, "2020-10-08T20:47:20.567813946Z"); err != nil || !got.Equal(want) {
			t.Fatalf("StartedAt = %v, %v; want %v", got, err, want)
		}
		if !task.PullStartedAt.Before(got) {
			t.Fatal("sample should have PullStartedAt before StartedAt")
		}
		if task.Limits == nil || *task.Limits != (Limits{CPU: 0.25, Memory: 512}) {
			t.Fatalf("Limits = %+v, want the task's 0.25 vCPU and 512 MiB", task.Limits)
		}
	})
	t.Run("v4 container document is not a task", func(t *testing.T) {
		f, _ := os.Open("../localaws/taskmetadata/testdata/v4-fargate-container.json")
		defer f.Close()
		if _, err := Decode(f); !errors.Is(err, errNoTaskARN) {
			t.Fatalf("Decode(container doc) = %v, want errNoTaskARN", err)
		}
	})
	t.Run("v2 with pause container", func(t *testing.T) {
		task := decodeFile(t, "v2-task-seed.json")
		got, err := task.StartedAt("")
		// The pause container started 14 s earlier; it must not count.
		if want := mustTime(t, "2018-11-23T00:17:35.32407093Z"); err != nil || !got.Equal(want) {
			t.Fatalf("StartedAt = %v, %v; want %v", got, err, want)
		}
		if !strings.HasSuffix(task.TaskARN, "task/7c1aa905-5bc8-4582-8ee6-91c717699340") {
			t.Fatalf("TaskARN = %q", task.TaskARN)
		}
	})
}

func TestStartedAtRules(t *testing.T) {
	tests := []struct {
		name      string
		doc       string
		container string
		want      string
		err       error
	}{
		{"earliest normal wins", `{"TaskARN":"a","Containers":[
			{"Name":"ssh","Type":"NORMAL","StartedAt":"2026-01-01T00:00:05Z"},
			{"Name":"supervisor","Type":"NORMAL","StartedAt":"2026-01-01T00:00:03.5Z"}]}`, "", "2026-01-01T00:00:03.5Z", nil},
		{"named container", `{"TaskARN":"a","Containers":[
			{"Name":"ssh","Type":"NORMAL","StartedAt":"2026-01-01T00:00:05Z"},
			{"Name":"supervisor","Type":"NORMAL","StartedAt":"2026-01-01T00:00:03Z"}]}`, "ssh", "2026-01-01T00:00:05Z", nil},
		{"named not started", `{"TaskARN":"a","Containers":[
			{"Name":"ssh","Type":"NORMAL","KnownStatus":"PENDING"},
			{"Name":"supervisor","Type":"NORMAL","StartedAt":"2026-01-01T00:00:03Z"}]}`, "ssh", "", ErrNotStarted},
		{"named missing", `{"TaskARN":"a","Containers":[{"Name":"x","Type":"NORMAL","StartedAt":"2026-01-01T00:00:03Z"}]}`, "ssh", "", ErrNoSuchContainer},
		{"none started, pull started", `{"TaskARN":"a","PullStartedAt":"2026-01-01T00:00:00Z","Containers":[
			{"Name":"ssh","Type":"NORMAL","KnownStatus":"PENDING"}]}`, "", "", ErrNotStarted},
		{"only pause started", `{"TaskARN":"a","Containers":[
			{"Name":"~internal~ecs~pause","Type":"CNI_PAUSE","StartedAt":"2026-01-01T00:00:01Z"},
			{"Name":"ssh","Type":"NORMAL","CreatedAt":"2026-01-01T00:00:02Z"}]}`, "", "", ErrNotStarted},
		{"zero time is not started", `{"TaskARN":"a","Containers":[{"Name":"ssh","Type":"NORMAL","StartedAt":"0001-01-01T00:00:00Z"}]}`, "", "", ErrNotStarted},
		{"no type, internal name", `{"TaskARN":"a","Containers":[
			{"Name":"~internal~ecs~pause","StartedAt":"2026-01-01T00:00:01Z"},
			{"Name":"ssh","StartedAt":"2026-01-01T00:00:02Z"}]}`, "", "2026-01-01T00:00:02Z", nil},
		{"no containers", `{"TaskARN":"a"}`, "", "", ErrNotStarted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			task, err := Decode(strings.NewReader(tt.doc))
			if err != nil {
				t.Fatal(err)
			}
			got, err := task.StartedAt(tt.container)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("err = %v, want %v", err, tt.err)
				}
				return
			}
			if err != nil || !got.Equal(mustTime(t, tt.want)) {
				t.Fatalf("StartedAt = %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

func TestDecodeFractionalDigits(t *testing.T) {
	base := "2026-01-01T00:00:07"
	fracs := []string{"", ".1", ".12", ".123", ".1234", ".12345", ".123456", ".1234567", ".12345678", ".123456789"}
	for _, f := range fracs {
		doc := `{"TaskARN":"a","Unknown":{"x":[1,2]},"Containers":[{"Name":"c","Type":"NORMAL","StartedAt":"` + base + f + `Z","RestartCount":2}]}`
		task, err := Decode(strings.NewReader(doc))
		if err != nil {
			t.Fatalf("%d digits: %v", len(f)-1, err)
		}
		got, _ := task.StartedAt("")
		if want := mustTime(t, base+f+"Z"); !got.Equal(want) {
			t.Fatalf("%q: got %v", f, got)
		}
	}
}

func TestDecodeGarbage(t *testing.T) {
	for _, doc := range []string{"", "<html>", `{"TaskARN":`, `{"Containers":[]}`, `{"TaskARN":"a","Containers":[{"StartedAt":"yesterday"}]}`, `[]`} {
		if _, err := Decode(strings.NewReader(doc)); err == nil {
			t.Errorf("Decode(%q) accepted", doc)
		}
	}
}

func TestDiscover(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	tests := []struct {
		vars map[string]string
		want Endpoint
	}{
		{map[string]string{"ECS_CONTAINER_METADATA_URI_V4": "http://169.254.170.2/v4/abc", "ECS_CONTAINER_METADATA_URI": "http://169.254.170.2/v3/abc"}, Endpoint{4, "http://169.254.170.2/v4/abc/task", "http://169.254.170.2/v4/abc/task/stats"}},
		{map[string]string{"ECS_CONTAINER_METADATA_URI": "http://169.254.170.2/v3/abc/"}, Endpoint{3, "http://169.254.170.2/v3/abc/task", "http://169.254.170.2/v3/abc/task/stats"}},
		{map[string]string{}, Endpoint{2, "http://169.254.170.2/v2/metadata", "http://169.254.170.2/v2/stats"}},
	}
	for _, tt := range tests {
		if got := Discover(env(tt.vars)); got != tt.want {
			t.Errorf("Discover(%v) = %+v, want %+v", tt.vars, got, tt.want)
		}
	}
}

// modifiedSample decodes a copy of a testdata sample changed by edit.
func modifiedSample(t *testing.T, name string, edit func(task, container0 map[string]any)) *Task {
	t.Helper()
	b, err := os.ReadFile("../localaws/taskmetadata/testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	var first map[string]any
	for _, c := range m["Containers"].([]any) {
		if c := c.(map[string]any); c["Type"] == "NORMAL" {
			first = c
			break
		}
	}
	edit(m, first)
	b, err = json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	task, err := Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return task
}

func TestStartedAtPlausible(t *testing.T) {
	tests := []struct {
		name   string
		sample string
		edit   func(task, c map[string]any)
		want   string // empty: ErrImplausibleStart
	}{
		{"v4 as is (StartedAt equals CreatedAt)", "v4-fargate-task.json", func(task, c map[string]any) {}, "2020-10-08T20:47:20.567813946Z"},
		{"v4 StartedAt before CreatedAt", "v4-fargate-task.json", func(task, c map[string]any) {
			c["StartedAt"] = "2020-10-08T20:47:20.567813945Z"
		}, ""},
		{"v4 StartedAt before PullStartedAt", "v4-fargate-task.json", func(task, c map[string]any) {
			delete(c, "CreatedAt")
			c["StartedAt"] = "2020-10-08T20:47:16Z"
		}, ""},
		{"v4 without CreatedAt or PullStartedAt", "v4-fargate-task.json", func(task, c map[string]any) {
			delete(c, "CreatedAt")
			delete(task, "PullStartedAt")
			c["StartedAt"] = "2020-10-08T20:47:16Z"
		}, "2020-10-08T20:47:16Z"},
		{"v4 zero PullStartedAt is not given", "v4-fargate-task.json", func(task, c map[string]any) {
			task["PullStartedAt"] = "0001-01-01T00:00:00Z"
		}, "2020-10-08T20:47:20.567813946Z"},
		// The pause container starts before the pull: it is no candidate, so
		// the sample stays usable.
		{"v2 as is (pause container before PullStartedAt)", "v2-task-seed.json", func(task, c map[string]any) {}, "2018-11-23T00:17:35.32407093Z"},
		{"v2 bastion before PullStartedAt", "v2-task-seed.json", func(task, c map[string]any) {
			c["CreatedAt"] = "2018-11-23T00:17:20Z"
			c["StartedAt"] = "2018-11-23T00:17:21Z"
		}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			task := modifiedSample(t, tt.sample, tt.edit)
			got, err := task.StartedAt("")
			if tt.want == "" {
				if !errors.Is(err, ErrImplausibleStart) {
					t.Fatalf("StartedAt = %v, %v; want ErrImplausibleStart", got, err)
				}
				return
			}
			if err != nil || !got.Equal(mustTime(t, tt.want)) {
				t.Fatalf("StartedAt = %v, %v; want %v", got, err, tt.want)
			}
		})
	}
	t.Run("an implausible second container spoils the document", func(t *testing.T) {
		task, err := Decode(strings.NewReader(`{"TaskARN":"a","Containers":[
			{"Name":"ssh","Type":"NORMAL","CreatedAt":"2026-01-01T00:00:04Z","StartedAt":"2026-01-01T00:00:05Z"},
			{"Name":"supervisor","Type":"NORMAL","CreatedAt":"2026-01-01T00:00:04Z","StartedAt":"2026-01-01T00:00:01Z"}]}`))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := task.StartedAt(""); !errors.Is(err, ErrImplausibleStart) {
			t.Fatalf("err = %v", err)
		}
		if got, err := task.StartedAt("ssh"); err != nil || !got.Equal(mustTime(t, "2026-01-01T00:00:05Z")) {
			t.Fatalf("named: %v, %v", got, err)
		}
		if _, err := task.StartedAt("supervisor"); !errors.Is(err, ErrImplausibleStart) {
			t.Fatalf("named implausible: %v", err)
		}
	})
}

func TestStartedAtAsOfRefusesTheFuture(t *testing.T) {
	task := decodeFile(t, "v4-fargate-task.json")
	started := mustTime(t, "2020-10-08T20:47:20.567813946Z")
	for _, tt := range []struct {
		now time.Time
		ok  bool
	}{
		{started.Add(time.Hour), true},
		{started, true},
		{started.Add(-ClockErrorBound), true}, // within the bound
		{started.Add(-ClockErrorBound - time.Nanosecond), false},
		{started.Add(-time.Hour), false},
	} {
		got, err := task.StartedAtAsOf("", tt.now)
		if tt.ok != (err == nil) || (tt.ok && !got.Equal(started)) {
			t.Errorf("now = start%+v: %v, %v", tt.now.Sub(started), got, err)
		}
		if !tt.ok && !errors.Is(err, ErrImplausibleStart) {
			t.Errorf("now = start%+v: err %v, want ErrImplausibleStart", tt.now.Sub(started), err)
		}
	}
}

func TestNoSuchContainerNamesTheContainers(t *testing.T) {
	task := decodeFile(t, "v2-task-seed.json")
	_, err := task.StartedAt("ssh")
	var nc *NoSuchContainerError
	if !errors.As(err, &nc) || !errors.Is(err, ErrNoSuchContainer) || nc.Name != "ssh" || strings.Join(nc.Have, ",") != "bastion" {
		t.Fatalf("err = %#v", err)
	}
	// A document that lists no container yet proves nothing.
	task.Containers = nil
	if _, err := task.StartedAt("ssh"); !errors.Is(err, ErrNotStarted) {
		t.Fatalf("empty document: %v, want ErrNotStarted", err)
	}
}

// restartedSample is the real v4 Fargate sample as ECS shows it after a
// container restart policy restarted its container: RestartCount set, a
// later StartedAt, the same CreatedAt.
func restartedSample(t *testing.T, restarts int, later time.Duration, edit func(task, container map[string]any)) *Task {
	t.Helper()
	raw, err := os.ReadFile("../localaws/taskmetadata/testdata/v4-fargate-task.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	c := doc["Containers"].([]any)[0].(map[string]any)
	first := mustTime(t, c["StartedAt"].(string))
	c["StartedAt"] = first.Add(later).Format(time.RFC3339Nano)
	c["RestartCount"] = restarts
	if edit != nil {
		edit(doc, c)
	}
	b, _ := json.Marshal(doc)
	task, err := Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return task
}

// A restart gives the container a new StartedAt: the clock never starts
// again. Its first start is no longer shown, and the latest bound below it
// counts: its CreatedAt, else the task's PullStartedAt.
func TestRestartedContainerNeverStartsTheClockAgain(t *testing.T) {
	created := mustTime(t, "2020-10-08T20:47:20.567813946Z") // the sample's CreatedAt = its first StartedAt
	pull := mustTime(t, "2020-10-08T20:47:16.053330955Z")
	for _, tc := range []struct {
		name     string
		restarts int
		edit     func(task, container map[string]any)
		want     time.Time
		from     string
	}{
		{"not restarted: its StartedAt", 0, nil, created.Add(50 * time.Minute), ""},
		{"restarted: its CreatedAt", 2, nil, created, `container "curl" restarted 2 times, counted from its CreatedAt`},
		{"restarted, no CreatedAt: the task's PullStartedAt", 1, func(_, c map[string]any) { delete(c, "CreatedAt") }, pull, "counted from the task's PullStartedAt"},
		{"restarted, nothing earlier shown", 1, func(task, c map[string]any) { delete(c, "CreatedAt"); delete(task, "PullStartedAt") }, created.Add(50 * time.Minute), "counted from its StartedAt"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			task := restartedSample(t, tc.restarts, 50*time.Minute, tc.edit)
			for _, name := range []string{"", "curl"} {
				got, err := task.StartedAt(name)
				if err != nil || !got.Equal(tc.want) {
					t.Fatalf("StartedAt(%q) = %v, %v; want %v", name, got, err, tc.want)
				}
				if r := task.Restarts(name); (tc.from == "") != (r == "") || !strings.Contains(r, tc.from) {
					t.Fatalf("Restarts(%q) = %q, want %q", name, r, tc.from)
				}
				if shown, err := task.LatestStartedAt(name); err != nil || !shown.Equal(created.Add(50*time.Minute)) {
					t.Fatalf("LatestStartedAt(%q) = %v, %v", name, shown, err)
				}
			}
		})
	}
	// Two containers, the restarted one created first: the earliest bound wins.
	task := restartedSample(t, 1, 50*time.Minute, func(task, c map[string]any) {
		other := map[string]any{"Name": "supervisor", "Type": "NORMAL", "CreatedAt": created.Add(time.Second).Format(time.RFC3339Nano),
			"StartedAt": created.Add(2 * time.Second).Format(time.RFC3339Nano)}
		task["Containers"] = append(task["Containers"].([]any), other)
	})
	if got, _ := task.StartedAt(""); !got.Equal(created) {
		t.Fatalf("StartedAt = %v, want the restarted container's CreatedAt %v", got, created)
	}
	if got, _ := task.StartedAt("supervisor"); !got.Equal(created.Add(2 * time.Second)) {
		t.Fatalf("StartedAt(supervisor) = %v: a container that did not restart keeps its own", got)
	}
}
