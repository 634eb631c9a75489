package benchkit

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/onerecord/onerecord/internal/grant"
	"github.com/onerecord/onerecord/internal/grant/granttest"
	"github.com/onerecord/onerecord/internal/home"
	"github.com/onerecord/onerecord/internal/keychain"
	"github.com/onerecord/onerecord/internal/store"
)

// PortalName is the name benchmarks give the sandbox portal.
const PortalName = "bench"

// Conn is a sandbox portal connected in-process through the real connect
// flow (auto-approved sign-in, in-memory keychain), with its own store.
type Conn struct {
	Home    *home.Home
	Store   *store.Store
	Manager *grant.Manager
	Portal  store.Portal // as stored after connect (patient, scope, capability)
}

// Connect opens (creating) a store in dir and connects the sandbox portal at
// base to it. The sandbox must auto-approve.
func Connect(ctx context.Context, base, dir string) (*Conn, error) {
	h := &home.Home{Dir: dir}
	st, err := store.Open(ctx, h.DBPath())
	if err != nil {
		return nil, err
	}
	c := &Conn{Home: h, Store: st}
	c.Manager = &grant.Manager{Store: st, Secrets: keychain.NewMemory(), HTTP: &http.Client{Timeout: 30 * time.Second}, Home: h}
	p := store.Portal{Name: PortalName, DisplayName: "Benchmark sandbox", FHIRBase: base, ClientID: "onerecord-bench", Source: "user"}
	if err := st.PutPortal(ctx, p); err != nil {
		st.Close()
		return nil, err
	}
	if _, err := c.Manager.Connect(ctx, p, grant.ConnectOptions{OpenBrowser: (&granttest.Browser{}).Open, Messages: io.Discard}); err != nil {
		st.Close()
		return nil, fmt.Errorf("benchkit: connect: %w", err)
	}
	if c.Portal, err = st.GetPortal(ctx, PortalName); err != nil {
		st.Close()
		return nil, err
	}
	if c.Portal.Conn.PatientID == "" {
		st.Close()
		return nil, errNoPatient
	}
	return c, nil
}

// Token returns a valid access token of the connection.
func (c *Conn) Token(ctx context.Context) (string, error) {
	return c.Manager.Source(c.Portal).Token(ctx)
}

// Close closes the store.
func (c *Conn) Close() error { return c.Store.Close() }
