package dbauth_test

import (
	"fmt"

	"github.com/bastion-ttl/bastion-ttl/internal/dbauth"
)

// The environment of psql started through a forward on 127.0.0.1:15432
// to an Aurora cluster, logging in with an IAM token.
func ExampleClientEnv() {
	const host = "orders.cluster-abc.eu-west-1.rds.amazonaws.com"
	region, _ := dbauth.Region(host)
	engine := dbauth.EngineFor("", 5432)
	fmt.Println(region, engine)
	for _, kv := range dbauth.ClientEnv(engine, host, 15432, "app_user", "TOKEN") {
		fmt.Println(kv)
	}
	// Output:
	// eu-west-1 postgres
	// BASTION_TTL_LOCAL_ADDR=127.0.0.1:15432
	// PGHOST=orders.cluster-abc.eu-west-1.rds.amazonaws.com
	// PGHOSTADDR=127.0.0.1
	// PGPORT=15432
	// PGUSER=app_user
	// PGPASSWORD=TOKEN
}
