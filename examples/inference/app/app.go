// Package app is pyudf's near-line inference example (the seed scenario
// "near-line inference with PyFlink", on NATS JetStream):
//
//	feature records (JSON) ─▶ JetStream stream INFERENCE_FEATURES (subject inference.features)
//	  ─▶ connect/nats/runner (durable consumer) ─▶ predict (scalar UDF) or predict_batch (Pandas UDF)
//	  ─▶ predictions (JSON, with model_version) ─▶ stream INFERENCE_PREDICTIONS (inference.predictions)
//	model file paths ─▶ stream INFERENCE_CONTROL (inference.model, last one kept) ─▶ hot swap
//
// The UDFs load the scikit-learn model in open() from the file the job
// parameter inference.model names. A new model version published on the
// control subject is an engine-level reload: the app starts a second engine
// whose job parameter names the new file, opens the UDF there (open() loads
// the model), and only if that succeeds stops the runner at a batch
// boundary, starts it again on the new function and closes the old engine.
// Every key's records from then on are predicted by the new version; a file
// that cannot be loaded is refused and the old version keeps serving.
//
// Delivery is the runner's: at least once from the input, an input acked
// only after its prediction's publish was acknowledged, and each prediction
// carries a Nats-Msg-Id made of the durable name and the input's stream
// sequence, so a redelivered input's second prediction is dropped by the
// output stream's duplicate window (2 minutes by default): within it, one
// prediction per acked input.
package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pyudf/pyudf/connect/nats/runner"
	"github.com/pyudf/pyudf/engine"
	"github.com/pyudf/pyudf/examples/appkit"
)

// Defaults of Config.
const (
	DefaultStream        = "INFERENCE_FEATURES"
	DefaultSubject       = "inference.features"
	DefaultOutputStream  = "INFERENCE_PREDICTIONS"
	DefaultOutput        = "inference.predictions"
	DefaultControlStream = "INFERENCE_CONTROL"
	DefaultControl       = "inference.model"
	DefaultDurable       = "inference"
)

// Config configures an App. Conn, Model are required.
type Config struct {
	Conn   *nats.Conn
	Engine engine.Config // the engines' configuration (Mode, Workers, CacheDir, Logger); see EngineConfig
	Model  string        // the model file served at start (unless the control subject holds a newer one)
	Batch  bool          // the Pandas UDF predict_batch, one call per fetch; false: predict, one call per record

	Stream, Subject        string // input; empty: the defaults (the stream must exist)
	OutputStream, Output   string // predictions; bad records go to Output + ".dlq"
	ControlStream, Control string // model file paths
	Durable                string // the runner's durable consumer
	FetchSize              int    // records per fetch (and per Pandas batch); 0: 1000
	Logger                 *slog.Logger
	Progress               io.Writer     // the progress line goes here; nil: none
	ProgressInterval       time.Duration // 0: 2s
	StopAt                 uint64        // Run returns once the input up to this stream sequence is acked; 0: until ctx is done
	StopPoll               time.Duration // how often StopAt is checked; 0: 100ms
}

// Stats counts what an App did.
type Stats struct {
	Predicted    int64            // predictions published (acknowledged by JetStream)
	Bad          int64            // bad records dead-lettered (acknowledged)
	BadByReason  map[string]int64 // bad records seen, by reason
	Retried      int64            // inputs left for redelivery (a failed publish, a switch, shutdown)
	Model        string           // the version serving
	Switches     int64            // model versions switched to
	Refused      int64            // model files refused (could not be loaded)
	ModelHistory []string         // the versions served, in order
}

// App runs the pipeline; see the package documentation.
type App struct {
	cfg Config
	log *slog.Logger

	mu       sync.Mutex
	model    *Model
	history  []string
	badBy    map[string]int64
	finished runner.Stats // of the runners that have stopped
	current  *runner.Runner

	switches, refused atomic.Int64
	stopAt            atomic.Uint64
	serving           atomic.Int64 // UnixNano when the first model was loaded
	controlSeq        uint64       // the control stream's last sequence Load saw
}

// Serving is when Run had loaded its first model and started serving (zero before).
func (a *App) Serving() time.Time {
	if n := a.serving.Load(); n != 0 {
		return time.Unix(0, n)
	}
	return time.Time{}
}

// fetchWait is the runner's FetchWait: a pull request the server holds
// longer than this has expired, so a switch's Drain takes at most this
// plus the batch in the UDF.
const fetchWait = 250 * time.Millisecond

// New checks cfg.
func New(cfg Config) (*App, error) {
	if cfg.Conn == nil || cfg.Model == "" {
		return nil, errors.New("inference app: Config needs Conn and Model")
	}
	def := func(s *string, d string) {
		if *s == "" {
			*s = d
		}
	}
	def(&cfg.Stream, DefaultStream)
	def(&cfg.Subject, DefaultSubject)
	def(&cfg.OutputStream, DefaultOutputStream)
	def(&cfg.Output, DefaultOutput)
	def(&cfg.ControlStream, DefaultControlStream)
	def(&cfg.Control, DefaultControl)
	def(&cfg.Durable, DefaultDurable)
	if cfg.FetchSize <= 0 {
		cfg.FetchSize = 1000
	}
	if cfg.ProgressInterval <= 0 {
		cfg.ProgressInterval = 2 * time.Second
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	if cfg.Engine.Logger == nil {
		cfg.Engine.Logger = log
	}
	a := &App{cfg: cfg, log: log.With("app", "inference"), badBy: map[string]int64{}}
	a.stopAt.Store(cfg.StopAt)
	return a, nil
}

// StopAt makes Run return once the input up to stream sequence seq is
// acknowledged (see Config.StopAt).
func (a *App) StopAt(seq uint64) { a.stopAt.Store(seq) }

// Stats returns the counters.
func (a *App) Stats() Stats {
	a.mu.Lock()
	defer a.mu.Unlock()
	rs := a.finished
	if a.current != nil {
		c := a.current.Stats()
		rs.Published += c.Published
		rs.DeadLettered += c.DeadLettered
		rs.Retried += c.Retried
	}
	st := Stats{Predicted: rs.Published, Bad: rs.DeadLettered, Retried: rs.Retried, BadByReason: map[string]int64{},
		Switches: a.switches.Load(), Refused: a.refused.Load(), ModelHistory: append([]string(nil), a.history...)}
	for r, n := range a.badBy {
		st.BadByReason[r] = n
	}
	if a.model != nil {
		st.Model = a.model.Version
	}
	return st
}

// EnsureStreams creates the output and control streams unless they exist:
// predictions and dead letters need a stream for their publishes to be
// acknowledged, and the control stream keeps the last model published.
func EnsureStreams(ctx context.Context, js jetstream.JetStream, cfg Config) error {
	out, outSubj := cmpOr(cfg.OutputStream, DefaultOutputStream), cmpOr(cfg.Output, DefaultOutput)
	if err := runner.EnsureStream(ctx, js, out, outSubj, outSubj+".dlq"); err != nil {
		return err
	}
	ctl := cmpOr(cfg.ControlStream, DefaultControlStream)
	if _, err := js.Stream(ctx, ctl); err == nil {
		return nil
	}
	_, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: ctl, Subjects: []string{cmpOr(cfg.Control, DefaultControl)},
		Storage: jetstream.FileStorage, MaxMsgsPerSubject: 16})
	if err != nil && !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		return fmt.Errorf("inference: creating stream %s: %w", ctl, err)
	}
	return nil
}

func cmpOr(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// PublishModel publishes a model file's path on the control subject: every
// running app switches to it (or refuses it, keeping its model).
func PublishModel(ctx context.Context, js jetstream.JetStream, subject, path string) error {
	b, _ := json.Marshal(map[string]string{"path": path})
	_, err := js.Publish(ctx, cmpOr(subject, DefaultControl), b)
	return err
}

// controlPath reads a control message: {"path": "..."} or a bare path.
func controlPath(data []byte) string {
	var m struct{ Path string }
	if json.Unmarshal(data, &m) == nil && m.Path != "" {
		return m.Path
	}
	return strings.TrimSpace(string(data))
}

// Load loads the model Run serves at start, unless it is loaded: the
// newest model kept on the control subject that loads (so that a restarted
// app serves what it served before), else Config.Model. A Config.Model that
// cannot be loaded is an error naming its file. Run calls it; call it first
// to find a bad model before anything is published.
func (a *App) Load(ctx context.Context) error {
	if a.currentModel() != nil {
		return nil
	}
	js, err := jetstream.New(a.cfg.Conn)
	if err != nil {
		return err
	}
	if err := EnsureStreams(ctx, js, a.cfg); err != nil {
		return err
	}
	paths, last, err := a.keptControls(ctx, js)
	if err != nil {
		return err
	}
	model, err := a.initialModel(ctx, paths)
	if err != nil {
		return err
	}
	a.controlSeq = last
	a.setModel(model)
	a.serving.Store(time.Now().UnixNano())
	return nil
}

// loaded is the outcome of a model load in the background.
type loaded struct {
	path  string
	model *Model
	err   error
}

// Run serves predictions until ctx is done (then it stops at a batch
// boundary, waits for the PubAcks of what it published, and returns nil)
// or, with StopAt, until the input up to StopAt is acknowledged. A model
// that cannot be loaded at start is an error naming its file (see Load).
//
// A model published on the control subject is loaded in the background
// while the current one serves; once it has loaded, the runner is drained
// (runner.Drain: the batch in the UDF is finished, published and acked, the
// rest of its fetch given back at once) and started again on the new
// function, so the new version serves from the first batch fetched after its
// load. Control messages that arrive during a load wait for it.
func (a *App) Run(ctx context.Context) error {
	if err := a.Load(ctx); err != nil {
		return err
	}
	defer func() { a.mu.Lock(); m := a.model; a.mu.Unlock(); m.Close() }()
	js, err := jetstream.New(a.cfg.Conn)
	if err != nil {
		return err
	}
	controls, stopWatch, err := a.watchControl(ctx, js, a.controlSeq)
	if err != nil {
		return err
	}
	defer stopWatch()
	stopProgress := a.progress()
	defer stopProgress()

	// A load in progress: abort cancels it and waits for it (the engine
	// honours the cancellation), closing a model that loaded all the same.
	var loading chan loaded
	cancelLoad := func() {}
	abort := func() {
		if loading != nil {
			cancelLoad()
			if l := <-loading; l.model != nil {
				l.model.Close()
			}
			loading = nil
		}
	}
	defer abort()

	stopTick := time.NewTicker(cmpDur(a.cfg.StopPoll, 100*time.Millisecond))
	defer stopTick.Stop()
	for {
		r, err := runner.New(runner.Config{Conn: a.cfg.Conn, Stream: a.cfg.Stream, Subject: a.cfg.Subject,
			Durable: a.cfg.Durable, Output: a.cfg.Output, Function: a.currentModel().Function, Batch: a.cfg.Batch,
			FetchSize: a.cfg.FetchSize, FetchWait: fetchWait, AckWait: 10 * time.Second, CallTimeout: 30 * time.Second, Decode: a.decode, Logger: a.log})
		if err != nil {
			return err
		}
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		a.mu.Lock()
		a.current = r
		a.mu.Unlock()
		go func() { done <- r.Run(rctx) }()
		// finished records the runner's end (Run's err) and says what Run returns.
		finished := func(err error) error {
			cancel()
			a.mu.Lock()
			st := r.Stats()
			a.finished.Published += st.Published
			a.finished.DeadLettered += st.DeadLettered
			a.finished.Retried += st.Retried
			a.current = nil
			a.mu.Unlock()
			if errors.Is(err, context.Canceled) {
				return nil
			}
			return err
		}
		stop := func() error { abort(); cancel(); return finished(<-done) }
		ctrl := controls
		if loading != nil {
			ctrl = nil
		}
	serve:
		for {
			select {
			case err := <-done:
				abort()
				return finished(err) // the runner stopped for good (the engine closed, the stream is gone)
			case <-ctx.Done():
				return stop()
			case <-stopTick.C:
				if a.allAcked(ctx, js) {
					return stop()
				}
			case path := <-ctrl:
				lctx, c := context.WithCancel(ctx)
				ch := make(chan loaded, 1)
				loading, cancelLoad, ctrl = ch, c, nil
				a.log.Info("loading a new model in the background", "file", path, "serving", a.currentModel().Version)
				go func() { m, err := a.load(lctx, path); ch <- loaded{path, m, err} }()
			case l := <-loading:
				cancelLoad()
				loading, ctrl = nil, controls
				if ctx.Err() != nil { // the load was cancelled: not refused
					if l.model != nil {
						l.model.Close()
					}
					return stop()
				}
				if l.err != nil {
					a.refused.Add(1)
					a.log.Error("new model refused; the old one keeps serving", "file", l.path, "serving", a.currentModel().Version, "err", l.err)
					continue
				}
				next := l.model
				drainErr := r.Drain(ctx)
				if err := finished(<-done); err != nil || drainErr != nil {
					next.Close()
					return err // nil: ctx was done during the drain
				}
				old := a.currentModel()
				a.setModel(next)
				a.switches.Add(1)
				old.Close()
				a.log.Info("model switched", "from", old.Version, "to", next.Version, "kind", next.Kind, "file", next.Path)
				break serve
			}
		}
	}
}

func cmpDur(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

func (a *App) load(ctx context.Context, path string) (*Model, error) {
	return LoadModel(ctx, a.cfg.Engine, path, a.cfg.Batch)
}

// initialModel loads the newest of the kept control paths (newest first)
// that loads, else Config.Model.
func (a *App) initialModel(ctx context.Context, published []string) (*Model, error) {
	for _, p := range published {
		m, err := a.load(ctx, p)
		if err == nil {
			a.log.Info("serving the newest loadable model kept on the control subject", "file", p, "version", m.Version)
			return m, nil
		}
		if ctx.Err() != nil {
			return nil, err
		}
		a.log.Warn("a model kept on the control subject cannot be loaded; trying the one before", "file", p, "err", err)
	}
	m, err := a.load(ctx, a.cfg.Model)
	if err != nil {
		return nil, err
	}
	a.log.Info("serving", "file", m.Path, "version", m.Version, "kind", m.Kind, "udf", m.Function.Name())
	return m, nil
}

func (a *App) setModel(m *Model) {
	a.mu.Lock()
	a.model = m
	a.history = append(a.history, m.Version)
	a.mu.Unlock()
}

func (a *App) currentModel() *Model {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.model
}

// keptControls returns the distinct paths kept on the control subject,
// newest first, and the control stream's last sequence.
func (a *App) keptControls(ctx context.Context, js jetstream.JetStream) ([]string, uint64, error) {
	st, err := js.Stream(ctx, a.cfg.ControlStream)
	if err != nil {
		return nil, 0, fmt.Errorf("inference: control stream %s: %w", a.cfg.ControlStream, err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		return nil, 0, err
	}
	var kept []string // oldest first
	if info.State.Msgs > 0 {
		cons, err := appkit.OrderedFrom(ctx, js, a.cfg.ControlStream, a.cfg.Control, 0)
		if err != nil {
			return nil, 0, fmt.Errorf("inference: control consumer: %w", err)
		}
		for seq := uint64(0); seq < info.State.LastSeq; {
			batch, err := cons.Fetch(int(info.State.Msgs), jetstream.FetchMaxWait(time.Second))
			if err != nil {
				return nil, 0, fmt.Errorf("inference: reading the control stream: %w", err)
			}
			n := 0
			for m := range batch.Messages() {
				n++
				if md, err := m.Metadata(); err == nil {
					seq = md.Sequence.Stream
				}
				if seq <= info.State.LastSeq { // a later one is the watcher's
					kept = append(kept, controlPath(m.Data()))
				}
			}
			if n == 0 { // nothing more on the control subject (the last messages are another subject's)
				break
			}
		}
	}
	var paths []string
	seen := map[string]bool{}
	for i := len(kept) - 1; i >= 0; i-- {
		if p := kept[i]; p != "" && !seen[p] {
			seen[p] = true
			paths = append(paths, p)
		}
	}
	return paths, info.State.LastSeq, nil
}

// watchControl returns a channel of the paths published on the control
// subject after stream sequence after.
func (a *App) watchControl(ctx context.Context, js jetstream.JetStream, after uint64) (<-chan string, func(), error) {
	cons, err := appkit.OrderedFrom(ctx, js, a.cfg.ControlStream, a.cfg.Control, after)
	if err != nil {
		return nil, nil, fmt.Errorf("inference: control consumer: %w", err)
	}
	ch := make(chan string, 16)
	cc, err := cons.Consume(func(m jetstream.Msg) {
		select {
		case ch <- controlPath(m.Data()):
		case <-ctx.Done():
		}
	})
	if err != nil {
		return nil, nil, fmt.Errorf("inference: control consumer: %w", err)
	}
	return ch, cc.Stop, nil
}

// allAcked: StopAt is set and the durable consumer's ack floor has reached it.
func (a *App) allAcked(ctx context.Context, js jetstream.JetStream) bool {
	stop := a.stopAt.Load()
	if stop == 0 {
		return false
	}
	cons, err := js.Consumer(ctx, a.cfg.Stream, a.cfg.Durable)
	if err != nil {
		return false
	}
	info, err := cons.Info(ctx)
	return err == nil && info.AckFloor.Stream >= stop && info.NumAckPending == 0
}

// decode is the runner's Decode: a bad record becomes a dead letter (the
// runner publishes it with the reason in its headers and acks it); the
// first of each reason is logged, the rest counted.
func (a *App) decode(data []byte, _ nats.Header) ([]any, error) {
	r, err := ParseRecord(data)
	if err != nil {
		var be *BadRecordError
		reason := "bad record"
		if errors.As(err, &be) {
			reason = be.Reason
		}
		a.mu.Lock()
		n := a.badBy[reason]
		a.badBy[reason] = n + 1
		a.mu.Unlock()
		if n == 0 {
			a.log.Warn("bad record skipped (to the dead-letter subject; more of this reason are counted, not logged)",
				"reason", reason, "err", err, "record", clip(string(data)))
		}
		return nil, err
	}
	return r.Args(), nil
}

// progress prints a line every ProgressInterval; the returned func stops it
// and prints the last one.
func (a *App) progress() func() {
	var st Stats // count's, for the line printed with it
	return appkit.Progress(a.cfg.Progress, a.cfg.ProgressInterval,
		func() int64 { st = a.Stats(); return st.Predicted + st.Bad },
		func(w io.Writer, n int64, rate float64) {
			fmt.Fprintf(w, "inference: %d records, %.0f rows/s, %d bad, model %s, %d switches, %d refused\n",
				n, rate, st.Bad, st.Model, st.Switches, st.Refused)
		})
}
