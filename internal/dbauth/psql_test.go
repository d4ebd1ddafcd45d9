package dbauth

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
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
// show which address, user and password it used. With tlsConf it accepts
// an SSLRequest, as RDS does.
func fakePostgres(t *testing.T, tlsConf *tls.Config) (int, <-chan login) {
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
		got <- serveLogin(conn, tlsConf)
	}()
	return ln.Addr().(*net.TCPAddr).Port, got
}

func serveLogin(conn net.Conn, tlsConf *tls.Config) login {
	r := bufio.NewReader(conn)
	var l login
	for {
		body, err := readBody(r) // a client's first messages have no type byte
		if err != nil {
			return login{err: err}
		}
		code := binary.BigEndian.Uint32(body)
		if code == sslRequest && tlsConf != nil {
			conn.Write([]byte{'S'})
			tc := tls.Server(conn, tlsConf)
			if err := tc.Handshake(); err != nil {
				return login{err: fmt.Errorf("TLS handshake: %w", err)}
			}
			conn, r = tc, bufio.NewReader(tc)
			continue
		}
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

// certificateFor returns a server TLS config with a certificate for host,
// signed by a new CA, and the path of that CA's PEM: RDS's certificate and
// its CA bundle in small.
func certificateFor(t *testing.T, host string) (*tls.Config, string) {
	t.Helper()
	newKey := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	caKey, leafKey := newKey(), newKey()
	now := time.Now()
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test RDS root"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	leaf := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: host}, DNSNames: []string{host},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, ca, &leafKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caPath := filepath.Join(t.TempDir(), "root.pem")
	if err := os.WriteFile(caPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{leafDER}, PrivateKey: leafKey}}}, caPath
}

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
// is never looked up, or psql would fail before reaching the fake. With
// sslmode=verify-full, the real name is what lets psql accept the
// database's certificate through the forward; 127.0.0.1 would not.
func TestClientEnvWithPsql(t *testing.T) {
	psql := testenv.Need(t, "psql", "apt-get install postgresql-client")
	const real = "orders.cluster-abc.eu-west-1.rds.amazonaws.com"
	const token = real + ":5432/?Action=connect&DBUser=app_user&X-Amz-Signature=0123abcd"
	serverTLS, rootCert := certificateFor(t, real)
	cases := []struct {
		name, token string
		verifyFull  bool
		wantErr     string // psql's
		wantLogin   bool   // the server got a StartupMessage
	}{
		{"with a token", token, false, "fake server: login recorded", true},
		{"without a token", "", false, "no password supplied", true},
		{"verify-full with a token", token, true, "fake server: login recorded", true},
		{"verify-full at 127.0.0.1", "", true, `does not match host name "127.0.0.1"`, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var port int
			var got <-chan login
			env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "LC_ALL=C", "PGGSSENCMODE=disable", "PGCONNECT_TIMEOUT=10"}
			if c.verifyFull {
				port, got = fakePostgres(t, serverTLS)
				env = append(env, "PGSSLMODE=verify-full", "PGSSLROOTCERT="+rootCert)
			} else {
				port, got = fakePostgres(t, nil)
				env = append(env, "PGSSLMODE=prefer")
			}
			cmd := exec.Command(psql, "-X", "-w", "-c", "select 1")
			cmd.Env = append(env, ClientEnv(Postgres, real, port, "app_user", c.token)...)
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
			if !c.wantLogin {
				if l.params != nil {
					t.Errorf("the server got a login %v", l.params)
				}
				return
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
