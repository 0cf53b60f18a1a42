package app

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/pyudf/pyudf/examples/appkit/sqlsink"
)

// Flush is what one commit writes: the output of stream sequences From+1
// ... To (To > From) and the pipeline's snapshot after To.
type Flush struct {
	Stream   string
	From, To uint64
	Delta
	Snapshot []byte
	// EndOfInput: the flush includes the end-of-input watermark (a
	// bounded run's last flush; To may equal From).
	EndOfInput bool
	// moved: the watermark moved with no new record (Config.IdleWatermark);
	// such a flush has To == From and is recognised as done by its snapshot.
	moved bool
}

// ErrCheckpointMoved: the table's checkpoint is neither where this flush
// starts nor where it ends; another writer works on the same tables from
// the same stream. The flush is not applied.
var ErrCheckpointMoved = errors.New("features sink: the checkpoint moved under this writer")

// SQLSink keeps the tables in SQLite or PostgreSQL:
//
//   - user_feature (user_id PK, visited_items, window_start, window_end): the
//     online feature store, each user's latest window (upserts);
//   - user_feature_history (user_id, window_end PK, window_start,
//     visited_items): every window that fired, the store samples are joined
//     against;
//   - feature_sample (trace_id PK, user_id, item_id, exposure_time, label,
//     click_time, visited_items, feature_window_end);
//   - feature_bad_record (reason, count), feature_late_event (event_type,
//     count);
//   - feature_checkpoint (stream PK, last_seq, ended, snapshot): the last
//     stream sequence written, whether the end-of-input watermark was, and
//     the pipeline's state after it.
//
// A Flush is one transaction: rows, counts, position and state commit
// together or not at all.
type SQLSink struct {
	db *sql.DB
	d  sqlsink.Dialect
}

// Tables lists the sink's tables.
var Tables = []string{"user_feature", "user_feature_history", "feature_sample", "feature_bad_record", "feature_late_event", "feature_checkpoint"}

// OpenSink opens postgres://... (pgx) or a SQLite file and creates the
// tables if missing.
func OpenSink(ctx context.Context, dsn string) (*SQLSink, error) {
	db, d, err := sqlsink.Open(ctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("features sink: %w", err)
	}
	if err := sqlsink.Exec(ctx, db,
		`CREATE TABLE IF NOT EXISTS user_feature (user_id TEXT PRIMARY KEY, visited_items TEXT NOT NULL,
			window_start BIGINT NOT NULL, window_end BIGINT NOT NULL)`,
		`CREATE TABLE IF NOT EXISTS user_feature_history (user_id TEXT NOT NULL, window_end BIGINT NOT NULL,
			window_start BIGINT NOT NULL, visited_items TEXT NOT NULL, PRIMARY KEY (user_id, window_end))`,
		`CREATE TABLE IF NOT EXISTS feature_sample (trace_id TEXT PRIMARY KEY, user_id TEXT NOT NULL, item_id TEXT NOT NULL,
			exposure_time BIGINT NOT NULL, label INTEGER NOT NULL, click_time BIGINT,
			visited_items TEXT NOT NULL, feature_window_end BIGINT NOT NULL)`,
		`CREATE TABLE IF NOT EXISTS feature_bad_record (reason TEXT PRIMARY KEY, count BIGINT NOT NULL)`,
		`CREATE TABLE IF NOT EXISTS feature_late_event (event_type TEXT PRIMARY KEY, count BIGINT NOT NULL)`,
		`CREATE TABLE IF NOT EXISTS feature_checkpoint (stream TEXT PRIMARY KEY, last_seq BIGINT NOT NULL,
			ended INTEGER NOT NULL, snapshot `+d.Blob()+` NOT NULL)`,
	); err != nil {
		db.Close()
		return nil, fmt.Errorf("features sink: creating the tables: %w", err)
	}
	return &SQLSink{db: db, d: d}, nil
}

// Reset empties every table.
func (s *SQLSink) Reset(ctx context.Context) error {
	if err := sqlsink.Empty(ctx, s.db, Tables...); err != nil {
		return fmt.Errorf("features sink: %w", err)
	}
	return nil
}

// DB is the database handle.
func (s *SQLSink) DB() *sql.DB { return s.db }

// Close closes the database.
func (s *SQLSink) Close() error { return s.db.Close() }

// Checkpoint returns the last stream sequence written and the snapshot
// after it (0, nil: none).
func (s *SQLSink) Checkpoint(ctx context.Context, stream string) (uint64, []byte, error) {
	var seq int64
	var snap []byte
	err := s.db.QueryRowContext(ctx, s.d.Rebind(`SELECT last_seq, snapshot FROM feature_checkpoint WHERE stream = $1`), stream).Scan(&seq, &snap)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil, nil
	}
	if err != nil {
		return 0, nil, fmt.Errorf("features sink: reading the checkpoint: %w", err)
	}
	return uint64(seq), snap, nil
}

// Commit applies f in one transaction, moving the checkpoint from
// (f.From, not ended) to (f.To, f.EndOfInput); (false, nil) when it already
// is there (an earlier attempt committed but its reply was lost).
func (s *SQLSink) Commit(ctx context.Context, f *Flush) (applied bool, err error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("features sink: begin: %w", err)
	}
	defer func() {
		if err != nil || !applied {
			_ = tx.Rollback()
		}
	}()
	var cur, ended int64
	switch err := tx.QueryRowContext(ctx, s.d.Rebind(`SELECT last_seq, ended FROM feature_checkpoint WHERE stream = $1`+s.d.ForUpdate()), f.Stream).Scan(&cur, &ended); {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return false, fmt.Errorf("features sink: reading the checkpoint: %w", err)
	}
	if f.From == f.To && !f.EndOfInput && uint64(cur) == f.To && ended == 0 {
		// A flush of a watermark alone (an idle stream): the position does
		// not tell whether an earlier attempt committed it; the snapshot does.
		var stored []byte
		if err := tx.QueryRowContext(ctx, s.d.Rebind(`SELECT snapshot FROM feature_checkpoint WHERE stream = $1`), f.Stream).Scan(&stored); err != nil && !errors.Is(err, sql.ErrNoRows) {
			return false, fmt.Errorf("features sink: reading the checkpoint: %w", err)
		}
		if bytes.Equal(stored, f.Snapshot) {
			return false, nil
		}
	} else if uint64(cur) == f.To && (ended == 1) == f.EndOfInput {
		return false, nil
	}
	switch {
	case uint64(cur) == f.From && ended == 0:
	default:
		return false, fmt.Errorf("%w: stream %s is at %d (ended %v) in the table, this flush covers %d..%d", ErrCheckpointMoved, f.Stream, cur, ended == 1, f.From+1, f.To)
	}
	exec := func(what, query string, rows int, args func(i int) []any) error {
		if rows == 0 {
			return nil
		}
		st, err := tx.PrepareContext(ctx, s.d.Rebind(query))
		if err != nil {
			return fmt.Errorf("features sink: %s: %w", what, err)
		}
		defer st.Close()
		for i := range rows {
			if _, err := st.ExecContext(ctx, args(i)...); err != nil {
				return fmt.Errorf("features sink: %s: %w", what, err)
			}
		}
		return nil
	}
	type kv struct {
		k string
		n int64
	}
	pairs := func(m map[string]int64) []kv {
		var out []kv
		for k, n := range m {
			out = append(out, kv{k, n})
		}
		return out
	}
	bad, late := pairs(f.Bad), pairs(f.Late)
	if err := errors.Join(
		exec("upserting user_feature", `INSERT INTO user_feature (user_id, visited_items, window_start, window_end) VALUES ($1, $2, $3, $4)
			ON CONFLICT (user_id) DO UPDATE SET visited_items = excluded.visited_items, window_start = excluded.window_start,
				window_end = excluded.window_end WHERE excluded.window_end >= user_feature.window_end`,
			len(f.Features), func(i int) []any {
				r := f.Features[i]
				return []any{r.UserID, r.VisitedItems, r.WindowStart, r.WindowEnd}
			}),
		exec("upserting user_feature_history", `INSERT INTO user_feature_history (user_id, window_end, window_start, visited_items) VALUES ($1, $2, $3, $4)
			ON CONFLICT (user_id, window_end) DO UPDATE SET visited_items = excluded.visited_items, window_start = excluded.window_start`,
			len(f.Features), func(i int) []any {
				r := f.Features[i]
				return []any{r.UserID, r.WindowEnd, r.WindowStart, r.VisitedItems}
			}),
		exec("upserting feature_sample", `INSERT INTO feature_sample (trace_id, user_id, item_id, exposure_time, label, click_time, visited_items, feature_window_end)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
			ON CONFLICT (trace_id) DO NOTHING`, // the first sample of a trace_id stays (a re-exposure after its timer fired makes a second)
			len(f.Samples), func(i int) []any {
				r := f.Samples[i]
				var click any
				if r.Label == 1 {
					click = r.ClickTime
				}
				return []any{r.TraceID, r.UserID, r.ItemID, r.ExposureTime, r.Label, click, r.VisitedItems, r.FeatureWindowEnd}
			}),
		exec("counting bad records", `INSERT INTO feature_bad_record (reason, count) VALUES ($1, $2)
			ON CONFLICT (reason) DO UPDATE SET count = feature_bad_record.count + excluded.count`,
			len(bad), func(i int) []any { return []any{bad[i].k, bad[i].n} }),
		exec("counting late events", `INSERT INTO feature_late_event (event_type, count) VALUES ($1, $2)
			ON CONFLICT (event_type) DO UPDATE SET count = feature_late_event.count + excluded.count`,
			len(late), func(i int) []any { return []any{late[i].k, late[i].n} }),
	); err != nil {
		return false, err
	}
	if _, err := tx.ExecContext(ctx, s.d.Rebind(`INSERT INTO feature_checkpoint (stream, last_seq, ended, snapshot) VALUES ($1, $2, $3, $4)
		ON CONFLICT (stream) DO UPDATE SET last_seq = excluded.last_seq, ended = excluded.ended, snapshot = excluded.snapshot`),
		f.Stream, int64(f.To), map[bool]int{true: 1}[f.EndOfInput], f.Snapshot); err != nil {
		return false, fmt.Errorf("features sink: moving the checkpoint: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("features sink: commit: %w", err)
	}
	return true, nil
}

// Counts reads a counter table (feature_bad_record or feature_late_event).
func (s *SQLSink) Counts(ctx context.Context, table string) (map[string]int64, error) {
	m, err := sqlsink.Counts(ctx, s.db, `SELECT * FROM `+table)
	if err != nil {
		return nil, fmt.Errorf("features sink: %w", err)
	}
	return m, nil
}

// Samples reads feature_sample.
func (s *SQLSink) Samples(ctx context.Context) (map[string]Sample, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT trace_id, user_id, item_id, exposure_time, label, click_time, visited_items, feature_window_end FROM feature_sample`)
	if err != nil {
		return nil, fmt.Errorf("features sink: %w", err)
	}
	defer rows.Close()
	m := map[string]Sample{}
	for rows.Next() {
		var r Sample
		var click sql.NullInt64
		if err := rows.Scan(&r.TraceID, &r.UserID, &r.ItemID, &r.ExposureTime, &r.Label, &click, &r.VisitedItems, &r.FeatureWindowEnd); err != nil {
			return nil, fmt.Errorf("features sink: %w", err)
		}
		r.ClickTime = click.Int64
		m[r.TraceID] = r
	}
	return m, rows.Err()
}

// FeatureHistory reads user_feature_history.
func (s *SQLSink) FeatureHistory(ctx context.Context) ([]FeatureRow, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT user_id, window_start, window_end, visited_items FROM user_feature_history`)
	if err != nil {
		return nil, fmt.Errorf("features sink: %w", err)
	}
	defer rows.Close()
	var out []FeatureRow
	for rows.Next() {
		var r FeatureRow
		if err := rows.Scan(&r.UserID, &r.WindowStart, &r.WindowEnd, &r.VisitedItems); err != nil {
			return nil, fmt.Errorf("features sink: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}
