// Package pyudf runs PyFlink-style Python user-defined functions from Go:
// CPython embedded in the Go process (thread mode, and on CPython 3.12+ a
// pool of sub-interpreters), or Python worker processes reached over Arrow
// IPC (process mode). This package holds no code; it documents the module.
//
// # The API
//
// Three packages are pyudf's API, covered by the version in go.mod and the
// CHANGELOG:
//
//   - github.com/pyudf/pyudf/engine: Engine, Module, Function, Aggregate,
//     Stream, Windows, metrics. Start here.
//   - github.com/pyudf/pyudf/bridge: the SQL type system (DataType, parsed
//     from Flink's DDL), Value and the typed constructors (Date, RowOf ...),
//     and the error types (PythonError, ConversionError).
//   - github.com/pyudf/pyudf/arrowconv: Arrow record batches (arrow-go/v18)
//     through the C Data Interface, the C-memory Allocator, SQL to Arrow types.
//
// # Internal machinery
//
// Package cgo (the C shim over the CPython C API), internal/... and
// package pyruntime under python/ (the embedded Python runtime) are
// internal machinery: they are importable only because Go's layout needs
// them to be, they change whenever the engine needs them to, and they carry
// no stability promise at any version. Do not import them.
//
// The README and docs/ describe what the engine does and what it costs:
// https://github.com/pyudf/pyudf (README.md, docs/).
package pyudf
