// Package portals is onerecord's directory of patient portals: the built-in
// entries (the local sandbox, public SMART test servers), portals the person
// added, and portals imported from SMART User-access Brands bundles or plain
// Endpoint bundles, with search. Entries the person added or imported live in
// the store; built-ins live in code.
//
// The exported API in this file is a contract other packages code against;
// the implementation may add to it but must keep these signatures.
package portals

import (
	"context"
	"errors"

	"github.com/onerecord/onerecord/internal/store"
)

// ErrUnknown is wrapped when a name matches no portal.
var ErrUnknown = errors.New("portals: unknown portal")

// Directory looks portals up in the built-ins and the store.
type Directory struct {
	Store *store.Store
}

var errUnimplemented = errors.New("portals: not implemented yet")

// Builtins returns the built-in entries (Source "builtin").
func Builtins() []store.Portal { return nil }

// Resolve finds a portal by name, or by FHIR base URL (an http(s) URL that
// matches no entry yields an ad-hoc entry named after its host, client id
// taken from the caller). The store's copy wins over a built-in of the same
// name (it carries the connection state).
func (d *Directory) Resolve(ctx context.Context, nameOrURL string) (store.Portal, error) {
	return store.Portal{}, errUnimplemented
}

// List returns built-ins and stored portals, merged by name, sorted.
func (d *Directory) List(ctx context.Context) ([]store.Portal, error) { return nil, errUnimplemented }
