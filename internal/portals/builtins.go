package portals

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/onerecord/onerecord/internal/store"
)

// Source values of store.Portal.Source.
const (
	SourceBuiltin = "builtin"
	SourceUser    = "user"
	SourceImport  = "import"
)

// SandboxName is the built-in entry for the local sandbox portal.
const SandboxName = "sandbox"

// SandboxFHIRBase and SandboxClientID are what `onerecord sandbox` serves.
const (
	SandboxFHIRBase = "http://127.0.0.1:8723/fhir"
	SandboxClientID = "onerecord-sandbox"
)

// vendor describes where a developer registers an app for a family of servers.
type vendor struct {
	Name        string // "Epic"
	RegisterURL string // developer site
	Notes       string // one line of what registration involves
}

var (
	vendorEpic = vendor{"Epic", "https://fhir.epic.com",
		"create a patient-facing app for the R4 APIs it reads with a redirect URI such as http://127.0.0.1:8765/callback, then also pass --redirect-port 8765; new client ids can take a while to start working"}
	vendorOracle = vendor{"Oracle Health (Cerner)", "https://code-console.cerner.com",
		"register a patient SMART app (public client) with a redirect URI such as http://127.0.0.1:8765/callback, then also pass --redirect-port 8765"}
	vendorVA = vendor{"the VA Lighthouse program", "https://developer.va.gov",
		"request sandbox access to the Patient Health API (FHIR) as a PKCE app with a redirect URI such as http://127.0.0.1:8765/callback, then also pass --redirect-port 8765"}
	vendorCMS = vendor{"CMS Blue Button 2.0", "https://sandbox.bluebutton.cms.gov",
		"register an application; Blue Button needs a confidential client, so also pass --client-secret-stdin"}
)

// builtin is a built-in entry plus what only code knows about it.
type builtin struct {
	p      store.Portal
	vendor *vendor // who issues client ids; nil when any client id works
}

// builtins are the entries that ship with onerecord. Names are stable: people
// type them and scripts use them.
var builtins = []builtin{
	{p: store.Portal{
		Name:         SandboxName,
		DisplayName:  "Local sandbox portal (onerecord sandbox)",
		FHIRBase:     SandboxFHIRBase,
		ClientID:     SandboxClientID,
		RedirectPort: 0,
	}},
	{p: store.Portal{
		// The launcher takes its launch settings from the URL: the "sim"
		// segment {"k":"1"} (base64url) asks for a patient standalone
		// launch with a patient picker. The plain /v/r4/fhir base rejects a
		// standalone authorize request. Any client id is accepted.
		Name:        "smart-launcher",
		DisplayName: "SMART Health IT launcher, R4 test server (synthetic patients; any client id works)",
		FHIRBase:    "https://launch.smarthealthit.org/v/r4/sim/eyJrIjoiMSJ9/fhir",
		ClientID:    "onerecord",
	}},
	{p: store.Portal{
		Name:        "epic-sandbox",
		DisplayName: "Epic on FHIR R4 sandbox (test patients; needs your own client id from fhir.epic.com)",
		FHIRBase:    "https://fhir.epic.com/interconnect-fhir-oauth/api/FHIR/R4",
	}, vendor: &vendorEpic},
	{p: store.Portal{
		Name:        "oracle-health-sandbox",
		DisplayName: "Oracle Health (Cerner) R4 patient sandbox (test patients; needs your own client id)",
		FHIRBase:    "https://fhir-myrecord.cerner.com/r4/ec2458f2-1e24-41c8-b71b-0e701af7583d",
	}, vendor: &vendorOracle},
	{p: store.Portal{
		Name:        "va-sandbox",
		DisplayName: "VA Lighthouse Patient Health API sandbox (test veterans; needs your own client id)",
		FHIRBase:    "https://sandbox-api.va.gov/services/fhir/v0/r4",
	}, vendor: &vendorVA},
	{p: store.Portal{
		Name:        "bluebutton-sandbox",
		DisplayName: "CMS Blue Button 2.0 sandbox (synthetic Medicare claims; needs your own client id and secret)",
		FHIRBase:    "https://sandbox.bluebutton.cms.gov/v2/fhir",
	}, vendor: &vendorCMS},
}

// Builtins returns the built-in entries (Source "builtin").
func Builtins() []store.Portal {
	out := make([]store.Portal, len(builtins))
	for i, b := range builtins {
		out[i] = b.p
		out[i].Source = SourceBuiltin
		out[i].Conn.State = store.StateNotConnected
	}
	return out
}

func builtinByName(name string) (store.Portal, bool) {
	for _, p := range Builtins() {
		if p.Name == name {
			return p, true
		}
	}
	return store.Portal{}, false
}

// vendorFor guesses who issues client ids for p: the built-in's vendor, or one
// recognised from the FHIR base's host or path.
func vendorFor(p store.Portal) *vendor {
	for _, b := range builtins {
		if b.p.Name == p.Name && sameBase(b.p.FHIRBase, p.FHIRBase) {
			return b.vendor
		}
	}
	u, err := url.Parse(p.FHIRBase)
	if err != nil {
		return nil
	}
	host, path := strings.ToLower(u.Hostname()), u.Path
	switch {
	case strings.HasSuffix(host, "epic.com"), strings.Contains(path, "/api/FHIR/R4"):
		// Epic customers host their own servers; the path is Epic's.
		return &vendorEpic
	case strings.HasSuffix(host, "cerner.com"), strings.HasSuffix(host, "oraclecloud.com"):
		return &vendorOracle
	case strings.HasSuffix(host, ".va.gov"):
		return &vendorVA
	case strings.HasSuffix(host, "bluebutton.cms.gov"):
		return &vendorCMS
	}
	return nil
}

// ClientIDError says that a portal cannot be connected before the person sets
// a client id, and how to get one. It wraps ErrNoClientID.
type ClientIDError struct {
	Portal   string
	FHIRBase string
	Vendor   string // "" when unknown
	Register string // developer site, "" when unknown
	Notes    string
	// Unsaved is set for an entry not yet in the directory (a FHIR base URL
	// given to connect): the hint then includes --fhir-base.
	Unsaved bool
}

func (e *ClientIDError) Error() string {
	return fmt.Sprintf("portal %q needs a client id: its server only accepts apps registered with it", e.Portal)
}

func (e *ClientIDError) Unwrap() error { return ErrNoClientID }

// Hint says how to get and set the client id.
func (e *ClientIDError) Hint() string {
	who := "the portal's EHR vendor (its developer site)"
	if e.Vendor != "" {
		who = e.Vendor
		if e.Register != "" {
			who += " at " + e.Register
		}
	}
	add := fmt.Sprintf("onerecord portals add %s --client-id ID", e.Portal)
	if e.Unsaved {
		add = fmt.Sprintf("onerecord portals add %s --fhir-base %s --client-id ID", e.Portal, e.FHIRBase)
	}
	h := fmt.Sprintf("register an app with %s, then run `%s`", who, add)
	if e.Notes != "" {
		h += " (" + e.Notes + ")"
	}
	return h + "; see docs/portals.md"
}

// RequireClientID returns nil when p has a client id, else a *ClientIDError
// whose hint names the vendor to register with. Connect calls it first.
func RequireClientID(p store.Portal) error {
	if strings.TrimSpace(p.ClientID) != "" {
		return nil
	}
	// Entries the person added always have a client id, so a "user" entry
	// without one is an unsaved one made from a URL.
	e := &ClientIDError{Portal: p.Name, FHIRBase: p.FHIRBase, Unsaved: p.Source == SourceUser}
	if v := vendorFor(p); v != nil {
		e.Vendor, e.Register, e.Notes = v.Name, v.RegisterURL, v.Notes
	}
	return e
}
