// Package localport chooses the local ports of connect's forwards before
// any AWS request, and remembers them across runs in the user's state
// directory, so a client set up for one port finds it again.
package localport

import (
	"strings"

	"github.com/bastion-ttl/bastion-ttl/internal/cli"
)

// FromFlag is Want.FixedFrom for a port given as --local-port.
const FromFlag = "--local-port"

// Want is one forward whose local port is to be chosen.
type Want struct {
	Name string // the connection's name; "" for an unnamed --to
	Key  string // what its port is remembered under: Name, or KeyTo(HOST:PORT)
	// Fixed is the port asked for (--local-port, the file's local-port); 0:
	// none. FixedFrom says where it came from, for errors: FromFlag (also
	// when ""), or the file's, as "bastion-ttl.yaml's local-port".
	Fixed     int
	FixedFrom string
	Remote    int // the remote port: the local one when it is free
}

// KeyTo is the Key of an unnamed --to HOST:PORT.
func KeyTo(hostPort string) string { return "to:" + hostPort }

// label names the forward in an error.
func (w Want) label() string {
	if w.Name != "" {
		return w.Name
	}
	if hp, ok := strings.CutPrefix(w.Key, "to:"); ok {
		return "--to " + hp
	}
	return w.Key
}

// Choose is the local port of each want, in order. A want gets its Fixed
// port, else the one remembered for its Key, else its Remote port when
// that is free, else a port the kernel picks. A Fixed port must be free
// and wanted once, a remembered one free: else a usage error (exit 2) that
// says whose it is, where it came from and what to do. A remembered port
// another want holds, and a Remote port that is taken or given, fall to
// the next rule.
func Choose(wants []Want, remembered Memory) ([]int, error) {
	ports := make([]int, len(wants))
	from := make([]string, len(wants))
	owner := map[int]int{} // port → the want given it
	// Fixed ports first, then remembered ones: a remembered port is a hint,
	// so one another want holds already falls to the rules below.
	for pass := range 2 {
		seen := map[string]bool{}
		for i, w := range wants {
			var fix string // what to do when the port is taken
			switch {
			case pass == 0 && w.Fixed != 0:
				ports[i], from[i] = w.Fixed, w.FixedFrom
				if from[i] == "" || from[i] == FromFlag {
					from[i], fix = FromFlag, "pass another --local-port, or stop it"
				} else {
					fix = "change " + from[i] + ", pass --local-port, or stop it"
				}
			case pass == 1 && !seen[w.Key] && w.Fixed == 0 && w.Key != "" && remembered.Ports[w.Key] != 0:
				seen[w.Key] = true
				if _, held := owner[remembered.Ports[w.Key]]; held {
					continue
				}
				ports[i] = remembered.Ports[w.Key]
				from[i] = "remembered from your last connect in " + remembered.Path
				fix = "stop it, or pass --local-port (a connect without it then picks anew)"
			default:
				seen[w.Key] = true
				continue
			}
			p := ports[i]
			if p < 1 || p > 65535 {
				return nil, cli.Usagef("local port %d for %s (%s) is not a port (1-65535)", p, w.label(), from[i])
			}
			if j, dup := owner[p]; dup {
				return nil, cli.Usagef("local port %d is wanted by both %s (%s) and %s (%s): give one of them another local-port; nothing started",
					p, wants[j].label(), from[j], w.label(), from[i])
			}
			if busy := probe(p); busy != "" {
				return nil, cli.Usagef("local port %d for %s (%s) %s: %s; nothing started", p, w.label(), from[i], busy, fix)
			}
			owner[p] = i
		}
	}
	for i, w := range wants {
		if ports[i] != 0 {
			continue
		}
		_, given := owner[w.Remote]
		if w.Remote < 1 || w.Remote > 65535 || given || probe(w.Remote) != "" {
			p, err := kernelPort(owner)
			if err != nil {
				return nil, err
			}
			ports[i] = p
		} else {
			ports[i] = w.Remote
		}
		owner[ports[i]] = i
	}
	return ports, nil
}
