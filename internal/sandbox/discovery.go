package sandbox

import (
	"net/http"
)

func (s *Server) handleSmartConfig(w http.ResponseWriter, r *http.Request) {
	o := s.origin(r)
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer":                                s.baseFor(r),
		"authorization_endpoint":                o + "/auth/authorize",
		"token_endpoint":                        o + "/auth/token",
		"revocation_endpoint":                   o + "/auth/revoke",
		"management_endpoint":                   o + "/auth/manage",
		"token_endpoint_auth_methods_supported": []string{"none", "client_secret_post", "client_secret_basic"},
		"grant_types_supported":                 []string{"authorization_code", "refresh_token"},
		"response_types_supported":              []string{"code"},
		"code_challenge_methods_supported":      []string{"S256"},
		"scopes_supported": []string{
			"openid", "fhirUser", "launch/patient", "offline_access", "online_access",
			"patient/*.rs", "patient/*.read",
		},
		"capabilities": []string{
			"launch-standalone", "context-standalone-patient", "client-public",
			"client-confidential-symmetric", "sso-openid-connect", "permission-offline",
			"permission-online", "permission-patient", "permission-v1", "permission-v2",
		},
	})
}

// searchParams are the search parameters each type supports (besides _id,
// _count and, unless switched off, _lastUpdated).
func searchParams(typ string) []string {
	switch typ {
	case "Patient":
		return []string{"_id"}
	case "Practitioner", "Organization", "Location", "Medication":
		return []string{"_id"}
	case "Observation", "CarePlan", "Condition", "DiagnosticReport", "DocumentReference":
		return []string{"patient", "subject", "category", "code", "date", "status"}
	case "MedicationRequest":
		return []string{"patient", "subject", "intent", "status", "code", "date", "category"}
	case "AllergyIntolerance":
		return []string{"patient", "category", "code", "date", "status"}
	case "Immunization", "Procedure", "Encounter":
		return []string{"patient", "subject", "code", "date", "status"}
	case "CareTeam", "Goal":
		return []string{"patient", "subject", "status", "date", "category"}
	}
	return []string{"patient"}
}

var paramTypes = map[string]string{
	"_id": "token", "patient": "reference", "subject": "reference", "category": "token", "code": "token",
	"date": "date", "status": "token", "intent": "token", "_lastUpdated": "date", "_count": "number",
}

func (s *Server) handleMetadata(w http.ResponseWriter, r *http.Request) {
	o := s.origin(r)
	f := s.currentFaults()
	var resources []any
	for _, typ := range servedTypes {
		var params []any
		names := append([]string{}, searchParams(typ)...)
		if typ != "Patient" && typ != "Practitioner" && typ != "Organization" && typ != "Location" && typ != "Medication" {
			names = append(names, "_id")
		}
		if !f.NoLastUpdated {
			names = append(names, "_lastUpdated")
		}
		names = append(names, "_count")
		for _, n := range names {
			params = append(params, map[string]any{"name": n, "type": paramTypes[n]})
		}
		resources = append(resources, map[string]any{
			"type":        typ,
			"interaction": []any{map[string]any{"code": "read"}, map[string]any{"code": "search-type"}},
			"searchParam": params,
		})
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"resourceType": "CapabilityStatement",
		"status":       "active",
		"date":         generatedAnchor.Format("2006-01-02"),
		"kind":         "instance",
		"software":     map[string]any{"name": "onerecord sandbox portal"},
		"implementation": map[string]any{
			"description": "onerecord sandbox SMART on FHIR portal (synthetic data)",
			"url":         s.baseFor(r),
		},
		"fhirVersion": "4.0.1",
		"format":      []string{"json"},
		"rest": []any{map[string]any{
			"mode": "server",
			"security": map[string]any{
				"service": []any{map[string]any{"coding": []any{map[string]any{
					"system": "http://terminology.hl7.org/CodeSystem/restful-security-service", "code": "SMART-on-FHIR",
				}}}},
				"extension": []any{map[string]any{
					"url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
					"extension": []any{
						map[string]any{"url": "authorize", "valueUri": o + "/auth/authorize"},
						map[string]any{"url": "token", "valueUri": o + "/auth/token"},
						map[string]any{"url": "revoke", "valueUri": o + "/auth/revoke"},
						map[string]any{"url": "manage", "valueUri": o + "/auth/manage"},
					},
				}},
			},
			"resource": resources,
		}},
	})
}
