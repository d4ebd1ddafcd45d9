// Package cli runs a command-line program from one table of commands, in the
// shape of cmd/go's base.Command: each row has its name, usage line, short
// and long help, flags and Run, and that one table gives dispatch, help,
// help COMMAND, COMMAND -h (on stdout, exit 0) and the message for an
// unknown command, so none of them can drift from the others. Exit codes
// travel in one error type, ExitError, which ExitCode reads.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
)

// Command is one row of a program's table.
type Command struct {
	// Name is the word that selects the command.
	Name string
	// UsageLine is the command's usage after the program's name, such as
	// "run [flags]".
	UsageLine string
	// Short is the one line help lists the command with.
	Short string
	// Long is what help COMMAND says between the usage line and the flags.
	Long string
	// Flags declares the command's flags on fs; nil: it takes none. Its
	// error (a default from the environment that does not parse, say) is
	// returned before Run, as bad input; help shows the flags regardless.
	Flags func(fs *flag.FlagSet) error
	// Interspersed lets flags follow the command's arguments too (connect
	// NAME --to ..., extend 30m --json); a "--" still ends the flags.
	Interspersed bool
	// Run runs the command with the arguments left after its flags.
	Run func(ctx context.Context, args []string) error
	// RunWithRest, when set instead of Run, gets the arguments after a "--"
	// apart (a program to start, say: connect --exec -- psql -d orders);
	// rest is nil when there is no "--".
	RunWithRest func(ctx context.Context, args, rest []string) error
}

// Program is a command-line program: its name and its table.
type Program struct {
	// Name is the program's name, as typed: "bastion-ttl".
	Name string
	// Commands is the table; help lists them in its order.
	Commands []*Command
	// Default is the command run when none is given; "": none, which is
	// bad input.
	Default string
	// Footer ends help's text (exit codes, the environment...); "": none.
	Footer string
	// Stdout is where help goes.
	Stdout io.Writer
}

// Run runs the command args name (args[0]) with the rest of args: help,
// help COMMAND and COMMAND -h print to Stdout and return nil; a command
// that is not in the table is a usage error that names the table's.
func (p *Program) Run(ctx context.Context, args []string) error {
	if len(args) == 0 {
		if p.Default == "" {
			return Usagef("no command: %s (%s help)", p.names(), p.Name)
		}
		args = []string{p.Default}
	}
	name, args := args[0], args[1:]
	switch name {
	case "help", "-h", "-help", "--help":
		switch {
		case len(args) == 0:
			return p.help()
		case len(args) > 1:
			return Usagef("help takes one command, got %q", args)
		}
		c, err := p.lookup(args[0])
		if err != nil {
			return err
		}
		return p.commandHelp(c)
	}
	c, err := p.lookup(name)
	if err != nil {
		return err
	}
	fs, err := c.flagSet()
	if err != nil && !wantsHelp(args) {
		if ee := (*ExitError)(nil); !errors.As(err, &ee) {
			err = Exit(UsageCode, err)
		}
		return err
	}
	var rest []string
	if c.RunWithRest != nil {
		if i := slices.Index(args, "--"); i >= 0 {
			args, rest = args[:i], append([]string{}, args[i+1:]...)
		}
	}
	if args, err = parse(fs, args, c.Interspersed); errors.Is(err, flag.ErrHelp) {
		return p.commandHelp(c)
	} else if err != nil {
		return Usagef("%s %s: %v (%s help %s)", p.Name, c.Name, err, p.Name, c.Name)
	}
	if c.RunWithRest != nil {
		return c.RunWithRest(ctx, args, rest)
	}
	return c.Run(ctx, args)
}

// lookup is the named command of the table.
func (p *Program) lookup(name string) (*Command, error) {
	for _, c := range p.Commands {
		if c.Name == name {
			return c, nil
		}
	}
	return nil, Usagef("unknown command %q: %s (%s help)", name, p.names(), p.Name)
}

// names lists the table's commands, help last, for a message.
func (p *Program) names() string {
	var names []string
	for _, c := range p.Commands {
		names = append(names, c.Name)
	}
	return "use " + strings.Join(names, ", ") + " or help"
}

// help lists the table, each command with its short help.
func (p *Program) help() error {
	var b strings.Builder
	fmt.Fprintf(&b, "usage: %s <command> [flags] [arguments]\n\ncommands:\n", p.Name)
	width := len("help")
	for _, c := range p.Commands {
		width = max(width, len(c.Name))
	}
	for _, c := range p.Commands {
		short := c.Short
		if c.Name == p.Default {
			short += " (default)"
		}
		fmt.Fprintf(&b, "  %-*s  %s\n", width, c.Name, short)
	}
	fmt.Fprintf(&b, "  %-*s  %s\n", width, "help", "print this, or a command's usage and flags: "+p.Name+" help COMMAND")
	if p.Footer != "" {
		fmt.Fprintf(&b, "\n%s", strings.TrimRight(p.Footer, "\n")+"\n")
	}
	_, err := io.WriteString(p.Stdout, b.String())
	return err
}

// commandHelp is help COMMAND: the usage line, the long help, the flags.
func (p *Program) commandHelp(c *Command) error {
	var b strings.Builder
	fmt.Fprintf(&b, "usage: %s %s\n", p.Name, c.UsageLine)
	if c.Long != "" {
		fmt.Fprintf(&b, "\n%s\n", strings.TrimRight(c.Long, "\n"))
	}
	fs, _ := c.flagSet()
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	if n > 0 {
		b.WriteString("\nflags:\n")
		fs.SetOutput(&b)
		fs.PrintDefaults()
	}
	_, err := io.WriteString(p.Stdout, b.String())
	return err
}

// flagSet is the command's flags, declared anew.
func (c *Command) flagSet() (*flag.FlagSet, error) {
	fs := flag.NewFlagSet(c.Name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	if c.Flags == nil {
		return fs, nil
	}
	return fs, c.Flags(fs)
}

// wantsHelp reports whether args ask for the command's help.
func wantsHelp(args []string) bool {
	for _, a := range args {
		switch a {
		case "--":
			return false
		case "-h", "-help", "--help", "--h":
			return true
		}
	}
	return false
}

// parse parses args' flags and returns the arguments left: with
// interspersed, flags may follow arguments too, up to a "--".
func parse(fs *flag.FlagSet, args []string, interspersed bool) ([]string, error) {
	if err := fs.Parse(args); err != nil || !interspersed {
		return fs.Args(), err
	}
	var left []string
	for {
		rest := fs.Args()
		consumed := args[:len(args)-len(rest)]
		if len(rest) == 0 || len(consumed) > 0 && consumed[len(consumed)-1] == "--" {
			return append(left, rest...), nil
		}
		left, args = append(left, rest[0]), rest[1:]
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
	}
}
