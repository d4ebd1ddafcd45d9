package cli_test

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/bastion-ttl/bastion-ttl/internal/cli"
)

// A program of one command: its table gives help, hello -h, and the
// message for a command it does not have.
func Example() {
	var name string
	p := &cli.Program{Name: "greeter", Stdout: os.Stdout, Commands: []*cli.Command{{
		Name: "hello", UsageLine: "hello [--to NAME]", Short: "say hello",
		Flags: func(fs *flag.FlagSet) error {
			fs.StringVar(&name, "to", "world", "whom to greet")
			return nil
		},
		Run: func(_ context.Context, args []string) error {
			if len(args) > 0 {
				return cli.Usagef("hello takes no arguments, got %q", args)
			}
			fmt.Println("hello,", name)
			return nil
		},
	}}}
	ctx := context.Background()
	fmt.Println(cli.ExitCode(p.Run(ctx, []string{"hello", "--to", "you"}), os.Stdout, p.Name))
	fmt.Println(cli.ExitCode(p.Run(ctx, []string{"hello", "-h"}), os.Stdout, p.Name))
	fmt.Println(cli.ExitCode(p.Run(ctx, []string{"goodbye"}), os.Stdout, p.Name))
	// Output:
	// hello, you
	// 0
	// usage: greeter hello [--to NAME]
	//
	// flags:
	//   -to string
	//     	whom to greet (default "world")
	// 0
	// greeter: unknown command "goodbye": use hello or help (greeter help)
	// 2
}
