// Package sqlsink opens the SQL database an example application writes to,
// from its -db string: postgres://... or postgresql://... is PostgreSQL
// through pgx (database/sql driver "pgx"); anything else is a SQLite file
// path or "file:" URI through modernc.org/sqlite (pure Go, so the binary
// has no second cgo library), opened with a 10 s busy timeout, WAL, and
// one connection (one writer). Queries are written once, with PostgreSQL's
// $N placeholders, and adapted by [Dialect.Rebind].
package sqlsink

import (
	"context"
	"database/sql"
	"fmt"
	"regexp"
	"strings"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
	_ "modernc.org/sqlite"             // database/sql driver "sqlite"
)

// Dialect is the database kind.
type Dialect int

// Dialects.
const (
	SQLite Dialect = iota
	Postgres
)

// DialectOf says which database dsn names.
func DialectOf(dsn string) Dialect {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		return Postgres
	}
	return SQLite
}

// String is "SQLite" or "PostgreSQL".
func (d Dialect) String() string {
	if d == Postgres {
		return "PostgreSQL"
	}
	return "SQLite"
}

// Driver is the database/sql driver name: "sqlite" or "pgx".
func (d Dialect) Driver() string {
	if d == Postgres {
		return "pgx"
	}
	return "sqlite"
}

var placeholder = regexp.MustCompile(`\$([0-9]+)`)

// Rebind adapts a query written with $N placeholders: SQLite's numbered
// form is ?N (the same argument N, so a placeholder may repeat).
func (d Dialect) Rebind(query string) string {
	if d == Postgres {
		return query
	}
	return placeholder.ReplaceAllString(query, "?$1")
}

// ForUpdate is " FOR UPDATE" for PostgreSQL (locking the rows a
// transaction reads); SQLite's transactions already exclude other writers.
func (d Dialect) ForUpdate() string {
	if d == Postgres {
		return " FOR UPDATE"
	}
	return ""
}

// Blob is the type of a byte-string column: BYTEA or BLOB.
func (d Dialect) Blob() string {
	if d == Postgres {
		return "BYTEA"
	}
	return "BLOB"
}

// Describe names the sink for a summary line: "PostgreSQL", or "SQLite "
// and the file (a PostgreSQL URL may hold a password: it is not shown).
func Describe(dsn string) string {
	if DialectOf(dsn) == Postgres {
		return "PostgreSQL"
	}
	return "SQLite " + dsn
}

// Open opens the database dsn names (see the package documentation) and
// checks that it answers.
func Open(ctx context.Context, dsn string) (*sql.DB, Dialect, error) {
	d := DialectOf(dsn)
	if d == SQLite {
		if !strings.HasPrefix(dsn, "file:") {
			dsn = "file:" + dsn
		}
		sep := "?"
		if strings.Contains(dsn, "?") {
			sep = "&"
		}
		dsn += sep + "_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)"
	}
	db, err := sql.Open(d.Driver(), dsn)
	if err != nil {
		return nil, d, fmt.Errorf("opening %s: %w", d, err)
	}
	if d == SQLite {
		db.SetMaxOpenConns(1) // one writer; readers use a handle of their own
	}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, d, fmt.Errorf("opening %s: %w", d, err)
	}
	return db, d, nil
}

// Exec runs the statements in order (CREATE TABLE IF NOT EXISTS ...); it
// stops at the first that fails, naming it.
func Exec(ctx context.Context, db *sql.DB, stmts ...string) error {
	for _, q := range stmts {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("%s: %w", clip(strings.Join(strings.Fields(q), " "), 60), err)
		}
	}
	return nil
}

// Empty deletes every row of the tables.
func Empty(ctx context.Context, db *sql.DB, tables ...string) error {
	for _, t := range tables {
		if _, err := db.ExecContext(ctx, "DELETE FROM "+t); err != nil {
			return fmt.Errorf("emptying %s: %w", t, err)
		}
	}
	return nil
}

// Counts runs query, whose rows are (key TEXT, count BIGINT), and returns
// them as a map.
func Counts(ctx context.Context, db *sql.DB, query string, args ...any) (map[string]int64, error) {
	rows, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	m := map[string]int64{}
	for rows.Next() {
		var k string
		var n int64
		if err := rows.Scan(&k, &n); err != nil {
			return nil, err
		}
		m[k] = n
	}
	return m, rows.Err()
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n-3] + "..."
	}
	return s
}
