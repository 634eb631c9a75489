package cli

import (
	"strings"
	"testing"

	"github.com/onerecord/onerecord/internal/keychain"
	"github.com/onerecord/onerecord/internal/store"
)

// A locked keychain during sync is no lapse: the portal stays connected, the
// run is partial (exit 3), and the person is told how to unlock the keychain
// rather than just to try again later.
func TestSyncLockedKeychainKeepsItsHint(t *testing.T) {
	e := newDisconnectEnv(t)
	e.connect(t, "local", 1)
	e.secrets.Fail(keychain.ErrLocked)

	code, errOut := e.run(t, false, "", "sync", "--no-prompt")
	if code != ExitPartial {
		t.Fatalf("sync exit = %d, want %d\n%s", code, ExitPartial, errOut)
	}
	if !strings.Contains(errOut, "locked") || !strings.Contains(strings.ToLower(errOut), "hint: ") {
		t.Fatalf("no locked-keychain message with a hint:\n%s", errOut)
	}
	if strings.Contains(errOut, "run `onerecord sync local` again later") {
		t.Fatalf("the generic retry hint replaced the keychain's own hint:\n%s", errOut)
	}
	if p, _ := e.portal(t, "local"); p.Conn.State != store.StateConnected {
		t.Fatalf("a locked keychain marked the portal %q", p.Conn.State)
	}
}
