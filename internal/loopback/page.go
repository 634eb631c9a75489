package loopback

import (
	"bytes"
	"html/template"
	"net/http"
)

type pageKind int

const (
	pageSuccess pageKind = iota
	pageAuthError
	pageStateMismatch
	pageMissingCode
	pageAlreadyDone
)

type pageData struct {
	Title   string
	Message string
	Code    string // the OAuth error code, never the authorization code
	Detail  string
	OK      bool
}

// The template escapes every value it interpolates (html/template).
var pageTemplate = template.Must(template.New("page").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>onerecord: {{.Title}}</title>
<style>
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;max-width:34em;margin:4em auto;padding:0 1em;color:#222;line-height:1.5}
h1{font-size:1.4em}.ok{color:#17663a}.bad{color:#9b1c1c}code{background:#f3f3f3;padding:0 .2em}
</style>
</head>
<body>
<h1 class="{{if .OK}}ok{{else}}bad{{end}}">{{.Title}}</h1>
<p>{{.Message}}</p>
{{- if .Code}}
<p>The portal said: <code>{{.Code}}</code>{{if .Detail}}: {{.Detail}}{{end}}</p>
{{- end}}
<p>You can close this tab and return to the terminal.</p>
</body>
</html>
`))

func writePage(w http.ResponseWriter, status int, kind pageKind, ae *AuthorizationError) {
	var d pageData
	switch kind {
	case pageSuccess:
		d = pageData{OK: true, Title: "Signed in", Message: "onerecord received the portal's answer and is finishing the connection."}
	case pageAuthError:
		d = pageData{Title: "Access not granted", Message: "The portal did not grant onerecord access.", Code: ae.Code, Detail: ae.Description}
		if ae.Denied() {
			d.Message = "You declined access on the portal's page, so onerecord did not connect."
		}
	case pageStateMismatch:
		d = pageData{Title: "Unexpected sign-in answer", Message: "This answer does not belong to the sign-in onerecord is waiting for, so it was ignored. If you started a new sign-in, finish it in the tab that onerecord opened last."}
	case pageMissingCode:
		d = pageData{Title: "Sign-in incomplete", Message: "The portal's answer had no authorization code, so onerecord could not connect."}
	case pageAlreadyDone:
		d = pageData{Title: "Already done", Message: "onerecord already received an answer for this sign-in."}
	}
	var buf bytes.Buffer
	if err := pageTemplate.Execute(&buf, d); err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}
