package smart

import (
	"context"
	"strings"
	"testing"
)

// Some servers quote what they were sent in error_description. The
// description is shown to the person and printed with --debug, so a code,
// verifier, refresh token, token or client secret echoed there is cut out.
func TestTokenErrorsDoNotEchoSecrets(t *testing.T) {
	const (
		code     = "CODE-abcdef123456"
		refresh  = "RT-abcdef123456"
		secret   = "SECRET-abcdef123456"
		access   = "AT-abcdef123456"
		verifier = "the-verifier-value-0123456789-abcdefghijklmnopqrstuvw"
	)
	ctx := context.Background()
	echo := func(words ...string) string {
		return `{"error":"invalid_grant","error_description":"rejected ` + strings.Join(words, " and ") + `"}`
	}
	check := func(name string, err error, secrets ...string) {
		t.Helper()
		if err == nil {
			t.Fatalf("%s: no error", name)
		}
		for _, s := range secrets {
			if strings.Contains(err.Error(), s) {
				t.Errorf("%s: error carries %q: %v", name, s, err)
			}
		}
		if !strings.Contains(err.Error(), "rejected") {
			t.Errorf("%s: the rest of the description was lost: %v", name, err)
		}
	}

	ts := newTokenServer(t, 400, "application/json", echo(code, verifier, secret))
	req := &AuthRequest{ClientID: "c", RedirectURI: "http://127.0.0.1:1/callback", Verifier: verifier}
	_, err := Exchange(ctx, ts.Client(), ts.config(), req, secret, code)
	check("exchange", err, code, verifier, secret)

	ts = newTokenServer(t, 400, "application/json", echo(refresh, secret))
	_, err = Refresh(ctx, ts.Client(), ts.config(), "c", secret, refresh)
	check("refresh", err, refresh, secret)

	ts = newTokenServer(t, 400, "application/json", echo(access, secret))
	err = Revoke(ctx, ts.Client(), ts.config(), "c", secret, access, "access_token")
	check("revoke", err, access, secret)
}
