package fhir

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
)

// maxResourceBody bounds a single read; FHIR resources that hold documents
// inline (Binary, DocumentReference) can be large, but not unbounded.
const maxResourceBody = 64 << 20

// ValidType reports whether typ has the syntax of a FHIR resource type
// name: a capital letter, then letters, 64 at most.
func ValidType(typ string) bool {
	if len(typ) == 0 || len(typ) > 64 || typ[0] < 'A' || typ[0] > 'Z' {
		return false
	}
	for i := 1; i < len(typ); i++ {
		if c := typ[i] | 0x20; c < 'a' || c > 'z' {
			return false
		}
	}
	return true
}

// ValidID reports whether id has the syntax of a FHIR id (letters, digits,
// '-' and '.', 1 to 64 of them), checked by hand: a regular expression
// with a bounded repeat of 64 is compiled into a large program at start-up,
// which every command paid for.
func ValidID(id string) bool {
	if len(id) == 0 || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c|0x20 && c|0x20 <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// Read fetches {base}/{typ}/{id}.
//
// The resource is returned as the server sent it. It must be JSON with the
// asked resourceType and id, or the error wraps ErrMalformed.
func (c *Client) Read(ctx context.Context, typ, id string) (json.RawMessage, error) {
	if !ValidType(typ) {
		return nil, fmt.Errorf("fhir: read: %q is not a FHIR resource type", typ)
	}
	if !ValidID(id) || id == "." || id == ".." {
		return nil, fmt.Errorf("fhir: read %s: not a valid FHIR id", typ)
	}
	u, err := c.resolve(typ + "/" + id)
	if err != nil {
		return nil, err
	}
	return c.readResource(ctx, u, typ, id)
}

// ReadReference fetches the resource a reference points at: relative to the
// base ("Practitioner/12", "Practitioner/12/_history/3") or an absolute URL,
// which must be under the base (else the error wraps ErrForeignURL and no
// request is made). Contained ("#x") and logical references are refused.
func (c *Client) ReadReference(ctx context.Context, ref string) (json.RawMessage, error) {
	if ref == "" || strings.HasPrefix(ref, "#") {
		return nil, fmt.Errorf("fhir: read reference: %q is not a resource URL", ref)
	}
	u, err := c.resolve(ref)
	if err != nil {
		return nil, err
	}
	rel := strings.TrimPrefix(u.Path, c.base.Path+"/")
	parts := strings.Split(rel, "/")
	if (len(parts) != 2 && !(len(parts) == 4 && parts[2] == "_history")) ||
		!ValidType(parts[0]) || !ValidID(parts[1]) || u.RawQuery != "" {
		return nil, fmt.Errorf("fhir: read reference %s: not a Type/id reference", safeURL(u))
	}
	return c.readResource(ctx, u, parts[0], parts[1])
}

func (c *Client) readResource(ctx context.Context, u *url.URL, typ, id string) (json.RawMessage, error) {
	resp, err := c.get(ctx, u, nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, err := readJSONObject(resp, maxResourceBody)
	if err != nil {
		return nil, decodeFailure(ctx, u, err)
	}
	var h resourceHeader
	if err := json.Unmarshal(raw, &h); err != nil {
		return nil, decodeFailure(ctx, u, err)
	}
	switch {
	case h.ResourceType == "" || h.ID == "":
		err = malformed("the resource has no resourceType or id")
	case h.ResourceType != typ:
		err = malformed("asked for a %s, got a %s", typ, h.ResourceType)
	case h.ID != id:
		err = malformed("asked for one %s, got another (different id)", typ)
	}
	if err != nil {
		return nil, decodeFailure(ctx, u, err)
	}
	return raw, nil
}
