package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/onerecord/onerecord/internal/portals"
	"github.com/onerecord/onerecord/internal/sandbox"
)

// SandboxOptions are the flags of `onerecord sandbox`.
type SandboxOptions struct {
	f *Factory

	Addr        string
	Patients    int
	Resources   int
	Seed        int64
	DataDir     string
	AutoApprove bool
	AccessTTL   time.Duration
	RefreshTTL  time.Duration
	GrantTTL    time.Duration
	NoRotation  bool
	Faults      string   // JSON sandbox.Faults
	Clients     []string // id=secret
}

func newCmdSandbox(f *Factory) *cobra.Command {
	opts := &SandboxOptions{f: f}
	cmd := &cobra.Command{
		Use:   "sandbox",
		Short: "Run a local test patient portal (SMART on FHIR, synthetic patients)",
		Long: strings.TrimSpace(`
Run the sandbox portal: a SMART-on-FHIR patient portal on this machine with
synthetic patients, for trying onerecord without a real portal. It prints its
FHIR base URL on the first line of stdout, then runs until interrupted.

The built-in portal "sandbox" points at the default address, so
` + "`onerecord connect sandbox`" + ` connects to it; with another --addr, connect to
the printed base URL instead: ` + "`onerecord connect http://127.0.0.1:PORT/fhir`" + `.
The client id is onerecord-sandbox (any client id is accepted).

Revoke every grant (as a patient withdrawing access would) with
  curl -X POST http://127.0.0.1:PORT/_control/revoke`),
		Example: examples(`
  onerecord sandbox
  onerecord sandbox --addr 127.0.0.1:0 --patients 3 --resources 5000 --auto-approve
  onerecord sandbox --faults '{"rate_limit_every": 5, "slow_page": "200ms"}'`),
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runSandbox(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&opts.Addr, "addr", "127.0.0.1:8723", "address to listen on (port 0 picks a free port)")
	fl.IntVar(&opts.Patients, "patients", 1, "number of synthetic patients")
	fl.IntVar(&opts.Resources, "resources", 300, "total number of resources to generate")
	fl.Int64Var(&opts.Seed, "seed", 1, "seed of the synthetic data")
	fl.StringVar(&opts.DataDir, "data", "", "also load FHIR Bundles from the *.json files in this directory")
	fl.BoolVar(&opts.AutoApprove, "auto-approve", false, "approve every authorization at once, without the consent page")
	fl.DurationVar(&opts.AccessTTL, "access-ttl", time.Hour, "access token lifetime")
	fl.DurationVar(&opts.RefreshTTL, "refresh-ttl", 90*24*time.Hour, "refresh token lifetime (negative: no refresh tokens)")
	fl.DurationVar(&opts.GrantTTL, "grant-ttl", 0, "end every grant this long after consent (0: no fixed end)")
	fl.BoolVar(&opts.NoRotation, "no-rotation", false, "keep the same refresh token on refresh")
	fl.StringVar(&opts.Faults, "faults", "", "quirk switches as JSON (see POST /_control/faults)")
	fl.StringArrayVar(&opts.Clients, "client", nil, "a confidential client as ID=SECRET (repeatable)")
	return cmd
}

func runSandbox(ctx context.Context, opts *SandboxOptions) error {
	io := opts.f.IO
	so := sandbox.Options{
		Patients: opts.Patients, Resources: opts.Resources, Seed: opts.Seed, DataDir: opts.DataDir,
		AutoApprove: opts.AutoApprove, AccessTTL: opts.AccessTTL, RefreshTTL: opts.RefreshTTL,
		GrantTTL: opts.GrantTTL, NoRotation: opts.NoRotation,
	}
	if opts.RefreshTTL < 0 {
		so.RefreshTTL = -1
	}
	for _, c := range opts.Clients {
		id, secret, ok := strings.Cut(c, "=")
		if !ok || id == "" || secret == "" {
			return &UsageError{Err: fmt.Errorf("--client wants ID=SECRET, got %q", c)}
		}
		if so.Clients == nil {
			so.Clients = map[string]string{}
		}
		so.Clients[id] = secret
	}
	var faults sandbox.Faults
	if opts.Faults != "" {
		if err := json.Unmarshal([]byte(opts.Faults), &faults); err != nil {
			return &UsageError{Err: fmt.Errorf("--faults: %w", err)}
		}
	}
	s, err := sandbox.New(so)
	if err != nil {
		return err
	}
	s.SetFaults(faults)
	base, err := s.Start(opts.Addr)
	if err != nil {
		return err
	}
	fmt.Fprintln(io.Out, base)
	origin := strings.TrimSuffix(base, "/fhir")
	fmt.Fprintf(io.ErrOut, "sandbox portal running at %s (client id onerecord-sandbox; any id works)\n", base)
	for _, p := range s.Patients() {
		fmt.Fprintf(io.ErrOut, "  patient %s: %s, born %s\n", p.ID, p.Name, p.BirthDate)
	}
	if base == portals.SandboxFHIRBase {
		fmt.Fprintln(io.ErrOut, "connect with: onerecord connect sandbox")
	} else {
		fmt.Fprintf(io.ErrOut, "connect with: onerecord connect %s\n", base)
	}
	fmt.Fprintf(io.ErrOut, "revoke every grant: curl -X POST %s/_control/revoke\n", origin)
	fmt.Fprintln(io.ErrOut, "press Ctrl-C to stop")
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := s.Close(sctx); err != nil {
		return fmt.Errorf("sandbox: stop: %w", err)
	}
	// Stopping the portal on request is its normal end.
	return nil
}
