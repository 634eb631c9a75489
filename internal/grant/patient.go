package grant

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"unicode"

	"github.com/onerecord/onerecord/pkg/fhir"
)

// validFHIRID reports whether id has the FHIR id syntax; anything else never
// goes into a URL path.
func validFHIRID(id string) bool { return fhir.ValidID(id) && id != "." && id != ".." }

// patientInfo is what connect shows about whose record was granted.
type patientInfo struct {
	Name, BirthDate string
}

// getPatient reads {base}/Patient/{id} with the bearer token. The token goes
// to the FHIR base only: redirects are not followed.
func (m *Manager) getPatient(ctx context.Context, base, id, accessToken string) (int, *patientInfo, error) {
	if !validFHIRID(id) {
		return 0, nil, fmt.Errorf("grant: patient id is not a FHIR id")
	}
	u := strings.TrimRight(base, "/") + "/Patient/" + url.PathEscape(id)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+accessToken)
	req.Header.Set("Accept", "application/fhir+json, application/json")
	hc := *m.httpClient()
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := hc.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("read the Patient: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return resp.StatusCode, nil, fmt.Errorf("read the Patient: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, nil, nil
	}
	info, err := parsePatient(body)
	return resp.StatusCode, info, err
}

func parsePatient(body []byte) (*patientInfo, error) {
	var pt struct {
		ResourceType string `json:"resourceType"`
		BirthDate    string `json:"birthDate"`
		Name         []struct {
			Use    string   `json:"use"`
			Text   string   `json:"text"`
			Family string   `json:"family"`
			Given  []string `json:"given"`
		} `json:"name"`
	}
	if err := json.Unmarshal(body, &pt); err != nil {
		return nil, errors.New("read the Patient: the answer is not FHIR JSON")
	}
	if pt.ResourceType != "Patient" {
		return nil, errors.New("read the Patient: the answer is not a Patient")
	}
	info := &patientInfo{BirthDate: cleanLine(pt.BirthDate)}
	best := -1
	for i, n := range pt.Name {
		if best == -1 || n.Use == "official" || (n.Use == "usual" && pt.Name[best].Use != "official") {
			best = i
		}
	}
	if best >= 0 {
		n := pt.Name[best]
		parts := append(append([]string(nil), n.Given...), n.Family)
		name := strings.Join(strings.Fields(strings.Join(parts, " ")), " ")
		if name == "" {
			name = n.Text
		}
		info.Name = cleanLine(name)
	}
	return info, nil
}

// cleanLine makes server-supplied text safe to print on a terminal.
func cleanLine(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case unicode.IsSpace(r):
			b.WriteByte(' ')
		case unicode.IsControl(r) || r == unicode.ReplacementChar:
		default:
			b.WriteRune(r)
		}
		if b.Len() > 200 {
			break
		}
	}
	return strings.Join(strings.Fields(b.String()), " ")
}

// fetchCapability returns the server's CapabilityStatement, or nil when it
// cannot be had (the query planner fetches it again then). It goes through
// the FHIR client, which reads a bounded body and follows no redirect off
// the FHIR base (so never to plain http on another host).
func (m *Manager) fetchCapability(ctx context.Context, base string) json.RawMessage {
	c, err := fhir.New(fhir.Options{Base: base, HTTP: m.httpClient(), MaxAttempts: 1})
	if err != nil {
		return nil
	}
	caps, err := c.Capabilities(ctx)
	if err != nil {
		return nil
	}
	return caps.Raw
}
