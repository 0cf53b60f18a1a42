package bridge

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
)

// Kind is a SQL type's kind.
type Kind uint8

// The SQL type kinds, as Flink names them.
const (
	BooleanType Kind = iota + 1
	TinyIntType
	SmallIntType
	IntType
	BigIntType
	FloatType
	DoubleType
	DecimalType
	CharType
	VarCharType
	BinaryType
	VarBinaryType
	DateType
	TimeType
	TimestampType
	TimestampLTZType
	ArrayType
	MapType
	RowType
)

// MaxLength is the length of STRING (VARCHAR) and BYTES (VARBINARY).
const MaxLength = 2147483647

// DataType is a SQL data type: a function's argument or result type.
type DataType struct {
	Kind    Kind
	NotNull bool
	// Length of CHAR, VARCHAR, BINARY, VARBINARY (MaxLength for STRING, BYTES).
	Length int
	// Precision of DECIMAL (digits), TIME, TIMESTAMP, TIMESTAMP_LTZ (fractional digits).
	Precision int
	// Scale of DECIMAL.
	Scale  int
	Elem   *DataType // ARRAY element
	Key    *DataType // MAP key
	Value  *DataType // MAP value
	Fields []Field   // ROW fields
}

// Field is a named field of a ROW type.
type Field struct {
	Name string
	Type *DataType
}

// String spells t in DDL, as ParseType reads it.
func (t *DataType) String() string {
	var b strings.Builder
	t.write(&b)
	return b.String()
}

func (t *DataType) write(b *strings.Builder) {
	switch t.Kind {
	case DecimalType:
		fmt.Fprintf(b, "DECIMAL(%d, %d)", t.Precision, t.Scale)
	case CharType:
		fmt.Fprintf(b, "CHAR(%d)", t.Length)
	case VarCharType:
		if t.Length == MaxLength {
			b.WriteString("STRING")
		} else {
			fmt.Fprintf(b, "VARCHAR(%d)", t.Length)
		}
	case BinaryType:
		fmt.Fprintf(b, "BINARY(%d)", t.Length)
	case VarBinaryType:
		if t.Length == MaxLength {
			b.WriteString("BYTES")
		} else {
			fmt.Fprintf(b, "VARBINARY(%d)", t.Length)
		}
	case TimeType, TimestampType, TimestampLTZType:
		fmt.Fprintf(b, "%s(%d)", kindNames[t.Kind], t.Precision)
	case ArrayType:
		b.WriteString("ARRAY<")
		t.Elem.write(b)
		b.WriteString(">")
	case MapType:
		b.WriteString("MAP<")
		t.Key.write(b)
		b.WriteString(", ")
		t.Value.write(b)
		b.WriteString(">")
	case RowType:
		b.WriteString("ROW<")
		for i, f := range t.Fields {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(quoteName(f.Name))
			b.WriteString(" ")
			f.Type.write(b)
		}
		b.WriteString(">")
	default:
		b.WriteString(kindNames[t.Kind])
	}
	if t.NotNull {
		b.WriteString(" NOT NULL")
	}
}

var kindNames = map[Kind]string{
	BooleanType: "BOOLEAN", TinyIntType: "TINYINT", SmallIntType: "SMALLINT", IntType: "INT", BigIntType: "BIGINT",
	FloatType: "FLOAT", DoubleType: "DOUBLE", DecimalType: "DECIMAL", CharType: "CHAR", VarCharType: "VARCHAR",
	BinaryType: "BINARY", VarBinaryType: "VARBINARY", DateType: "DATE", TimeType: "TIME", TimestampType: "TIMESTAMP",
	TimestampLTZType: "TIMESTAMP_LTZ", ArrayType: "ARRAY", MapType: "MAP", RowType: "ROW",
}

func (k Kind) String() string {
	if s, ok := kindNames[k]; ok {
		return s
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

func quoteName(name string) string {
	plain := name != ""
	for i, r := range name {
		if !(r == '_' || unicode.IsLetter(r) || (i > 0 && unicode.IsDigit(r))) {
			plain = false
		}
	}
	if plain {
		return name
	}
	return "`" + strings.ReplaceAll(name, "`", "``") + "`"
}

// TypeError reports a DDL string that is not a valid type.
type TypeError struct {
	DDL    string
	Pos    int // byte offset of the problem in DDL
	Reason string
}

func (e *TypeError) Error() string {
	return fmt.Sprintf("invalid type %q at offset %d: %s", e.DDL, e.Pos, e.Reason)
}

// MustParseType is ParseType for types known to be valid; it panics otherwise.
func MustParseType(ddl string) *DataType {
	t, err := ParseType(ddl)
	if err != nil {
		panic(err)
	}
	return t
}

// ParseType reads a type in Flink's DDL: "BIGINT", "DECIMAL(10, 2)",
// "ARRAY<STRING>", "MAP<STRING, BIGINT>", "ROW<a INT, b STRING>",
// "TIMESTAMP(3)", "TIMESTAMP_LTZ(3)", "INT NOT NULL" and so on.
func ParseType(ddl string) (*DataType, error) {
	p := &parser{src: ddl}
	p.next()
	t := p.parseType()
	if p.err == nil && p.tok != "" {
		p.fail("unexpected %q after the type", p.tok)
	}
	if p.err != nil {
		return nil, p.err
	}
	return t, nil
}

type parser struct {
	src    string
	pos    int    // offset after the current token
	tok    string // current token ("" at the end); identifiers upper-cased
	raw    string // current token as written
	tokPos int
	quoted bool // current token was a `quoted` name
	err    *TypeError
}

func (p *parser) fail(format string, args ...any) {
	if p.err == nil {
		p.err = &TypeError{DDL: p.src, Pos: p.tokPos, Reason: fmt.Sprintf(format, args...)}
	}
	p.tok = ""
}

func (p *parser) next() {
	s := p.src
	for p.pos < len(s) && (s[p.pos] == ' ' || s[p.pos] == '\t' || s[p.pos] == '\n' || s[p.pos] == '\r') {
		p.pos++
	}
	p.tokPos, p.quoted = p.pos, false
	if p.pos >= len(s) {
		p.tok, p.raw = "", ""
		return
	}
	start := p.pos
	switch c := s[p.pos]; {
	case c == '`':
		var b strings.Builder
		for p.pos++; ; p.pos++ {
			if p.pos >= len(s) {
				p.fail("unterminated `name`")
				return
			}
			if s[p.pos] == '`' {
				if p.pos+1 < len(s) && s[p.pos+1] == '`' {
					b.WriteByte('`')
					p.pos++
					continue
				}
				p.pos++
				break
			}
			b.WriteByte(s[p.pos])
		}
		p.tok, p.raw, p.quoted = b.String(), b.String(), true
		return
	case c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= 0x80:
		for p.pos < len(s) {
			c := s[p.pos]
			if !(c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= 0x80) {
				break
			}
			p.pos++
		}
	default:
		p.pos++
	}
	p.raw = s[start:p.pos]
	p.tok = strings.ToUpper(p.raw)
}

func (p *parser) accept(tok string) bool {
	if p.tok == tok && !p.quoted {
		p.next()
		return true
	}
	return false
}

func (p *parser) expect(tok string) {
	if !p.accept(tok) {
		if p.tok == "" {
			p.fail("expected %q, found the end", tok)
		} else {
			p.fail("expected %q, found %q", tok, p.raw)
		}
	}
}

// optInt reads "(n)" if present; def otherwise.
func (p *parser) optInt(def int) int {
	if !p.accept("(") {
		return def
	}
	n := p.integer()
	p.expect(")")
	return n
}

func (p *parser) integer() int {
	n, err := strconv.Atoi(p.tok)
	if err != nil || n < 0 {
		p.fail("expected a number, found %q", p.raw)
		return 0
	}
	p.next()
	return n
}

func (p *parser) parseType() *DataType {
	if p.tok == "" {
		p.fail("expected a type, found the end")
		return nil
	}
	word, at := p.tok, p.tokPos
	p.next()
	t := &DataType{}
	switch word {
	case "BOOLEAN", "BOOL":
		t.Kind = BooleanType
	case "TINYINT":
		t.Kind = TinyIntType
	case "SMALLINT":
		t.Kind = SmallIntType
	case "INT", "INTEGER":
		t.Kind = IntType
	case "BIGINT":
		t.Kind = BigIntType
	case "FLOAT":
		t.Kind = FloatType
	case "DOUBLE":
		t.Kind = DoubleType
		p.accept("PRECISION")
	case "DECIMAL", "DEC", "NUMERIC":
		t.Kind, t.Precision, t.Scale = DecimalType, 10, 0
		if p.accept("(") {
			t.Precision = p.integer()
			if p.accept(",") {
				t.Scale = p.integer()
			}
			p.expect(")")
		}
		if t.Precision < 1 || t.Precision > 38 || t.Scale > t.Precision {
			p.tokPos = at
			p.fail("DECIMAL precision must be 1 to 38 and scale 0 to the precision, not (%d, %d)", t.Precision, t.Scale)
		}
	case "CHAR":
		t.Kind, t.Length = CharType, p.optInt(1)
	case "VARCHAR":
		t.Kind, t.Length = VarCharType, p.optInt(1)
	case "STRING":
		t.Kind, t.Length = VarCharType, MaxLength
	case "BINARY":
		t.Kind, t.Length = BinaryType, p.optInt(1)
	case "VARBINARY":
		t.Kind, t.Length = VarBinaryType, p.optInt(1)
	case "BYTES":
		t.Kind, t.Length = VarBinaryType, MaxLength
	case "DATE":
		t.Kind = DateType
	case "TIME":
		t.Kind, t.Precision = TimeType, p.optInt(0)
		p.withoutTimeZone()
	case "TIMESTAMP":
		t.Kind, t.Precision = TimestampType, p.optInt(6)
		if p.accept("WITH") {
			p.expect("LOCAL")
			p.expect("TIME")
			p.expect("ZONE")
			t.Kind = TimestampLTZType
		} else {
			p.withoutTimeZone()
		}
	case "TIMESTAMP_LTZ":
		t.Kind, t.Precision = TimestampLTZType, p.optInt(6)
	case "ARRAY":
		t.Kind = ArrayType
		p.expect("<")
		t.Elem = p.parseType()
		p.expect(">")
	case "MAP":
		t.Kind = MapType
		p.expect("<")
		t.Key = p.parseType()
		p.expect(",")
		t.Value = p.parseType()
		p.expect(">")
	case "ROW":
		t.Kind = RowType
		p.parseFields(t)
	default:
		p.tokPos = at
		p.fail("unknown type %q", word)
	}
	if (t.Kind == TimeType || t.Kind == TimestampType || t.Kind == TimestampLTZType) && t.Precision > 9 {
		p.tokPos = at
		p.fail("%s precision must be 0 to 9, not %d", t.Kind, t.Precision)
	}
	if p.accept("NOT") {
		p.expect("NULL")
		t.NotNull = true
	} else {
		p.accept("NULL")
	}
	if p.err != nil {
		return nil
	}
	return t
}

func (p *parser) withoutTimeZone() {
	if p.accept("WITHOUT") {
		p.expect("TIME")
		p.expect("ZONE")
	}
}

func (p *parser) parseFields(t *DataType) {
	closing := ">"
	if p.accept("(") {
		closing = ")"
	} else {
		p.expect("<")
	}
	seen := map[string]bool{}
	for p.err == nil && !p.accept(closing) {
		if len(t.Fields) > 0 {
			p.expect(",")
		}
		if p.tok == "" || (!p.quoted && !isName(p.raw)) {
			p.fail("expected a field name, found %q", p.raw)
			return
		}
		name := p.raw
		if seen[name] {
			p.fail("duplicate field name %q", name)
			return
		}
		seen[name] = true
		p.next()
		ft := p.parseType()
		if p.err == nil && p.tok != "" && p.tok[0] == '\'' {
			p.fail("field descriptions are not supported")
		}
		t.Fields = append(t.Fields, Field{Name: name, Type: ft})
	}
}

func isName(s string) bool {
	for i, r := range s {
		if !(r == '_' || unicode.IsLetter(r) || (i > 0 && unicode.IsDigit(r))) {
			return false
		}
	}
	return s != ""
}
