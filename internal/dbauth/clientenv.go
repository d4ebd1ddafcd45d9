package dbauth

import (
	"net"
	"strconv"
	"strings"
)

// LocalAddrVar names the variable every client started by connect --exec
// gets: the local forward's 127.0.0.1:PORT, for clients that read no
// address from their environment (redis-cli -h 127.0.0.1 -p PORT).
const LocalAddrVar = "BASTION_TTL_LOCAL_ADDR"

// Engine is the kind of database behind a forward: it decides which
// client variables ClientEnv sets.
type Engine string

// The engines ClientEnv knows. Other gets only LocalAddrVar.
const (
	Postgres Engine = "postgres"
	MySQL    Engine = "mysql"
	Redis    Engine = "redis"
	Other    Engine = "other"
)

// EngineFor returns the engine named in the config file (RDS's own engine
// names are understood too), or else the one that listens on remotePort by
// default: 5432 postgres, 3306 mysql, 6379 redis.
func EngineFor(name string, remotePort int) Engine {
	switch strings.ToLower(strings.TrimSpace(name)) {
	case "postgres", "postgresql", "aurora-postgresql":
		return Postgres
	case "mysql", "mariadb", "aurora-mysql":
		return MySQL
	case "redis", "valkey":
		return Redis
	case "":
	default:
		return Other
	}
	switch remotePort {
	case 5432:
		return Postgres
	case 3306:
		return MySQL
	case 6379:
		return Redis
	}
	return Other
}

// ClientEnv returns the KEY=VALUE entries to add to the environment of a
// client started once the forward 127.0.0.1:localPort is ready. realHost
// is the database's own name; user and token may be empty.
//
// postgres (libpq: psql, pg_dump): PGHOSTADDR=127.0.0.1 is where libpq
// connects, while PGHOST is the name it checks the certificate against
// (sslmode=verify-full), so with a token PGHOST is realHost. PGUSER and
// PGPASSWORD carry the user and the token.
//
// mysql (libmysqlclient): MYSQL_HOST=127.0.0.1 makes it use TCP, not the
// local socket, and MYSQL_TCP_PORT the port. The token is MYSQL_PWD, and
// LIBMYSQL_ENABLE_CLEARTEXT_PLUGIN=1 lets the client send it as RDS's IAM
// plugin asks (in clear, so under TLS). MySQL deprecated MYSQL_PWD in 8.0
// (WL#13449) yet 8.4 still reads it; a token leaked there dies in 15
// minutes. mysql reads no user from its environment: pass -u USER.
//
// redis: redis-cli reads no address from its environment; pass
// -h 127.0.0.1 -p PORT, both in LocalAddrVar.
func ClientEnv(engine Engine, realHost string, localPort int, user, token string) []string {
	const local = "127.0.0.1"
	port := strconv.Itoa(localPort)
	env := []string{LocalAddrVar + "=" + net.JoinHostPort(local, port)}
	switch engine {
	case Postgres:
		host := local
		if token != "" && realHost != "" {
			host = realHost
		}
		env = append(env, "PGHOST="+host, "PGHOSTADDR="+local, "PGPORT="+port)
		if user != "" {
			env = append(env, "PGUSER="+user)
		}
		if token != "" {
			env = append(env, "PGPASSWORD="+token)
		}
	case MySQL:
		env = append(env, "MYSQL_HOST="+local, "MYSQL_TCP_PORT="+port)
		if token != "" {
			env = append(env, "MYSQL_PWD="+token, "LIBMYSQL_ENABLE_CLEARTEXT_PLUGIN=1")
		}
	}
	return env
}
