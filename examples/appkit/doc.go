// Package appkit is what pyudf's example applications (examples/cdn,
// examples/features, examples/inference) share: the plumbing around the part
// each one is about.
//
//   - [Retrier] and [Do]: an operation on a dependency (the SQL sink) retried
//     with back-off until it succeeds or the context is done, logging the
//     outage and its end, and telling the progress line that the sink is
//     down. [Backoff] and [Sleep] for the loops that retry by hand (a fetch,
//     a UDF call), and [Outage] to log such a loop's outage once.
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
// All three applications use it. What each keeps of its own: its Config
// defaults and flags, its record type and bad-record reasons, its SQL
// statements, and (inference) the per-reason bad counts of its Stats and a
// Ctrl-C test that waits on the consumer's ack floor rather than a progress
// line.
package appkit
