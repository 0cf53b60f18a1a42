package benthos

import (
	"fmt"
	"strings"

	"github.com/redpanda-data/benthos/v4/public/bloblang"
	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/pyudf/pyudf/engine"
)

// ConfigSpec is the pyudf processor's configuration, as `benthos list` and
// the docs show it.
func ConfigSpec() *service.ConfigSpec {
	return service.NewConfigSpec().
		Beta().
		Categories("Mapping", "Integration").
		Summary("Runs a PyFlink-style Python UDF (general, Pandas or Arrow) over each message batch, in-process.").
		Description(`
The UDF is PyFlink code (`+"`@udf`"+`, `+"`ScalarFunction`"+`, `+"`udf(..., func_type=\"pandas\")`"+`) run by
pyudf's embedded CPython (mode `+"`thread`"+`) or by Python worker processes (mode `+"`process`"+`).
The function must declare its result type.

A general UDF runs row by row over the whole batch in one call into Python; a row whose call raises
gets the Python error attached to its message, so `+"`catch`"+`, `+"`try`"+` and dead-letter outputs
handle it, and the other messages go on. A Pandas or Arrow UDF gets the batch as one Arrow record
batch (one `+"`pd.Series`"+` or `+"`pyarrow.Array`"+` per argument); if it raises, every message of
the batch carries the error.

By default the message's raw content is the one argument (a STRING, or BYTES if the function declares
BYTES). `+"`args`"+` takes arguments from fields of the structured (JSON) message instead, and
`+"`args_mapping`"+` computes them with Bloblang. Argument types are the function's declared
input types; undeclared ones are taken from the values (string, bytes, bool, integer as BIGINT,
number as DOUBLE).

The result replaces the message (a string or bytes result becomes its raw content, any other value
its structured content), or `+"`result_map`"+` maps it into the message.

The source is loaded, the function looked up and opened, and the arguments counted against its
declared input types when the pipeline starts: a missing function, a file that does not compile or
an `+"`args_mapping`"+` of the wrong arity stops the pipeline from starting.`).
		Fields(
			service.NewStringField(fieldFile).Optional().
				Description("A Python file holding the UDF.").Example("./udfs.py"),
			service.NewStringField(fieldModule).Optional().
				Description("An importable Python module holding the UDF (see `python_path`).").Example("mycompany.udfs"),
			service.NewStringField(fieldScript).Optional().
				Description("The UDF's Python source, inline.").
				Example("from pyflink.table.udf import udf\n\n@udf(result_type='STRING')\ndef upper(s: str) -> str:\n    return s.upper()\n"),
			service.NewStringField(fieldFunction).
				Description("The name of the UDF in the source.").Example("upper"),
			service.NewStringAnnotatedEnumField(fieldMode, map[string]string{
				"thread":          "CPython embedded in this process: no copies, no IPC (the default).",
				"process":         "Python worker processes over Arrow IPC: a crashing UDF kills only its worker, which is restarted.",
				"subinterpreters": "The sub-interpreter pool (CPython 3.12+). Batches run on the main interpreter, so for this processor it behaves as `thread`.",
			}).Default("thread").Description("Where Python runs."),
			service.NewIntField(fieldWorkers).Default(0).Advanced().
				Description("Worker processes in mode `process` (0: one per CPU)."),
			service.NewStringMapField(fieldJobParameters).Default(map[string]any{}).
				Description("What `function_context.get_job_parameter(key, default)` returns in the UDF's `open()`.").
				Example(map[string]any{"threshold": "0.5"}),
			service.NewStringListField(fieldPythonPath).Default([]any{}).Advanced().
				Description("Directories appended to `sys.path`."),
			service.NewStringListField(fieldArgs).Optional().
				Description("Fields of the structured message, by dot path, that are the UDF's arguments, in order. A missing field is null.").
				Example([]any{"name", "address.city"}),
			service.NewBloblangField(fieldArgsMapping).Optional().
				Description("A Bloblang mapping whose result, an array, is the UDF's arguments.").
				Example(`root = [ this.name, this.age + 1 ]`),
			service.NewBloblangField(fieldResultMap).Optional().
				Description("A Bloblang mapping that puts the result into the message: `this` is the result, `root` the original message. Without it the result replaces the message.").
				Example(`root.upper = this`),
		).
		LintRule(`root = match {
  [this.file, this.module, this.script].filter(v -> v != null && v != "").length() != 1 => [ "exactly one of file, module or script must be set" ],
  this.args.or([]).length() > 0 && this.args_mapping.or("") != "" => [ "args and args_mapping cannot both be set" ],
}`).
		Example("Upper-case each message", "A general UDF from an inline script replaces each message's content.", `
pipeline:
  processors:
    - pyudf:
        function: upper
        script: |
          from pyflink.table.udf import udf

          @udf(result_type='STRING')
          def upper(s: str) -> str:
              return s.upper()
`).
		Example("Score structured messages with Pandas", "A Pandas UDF gets the batch as one Arrow record batch; the score goes into a field.", `
pipeline:
  processors:
    - pyudf:
        file: ./score.py
        function: score
        args: [ amount, country ]
        result_map: root.score = this
`)
}

const (
	fieldFile          = "file"
	fieldModule        = "module"
	fieldScript        = "script"
	fieldFunction      = "function"
	fieldMode          = "mode"
	fieldWorkers       = "workers"
	fieldJobParameters = "job_parameters"
	fieldPythonPath    = "python_path"
	fieldArgs          = "args"
	fieldArgsMapping   = "args_mapping"
	fieldResultMap     = "result_map"
)

// config is a parsed pyudf processor configuration.
type config struct {
	file, module, script string
	function             string
	engine               engine.Config
	args                 *argSource
	resultMap            *bloblang.Executor
}

func (c *config) sourceName() string {
	switch {
	case c.file != "":
		return fmt.Sprintf("file %q", c.file)
	case c.module != "":
		return fmt.Sprintf("module %q", c.module)
	}
	return "the inline script"
}

func parseConfig(conf *service.ParsedConfig) (*config, error) {
	c := &config{}
	var err error
	for _, f := range []struct {
		name string
		dst  *string
	}{{fieldFile, &c.file}, {fieldModule, &c.module}, {fieldScript, &c.script}} {
		if conf.Contains(f.name) {
			if *f.dst, err = conf.FieldString(f.name); err != nil {
				return nil, err
			}
		}
	}
	set := 0
	for _, s := range []string{c.file, c.module, c.script} {
		if s != "" {
			set++
		}
	}
	if set != 1 {
		return nil, fmt.Errorf("pyudf: exactly one of file, module or script must be set (%d are)", set)
	}
	if c.function, err = conf.FieldString(fieldFunction); err != nil {
		return nil, err
	}
	if strings.TrimSpace(c.function) == "" {
		return nil, fmt.Errorf("pyudf: function must name the UDF")
	}

	mode, err := conf.FieldString(fieldMode)
	if err != nil {
		return nil, err
	}
	switch mode {
	case "thread":
		c.engine.Mode = engine.Thread
	case "process":
		c.engine.Mode = engine.Process
	case "subinterpreters":
		c.engine.Mode = engine.Subinterpreters
	default:
		return nil, fmt.Errorf("pyudf: mode %q: want thread, process or subinterpreters", mode)
	}
	if c.engine.Workers, err = conf.FieldInt(fieldWorkers); err != nil {
		return nil, err
	}
	if c.engine.JobParameters, err = conf.FieldStringMap(fieldJobParameters); err != nil {
		return nil, err
	}
	if c.engine.Path, err = conf.FieldStringList(fieldPythonPath); err != nil {
		return nil, err
	}

	// An optional field reads as present (and empty) when it is not set.
	c.args = &argSource{}
	var names []string
	if conf.Contains(fieldArgs) {
		if names, err = conf.FieldStringList(fieldArgs); err != nil {
			return nil, err
		}
	}
	if c.args.mapping, err = optionalBloblang(conf, fieldArgsMapping); err != nil {
		return nil, err
	}
	if len(names) > 0 && c.args.mapping != nil {
		return nil, fmt.Errorf("pyudf: args and args_mapping cannot both be set")
	}
	if len(names) > 0 {
		c.args.fields = make([][]string, len(names))
		for i, n := range names {
			if n == "" {
				return nil, fmt.Errorf("pyudf: args[%d] is empty", i)
			}
			c.args.fields[i] = strings.Split(n, ".")
		}
		c.args.names = names
	}
	if c.resultMap, err = optionalBloblang(conf, fieldResultMap); err != nil {
		return nil, err
	}
	return c, nil
}

// optionalBloblang is the mapping of an optional field, or nil if unset.
func optionalBloblang(conf *service.ParsedConfig, name string) (*bloblang.Executor, error) {
	if !conf.Contains(name) {
		return nil, nil
	}
	if s, err := conf.FieldString(name); err != nil || strings.TrimSpace(s) == "" {
		return nil, err
	}
	return conf.FieldBloblang(name)
}
