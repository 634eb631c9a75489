package sandbox

import "sync"

// statsCounter is Stats behind a mutex.
type statsCounter struct {
	mu sync.Mutex
	s  Stats
}

func (c *statsCounter) do(fn func(*Stats)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	fn(&c.s)
}

func (c *statsCounter) authHeader() { c.do(func(s *Stats) { s.AuthHeaders++ }) }

func (c *statsCounter) fhir(typ string) {
	c.do(func(s *Stats) {
		s.FHIRRequests++
		if typ != "" {
			if s.ByType == nil {
				s.ByType = map[string]int{}
			}
			s.ByType[typ]++
		}
	})
}

// Stats returns a copy of the counters.
func (s *Server) Stats() Stats {
	var out Stats
	s.stats.do(func(st *Stats) {
		out = *st
		out.ByType = make(map[string]int, len(st.ByType))
		for k, v := range st.ByType {
			out.ByType[k] = v
		}
	})
	return out
}

// ResetStats zeroes the counters.
func (s *Server) ResetStats() { s.stats.do(func(st *Stats) { *st = Stats{} }) }
