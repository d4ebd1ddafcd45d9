package dbauth

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/bastion-ttl/bastion-ttl/internal/testenv"
)

// login is what a client sent the fake server.
type login struct {
	params   map[string]string // the StartupMessage's: user, database, …
	password string
	asked    bool // whether a PasswordMessage came
	err      error
}

// The protocol's request codes (PostgreSQL docs, "Message Formats").
const (
	protocol3   = 196608   // 3.0
	sslRequest  = 80877103 // answered 'N': no TLS here
	gssRequest  = 80877104 // likewise
	authRequest = 3        // AuthenticationCleartextPassword
)

// fakePostgres accepts one connection on a free loopback port, records the
// login, answers with a FATAL error and closes: enough for a real client to
// show which address, user and password it used.
func fakePostgres(t *testing.T) (int, <-chan login) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	got := make(chan login, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			got <- login{err: err}
			return
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(20 * time.Second))
		got <- serveLogin(conn)
	}()
	return ln.Addr().(*net.TCPAddr).Port, got
}

func serveLogin(conn net.Conn) login {
	r := bufio.NewReader(conn)
	var l login
	for {
		body, err := readStartup(r)
		if err != nil {
			return login{err: err}
		}
		code := binary.BigEndian.Uint32(body)
		if code == sslRequest || code == gssRequest {
			conn.Write([]byte{'N'})
			continue
		}
		if code != protocol3 {
			return login{err: fmt.Errorf("startup code %d", code)}
		}
		l.params = map[string]string{}
		fields := strings.Split(strings.TrimRight(string(body[4:]), "\x00"), "\x00")
		for i := 0; i+1 < len(fields); i += 2 {
			l.params[fields[i]] = fields[i+1]
		}
		break
	}
	conn.Write([]byte{'R', 0, 0, 0, 8, 0, 0, 0, authRequest})
	typ, err := r.ReadByte()
	if err != nil { // the client gave up: it had no password to send
		return l
	}
	body, err := readBody(r)
	if err != nil || typ != 'p' {
		l.err = fmt.Errorf("after the password request: message %q, %v", typ, err)
		return l
	}
	l.asked, l.password = true, strings.TrimSuffix(string(body), "\x00")
	var e bytes.Buffer
	for _, f := range []string{"SFATAL", "VFATAL", "C28P01", "Mfake server: login recorded"} {
		e.WriteString(f + "\x00")
	}
	e.WriteByte(0)
	msg := append([]byte{'E'}, binary.BigEndian.AppendUint32(nil, uint32(4+e.Len()))...)
	conn.Write(append(msg, e.Bytes()...))
	return l
}

// readStartup reads a message without a type byte: the first a client sends.
func readStartup(r *bufio.Reader) ([]byte, error) { return readBody(r) }

// readBody reads an int32 length (itself included) and the bytes after it.
func readBody(r *bufio.Reader) ([]byte, error) {
	var n uint32
	if err := binary.Read(r, binary.BigEndian, &n); err != nil {
		return nil, err
	}
	if n < 4 || n > 1<<16 {
		return nil, errors.New("bad message length")
	}
	body := make([]byte, n-4)
	_, err := io.ReadFull(r, body)
	return body, err
}

// psql started as connect --exec starts it, with ClientEnv's variables and
// little else, logs in at the forward's address with the user and the
// token, while PGHOST keeps the real name for certificate checks: the name
// is never looked up, or psql would fail before reaching the fake.
func TestClientEnvWithPsql(t *testing.T) {
	psql := testenv.Need(t, "psql", "apt-get install postgresql-client")
	const real = "orders.cluster-abc.eu-west-1.rds.amazonaws.com"
	const token = real + ":5432/?Action=connect&DBUser=app_user&X-Amz-Signature=0123abcd"
	cases := []struct {
		name, token, wantErr string
	}{
		{"with a token", token, "fake server: login recorded"},
		{"without a token", "", "no password supplied"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			port, got := fakePostgres(t)
			cmd := exec.Command(psql, "-X", "-w", "-c", "select 1")
			cmd.Env = append([]string{
				"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "LC_ALL=C",
				"PGSSLMODE=prefer", "PGGSSENCMODE=disable", "PGCONNECT_TIMEOUT=10",
			}, ClientEnv(Postgres, real, port, "app_user", c.token)...)
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || !strings.Contains(string(out), c.wantErr) {
				t.Fatalf("psql: %v, said %q; want it to fail saying %q", err, out, c.wantErr)
			}
			var l login
			select {
			case l = <-got:
			case <-time.After(20 * time.Second):
				t.Fatalf("the fake server at 127.0.0.1:%d saw no login; psql said %q", port, out)
			}
			if l.err != nil {
				t.Fatalf("fake server: %v; psql said %q", l.err, out)
			}
			if l.params["user"] != "app_user" {
				t.Errorf("user %q, want app_user", l.params["user"])
			}
			if l.asked != (c.token != "") || l.password != c.token {
				t.Errorf("password sent %v %q, want %q", l.asked, l.password, c.token)
			}
			t.Logf("psql at 127.0.0.1:%d: user %s, password %d bytes; it said %q", port, l.params["user"], len(l.password), strings.TrimSpace(string(out)))
		})
	}
}
