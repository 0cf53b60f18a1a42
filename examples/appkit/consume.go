package appkit

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// What an application that keeps its own position in the stream (its SQL
// checkpoint, committed with its results) needs to read from there on.

// StreamKey names stream for a checkpoint: its name and creation time, so
// that a stream deleted and made again (a fresh embedded server) starts
// from its beginning instead of from an old checkpoint.
func StreamKey(ctx context.Context, js jetstream.JetStream, stream string) (string, error) {
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return "", err
	}
	return stream + "@" + s.CachedInfo().Created.UTC().Format(time.RFC3339Nano), nil
}

// OrderedFrom opens an ordered consumer on subject of stream that starts
// after stream sequence from (0: at the beginning).
func OrderedFrom(ctx context.Context, js jetstream.JetStream, stream, subject string, from uint64) (jetstream.Consumer, error) {
	occ := jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject}}
	if from > 0 {
		occ.DeliverPolicy, occ.OptStartSeq = jetstream.DeliverByStartSequencePolicy, from+1
	}
	return js.OrderedConsumer(ctx, stream, occ)
}

// Fetch gets up to n messages from cons, waiting at most wait. A fetch that
// ends by its wait, by ctx or with no messages is not an error; the messages
// it got are returned with any other error.
func Fetch(ctx context.Context, cons jetstream.Consumer, n int, wait time.Duration) ([]jetstream.Msg, error) {
	fctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	batch, err := cons.Fetch(n, jetstream.FetchContext(fctx))
	if err != nil {
		return nil, err
	}
	var msgs []jetstream.Msg
	for m := range batch.Messages() {
		msgs = append(msgs, m)
	}
	if err := batch.Error(); err != nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) &&
		!errors.Is(err, jetstream.ErrNoMessages) {
		return msgs, err
	}
	return msgs, nil
}
