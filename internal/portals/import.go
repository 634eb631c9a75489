package portals

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/onerecord/onerecord/internal/store"
)

// DefaultMaxImportBytes caps an imported bundle (vendor bundles listing every
// customer run to tens of megabytes).
const DefaultMaxImportBytes = 256 << 20

// ImportResult says what Import did.
type ImportResult struct {
	Added     []string // names of new entries
	Updated   []string // imported entries whose display name or brand URL changed
	Unchanged int      // servers already in the directory as they are
	Skipped   int      // endpoints left out (see Warnings)
	Warnings  []string
}

// Import reads a User-access Brands bundle or a Bundle of Endpoints from src,
// a file path or an https URL (http only for a loopback host), and adds one
// entry per FHIR server. A server already imported is updated in place
// (matched by FHIR base; its name, client id and connection are kept); a
// server the person added or a built-in is left alone. New names come from
// the brand ("good-health"), with -2, -3 ... on collisions. Imported entries
// have no client id: connect asks for one.
func (d *Directory) Import(ctx context.Context, src string) (ImportResult, error) {
	if looksLikeURL(src) {
		body, err := d.fetch(ctx, src)
		if err != nil {
			return ImportResult{}, err
		}
		defer body.Close()
		return d.ImportReader(ctx, body)
	}
	f, err := os.Open(src)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return ImportResult{}, withHint(fmt.Errorf("portals: %w", err), // err names the path
				"give the path of a bundle file, or an https:// URL")
		}
		return ImportResult{}, fmt.Errorf("portals: %w", err)
	}
	defer f.Close()
	return d.ImportReader(ctx, f)
}

// ImportReader imports the bundle read from r (see Import).
func (d *Directory) ImportReader(ctx context.Context, r io.Reader) (ImportResult, error) {
	if d.Store == nil {
		return ImportResult{}, errors.New("portals: no store")
	}
	parsed, err := ParseBundle(ctx, &limitReader{r: r, left: d.maxBytes(), max: d.maxBytes()})
	if err != nil {
		return ImportResult{}, err
	}
	res := ImportResult{Skipped: parsed.Skipped, Warnings: parsed.Warnings}
	if len(parsed.Candidates) == 0 {
		msg := "the bundle lists no FHIR endpoints"
		if parsed.Skipped > 0 {
			msg = fmt.Sprintf("none of the bundle's %d endpoints is a usable FHIR R4 server", parsed.Skipped)
		}
		return res, withHint(fmt.Errorf("%w: %s", ErrNotBundle, msg),
			"import takes a SMART User-access Brands bundle or a Bundle of Endpoint resources")
	}

	all, err := d.List(ctx)
	if err != nil {
		return res, err
	}
	byBase := map[string]store.Portal{}
	taken := map[string]bool{}
	for _, p := range all {
		taken[p.Name] = true
		if _, dup := byBase[baseKey(p.FHIRBase)]; !dup {
			byBase[baseKey(p.FHIRBase)] = p
		}
	}
	for i, c := range parsed.Candidates {
		if i%200 == 0 {
			if err := ctx.Err(); err != nil {
				return res, err
			}
		}
		if cur, ok := byBase[c.FHIRBase]; ok {
			if cur.Source != SourceImport || (cur.DisplayName == c.DisplayName && cur.BrandURL == c.BrandURL) {
				res.Unchanged++
				continue
			}
			cur.DisplayName, cur.BrandURL = c.DisplayName, c.BrandURL
			cur.Conn = store.Connection{} // keep the stored connection
			if err := d.Store.PutPortal(ctx, cur); err != nil {
				return res, fmt.Errorf("update portal %q: %w", cur.Name, err)
			}
			res.Updated = append(res.Updated, cur.Name)
			continue
		}
		name := uniqueName(Slug(c.Brand), func(n string) bool { return taken[n] })
		taken[name] = true
		p := store.Portal{
			Name:        name,
			DisplayName: c.DisplayName,
			FHIRBase:    c.FHIRBase,
			BrandURL:    c.BrandURL,
			Source:      SourceImport,
			Conn:        store.Connection{State: store.StateNotConnected},
		}
		if err := d.Store.PutPortal(ctx, p); err != nil {
			return res, fmt.Errorf("save portal %q: %w", name, err)
		}
		byBase[c.FHIRBase] = p
		res.Added = append(res.Added, name)
	}
	return res, nil
}

func (d *Directory) maxBytes() int64 {
	if d.MaxImportBytes > 0 {
		return d.MaxImportBytes
	}
	return DefaultMaxImportBytes
}

// fetch GETs an import URL: https, or http on loopback; redirects must stay
// that way; the status must be 200 and the body not HTML.
func (d *Directory) fetch(ctx context.Context, raw string) (io.ReadCloser, error) {
	u, err := checkURL(strings.TrimSpace(raw))
	if err != nil {
		return nil, err
	}
	client := &http.Client{Timeout: 2 * time.Minute}
	if d.HTTP != nil {
		c := *d.HTTP
		client = &c
	}
	client.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if len(via) >= 5 {
			return errors.New("too many redirects")
		}
		if _, err := checkURL(req.URL.String()); err != nil {
			return fmt.Errorf("redirected to a URL onerecord does not follow: %w", err)
		}
		return nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("import %s: %w", u.Redacted(), err)
	}
	req.Header.Set("Accept", "application/fhir+json, application/json;q=0.9")
	resp, err := client.Do(req)
	if err != nil {
		return nil, withHint(fmt.Errorf("%w: %s: %w", ErrImportHTTP, u.Redacted(), unwrapURLError(err)),
			"check the URL and your network connection")
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, withHint(fmt.Errorf("%w: %s answered %s", ErrImportHTTP, u.Redacted(), resp.Status),
			"check the URL; a vendor's bundle address is on its developer site")
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt == "text/html" {
		resp.Body.Close()
		return nil, withHint(ErrHTML,
			"the URL points at a web page about the bundle; use the address of the JSON file itself")
	}
	return resp.Body, nil
}

func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// limitReader fails with a *tooLargeError once more than max bytes are read.
type limitReader struct {
	r         io.Reader
	left, max int64
}

type tooLargeError struct{ max int64 }

func (e *tooLargeError) Error() string { return "more than " + sizeText(e.max) }

func sizeText(n int64) string {
	if n >= 1<<20 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d bytes", n)
}

func (e *tooLargeError) wrap() error {
	return withHint(fmt.Errorf("%w: the bundle is larger than %s", ErrTooLarge, sizeText(e.max)),
		"import a smaller bundle (for example one region or one vendor)")
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.left <= 0 {
		var one [1]byte
		n, err := l.r.Read(one[:])
		if n > 0 {
			return 0, &tooLargeError{max: l.max}
		}
		return 0, err
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	return n, err
}
