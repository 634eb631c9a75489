// Package portals is onerecord's directory of patient portals: the built-in
// entries (the local sandbox, public SMART test servers), portals the person
// added, and portals imported from SMART User-access Brands bundles or plain
// Endpoint bundles, with search. Entries the person added or imported live in
// the store; built-ins live in code.
//
// Start with Directory: Resolve turns what the person typed (a name or a FHIR
// base URL) into an entry, List and Search show the directory, Add, Import and
// Remove change it. RequireClientID tells connect whether an entry can be used
// yet and, if not, where to register an app.
package portals

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"

	"github.com/onerecord/onerecord/internal/store"
)

// ErrUnknown is wrapped when a name matches no portal.
var ErrUnknown = errors.New("portals: unknown portal")

// Directory looks portals up in the built-ins and the store.
type Directory struct {
	Store *store.Store

	// HTTP fetches import URLs; nil means a client with a 2 minute timeout.
	HTTP *http.Client
	// MaxImportBytes caps an import's size; 0 means DefaultMaxImportBytes.
	MaxImportBytes int64
}

// Resolve finds a portal by name, or by FHIR base URL (an http(s) URL that
// matches no entry yields an ad-hoc entry named after its host, client id
// taken from the caller). The store's copy wins over a built-in of the same
// name (it carries the connection state).
//
// Names match case-insensitively. An ad-hoc entry has Source "user" and is not
// saved: connect saves it once the sign-in worked. An unknown name returns an
// error wrapping ErrUnknown with a hint.
func (d *Directory) Resolve(ctx context.Context, nameOrURL string) (store.Portal, error) {
	s := strings.TrimSpace(nameOrURL)
	if looksLikeURL(s) {
		return d.resolveURL(ctx, s)
	}
	name := strings.ToLower(s)
	if ValidateName(name) == nil {
		p, ok, err := d.lookup(ctx, name)
		if err != nil {
			return store.Portal{}, err
		}
		if ok {
			return p, nil
		}
	}
	hint := "run `onerecord portals search TEXT` to find a portal, or pass its FHIR base URL (https://...)"
	if s != "" {
		if found, err := d.Search(ctx, s); err == nil && len(found) > 0 {
			var names []string
			for i, p := range found {
				if i == 3 {
					break
				}
				names = append(names, p.Name)
			}
			hint = "did you mean " + strings.Join(names, ", ") + "? " + hint
		}
	}
	return store.Portal{}, withHint(fmt.Errorf("%w %q", ErrUnknown, s), hint)
}

func (d *Directory) resolveURL(ctx context.Context, raw string) (store.Portal, error) {
	base, err := NormalizeFHIRBase(raw)
	if err != nil {
		return store.Portal{}, err
	}
	all, err := d.List(ctx)
	if err != nil {
		return store.Portal{}, err
	}
	taken := map[string]bool{}
	for _, p := range all {
		if sameBase(p.FHIRBase, base) {
			return p, nil
		}
		taken[p.Name] = true
	}
	u, _ := url.Parse(base)
	name := uniqueName(hostName(u), func(n string) bool { return taken[n] })
	return store.Portal{
		Name:        name,
		DisplayName: u.Host,
		FHIRBase:    base,
		Source:      SourceUser,
		Conn:        store.Connection{State: store.StateNotConnected},
	}, nil
}

// lookup finds an entry by exact (lower-case) name: the store's copy first,
// then the built-ins.
func (d *Directory) lookup(ctx context.Context, name string) (store.Portal, bool, error) {
	if d.Store != nil {
		p, err := d.Store.GetPortal(ctx, name)
		switch {
		case err == nil:
			return withState(p), true, nil
		case !errors.Is(err, store.ErrNotFound):
			return store.Portal{}, false, fmt.Errorf("look up portal %q: %w", name, err)
		}
	}
	if p, ok := builtinByName(name); ok {
		return p, true, nil
	}
	return store.Portal{}, false, nil
}

// List returns built-ins and stored portals, merged by name, sorted.
func (d *Directory) List(ctx context.Context) ([]store.Portal, error) {
	byName := map[string]store.Portal{}
	for _, p := range Builtins() {
		byName[p.Name] = p
	}
	if d.Store != nil {
		stored, err := d.Store.ListPortals(ctx)
		if err != nil {
			return nil, fmt.Errorf("list portals: %w", err)
		}
		for _, p := range stored {
			byName[p.Name] = withState(p)
		}
	}
	out := make([]store.Portal, 0, len(byName))
	for _, p := range byName {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// withState fills an empty connection state with "not connected".
func withState(p store.Portal) store.Portal {
	if p.Conn.State == "" {
		p.Conn.State = store.StateNotConnected
	}
	return p
}
