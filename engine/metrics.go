package engine

import (
	"context"
	"regexp"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// MetricKind is the kind of a Metric, as PyFlink's MetricGroup registers it.
type MetricKind string

// The metric kinds.
const (
	MetricCounter      MetricKind = "counter"      // counter(name): Value (and Count) is its count
	MetricGauge        MetricKind = "gauge"        // gauge(name, fn): Value is fn() when read
	MetricMeter        MetricKind = "meter"        // meter(name): Count events, Rate per second
	MetricDistribution MetricKind = "distribution" // distribution(name): Count, Sum, Min, Max
)

func (k MetricKind) String() string { return string(k) }

// Metric is one metric a UDF registered through
// function_context.get_metric_group(), as read by Engine.Metrics.
//
// Metrics are scoped per function, as PyFlink's metric groups are per
// operator: two functions that each register a counter "calls" have two
// metrics, told apart by Function.
type Metric struct {
	// Function is the name of the function that registered the metric
	// (the name it was looked up by).
	Function string
	Name     string
	// Groups is the path of add_group calls: Key alone for add_group(name),
	// Key and Value for add_group(key, value).
	Groups []MetricGroup
	Kind   MetricKind
	// Value of a counter or gauge.
	Value float64
	// Count of a meter's events or a distribution's updates.
	Count int64
	// Rate of a meter: events per second over its time span.
	Rate float64
	// Sum, Min and Max of a distribution's values.
	Sum, Min, Max float64
}

// MetricGroup is one add_group step.
type MetricGroup struct {
	Key   string
	Value *string
}

// MetricsOption narrows what Engine.Metrics reads.
type MetricsOption func(*metricsFilter)

type metricsFilter struct {
	functions map[string]bool
}

// WithFunction reads only the metrics of the functions named (given more
// than once, the metrics of any of them).
func WithFunction(names ...string) MetricsOption {
	return func(f *metricsFilter) {
		if f.functions == nil {
			f.functions = map[string]bool{}
		}
		for _, n := range names {
			f.functions[n] = true
		}
	}
}

// Metrics reads the current value of every metric the engine's functions
// registered, or, with WithFunction, of the functions named.
func (e *Engine) Metrics(ctx context.Context, opts ...MetricsOption) ([]Metric, error) {
	if e.closed.Load() {
		return nil, ErrClosed
	}
	var filter metricsFilter
	for _, o := range opts {
		o(&filter)
	}
	var reply struct {
		Metrics []struct {
			Function string       `json:"function"`
			Groups   [][2]*string `json:"groups"`
			Name     string       `json:"name"`
			Kind     MetricKind   `json:"kind"`
			Value    float64      `json:"value"`
			Count    int64        `json:"count"`
			Rate     float64      `json:"rate"`
			Sum      float64      `json:"sum"`
			Min      float64      `json:"min"`
			Max      float64      `json:"max"`
		} `json:"metrics"`
	}
	if err := e.control(ctx, "read metrics", map[string]any{"op": "metrics", "engine": e.id}, &reply); err != nil {
		return nil, err
	}
	out := make([]Metric, 0, len(reply.Metrics))
	for _, m := range reply.Metrics {
		if filter.functions != nil && !filter.functions[m.Function] {
			continue
		}
		metric := Metric{Function: m.Function, Name: m.Name, Kind: m.Kind, Value: m.Value, Count: m.Count, Rate: m.Rate,
			Sum: m.Sum, Min: m.Min, Max: m.Max}
		for _, g := range m.Groups {
			if g[0] != nil {
				metric.Groups = append(metric.Groups, MetricGroup{Key: *g[0], Value: g[1]})
			}
		}
		if m.Kind == MetricCounter {
			metric.Count = int64(m.Value)
		}
		out = append(out, metric)
	}
	return mergeMetrics(out), nil
}

// mergeMetrics combines the metrics that process-mode workers report under
// the same name and groups, one per worker: counters, meters and
// distributions add up; a gauge keeps the first worker's value.
func mergeMetrics(ms []Metric) []Metric {
	var out []Metric
	seen := map[string]int{}
	for _, m := range ms {
		key := string(m.Kind) + "\x00" + m.Function + "\x00" + m.Name
		for _, g := range m.Groups {
			key += "\x00" + g.Key
			if g.Value != nil {
				key += "=" + *g.Value
			}
		}
		i, ok := seen[key]
		if !ok {
			seen[key] = len(out)
			out = append(out, m)
			continue
		}
		o := &out[i]
		switch m.Kind {
		case MetricCounter:
			o.Value += m.Value
			o.Count += m.Count
		case MetricMeter:
			o.Count += m.Count
			o.Rate += m.Rate
		case MetricDistribution:
			if o.Count == 0 || (m.Count > 0 && m.Min < o.Min) {
				o.Min = m.Min
			}
			if o.Count == 0 || (m.Count > 0 && m.Max > o.Max) {
				o.Max = m.Max
			}
			o.Count += m.Count
			o.Sum += m.Sum
		}
	}
	return out
}

// Collector returns a prometheus.Collector exporting the engine's metrics:
// counters and gauges as themselves, a meter as <name>_total and <name>_rate,
// a distribution as a summary (count and sum) with <name>_min and <name>_max.
// Names are pyudf_ followed by the add_group(name) path and the metric name;
// the label "function" names the function that registered it, and
// add_group(key, value) steps become labels (a key "function" becomes
// "group_function").
func (e *Engine) Collector() prometheus.Collector { return collector{e} }

type collector struct{ e *Engine }

// Describe sends nothing: the metrics are whatever the UDFs registered, so the
// collector is unchecked.
func (collector) Describe(chan<- *prometheus.Desc) {}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	metrics, err := c.e.Metrics(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(prometheus.NewDesc("pyudf_error", "reading pyudf metrics failed", nil, nil), err)
		return
	}
	for _, m := range metrics {
		name, labels, values := promName(m)
		desc := func(suffix, help string) *prometheus.Desc {
			return prometheus.NewDesc(name+suffix, help, labels, nil)
		}
		help := "pyudf metric " + m.Name
		switch m.Kind {
		case MetricCounter:
			ch <- prometheus.MustNewConstMetric(desc("", help), prometheus.CounterValue, m.Value, values...)
		case MetricGauge:
			ch <- prometheus.MustNewConstMetric(desc("", help), prometheus.GaugeValue, m.Value, values...)
		case MetricMeter:
			ch <- prometheus.MustNewConstMetric(desc("_total", help+" (events)"), prometheus.CounterValue, float64(m.Count), values...)
			ch <- prometheus.MustNewConstMetric(desc("_rate", help+" (events per second)"), prometheus.GaugeValue, m.Rate, values...)
		case MetricDistribution:
			ch <- prometheus.MustNewConstSummary(desc("", help), uint64(m.Count), m.Sum, nil, values...)
			ch <- prometheus.MustNewConstMetric(desc("_min", help+" (minimum)"), prometheus.GaugeValue, m.Min, values...)
			ch <- prometheus.MustNewConstMetric(desc("_max", help+" (maximum)"), prometheus.GaugeValue, m.Max, values...)
		}
	}
}

var invalidName = regexp.MustCompile(`[^a-zA-Z0-9_]+`)

func promName(m Metric) (name string, labels, values []string) {
	parts := []string{"pyudf"}
	labels, values = []string{"function"}, []string{m.Function}
	for _, g := range m.Groups {
		if g.Value == nil {
			parts = append(parts, g.Key)
		} else {
			label := invalidName.ReplaceAllString(g.Key, "_")
			if label == "function" {
				label = "group_function"
			}
			labels = append(labels, label)
			values = append(values, *g.Value)
		}
	}
	parts = append(parts, m.Name)
	return invalidName.ReplaceAllString(strings.Join(parts, "_"), "_"), labels, values
}
