package supervisor

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bastion-ttl/bastion-ttl/internal/clock"
	"github.com/bastion-ttl/bastion-ttl/internal/localaws/taskmetadata"
	"github.com/bastion-ttl/bastion-ttl/internal/startcache"
	"github.com/bastion-ttl/bastion-ttl/internal/taskmeta"
	"github.com/bastion-ttl/bastion-ttl/internal/testenv"
	"github.com/bastion-ttl/bastion-ttl/internal/testenv/clocktest"
)

// countingMeta serves the task document with startedAt and counts requests.
type countingMeta struct {
	*httptest.Server
	calls atomic.Int32
}

func newCountingMeta(t *testing.T, startedAt time.Time) *countingMeta {
	t.Helper()
	m := &countingMeta{}
	doc := taskmetadata.Document(testTaskARN, testClusterARN, startedAt)
	h := taskmetadata.Handler(func() []byte { return doc })
	m.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m.calls.Add(1)
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(m.Close)
	return m
}

// checkApp is a check in process, on clk, logging to the buffer; a dry
// run, since only its start is read here.
func checkApp(t *testing.T, metaURL, ttl string, clk clock.Clock) (*checker, *bytes.Buffer) {
	t.Helper()
	env := map[string]string{
		"ECS_CONTAINER_METADATA_URI_V4": metaURL + "/v4/e9028f8d5d8e4f258373e7b93ce9a3c3-2495160603",
		"BASTION_TTL":                   ttl,
		"BASTION_LOG_LEVEL":             "debug",
		"BASTION_DRY_RUN":               "true",
		"TMPDIR":                        t.TempDir(),
	}
	var logs bytes.Buffer
	c, err := newChecker(env, clk, &logs)
	if err != nil {
		t.Fatal(err)
	}
	return c, &logs
}

func (c *checker) cacheKey() string { return cacheSource(c.meta.endpoint, c.cfg.Container, hostname()) }

// plant writes an entry into the app's cache directory, as the
// supervisor's own user could.
func plant(t *testing.T, c *checker, startedAt, checkedAt time.Time) {
	t.Helper()
	d, err := startcache.OpenDir(c.cacheDir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	e := startcache.Entry{Source: c.cacheKey(), TaskARN: testTaskARN, StartedAt: startedAt, CheckedAt: checkedAt}
	if err := d.Save(e); err != nil {
		t.Fatal(err)
	}
}

func mustStart(t *testing.T, c *checker) taskmeta.Start {
	t.Helper()
	s, err := c.cachedStart(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestCachedStartAnswersAHealthyCheckAndReconfirms(t *testing.T) {
	clk := clocktest.NewFake(time.Now())
	started := clk.Now().Add(-10 * time.Minute).Truncate(time.Millisecond)
	meta := newCountingMeta(t, started)
	c, _ := checkApp(t, meta.URL, "1h", clk)

	for i, want := range []int32{1, 1, 1} {
		if s := mustStart(t, c); !s.Time.Equal(started) || s.TaskARN != testTaskARN {
			t.Fatalf("check %d: start %+v", i, s)
		}
		if got := meta.calls.Load(); got != want {
			t.Fatalf("check %d: %d metadata requests, want %d", i, got, want)
		}
		clk.Advance(startcache.MaxAge / 3)
	}
	// MaxAge after the confirmation, the metadata is read again.
	clk.Advance(startcache.MaxAge / 3)
	mustStart(t, c)
	if got := meta.calls.Load(); got != 2 {
		t.Fatalf("%d metadata requests after MaxAge, want 2", got)
	}
	fi, err := os.Lstat(c.cacheDir)
	if err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o700 {
		t.Fatalf("cache directory %v, %v", fi, err)
	}
}

// An earlier start in the cache says "expired": the check reads the
// metadata before acting on it, so it cannot stop the bastion early.
func TestCachedStartEarlierStartDoesNotStopEarly(t *testing.T) {
	clk := clocktest.NewFake(time.Now())
	started := clk.Now().Add(-10 * time.Minute).Truncate(time.Millisecond)
	meta := newCountingMeta(t, started)
	c, logs := checkApp(t, meta.URL, "1h", clk)
	plant(t, c, started.Add(-2*time.Hour), clk.Now())

	if s := mustStart(t, c); !s.Time.Equal(started) {
		t.Fatalf("start %v, want the metadata's %v: the planted earlier start would stop the bastion early", s.Time, started)
	}
	if meta.calls.Load() != 1 || !strings.Contains(logs.String(), "differs from the task metadata") {
		t.Fatalf("%d requests; logs:\n%s", meta.calls.Load(), logs)
	}
	// And the cache now holds the truth.
	meta.Close()
	if s := mustStart(t, c); !s.Time.Equal(started) {
		t.Fatalf("cached start %v after the correction", s.Time)
	}
}

// A start in the future is never believed: the expired task's true start
// is read and the check stops it.
func TestCachedStartFutureStartIsDiscarded(t *testing.T) {
	clk := clocktest.NewFake(time.Now())
	started := clk.Now().Add(-2 * time.Hour).Truncate(time.Millisecond)
	meta := newCountingMeta(t, started)
	c, logs := checkApp(t, meta.URL, "1h", clk)
	for _, planted := range []struct{ start, checked time.Time }{
		{clk.Now().Add(time.Hour), clk.Now().Add(time.Hour)},
		{clk.Now().Add(taskmeta.ClockErrorBound + time.Millisecond), clk.Now()},
		{clk.Now(), clk.Now().Add(10 * time.Minute)}, // confirmed "in the future": believed for 10 min more
	} {
		plant(t, c, planted.start, planted.checked)
		if s := mustStart(t, c); !s.Time.Equal(started) {
			t.Fatalf("planted %+v: start %v, want the metadata's %v", planted, s.Time, started)
		}
	}
	if meta.calls.Load() != 3 || !strings.Contains(logs.String(), "cached start time ignored") {
		t.Fatalf("%d requests; logs:\n%s", meta.calls.Load(), logs)
	}
}

// A later start than the metadata's, written once, holds the bastion at
// most startcache.MaxAge after the confirmation it claims; then the
// metadata is read again and the planted start discarded.
func TestCachedStartLaterThanMetadataIsBounded(t *testing.T) {
	clk := clocktest.NewFake(time.Now())
	started := clk.Now().Add(-2 * time.Hour).Truncate(time.Millisecond) // expired an hour ago
	meta := newCountingMeta(t, started)
	c, logs := checkApp(t, meta.URL, "1h", clk)
	plantedAt := clk.Now()
	plant(t, c, plantedAt.Add(-time.Minute), plantedAt)

	var stoppable time.Time
	for range 100 {
		s := mustStart(t, c)
		if s.Time.Equal(started) {
			stoppable = clk.Now()
			break
		}
		clk.Advance(5 * time.Second) // a health check every 5 s
	}
	if stoppable.IsZero() || stoppable.Sub(plantedAt) > startcache.MaxAge {
		t.Fatalf("the metadata's start was used %v after the planting, want at most %v", stoppable.Sub(plantedAt), startcache.MaxAge)
	}
	if !strings.Contains(logs.String(), "differs from the task metadata") {
		t.Fatalf("the discarded entry was not reported:\n%s", logs)
	}
}

// A directory not its own (another user's, a symlink, a wide mode) is not
// used, whatever it holds: every check reads the metadata, and the log says
// so once.
func TestCachedStartRefusesADirectoryNotItsOwn(t *testing.T) {
	for name, prepare := range map[string]func(t *testing.T, path, planted string){
		"world-writable": func(t *testing.T, path, planted string) {
			mustDo(t, os.Mkdir(path, 0o700))
			mustDo(t, os.Chmod(path, 0o777))
			mustDo(t, os.Rename(planted, filepath.Join(path, filepath.Base(planted))))
		},
		"symlink to a 0700 directory": func(t *testing.T, path, planted string) {
			mustDo(t, os.Symlink(filepath.Dir(planted), path))
		},
		"another user's": func(t *testing.T, path, planted string) {
			if os.Geteuid() != 0 {
				testenv.Skipped(t, "needs root to give a directory to another user: run make test as root")
			}
			mustDo(t, os.Mkdir(path, 0o700))
			mustDo(t, os.Rename(planted, filepath.Join(path, filepath.Base(planted))))
			mustDo(t, os.Chown(path, 65534, 65534))
			mustDo(t, os.Chown(filepath.Join(path, filepath.Base(planted)), 65534, 65534))
		},
	} {
		t.Run(name, func(t *testing.T) {
			clk := clocktest.NewFake(time.Now())
			started := clk.Now().Add(-2 * time.Hour).Truncate(time.Millisecond)
			meta := newCountingMeta(t, started)
			c, logs := checkApp(t, meta.URL, "1h", clk)
			// The attacker's entry: a start a minute ago, "confirmed" now.
			own := filepath.Join(t.TempDir(), "own")
			mustDo(t, os.Mkdir(own, 0o700))
			planted := filepath.Join(own, startcache.FileName(c.cacheKey()))
			mustDo(t, os.WriteFile(planted, plantedEntry(t, c.cacheKey(), clk.Now().Add(-time.Minute), clk.Now()), 0o600))
			prepare(t, c.cacheDir, planted)

			for i := range 2 {
				if s := mustStart(t, c); !s.Time.Equal(started) {
					t.Fatalf("check %d: start %v, want the metadata's", i, s.Time)
				}
			}
			if meta.calls.Load() != 2 {
				t.Fatalf("%d metadata requests, want one per check", meta.calls.Load())
			}
			if n := strings.Count(logs.String(), `"level":"WARN","msg":"start cache not usable`); n != 1 {
				t.Fatalf("%d warnings, want 1:\n%s", n, logs)
			}
		})
	}
}

func TestCacheSourceKeysV2ByHostname(t *testing.T) {
	v2 := taskmeta.Endpoint{Version: 2, TaskURL: taskmeta.V2URL}
	v4 := taskmeta.Endpoint{Version: 4, TaskURL: "http://169.254.170.2/v4/abc/task"}
	if cacheSource(v2, "", "ip-10-0-0-1") == cacheSource(v2, "", "ip-10-0-0-2") {
		t.Fatal("two v2 tasks share a cache entry")
	}
	if cacheSource(v4, "", "h") == cacheSource(v4, "ssh", "h") {
		t.Fatal("two containers share a cache entry")
	}
	if cacheSource(v4, "", "a") != cacheSource(v4, "", "b") {
		t.Fatal("v4 keyed by hostname: its URL is the task's own")
	}
}

// TestCheckBinaryIgnoresAnotherUsersPlantedStart: another user, knowing
// where the cache lives, plants a start (a minute ago) where check reads
// it: a directory of theirs at the cache's path, and a symlink at the old
// predictable file name in the temporary directory. The expired bastion is
// still stopped.
func TestCheckBinaryIgnoresAnotherUsersPlantedStart(t *testing.T) {
	if os.Geteuid() != 0 {
		testenv.Skipped(t, "needs root to act as another user: run make test as root")
	}
	t.Parallel()
	api := newAPIServer(t, 202)
	meta := metadataServer(t, time.Now().Add(-2*time.Hour), 0)
	env := baseEnv(t, meta, api, "1h")
	tmp := env["TMPDIR"]
	source := strings.TrimRight(env["ECS_CONTAINER_METADATA_URI_V4"], "/") + "/task\x00"
	entry := plantedEntry(t, source, time.Now().Add(-time.Minute), time.Now())

	attacker := t.TempDir()
	mustDo(t, os.WriteFile(filepath.Join(attacker, "planted.json"), entry, 0o644))
	h := fnv.New64a()
	_, _ = h.Write([]byte(source))
	mustDo(t, os.Symlink(filepath.Join(attacker, "planted.json"), filepath.Join(tmp, fmt.Sprintf("bastion-ttl-start-%016x.json", h.Sum64()))))
	dir := startcache.DirPath(func(k string) string { return env[k] })
	mustDo(t, os.Mkdir(dir, 0o777))
	mustDo(t, os.Chmod(dir, 0o777))
	mustDo(t, os.WriteFile(filepath.Join(dir, startcache.FileName(source)), entry, 0o644))
	for _, p := range []string{attacker, filepath.Join(attacker, "planted.json"), dir, filepath.Join(dir, startcache.FileName(source))} {
		mustDo(t, os.Lchown(p, 65534, 65534))
	}

	code, out := runOnce(t, env, "check")
	if code != 1 || len(api.Hits()) != 1 {
		t.Fatalf("exit %d, %d stop requests; want 1 and 1 (the planted start must not keep the bastion):\n%s", code, len(api.Hits()), out)
	}
	if !strings.Contains(out, "start cache not usable") {
		t.Fatalf("the refused cache directory was not logged:\n%s", out)
	}
}

// plantedEntry is an attacker's cache entry, as JSON.
func plantedEntry(t *testing.T, source string, startedAt, checkedAt time.Time) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{"source": source, "taskArn": testTaskARN, "startedAt": startedAt, "checkedAt": checkedAt})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustDo(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// The bastion container restarts (a container restart policy): the health
// check, which lives in it, keeps the first start it saw in its cache
// directory (a restart keeps the container's files), so the clock does not
// start again; with nothing remembered, it counts from the container's
// CreatedAt, a bound below the first start, never from the restart.
func TestCheckAfterAContainerRestartKeepsTheFirstStart(t *testing.T) {
	clk := clocktest.NewFake(time.Now().Truncate(time.Millisecond))
	first := clk.Now().Add(-10 * time.Minute)
	created := first.Add(-2 * time.Second)
	var doc atomic.Value
	doc.Store(restartedDocument(t, created, first, 0))
	meta := httptest.NewServer(taskmetadata.Handler(func() []byte { return doc.Load().([]byte) }))
	t.Cleanup(meta.Close)
	api := newAPIServer(t, 202)
	env := baseEnv(t, meta, api, "1h")
	var logs testenv.Buffer
	check := func(env map[string]string) error {
		c, err := newChecker(env, clk, &logs)
		if err != nil {
			t.Fatal(err)
		}
		c.signal, c.containerStdout = func(int) error { return nil }, ""
		return c.run(context.Background())
	}
	if err := check(env); err != nil {
		t.Fatalf("check before the restart: %v", err)
	}
	clk.Advance(45 * time.Minute)
	doc.Store(restartedDocument(t, created, first.Add(50*time.Minute), 1)) // restarted 5 minutes ago
	if err := check(env); err != nil {
		t.Fatalf("check after the restart, before the first start's deadline: %v", err)
	}
	clk.Advance(6 * time.Minute) // first + 1h1m: the restart's start + TTL is 49 minutes away
	if err := check(env); !errors.Is(err, errExpired) {
		t.Fatalf("check past the first start's deadline = %v, want expired\n%s", err, logs.String())
	}
	hits := api.Hits()
	if len(hits) != 1 || !strings.Contains(hits[0].req.Reason, "(started "+first.UTC().Format(time.RFC3339)+")") {
		t.Fatalf("stop requests %+v, want one counting from the first start", hits)
	}
	if !strings.Contains(logs.String(), "the clock keeps the first start seen") {
		t.Fatalf("logs:\n%s", logs.String())
	}

	// Nothing remembered (another cache directory): the CreatedAt bound.
	fresh := maps.Clone(env)
	fresh["TMPDIR"] = t.TempDir()
	if err := check(fresh); !errors.Is(err, errExpired) {
		t.Fatalf("check with nothing remembered = %v, want expired", err)
	}
	if hits := api.Hits(); len(hits) != 2 || !strings.Contains(hits[1].req.Reason, "(started "+created.UTC().Format(time.RFC3339)+")") ||
		!strings.Contains(logs.String(), `container \"curl\" restarted 1 times, counted from its CreatedAt`) {
		t.Fatalf("stop requests %+v\n%s", hits, logs.String())
	}
}
