package store

import (
	"context"
	"database/sql"
	"sync"
	"sync/atomic"
)

// checkpointEvery is how many bytes of resources the writer commits between
// the end of one background checkpoint and the start of the next. Tests
// lower it.
var checkpointEvery int64 = 4 << 20

// checkpointer copies the WAL into the database file from a connection of
// its own while the writer goes on writing, so that the writer (the
// critical path of a first sync) seldom waits for a checkpoint's copying
// and fsyncs: at 100,000 resources those were about 0.4 s of fsync waits
// and 0.15 s of CPU on the writer (docs/performance.md).
//
// The writer keeps SQLite's automatic checkpoint, which bounds the WAL: a
// PASSIVE checkpoint that runs while the writer appends never catches up
// with it, so the WAL only starts over after a checkpoint the writer runs
// itself between two of its transactions. By then the background has copied
// most frames, and the writer's checkpoint has little left to copy and
// sync. Runs are spaced (checkpointEvery bytes committed after a run ends)
// so that the writer's automatic checkpoint, which gives up at once when
// another checkpoint holds the lock, always finds the lock free for a while:
// the WAL stays within the automatic checkpoint's size plus what the writer
// commits during one background run.
type checkpointer struct {
	db   *sql.DB
	kick chan struct{}
	stop chan struct{}
	done chan struct{}

	closeOnce sync.Once
	pending   atomic.Int64 // bytes committed since the last run ended
	runs      atomic.Int64 // checkpoints run (for tests)
}

// checkpointerFor starts s's checkpointer the first time it is needed; nil
// after Close.
func (s *Store) checkpointerFor(ctx context.Context) *checkpointer {
	s.ckptOnce.Do(func() {
		db, err := sql.Open("sqlite", s.dsnCommon)
		if err != nil {
			return // no background checkpoints; the writer's still run
		}
		db.SetMaxOpenConns(1)
		db.SetMaxIdleConns(1)
		c := &checkpointer{db: db, kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
		// The checkpointer outlives the call that starts it; Close stops it.
		go c.run(context.WithoutCancel(ctx))
		s.ckpt = c
	})
	return s.ckpt
}

func (c *checkpointer) run(ctx context.Context) {
	defer close(c.done)
	for {
		select {
		case <-c.stop:
			return
		case <-c.kick:
		}
		// Errors do not matter: SQLITE_BUSY means another checkpoint is
		// running, and whatever is left is copied by the writer's next
		// automatic checkpoint or by the last Close.
		c.db.ExecContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`)
		c.runs.Add(1)
		// Count afresh from the end of this run; a kick sent while it ran
		// does not start another one straight away.
		c.pending.Store(0)
		select {
		case <-c.kick:
		default:
		}
	}
}

// committed tells the checkpointer that the writer committed n more bytes.
func (c *checkpointer) committed(n int64) {
	if c.pending.Add(n) < checkpointEvery {
		return
	}
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// close waits for a running checkpoint to end and closes the connection. A
// second call does nothing.
func (c *checkpointer) close() error {
	var err error
	c.closeOnce.Do(func() {
		close(c.stop)
		<-c.done
		err = c.db.Close()
	})
	return err
}
