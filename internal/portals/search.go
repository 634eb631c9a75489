package portals

import (
	"context"
	"sort"
	"strings"

	"github.com/onerecord/onerecord/internal/store"
)

// Search returns the entries matching text, best first. Every word of text
// must occur (case-insensitively) in the name, display name, FHIR base or
// brand URL; an exact or leading name match ranks above a match inside the
// display name, which ranks above a match in a URL.
func (d *Directory) Search(ctx context.Context, text string) ([]store.Portal, error) {
	words := strings.Fields(strings.ToLower(text))
	if len(words) == 0 {
		return nil, nil
	}
	all, err := d.List(ctx)
	if err != nil {
		return nil, err
	}
	type hit struct {
		p     store.Portal
		score int
	}
	var hits []hit
	phrase := strings.Join(words, " ")
	for _, p := range all {
		name := p.Name
		display := strings.ToLower(p.DisplayName)
		urls := strings.ToLower(p.FHIRBase + " " + p.BrandURL)
		total := 0
		for _, w := range words {
			s := 0
			switch {
			case name == w:
				s = 100
			case strings.HasPrefix(name, w):
				s = 60
			case strings.Contains(name, w):
				s = 40
			}
			if ds := wordScore(display, w); ds > s {
				s = ds
			}
			if s == 0 && strings.Contains(urls, w) {
				s = 10
			}
			if s == 0 {
				total = 0
				break
			}
			total += s
		}
		if total == 0 {
			continue
		}
		if len(words) > 1 && strings.Contains(display, phrase) {
			total += 30 // the words in the order typed
		}
		hits = append(hits, hit{p, total})
	}
	sort.SliceStable(hits, func(i, j int) bool {
		if hits[i].score != hits[j].score {
			return hits[i].score > hits[j].score
		}
		return hits[i].p.Name < hits[j].p.Name
	})
	out := make([]store.Portal, len(hits))
	for i, h := range hits {
		out[i] = h.p
	}
	return out, nil
}

// wordScore scores w inside display text: at the start of a word beats
// inside a word.
func wordScore(display, w string) int {
	i := strings.Index(display, w)
	if i < 0 {
		return 0
	}
	for ; i >= 0; i = nextIndex(display, w, i) {
		if i == 0 || !isAlnum(display[i-1]) {
			if i == 0 {
				return 50
			}
			return 35
		}
	}
	return 20
}

func nextIndex(s, sub string, after int) int {
	j := strings.Index(s[after+1:], sub)
	if j < 0 {
		return -1
	}
	return after + 1 + j
}

func isAlnum(b byte) bool {
	return b >= 'a' && b <= 'z' || b >= '0' && b <= '9'
}
