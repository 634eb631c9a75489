package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/onerecord/onerecord/internal/grant"
	"github.com/onerecord/onerecord/internal/portals"
	"github.com/onerecord/onerecord/internal/store"
	"github.com/onerecord/onerecord/pkg/smart"
)

// DisconnectOptions are the inputs of `onerecord disconnect`.
type DisconnectOptions struct {
	F      *Factory
	Portal string
	Purge  bool
	Yes    bool
}

func newCmdDisconnect(f *Factory) *cobra.Command {
	opts := &DisconnectOptions{F: f}
	cmd := &cobra.Command{
		Use:   "disconnect NAME",
		Short: "Revoke a portal's access and delete its tokens (records are kept)",
		Long: strings.TrimSpace(`
Revoke onerecord's tokens at the portal (when the portal offers a revocation
endpoint), delete them from the keychain and mark the portal disconnected
"by you". The records already downloaded are kept unless --purge is given.`),
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Portal = args[0]
			return runDisconnect(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.Purge, "purge", false, "also delete the portal's stored records (asks first)")
	cmd.Flags().BoolVar(&opts.Yes, "yes", false, "do not ask before purging")
	return cmd
}

func runDisconnect(ctx context.Context, opts *DisconnectOptions) error {
	f := opts.F
	name := strings.ToLower(opts.Portal)
	if opts.Purge && !opts.Yes && !f.IO.CanPrompt() {
		return &UsageError{Err: errors.New("--purge deletes stored records: confirm with --yes when not on a terminal")}
	}
	st, err := f.Store(ctx)
	if err != nil {
		return err
	}
	p, err := st.GetPortal(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		if _, rerr := (&portals.Directory{Store: st}).Resolve(ctx, name); rerr == nil {
			// A directory entry (a built-in, say) never connected here.
			fmt.Fprintf(f.IO.ErrOut, "%s is not connected; nothing to disconnect.\n", name)
			return nil
		}
		return WithHint(fmt.Errorf("no portal named %q in this store", name), "run `onerecord status` to see your portals")
	}
	if err != nil {
		return err
	}
	if p.Conn.State != store.StateConnected && p.Conn.State != store.StateDisconnected {
		// Never connected: no tokens to revoke, and marking it
		// "disconnected" would only make status call for a reconnect.
		fmt.Fprintf(f.IO.ErrOut, "%s is not connected; nothing to disconnect.\n", name)
		if !opts.Purge {
			return nil
		}
		return purgePortal(ctx, f, st, name, opts.Yes)
	}
	wasConnected := p.Conn.State == store.StateConnected
	m := &grant.Manager{Store: st, Secrets: f.Keychain(), HTTP: f.HTTPClient(), Home: f.Home(), Now: f.Now}
	revoked, err := m.Disconnect(ctx, p)
	if err != nil {
		return fmt.Errorf("disconnect %s: %w", name, err)
	}
	switch {
	case !wasConnected:
		reason := p.Conn.Reason
		if reason == "" {
			reason = "access ended"
		}
		fmt.Fprintf(f.IO.ErrOut, "%s was already disconnected (%s); deleted whatever was left of its tokens from the keychain.\n"+
			"onerecord will not ask to reconnect it any more; `onerecord connect %s` connects it again.\n", name, reason, name)
	case revoked:
		fmt.Fprintf(f.IO.ErrOut, "Revoked onerecord's access at %s and deleted its tokens from the keychain.\n", name)
	case hasRevocationEndpoint(p):
		fmt.Fprintf(f.IO.ErrOut, "Deleted %s's tokens from the keychain, but %s did not confirm the revocation, so the grant\n"+
			"may stay valid at the portal until it expires; to end it now, remove onerecord in the portal's own settings.\n", name, name)
	default:
		fmt.Fprintf(f.IO.ErrOut, "Deleted %s's tokens from the keychain. %s has no revocation endpoint, so the grant itself\n"+
			"stays valid at the portal until it expires; to end it now, remove onerecord in the portal's own settings.\n", name, name)
	}
	if !opts.Purge {
		totals, err := st.ResourceTotals(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(f.IO.ErrOut, "Your %d downloaded records from %s are kept (delete them with `onerecord disconnect %s --purge`).\n", totals[name], name, name)
		return nil
	}
	return purgePortal(ctx, f, st, name, opts.Yes)
}

// purgePortal deletes a portal and its records from the store, asking first
// unless yes.
func purgePortal(ctx context.Context, f *Factory, st *store.Store, name string, yes bool) error {
	if !yes {
		ok, err := f.IO.Confirm(fmt.Sprintf("Delete every record downloaded from %s from this machine?", name), false)
		if err != nil {
			return err
		}
		if !ok {
			fmt.Fprintln(f.IO.ErrOut, "Records kept.")
			return nil
		}
	}
	if err := st.DeletePortal(ctx, name, true); err != nil {
		return fmt.Errorf("purge %s: %w", name, err)
	}
	fmt.Fprintf(f.IO.ErrOut, "Deleted %s and all its records from this machine.\n", name)
	return nil
}

// hasRevocationEndpoint reports whether the portal's cached SMART
// configuration names a revocation endpoint.
func hasRevocationEndpoint(p store.Portal) bool {
	if len(p.SMARTConfig) == 0 {
		return false
	}
	cfg, err := smart.ParseConfiguration(p.SMARTConfig)
	return err == nil && cfg.RevocationEndpoint != ""
}
