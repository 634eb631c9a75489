package sandbox

import (
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// consentForm fetches the consent page and returns the hidden request id.
func consentForm(t *testing.T, f *authFlow) (string, string) {
	t.Helper()
	resp, err := noRedirect.Get(f.authorizeURL())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	page := string(b)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("consent page: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	for _, want := range []string{`id="approve"`, `id="deny"`, `method="post"`} {
		if !strings.Contains(page, want) {
			t.Fatalf("consent page lacks %s", want)
		}
	}
	m := regexp.MustCompile(`name="request" value="([^"]+)"`).FindStringSubmatch(page)
	if m == nil {
		t.Fatal("no request id in the form")
	}
	return m[1], page
}

func postConsent(t *testing.T, base string, form url.Values) *http.Response {
	t.Helper()
	resp, err := noRedirect.PostForm(strings.TrimSuffix(base, "/fhir")+"/auth/consent", form)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

func TestConsentDeny(t *testing.T) {
	_, base := start(t, Options{})
	f := newFlow(base)
	id, _ := consentForm(t, f)
	resp := postConsent(t, base, url.Values{"request": {id}, "decision": {"deny"}})
	q := redirectQuery(t, resp, f.redirect)
	if q.Get("error") != "access_denied" || q.Get("state") != f.state || q.Get("code") != "" {
		t.Fatalf("deny redirect: %v", q)
	}
	// The request is spent.
	if resp := postConsent(t, base, url.Values{"request": {id}, "decision": {"approve"}}); resp.StatusCode != 400 {
		t.Fatalf("second decision on one request: %d", resp.StatusCode)
	}
}

func TestConsentApproveChoosesPatientAndScopes(t *testing.T) {
	s, base := start(t, Options{Patients: 3, Resources: 600})
	f := newFlow(base)
	f.clientID = `app "<b>x</b>"`
	id, page := consentForm(t, f)
	if strings.Contains(page, "<b>x</b>") || !strings.Contains(page, "&lt;b&gt;") {
		t.Fatal("client id is not escaped on the consent page")
	}
	pats := s.Patients()
	for _, p := range pats {
		if !strings.Contains(page, `value="`+p.ID+`"`) {
			t.Fatalf("patient chooser lacks %s", p.ID)
		}
	}
	// Untick patient/*.rs; keep the rest; pick the second patient.
	form := url.Values{"request": {id}, "decision": {"approve"}, "patient": {pats[1].ID},
		"scope": {"openid", "fhirUser", "offline_access", "launch/patient"}}
	resp := postConsent(t, base, form)
	q := redirectQuery(t, resp, f.redirect)
	if q.Get("state") != f.state || q.Get("code") == "" {
		t.Fatalf("approve redirect: %v", q)
	}
	tr := f.exchange(t, q.Get("code"))
	if tr.status != 200 || tr.str("patient") != pats[1].ID || tr.str("scope") != "openid fhirUser offline_access launch/patient" {
		t.Fatalf("token after consent: %v", tr.body)
	}
	// No resource scope granted: FHIR answers 403.
	if st, _, _, _ := get(t, base+"/Observation", tr.str("access_token")); st != 403 {
		t.Fatalf("search without a granted resource scope: %d", st)
	}

	// An unknown patient id is refused.
	id, _ = consentForm(t, f)
	if resp := postConsent(t, base, url.Values{"request": {id}, "decision": {"approve"}, "patient": {"nobody"}}); resp.StatusCode != 400 {
		t.Fatalf("unknown patient: %d", resp.StatusCode)
	}
}
