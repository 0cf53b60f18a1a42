package app

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/pyudf/pyudf/examples/appkit/sqlsink"
)

// Totals are one province's sums.
type Totals struct {
	AccessCount      int64 // records
	TotalDownload    int64 // sum(response_size), bytes
	TotalRequestTime int64 // sum(request_time), milliseconds
}

// Speed is download_speed: sum(response_size) / sum(request_time), bytes per
// millisecond (0 when no time was spent).
func (t Totals) Speed() float64 {
	if t.TotalRequestTime == 0 {
		return 0
	}
	return float64(t.TotalDownload) / float64(t.TotalRequestTime)
}

// Flush is what one flush adds to the table: the sums of the records of
// stream sequences From+1 ... To (To > From), and the bad records among them.
type Flush struct {
	Stream   string
	From, To uint64
	Regions  map[string]*Totals
	Bad      map[string]int64
}

// ErrCheckpointMoved: the table's checkpoint is neither where this flush
// starts nor where it ends; another writer is updating the same table from
// the same stream. The flush is not applied.
var ErrCheckpointMoved = errors.New("cdn sink: the checkpoint moved under this writer")

// SQLSink keeps the statistics in a SQL database: SQLite or PostgreSQL.
//
// Tables: cdn_access_statistic (province, access_count, total_download,
// total_request_time, download_speed), cdn_bad_record (reason, count) and
// cdn_checkpoint (stream, last_seq: the last stream sequence whose record is
// counted). A Flush is one transaction that adds its sums and moves the
// checkpoint from From to To: the sums and the position in the stream
// commit together or not at all.
type SQLSink struct {
	db *sql.DB
	d  sqlsink.Dialect
}

// Tables are the sink's tables.
var Tables = []string{"cdn_access_statistic", "cdn_bad_record", "cdn_checkpoint"}

// OpenSink opens the database named by dsn: postgres://... or
// postgresql://... is PostgreSQL (through pgx); anything else is a SQLite
// file path (or a "file:" URI). It creates the tables if missing.
func OpenSink(ctx context.Context, dsn string) (*SQLSink, error) {
	db, d, err := sqlsink.Open(ctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("cdn sink: %w", err)
	}
	if err := sqlsink.Exec(ctx, db,
		`CREATE TABLE IF NOT EXISTS cdn_access_statistic (
			province TEXT PRIMARY KEY,
			access_count BIGINT NOT NULL,
			total_download BIGINT NOT NULL,
			total_request_time BIGINT NOT NULL,
			download_speed DOUBLE PRECISION NOT NULL)`,
		`CREATE TABLE IF NOT EXISTS cdn_bad_record (reason TEXT PRIMARY KEY, count BIGINT NOT NULL)`,
		`CREATE TABLE IF NOT EXISTS cdn_checkpoint (stream TEXT PRIMARY KEY, last_seq BIGINT NOT NULL)`,
	); err != nil {
		db.Close()
		return nil, fmt.Errorf("cdn sink: creating the tables: %w", err)
	}
	return &SQLSink{db: db, d: d}, nil
}

// Reset empties the three tables.
func (s *SQLSink) Reset(ctx context.Context) error {
	if err := sqlsink.Empty(ctx, s.db, Tables...); err != nil {
		return fmt.Errorf("cdn sink: %w", err)
	}
	return nil
}

// DB is the database handle (for reading the tables).
func (s *SQLSink) DB() *sql.DB { return s.db }

// Close closes the database.
func (s *SQLSink) Close() error { return s.db.Close() }

// Checkpoint returns the last stream sequence counted in the table (0: none).
func (s *SQLSink) Checkpoint(ctx context.Context, stream string) (uint64, error) {
	return s.checkpoint(ctx, s.db, stream)
}

type queryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func (s *SQLSink) checkpoint(ctx context.Context, q queryer, stream string) (uint64, error) {
	var seq int64
	err := q.QueryRowContext(ctx, s.d.Rebind(`SELECT last_seq FROM cdn_checkpoint WHERE stream = $1`), stream).Scan(&seq)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("cdn sink: reading the checkpoint: %w", err)
	}
	return uint64(seq), nil
}

// Commit applies f in one transaction. It first reads the checkpoint: if it
// already is f.To, an earlier attempt of this flush committed although its
// COMMIT's reply was lost (the connection dropped), and Commit returns
// (false, nil) without adding anything again; if it is neither f.From nor
// f.To, ErrCheckpointMoved.
func (s *SQLSink) Commit(ctx context.Context, f *Flush) (applied bool, err error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("cdn sink: begin: %w", err)
	}
	defer func() {
		if err != nil || !applied {
			_ = tx.Rollback()
		}
	}()
	var cur int64
	switch err := tx.QueryRowContext(ctx, s.d.Rebind(`SELECT last_seq FROM cdn_checkpoint WHERE stream = $1`+s.d.ForUpdate()), f.Stream).Scan(&cur); {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return false, fmt.Errorf("cdn sink: reading the checkpoint: %w", err)
	}
	switch uint64(cur) {
	case f.To:
		return false, nil
	case f.From:
	default:
		return false, fmt.Errorf("%w: stream %s is at %d in the table, this flush covers %d..%d", ErrCheckpointMoved, f.Stream, cur, f.From+1, f.To)
	}
	up := s.d.Rebind(`INSERT INTO cdn_access_statistic (province, access_count, total_download, total_request_time, download_speed)
		VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (province) DO UPDATE SET
			access_count = cdn_access_statistic.access_count + excluded.access_count,
			total_download = cdn_access_statistic.total_download + excluded.total_download,
			total_request_time = cdn_access_statistic.total_request_time + excluded.total_request_time,
			download_speed = CASE WHEN cdn_access_statistic.total_request_time + excluded.total_request_time = 0 THEN 0
				ELSE CAST(cdn_access_statistic.total_download + excluded.total_download AS DOUBLE PRECISION)
					/ (cdn_access_statistic.total_request_time + excluded.total_request_time) END`)
	for p, t := range f.Regions {
		if _, err := tx.ExecContext(ctx, up, p, t.AccessCount, t.TotalDownload, t.TotalRequestTime, t.Speed()); err != nil {
			return false, fmt.Errorf("cdn sink: upserting %q: %w", p, err)
		}
	}
	bad := s.d.Rebind(`INSERT INTO cdn_bad_record (reason, count) VALUES ($1, $2)
		ON CONFLICT (reason) DO UPDATE SET count = cdn_bad_record.count + excluded.count`)
	for r, n := range f.Bad {
		if _, err := tx.ExecContext(ctx, bad, r, n); err != nil {
			return false, fmt.Errorf("cdn sink: counting bad records: %w", err)
		}
	}
	if _, err := tx.ExecContext(ctx, s.d.Rebind(`INSERT INTO cdn_checkpoint (stream, last_seq) VALUES ($1, $2)
		ON CONFLICT (stream) DO UPDATE SET last_seq = excluded.last_seq`), f.Stream, int64(f.To)); err != nil {
		return false, fmt.Errorf("cdn sink: moving the checkpoint: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("cdn sink: commit: %w", err)
	}
	return true, nil
}

// Statistics reads cdn_access_statistic: province -> totals.
func (s *SQLSink) Statistics(ctx context.Context) (map[string]Totals, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT province, access_count, total_download, total_request_time FROM cdn_access_statistic`)
	if err != nil {
		return nil, fmt.Errorf("cdn sink: %w", err)
	}
	defer rows.Close()
	m := map[string]Totals{}
	for rows.Next() {
		var p string
		var t Totals
		if err := rows.Scan(&p, &t.AccessCount, &t.TotalDownload, &t.TotalRequestTime); err != nil {
			return nil, fmt.Errorf("cdn sink: %w", err)
		}
		m[p] = t
	}
	return m, rows.Err()
}

// BadRecords reads cdn_bad_record: reason -> count.
func (s *SQLSink) BadRecords(ctx context.Context) (map[string]int64, error) {
	m, err := sqlsink.Counts(ctx, s.db, `SELECT reason, count FROM cdn_bad_record`)
	if err != nil {
		return nil, fmt.Errorf("cdn sink: %w", err)
	}
	return m, nil
}
