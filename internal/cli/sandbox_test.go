package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/onerecord/onerecord/internal/term"
)

// lockedBuffer is a bytes.Buffer safe to read while a command writes to it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestSandboxCommand runs `onerecord sandbox` until it prints its base URL
// on the first line of stdout, talks to it over HTTP, then stops it the way
// Ctrl-C does and expects exit 0.
func TestSandboxCommand(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ios, _, _, _ := term.Test()
	out, errOut := &lockedBuffer{}, &lockedBuffer{}
	ios.Out, ios.ErrOut = out, errOut
	done := make(chan int, 1)
	go func() {
		done <- Run(ctx, ios, []string{"--home", t.TempDir(), "sandbox", "--addr", "127.0.0.1:0", "--resources", "80", "--patients", "2"})
	}()

	var base string
	deadline := time.Now().Add(30 * time.Second)
	for base == "" {
		if time.Now().After(deadline) {
			t.Fatalf("no base URL on stdout after 30s; stderr:\n%s", errOut.String())
		}
		select {
		case code := <-done:
			t.Fatalf("sandbox exited early with %d; stderr:\n%s", code, errOut.String())
		case <-time.After(20 * time.Millisecond):
		}
		if first, _, ok := strings.Cut(out.String(), "\n"); ok {
			base = first
		}
	}
	if !strings.HasPrefix(base, "http://127.0.0.1:") || !strings.HasSuffix(base, "/fhir") {
		t.Fatalf("first stdout line %q is not a loopback FHIR base", base)
	}
	resp, err := http.Get(base + "/.well-known/smart-configuration")
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Authorization string   `json:"authorization_endpoint"`
		Methods       []string `json:"code_challenge_methods_supported"`
	}
	err = json.NewDecoder(resp.Body).Decode(&cfg)
	resp.Body.Close()
	if err != nil || cfg.Authorization == "" || len(cfg.Methods) != 1 || cfg.Methods[0] != "S256" {
		t.Fatalf("discovery: %+v, %v", cfg, err)
	}
	if !strings.Contains(errOut.String(), "onerecord-sandbox") || strings.Count(errOut.String(), "patient ") < 2 {
		t.Errorf("stderr does not describe the client id and both patients:\n%s", errOut.String())
	}

	cancel()
	select {
	case code := <-done:
		if code != ExitOK {
			t.Fatalf("sandbox exit %d after Ctrl-C, want 0", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("sandbox did not stop after its context ended")
	}
}
