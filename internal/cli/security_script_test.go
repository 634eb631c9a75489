package cli_test

// Script commands for the security scripts (testdata/script/*_security.txtar):
//
//	no-health-data [FILE...]   fails when a patient's name (from the script's
//	                           sandbox) or the JSON of a stored resource
//	                           (read from the store) occurs in stdout,
//	                           stderr, FILEs, or any file under
//	                           $ONERECORD_HOME other than the store itself
//	                           (onerecord.db and its -wal and -shm files)
//	sleep DURATION             waits
//	private-files              fails unless every directory under (and
//	                           including) $ONERECORD_HOME is 0700 and every
//	                           file 0600 (skipped on Windows)

import (
	"context"
	"database/sql"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	_ "github.com/onerecord/onerecord/internal/store" // registers the sqlite driver
)

// storeFiles are the only files under the home that may hold health data.
var storeFiles = map[string]bool{"onerecord.db": true, "onerecord.db-wal": true, "onerecord.db-shm": true}

func cmdNoHealthData(ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		ts.Fatalf("usage: no-health-data [FILE...]")
	}
	dir := ts.Getenv("ONERECORD_HOME")
	health := map[string]string{}
	for _, p := range mustSandbox(ts, ts.Getenv("WORK")).Patients() {
		if len(p.Name) >= 6 {
			health["the name of patient "+p.ID] = p.Name
		}
	}
	// Resource JSON as stored; copied so the store files stay untouched.
	tmp := filepath.Join(ts.Getenv("WORK"), "store-copy")
	ts.Check(os.MkdirAll(tmp, 0o700))
	for name := range storeFiles {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err == nil {
			ts.Check(os.WriteFile(filepath.Join(tmp, name), b, 0o600))
		}
	}
	db, err := sql.Open("sqlite", filepath.Join(tmp, "onerecord.db"))
	ts.Check(err)
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rows, err := db.QueryContext(ctx, `SELECT type, id, raw FROM resources WHERE length(raw) > 80 ORDER BY type, id`)
	ts.Check(err)
	n := 0
	for rows.Next() {
		var typ, id, raw string
		ts.Check(rows.Scan(&typ, &id, &raw))
		health["the JSON of "+typ+"/"+id] = raw
		n++
	}
	ts.Check(rows.Err())
	rows.Close()
	if n == 0 || len(health) == n {
		ts.Fatalf("nothing to look for: %d stored resources, %d patient names", n, len(health)-n)
	}
	check := func(where, content string) {
		for what, s := range health {
			if strings.Contains(content, s) {
				ts.Fatalf("%s appears in %s", what, where)
			}
		}
	}
	check("stdout", ts.ReadFile("stdout"))
	check("stderr", ts.ReadFile("stderr"))
	for _, f := range args {
		check(f, ts.ReadFile(f))
	}
	files := 0
	ts.Check(filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if filepath.Dir(path) == dir && storeFiles[d.Name()] {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files++
		check(path, string(b))
		return nil
	}))
	ts.Logf("searched stdout, stderr and %d files outside the store for %d patient names and %d resources", files, len(health)-n, n)
}

func cmdPrivateFiles(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 0 {
		ts.Fatalf("usage: private-files")
	}
	if runtime.GOOS == "windows" {
		ts.Logf("no Unix modes on Windows")
		return
	}
	dir := ts.Getenv("ONERECORD_HOME")
	seen := 0
	ts.Check(filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		want := fs.FileMode(0o600)
		if d.IsDir() {
			want = 0o700
		}
		if got := info.Mode().Perm(); got != want {
			ts.Fatalf("%s has mode %o, want %o", path, got, want)
		}
		seen++
		return nil
	}))
	ts.Logf("%d files and directories are private", seen)
}

// cmdSleep is `sleep DURATION` (this testscript has no sleep built in).
func cmdSleep(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: sleep DURATION")
	}
	d, err := time.ParseDuration(args[0])
	ts.Check(err)
	time.Sleep(d)
}
