// Package pong is the stand-in for what people reach through a bastion (a
// database, a host's SSH), for the demo and the launcher's tests: each line
// it is sent, it answers "pong: <line>", so bytes are seen to go both ways.
package pong

import (
	"bufio"
	"fmt"
	"net"
)

// Serve answers every connection l accepts until l is closed.
func Serve(l net.Listener) {
	for {
		conn, err := l.Accept()
		if err != nil {
			return
		}
		go func() {
			defer conn.Close()
			sc := bufio.NewScanner(conn)
			for sc.Scan() {
				fmt.Fprintf(conn, "pong: %s\n", sc.Text())
			}
		}()
	}
}
