package sandbox

import (
	"html/template"
	"net/http"
	"strings"
)

var pageStyle = `body{font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem;color:#222}
h1{font-size:1.4rem}fieldset{border:1px solid #ccc;border-radius:6px;margin:1rem 0}label{display:block;margin:.3rem 0}
button{font-size:1rem;padding:.5rem 1.2rem;margin-right:.5rem}#approve{background:#1a7f37;color:#fff;border:0;border-radius:4px}
#deny{background:#eee;border:1px solid #aaa;border-radius:4px}.note{color:#555;font-size:.9rem}`

var consentTmpl = template.Must(template.New("consent").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Sandbox portal: share your records?</title>
<style>` + pageStyle + `</style></head>
<body>
<h1>Sandbox Health Portal</h1>
<p>The app <strong>{{.ClientID}}</strong> asks to read your health records.</p>
<p class="note">This is the onerecord sandbox: a test portal with synthetic patients. No password is needed.</p>
<form method="post" action="/auth/consent">
<input type="hidden" name="request" value="{{.Request}}">
{{if gt (len .Patients) 1}}<fieldset><legend>Whose records?</legend>
{{range $i, $p := .Patients}}<label><input type="radio" name="patient" value="{{$p.ID}}"{{if eq $i 0}} checked{{end}}> {{$p.Name}} (born {{$p.BirthDate}})</label>
{{end}}</fieldset>{{else}}{{range .Patients}}<p>Signed in as <strong>{{.Name}}</strong> (born {{.BirthDate}}).</p>{{end}}{{end}}
<fieldset><legend>What the app may do (untick to refuse)</legend>
{{range .Scopes}}<label><input type="checkbox" name="scope" value="{{.Scope}}" checked> {{.Text}} <code>{{.Scope}}</code></label>
{{end}}</fieldset>
<button type="submit" name="decision" value="approve" id="approve">Allow access</button>
<button type="submit" name="decision" value="deny" id="deny">Deny</button>
</form>
</body></html>
`))

var errorTmpl = template.Must(template.New("error").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Sandbox portal: error</title>
<style>` + pageStyle + `</style></head>
<body><h1>Sandbox Health Portal</h1><p>{{.}}</p></body></html>
`))

var manageTmpl = template.Must(template.New("manage").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Sandbox portal: apps with access</title>
<style>` + pageStyle + `</style></head>
<body><h1>Apps with access to your records</h1>
{{if .}}<ul>{{range .}}<li><strong>{{.ClientID}}</strong> for patient {{.Patient}}: {{.Scopes}}{{if .Revoked}} (revoked){{end}}</li>{{end}}</ul>
<form method="post" action="/_control/revoke"><button type="submit" id="revoke-all">Revoke every app's access</button></form>
{{else}}<p>No app has access.</p>{{end}}
</body></html>
`))

type scopeLine struct{ Scope, Text string }

// describeScope says in plain words what a scope lets an app do.
func describeScope(sc string) string {
	switch {
	case sc == "openid" || sc == "fhirUser" || sc == "profile":
		return "Know who you are"
	case sc == "offline_access":
		return "Keep access when you are not using the app"
	case sc == "online_access":
		return "Keep access while you use the app"
	case strings.HasPrefix(sc, "launch"):
		return "Know which patient's record is open"
	case strings.HasPrefix(sc, "patient/*") || strings.HasPrefix(sc, "user/*"):
		return "Read all your health records"
	case strings.HasPrefix(sc, "patient/") || strings.HasPrefix(sc, "user/"):
		t, _, _ := strings.Cut(sc[strings.Index(sc, "/")+1:], ".")
		return "Read your " + t + " records"
	}
	return "Other permission"
}

func (s *Server) consentPage(w http.ResponseWriter, requestID string, req authRequest, patients []PatientInfo) {
	var lines []scopeLine
	for _, sc := range req.scopes {
		lines = append(lines, scopeLine{Scope: sc, Text: describeScope(sc)})
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Frame-Options", "DENY")
	_ = consentTmpl.Execute(w, map[string]any{
		"ClientID": req.clientID, "Request": requestID, "Patients": patients, "Scopes": lines,
	})
}

func (s *Server) errorPage(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_ = errorTmpl.Execute(w, msg)
}

func (s *Server) handleManage(w http.ResponseWriter, r *http.Request) {
	type row struct {
		ClientID, Patient, Scopes string
		Revoked                   bool
	}
	var rows []row
	s.auth.mu.Lock()
	for _, g := range s.auth.grants {
		rows = append(rows, row{g.clientID, g.patient, strings.Join(g.scopes, " "), g.revoked})
	}
	s.auth.mu.Unlock()
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = manageTmpl.Execute(w, rows)
}
