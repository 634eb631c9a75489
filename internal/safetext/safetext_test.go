package safetext

import "testing"

func TestClean(t *testing.T) {
	tests := []struct {
		in   string
		max  int
		want string
	}{
		{"plain", 10, "plain"},
		{"  a \t\n b  ", 10, "a b"},
		{"red\x1b[31mtext\x07", 20, "red[31mtext"},
		{"bad \xff utf8", 20, "bad utf8"},
		{"abcdefghij", 4, "abcd..."},
	}
	for _, tt := range tests {
		if got := Clean(tt.in, tt.max); got != tt.want {
			t.Errorf("Clean(%q, %d) = %q, want %q", tt.in, tt.max, got, tt.want)
		}
	}
}
