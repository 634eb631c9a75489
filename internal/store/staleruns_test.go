package store

import (
	"context"
	"testing"
	"time"
)

func TestCloseStaleRuns(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	addPortal(t, s, "p")
	addPortal(t, s, "q")
	done, err := s.BeginRun(ctx, "p", t0)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.FinishRun(ctx, done, RunOK, t0.Add(time.Minute), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.BeginRun(ctx, "p", t0.Add(time.Hour)); err != nil { // left by a killed process
		t.Fatal(err)
	}
	if _, err := s.BeginRun(ctx, "q", t0.Add(time.Hour)); err != nil { // another portal's
		t.Fatal(err)
	}
	n, err := s.CloseStaleRuns(ctx, "p", t0.Add(2*time.Hour))
	if err != nil || n != 1 {
		t.Fatalf("CloseStaleRuns = %d, %v; want 1", n, err)
	}
	r, err := s.LastRun(ctx, "p")
	if err != nil || r.Status != RunInterrupted || !r.FinishedAt.Equal(t0.Add(2*time.Hour)) {
		t.Fatalf("stale run now %+v, %v", r, err)
	}
	if r, _ := s.LastRun(ctx, "q"); r.Status != RunRunning {
		t.Fatalf("another portal's run was touched: %q", r.Status)
	}
	if n, err := s.CloseStaleRuns(ctx, "p", t0.Add(3*time.Hour)); err != nil || n != 0 {
		t.Fatalf("second CloseStaleRuns = %d, %v; want 0", n, err)
	}
}
