package sandbox

import (
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sort"
	"strconv"
	"sync"
	"time"
)

// generatedAnchor is the fixed "present" of generated data: clinical dates and
// meta.lastUpdated lie before it, so a seed gives byte-identical resources on
// any day.
var generatedAnchor = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

const (
	sysLOINC    = "http://loinc.org"
	sysSNOMED   = "http://snomed.info/sct"
	sysRxNorm   = "http://www.nlm.nih.gov/research/umls/rxnorm"
	sysCVX      = "http://hl7.org/fhir/sid/cvx"
	sysUCUM     = "http://unitsofmeasure.org"
	sysObsCat   = "http://terminology.hl7.org/CodeSystem/observation-category"
	sysCondCat  = "http://terminology.hl7.org/CodeSystem/condition-category"
	sysCondClin = "http://terminology.hl7.org/CodeSystem/condition-clinical"
	sysCondVer  = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
	sysAllClin  = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"
	sysActCode  = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
	sysV20074   = "http://terminology.hl7.org/CodeSystem/v2-0074"
	sysCarePlan = "http://hl7.org/fhir/us/core/CodeSystem/careplan-category"
	sysDocCat   = "http://hl7.org/fhir/us/core/CodeSystem/us-core-documentreference-category"
	sysNPI      = "http://hl7.org/fhir/sid/us-npi"
	sysMRN      = "urn:oid:2.16.840.1.113883.19.5.99999.1"
)

type quantityCode struct {
	code, display, unit string
	lo, hi              float64
	decimals            int
}

var labCodes = []quantityCode{
	{"2339-0", "Glucose [Mass/volume] in Blood", "mg/dL", 70, 160, 0},
	{"2093-3", "Cholesterol [Mass/volume] in Serum or Plasma", "mg/dL", 140, 260, 0},
	{"2085-9", "Cholesterol in HDL [Mass/volume] in Serum or Plasma", "mg/dL", 35, 85, 0},
	{"18262-6", "Cholesterol in LDL [Mass/volume] in Serum or Plasma by Direct assay", "mg/dL", 60, 190, 0},
	{"2571-8", "Triglyceride [Mass/volume] in Serum or Plasma", "mg/dL", 50, 250, 0},
	{"4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood", "%", 4.6, 9.5, 1},
	{"718-7", "Hemoglobin [Mass/volume] in Blood", "g/dL", 11, 17, 1},
	{"2160-0", "Creatinine [Mass/volume] in Serum or Plasma", "mg/dL", 0.6, 1.4, 2},
	{"2951-2", "Sodium [Moles/volume] in Serum or Plasma", "mmol/L", 134, 146, 0},
	{"2823-3", "Potassium [Moles/volume] in Serum or Plasma", "mmol/L", 3.4, 5.2, 1},
	{"6690-2", "Leukocytes [#/volume] in Blood by Automated count", "10*3/uL", 3.8, 11, 1},
}

var vitalCodes = []quantityCode{
	{"8867-4", "Heart rate", "/min", 55, 100, 0},
	{"8480-6", "Systolic blood pressure", "mm[Hg]", 100, 150, 0},
	{"8462-4", "Diastolic blood pressure", "mm[Hg]", 60, 95, 0},
	{"29463-7", "Body weight", "kg", 50, 110, 1},
	{"8302-2", "Body height", "cm", 150, 195, 1},
	{"39156-5", "Body mass index (BMI) [Ratio]", "kg/m2", 18, 35, 1},
	{"8310-5", "Body temperature", "Cel", 36.1, 37.9, 1},
	{"9279-1", "Respiratory rate", "/min", 12, 20, 0},
	{"59408-5", "Oxygen saturation in Arterial blood by Pulse oximetry", "%", 94, 100, 0},
}

type coded struct{ code, display string }

var conditionCodes = []coded{
	{"44054006", "Diabetes mellitus type 2"}, {"38341003", "Hypertensive disorder"},
	{"195967001", "Asthma"}, {"55822004", "Hyperlipidemia"}, {"35489007", "Depressive disorder"},
	{"444814009", "Viral sinusitis"}, {"10509002", "Acute bronchitis"}, {"15777000", "Prediabetes"},
	{"239873007", "Osteoarthritis of knee"}, {"40055000", "Chronic sinusitis"},
}

var medicationCodes = []coded{
	{"860975", "24 HR Metformin hydrochloride 500 MG Extended Release Oral Tablet"},
	{"314076", "Lisinopril 10 MG Oral Tablet"}, {"197361", "Amlodipine 5 MG Oral Tablet"},
	{"617310", "Atorvastatin 20 MG Oral Tablet"}, {"310965", "Ibuprofen 200 MG Oral Tablet"},
	{"313782", "Acetaminophen 325 MG Oral Tablet"},
	{"745679", "200 ACTUAT Albuterol 0.09 MG/ACTUAT Metered Dose Inhaler"},
	{"312961", "Simvastatin 20 MG Oral Tablet"}, {"308182", "Amoxicillin 250 MG Oral Capsule"},
	{"866924", "Metoprolol Tartrate 25 MG Oral Tablet"},
}

var vaccineCodes = []coded{
	{"140", "Influenza, seasonal, injectable, preservative free"}, {"208", "SARS-COV-2 (COVID-19) vaccine, mRNA"},
	{"113", "Td (adult) preservative free"}, {"115", "Tdap"}, {"33", "pneumococcal polysaccharide vaccine, 23 valent"},
	{"133", "Pneumococcal conjugate PCV 13"}, {"62", "HPV, quadrivalent"}, {"121", "zoster vaccine, live"},
}

var procedureCodes = []coded{
	{"73761001", "Colonoscopy"}, {"430193006", "Medication reconciliation (procedure)"},
	{"710824005", "Assessment of health and social care needs"}, {"171207006", "Depression screening"},
	{"80146002", "Appendectomy"}, {"117015009", "Throat culture"}, {"76601001", "Intramuscular injection"},
}

var allergyCodes = []coded{
	{"91936005", "Allergy to penicillin"}, {"300916003", "Latex allergy"}, {"417532002", "Allergy to fish"},
	{"419474003", "Allergy to mould"}, {"232350006", "House dust mite allergy"}, {"91930004", "Allergy to eggs"},
}

var encounterTypes = []coded{
	{"185349003", "Encounter for check up"}, {"162673000", "General examination of patient"},
	{"185345009", "Encounter for symptom"}, {"390906007", "Follow-up encounter"},
}

var reportPanels = []coded{
	{"58410-2", "CBC panel - Blood by Automated count"}, {"51990-0", "Basic metabolic panel - Blood"},
	{"57698-3", "Lipid panel with direct LDL - Serum or Plasma"},
}

var noteTypes = []coded{
	{"11506-3", "Progress note"}, {"34117-2", "History and physical note"}, {"18842-5", "Discharge summary"},
}

var goalTexts = []string{
	"Keep HbA1c below 7%", "Walk 30 minutes five days a week", "Lower blood pressure below 130/80",
	"Reduce body weight by 5%", "Stop smoking",
}

var givenNames = []string{"Ava", "Liam", "Maria", "Noah", "Sofia", "James", "Amara", "Lucas", "Mei", "Omar", "Elena", "Kwame", "Hana", "Diego", "Grace", "Ravi"}
var familyNames = []string{"Garcia", "Smith", "Nguyen", "Okafor", "Johnson", "Kowalski", "Haddad", "Brown", "Tanaka", "Silva", "Müller", "Patel", "O'Brien", "Rossi"}
var cities = []struct{ city, state, zip string }{
	{"Springfield", "MA", "01103"}, {"Madison", "WI", "53703"}, {"Portland", "OR", "97205"},
	{"Austin", "TX", "78701"}, {"Columbus", "OH", "43215"}, {"Raleigh", "NC", "27601"},
}

// typeWeights are the share of each compartment type in a patient's record
// (Observation takes the rest), in the order small budgets are filled.
var typeWeights = []struct {
	typ string
	w   float64
}{
	{"Encounter", 0.08}, {"Condition", 0.04}, {"MedicationRequest", 0.05}, {"AllergyIntolerance", 0.01},
	{"Immunization", 0.04}, {"Procedure", 0.05}, {"DiagnosticReport", 0.05}, {"DocumentReference", 0.04},
	{"CarePlan", 0.01}, {"CareTeam", 0.01}, {"Goal", 0.01},
}

// planCounts splits a patient's budget (Patient included) over the types.
func planCounts(budget int) map[string]int {
	out := map[string]int{}
	rest := budget - 1
	if rest <= 0 {
		return out
	}
	if rest < len(typeWeights)+1 {
		out["Observation"] = 1
		for i := 0; i < rest-1; i++ {
			out[typeWeights[i].typ] = 1
		}
		return out
	}
	others := 0
	for _, tw := range typeWeights {
		n := max(1, int(float64(rest)*tw.w))
		out[tw.typ] = n
		others += n
	}
	out["Observation"] = rest - others
	return out
}

// generate fills d with the synthetic data for opts. Resources are built in
// batches and encoded on every CPU; the order, ids and bytes depend only on
// the seed and sizes.
func generate(d *db, opts Options) error {
	total, patients := opts.Resources, opts.Patients
	nOrg, nPract, nLoc, nMed := 1+total/20000, 2+total/4000, 1+total/20000, min(len(medicationCodes), 2+total/500)
	if total-(nOrg+nPract+nLoc+nMed) < patients*13 {
		nOrg, nPract, nLoc, nMed = 1, 1, 1, 1
	}
	budget := max(total-(nOrg+nPract+nLoc+nMed), patients)

	e := newEmitter()
	srng := rand.New(rand.NewPCG(uint64(opts.Seed), 0))
	g := &generator{e: e}
	for i := 1; i <= nOrg; i++ {
		g.orgs = append(g.orgs, g.organization(srng, i))
	}
	for i := 1; i <= nPract; i++ {
		g.practs = append(g.practs, g.practitioner(srng, i))
	}
	for i := 1; i <= nLoc; i++ {
		g.locs = append(g.locs, g.location(srng, i))
	}
	for i := 0; i < nMed; i++ {
		g.meds = append(g.meds, g.medication(srng, medicationCodes[i]))
	}
	for p := 0; p < patients; p++ {
		b := budget / patients
		if p < budget%patients {
			b++
		}
		rng := rand.New(rand.NewPCG(uint64(opts.Seed), uint64(p)+1))
		info := g.patient(rng, p+1, b)
		d.patients = append(d.patients, info)
	}
	rs, err := e.wait()
	if err != nil {
		return err
	}
	for _, r := range rs {
		d.put(r)
	}
	return nil
}

// emitter encodes generated resources in parallel batches, keeping order.
type emitter struct {
	batch []map[string]any
	mu    sync.Mutex
	out   [][]*resource
	err   error
	wg    sync.WaitGroup
	sem   chan struct{}
}

const emitBatch = 2048

func newEmitter() *emitter {
	return &emitter{sem: make(chan struct{}, runtime.GOMAXPROCS(0))}
}

func (e *emitter) emit(m map[string]any) {
	e.batch = append(e.batch, m)
	if len(e.batch) == emitBatch {
		e.flush()
	}
}

func (e *emitter) flush() {
	if len(e.batch) == 0 {
		return
	}
	b := e.batch
	e.batch = make([]map[string]any, 0, emitBatch)
	e.mu.Lock()
	idx := len(e.out)
	e.out = append(e.out, nil)
	e.mu.Unlock()
	e.sem <- struct{}{}
	e.wg.Add(1)
	go func() {
		defer func() { <-e.sem; e.wg.Done() }()
		rs := make([]*resource, 0, len(b))
		var firstErr error
		for _, m := range b {
			r, err := indexMap(m, generatedAnchor)
			if err != nil {
				firstErr = err
				break
			}
			rs = append(rs, r)
		}
		e.mu.Lock()
		e.out[idx] = rs
		if firstErr != nil && e.err == nil {
			e.err = firstErr
		}
		e.mu.Unlock()
	}()
}

func (e *emitter) wait() ([]*resource, error) {
	e.flush()
	e.wg.Wait()
	if e.err != nil {
		return nil, e.err
	}
	n := 0
	for _, b := range e.out {
		n += len(b)
	}
	all := make([]*resource, 0, n)
	for _, b := range e.out {
		all = append(all, b...)
	}
	return all, nil
}

type generator struct {
	e                        *emitter
	orgs, practs, locs, meds []string
}

func cc(system, code, display string) map[string]any {
	return map[string]any{"coding": []any{map[string]any{"system": system, "code": code, "display": display}}, "text": display}
}

func ref(s string) map[string]any { return map[string]any{"reference": s} }

func meta(version int, updated time.Time) map[string]any {
	return map[string]any{"versionId": strconv.Itoa(version), "lastUpdated": updated.Format(time.RFC3339)}
}

func pick[T any](rng *rand.Rand, xs []T) T { return xs[rng.IntN(len(xs))] }

func day(t time.Time) string { return t.Format("2006-01-02") }

// stamp is a lastUpdated a little after the clinical date, sometimes a
// later revision (version 2 or 3); never after the anchor.
func stamp(rng *rand.Rand, clinical time.Time) (int, time.Time) {
	t := clinical.Add(time.Duration(1+rng.IntN(72)) * time.Hour)
	v := 1
	if rng.IntN(10) == 0 {
		v = 2 + rng.IntN(2)
		t = t.Add(time.Duration(1+rng.IntN(200)) * 24 * time.Hour)
	}
	if !t.Before(generatedAnchor) {
		t = generatedAnchor.Add(-time.Duration(1+rng.IntN(3600)) * time.Second)
	}
	return v, t.Truncate(time.Second)
}

func address(rng *rand.Rand) []any {
	c := pick(rng, cities)
	return []any{map[string]any{
		"line": []any{fmt.Sprintf("%d %s Street", 1+rng.IntN(999), pick(rng, []string{"Maple", "Oak", "Main", "Cedar", "Elm"}))},
		"city": c.city, "state": c.state, "postalCode": c.zip, "country": "US",
	}}
}

func (g *generator) organization(rng *rand.Rand, i int) string {
	id := fmt.Sprintf("org-%d", i)
	name := fmt.Sprintf("%s %s", pick(rng, []string{"Riverside", "Lakeview", "Summit", "Valley", "Harbor"}), pick(rng, []string{"Health", "Medical Group", "Clinic", "Hospital"}))
	g.e.emit(map[string]any{
		"resourceType": "Organization", "id": id, "meta": meta(1, generatedAnchor.AddDate(-3, 0, -i)),
		"identifier": []any{map[string]any{"system": sysNPI, "value": fmt.Sprintf("1%09d", rng.IntN(1e9))}},
		"active":     true, "name": name, "address": address(rng),
		"telecom": []any{map[string]any{"system": "phone", "value": fmt.Sprintf("555-%04d", rng.IntN(10000))}},
	})
	return "Organization/" + id
}

func (g *generator) practitioner(rng *rand.Rand, i int) string {
	id := fmt.Sprintf("pract-%d", i)
	g.e.emit(map[string]any{
		"resourceType": "Practitioner", "id": id, "meta": meta(1, generatedAnchor.AddDate(-2, 0, -i)),
		"identifier": []any{map[string]any{"system": sysNPI, "value": fmt.Sprintf("1%09d", rng.IntN(1e9))}},
		"active":     true,
		"name":       []any{map[string]any{"family": pick(rng, familyNames), "given": []any{pick(rng, givenNames)}, "prefix": []any{"Dr."}}},
	})
	return "Practitioner/" + id
}

func (g *generator) location(rng *rand.Rand, i int) string {
	id := fmt.Sprintf("loc-%d", i)
	g.e.emit(map[string]any{
		"resourceType": "Location", "id": id, "meta": meta(1, generatedAnchor.AddDate(-3, -1, -i)),
		"status": "active", "name": fmt.Sprintf("%s Outpatient Center", pick(rng, []string{"North", "South", "East", "West", "Central"})),
		"address": address(rng)[0],
	})
	return "Location/" + id
}

func (g *generator) medication(rng *rand.Rand, c coded) string {
	id := "med-" + c.code
	g.e.emit(map[string]any{
		"resourceType": "Medication", "id": id, "meta": meta(1, generatedAnchor.AddDate(-4, 0, -rng.IntN(300))),
		"code": cc(sysRxNorm, c.code, c.display), "status": "active",
	})
	return "Medication/" + id
}

// patient emits one patient and its record (budget resources in all).
func (g *generator) patient(rng *rand.Rand, n, budget int) PatientInfo {
	pid := fmt.Sprintf("pat-%04d", n)
	pref := "Patient/" + pid
	given, family := pick(rng, givenNames), pick(rng, familyNames)
	birth := generatedAnchor.AddDate(-18-rng.IntN(72), 0, -rng.IntN(365))
	years := 2 + rng.IntN(14)
	start := generatedAnchor.AddDate(-years, 0, 0)
	span := generatedAnchor.Sub(start)
	gender := pick(rng, []string{"female", "male"})
	g.e.emit(map[string]any{
		"resourceType": "Patient", "id": pid, "meta": meta(1+rng.IntN(3), start.Add(span/2).Truncate(time.Second)),
		"identifier": []any{map[string]any{
			"use": "usual", "type": cc("http://terminology.hl7.org/CodeSystem/v2-0203", "MR", "Medical Record Number"),
			"system": sysMRN, "value": fmt.Sprintf("MRN%07d", rng.IntN(1e7)),
		}},
		"active":               true,
		"name":                 []any{map[string]any{"use": "official", "family": family, "given": []any{given}}},
		"gender":               gender,
		"birthDate":            day(birth),
		"address":              address(rng),
		"telecom":              []any{map[string]any{"system": "phone", "value": fmt.Sprintf("555-%04d", rng.IntN(10000)), "use": "home"}},
		"generalPractitioner":  []any{ref(pick(rng, g.practs))},
		"managingOrganization": ref(pick(rng, g.orgs)),
	})
	info := PatientInfo{ID: pid, Name: given + " " + family, BirthDate: day(birth)}

	counts := planCounts(budget)
	// Encounters first: the other resources hang off them.
	encDates := make([]time.Time, counts["Encounter"])
	for i := range encDates {
		encDates[i] = start.Add(time.Duration(rng.Int64N(int64(span)))).Truncate(time.Minute)
	}
	sort.Slice(encDates, func(i, j int) bool { return encDates[i].Before(encDates[j]) })
	encIDs := make([]string, len(encDates))
	for i, t := range encDates {
		id := fmt.Sprintf("%s-enc-%d", pid, i+1)
		encIDs[i] = "Encounter/" + id
		v, up := stamp(rng, t)
		et := pick(rng, encounterTypes)
		g.e.emit(map[string]any{
			"resourceType": "Encounter", "id": id, "meta": meta(v, up), "status": "finished",
			"class":           map[string]any{"system": sysActCode, "code": "AMB", "display": "ambulatory"},
			"type":            []any{cc(sysSNOMED, et.code, et.display)},
			"subject":         ref(pref),
			"participant":     []any{map[string]any{"individual": ref(pick(rng, g.practs))}},
			"period":          map[string]any{"start": t.Format(time.RFC3339), "end": t.Add(30 * time.Minute).Format(time.RFC3339)},
			"location":        []any{map[string]any{"location": ref(pick(rng, g.locs))}},
			"serviceProvider": ref(pick(rng, g.orgs)),
		})
	}
	// when picks a clinical time and, when there are encounters, one of them.
	when := func() (time.Time, string) {
		if len(encIDs) == 0 {
			return start.Add(time.Duration(rng.Int64N(int64(span)))).Truncate(time.Minute), ""
		}
		i := rng.IntN(len(encIDs))
		return encDates[i].Add(time.Duration(rng.IntN(30)) * time.Minute), encIDs[i]
	}
	withEnc := func(m map[string]any, enc string) map[string]any {
		if enc != "" {
			m["encounter"] = ref(enc)
		}
		return m
	}

	var labs []string
	for i := 0; i < counts["Observation"]; i++ {
		id := fmt.Sprintf("%s-obs-%d", pid, i+1)
		t, enc := when()
		v, up := stamp(rng, t)
		cat, catDisplay, qc := "vital-signs", "Vital Signs", pick(rng, vitalCodes)
		if rng.IntN(100) < 55 {
			cat, catDisplay, qc = "laboratory", "Laboratory", pick(rng, labCodes)
			labs = append(labs, "Observation/"+id)
		}
		val := qc.lo + rng.Float64()*(qc.hi-qc.lo)
		val, _ = strconv.ParseFloat(strconv.FormatFloat(val, 'f', qc.decimals, 64), 64)
		obs := map[string]any{
			"resourceType": "Observation", "id": id, "meta": meta(v, up), "status": "final",
			"category":          []any{cc(sysObsCat, cat, catDisplay)},
			"code":              cc(sysLOINC, qc.code, qc.display),
			"subject":           ref(pref),
			"effectiveDateTime": t.Format(time.RFC3339),
			"issued":            t.Add(2 * time.Hour).Format(time.RFC3339),
			"valueQuantity":     map[string]any{"value": val, "unit": qc.unit, "system": sysUCUM, "code": qc.unit},
		}
		if rng.IntN(4) == 0 {
			obs["performer"] = []any{ref(pick(rng, g.practs))}
		}
		g.e.emit(withEnc(obs, enc))
	}
	for i := 0; i < counts["Condition"]; i++ {
		id := fmt.Sprintf("%s-cond-%d", pid, i+1)
		t, enc := when()
		v, up := stamp(rng, t)
		c := pick(rng, conditionCodes)
		clin := pick(rng, []string{"active", "active", "resolved"})
		m := map[string]any{
			"resourceType": "Condition", "id": id, "meta": meta(v, up),
			"clinicalStatus":     cc(sysCondClin, clin, clin),
			"verificationStatus": cc(sysCondVer, "confirmed", "Confirmed"),
			"category":           []any{cc(sysCondCat, "encounter-diagnosis", "Encounter Diagnosis")},
			"code":               cc(sysSNOMED, c.code, c.display),
			"subject":            ref(pref),
			"onsetDateTime":      t.Format(time.RFC3339),
			"recordedDate":       t.Format(time.RFC3339),
		}
		if clin == "resolved" {
			m["abatementDateTime"] = t.AddDate(0, 1+rng.IntN(6), 0).Format(time.RFC3339)
		}
		g.e.emit(withEnc(m, enc))
	}
	for i := 0; i < counts["MedicationRequest"]; i++ {
		id := fmt.Sprintf("%s-medrx-%d", pid, i+1)
		t, enc := when()
		v, up := stamp(rng, t)
		med := pick(rng, g.meds)
		g.e.emit(withEnc(map[string]any{
			"resourceType": "MedicationRequest", "id": id, "meta": meta(v, up),
			"status": pick(rng, []string{"active", "completed", "stopped"}), "intent": "order",
			"category":            []any{cc("http://terminology.hl7.org/CodeSystem/medicationrequest-category", "community", "Community")},
			"medicationReference": ref(med),
			"subject":             ref(pref),
			"authoredOn":          t.Format(time.RFC3339),
			"requester":           ref(pick(rng, g.practs)),
			"dosageInstruction":   []any{map[string]any{"text": pick(rng, []string{"Take 1 tablet by mouth daily", "Take 1 tablet twice a day", "Use as needed"})}},
		}, enc))
	}
	for i := 0; i < counts["AllergyIntolerance"]; i++ {
		id := fmt.Sprintf("%s-allergy-%d", pid, i+1)
		t, _ := when()
		v, up := stamp(rng, t)
		c := pick(rng, allergyCodes)
		g.e.emit(map[string]any{
			"resourceType": "AllergyIntolerance", "id": id, "meta": meta(v, up),
			"clinicalStatus":     cc(sysAllClin, "active", "Active"),
			"verificationStatus": cc("http://terminology.hl7.org/CodeSystem/allergyintolerance-verification", "confirmed", "Confirmed"),
			"type":               "allergy", "category": []any{pick(rng, []string{"medication", "food", "environment"})},
			"criticality":  pick(rng, []string{"low", "high"}),
			"code":         cc(sysSNOMED, c.code, c.display),
			"patient":      ref(pref),
			"recordedDate": t.Format(time.RFC3339),
		})
	}
	for i := 0; i < counts["Immunization"]; i++ {
		id := fmt.Sprintf("%s-imm-%d", pid, i+1)
		t, enc := when()
		v, up := stamp(rng, t)
		c := pick(rng, vaccineCodes)
		g.e.emit(withEnc(map[string]any{
			"resourceType": "Immunization", "id": id, "meta": meta(v, up), "status": "completed",
			"vaccineCode":        cc(sysCVX, c.code, c.display),
			"patient":            ref(pref),
			"occurrenceDateTime": t.Format(time.RFC3339),
			"primarySource":      true,
			"location":           ref(pick(rng, g.locs)),
		}, enc))
	}
	for i := 0; i < counts["Procedure"]; i++ {
		id := fmt.Sprintf("%s-proc-%d", pid, i+1)
		t, enc := when()
		v, up := stamp(rng, t)
		c := pick(rng, procedureCodes)
		g.e.emit(withEnc(map[string]any{
			"resourceType": "Procedure", "id": id, "meta": meta(v, up), "status": "completed",
			"code":              cc(sysSNOMED, c.code, c.display),
			"subject":           ref(pref),
			"performedDateTime": t.Format(time.RFC3339),
			"performer":         []any{map[string]any{"actor": ref(pick(rng, g.practs))}},
			"location":          ref(pick(rng, g.locs)),
		}, enc))
	}
	for i := 0; i < counts["DiagnosticReport"]; i++ {
		id := fmt.Sprintf("%s-report-%d", pid, i+1)
		t, enc := when()
		v, up := stamp(rng, t)
		c := pick(rng, reportPanels)
		var results []any
		for k := 0; k < 3 && len(labs) > 0; k++ {
			results = append(results, ref(pick(rng, labs)))
		}
		m := map[string]any{
			"resourceType": "DiagnosticReport", "id": id, "meta": meta(v, up), "status": "final",
			"category":          []any{cc(sysV20074, "LAB", "Laboratory")},
			"code":              cc(sysLOINC, c.code, c.display),
			"subject":           ref(pref),
			"effectiveDateTime": t.Format(time.RFC3339),
			"issued":            t.Add(4 * time.Hour).Format(time.RFC3339),
			"performer":         []any{ref(pick(rng, g.orgs))},
		}
		if len(results) > 0 {
			m["result"] = results
		}
		g.e.emit(withEnc(m, enc))
	}
	for i := 0; i < counts["DocumentReference"]; i++ {
		id := fmt.Sprintf("%s-doc-%d", pid, i+1)
		t, enc := when()
		v, up := stamp(rng, t)
		c := pick(rng, noteTypes)
		note := fmt.Sprintf("%s for %s %s on %s.\nPatient seen; vitals reviewed; plan discussed.\n", c.display, given, family, day(t))
		docCtx := map[string]any{"period": map[string]any{"start": t.Format(time.RFC3339)}}
		if enc != "" {
			docCtx["encounter"] = []any{ref(enc)}
		}
		g.e.emit(map[string]any{
			"resourceType": "DocumentReference", "id": id, "meta": meta(v, up), "status": "current",
			"type":      cc(sysLOINC, c.code, c.display),
			"category":  []any{cc(sysDocCat, "clinical-note", "Clinical Note")},
			"subject":   ref(pref),
			"date":      t.Format(time.RFC3339),
			"author":    []any{ref(pick(rng, g.practs))},
			"custodian": ref(pick(rng, g.orgs)),
			"content": []any{map[string]any{"attachment": map[string]any{
				"contentType": "text/plain", "data": base64.StdEncoding.EncodeToString([]byte(note)),
				"title": c.display, "creation": t.Format(time.RFC3339),
			}}},
			"context": docCtx,
		})
	}
	for i := 0; i < counts["CarePlan"]; i++ {
		id := fmt.Sprintf("%s-careplan-%d", pid, i+1)
		t, enc := when()
		v, up := stamp(rng, t)
		g.e.emit(withEnc(map[string]any{
			"resourceType": "CarePlan", "id": id, "meta": meta(v, up),
			"text":   map[string]any{"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">Care plan: diet, exercise and follow-up visits.</div>"},
			"status": pick(rng, []string{"active", "completed"}), "intent": "plan",
			"category": []any{cc(sysCarePlan, "assess-plan", "Assessment and Plan of Treatment")},
			"subject":  ref(pref),
			"period":   map[string]any{"start": t.Format(time.RFC3339)},
		}, enc))
	}
	for i := 0; i < counts["CareTeam"]; i++ {
		id := fmt.Sprintf("%s-careteam-%d", pid, i+1)
		t, enc := when()
		v, up := stamp(rng, t)
		g.e.emit(withEnc(map[string]any{
			"resourceType": "CareTeam", "id": id, "meta": meta(v, up), "status": "active",
			"subject": ref(pref),
			"period":  map[string]any{"start": t.Format(time.RFC3339)},
			"participant": []any{map[string]any{
				"role":   []any{cc(sysSNOMED, "446050000", "Primary care physician")},
				"member": ref(pick(rng, g.practs)),
			}},
			"managingOrganization": []any{ref(pick(rng, g.orgs))},
		}, enc))
	}
	for i := 0; i < counts["Goal"]; i++ {
		id := fmt.Sprintf("%s-goal-%d", pid, i+1)
		t, _ := when()
		v, up := stamp(rng, t)
		g.e.emit(map[string]any{
			"resourceType": "Goal", "id": id, "meta": meta(v, up),
			"lifecycleStatus": pick(rng, []string{"active", "completed"}),
			"description":     map[string]any{"text": pick(rng, goalTexts)},
			"subject":         ref(pref),
			"startDate":       day(t),
			"target":          []any{map[string]any{"dueDate": day(t.AddDate(0, 6, 0))}},
		})
	}
	return info
}
