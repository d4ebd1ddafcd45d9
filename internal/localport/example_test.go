package localport_test

import (
	"fmt"
	"os"

	"github.com/bastion-ttl/bastion-ttl/internal/localport"
)

// connect orders-db reports-db: two Postgres databases, one remote port.
// The ports are chosen before any AWS request and remembered after.
func Example() {
	home, _ := os.MkdirTemp("", "home")
	defer os.RemoveAll(home)
	path, err := localport.StatePath(map[string]string{}, home)
	if err != nil {
		fmt.Println("note:", err)
	}
	mem, note := localport.Load(path)
	if note != "" {
		fmt.Println("note:", note)
	}
	wants := []localport.Want{
		{Name: "orders-db", Key: "orders-db", Remote: 5432},
		{Name: "reports-db", Key: "reports-db", Remote: 5432},
	}
	ports, err := localport.Choose(wants, mem)
	if err != nil {
		fmt.Println(err) // a usage error: exit 2, nothing started
		return
	}
	if err := localport.Save(path, wants, ports); err != nil {
		fmt.Println("note:", err)
	}
	again, _ := localport.Load(path)
	fmt.Println("two ports:", ports[0] != ports[1])
	fmt.Println("remembered:", again.Ports["orders-db"] == ports[0], again.Ports["reports-db"] == ports[1])
	// Output:
	// two ports: true
	// remembered: true true
}
