package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Requester sends a request and waits for the reply (*nats.Conn).
type Requester interface {
	RequestMsgWithContext(ctx context.Context, msg *nats.Msg) (*nats.Msg, error)
}

// KVGet reads key from kv like kv.Get, except that a key kv.Get reports
// missing is read again from the leader of the bucket's stream
// (KVLeaderGet). A KV read is a direct get, which any replica of a
// replicated bucket may answer, one that has not applied the latest
// writes among them: without the second read a key created a moment ago
// (an envelope, a sale) could be reported missing. A value read from a
// lagging replica can still be older than the newest; a compare-and-set
// on its revision fails and is read again.
func KVGet(ctx context.Context, nc Requester, kv jetstream.KeyValue, key string) (value []byte, rev uint64, err error) {
	e, err := kv.Get(ctx, key)
	if err == nil {
		return e.Value(), e.Revision(), nil
	}
	if !errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, 0, err
	}
	return KVLeaderGet(ctx, nc, kv.Bucket(), key)
}

// KVLeaderGet reads key of bucket with a stream message get, which the
// leader of the bucket's stream answers: the newest value and its
// revision, or jetstream.ErrKeyNotFound for a key never written, deleted
// or purged.
func KVLeaderGet(ctx context.Context, nc Requester, bucket, key string) (value []byte, rev uint64, err error) {
	m, err := LastMsg(ctx, nc, "KV_"+bucket, "$KV."+bucket+"."+key)
	switch {
	case errors.Is(err, jetstream.ErrMsgNotFound):
		return nil, 0, jetstream.ErrKeyNotFound
	case err != nil:
		return nil, 0, err
	case isKVDelete(m.Header):
		return nil, 0, jetstream.ErrKeyNotFound
	}
	return m.Data, m.Seq, nil
}

// StreamMsg is a message as a stream message get returns it.
type StreamMsg struct {
	Seq    uint64
	Header []byte // raw: "NATS/1.0\r\nName: value\r\n..."
	Data   []byte
}

// LastMsg asks the leader of stream for its last message on subject
// (wildcards allowed) with a stream message get, not a direct get, which
// any replica may answer: jetstream.ErrMsgNotFound when it has none.
func LastMsg(ctx context.Context, nc Requester, stream, subject string) (StreamMsg, error) {
	req, _ := json.Marshal(struct {
		LastBySubject string `json:"last_by_subj"`
	}{subject})
	resp, err := nc.RequestMsgWithContext(ctx, &nats.Msg{Subject: "$JS.API.STREAM.MSG.GET." + stream, Data: req})
	if err != nil {
		return StreamMsg{}, err
	}
	var r struct {
		Message *struct {
			Seq    uint64 `json:"seq"`
			Header []byte `json:"hdrs"`
			Data   []byte `json:"data"`
		} `json:"message"`
		Error *jetstream.APIError `json:"error"`
	}
	if err := json.Unmarshal(resp.Data, &r); err != nil {
		return StreamMsg{}, fmt.Errorf("last message of %s on %s: %w", stream, subject, err)
	}
	switch {
	case r.Error != nil && r.Error.ErrorCode == jetstream.JSErrCodeMessageNotFound:
		return StreamMsg{}, jetstream.ErrMsgNotFound
	case r.Error != nil:
		return StreamMsg{}, fmt.Errorf("last message of %s on %s: %w", stream, subject, r.Error)
	case r.Message == nil:
		return StreamMsg{}, fmt.Errorf("last message of %s on %s: empty answer", stream, subject)
	}
	return StreamMsg{Seq: r.Message.Seq, Header: r.Message.Header, Data: r.Message.Data}, nil
}

// isKVDelete reports a KV delete or purge marker from the raw headers of a
// stream message ("NATS/1.0\r\nKV-Operation: DEL\r\n\r\n").
func isKVDelete(hdrs []byte) bool {
	for line := range strings.SplitSeq(string(hdrs), "\r\n") {
		name, v, ok := strings.Cut(line, ":")
		if ok && strings.EqualFold(strings.TrimSpace(name), "KV-Operation") {
			v = strings.TrimSpace(v)
			return v == "DEL" || v == "PURGE"
		}
	}
	return false
}
