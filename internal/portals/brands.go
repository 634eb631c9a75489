package portals

// Reading SMART User-access Brands bundles (SMART App Launch 2.2, "User-access
// Brands and Endpoints") and plain Bundles of Endpoint resources.
//
// A brands bundle holds Organization resources (brands) and Endpoint
// resources (FHIR servers). A brand names its endpoints through the
// organization-portal extension's portalEndpoint references and through
// Organization.endpoint; an affiliated brand without its own portal points at
// the brand that provides access through Organization.partOf; an Endpoint may
// name its brand through managingOrganization. onerecord keeps one directory
// entry per FHIR base: connecting is per server, whichever brand led there.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
)

// Extension URLs (matched by their last path segment, so the older
// Argonaut and ballot-era URLs of the same extensions are read too).
const (
	extPortal      = "organization-portal"
	extBrand       = "organization-brand"
	extFHIRVersion = "endpoint-fhir-version"
)

// Candidate is one FHIR server found in a bundle, not yet in the directory.
type Candidate struct {
	Brand       string // the brand's name, used to derive the entry's name
	DisplayName string
	FHIRBase    string // normalised
	BrandURL    string // the portal's or the brand's website
}

// ParseResult is what ParseBundle found.
type ParseResult struct {
	Candidates []Candidate
	Entries    int      // bundle entries read
	Skipped    int      // endpoints left out (not FHIR R4 REST, inactive, bad address)
	Warnings   []string // why, for the first few
}

const maxWarnings = 20

func (r *ParseResult) skip(format string, args ...any) {
	r.Skipped++
	if len(r.Warnings) < maxWarnings {
		r.Warnings = append(r.Warnings, fmt.Sprintf(format, args...))
	}
}

// Minimal shapes of the FHIR elements read here.
type (
	reference struct {
		Reference string `json:"reference"`
		Display   string `json:"display"`
	}
	extension struct {
		URL            string      `json:"url"`
		ValueString    string      `json:"valueString"`
		ValueURL       string      `json:"valueUrl"`
		ValueURI       string      `json:"valueUri"`
		ValueCode      string      `json:"valueCode"`
		ValueReference *reference  `json:"valueReference"`
		Extension      []extension `json:"extension"`
	}
	coding struct {
		System string `json:"system"`
		Code   string `json:"code"`
	}
	identifier struct {
		System string `json:"system"`
		Value  string `json:"value"`
	}
	contactPoint struct {
		System string `json:"system"`
		Value  string `json:"value"`
	}
	// resource holds the Organization and Endpoint elements read; Address
	// is a string on Endpoint and a list on Organization.
	resource struct {
		ResourceType         string          `json:"resourceType"`
		ID                   string          `json:"id"`
		Name                 string          `json:"name"`
		Alias                []string        `json:"alias"`
		Active               *bool           `json:"active"`
		Status               string          `json:"status"`
		Address              json.RawMessage `json:"address"`
		ConnectionType       json.RawMessage `json:"connectionType"`
		Extension            []extension     `json:"extension"`
		Endpoint             []reference     `json:"endpoint"`
		PartOf               *reference      `json:"partOf"`
		ManagingOrganization *reference      `json:"managingOrganization"`
		Identifier           []identifier    `json:"identifier"`
		Telecom              []contactPoint  `json:"telecom"`
	}
	bundleEntry struct {
		FullURL  string          `json:"fullUrl"`
		Resource json.RawMessage `json:"resource"`
	}
)

func extIs(url, name string) bool {
	return url == name || strings.HasSuffix(url, "/"+name)
}

type portalInfo struct {
	name, url string
	endpoints []string // references
}

type org struct {
	key     string // "Organization/id" or fullUrl
	name    string
	aliases []string
	website string
	partOf  string
	refs    []string // Organization.endpoint
	portals []portalInfo
}

type endpoint struct {
	key      string
	order    int
	name     string
	base     string // normalised; "" when unusable
	managing string // reference
	display  string // managingOrganization.display
}

// link is one way a brand leads to an endpoint.
type link struct {
	org       *org
	portal    string // portal name
	portalURL string
	affiliate bool // reached through partOf
}

// index resolves references within one bundle.
type index struct {
	orgs      map[string]*org
	endpoints map[string]*endpoint
	orgList   []*org
	epList    []*endpoint
}

func (ix *index) add(keys []string, o *org, e *endpoint) {
	for _, k := range keys {
		if k == "" {
			continue
		}
		if o != nil {
			if _, dup := ix.orgs[k]; !dup {
				ix.orgs[k] = o
			}
		}
		if e != nil {
			if _, dup := ix.endpoints[k]; !dup {
				ix.endpoints[k] = e
			}
		}
	}
}

// refKeys returns the keys a reference may be found under: itself and, for
// an absolute URL or relative path, its "Type/id" tail.
func refKeys(ref string) []string {
	ref = strings.TrimSpace(ref)
	if ref == "" || strings.HasPrefix(ref, "#") {
		return nil
	}
	keys := []string{ref}
	if i := strings.Index(ref, "/_history/"); i > 0 {
		ref = ref[:i]
		keys = append(keys, ref)
	}
	parts := strings.Split(strings.TrimRight(ref, "/"), "/")
	if len(parts) >= 2 {
		keys = append(keys, parts[len(parts)-2]+"/"+parts[len(parts)-1])
	}
	return keys
}

func (ix *index) org(ref string) *org {
	for _, k := range refKeys(ref) {
		if o, ok := ix.orgs[k]; ok {
			return o
		}
	}
	return nil
}

func (ix *index) endpoint(ref string) *endpoint {
	for _, k := range refKeys(ref) {
		if e, ok := ix.endpoints[k]; ok {
			return e
		}
	}
	return nil
}

// ParseBundle reads a User-access Brands bundle or a plain Bundle of Endpoint
// resources from r, one entry at a time (bundles of thousands of entries are
// not held as a document), and returns one Candidate per usable FHIR R4 base,
// in bundle order.
func ParseBundle(ctx context.Context, r io.Reader) (*ParseResult, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	if err := sniffJSON(br); err != nil {
		return nil, err
	}
	ix := &index{orgs: map[string]*org{}, endpoints: map[string]*endpoint{}}
	res := &ParseResult{}
	dec := json.NewDecoder(br)
	malformed := func(err error) error {
		var tooBig *tooLargeError
		if errors.As(err, &tooBig) {
			return tooBig.wrap()
		}
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return withHint(fmt.Errorf("%w: the file ends in the middle of the JSON", ErrNotJSON),
				"the download may have been cut short; try again")
		}
		var syn *json.SyntaxError
		var typ *json.UnmarshalTypeError
		switch {
		case errors.As(err, &syn):
			return withHint(fmt.Errorf("%w: malformed JSON at byte %d: %v", ErrNotJSON, syn.Offset, syn),
				"check that the file is a FHIR Bundle in JSON")
		case errors.As(err, &typ):
			return withHint(fmt.Errorf("%w: unexpected JSON at byte %d (%s where %s belongs)", ErrNotBundle, typ.Offset, typ.Value, typ.Type),
				"check that the file is a FHIR Bundle in JSON")
		}
		return fmt.Errorf("read bundle: %w", err)
	}
	if _, err := dec.Token(); err != nil { // '{', checked by sniffJSON
		return nil, malformed(err)
	}
	resourceType := ""
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, malformed(err)
		}
		key, _ := tok.(string)
		switch key {
		case "resourceType":
			if err := dec.Decode(&resourceType); err != nil {
				return nil, malformed(err)
			}
			if resourceType != "Bundle" {
				return nil, notBundle(resourceType)
			}
		case "entry":
			if err := readEntries(ctx, dec, ix, res); err != nil {
				if errors.Is(err, ctx.Err()) && ctx.Err() != nil {
					return nil, err
				}
				var he *hintError
				if errors.As(err, &he) {
					return nil, err
				}
				return nil, malformed(err)
			}
		default:
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return nil, malformed(err)
			}
		}
	}
	if _, err := dec.Token(); err != nil { // '}'
		return nil, malformed(err)
	}
	if resourceType != "Bundle" {
		return nil, notBundle(resourceType)
	}
	res.Candidates = ix.candidates(res)
	return res, nil
}

func notBundle(resourceType string) error {
	what := "JSON without a resourceType"
	if resourceType != "" {
		what = "a FHIR " + resourceType
	}
	return withHint(fmt.Errorf("%w: this is %s", ErrNotBundle, what),
		"import takes a SMART User-access Brands bundle or a Bundle of Endpoint resources")
}

// sniffJSON rejects HTML and non-object input before decoding, and drops a
// UTF-8 byte order mark.
func sniffJSON(br *bufio.Reader) error {
	head, err := br.Peek(512)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, bufio.ErrBufferFull) {
		var tooBig *tooLargeError
		if errors.As(err, &tooBig) {
			return tooBig.wrap()
		}
		return fmt.Errorf("read bundle: %w", err)
	}
	if bytes.HasPrefix(head, []byte("\xef\xbb\xbf")) {
		br.Discard(3)
		head = head[3:]
	}
	trimmed := bytes.TrimLeft(head, " \t\r\n")
	switch {
	case len(trimmed) == 0:
		return withHint(fmt.Errorf("%w: the input is empty", ErrNotJSON), "check the file or URL")
	case trimmed[0] == '<':
		return withHint(ErrHTML,
			"the URL probably points at a web page about the bundle; use the address of the JSON file itself")
	case trimmed[0] != '{':
		return withHint(fmt.Errorf("%w: a FHIR Bundle is a JSON object starting with '{'", ErrNotJSON),
			"check that the file is a FHIR Bundle in JSON")
	}
	return nil
}

func readEntries(ctx context.Context, dec *json.Decoder, ix *index, res *ParseResult) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if tok == nil {
		return nil // "entry": null
	}
	if d, ok := tok.(json.Delim); !ok || d != '[' {
		return withHint(fmt.Errorf("%w: Bundle.entry is not a list", ErrNotBundle), "check that the file is a FHIR Bundle in JSON")
	}
	for dec.More() {
		if res.Entries%1000 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		var e bundleEntry
		if err := dec.Decode(&e); err != nil {
			return err
		}
		res.Entries++
		ix.addEntry(e, res)
	}
	_, err = dec.Token() // ']'
	return err
}

func (ix *index) addEntry(e bundleEntry, res *ParseResult) {
	var head struct {
		ResourceType string `json:"resourceType"`
	}
	if len(e.Resource) == 0 || json.Unmarshal(e.Resource, &head) != nil {
		return
	}
	if head.ResourceType != "Organization" && head.ResourceType != "Endpoint" {
		return
	}
	var r resource
	if err := json.Unmarshal(e.Resource, &r); err != nil {
		res.skip("entry %d: unreadable %s: %v", res.Entries, head.ResourceType, err)
		return
	}
	keys := []string{e.FullURL}
	if r.ID != "" {
		keys = append(keys, r.ResourceType+"/"+r.ID)
	}
	key := r.ResourceType + "/" + r.ID
	if r.ID == "" {
		key = e.FullURL
	}
	switch r.ResourceType {
	case "Organization":
		if r.Active != nil && !*r.Active {
			return // an inactive brand leads nowhere
		}
		o := parseOrg(key, r)
		ix.orgList = append(ix.orgList, o)
		ix.add(keys, o, nil)
	case "Endpoint":
		ep := ix.parseEndpoint(key, r, res)
		ix.epList = append(ix.epList, ep)
		ix.add(keys, nil, ep)
	}
}

func parseOrg(key string, r resource) *org {
	o := &org{key: key, name: strings.TrimSpace(r.Name), aliases: r.Alias}
	for _, id := range r.Identifier {
		if id.System == "urn:ietf:rfc:3986" && strings.HasPrefix(id.Value, "https://") {
			o.website = id.Value
			break
		}
	}
	if o.website == "" {
		for _, t := range r.Telecom {
			if t.System == "url" && strings.HasPrefix(t.Value, "http") {
				o.website = t.Value
				break
			}
		}
	}
	if r.PartOf != nil {
		o.partOf = r.PartOf.Reference
	}
	for _, ref := range r.Endpoint {
		o.refs = append(o.refs, ref.Reference)
	}
	for _, x := range r.Extension {
		if !extIs(x.URL, extPortal) {
			continue
		}
		var p portalInfo
		for _, sub := range x.Extension {
			switch sub.URL {
			case "portalName":
				p.name = strings.TrimSpace(sub.ValueString)
			case "portalUrl":
				p.url = firstNonEmpty(sub.ValueURL, sub.ValueURI)
			case "portalEndpoint":
				if sub.ValueReference != nil {
					p.endpoints = append(p.endpoints, sub.ValueReference.Reference)
				}
			}
		}
		o.portals = append(o.portals, p)
	}
	return o
}

func (ix *index) parseEndpoint(key string, r resource, res *ParseResult) *endpoint {
	ep := &endpoint{key: key, order: len(ix.epList), name: strings.TrimSpace(r.Name)}
	if r.ManagingOrganization != nil {
		ep.managing = r.ManagingOrganization.Reference
		ep.display = strings.TrimSpace(r.ManagingOrganization.Display)
	}
	label := firstNonEmpty(ep.name, key)
	var addr string
	if len(r.Address) > 0 && json.Unmarshal(r.Address, &addr) != nil {
		res.skip("endpoint %s: address is not a URL string", label)
		return ep
	}
	switch r.Status {
	case "off", "entered-in-error":
		res.skip("endpoint %s: status %q", label, r.Status)
		return ep
	}
	if codes := connectionCodes(r.ConnectionType); len(codes) > 0 && !contains(codes, "hl7-fhir-rest") {
		res.skip("endpoint %s: not a FHIR REST endpoint (%s)", label, strings.Join(codes, ", "))
		return ep
	}
	var versions []string
	for _, x := range r.Extension {
		if extIs(x.URL, extFHIRVersion) && x.ValueCode != "" {
			versions = append(versions, x.ValueCode)
		}
	}
	if len(versions) > 0 && !anyPrefix(versions, "4.") {
		res.skip("endpoint %s: FHIR version %s, onerecord reads FHIR R4 (4.x)", label, strings.Join(versions, ", "))
		return ep
	}
	if strings.TrimSpace(addr) == "" {
		res.skip("endpoint %s: no address", label)
		return ep
	}
	base, err := NormalizeFHIRBase(addr)
	if err != nil {
		res.skip("endpoint %s: %v", label, err)
		return ep
	}
	ep.base = base
	return ep
}

// connectionCodes reads Endpoint.connectionType as an R4 Coding or an R5 list
// of CodeableConcepts.
func connectionCodes(raw json.RawMessage) []string {
	if len(raw) == 0 {
		return nil
	}
	var one coding
	if json.Unmarshal(raw, &one) == nil && one.Code != "" {
		return []string{one.Code}
	}
	var many []struct {
		Coding []coding `json:"coding"`
	}
	var codes []string
	if json.Unmarshal(raw, &many) == nil {
		for _, cc := range many {
			for _, c := range cc.Coding {
				if c.Code != "" {
					codes = append(codes, c.Code)
				}
			}
		}
	}
	return codes
}

// candidates links brands to endpoints and builds one Candidate per FHIR base.
func (ix *index) candidates(res *ParseResult) []Candidate {
	links := map[*endpoint][]link{}
	linked := func(ep *endpoint, l link) {
		for _, have := range links[ep] {
			if have.org == l.org && have.portal == l.portal {
				return
			}
		}
		links[ep] = append(links[ep], l)
	}
	// ownLinks are the endpoints a brand names itself.
	ownLinks := func(o *org) []link {
		var out []link
		for _, p := range o.portals {
			for _, ref := range p.endpoints {
				if ep := ix.endpoint(ref); ep != nil {
					l := link{org: o, portal: p.name, portalURL: p.url}
					out = append(out, l)
					linked(ep, l)
				}
			}
		}
		for _, ref := range o.refs {
			if ep := ix.endpoint(ref); ep != nil {
				l := link{org: o}
				if len(o.portals) > 0 {
					l.portal, l.portalURL = o.portals[0].name, o.portals[0].url
				}
				out = append(out, l)
				linked(ep, l)
			}
		}
		return out
	}
	for _, o := range ix.orgList {
		if len(ownLinks(o)) > 0 || o.partOf == "" {
			continue
		}
		// An affiliate brand: access is provided by its parent's portals.
		parent := ix.org(o.partOf)
		if parent == nil || parent == o {
			continue
		}
		for _, p := range parent.portals {
			for _, ref := range p.endpoints {
				if ep := ix.endpoint(ref); ep != nil {
					linked(ep, link{org: o, portal: p.name, portalURL: p.url, affiliate: true})
				}
			}
		}
		for _, ref := range parent.refs {
			if ep := ix.endpoint(ref); ep != nil {
				linked(ep, link{org: o, affiliate: true})
			}
		}
	}
	for _, ep := range ix.epList {
		if ep.managing == "" {
			continue
		}
		if o := ix.org(ep.managing); o != nil {
			linked(ep, link{org: o})
		}
	}

	seen := map[string]int{} // base -> index in out
	var out []Candidate
	for _, ep := range ix.epList {
		if ep.base == "" {
			continue
		}
		c := ix.candidate(ep, links[ep])
		if i, dup := seen[ep.base]; dup {
			// The same server listed twice: keep the first, richer name wins.
			if out[i].Brand == "" && c.Brand != "" {
				out[i] = c
			}
			continue
		}
		seen[ep.base] = len(out)
		out = append(out, c)
	}
	return out
}

func (ix *index) candidate(ep *endpoint, ls []link) Candidate {
	c := Candidate{FHIRBase: ep.base}
	if len(ls) == 0 {
		c.Brand = firstNonEmpty(ep.display, ep.name)
		c.DisplayName = c.Brand
		if c.DisplayName == "" {
			u, _ := url.Parse(ep.base)
			c.DisplayName = u.Host
			c.Brand = hostName(u)
		}
		return c
	}
	// The primary brand: the endpoint's managing organisation, else the
	// first brand that names the endpoint itself, else the first link.
	primary := ls[0]
	managing := ix.org(ep.managing)
	best := -1
	for _, l := range ls {
		score := 0
		if !l.affiliate {
			score = 1
		}
		if managing != nil && l.org == managing {
			score = 2
		}
		if score > best {
			best, primary = score, l
		}
	}
	c.Brand = firstNonEmpty(primary.org.name, ep.name, ep.display)
	display := c.Brand
	if primary.portal != "" && !strings.Contains(strings.ToLower(display), strings.ToLower(primary.portal)) {
		display += " (" + primary.portal + ")"
	}
	var also []string
	have := map[string]bool{strings.ToLower(c.Brand): true}
	addAlso := func(s string) {
		s = strings.TrimSpace(s)
		if s != "" && !have[strings.ToLower(s)] {
			have[strings.ToLower(s)] = true
			also = append(also, s)
		}
	}
	for _, l := range ls {
		addAlso(l.org.name)
	}
	for _, a := range primary.org.aliases {
		addAlso(a)
	}
	if len(also) > 0 {
		const show = 3
		if len(also) > show {
			display += "; also " + strings.Join(also[:show], ", ") + fmt.Sprintf(" and %d more", len(also)-show)
		} else {
			display += "; also " + strings.Join(also, ", ")
		}
	}
	c.DisplayName = display
	c.BrandURL = firstNonEmpty(primary.portalURL, primary.org.website)
	return c
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if strings.TrimSpace(s) != "" {
			return strings.TrimSpace(s)
		}
	}
	return ""
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

func anyPrefix(ss []string, prefix string) bool {
	for _, x := range ss {
		if strings.HasPrefix(x, prefix) {
			return true
		}
	}
	return false
}
