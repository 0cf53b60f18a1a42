package pgtest

import (
	"context"
	"database/sql"
	"testing"
	"time"
)

// TestServer: a query works; after Stop it fails; after Restart the same
// data is there again on the same URL.
func TestServer(t *testing.T) {
	pg := Start(t)
	db, err := sql.Open("pgx", pg.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	if _, err := db.ExecContext(ctx, `CREATE TABLE t (n INT); INSERT INTO t VALUES (7)`); err != nil {
		t.Fatal(err)
	}
	pg.Stop()
	pg.Stop() // a stopped server is left alone
	qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	err = db.QueryRowContext(qctx, `SELECT 1`).Scan(new(int))
	cancel()
	if err == nil {
		t.Fatal("a query to a stopped server succeeded")
	}
	pg.Restart()
	var n int
	if err := db.QueryRowContext(ctx, `SELECT n FROM t`).Scan(&n); err != nil || n != 7 {
		t.Fatalf("after Restart: %d, %v; want 7", n, err)
	}
}
