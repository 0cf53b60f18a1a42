// Package appkit is what pyudf's example applications (examples/cdn,
// examples/features, examples/inference) share: the plumbing around the part
// each one is about.
//
//   - [Retrier] and [Do]: an operation on a dependency (the SQL sink) retried
//     with back-off until it succeeds or the context is done, logging the
//     outage and its end, and telling the progress line that the sink is
//     down. [Backoff] and [Sleep] for the loops that retry by hand (a fetch,
//     a UDF call).
//   - [Seen]: occurrences counted per key, for logging the first few bad
//     records of each reason and counting the rest.
//   - [Progress]: the progress line (records, rows/s) printed every few
//     seconds instead of a log flood, and once more at the end.
//   - [SignalContext], [ParseMode], [Connect] and [Broker]: the command's
//     wiring: Ctrl-C/SIGTERM, -mode thread|process, an embedded nats-server
//     (fresh store) or a remote one, EnsureStream.
//   - [Publish] (a generator's records published with a window of
//     outstanding PubAcks) and [Feed] (the generator run before or beside the
//     app, then the app told to stop at the stream's last sequence; with
//     [Feed.Run], stopped when the app returns).
//
// Sub-packages: [github.com/pyudf/pyudf/examples/appkit/sqlsink] opens the
// -db string (a SQLite file through modernc.org/sqlite, or postgres://...
// through pgx) and has the dialect helpers;
// [github.com/pyudf/pyudf/examples/appkit/pgtest] starts a real PostgreSQL
// server on the loopback address for tests;
// [github.com/pyudf/pyudf/examples/appkit/apptest] has the test helpers
// (TestMain re-executing the command, Ctrl-C on a progress line,
// SyncBuffer, WaitFor, an embedded broker).
//
// examples/cdn uses all of it. To convert examples/features and
// examples/inference (mechanical; add `require
// github.com/pyudf/pyudf/examples/appkit v0.0.0` and `replace
// github.com/pyudf/pyudf/examples/appkit => ../appkit` to the go.mod):
//
//   - main.go: the -mode switch → [ParseMode]; signal.NotifyContext and the
//     second-Ctrl-C goroutine → [SignalContext]; embedded.Start +
//     nats.Connect + jetstream.New + defers → [Connect] + defer b.Close();
//     runner.EnsureStream → b.EnsureStream; the generate closure, genDone and
//     the StopAt-from-LastSeq lookup → [Feed] (Preload: *preload; StopAt:
//     a.StopAt, or nil with -follow); features' runWithGenerator (the
//     generator cancelled once Run returns) → [Feed.Run]; inference's second publish (model v2
//     after -swap-after records) stays inside its Feed.Publish func. The
//     "SQLite x"/"PostgreSQL" summary name → sqlsink.Describe.
//   - app.go: retry[T] + sinkDown + the retries counter → a [Retrier]
//     (Name "sink", Permanent: errors.Is(err, ErrCheckpointMoved); features
//     logs only the first failure of an outage: Quiet: true) and [Do];
//     Stats.Retries/FlushRetries ← r.Failures(); the progress line's
//     "SINK DOWN" ← r.Down(); the fetch loop's back-off → [Backoff];
//     sleep → [Sleep]; the logged map (features) / badBy ordinals
//     (inference) → [Seen].Add; progress() → [Progress] with the app's own
//     line func.
//   - event.go / record.go: Publish's PubAck window → [Publish] with a
//     next func over the generator (inference counts its bad records in
//     that func).
//   - sink.go: OpenSink's DSN handling, SetMaxOpenConns and driver string →
//     sqlsink.Open (a [sqlsink.Dialect]); q() → Dialect.Rebind; the
//     " FOR UPDATE" and BLOB/BYTEA switches → Dialect.ForUpdate/Blob; the
//     CREATE TABLE loop → sqlsink.Exec; Reset → sqlsink.Empty; Counts →
//     sqlsink.Counts.
//   - pg_test.go → delete; startPostgres(t) → pgtest.Start(t), p.stop /
//     p.start → Stop / Restart, p.URL() → URL().
//   - main_test.go TestMain/command → apptest.Main / apptest.Command;
//     TestCommandCtrlC's StderrPipe/scan/SIGINT/Wait loop → apptest.Interrupt
//     with a func matching the progress line; syncBuffer → apptest.SyncBuffer; waitFor → apptest.WaitFor;
//     broker(t) → apptest.Broker(t, DefaultStream, DefaultSubject).
package appkit
