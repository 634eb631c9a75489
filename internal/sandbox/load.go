package sandbox

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// loadDir loads every *.json file in dir: a Bundle (transaction, batch,
// collection, searchset, ...) or a single resource. Entries addressed by
// urn:uuid fullUrls (as Synthea writes them) get ids and their references
// are rewritten to Type/id.
func (s *Server) loadDir(dir string) error {
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return fmt.Errorf("sandbox: data dir: %w", err)
	}
	if len(files) == 0 {
		return fmt.Errorf("sandbox: no *.json files in %s", dir)
	}
	sort.Strings(files)
	for _, f := range files {
		if err := s.loadFile(f); err != nil {
			return err
		}
	}
	return nil
}

func (s *Server) loadFile(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("sandbox: load: %w", err)
	}
	var top map[string]any
	if err := json.Unmarshal(b, &top); err != nil {
		return fmt.Errorf("sandbox: load %s: %w", filepath.Base(path), err)
	}
	var resources []map[string]any
	if top["resourceType"] == "Bundle" {
		entries, _ := top["entry"].([]any)
		rename := map[string]string{}
		for i, e := range entries {
			em, _ := e.(map[string]any)
			res, _ := em["resource"].(map[string]any)
			if res == nil {
				continue
			}
			typ, _ := res["resourceType"].(string)
			if typ == "" {
				return fmt.Errorf("sandbox: load %s: entry %d has no resourceType", filepath.Base(path), i)
			}
			full, _ := em["fullUrl"].(string)
			if id, _ := res["id"].(string); id == "" {
				switch {
				case strings.HasPrefix(full, "urn:uuid:"):
					res["id"] = strings.TrimPrefix(full, "urn:uuid:")
				default:
					res["id"] = fmt.Sprintf("%s-%s-%d", strings.TrimSuffix(filepath.Base(path), ".json"), strings.ToLower(typ), i+1)
				}
			}
			if full != "" {
				rename[full] = typ + "/" + res["id"].(string)
			}
			resources = append(resources, res)
		}
		for _, res := range resources {
			rewriteRefs(res, rename)
		}
	} else {
		resources = append(resources, top)
	}
	now := s.now()
	s.data.mu.Lock()
	defer s.data.mu.Unlock()
	for _, res := range resources {
		r, err := indexMap(res, now)
		if err != nil {
			return fmt.Errorf("sandbox: load %s: %w", filepath.Base(path), err)
		}
		isNew := s.data.get(r.typ, r.id) == nil
		s.data.put(r)
		if r.typ == "Patient" && isNew {
			s.data.patients = append(s.data.patients, patientInfo(res))
		}
	}
	return nil
}

func rewriteRefs(v any, rename map[string]string) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if s, ok := e.(string); ok && k == "reference" {
				if to, ok := rename[s]; ok {
					x[k] = to
				}
				continue
			}
			rewriteRefs(e, rename)
		}
	case []any:
		for _, e := range x {
			rewriteRefs(e, rename)
		}
	}
}
