package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/bastion-ttl/bastion-ttl/internal/supervisor"
)

// bastion is the bastion container's side of the demo: an SSH server's
// stand-in (a real TCP listener, whose connections the supervisor reads in
// /proc/net/tcp), and a person who logs in, asks for more time with the
// supervisor command, checks the status and leaves.
type bastion struct {
	tl      *timeline
	ln      net.Listener
	port    string
	control string // the sidecar's control endpoint
}

func openBastion(tl *timeline) (*bastion, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("the bastion's listener: %w", err)
	}
	// A free port for the control endpoint: the sidecar binds it a moment later.
	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("a port for the control endpoint: %w", err)
	}
	control := free.Addr().String()
	free.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				_, _ = io.Copy(io.Discard, conn)
				conn.Close()
			}()
		}
	}()
	return &bastion{tl: tl, ln: ln, port: port, control: control}, nil
}

func (b *bastion) close() { b.ln.Close() }

// visit is the person's session, through the port bastion-ttl connect
// forwards to the bastion's (ready gives it): logged in from 0.5 s to
// ttl - 0.5 s, extending the TTL after 1 s and looking at the status after 2 s.
func (b *bastion) visit(ctx context.Context, started time.Time, ttl time.Duration, ready <-chan forwarded) {
	at := func(d time.Duration) bool {
		select {
		case <-time.After(time.Until(started.Add(d))):
			return true
		case <-ctx.Done():
			return false
		}
	}
	var local int
	select {
	case f := <-ready:
		local = f.local
	case <-ctx.Done():
		return
	}
	if !at(500 * time.Millisecond) {
		return
	}
	conn, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(local))
	if err != nil {
		b.tl.say("bastion", "cannot log in: %v", err)
		return
	}
	defer conn.Close()
	b.tl.say("bastion", "ops logs in through localhost:%d: the forward's TCP connection to port %s, ESTABLISHED in /proc/net/tcp", local, b.port)
	if !at(time.Second) {
		return
	}
	b.run(ctx, "extend", "1m")
	if !at(2 * time.Second) {
		return
	}
	b.run(ctx, "status", "--short")
	if !at(ttl - 500*time.Millisecond) {
		return
	}
	conn.Close()
	b.tl.say("bastion", "ops logs out: no session any more")
	if at(ttl) {
		b.tl.say("bastion", "start + %s, the first deadline: still running, extended", ttl)
	}
}

// run is the supervisor command as a person on the bastion runs it: with
// none of the sidecar's environment but the control endpoint's address.
func (b *bastion) run(ctx context.Context, args ...string) {
	var out bytes.Buffer
	err := supervisor.Run(ctx, args, supervisor.Env{Environ: map[string]string{"BASTION_CONTROL_ADDR": b.control}, Stdout: &out, Stderr: io.Discard})
	answer := strings.TrimSpace(out.String())
	if err != nil {
		answer = err.Error()
	}
	b.tl.say("ops", "$ supervisor %s: %s", strings.Join(args, " "), answer)
}
