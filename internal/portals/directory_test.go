package portals

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/onerecord/onerecord/internal/store"
)

// newDir returns a Directory over a real store file in a temp dir.
func newDir(t *testing.T) *Directory {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "onerecord.db"))
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	return &Directory{Store: st}
}

func ptr[T any](v T) *T { return &v }

func names(ps []store.Portal) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.Name)
	}
	return out
}

func hintOf(err error) string {
	var h interface{ Hint() string }
	if errors.As(err, &h) {
		return h.Hint()
	}
	return ""
}

func TestListAndResolveBuiltins(t *testing.T) {
	ctx := context.Background()
	d := newDir(t)
	ps, err := d.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != len(Builtins()) {
		t.Fatalf("List = %v, want the built-ins only", names(ps))
	}
	for i := 1; i < len(ps); i++ {
		if ps[i-1].Name >= ps[i].Name {
			t.Errorf("not sorted: %v", names(ps))
		}
	}
	p, err := d.Resolve(ctx, "SandBox")
	if err != nil || p.Name != "sandbox" || p.Source != SourceBuiltin || p.Conn.State != store.StateNotConnected {
		t.Fatalf("Resolve(SandBox) = %+v, %v", p, err)
	}
	// By URL, with a trailing slash and upper-case host.
	p, err = d.Resolve(ctx, "http://127.0.0.1:8723/fhir/")
	if err != nil || p.Name != "sandbox" {
		t.Fatalf("Resolve(sandbox URL) = %+v, %v", p, err)
	}
	p, err = d.Resolve(ctx, "https://FHIR.epic.com/interconnect-fhir-oauth/api/FHIR/R4")
	if err != nil || p.Name != "epic-sandbox" {
		t.Fatalf("Resolve(epic URL) = %+v, %v", p, err)
	}
}

func TestResolveAdHocURL(t *testing.T) {
	ctx := context.Background()
	d := newDir(t)
	p, err := d.Resolve(ctx, "https://fhir.example.org/r4/")
	if err != nil {
		t.Fatal(err)
	}
	want := store.Portal{Name: "fhir-example-org", DisplayName: "fhir.example.org", FHIRBase: "https://fhir.example.org/r4",
		Source: SourceUser, Conn: store.Connection{State: store.StateNotConnected}}
	if p.Name != want.Name || p.FHIRBase != want.FHIRBase || p.Source != want.Source || p.DisplayName != want.DisplayName || p.Conn.State != want.Conn.State {
		t.Fatalf("ad-hoc = %+v\nwant %+v", p, want)
	}
	// Connect needs a client id for it; the hint says how to add it.
	if err := RequireClientID(p); !strings.Contains(hintOf(err), "onerecord portals add fhir-example-org --fhir-base https://fhir.example.org/r4 --client-id ID") {
		t.Errorf("RequireClientID(ad-hoc) hint = %q", hintOf(err))
	}
	// Not saved.
	if _, err := d.Store.GetPortal(ctx, p.Name); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("ad-hoc entry was saved: %v", err)
	}
	// A different server on the same host gets a free name.
	if _, _, err := d.Add(ctx, AddOptions{Name: "fhir-example-org", FHIRBase: ptr("https://fhir.example.org/r4"), ClientID: ptr("abc")}); err != nil {
		t.Fatal(err)
	}
	p, err = d.Resolve(ctx, "https://fhir.example.org/dstu2-but-not-really")
	if err != nil || p.Name != "fhir-example-org-2" {
		t.Fatalf("second ad-hoc = %+v, %v", p, err)
	}
	// The saved one now resolves by URL.
	p, err = d.Resolve(ctx, "https://fhir.example.org/r4")
	if err != nil || p.Name != "fhir-example-org" || p.ClientID != "abc" {
		t.Fatalf("Resolve(saved URL) = %+v, %v", p, err)
	}
	// Loopback keeps the port in the name.
	p, err = d.Resolve(ctx, "http://localhost:9000/fhir")
	if err != nil || p.Name != "localhost-9000" {
		t.Fatalf("loopback ad-hoc = %+v, %v", p, err)
	}
	// Plain http off loopback is refused with a hint.
	_, err = d.Resolve(ctx, "http://fhir.example.org/r4")
	if !errors.Is(err, ErrInvalidURL) || !strings.Contains(hintOf(err), "https") {
		t.Fatalf("http URL: err = %v, hint %q", err, hintOf(err))
	}
}

func TestResolveUnknown(t *testing.T) {
	ctx := context.Background()
	d := newDir(t)
	_, err := d.Resolve(ctx, "no-such-portal")
	if !errors.Is(err, ErrUnknown) {
		t.Fatalf("err = %v", err)
	}
	if h := hintOf(err); !strings.Contains(h, "onerecord portals search") || !strings.Contains(h, "FHIR base URL") {
		t.Errorf("hint = %q", h)
	}
	// A near miss suggests names.
	_, err = d.Resolve(ctx, "epic")
	if !errors.Is(err, ErrUnknown) || !strings.Contains(hintOf(err), "did you mean epic-sandbox") {
		t.Errorf("err = %v, hint %q", err, hintOf(err))
	}
}

func TestAddUpdateAndStoreCopyWins(t *testing.T) {
	ctx := context.Background()
	d := newDir(t)

	// New entries need both the base and the client id.
	if _, _, err := d.Add(ctx, AddOptions{Name: "clinic", FHIRBase: ptr("https://fhir.clinic.example.org/r4")}); err == nil {
		t.Fatal("add without client id succeeded")
	}
	if _, _, err := d.Add(ctx, AddOptions{Name: "Bad Name", FHIRBase: ptr("https://x.example.org"), ClientID: ptr("x")}); !errors.Is(err, ErrInvalidName) {
		t.Fatalf("bad name: %v", err)
	}
	p, created, err := d.Add(ctx, AddOptions{Name: "Clinic", FHIRBase: ptr("https://fhir.clinic.example.org/r4/"), ClientID: ptr("cid-1"),
		Scope: ptr("  patient/*.read   openid "), RedirectPort: ptr(8765), DisplayName: ptr("My clinic")})
	if err != nil || !created {
		t.Fatalf("add: %+v %v %v", p, created, err)
	}
	if p.Name != "clinic" || p.FHIRBase != "https://fhir.clinic.example.org/r4" || p.ClientID != "cid-1" || p.Scope != "patient/*.read openid" ||
		p.RedirectPort != 8765 || p.Source != SourceUser || p.DisplayName != "My clinic" || p.Conn.State != store.StateNotConnected {
		t.Fatalf("added = %+v", p)
	}
	// Update keeps what is not given.
	p, created, err = d.Add(ctx, AddOptions{Name: "clinic", ClientID: ptr("cid-2")})
	if err != nil || created || p.ClientID != "cid-2" || p.Scope != "patient/*.read openid" || p.RedirectPort != 8765 {
		t.Fatalf("update: %+v %v %v", p, created, err)
	}
	// Another entry cannot take the same server.
	_, _, err = d.Add(ctx, AddOptions{Name: "clinic-again", FHIRBase: ptr("https://FHIR.clinic.example.org/r4"), ClientID: ptr("x")})
	if !errors.Is(err, ErrDuplicateBase) || !strings.Contains(hintOf(err), "portals add clinic --client-id") {
		t.Fatalf("duplicate base: %v (%s)", err, hintOf(err))
	}
	// A built-in gets a store copy; the copy wins in Resolve and List.
	p, created, err = d.Add(ctx, AddOptions{Name: "epic-sandbox", ClientID: ptr("epic-client")})
	if err != nil || created || p.Source != SourceBuiltin || p.FHIRBase != "https://fhir.epic.com/interconnect-fhir-oauth/api/FHIR/R4" {
		t.Fatalf("builtin update: %+v %v %v", p, created, err)
	}
	if err := RequireClientID(p); err != nil {
		t.Errorf("RequireClientID after add: %v", err)
	}
	got, _ := d.Resolve(ctx, "epic-sandbox")
	if got.ClientID != "epic-client" {
		t.Errorf("Resolve(epic-sandbox) = %+v", got)
	}
	ps, _ := d.List(ctx)
	n := 0
	for _, q := range ps {
		if q.Name == "epic-sandbox" {
			n++
			if q.ClientID != "epic-client" {
				t.Errorf("List has the built-in, not the store copy: %+v", q)
			}
		}
	}
	if n != 1 || len(ps) != len(Builtins())+1 {
		t.Errorf("List = %v", names(ps))
	}
}

func TestConnectedPortalGuards(t *testing.T) {
	ctx := context.Background()
	d := newDir(t)
	if _, _, err := d.Add(ctx, AddOptions{Name: "clinic", FHIRBase: ptr("https://fhir.clinic.example.org/r4"), ClientID: ptr("cid")}); err != nil {
		t.Fatal(err)
	}
	if err := d.Store.SetConnection(ctx, "clinic", store.Connection{State: store.StateConnected, PatientID: "p1", ConnectedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	_, _, err := d.Add(ctx, AddOptions{Name: "clinic", ClientID: ptr("other")})
	if !errors.Is(err, ErrConnected) || !strings.Contains(hintOf(err), "onerecord disconnect clinic") {
		t.Fatalf("client id change while connected: %v (%s)", err, hintOf(err))
	}
	// A display-name change is fine and keeps the connection.
	p, _, err := d.Add(ctx, AddOptions{Name: "clinic", DisplayName: ptr("Clinic downtown")})
	if err != nil || p.Conn.State != store.StateConnected || p.Conn.PatientID != "p1" {
		t.Fatalf("display name change: %+v %v", p, err)
	}
	_, err = d.Remove(ctx, "clinic", false)
	if !errors.Is(err, ErrConnected) || !strings.Contains(hintOf(err), "run `onerecord disconnect clinic` first") {
		t.Fatalf("remove while connected: %v (%s)", err, hintOf(err))
	}
}

func TestRemove(t *testing.T) {
	ctx := context.Background()
	d := newDir(t)
	if _, err := d.Remove(ctx, "sandbox", false); !errors.Is(err, ErrBuiltin) {
		t.Fatalf("remove builtin: %v", err)
	}
	if _, err := d.Remove(ctx, "nope", false); !errors.Is(err, ErrUnknown) {
		t.Fatalf("remove unknown: %v", err)
	}
	// Without records: gone.
	d.Add(ctx, AddOptions{Name: "a", FHIRBase: ptr("https://a.example.org/r4"), ClientID: ptr("x")})
	res, err := d.Remove(ctx, "a", false)
	if err != nil || res.Kept || res.Records != 0 {
		t.Fatalf("remove a: %+v %v", res, err)
	}
	if _, err := d.Resolve(ctx, "a"); !errors.Is(err, ErrUnknown) {
		t.Errorf("a still resolves: %v", err)
	}
	// With records: kept unless purge.
	d.Add(ctx, AddOptions{Name: "b", FHIRBase: ptr("https://b.example.org/r4"), ClientID: ptr("x")})
	_, err = d.Store.UpsertResources(ctx, "b", []store.Resource{{Type: "Patient", ID: "1", Raw: []byte(`{"resourceType":"Patient","id":"1"}`)}}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	res, err = d.Remove(ctx, "b", false)
	if err != nil || !res.Kept || res.Records != 1 {
		t.Fatalf("remove b: %+v %v", res, err)
	}
	if _, err := d.Store.GetResource(ctx, "b", "Patient", "1"); err != nil {
		t.Errorf("record of b lost: %v", err)
	}
	res, err = d.Remove(ctx, "b", true)
	if err != nil || res.Kept || !res.Purged || res.Records != 1 {
		t.Fatalf("purge b: %+v %v", res, err)
	}
	if _, err := d.Store.GetResource(ctx, "b", "Patient", "1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("record of b survived purge: %v", err)
	}
	// A built-in's store copy can be removed: the built-in is back.
	d.Add(ctx, AddOptions{Name: "epic-sandbox", ClientID: ptr("c")})
	res, err = d.Remove(ctx, "epic-sandbox", false)
	if err != nil || !res.BuiltinLeft {
		t.Fatalf("remove builtin copy: %+v %v", res, err)
	}
	p, err := d.Resolve(ctx, "epic-sandbox")
	if err != nil || p.ClientID != "" {
		t.Errorf("after reset: %+v %v", p, err)
	}
}

func TestImportFileAndReimport(t *testing.T) {
	ctx := context.Background()
	d := newDir(t)
	res, err := d.Import(ctx, fixture(t, "user-access-brands.json"))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(res.Added, " "); got != "riverbend-health lakeside-family-practice hillcrest-medical-group" {
		t.Errorf("added = %s", got)
	}
	if res.Skipped != 1 {
		t.Errorf("skipped = %d", res.Skipped)
	}
	p, err := d.Resolve(ctx, "riverbend-health")
	if err != nil || p.Source != SourceImport || p.ClientID != "" || p.BrandURL != "https://mychart.riverbend.example.org" {
		t.Fatalf("imported = %+v %v", p, err)
	}
	var ce *ClientIDError
	if err := RequireClientID(p); !errors.As(err, &ce) || ce.Vendor != "Epic" {
		t.Errorf("RequireClientID(imported) = %v", err)
	}
	// Search finds an affiliate brand name and a portal name.
	for q, want := range map[string]string{"children's": "riverbend-health", "patient gateway": "lakeside-family-practice", "hillcrest": "hillcrest-medical-group"} {
		found, err := d.Search(ctx, q)
		if err != nil || len(found) == 0 || found[0].Name != want {
			t.Errorf("Search(%q) = %v, %v; want %s first", q, names(found), err, want)
		}
	}

	// The person sets a client id and connects; a re-import then updates the
	// display name in place and keeps all of that.
	if _, _, err := d.Add(ctx, AddOptions{Name: "riverbend-health", ClientID: ptr("rb-client")}); err != nil {
		t.Fatal(err)
	}
	if err := d.Store.SetConnection(ctx, "riverbend-health", store.Connection{State: store.StateConnected, PatientID: "p9"}); err != nil {
		t.Fatal(err)
	}
	changed := filepath.Join(t.TempDir(), "brands.json")
	b, _ := os.ReadFile(fixture(t, "user-access-brands.json"))
	os.WriteFile(changed, []byte(strings.Replace(string(b), `"Riverbend MyChart"`, `"Riverbend Connect"`, 1)), 0o600)
	res, err = d.Import(ctx, changed)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Added) != 0 || strings.Join(res.Updated, " ") != "riverbend-health" || res.Unchanged != 2 {
		t.Fatalf("re-import = %+v", res)
	}
	p, _ = d.Resolve(ctx, "riverbend-health")
	if !strings.Contains(p.DisplayName, "Riverbend Connect") || p.ClientID != "rb-client" || p.Conn.State != store.StateConnected || p.Conn.PatientID != "p9" {
		t.Errorf("after re-import = %+v", p)
	}
	// Same file again: nothing changes.
	res, err = d.Import(ctx, changed)
	if err != nil || len(res.Added)+len(res.Updated) != 0 || res.Unchanged != 3 {
		t.Errorf("third import = %+v %v", res, err)
	}
}

func TestImportNameCollisionsAndUserEntries(t *testing.T) {
	ctx := context.Background()
	d := newDir(t)
	// A user entry already points at one of the servers: left alone.
	if _, _, err := d.Add(ctx, AddOptions{Name: "northwind", FHIRBase: ptr("https://fhir.northwind.example.org/interconnect-fhir-oauth/api/FHIR/R4"),
		ClientID: ptr("mine"), DisplayName: ptr("My hospital")}); err != nil {
		t.Fatal(err)
	}
	// And a user entry holds the name the import would pick.
	if _, _, err := d.Add(ctx, AddOptions{Name: "sunrise-valley-hospital", FHIRBase: ptr("https://other.example.org/r4"), ClientID: ptr("x")}); err != nil {
		t.Fatal(err)
	}
	res, err := d.Import(ctx, fixture(t, "endpoints.json"))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(res.Added, " "); got != "sunrise-valley-hospital-2 sunrise-valley-hospital-3" {
		t.Errorf("added = %s", got)
	}
	if res.Unchanged != 1 || res.Skipped != 1 {
		t.Errorf("result = %+v", res)
	}
	p, _ := d.Resolve(ctx, "northwind")
	if p.DisplayName != "My hospital" || p.Source != SourceUser || p.ClientID != "mine" {
		t.Errorf("user entry changed: %+v", p)
	}
}

func TestImportURL(t *testing.T) {
	ctx := context.Background()
	body, err := os.ReadFile(fixture(t, "endpoints.json"))
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/brands.json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/fhir+json")
		w.Write(body)
	})
	mux.HandleFunc("/page", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write([]byte("<html>endpoints</html>"))
	})
	mux.HandleFunc("/sneaky", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json") // but HTML
		w.Write([]byte("\n\n<!doctype html><p>hi</p>"))
	})
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"resourceType":"Bundle","entry":[` + strings.Repeat(`{"resource":{"resourceType":"Basic"}},`, 200) + `{}]}`))
	})
	mux.HandleFunc("/away", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://fhir.example.org/brands.json", http.StatusFound)
	})
	srv := httptest.NewServer(mux) // listens on 127.0.0.1
	defer srv.Close()

	d := newDir(t)
	d.HTTP = srv.Client()
	res, err := d.Import(ctx, srv.URL+"/brands.json")
	if err != nil || len(res.Added) != 3 {
		t.Fatalf("import URL: %+v %v", res, err)
	}
	if _, err := d.Import(ctx, srv.URL+"/page"); !errors.Is(err, ErrHTML) || hintOf(err) == "" {
		t.Errorf("HTML page: %v", err)
	}
	if _, err := d.Import(ctx, srv.URL+"/sneaky"); !errors.Is(err, ErrHTML) {
		t.Errorf("HTML labelled JSON: %v", err)
	}
	if _, err := d.Import(ctx, srv.URL+"/missing"); !errors.Is(err, ErrImportHTTP) || !strings.Contains(err.Error(), "404") {
		t.Errorf("404: %v", err)
	}
	if _, err := d.Import(ctx, srv.URL+"/away"); !errors.Is(err, ErrImportHTTP) || !strings.Contains(err.Error(), "does not follow") {
		t.Errorf("redirect to plain http: %v", err)
	}
	small := &Directory{Store: d.Store, HTTP: srv.Client(), MaxImportBytes: 1024}
	if _, err := small.Import(ctx, srv.URL+"/big"); !errors.Is(err, ErrTooLarge) {
		t.Errorf("too large: %v", err)
	}
	if _, err := d.Import(ctx, "http://fhir.example.org/brands.json"); !errors.Is(err, ErrInvalidURL) {
		t.Errorf("plain http URL: %v", err)
	}
	if _, err := d.Import(ctx, filepath.Join(t.TempDir(), "nope.json")); !errors.Is(err, os.ErrNotExist) || hintOf(err) == "" {
		t.Errorf("missing file: %v", err)
	}
}

func TestImportNothingUsable(t *testing.T) {
	ctx := context.Background()
	d := newDir(t)
	in := `{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Endpoint","status":"active","address":"http://insecure.example.org/r4"}}]}`
	res, err := d.ImportReader(ctx, strings.NewReader(in))
	if !errors.Is(err, ErrNotBundle) || !strings.Contains(err.Error(), "none of the bundle's 1 endpoints") || len(res.Warnings) != 1 {
		t.Fatalf("err = %v, res = %+v", err, res)
	}
}

func TestSearchRanking(t *testing.T) {
	ctx := context.Background()
	d := newDir(t)
	d.Add(ctx, AddOptions{Name: "sandbox-copy", FHIRBase: ptr("https://copy.example.org/fhir"), ClientID: ptr("x"), DisplayName: ptr("A copy")})
	d.Add(ctx, AddOptions{Name: "valley", FHIRBase: ptr("https://valley.example.org/fhir"), ClientID: ptr("x"), DisplayName: ptr("Valley clinic, sandbox-free")})
	found, err := d.Search(ctx, "SANDBOX")
	if err != nil {
		t.Fatal(err)
	}
	got := names(found)
	if len(got) < 3 || got[0] != "sandbox" || got[1] != "sandbox-copy" {
		t.Errorf("Search(SANDBOX) = %v", got)
	}
	// Every word must match.
	found, _ = d.Search(ctx, "valley nothing")
	if len(found) != 0 {
		t.Errorf("Search(valley nothing) = %v", names(found))
	}
	// URL matches count, lowest.
	found, _ = d.Search(ctx, "fhir.epic.com")
	if len(found) != 1 || found[0].Name != "epic-sandbox" {
		t.Errorf("Search(fhir.epic.com) = %v", names(found))
	}
	if found, _ := d.Search(ctx, "   "); len(found) != 0 {
		t.Errorf("empty search = %v", names(found))
	}
}
