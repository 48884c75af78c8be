package platform_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/surgefn/surge/internal/testenv"
)

// TestBatchMaxBytes: spec.batch.maxBytes ends a batch once its data adds
// up to the bound (the message that crosses it is the last), however many
// messages batch.size would still take.
func TestBatchMaxBytes(t *testing.T) {
	env := testenv.Start(t, nil)
	manifest := func(replicas int) string {
		return fmt.Sprintf(`
apiVersion: surge/v1
kind: Function
metadata: {name: bytebound}
spec:
  handler: test.record
  trigger: {stream: TEST_BYTEBOUND, filter: test.bytebound}
  replicas: %d
  timeout: 5s
  batch: {size: 100, wait: 100ms, maxBytes: 1000}
`, replicas)
	}
	env.Deploy(t, manifest(0)) // the stream, no consumer yet
	ctx := context.Background()
	testenv.Eventually(t, 5*time.Second, "stream exists", func() bool {
		_, err := env.JS.Stream(ctx, "TEST_BYTEBOUND")
		return err == nil
	})
	const n = 40
	msgs := make([]*nats.Msg, n)
	for i := range msgs {
		msgs[i] = &nats.Msg{Subject: "test.bytebound", Data: []byte(fmt.Sprintf("%03d%s", i, strings.Repeat("x", 297)))}
	}
	testenv.PublishAsync(t, env.JS, msgs)
	env.Deploy(t, manifest(1))
	rec := recorderFor("bytebound")
	testenv.Eventually(t, 10*time.Second, "every message handled", func() bool { return len(rec.deliveries()) >= n })
	sizes := map[time.Time]int{}
	for _, d := range rec.deliveries() {
		sizes[d.At]++
	}
	largest := 0
	for _, s := range sizes {
		largest = max(largest, s)
	}
	// 300-byte messages: three make 900, the fourth crosses 1000.
	if largest != 4 {
		t.Errorf("largest batch %d messages (batches %v), want 4: 40 messages were waiting", largest, sizes)
	}
	rec.wantEachOnce(t, n)
}
