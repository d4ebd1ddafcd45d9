package supervisor

import (
	"slices"
	"strconv"
	"strings"

	"github.com/bastion-ttl/bastion-ttl/internal/sessions"
)

// Idle sampling: the sessions that the watch loop and GET /status count,
// and what the sidecar says about the kinds of session it can see.

// countSessions samples the sessions open now: inbound connections to the
// idle ports (by default every port something in the task listens on, less
// the control endpoint's) and ECS Exec workers, where the task's processes
// are visible (pidMode task). What it cannot see counts as in use.
func (w *watcher) countSessions() (sessions.Sample, error) {
	w.samplerMu.Lock()
	defer w.samplerMu.Unlock()
	if w.sampler == nil {
		w.sampler = &sessions.Sampler{
			ProcRoot: w.procRoot, Ports: w.cfg.idlePorts, Exclude: []uint16{w.cfg.controlPort},
			Exec: sessions.ExecEnabled(w.execAgentDir),
		}
	}
	sample, err := w.sampler.Count()
	sample.Unheard = slices.Clone(sample.Unheard) // the sampler's buffer
	return sample, err
}

// watchedPorts is the ports the last sample counted connections to, and
// those something listened on.
func (w *watcher) watchedPorts() (watched, listening []uint16) {
	w.samplerMu.Lock()
	defer w.samplerMu.Unlock()
	if w.sampler == nil {
		return nil, nil
	}
	return w.sampler.Watched(), w.sampler.Listening()
}

// sight is what the sidecar has said about the kinds of session it can
// see, so that it says each once: at the first sample, then as it changes.
type sight struct {
	told       bool
	unheard    map[uint16]bool // ERROR said; true while nothing listens yet
	execHidden bool            // ERROR said
	execShown  bool            // visible since
}

// tell logs, at the first sample, which kinds of session the sidecar can
// see; an ERROR once per configured port nothing listens on and once for
// ECS Exec sessions it cannot see, since each keeps the bastion in use;
// and when one of those comes into sight.
func (w *watcher) tell(s *sight, sample sessions.Sample) {
	if !s.told {
		s.told = true
		from := "every port something listens on now, less the control endpoint's"
		if w.cfg.idlePorts != nil {
			from = "BASTION_IDLE_PORTS"
		}
		exec := "not enabled for this task"
		switch {
		case sample.ExecHidden():
			exec = "enabled, workers not visible (no pidMode task): counted as in use"
		case sample.Exec:
			exec = "enabled, workers visible (pidMode task)"
		}
		watched, _ := w.watchedPorts()
		w.log.Info("sessions counted for the idle timeout", "tcp_ports", portList(watched),
			"tcp_ports_from", from, "ecs_exec", exec, "sessions", sample.Sessions)
		s.unheard = map[uint16]bool{}
	}
	for _, p := range sample.Unheard {
		if _, said := s.unheard[p]; !said {
			_, listening := w.watchedPorts()
			w.log.Error("nothing listens on a BASTION_IDLE_PORTS port: counting it as in use until something does, so idleness cannot end this bastion",
				"port", p, "listening", portList(listening))
		}
		s.unheard[p] = true
	}
	for p, waiting := range s.unheard {
		if waiting && !slices.Contains(sample.Unheard, p) {
			w.log.Info("a BASTION_IDLE_PORTS port now listens; its sessions are counted", "port", p)
			s.unheard[p] = false
		}
	}
	switch {
	case sample.ExecHidden() && !s.execHidden:
		s.execHidden = true
		w.log.Error("ECS Exec is enabled but the bastion container's processes are not visible (no pidMode task): counting ECS Exec sessions as in use, so idleness cannot end this bastion; set pidMode task")
	case s.execHidden && sample.ExecVisible && !s.execShown:
		s.execShown = true
		w.log.Info("the bastion container's processes are now visible; ECS Exec sessions are counted")
	}
}

func portList(ports []uint16) string {
	s := make([]string, len(ports))
	for i, p := range ports {
		s[i] = strconv.Itoa(int(p))
	}
	return strings.Join(s, ",")
}
