package dbauth

import (
	"slices"
	"testing"
)

func TestEngineFor(t *testing.T) {
	cases := []struct {
		name string
		port int
		want Engine
	}{
		{"", 5432, Postgres},
		{"", 3306, MySQL},
		{"", 6379, Redis},
		{"", 1433, Other},
		{"", 0, Other},
		{"postgres", 6000, Postgres},
		{"PostgreSQL", 6000, Postgres},
		{"aurora-postgresql", 3306, Postgres}, // the name wins over the port
		{"mysql", 5432, MySQL},
		{"mariadb", 3306, MySQL},
		{"aurora-mysql", 13306, MySQL},
		{"redis", 7000, Redis},
		{"valkey", 6379, Redis},
		{"sqlserver", 5432, Other}, // a name given but unknown: not guessed from the port
	}
	for _, c := range cases {
		if got := EngineFor(c.name, c.port); got != c.want {
			t.Errorf("EngineFor(%q, %d) = %q, want %q", c.name, c.port, got, c.want)
		}
	}
}

func TestClientEnv(t *testing.T) {
	const real = "orders.cluster-abc.eu-west-1.rds.amazonaws.com"
	cases := []struct {
		name        string
		engine      Engine
		user, token string
		want        []string
	}{
		{"postgres with a token", Postgres, "app_user", "TOKEN", []string{
			"BASTION_TTL_LOCAL_ADDR=127.0.0.1:15432", "PGHOST=" + real, "PGHOSTADDR=127.0.0.1", "PGPORT=15432", "PGUSER=app_user", "PGPASSWORD=TOKEN"}},
		{"postgres without a token", Postgres, "app_user", "", []string{
			"BASTION_TTL_LOCAL_ADDR=127.0.0.1:15432", "PGHOST=127.0.0.1", "PGHOSTADDR=127.0.0.1", "PGPORT=15432", "PGUSER=app_user"}},
		{"postgres, nothing given", Postgres, "", "", []string{
			"BASTION_TTL_LOCAL_ADDR=127.0.0.1:15432", "PGHOST=127.0.0.1", "PGHOSTADDR=127.0.0.1", "PGPORT=15432"}},
		{"mysql with a token", MySQL, "app_user", "TOKEN", []string{
			"BASTION_TTL_LOCAL_ADDR=127.0.0.1:15432", "MYSQL_HOST=127.0.0.1", "MYSQL_TCP_PORT=15432", "MYSQL_PWD=TOKEN", "LIBMYSQL_ENABLE_CLEARTEXT_PLUGIN=1"}},
		{"mysql without a token", MySQL, "app_user", "", []string{
			"BASTION_TTL_LOCAL_ADDR=127.0.0.1:15432", "MYSQL_HOST=127.0.0.1", "MYSQL_TCP_PORT=15432"}},
		{"redis", Redis, "app_user", "TOKEN", []string{"BASTION_TTL_LOCAL_ADDR=127.0.0.1:15432"}},
		{"other", Other, "app_user", "TOKEN", []string{"BASTION_TTL_LOCAL_ADDR=127.0.0.1:15432"}},
	}
	for _, c := range cases {
		if got := ClientEnv(c.engine, real, 15432, c.user, c.token); !slices.Equal(got, c.want) {
			t.Errorf("%s:\n got  %q\n want %q", c.name, got, c.want)
		}
	}
}
