package sqlsink

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

func TestDialect(t *testing.T) {
	for dsn, want := range map[string]string{
		"cdn.db":                          "SQLite sqlite SQLite cdn.db",
		"file:x.db?mode=rwc":              "SQLite sqlite SQLite file:x.db?mode=rwc",
		"postgres://u:secret@h/db":        "PostgreSQL pgx PostgreSQL",
		"postgresql://u@127.0.0.1:5432/d": "PostgreSQL pgx PostgreSQL",
	} {
		d := DialectOf(dsn)
		if got := fmt.Sprint(d, " ", d.Driver(), " ", Describe(dsn)); got != want {
			t.Errorf("%s: %q, want %q", dsn, got, want)
		}
	}
	q := `UPDATE t SET a = $1, b = $12 WHERE c = $1`
	if got := SQLite.Rebind(q); got != `UPDATE t SET a = ?1, b = ?12 WHERE c = ?1` {
		t.Errorf("SQLite.Rebind: %q", got)
	}
	if Postgres.Rebind(q) != q || Postgres.ForUpdate() != " FOR UPDATE" || SQLite.ForUpdate() != "" ||
		Postgres.Blob() != "BYTEA" || SQLite.Blob() != "BLOB" {
		t.Error("Postgres dialect helpers")
	}
}

// TestSQLite: Open a SQLite file, Exec the schema, a rebound upsert with a
// repeated placeholder, Counts, Empty; a failing statement is named.
func TestSQLite(t *testing.T) {
	ctx := context.Background()
	db, d, err := Open(ctx, filepath.Join(t.TempDir(), "t.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if d != SQLite {
		t.Fatalf("dialect %v", d)
	}
	if err := Exec(ctx, db, `CREATE TABLE IF NOT EXISTS c (k TEXT PRIMARY KEY, n BIGINT NOT NULL)`,
		`CREATE TABLE IF NOT EXISTS b (v `+d.Blob()+`)`); err != nil {
		t.Fatal(err)
	}
	up := d.Rebind(`INSERT INTO c (k, n) VALUES ($1, $2) ON CONFLICT (k) DO UPDATE SET n = c.n + $2`)
	for _, kv := range []struct {
		k string
		n int64
	}{{"a", 1}, {"b", 5}, {"a", 2}} {
		if _, err := db.ExecContext(ctx, up, kv.k, kv.n); err != nil {
			t.Fatal(err)
		}
	}
	m, err := Counts(ctx, db, d.Rebind(`SELECT k, n FROM c WHERE n > $1`), 0)
	if err != nil || fmt.Sprint(m) != "map[a:3 b:5]" {
		t.Fatalf("Counts %v, %v; want map[a:3 b:5]", m, err)
	}
	if err := Empty(ctx, db, "c", "b"); err != nil {
		t.Fatal(err)
	}
	if m, err := Counts(ctx, db, `SELECT k, n FROM c`); err != nil || len(m) != 0 {
		t.Errorf("after Empty: %v, %v", m, err)
	}
	err = Exec(ctx, db, `CREATE TABLE nope (`)
	if err == nil || !strings.HasPrefix(err.Error(), "CREATE TABLE nope (: ") {
		t.Errorf("a bad statement: %v", err)
	}
	if err := Empty(ctx, db, "missing"); err == nil || !strings.HasPrefix(err.Error(), "emptying missing: ") {
		t.Errorf("Empty(missing): %v", err)
	}
}

// TestOpenFails: a database that cannot be opened is an error at Open
// (not at the first query), naming the dialect.
func TestOpenFails(t *testing.T) {
	_, _, err := Open(context.Background(), filepath.Join(t.TempDir(), "no", "such", "dir", "t.db"))
	if err == nil || !strings.HasPrefix(err.Error(), "opening SQLite: ") {
		t.Errorf("SQLite in a missing directory: %v", err)
	}
}
