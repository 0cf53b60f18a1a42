package engine

import (
	"context"
	"regexp"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metric is one metric a UDF registered through
// function_context.get_metric_group(), as read by Engine.Metrics.
type Metric struct {
	Name string
	// Groups is the path of add_group calls: Key alone for add_group(name),
	// Key and Value for add_group(key, value).
	Groups []MetricGroup
	// Kind is "counter", "gauge", "meter" or "distribution".
	Kind string
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

// Metrics reads the current value of every metric the engine's functions registered.
func (e *Engine) Metrics(ctx context.Context) ([]Metric, error) {
	if e.closed.Load() {
		return nil, ErrClosed
	}
	var reply struct {
		Metrics []struct {
			Groups [][2]*string `json:"groups"`
			Name   string       `json:"name"`
			Kind   string       `json:"kind"`
			Value  float64      `json:"value"`
			Count  int64        `json:"count"`
			Rate   float64      `json:"rate"`
			Sum    float64      `json:"sum"`
			Min    float64      `json:"min"`
			Max    float64      `json:"max"`
		} `json:"metrics"`
	}
	if err := e.control(ctx, "read metrics", map[string]any{"op": "metrics", "engine": e.id}, &reply); err != nil {
		return nil, err
	}
	out := make([]Metric, 0, len(reply.Metrics))
	for _, m := range reply.Metrics {
		metric := Metric{Name: m.Name, Kind: m.Kind, Value: m.Value, Count: m.Count, Rate: m.Rate,
			Sum: m.Sum, Min: m.Min, Max: m.Max}
		for _, g := range m.Groups {
			if g[0] != nil {
				metric.Groups = append(metric.Groups, MetricGroup{Key: *g[0], Value: g[1]})
			}
		}
		if m.Kind == "counter" {
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
		key := m.Kind + "\x00" + m.Name
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
		case "counter":
			o.Value += m.Value
			o.Count += m.Count
		case "meter":
			o.Count += m.Count
			o.Rate += m.Rate
		case "distribution":
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
// add_group(key, value) steps become labels.
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
		case "counter":
			ch <- prometheus.MustNewConstMetric(desc("", help), prometheus.CounterValue, m.Value, values...)
		case "gauge":
			ch <- prometheus.MustNewConstMetric(desc("", help), prometheus.GaugeValue, m.Value, values...)
		case "meter":
			ch <- prometheus.MustNewConstMetric(desc("_total", help+" (events)"), prometheus.CounterValue, float64(m.Count), values...)
			ch <- prometheus.MustNewConstMetric(desc("_rate", help+" (events per second)"), prometheus.GaugeValue, m.Rate, values...)
		case "distribution":
			ch <- prometheus.MustNewConstSummary(desc("", help), uint64(m.Count), m.Sum, nil, values...)
			ch <- prometheus.MustNewConstMetric(desc("_min", help+" (minimum)"), prometheus.GaugeValue, m.Min, values...)
			ch <- prometheus.MustNewConstMetric(desc("_max", help+" (maximum)"), prometheus.GaugeValue, m.Max, values...)
		}
	}
}

var invalidName = regexp.MustCompile(`[^a-zA-Z0-9_]+`)

func promName(m Metric) (name string, labels, values []string) {
	parts := []string{"pyudf"}
	for _, g := range m.Groups {
		if g.Value == nil {
			parts = append(parts, g.Key)
		} else {
			labels = append(labels, invalidName.ReplaceAllString(g.Key, "_"))
			values = append(values, *g.Value)
		}
	}
	parts = append(parts, m.Name)
	return invalidName.ReplaceAllString(strings.Join(parts, "_"), "_"), labels, values
}
