package app

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pyudf/pyudf/examples/appkit"
)

// Features are the model's inputs, in the order the UDFs take them.
var Features = [4]string{"sepal_length", "sepal_width", "petal_length", "petal_width"}

// Record is one feature record, a JSON object on the input subject:
//
//	{"id":"r000042","key":"u0007","sepal_length":5.1,"sepal_width":3.5,"petal_length":1.4,"petal_width":0.2}
type Record struct {
	ID, Key  string
	Features [4]float64
}

// JSON is the record as published.
func (r Record) JSON() []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, `{"id":%q,"key":%q`, r.ID, r.Key)
	for i, f := range Features {
		fmt.Fprintf(&b, `,%q:%s`, f, strconv.FormatFloat(r.Features[i], 'g', -1, 64))
	}
	b.WriteByte('}')
	return b.Bytes()
}

// Reasons a record is bad (the Reason of its *runner.DecodeError).
const (
	ReasonNotJSON    = "not a JSON object"
	ReasonMissing    = "missing field"
	ReasonNotNumeric = "non-numeric feature"
	ReasonBadField   = "bad field" // id or key not a non-empty string
)

// BadRecordError is a record that cannot be predicted: Reason is one of
// the Reason constants, Field the field at fault ("" for the record as a
// whole), Detail what was there.
type BadRecordError struct {
	Reason, Field, Detail string
}

func (e *BadRecordError) Error() string {
	s := "bad feature record: " + e.Reason
	if e.Field != "" {
		s += " " + e.Field
	}
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return s
}

// ParseRecord decodes a feature record. A record that is not a JSON
// object, lacks id, key or a feature (or has it null), has an id or key that
// is not a non-empty string, or a feature that is not a finite number is a
// *BadRecordError.
func ParseRecord(data []byte) (Record, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return Record{}, &BadRecordError{Reason: ReasonNotJSON, Detail: err.Error()}
	}
	var r Record
	for _, f := range [2]struct {
		name string
		dst  *string
	}{{"id", &r.ID}, {"key", &r.Key}} {
		raw, ok := m[f.name]
		if !ok {
			return r, &BadRecordError{Reason: ReasonMissing, Field: f.name}
		}
		if string(raw) == "null" {
			return r, &BadRecordError{Reason: ReasonMissing, Field: f.name}
		}
		if err := json.Unmarshal(raw, f.dst); err != nil {
			return r, &BadRecordError{Reason: ReasonBadField, Field: f.name, Detail: "not a string: " + clip(string(raw))}
		}
		if *f.dst == "" {
			return r, &BadRecordError{Reason: ReasonBadField, Field: f.name, Detail: "empty"}
		}
	}
	for i, name := range Features {
		raw, ok := m[name]
		if !ok || string(raw) == "null" {
			return r, &BadRecordError{Reason: ReasonMissing, Field: name}
		}
		var v float64
		if err := json.Unmarshal(raw, &v); err != nil || math.IsInf(v, 0) || math.IsNaN(v) {
			return r, &BadRecordError{Reason: ReasonNotNumeric, Field: name, Detail: clip(string(raw)) + " is not a number"}
		}
		r.Features[i] = v
	}
	return r, nil
}

// Args are the record as the UDFs' arguments.
func (r Record) Args() []any {
	return []any{r.ID, r.Key, r.Features[0], r.Features[1], r.Features[2], r.Features[3]}
}

func clip(s string) string {
	if len(s) > 40 {
		return s[:37] + "..."
	}
	return s
}

// iris's per-species means and standard deviations (from the data set),
// which the generator draws features from.
var species = [3]struct{ mean, sd [4]float64 }{
	{[4]float64{5.006, 3.428, 1.462, 0.246}, [4]float64{0.352, 0.379, 0.174, 0.105}},
	{[4]float64{5.936, 2.770, 4.260, 1.326}, [4]float64{0.516, 0.314, 0.470, 0.198}},
	{[4]float64{6.588, 2.974, 5.552, 2.026}, [4]float64{0.636, 0.322, 0.552, 0.275}},
}

// Generator makes feature records over Keys keys (u0000 ...), every
// BadEvery-th one bad (alternately a missing and a non-numeric feature).
type Generator struct {
	Keys     int
	BadEvery int
	rng      *rand.Rand
	n        int
}

// NewGenerator returns a generator seeded with seed, over 100 keys.
func NewGenerator(seed uint64) *Generator {
	return &Generator{Keys: 100, rng: rand.New(rand.NewPCG(seed, 17))}
}

// Next returns the next record's payload and whether it is bad.
func (g *Generator) Next() ([]byte, bool) {
	g.n++
	sp := species[g.rng.IntN(3)]
	r := Record{ID: fmt.Sprintf("r%07d", g.n), Key: fmt.Sprintf("u%04d", g.rng.IntN(max(g.Keys, 1)))}
	for i := range r.Features {
		r.Features[i] = math.Round(max(sp.mean[i]+g.rng.NormFloat64()*sp.sd[i], 0.1)*100) / 100
	}
	if g.BadEvery > 0 && g.n%g.BadEvery == 0 {
		if (g.n/g.BadEvery)%2 == 1 {
			return fmt.Appendf(nil, `{"id":%q,"key":%q,"sepal_length":%g,"sepal_width":%g,"petal_length":%g}`,
				r.ID, r.Key, r.Features[0], r.Features[1], r.Features[2]), true
		}
		return fmt.Appendf(nil, `{"id":%q,"key":%q,"sepal_length":%g,"sepal_width":"n/a","petal_length":%g,"petal_width":%g}`,
			r.ID, r.Key, r.Features[0], r.Features[2], r.Features[3]), true
	}
	return r.JSON(), false
}

// Publish publishes n generated records to subject (asynchronously, up to
// 2048 awaiting their PubAck) and returns how many JetStream acknowledged
// and how many of those were bad.
func Publish(ctx context.Context, js jetstream.JetStream, subject string, g *Generator, n int) (done, bad int, err error) {
	var isBad []bool // of each record published, in order
	done, err = appkit.Publish(ctx, js, subject, n, func() []byte {
		data, b := g.Next()
		isBad = append(isBad, b)
		return data
	})
	for _, b := range isBad[:done] {
		if b {
			bad++
		}
	}
	if err != nil && ctx.Err() == nil {
		err = fmt.Errorf("inference generator: %w", err)
	}
	return done, bad, err
}
