// Package cli is onerecord's command tree (cobra). Main owns the
// signal-cancelled context, runs the commands with cobra's own error printing
// off, prints errors with their hint lines, and maps errors to exit codes in
// one place (exitcode.go). Each verb lives in its own file with an Options
// struct, a newCmdX constructor and a runX(ctx, opts) function.
package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/onerecord/onerecord/internal/term"
)

// Version is set at build time with -ldflags "-X .../internal/cli.Version=...".
// When it is not, the module version or the VCS revision from the build
// information is shown.
var Version = "dev"

func version() string {
	if Version != "dev" {
		return Version
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return Version
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	rev, modified := "", false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	if rev == "" {
		return Version
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if modified {
		rev += "-dirty"
	}
	return "dev-" + rev
}

// Main runs onerecord with os.Args and returns the process exit code.
func Main() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	defer startProfile()()
	return Run(ctx, term.System(), os.Args[1:])
}

// Run runs onerecord with args on io and returns the exit code. Tests call it
// directly.
func Run(ctx context.Context, io *term.IOStreams, args []string) int {
	return runWithFactory(ctx, io, nil, args)
}

// runWithFactory is Run with a hook to adjust the factory (tests: clock,
// in-memory keychain).
func runWithFactory(ctx context.Context, io *term.IOStreams, adjust func(*Factory), args []string) int {
	f := NewFactory(io)
	if adjust != nil {
		adjust(f)
	}
	defer f.Close()
	root := NewRootCmd(f)
	root.SetArgs(args)
	root.SetIn(io.In)
	root.SetOut(io.Out)
	root.SetErr(io.ErrOut)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return ExitOK
	}
	if strings.HasPrefix(err.Error(), "unknown command ") {
		// cobra's own error for `onerecord synk`: a usage error like any other.
		err = &UsageError{Err: errors.New(strings.TrimRight(err.Error(), "\n"))}
	}
	code := exitCode(ctx, err)
	var ec *ExitCodeError
	if errors.As(err, &ec) && (ec.Silent || ec.Err == nil) {
		return code
	}
	if code == ExitInterrupted {
		if io.ErrTTY {
			// The terminal has just echoed ^C where the cursor was.
			fmt.Fprintln(io.ErrOut)
		}
		fmt.Fprintln(io.ErrOut, "interrupted")
		return code
	}
	printError(io, f.Debug, err)
	if code == ExitUsage {
		path := "onerecord"
		if cmd != nil {
			path = cmd.CommandPath()
		}
		fmt.Fprintf(io.ErrOut, "hint: run `%s --help` for usage\n", path)
	}
	return code
}

// printError writes "error: msg" and a hint line; with --debug also the chain.
func printError(io *term.IOStreams, debug bool, err error) {
	fmt.Fprintf(io.ErrOut, "%s %s\n", io.ErrColour("red", "error:"), err.Error())
	if h := hintFor(err); h != "" {
		fmt.Fprintf(io.ErrOut, "hint: %s\n", h)
	}
	if debug {
		prev := err.Error()
		for e := errors.Unwrap(err); e != nil; e = errors.Unwrap(e) {
			if msg := e.Error(); msg != prev {
				// Wrappers that only add a hint or an exit code repeat
				// the message: show each distinct cause once.
				fmt.Fprintf(io.ErrOut, "debug: caused by (%T) %s\n", e, msg)
				prev = msg
			}
		}
	}
}

// NewRootCmd builds the command tree.
func NewRootCmd(f *Factory) *cobra.Command {
	root := &cobra.Command{
		Use:   "onerecord",
		Short: "Keep your health records from every patient portal in one private store",
		Long: strings.TrimSpace(`
onerecord signs you in to your patient portals (SMART on FHIR, in your own
browser; it never asks for your password), downloads every record the portal
lets you have into a private store on this machine, keeps it up to date
incrementally, and tells you when a portal's access has lapsed.`),
		Version:       version(),
		SilenceErrors: true,
		SilenceUsage:  true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			return f.init()
		},
	}
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return &UsageError{Err: err} })
	pf := root.PersistentFlags()
	pf.StringVar(&f.HomeFlag, "home", "", "directory for the store and settings (default $ONERECORD_HOME or the XDG data directory)")
	pf.BoolVar(&f.Debug, "debug", false, "log HTTP requests (redacted) and error details to stderr")

	root.AddCommand(
		newCmdConnect(f),
		newCmdSync(f),
		newCmdStatus(f),
		newCmdDisconnect(f),
		newCmdPortals(f),
		newCmdSandbox(f),
		newCmdDemo(f),
		newHelpTopicExitCodes(),
	)
	// Wrong arguments are usage errors (exit 2).
	for _, c := range root.Commands() {
		wrapArgs(c)
	}
	return root
}

func wrapArgs(c *cobra.Command) {
	if c.HasSubCommands() && c.Run == nil && c.RunE == nil {
		// A group such as `portals`: cobra would print its help and exit 0
		// for `onerecord portals lst`; say it is an unknown command instead.
		c.Args = cobra.ArbitraryArgs
		if c.SuggestionsMinimumDistance <= 0 {
			c.SuggestionsMinimumDistance = 2
		}
		c.RunE = func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return cmd.Help()
			}
			msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
			if sug := cmd.SuggestionsFor(args[0]); len(sug) > 0 {
				msg += "\n\nDid you mean this?\n\t" + strings.Join(sug, "\n\t")
			}
			return &UsageError{Err: errors.New(msg)}
		}
	}
	if c.Args != nil {
		orig := c.Args
		c.Args = func(cmd *cobra.Command, args []string) error {
			if err := orig(cmd, args); err != nil {
				return &UsageError{Err: err}
			}
			return nil
		}
	}
	c.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return &UsageError{Err: err} })
	for _, sub := range c.Commands() {
		wrapArgs(sub)
	}
}

// examples trims the blank lines around a command's Example text but keeps
// the indentation of its first line (strings.TrimSpace would not).
func examples(s string) string { return strings.Trim(s, "\n") }

func newHelpTopicExitCodes() *cobra.Command {
	return &cobra.Command{
		Use:   "exit-codes",
		Short: "What onerecord's exit codes mean",
		Long: strings.TrimSpace(`
onerecord exits with:

  0    success: everything asked for was done completely
  1    error: something failed; the message and its hint say what to do
  2    usage: the command was called wrongly (unknown flag, missing argument)
  3    partial: some portal or resource type failed transiently (network,
       server errors, rate limits); what was fetched is stored, run sync again
  4    reconnect needed: a portal's access has lapsed; its records are kept;
       run ` + "`onerecord connect NAME`" + `
  130  interrupted (Ctrl-C); what was fetched so far is stored

` + "`onerecord status`" + ` also exits 4 when any portal needs reconnecting, so a
cron job can notice a lapsed portal.`),
	}
}
