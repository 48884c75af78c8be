package runtime

import (
	"context"
	"encoding/json"
	"errors"
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
	req, _ := json.Marshal(struct {
		LastBySubject string `json:"last_by_subj"`
	}{"$KV." + bucket + "." + key})
	resp, err := nc.RequestMsgWithContext(ctx, &nats.Msg{Subject: "$JS.API.STREAM.MSG.GET.KV_" + bucket, Data: req})
	if err != nil {
		return nil, 0, err
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
		return nil, 0, err
	}
	switch {
	case r.Error != nil && r.Error.ErrorCode == jetstream.JSErrCodeMessageNotFound:
		return nil, 0, jetstream.ErrKeyNotFound
	case r.Error != nil:
		return nil, 0, r.Error
	case r.Message == nil:
		return nil, 0, errors.New("stream message get: empty answer")
	case isKVDelete(r.Message.Header):
		return nil, 0, jetstream.ErrKeyNotFound
	}
	return r.Message.Data, r.Message.Seq, nil
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
