package portals

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode"

	"github.com/onerecord/onerecord/internal/store"
)

// AddOptions say what `portals add` sets. A nil field keeps the entry's
// current value (or the built-in default); a new entry needs FHIRBase and
// ClientID.
type AddOptions struct {
	Name         string
	DisplayName  *string
	FHIRBase     *string
	ClientID     *string
	Scope        *string
	RedirectPort *int  // 0 = a random loopback port
	Confidential *bool // a client secret is kept in the keychain
}

// Add creates an entry or updates an existing one (user-added, imported, or a
// built-in, which then gets a store copy). It returns the saved entry and
// whether it was created. Changing the server, client id or client type of a
// connected portal is refused: the grant belongs to the old ones.
func (d *Directory) Add(ctx context.Context, o AddOptions) (store.Portal, bool, error) {
	if d.Store == nil {
		return store.Portal{}, false, errors.New("portals: no store")
	}
	name := strings.ToLower(strings.TrimSpace(o.Name))
	if err := ValidateName(name); err != nil {
		return store.Portal{}, false, err
	}
	cur, found, err := d.lookup(ctx, name)
	if err != nil {
		return store.Portal{}, false, err
	}
	inStore := found && d.hasStoreCopy(ctx, name)

	p := cur
	if !found {
		if o.FHIRBase == nil || strings.TrimSpace(*o.FHIRBase) == "" {
			return store.Portal{}, false, errorf(
				fmt.Sprintf("run `onerecord portals add %s --fhir-base URL --client-id ID`", name),
				"portal %q is new: --fhir-base is required", name)
		}
		if o.ClientID == nil || strings.TrimSpace(*o.ClientID) == "" {
			return store.Portal{}, false, errorf(
				"register an app with the portal's EHR vendor to get a client id; see docs/portals.md",
				"portal %q is new: --client-id is required", name)
		}
		p = store.Portal{Name: name, Source: SourceUser}
	}

	if o.FHIRBase != nil {
		base, err := NormalizeFHIRBase(*o.FHIRBase)
		if err != nil {
			return store.Portal{}, false, err
		}
		if err := d.checkBaseFree(ctx, name, base); err != nil {
			return store.Portal{}, false, err
		}
		p.FHIRBase = base
	}
	if o.ClientID != nil {
		id := strings.TrimSpace(*o.ClientID)
		if id == "" || strings.IndexFunc(id, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0 {
			return store.Portal{}, false, errorf("copy the client id exactly as the vendor's developer site shows it",
				"invalid client id: it must be non-empty, without spaces")
		}
		p.ClientID = id
	}
	if o.DisplayName != nil {
		p.DisplayName = strings.TrimSpace(*o.DisplayName)
	}
	if o.Scope != nil {
		p.Scope = strings.Join(strings.Fields(*o.Scope), " ")
	}
	if o.RedirectPort != nil {
		if *o.RedirectPort < 0 || *o.RedirectPort > 65535 {
			return store.Portal{}, false, errorf("use the port registered in the redirect URI, e.g. 8765 for http://127.0.0.1:8765/callback",
				"invalid redirect port %d", *o.RedirectPort)
		}
		p.RedirectPort = *o.RedirectPort
	}
	if o.Confidential != nil {
		p.Confidential = *o.Confidential
	}
	if p.DisplayName == "" {
		p.DisplayName = p.Name
	}

	if found && cur.Conn.State == store.StateConnected &&
		(p.FHIRBase != cur.FHIRBase || p.ClientID != cur.ClientID || p.Confidential != cur.Confidential) {
		return store.Portal{}, false, errorf(
			fmt.Sprintf("run `onerecord disconnect %s` first, then add and connect again", name),
			"%w: %q is connected; its server, client id and client secret cannot change while it is", ErrConnected, name)
	}

	save := p
	if inStore {
		save.Conn = store.Connection{} // keep the stored connection
	} else {
		save.Conn = store.Connection{State: store.StateNotConnected}
	}
	if err := d.Store.PutPortal(ctx, save); err != nil {
		return store.Portal{}, false, fmt.Errorf("save portal %q: %w", name, err)
	}
	got, err := d.Store.GetPortal(ctx, name)
	if err != nil {
		return store.Portal{}, false, fmt.Errorf("read back portal %q: %w", name, err)
	}
	return withState(got), !found, nil
}

func (d *Directory) hasStoreCopy(ctx context.Context, name string) bool {
	if d.Store == nil {
		return false
	}
	_, err := d.Store.GetPortal(ctx, name)
	return err == nil
}

// checkBaseFree refuses a FHIR base another entry already uses.
func (d *Directory) checkBaseFree(ctx context.Context, name, base string) error {
	all, err := d.List(ctx)
	if err != nil {
		return err
	}
	for _, q := range all {
		if q.Name != name && sameBase(q.FHIRBase, base) {
			return withHint(fmt.Errorf("%w: portal %q already uses %s", ErrDuplicateBase, q.Name, base),
				fmt.Sprintf("to set its client id run `onerecord portals add %s --client-id ID`", q.Name))
		}
	}
	return nil
}

// RemoveResult says what Remove did.
type RemoveResult struct {
	Portal      store.Portal
	Records     int  // stored resources the portal had
	Purged      bool // records were deleted
	Kept        bool // the entry stays because its records were kept (no purge)
	BuiltinLeft bool // a built-in's store copy was removed; the built-in entry remains
}

// Remove deletes an entry from the directory. Its records are kept unless
// purge. A connected portal must be disconnected first; a built-in without a
// store copy cannot be removed.
func (d *Directory) Remove(ctx context.Context, name string, purge bool) (RemoveResult, error) {
	if d.Store == nil {
		return RemoveResult{}, errors.New("portals: no store")
	}
	name = strings.ToLower(strings.TrimSpace(name))
	p, found, err := d.lookup(ctx, name)
	if err != nil {
		return RemoveResult{}, err
	}
	if !found {
		return RemoveResult{}, withHint(fmt.Errorf("%w %q", ErrUnknown, name), "run `onerecord portals list` to see the names")
	}
	_, isBuiltin := builtinByName(name)
	if isBuiltin && !d.hasStoreCopy(ctx, name) {
		return RemoveResult{}, withHint(fmt.Errorf("%w: %q is built in and cannot be removed", ErrBuiltin, name),
			"built-in entries stay in the list; they do nothing until you connect them")
	}
	if p.Conn.State == store.StateConnected {
		return RemoveResult{}, withHint(fmt.Errorf("%w: %q", ErrConnected, name),
			fmt.Sprintf("run `onerecord disconnect %s` first", name))
	}
	res := RemoveResult{Portal: p, Purged: purge, BuiltinLeft: isBuiltin}
	counts, err := d.Store.CountResources(ctx, name)
	if err != nil {
		return RemoveResult{}, fmt.Errorf("count records of %q: %w", name, err)
	}
	for _, n := range counts {
		res.Records += n
	}
	if err := d.Store.DeletePortal(ctx, name, purge); err != nil {
		return RemoveResult{}, fmt.Errorf("remove portal %q: %w", name, err)
	}
	// The store keeps an entry whose records are kept: records always
	// belong to a portal.
	res.Kept = d.hasStoreCopy(ctx, name)
	return res, nil
}
