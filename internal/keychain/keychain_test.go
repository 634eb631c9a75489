package keychain

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	keyring "github.com/zalando/go-keyring"
)

// fakeBackend is an in-memory platform keychain with go-keyring's
// behaviour (ErrNotFound, a size limit like Windows') and hooks to inject
// failures and hangs.
type fakeBackend struct {
	mu      sync.Mutex
	entries map[string]string // account -> value (one service)
	limit   int               // >0: Set of a longer value fails like Windows
	calls   int
	// hook, when set, runs before each operation; a non-nil error is
	// returned instead of doing it.
	hook func(op, account, value string) error
}

func newFake() *fakeBackend { return &fakeBackend{entries: map[string]string{}} }

func (f *fakeBackend) before(op, account, value string) error {
	f.mu.Lock()
	f.calls++
	hook := f.hook
	f.mu.Unlock()
	if hook != nil {
		return hook(op, account, value)
	}
	return nil
}

func (f *fakeBackend) Get(service, account string) (string, error) {
	if err := f.before("get", account, ""); err != nil {
		return "", err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.entries[account]
	if !ok {
		return "", keyring.ErrNotFound
	}
	return v, nil
}

func (f *fakeBackend) Set(service, account, value string) error {
	if err := f.before("set", account, value); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.limit > 0 && len(value) > f.limit {
		return keyring.ErrSetDataTooBig
	}
	f.entries[account] = value
	return nil
}

func (f *fakeBackend) Delete(service, account string) error {
	if err := f.before("delete", account, ""); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.entries[account]; !ok {
		return keyring.ErrNotFound
	}
	delete(f.entries, account)
	return nil
}

func (f *fakeBackend) names() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Sorted(maps.Keys(f.entries))
}

func (f *fakeBackend) put(account, value string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.entries[account] = value
}

func (f *fakeBackend) value(account string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.entries[account]
}

func (f *fakeBackend) remove(account string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.entries, account)
}

func (f *fakeBackend) setHook(h func(op, account, value string) error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hook = h
}

func newTestKeychain(opts Options) (*Keychain, *fakeBackend) {
	f := newFake()
	k := New(opts)
	k.backend = f
	return k, f
}

func randomBytes(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// tokenJSON is a token-set-like JSON text of about n bytes.
func tokenJSON(t testing.TB, n int) []byte {
	t.Helper()
	pad := base64.RawURLEncoding.EncodeToString(randomBytes(t, n))
	s := fmt.Sprintf(`{"access_token":%q,"refresh_token":"r-%x","token_type":"Bearer"}`, pad[:max(0, n-80)], randomBytes(t, 8))
	return []byte(s)
}

func chunkNames(account string, n int) []string {
	names := []string{account}
	for i := 1; i < n; i++ {
		names = append(names, chunkAccount(account, i))
	}
	slices.Sort(names)
	return names
}

func TestRoundTrip(t *testing.T) {
	ctx := context.Background()
	multiByte := []byte(strings.Repeat("é€😀a", 200)) // 2-, 3- and 4-byte runes
	tests := []struct {
		name      string
		value     []byte
		chunkSize int
	}{
		{"empty", []byte{}, 0},
		{"short text", []byte(`{"access_token":"a"}`), 0},
		{"8 KB token set", tokenJSON(t, 8192), 0},
		{"8 KB binary", randomBytes(t, 8192), 0},
		{"NUL in text", []byte("a\x00b"), 0},
		{"multi-byte text, tiny chunks", multiByte, MinChunkSize},
		{"exactly one chunk's room", bytes.Repeat([]byte("x"), 100), 140},
		{"chunk size below minimum is raised", tokenJSON(t, 500), 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, f := newTestKeychain(Options{ChunkSize: tt.chunkSize})
			size := k.chunkSize()
			if err := k.Set(ctx, "portal-a", tt.value); err != nil {
				t.Fatal(err)
			}
			names := f.names()
			text := utf8.Valid(tt.value) && !bytes.Contains(tt.value, []byte{0})
			for _, n := range names {
				v := f.value(n)
				if len(v) > size {
					t.Errorf("entry %q is %d bytes, more than the chunk size %d", n, len(v), size)
				}
				if !utf8.ValidString(v) {
					t.Errorf("entry %q is not valid UTF-8 (a text-only provider would mangle it)", n)
				}
				if text && n != "portal-a" && !strings.Contains(string(tt.value), v) {
					t.Errorf("text value was not stored as is: chunk %q not found in the value", n)
				}
			}
			h, _, err := parseMain(f.value("portal-a"))
			if err != nil {
				t.Fatal(err)
			}
			if want := chunkNames("portal-a", h.count); !slices.Equal(names, want) {
				t.Errorf("entries = %q, want %q", names, want)
			}
			got, err := k.Get(ctx, "portal-a")
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tt.value) {
				t.Fatalf("got %d bytes back, want the %d stored", len(got), len(tt.value))
			}
		})
	}
}

func TestEightKilobytesAreChunked(t *testing.T) {
	k, f := newTestKeychain(Options{})
	f.limit = 2560 // Windows' per-credential limit
	v := tokenJSON(t, 8192)
	if err := k.Set(context.Background(), "p", v); err != nil {
		t.Fatal(err)
	}
	if n := len(f.names()); n < 5 {
		t.Fatalf("8 KB stored in %d entries; want at least 5 of at most %d bytes", n, DefaultChunkSize)
	}
}

func TestDefaultChunkSizeFitsPlatformLimits(t *testing.T) {
	// Worst case entry: binary data (base64) filling the default chunk.
	entries, err := encodeEntries(randomBytes(t, 20000), DefaultChunkSize)
	if err != nil {
		t.Fatal(err)
	}
	longest := 0
	for _, e := range entries {
		longest = max(longest, len(e))
	}
	if longest > DefaultChunkSize {
		t.Fatalf("entry of %d bytes exceeds the chunk size", longest)
	}
	// Windows: go-keyring refuses blobs over 2560 bytes.
	if longest > 2560 {
		t.Errorf("entry of %d bytes exceeds Windows' 2560", longest)
	}
	// macOS: go-keyring stores "go-keyring-base64:" + base64(entry) in a
	// `security -i` command under 4096 bytes, and service+account+value
	// should stay under about 3000.
	account := strings.Repeat("a", MaxAccountLen)
	macValue := len("go-keyring-base64:") + base64.StdEncoding.EncodedLen(longest)
	command := len("add-generic-password -U -s "+Service+" -a "+account+" -w \n") + 4 + macValue
	if command >= 4096 {
		t.Errorf("macOS command would be %d bytes", command)
	}
	if total := len(Service) + len(account) + macValue; total > 3000 {
		t.Errorf("macOS service+account+value would be %d bytes", total)
	}
}

func TestOverwriteWithShorterValueRemovesStaleChunks(t *testing.T) {
	ctx := context.Background()
	k, f := newTestKeychain(Options{})
	if err := k.Set(ctx, "p", tokenJSON(t, 8192)); err != nil {
		t.Fatal(err)
	}
	long := len(f.names())
	short := tokenJSON(t, 2500) // two entries
	if err := k.Set(ctx, "p", short); err != nil {
		t.Fatal(err)
	}
	if got, want := f.names(), chunkNames("p", 2); !slices.Equal(got, want) {
		t.Fatalf("after overwrite (from %d entries) entries = %q, want %q", long, got, want)
	}
	got, err := k.Get(ctx, "p")
	if err != nil || !bytes.Equal(got, short) {
		t.Fatalf("Get after overwrite = %d bytes, %v", len(got), err)
	}
	if err := k.Set(ctx, "p", []byte("tiny")); err != nil {
		t.Fatal(err)
	}
	if got := f.names(); !slices.Equal(got, []string{"p"}) {
		t.Fatalf("entries = %q, want only the main one", got)
	}
}

func TestDeleteRemovesEverything(t *testing.T) {
	ctx := context.Background()
	k, f := newTestKeychain(Options{})
	if err := k.Set(ctx, "p", tokenJSON(t, 8192)); err != nil {
		t.Fatal(err)
	}
	if err := k.Set(ctx, "other", []byte("keep me")); err != nil {
		t.Fatal(err)
	}
	if err := k.Delete(ctx, "p"); err != nil {
		t.Fatal(err)
	}
	if got := f.names(); !slices.Equal(got, []string{"other"}) {
		t.Fatalf("entries after delete = %q", got)
	}
	if _, err := k.Get(ctx, "p"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get after delete: %v, want ErrNotFound", err)
	}
	if err := k.Delete(ctx, "p"); err != nil {
		t.Fatalf("deleting a missing entry: %v", err)
	}
}

func TestStrayChunksAreCleanedUp(t *testing.T) {
	ctx := context.Background()
	for _, op := range []string{"set", "delete"} {
		t.Run(op, func(t *testing.T) {
			k, f := newTestKeychain(Options{})
			if err := k.Set(ctx, "p", tokenJSON(t, 3000)); err != nil { // 2 entries
				t.Fatal(err)
			}
			// Left behind by an earlier write interrupted mid-cleanup.
			f.put(chunkAccount("p", 2), "stale")
			f.put(chunkAccount("p", 3), "stale")
			var err error
			want := []string{"p"}
			if op == "set" {
				err = k.Set(ctx, "p", []byte("x"))
			} else {
				err = k.Delete(ctx, "p")
				want = []string{}
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := f.names(); !slices.Equal(got, want) {
				t.Fatalf("entries = %q, want %q", got, want)
			}
		})
	}
}

func TestDamagedEntriesAreReportedNotJoined(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name   string
		damage func(t *testing.T, k *Keychain, f *fakeBackend)
		want   string
	}{
		{"missing chunk", func(t *testing.T, k *Keychain, f *fakeBackend) {
			f.remove(chunkAccount("p", 2))
		}, "chunk 2 of"},
		{"altered chunk", func(t *testing.T, k *Keychain, f *fakeBackend) {
			f.put(chunkAccount("p", 1), strings.Repeat("A", len(f.value(chunkAccount("p", 1)))))
		}, "checksum"},
		{"chunk from a previous value", func(t *testing.T, k *Keychain, f *fakeBackend) {
			old := f.value(chunkAccount("p", 1))
			if err := k.Set(ctx, "p", tokenJSON(t, 8192)); err != nil {
				t.Fatal(err)
			}
			f.put(chunkAccount("p", 1), old)
		}, "checksum"},
		{"not written by onerecord", func(t *testing.T, k *Keychain, f *fakeBackend) {
			f.put("p", "hunter2")
		}, "not written by onerecord"},
		{"truncated header", func(t *testing.T, k *Keychain, f *fakeBackend) {
			f.put("p", headerMagic+"t:3")
		}, "truncated header"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, f := newTestKeychain(Options{})
			if err := k.Set(ctx, "p", tokenJSON(t, 8192)); err != nil {
				t.Fatal(err)
			}
			tt.damage(t, k, f)
			got, err := k.Get(ctx, "p")
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Get = %d bytes, %v; want ErrCorrupt", len(got), err)
			}
			if errors.Is(err, ErrNotFound) {
				t.Errorf("a damaged entry must not look like a missing one: %v", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not mention %q", err, tt.want)
			}
			if hint := err.(interface{ Hint() string }).Hint(); !strings.Contains(hint, "onerecord connect") {
				t.Errorf("hint %q does not say to reconnect", hint)
			}
			// Delete still cleans up whatever is there.
			if err := k.Delete(ctx, "p"); err != nil {
				t.Fatal(err)
			}
			if got := f.names(); len(got) != 0 {
				t.Fatalf("entries after delete = %q", got)
			}
		})
	}
}

func TestInterruptedSetNeverYieldsAWrongValue(t *testing.T) {
	ctx := context.Background()
	k, f := newTestKeychain(Options{})
	if err := k.Set(ctx, "p", tokenJSON(t, 8192)); err != nil {
		t.Fatal(err)
	}
	// The write of the main entry fails after the new chunks were written.
	boom := errors.New("disk on fire")
	f.setHook(func(op, account, value string) error {
		if op == "set" && account == "p" {
			return boom
		}
		return nil
	})
	err := k.Set(ctx, "p", tokenJSON(t, 8192))
	if !errors.Is(err, boom) {
		t.Fatalf("Set = %v, want the platform's error", err)
	}
	f.setHook(nil)
	if _, err := k.Get(ctx, "p"); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Get after interrupted Set = %v, want ErrCorrupt", err)
	}
	v := tokenJSON(t, 4000)
	if err := k.Set(ctx, "p", v); err != nil {
		t.Fatal(err)
	}
	if got, err := k.Get(ctx, "p"); err != nil || !bytes.Equal(got, v) {
		t.Fatalf("a new Set does not repair the entry: %v", err)
	}
}

func TestHungKeychainTimesOut(t *testing.T) {
	k, f := newTestKeychain(Options{Timeout: 50 * time.Millisecond})
	release := make(chan struct{})
	defer close(release)
	f.setHook(func(op, account, value string) error {
		if account == "hung" {
			<-release
		}
		return nil
	})
	ctx := context.Background()
	for _, op := range []struct {
		name string
		do   func() error
	}{
		{"get", func() error { _, err := k.Get(ctx, "hung"); return err }},
		{"set", func() error { return k.Set(ctx, "hung", []byte("v")) }},
		{"delete", func() error { return k.Delete(ctx, "hung") }},
		{"get again (lock released)", func() error { _, err := k.Get(ctx, "hung"); return err }},
	} {
		err := op.do()
		if !errors.Is(err, ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%s: %v, want ErrTimeout", op.name, err)
		}
		if h := err.(*Error).Hint(); h == "" {
			t.Errorf("%s: no hint", op.name)
		}
	}
	// Other accounts are not blocked by the parked calls.
	if err := k.Set(ctx, "fine", []byte("v")); err != nil {
		t.Fatal(err)
	}
}

func TestCallerCancellationStopsWaiting(t *testing.T) {
	k, f := newTestKeychain(Options{Timeout: time.Hour})
	release := make(chan struct{})
	defer close(release)
	started := make(chan struct{}, 1)
	f.setHook(func(op, account, value string) error {
		started <- struct{}{}
		<-release
		return nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-started; cancel() }()
	_, err := k.Get(ctx, "p")
	if !errors.Is(err, ErrTimeout) || !errors.Is(err, context.Canceled) {
		t.Fatalf("Get = %v, want ErrTimeout wrapping context.Canceled", err)
	}
}

func TestPlatformErrorsAreClassified(t *testing.T) {
	tests := []struct {
		err  error
		kind error
	}{
		{keyring.ErrNotFound, ErrNotFound},
		{keyring.ErrUnsupportedPlatform, ErrUnsupported},
		{fmt.Errorf("wrapped: %w", keyring.ErrUnsupportedPlatform), ErrUnsupported},
		{context.DeadlineExceeded, ErrTimeout},
		{errors.New("something else"), nil},
	}
	tests = append(tests, platformClassifyCases...)
	for _, tt := range tests {
		t.Run(tt.err.Error(), func(t *testing.T) {
			k, f := newTestKeychain(Options{})
			f.setHook(func(op, account, value string) error { return tt.err })
			_, err := k.Get(context.Background(), "p")
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("Get = %T %v, want *Error", err, err)
			}
			if e.Kind != tt.kind {
				t.Fatalf("kind = %v, want %v", e.Kind, tt.kind)
			}
			if tt.kind != nil && !errors.Is(err, tt.kind) {
				t.Errorf("errors.Is(err, %v) is false", tt.kind)
			}
			// (dbus.Error is not comparable, so errors.Is cannot find it.)
			if e.Err == nil || e.Err.Error() != tt.err.Error() {
				t.Errorf("the platform's error is not kept: %v", e.Err)
			}
			if tt.kind != nil && e.Hint() == "" {
				t.Errorf("no hint for %v", tt.kind)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, `keychain: get "p": `) || strings.HasSuffix(msg, ".") {
				t.Errorf("message %q: want `keychain: get \"p\": ...`, no trailing period", msg)
			}
		})
	}
}

func TestErrorsNeverContainTheSecret(t *testing.T) {
	ctx := context.Background()
	secret := tokenJSON(t, 5000)
	k, f := newTestKeychain(Options{})
	// A platform that echoes what it was asked to store in its error.
	f.setHook(func(op, account, value string) error {
		if op == "set" {
			return fmt.Errorf("cannot store %s for %s", value, account)
		}
		return nil
	})
	err := k.Set(ctx, "p", secret)
	if err == nil {
		t.Fatal("Set succeeded")
	}
	msg := err.Error()
	if strings.Contains(msg, string(secret[20:60])) {
		t.Fatalf("error text contains part of the secret: %.200s", msg)
	}
	if !strings.Contains(msg, "[redacted]") {
		t.Errorf("error text %q lost its redaction marker", msg)
	}
}

func TestAccountNamesAreChecked(t *testing.T) {
	ctx := context.Background()
	for _, account := range []string{"", "a#1", strings.Repeat("x", MaxAccountLen+1), "a\nb", "\xff"} {
		for name, s := range map[string]Secrets{"keychain": func() Secrets { k, _ := newTestKeychain(Options{}); return k }(), "memory": NewMemory()} {
			if err := s.Set(ctx, account, []byte("v")); err == nil {
				t.Errorf("%s: Set(%q) succeeded", name, account)
			}
			if _, err := s.Get(ctx, account); err == nil || errors.Is(err, ErrNotFound) {
				t.Errorf("%s: Get(%q) = %v, want a name error", name, account, err)
			}
		}
	}
}

func TestConcurrentWritersNeverInterleaveChunks(t *testing.T) {
	ctx := context.Background()
	k, _ := newTestKeychain(Options{ChunkSize: 256})
	values := make([][]byte, 8)
	for i := range values {
		values[i] = tokenJSON(t, 1000+300*i)
	}
	var wg sync.WaitGroup
	for i := range values {
		wg.Go(func() {
			for range 20 {
				if err := k.Set(ctx, "p", values[i]); err != nil {
					t.Error(err)
					return
				}
				got, err := k.Get(ctx, "p")
				if err != nil {
					t.Error(err)
					return
				}
				if !slices.ContainsFunc(values, func(v []byte) bool { return bytes.Equal(v, got) }) {
					t.Error("read a value nobody wrote")
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestProbe(t *testing.T) {
	k, f := newTestKeychain(Options{})
	if err := k.Probe(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := f.names(); len(n) != 0 {
		t.Fatalf("probe left entries behind: %q", n)
	}
	if f.calls < 3 {
		t.Fatalf("probe made %d calls; it must write, read and delete", f.calls)
	}

	f.setHook(func(op, account, value string) error {
		if op == "get" && strings.HasPrefix(account, ProbeAccountPrefix) {
			return errors.New("failed to unlock correct collection '/org/freedesktop/secrets/aliases/default'")
		}
		return nil
	})
	err := k.Probe(context.Background())
	var e *Error
	if !errors.As(err, &e) || e.Op != "probe" {
		t.Fatalf("Probe = %v, want a probe *Error", err)
	}
}

func TestHints(t *testing.T) {
	for _, kind := range []error{ErrNotFound, ErrNoDBus, ErrNoProvider, ErrLocked, ErrTimeout, ErrUnsupported, ErrCorrupt} {
		for _, goos := range []string{"linux", "darwin", "windows"} {
			if hintFor(kind, goos) == "" {
				t.Errorf("no %s hint for %v", goos, kind)
			}
		}
	}
	linux := map[error][]string{
		ErrNoDBus:     {"dbus-run-session", "gnome-keyring-daemon --unlock", "desktop"},
		ErrNoProvider: {"gnome-keyring", "org.freedesktop.secrets", "--unlock"},
		ErrLocked:     {"unlock", "Login", "gnome-keyring-daemon --replace --unlock"},
	}
	for kind, words := range linux {
		for _, w := range words {
			if h := hintFor(kind, "linux"); !strings.Contains(h, w) {
				t.Errorf("linux hint for %v lacks %q:\n%s", kind, w, h)
			}
		}
	}
	if h := hintFor(ErrLocked, "darwin"); !strings.Contains(h, "security unlock-keychain") {
		t.Errorf("macOS locked hint: %s", h)
	}
	if hintFor(nil, "linux") != "" {
		t.Error("an unknown error has a hint")
	}
}
