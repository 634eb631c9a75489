package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/onerecord/onerecord/cmd/onerecord-bench/benchkit"
	"github.com/onerecord/onerecord/internal/store"
	"github.com/onerecord/onerecord/internal/sync"
)

// pageSize is what the engine asks for (the fhir package's default; the CLI
// does not change it). The wire baseline uses the same.
const pageSize = 200

// bench is one runner invocation.
type bench struct {
	cfg      config
	log      io.Writer
	tmp      string
	exe      string // onerecord binary
	self     string // this program, for $BROWSER
	children []*exec.Cmd
	failed   bool

	rows   []sizeResult
	status *statusResult
}

type sizeResult struct {
	size                 int
	stored               int
	fullSync, wire       time.Duration // medians over the repeats
	syncCPU              time.Duration // CPU of the onerecord sync process (user+system)
	sandboxSyncCPU       time.Duration // CPU of the sandbox while it served the sync
	sandboxWireCPU       time.Duration // CPU of the sandbox while it served the wire baseline
	wireRequests         int
	fullRequests         int
	resync               time.Duration
	resyncRequests       int
	types                int
	rssBytes             int64
	ingestRate           float64
	ingestResources      int
	fullExit, resyncExit int
}

type statusResult struct {
	portals, resources int
	median, min, max   time.Duration
	runs               int
	dbBytes            int64
}

func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(b.log, "onerecord-bench: "+format+"\n", args...)
}

func (b *bench) run(ctx context.Context) error {
	var err error
	if b.tmp, err = os.MkdirTemp("", "onerecord-bench-"); err != nil {
		return err
	}
	if b.self, err = os.Executable(); err != nil {
		return err
	}
	if err := b.startKeyring(ctx, filepath.Join(b.tmp, "keyring")); err != nil {
		return err
	}
	if err := b.build(ctx); err != nil {
		return err
	}
	for _, n := range b.cfg.sizes {
		r, err := b.measureSize(ctx, n)
		if err != nil {
			return fmt.Errorf("size %d: %w", n, err)
		}
		b.rows = append(b.rows, r)
	}
	if b.cfg.statusResources > 0 {
		s, err := b.measureStatus(ctx)
		if err != nil {
			return fmt.Errorf("status: %w", err)
		}
		b.status = s
	}
	table := b.table()
	fmt.Print(table)
	if b.cfg.out != "" {
		if err := os.WriteFile(b.cfg.out, []byte(table), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// cleanup stops every child by PID (interrupt first, then kill) and removes
// the temporary homes.
func (b *bench) cleanup() {
	for i := len(b.children) - 1; i >= 0; i-- {
		stopChild(b.children[i])
	}
	b.children = nil
	if b.tmp != "" && !b.cfg.keep {
		os.RemoveAll(b.tmp)
	} else if b.tmp != "" {
		b.logf("kept %s", b.tmp)
	}
}

func stopChild(cmd *exec.Cmd) {
	if cmd.Process == nil || cmd.ProcessState != nil {
		return
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	if runtime.GOOS != "windows" {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
			return
		case <-time.After(5 * time.Second):
		}
	}
	_ = cmd.Process.Kill()
	<-done
}

// build compiles ./cmd/onerecord unless --onerecord names a binary.
func (b *bench) build(ctx context.Context) error {
	if b.cfg.binary != "" {
		b.exe = b.cfg.binary
		return nil
	}
	b.exe = filepath.Join(b.tmp, "onerecord")
	if runtime.GOOS == "windows" {
		b.exe += ".exe"
	}
	b.logf("building %s", b.exe)
	cmd := exec.CommandContext(ctx, "go", "build", "-o", b.exe, "github.com/onerecord/onerecord/cmd/onerecord")
	cmd.Stdout, cmd.Stderr = b.log, b.log
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build: %w", err)
	}
	return nil
}

// onerecord runs the binary with home as ONERECORD_HOME and returns its
// stdout, exit code, wall time and peak RSS.
type procResult struct {
	stdout   []byte
	exit     int
	wall     time.Duration
	maxRSS   int64
	cpu      time.Duration // user + system
	stderrTx string
}

func (b *bench) onerecord(ctx context.Context, home string, args ...string) (procResult, error) {
	return b.runOnerecord(ctx, home, false, nil, args...)
}

// runOnerecord runs the onerecord binary in home with args; env is added to
// the environment. With viaMeasure it runs through this program in
// --measure mode, which starts onerecord as its own child and reports that
// child's peak RSS and CPU: on Linux a process's peak RSS counts the memory
// of the process that started it (until exec they share it), so measured
// straight from this runner, which holds a record's pages for the ingest
// measurement, `onerecord sync` would be charged with the runner's size.
func (b *bench) runOnerecord(ctx context.Context, home string, viaMeasure bool, env []string, args ...string) (procResult, error) {
	cmd := exec.CommandContext(ctx, b.exe, args...)
	if viaMeasure {
		cmd = exec.CommandContext(ctx, b.self, append([]string{"--measure", "--", b.exe}, args...)...)
	}
	cmd.Env = append(os.Environ(),
		"ONERECORD_HOME="+home,
		"BROWSER="+b.self+" --browser-helper=%s",
		"NO_COLOR=1",
	)
	cmd.Env = append(cmd.Env, env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	r := procResult{wall: time.Since(start), stdout: stdout.Bytes(), stderrTx: stderr.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.exit = ee.ExitCode()
	default:
		return r, fmt.Errorf("onerecord %s: %w", strings.Join(args, " "), err)
	}
	r.maxRSS = maxRSS(cmd.ProcessState)
	r.cpu = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	if viaMeasure {
		u, rest, ok := parseUsage(r.stderrTx)
		if !ok {
			return r, fmt.Errorf("onerecord %s: no usage report from --measure\n%s", strings.Join(args, " "), lastLines(r.stderrTx, 10))
		}
		r.maxRSS, r.cpu, r.stderrTx = u.maxRSS, u.cpu, rest
	}
	return r, nil
}

// startSandbox runs `onerecord sandbox` with n resources and returns its
// FHIR base URL (the first line of its stdout).
func (b *bench) startSandbox(ctx context.Context, n int) (*exec.Cmd, string, error) {
	home := filepath.Join(b.tmp, fmt.Sprintf("sandbox-%d", n))
	cmd := exec.Command(b.exe, "sandbox", "--addr", "127.0.0.1:0", "--auto-approve", "--resources", strconv.Itoa(n))
	cmd.Env = append(os.Environ(), "ONERECORD_HOME="+home)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, "", err
	}
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		return nil, "", err
	}
	b.children = append(b.children, cmd)
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(stdout).ReadString('\n')
		line <- strings.TrimSpace(s)
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case base := <-line:
		if !strings.HasPrefix(base, "http://127.0.0.1:") {
			return cmd, "", fmt.Errorf("the sandbox printed %q instead of its base URL", base)
		}
		return cmd, base, nil
	case <-time.After(2 * time.Minute):
		return cmd, "", errors.New("the sandbox did not start within 2 minutes")
	case <-ctx.Done():
		return cmd, "", ctx.Err()
	}
}

// syncJSON is the part of `onerecord sync --json` the runner reads.
type syncJSON struct {
	Portals []struct {
		Status string `json:"status"`
		Types  []struct {
			Type     string `json:"type"`
			Searches int    `json:"searches"`
		} `json:"types"`
		Totals sync.Counts `json:"totals"`
	} `json:"portals"`
	ExitCode int `json:"exit_code"`
}

func parseSync(r procResult) (syncJSON, error) {
	var s syncJSON
	if err := json.Unmarshal(r.stdout, &s); err != nil || len(s.Portals) != 1 {
		return s, fmt.Errorf("onerecord sync (exit %d) gave no report: %v\n%s", r.exit, err, lastLines(r.stderrTx, 10))
	}
	if s.Portals[0].Status != sync.StatusOK {
		return s, fmt.Errorf("onerecord sync ended %s (exit %d)\n%s", s.Portals[0].Status, r.exit, lastLines(r.stderrTx, 10))
	}
	return s, nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func (b *bench) measureSize(ctx context.Context, n int) (sizeResult, error) {
	r := sizeResult{size: n}
	b.logf("size %d: starting the sandbox", n)
	sb, base, err := b.startSandbox(ctx, n)
	defer func() {
		if sb != nil {
			stopChild(sb)
		}
	}()
	if err != nil {
		return r, err
	}

	// The wire baseline and the ingest measurement use their own
	// connection (same patient, same scopes) made in this process.
	conn, err := benchkit.Connect(ctx, base, filepath.Join(b.tmp, fmt.Sprintf("wire-%d", n)))
	if err != nil {
		return r, err
	}
	defer conn.Close()
	capability, err := sync.ParseCapability(conn.Portal.Capability)
	if err != nil {
		return r, err
	}
	plan := sync.MakePlan(sync.PlanInput{Capability: capability, Scopes: sync.ParseScopes(conn.Portal.Conn.GrantedScope), PatientID: conn.Portal.Conn.PatientID})
	var searches []benchkit.WireSearch
	for _, s := range plan.Searches {
		if s.ReadID == "" {
			searches = append(searches, benchkit.WireSearch{Path: s.Path, Params: s.Params})
		}
	}
	wire := func() (benchkit.WireResult, error) {
		tok, err := conn.Token(ctx)
		if err != nil {
			return benchkit.WireResult{}, err
		}
		return benchkit.Wire(ctx, benchkit.WireOptions{
			HTTP: benchkit.HTTPClient(), Base: base, Token: tok, Searches: searches,
			Jobs: sync.DefaultJobs, PageSize: pageSize,
		})
	}
	// A first pass warms the server (and the page cache) for both.
	b.logf("size %d: wire warm-up", n)
	if _, err := wire(); err != nil {
		return r, err
	}

	// Full sync and wire alternate, each into a fresh home; the medians
	// are reported (other load on the machine hits single runs).
	var fulls, wires, cpus, sbSync, sbWire []time.Duration
	var rsss []int64
	var home string
	for i := range b.cfg.repeat {
		home = filepath.Join(b.tmp, fmt.Sprintf("home-%d-%d", n, i))
		for _, args := range [][]string{
			{"portals", "add", "sandbox", "--fhir-base", base, "--client-id", "onerecord-bench"},
			{"connect", "sandbox", "--timeout", "1m"},
		} {
			pr, err := b.onerecord(ctx, home, args...)
			if err != nil {
				return r, err
			}
			if pr.exit != 0 {
				return r, fmt.Errorf("onerecord %s: exit %d\n%s", strings.Join(args, " "), pr.exit, lastLines(pr.stderrTx, 10))
			}
		}
		b.logf("size %d: full sync %d/%d (onerecord sync)", n, i+1, b.cfg.repeat)
		before := processCPU(sb.Process.Pid)
		var env []string
		if b.cfg.profileDir != "" {
			env = append(env, "ONERECORD_CPUPROFILE="+filepath.Join(b.cfg.profileDir, fmt.Sprintf("sync-%d-%d.pprof", n, i+1)))
		}
		full, err := b.runOnerecord(ctx, home, true, env, "sync", "--no-prompt", "--json")
		if err != nil {
			return r, err
		}
		sbSync = append(sbSync, processCPU(sb.Process.Pid)-before)
		fs, err := parseSync(full)
		if err != nil {
			return r, err
		}
		fulls, rsss, cpus = append(fulls, full.wall), append(rsss, full.maxRSS), append(cpus, full.cpu)
		b.logf("size %d: full sync %d/%d took %s (CPU %s, peak RSS %s)", n, i+1, b.cfg.repeat, secs(full.wall), secs(full.cpu), mb(full.maxRSS))
		r.fullExit = full.exit
		r.fullRequests, r.stored = fs.Portals[0].Totals.Requests, fs.Portals[0].Totals.New

		b.logf("size %d: wire baseline %d/%d", n, i+1, b.cfg.repeat)
		before = processCPU(sb.Process.Pid)
		w, err := wire()
		if err != nil {
			return r, err
		}
		sbWire = append(sbWire, processCPU(sb.Process.Pid)-before)
		wires = append(wires, w.Elapsed)
		r.wireRequests = w.Requests
	}
	r.fullSync, r.wire, r.syncCPU = median(fulls), median(wires), median(cpus)
	r.sandboxSyncCPU, r.sandboxWireCPU = median(sbSync), median(sbWire)
	r.rssBytes = median(rsss)

	// Re-syncs of the last home; the first pulls nothing new either (the
	// full sync left every cursor), all of them are timed.
	var resyncs []time.Duration
	for i := range b.cfg.repeat {
		b.logf("size %d: no-change re-sync %d/%d", n, i+1, b.cfg.repeat)
		re, err := b.onerecord(ctx, home, "sync", "--no-prompt", "--json")
		if err != nil {
			return r, err
		}
		rs, err := parseSync(re)
		if err != nil {
			return r, err
		}
		resyncs = append(resyncs, re.wall)
		r.resyncExit = re.exit
		r.resyncRequests = max(r.resyncRequests, rs.Portals[0].Totals.Requests)
		r.types = 0
		for _, t := range rs.Portals[0].Types {
			if t.Searches > 0 {
				r.types++
			}
		}
		if w := rs.Portals[0].Totals; w.New+w.Changed+w.Deleted != 0 {
			return r, fmt.Errorf("the no-change re-sync wrote: %+v", w)
		}
	}
	r.resync = median(resyncs)

	b.logf("size %d: store ingest", n)
	pages, err := benchkit.CollectPages(ctx, conn, searches, pageSize)
	if err != nil {
		return r, err
	}
	st, err := store.Open(ctx, filepath.Join(b.tmp, fmt.Sprintf("ingest-%d", n), "onerecord.db"))
	if err != nil {
		return r, err
	}
	defer st.Close()
	if err := st.PutPortal(ctx, store.Portal{Name: benchkit.PortalName}); err != nil {
		return r, err
	}
	ing, err := benchkit.Ingest(ctx, st, benchkit.PortalName, pages)
	if err != nil {
		return r, err
	}
	r.ingestRate, r.ingestResources = ing.PerSecond(), ing.Resources
	return r, nil
}

func (b *bench) measureStatus(ctx context.Context) (*statusResult, error) {
	s := &statusResult{portals: b.cfg.statusPortals, resources: b.cfg.statusResources, runs: b.cfg.statusRuns}
	home := filepath.Join(b.tmp, "status")
	if err := os.MkdirAll(home, 0o700); err != nil {
		return nil, err
	}
	b.logf("status: loading %d resources into %d portals", s.resources, s.portals)
	start := time.Now()
	db := filepath.Join(home, "onerecord.db")
	if err := benchkit.BulkLoad(ctx, db, s.portals, s.resources, nil); err != nil {
		return nil, err
	}
	if fi, err := os.Stat(db); err == nil {
		s.dbBytes = fi.Size()
	}
	b.logf("status: loaded in %s; timing %d runs of onerecord status", time.Since(start).Round(time.Second), s.runs)
	var times []time.Duration
	for i := 0; i <= s.runs; i++ {
		pr, err := b.onerecord(ctx, home, "status")
		if err != nil {
			return nil, err
		}
		// Some portals are disconnected on purpose: exit 4 is expected.
		if pr.exit != 0 && pr.exit != 4 {
			return nil, fmt.Errorf("onerecord status: exit %d\n%s", pr.exit, lastLines(pr.stderrTx, 10))
		}
		if i > 0 { // the first run warms the page cache
			times = append(times, pr.wall)
		}
	}
	sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
	s.median, s.min, s.max = times[len(times)/2], times[0], times[len(times)-1]
	return s, nil
}

// median of xs (the upper middle for an even count).
func median[T int64 | time.Duration](xs []T) T {
	if len(xs) == 0 {
		return 0
	}
	s := append([]T(nil), xs...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.0f ms", d.Seconds()*1000) }

func secs(d time.Duration) string {
	if d < 10*time.Second {
		return fmt.Sprintf("%.2f s", d.Seconds())
	}
	return fmt.Sprintf("%.1f s", d.Seconds())
}

func mb(n int64) string { return fmt.Sprintf("%.1f MB", float64(n)/(1<<20)) }

// table renders the results and the targets.
func (b *bench) table() string {
	var sb strings.Builder
	host, _ := os.Hostname()
	fmt.Fprintf(&sb, "onerecord-bench  %s  %s/%s  %d CPUs  %s  %s\n\n", time.Now().UTC().Format("2006-01-02 15:04 UTC"),
		runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version(), host)
	fmt.Fprintf(&sb, "| resources | full sync | wire | ratio | no-change re-sync | re-sync requests (max) | peak RSS | ingest | CPU: sync / sandbox (sync) / sandbox (wire) |\n")
	fmt.Fprintf(&sb, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range b.rows {
		fmt.Fprintf(&sb, "| %d | %s | %s | %.2fx | %s (%.1f%%) | %d (%d) | %s | %.0f/s | %s / %s / %s |\n",
			r.stored, secs(r.fullSync), secs(r.wire), r.fullSync.Seconds()/r.wire.Seconds(),
			ms(r.resync), 100*r.resync.Seconds()/r.fullSync.Seconds(), r.resyncRequests, r.types+3,
			mb(r.rssBytes), r.ingestRate, secs(r.syncCPU), secs(r.sandboxSyncCPU), secs(r.sandboxWireCPU))
	}
	fmt.Fprintf(&sb, "\nfull sync, wire, re-sync, CPU and RSS are medians of %d runs (re-sync requests: the most of any run); load average at the end: %s\n", b.cfg.repeat, loadAverage())
	if s := b.status; s != nil {
		fmt.Fprintf(&sb, "\nonerecord status, %d portals / %d resources (%s store): median %s (min %s, max %s, %d runs)\n",
			s.portals, s.resources, mb(s.dbBytes), ms(s.median), ms(s.min), ms(s.max), s.runs)
	}
	fmt.Fprintf(&sb, "\ntargets\n")
	check := func(ok bool, format string, args ...any) {
		word := "PASS"
		if !ok {
			word = "FAIL"
			b.failed = true
		}
		fmt.Fprintf(&sb, "  %s  %s\n", word, fmt.Sprintf(format, args...))
	}
	var small, large *sizeResult
	for i := range b.rows {
		r := &b.rows[i]
		if small == nil || r.size < small.size {
			small = r
		}
		if large == nil || r.size > large.size {
			large = r
		}
	}
	if large != nil {
		ratio := large.fullSync.Seconds() / large.wire.Seconds()
		check(ratio <= 1.5, "full sync at %d <= 1.5x wire: %.2fx", large.size, ratio)
		check(large.rssBytes <= 100<<20, "peak RSS at %d <= 100 MB: %s", large.size, mb(large.rssBytes))
		if small != large {
			g := float64(large.rssBytes)/float64(small.rssBytes) - 1
			check(g < 0.25, "peak RSS growth %d -> %d < 25%%: %+.1f%%", small.size, large.size, 100*g)
		}
		for _, r := range b.rows {
			check(r.resync.Seconds() <= 0.1*r.fullSync.Seconds(), "no-change re-sync at %d <= 10%% of full: %.1f%%", r.size, 100*r.resync.Seconds()/r.fullSync.Seconds())
			check(r.resyncRequests <= r.types+3, "no-change re-sync at %d <= types+3 requests: %d <= %d", r.size, r.resyncRequests, r.types+3)
		}
	}
	if s := b.status; s != nil {
		check(s.median <= 50*time.Millisecond, "status median at %d portals / %d resources <= 50 ms: %s", s.portals, s.resources, ms(s.median))
	}
	return sb.String()
}
