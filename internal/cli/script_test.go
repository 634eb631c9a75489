package cli_test

// End-to-end tests: testscript files in testdata/script run the real
// onerecord binary (this test binary re-executed as "onerecord") against a
// sandbox portal started in the test process with the `sandbox` command.
//
// Script commands added here:
//
//	sandbox start [--patients N] [--resources N] [--seed N] [--auto-approve]
//	              [--access-ttl D] [--refresh-ttl D] [--no-rotation]
//	        starts a sandbox on 127.0.0.1:0 and sets $SANDBOX to its FHIR base
//	sandbox revoke              revokes every grant
//	sandbox faults JSON         sets quirk switches (sandbox.Faults as JSON)
//	sandbox stats NAME OP N     asserts a Stats counter, e.g. `sandbox stats ReuseDetected == 0`
//
// Conditions: [keychain] is true when the OS keychain works here; with
// ONERECORD_REQUIRE_INTEGRATION=1 a script guarded by [!keychain] skip fails
// instead (see requireKeychain).

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/onerecord/onerecord/internal/cli"
	"github.com/onerecord/onerecord/internal/keychain"
	"github.com/onerecord/onerecord/internal/sandbox"
	"github.com/onerecord/onerecord/internal/testenv"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"onerecord":   func() { os.Exit(cli.Main()) },
		"fakebrowser": func() { os.Exit(fakebrowserMain()) }, // connect_helpers_test.go
	})
}

var keychainProbe struct {
	once sync.Once
	err  error
}

func keychainWorks() error {
	keychainProbe.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		keychainProbe.err = keychain.New(keychain.Options{}).Probe(ctx)
	})
	return keychainProbe.err
}

func TestScripts(t *testing.T) {
	testscript.Run(t, scriptParams(t, "testdata/script"))
}

func scriptParams(t *testing.T, dir string) testscript.Params {
	return testscript.Params{
		Dir:                 dir,
		RequireExplicitExec: true,
		Setup: func(env *testscript.Env) error {
			env.Setenv("ONERECORD_HOME", env.WorkDir+"/home")
			env.Setenv("NO_COLOR", "1")
			env.Setenv("BROWSER", "")
			for _, k := range []string{"DBUS_SESSION_BUS_ADDRESS", "XDG_RUNTIME_DIR", "GNOME_KEYRING_CONTROL"} {
				if v := os.Getenv(k); v != "" {
					env.Setenv(k, v)
				}
			}
			return nil
		},
		Condition: func(cond string) (bool, error) {
			switch cond {
			case "keychain":
				err := keychainWorks()
				if err != nil && testenv.Required() {
					return false, fmt.Errorf("OS keychain required (%s=1) but not available: %v", testenv.EnvRequire, err)
				}
				return err == nil, nil
			}
			return false, fmt.Errorf("unknown condition %q", cond)
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"exits":          cmdExits, // sync_script_test.go
			"sandbox":        cmdSandbox,
			"paste-connect":  cmdPasteConnect, // connect_helpers_test.go
			"fakeserver":     cmdFakeServer,
			"no-secrets":     cmdNoSecrets,
			"no-health-data": cmdNoHealthData, // security_script_test.go
			"private-files":  cmdPrivateFiles,
			"sleep":          cmdSleep,
		},
	}
}

// sandboxes holds the sandbox of each running script, keyed by its work dir.
var sandboxes sync.Map

func cmdSandbox(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) == 0 {
		ts.Fatalf("usage: sandbox start|revoke|faults|stats ...")
	}
	key := ts.Getenv("WORK")
	switch args[0] {
	case "start":
		fs := flag.NewFlagSet("sandbox start", flag.ContinueOnError)
		var o sandbox.Options
		fs.IntVar(&o.Patients, "patients", 1, "")
		fs.IntVar(&o.Resources, "resources", 300, "")
		fs.Int64Var(&o.Seed, "seed", 1, "")
		fs.BoolVar(&o.AutoApprove, "auto-approve", false, "")
		fs.DurationVar(&o.AccessTTL, "access-ttl", 0, "")
		fs.DurationVar(&o.RefreshTTL, "refresh-ttl", 0, "")
		fs.BoolVar(&o.NoRotation, "no-rotation", false, "")
		if err := fs.Parse(args[1:]); err != nil {
			ts.Fatalf("%v", err)
		}
		s, err := sandbox.New(o)
		ts.Check(err)
		base, err := s.Start("127.0.0.1:0")
		ts.Check(err)
		sandboxes.Store(key, s)
		ts.Defer(func() {
			sandboxes.Delete(key)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			s.Close(ctx)
		})
		ts.Setenv("SANDBOX", base)
	case "revoke":
		mustSandbox(ts, key).RevokeAll()
	case "faults":
		if len(args) != 2 {
			ts.Fatalf("usage: sandbox faults JSON")
		}
		var f sandbox.Faults
		ts.Check(json.Unmarshal([]byte(args[1]), &f))
		mustSandbox(ts, key).SetFaults(f)
	case "stats":
		if len(args) != 4 {
			ts.Fatalf("usage: sandbox stats NAME OP N")
		}
		st := mustSandbox(ts, key).Stats()
		b, _ := json.Marshal(st)
		var m map[string]any
		ts.Check(json.Unmarshal(b, &m))
		v, ok := m[args[1]].(float64)
		if !ok {
			ts.Fatalf("no numeric stat %q", args[1])
		}
		want, err := strconv.ParseFloat(args[3], 64)
		ts.Check(err)
		var ok2 bool
		switch args[2] {
		case "==":
			ok2 = v == want
		case "<=":
			ok2 = v <= want
		case ">=":
			ok2 = v >= want
		default:
			ts.Fatalf("unknown operator %q", args[2])
		}
		if ok2 == neg {
			ts.Fatalf("sandbox stat %s = %v, want %s %v", args[1], v, args[2], want)
		}
	default:
		ts.Fatalf("unknown sandbox subcommand %q", args[0])
	}
}

func mustSandbox(ts *testscript.TestScript, key string) *sandbox.Server {
	v, ok := sandboxes.Load(key)
	if !ok {
		ts.Fatalf("no sandbox started in this script")
	}
	return v.(*sandbox.Server)
}
