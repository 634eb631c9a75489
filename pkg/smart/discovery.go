package smart

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
)

// maxDiscoveryBody bounds what discovery reads: CapabilityStatements of big
// servers run to a few hundred kilobytes.
const maxDiscoveryBody = 16 << 20

const oauthURIsExtension = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"
const capabilitiesExtension = "http://fhir-registry.smarthealthit.org/StructureDefinition/capabilities"

// CheckBase parses a FHIR base URL and refuses non-https except loopback http.
// Errors are *DiscoveryError (Kind "insecure", wrapping ErrInsecureBase, or
// "invalid").
func CheckBase(base string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimSpace(base))
	if err != nil {
		return nil, &DiscoveryError{Base: base, Kind: KindInvalidBase, Err: errors.New("cannot parse the URL")}
	}
	invalid := func(why string) (*url.URL, error) {
		return nil, &DiscoveryError{Base: base, Kind: KindInvalidBase, Err: errors.New(why)}
	}
	switch {
	case u.Scheme != "https" && u.Scheme != "http":
		return invalid("the URL must start with https://")
	case u.Host == "" || u.Hostname() == "":
		return invalid("the URL has no host")
	case u.User != nil:
		return invalid("the URL must not contain a user name or password")
	case u.RawQuery != "" || u.Fragment != "":
		return invalid("a FHIR base URL has no query (?) or fragment (#)")
	}
	if u.Scheme == "http" && !IsLoopbackHost(u.Hostname()) {
		return nil, &DiscoveryError{Base: base, Kind: KindInsecure, Err: ErrInsecureBase}
	}
	return u, nil
}

// IsLoopbackHost reports whether host (without port) is localhost, an
// address in 127.0.0.0/8 or ::1.
func IsLoopbackHost(host string) bool {
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// ParseConfiguration reads a SMART configuration document, e.g. one cached
// from Configuration.Raw. It checks the endpoints like Discover does.
func ParseConfiguration(raw []byte) (*Configuration, error) {
	var cfg Configuration
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return nil, fmt.Errorf("smart: parse configuration: %w", err)
	}
	cfg.Source = SourceWellKnown
	cfg.Raw = append(json.RawMessage(nil), raw...)
	if err := checkEndpoints(&cfg); err != nil {
		return nil, fmt.Errorf("smart: configuration: %w", err)
	}
	return &cfg, nil
}

// Discover fetches {base}/.well-known/smart-configuration, falling back to the
// oauth-uris extension of {base}/metadata. Errors are *DiscoveryError.
func Discover(ctx context.Context, hc *http.Client, base string) (*Configuration, error) {
	u, err := CheckBase(base)
	if err != nil {
		return nil, err
	}
	// A redirect to plain http would let anyone on the network answer with
	// their own token endpoint.
	hc = guardRedirects(hc, false)
	root := strings.TrimRight(u.String(), "/")

	cfg, wkErr := discoverWellKnown(ctx, hc, root)
	if wkErr == nil {
		return cfg, nil
	}
	if wkErr.Kind == KindNetwork || ctx.Err() != nil {
		wkErr.Base = base
		return nil, wkErr
	}
	cfg, mdErr := discoverMetadata(ctx, hc, root)
	if mdErr == nil {
		return cfg, nil
	}
	// Report what the well-known document said unless it simply was not
	// there: then the metadata answer is the more telling one.
	report := wkErr
	if wkErr.Kind == KindNotFound {
		report = mdErr
	}
	report.Base = base
	return nil, report
}

func discoverWellKnown(ctx context.Context, hc *http.Client, root string) (*Configuration, *DiscoveryError) {
	body, derr := fetchJSON(ctx, hc, root+"/.well-known/smart-configuration", "application/json")
	if derr != nil {
		return nil, derr
	}
	cfg, err := ParseConfiguration(body)
	if err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return nil, &DiscoveryError{Kind: KindNotJSON, Status: http.StatusOK, Err: errors.New("invalid JSON")}
		}
		kind := KindIncomplete
		if errors.Is(err, ErrInsecureBase) {
			kind = KindInsecure
		}
		return nil, &DiscoveryError{Kind: kind, Err: errors.Unwrap(err)}
	}
	return cfg, nil
}

// capabilityStatement is the part of a CapabilityStatement discovery reads.
type capabilityStatement struct {
	ResourceType string `json:"resourceType"`
	Rest         []struct {
		Security struct {
			Extension []extension `json:"extension"`
		} `json:"security"`
	} `json:"rest"`
}

type extension struct {
	URL       string      `json:"url"`
	ValueURI  string      `json:"valueUri"`
	ValueURL  string      `json:"valueUrl"`
	ValueCode string      `json:"valueCode"`
	Extension []extension `json:"extension"`
}

func discoverMetadata(ctx context.Context, hc *http.Client, root string) (*Configuration, *DiscoveryError) {
	body, derr := fetchJSON(ctx, hc, root+"/metadata", "application/fhir+json, application/json;q=0.9")
	if derr != nil {
		return nil, derr
	}
	var cs capabilityStatement
	if err := json.Unmarshal(body, &cs); err != nil {
		return nil, &DiscoveryError{Kind: KindNotJSON, Status: http.StatusOK, Err: errors.New("invalid JSON")}
	}
	if cs.ResourceType != "CapabilityStatement" && cs.ResourceType != "Conformance" {
		return nil, &DiscoveryError{Kind: KindIncomplete, Err: errors.New("metadata is not a CapabilityStatement")}
	}
	cfg := &Configuration{Source: SourceMetadata, CapabilityStatement: body}
	for _, rest := range cs.Rest {
		for _, ext := range rest.Security.Extension {
			switch ext.URL {
			case oauthURIsExtension:
				for _, sub := range ext.Extension {
					v := sub.ValueURI
					if v == "" {
						v = sub.ValueURL
					}
					switch sub.URL {
					case "authorize":
						cfg.AuthorizationEndpoint = v
					case "token":
						cfg.TokenEndpoint = v
					case "revoke":
						cfg.RevocationEndpoint = v
					case "manage":
						cfg.ManagementEndpoint = v
					case "register":
						cfg.RegistrationEndpoint = v
					}
				}
			case capabilitiesExtension:
				if ext.ValueCode != "" {
					cfg.Capabilities = append(cfg.Capabilities, ext.ValueCode)
				}
			}
		}
	}
	if err := checkEndpoints(cfg); err != nil {
		kind := KindIncomplete
		if errors.Is(err, ErrInsecureBase) {
			kind = KindInsecure
		}
		return nil, &DiscoveryError{Kind: kind, Err: err}
	}
	raw, err := json.Marshal(cfg)
	if err != nil {
		return nil, &DiscoveryError{Kind: KindIncomplete, Err: err}
	}
	cfg.Raw = raw
	return cfg, nil
}

// checkEndpoints requires the authorization and token endpoints, and every
// endpoint that will see a code, a token or a client secret to be https (or
// loopback http).
func checkEndpoints(cfg *Configuration) error {
	if cfg.AuthorizationEndpoint == "" || cfg.TokenEndpoint == "" {
		return errors.New("no authorization_endpoint or token_endpoint")
	}
	for _, ep := range []struct{ name, v string }{
		{"authorization_endpoint", cfg.AuthorizationEndpoint},
		{"token_endpoint", cfg.TokenEndpoint},
		{"revocation_endpoint", cfg.RevocationEndpoint},
	} {
		if ep.v == "" {
			continue
		}
		u, err := url.Parse(ep.v)
		if err != nil || !u.IsAbs() || u.Host == "" {
			return fmt.Errorf("%s is not an absolute URL", ep.name)
		}
		switch {
		case u.Scheme == "https":
		case u.Scheme == "http" && IsLoopbackHost(u.Hostname()):
		case u.Scheme == "http":
			return fmt.Errorf("%s: %w", ep.name, ErrInsecureBase)
		default:
			return fmt.Errorf("%s is not an http(s) URL", ep.name)
		}
	}
	return nil
}

// fetchJSON GETs u and returns a 200 body that looks like JSON.
func fetchJSON(ctx context.Context, hc *http.Client, u, accept string) ([]byte, *DiscoveryError) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, &DiscoveryError{Kind: KindInvalidBase, Err: errors.New("cannot build the request URL")}
	}
	req.Header.Set("Accept", accept)
	resp, err := hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, &DiscoveryError{Kind: KindNetwork, Err: ctx.Err()}
		}
		var ue *url.Error
		if errors.As(err, &ue) && errors.Is(err, ErrInsecureBase) {
			return nil, &DiscoveryError{Kind: KindInsecure, Err: ue.Err}
		}
		return nil, &DiscoveryError{Kind: KindNetwork, Err: err}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDiscoveryBody+1))
	if err != nil {
		return nil, &DiscoveryError{Kind: KindNetwork, Status: resp.StatusCode, Err: fmt.Errorf("reading the answer: %w", err)}
	}
	if len(body) > maxDiscoveryBody {
		return nil, &DiscoveryError{Kind: KindHTTPStatus, Status: resp.StatusCode, Err: errors.New("answer too large")}
	}
	switch {
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusGone:
		return nil, &DiscoveryError{Kind: KindNotFound, Status: resp.StatusCode}
	case resp.StatusCode != http.StatusOK:
		return nil, &DiscoveryError{Kind: KindHTTPStatus, Status: resp.StatusCode}
	}
	if looksHTML(resp.Header.Get("Content-Type"), body) {
		return nil, &DiscoveryError{Kind: KindNotJSON, Status: resp.StatusCode, Err: errors.New("got an HTML page")}
	}
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return nil, &DiscoveryError{Kind: KindNotJSON, Status: resp.StatusCode, Err: errors.New("the body is not a JSON object")}
	}
	return body, nil
}

func looksHTML(contentType string, body []byte) bool {
	mt, _, _ := mime.ParseMediaType(contentType)
	if mt == "text/html" || mt == "application/xhtml+xml" {
		return true
	}
	t := bytes.TrimSpace(body)
	return len(t) > 0 && t[0] == '<' && bytes.Contains(bytes.ToLower(t[:min(len(t), 512)]), []byte("<html"))
}
