// Command onerecord-bench measures onerecord against the sandbox portal and
// prints one table: full first sync time next to the wire baseline, the
// no-change re-sync, the peak memory of the real `onerecord sync` process,
// the store's ingest rate and `onerecord status` time on a large store, with
// PASS/FAIL against the performance targets (docs/performance.md).
//
//	go run ./cmd/onerecord-bench [--sizes 10000,100000] [--out FILE] [--repeat 3]
//
// It builds the onerecord binary, runs `onerecord sandbox` as a child
// process per size, adds and connects the portal with the real CLI (its
// $BROWSER is this program in --browser-helper mode, which follows the
// sandbox's auto-approve redirect), and times `onerecord sync` and
// `onerecord status` as processes. The wire baseline and the ingest rate run
// in this process against the same sandbox. The real process keeps its
// tokens in the OS keychain: without a D-Bus session this program re-runs
// itself under dbus-run-session with an unlocked gnome-keyring-daemon.
// Every child is stopped by PID before it exits.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"time"
)

type config struct {
	sizes           []int
	out             string
	statusPortals   int
	statusResources int
	statusRuns      int
	binary          string
	keep            bool
	repeat          int
	profileDir      string // CPU profiles of the full syncs go here ("" = none)
}

func main() {
	os.Exit(run())
}

func run() int {
	var (
		sizes   = flag.String("sizes", "10000,100000", "comma-separated record sizes (generated resources)")
		out     = flag.String("out", "", "also write the table to this file")
		sp      = flag.Int("status-portals", 20, "portals in the status store")
		sr      = flag.Int("status-resources", 1000000, "resources in the status store (0 skips the status measurement)")
		runs    = flag.Int("status-runs", 21, "timed `onerecord status` runs (the median is reported)")
		binary  = flag.String("onerecord", "", "onerecord binary to measure (default: go build ./cmd/onerecord)")
		helper  = flag.String("browser-helper", "", "internal: act as $BROWSER and follow this sign-in URL")
		meas    = flag.Bool("measure", false, "internal: run the command after -- and report its peak RSS and CPU on stderr")
		keepTmp = flag.Bool("keep", false, "keep the temporary homes (for inspection)")
		repeat  = flag.Int("repeat", 3, "full syncs and wire runs per size (medians are reported)")
		profile = flag.String("cpuprofile", "", "write a CPU profile of every full `onerecord sync` into this directory (sync-SIZE-RUN.pprof)")
	)
	flag.Parse()
	if *helper != "" {
		return browserHelper(*helper)
	}
	if *meas {
		return measure(flag.Args())
	}
	cfg := config{out: *out, statusPortals: *sp, statusResources: *sr, statusRuns: *runs, binary: *binary, keep: *keepTmp, repeat: max(*repeat, 1), profileDir: *profile}
	for _, s := range strings.Split(*sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 50 {
			fmt.Fprintf(os.Stderr, "onerecord-bench: --sizes: %q is not a size >= 50\n", s)
			return 2
		}
		cfg.sizes = append(cfg.sizes, n)
	}
	if cfg.statusRuns < 1 {
		cfg.statusRuns = 1
	}

	if code, reexec := ensureSession(); reexec {
		return code
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	b := &bench{cfg: cfg, log: os.Stderr}
	defer b.cleanup()
	if err := b.run(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "onerecord-bench: %v\n", err)
		return 1
	}
	if b.failed {
		return 3
	}
	return 0
}

// browserHelper is the $BROWSER of the measured process: it opens the
// sign-in URL; the sandbox auto-approves and redirects to onerecord's
// loopback receiver, which this follows like a browser would.
func browserHelper(u string) int {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		fmt.Fprintf(os.Stderr, "browser-helper: %v\n", err)
		return 1
	}
	resp, err := (&http.Client{}).Do(req)
	if err != nil {
		fmt.Fprintf(os.Stderr, "browser-helper: %v\n", err)
		return 1
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(os.Stderr, "browser-helper: the sign-in ended with HTTP %d\n", resp.StatusCode)
		return 1
	}
	return 0
}
