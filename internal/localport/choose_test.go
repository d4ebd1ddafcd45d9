package localport

import (
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/bastion-ttl/bastion-ttl/internal/cli"
)

// wantErr fails unless err is a usage error (exit 2) holding every part.
func wantErr(t *testing.T, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one with %q", parts)
	}
	if !cli.IsUsage(err) {
		t.Errorf("%v: not a usage error (exit 2)", err)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("%v\nwant %q in it", err, p)
		}
	}
}

// A fixed port that is taken is refused, naming the port, the connection,
// where the port came from, the process holding it and what to do.
func TestChooseFixedTaken(t *testing.T) {
	_, busy := hold(t, 0)
	p := strconv.Itoa(busy)
	_, err := Choose([]Want{{Name: "orders-db", Key: "orders-db", Fixed: busy, Remote: 5432}}, Memory{})
	wantErr(t, err, "local port "+p+" for orders-db (--local-port) is in use by "+me(), "pass another --local-port")

	_, err = Choose([]Want{{Name: "cache", Key: "cache", Fixed: busy, FixedFrom: "bastion-ttl.yaml's local-port", Remote: 6379}}, Memory{})
	wantErr(t, err, "local port "+p+" for cache (bastion-ttl.yaml's local-port) is in use by "+me(), "change bastion-ttl.yaml's local-port")

	_, err = Choose([]Want{{Key: KeyTo("db.internal:5432"), Fixed: busy, Remote: 5432}}, Memory{})
	wantErr(t, err, "local port "+p+" for --to db.internal:5432 (--local-port)")
}

// A free fixed port is given even when the remote port is free too.
func TestChooseFixedFree(t *testing.T) {
	fixed, remote := freePort(t), freePort(t)
	got, err := Choose([]Want{{Name: "db", Key: "db", Fixed: fixed, Remote: remote}}, Memory{})
	if err != nil || got[0] != fixed {
		t.Fatalf("%v %v, want [%d]", got, err, fixed)
	}
}

// A remembered port is given again on the next connect, even when the
// remote port has become free; and the remote port, when taken, falls to
// a port the kernel picks, which is what is remembered.
func TestChooseRemembersAcrossRuns(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state", "bastion-ttl", "ports.json")
	remote := freePort(t)
	holder, _ := hold(t, remote)
	wants := []Want{{Name: "orders-db", Key: "orders-db", Remote: remote}}

	mem, note := Load(path)
	if note != "" || len(mem.Ports) != 0 {
		t.Fatalf("no file yet: %v %q", mem.Ports, note)
	}
	first, err := Choose(wants, mem)
	if err != nil {
		t.Fatal(err)
	}
	if first[0] == remote || first[0] == 0 {
		t.Fatalf("remote port %d is taken: got %d, want a port the kernel picks", remote, first[0])
	}
	if err := Save(path, wants, first); err != nil {
		t.Fatal(err)
	}
	holder.Close() // the remote port is free now: the remembered one still wins

	mem, note = Load(path)
	if note != "" || mem.Ports["orders-db"] != first[0] {
		t.Fatalf("remembered %v %q, want orders-db: %d", mem.Ports, note, first[0])
	}
	second, err := Choose(wants, mem)
	if err != nil || second[0] != first[0] {
		t.Fatalf("second run: %v %v, want [%d]", second, err, first[0])
	}
}

// A remembered port that is taken is refused, saying it was remembered
// and where, and how to get another.
func TestChooseRememberedTaken(t *testing.T) {
	_, busy := hold(t, 0)
	mem := Memory{Path: "/home/u/.local/state/bastion-ttl/ports.json", Ports: map[string]int{"orders-db": busy}}
	_, err := Choose([]Want{{Name: "orders-db", Key: "orders-db", Remote: freePort(t)}}, mem)
	wantErr(t, err, "local port "+strconv.Itoa(busy)+" for orders-db (remembered from your last connect in /home/u/.local/state/bastion-ttl/ports.json) is in use by "+me(),
		"pass --local-port (a connect without it then picks anew)")
}

// Two databases on one remote port: the first gets it, the second another.
func TestChooseSameRemotePort(t *testing.T) {
	remote := freePort(t)
	got, err := Choose([]Want{
		{Name: "orders-db", Key: "orders-db", Remote: remote},
		{Name: "reports-db", Key: "reports-db", Remote: remote},
	}, Memory{})
	if err != nil {
		t.Fatal(err)
	}
	if got[0] != remote || got[1] == remote || got[1] == 0 {
		t.Fatalf("got %v, want [%d, another]", got, remote)
	}
}

// A default never takes a port a later want has fixed or remembered.
func TestChooseClaimsBeforeDefaults(t *testing.T) {
	remote := freePort(t)
	got, err := Choose([]Want{
		{Name: "orders-db", Key: "orders-db", Remote: remote},
		{Name: "reports-db", Key: "reports-db", Remote: 5432},
	}, Memory{Path: "ports.json", Ports: map[string]int{"reports-db": remote}})
	if err != nil {
		t.Fatal(err)
	}
	if got[1] != remote || got[0] == remote {
		t.Fatalf("got %v, want reports-db on its remembered %d", got, remote)
	}
}

// One port fixed or remembered for two connections is refused, naming both.
func TestChooseDuplicate(t *testing.T) {
	p := freePort(t)
	_, err := Choose([]Want{
		{Name: "orders-db", Key: "orders-db", Fixed: p, FixedFrom: "bastion-ttl.yaml's local-port", Remote: 5432},
		{Name: "reports-db", Key: "reports-db", Fixed: p, Remote: 5432},
	}, Memory{})
	wantErr(t, err, "local port "+strconv.Itoa(p)+" is wanted by both orders-db (bastion-ttl.yaml's local-port) and reports-db (--local-port)")

}

// A remembered port is a hint: one that a fixed port, or another
// connection's remembered port, holds already falls to the defaults.
func TestChooseRememberedGivesWay(t *testing.T) {
	p := freePort(t)
	got, err := Choose([]Want{
		{Name: "cache", Key: "cache", Remote: 6379},
		{Name: "orders-db", Key: "orders-db", Fixed: p, Remote: 5432},
	}, Memory{Path: "ports.json", Ports: map[string]int{"cache": p}})
	if err != nil || got[1] != p || got[0] == p || got[0] == 0 {
		t.Fatalf("%v %v, want orders-db on its fixed %d and cache elsewhere", got, err, p)
	}
	got, err = Choose([]Want{{Name: "orders-db", Key: "orders-db", Remote: 5432}, {Name: "replica-db", Key: "replica-db", Remote: 5432}},
		Memory{Path: "ports.json", Ports: map[string]int{"orders-db": p, "replica-db": p}})
	if err != nil || got[0] != p || got[1] == p || got[1] == 0 {
		t.Fatalf("%v %v; want orders-db on %d and replica-db elsewhere", got, err, p)
	}
}

// A fixed port that is no port is refused.
func TestChooseNotAPort(t *testing.T) {
	_, err := Choose([]Want{{Name: "db", Key: "db", Fixed: 70000, Remote: 5432}}, Memory{})
	wantErr(t, err, "local port 70000 for db (--local-port) is not a port (1-65535)")
}

// A connection named twice gets its remembered port once; the second
// forward falls to the defaults, as Save remembers only the first.
func TestChooseKeyTwice(t *testing.T) {
	p := freePort(t)
	w := Want{Name: "orders-db", Key: "orders-db", Remote: 5432}
	got, err := Choose([]Want{w, w}, Memory{Path: "ports.json", Ports: map[string]int{"orders-db": p}})
	if err != nil || got[0] != p || got[1] == p || got[1] == 0 {
		t.Fatalf("%v %v, want [%d, another]", got, err, p)
	}
}
