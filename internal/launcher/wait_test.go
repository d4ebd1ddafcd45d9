package launcher

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
)

// connect execs into, and forwards through, the container the launcher
// policy allows (ecs:container-name bastion) whenever the task has one,
// whatever the order of its containers.
func TestBastionContainer(t *testing.T) {
	c := func(name string, ports ...int32) types.ContainerDefinition {
		d := types.ContainerDefinition{Name: aws.String(name)}
		for _, p := range ports {
			d.PortMappings = append(d.PortMappings, types.PortMapping{ContainerPort: aws.Int32(p)})
		}
		return d
	}
	for _, tc := range []struct {
		name       string
		containers []types.ContainerDefinition
		want       string
		port       int32
	}{
		{"the sidecar example", []types.ContainerDefinition{c("bastion", 2222), c("supervisor")}, "bastion", 2222},
		{"bastion after another container", []types.ContainerDefinition{c("tools", 8080), c("supervisor"), c("bastion", 2222)}, "bastion", 2222},
		{"bastion maps no port: another's, the namespace is shared", []types.ContainerDefinition{c("proxy", 1080), c("bastion"), c("supervisor")}, "bastion", 1080},
		{"the health-check variant: one container", []types.ContainerDefinition{c("bastion", 2222)}, "bastion", 2222},
		{"no container named bastion: one beside the supervisor", []types.ContainerDefinition{c("supervisor"), c("jump", 22)}, "jump", 22},
		{"the supervisor alone", []types.ContainerDefinition{c("supervisor", 8311)}, "supervisor", 8311},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name, port := bastionContainer(&types.TaskDefinition{ContainerDefinitions: tc.containers}, aws.String("supervisor"))
			if name != tc.want || port != tc.port {
				t.Errorf("bastionContainer = %s, %d; want %s, %d", name, port, tc.want, tc.port)
			}
		})
	}
}
