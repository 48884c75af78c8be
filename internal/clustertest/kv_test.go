package clustertest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/surgefn/surge/runtime"
)

// TestKVConflictAtThreeReplicas: on a bucket of 3 replicas a
// compare-and-set write that loses to a concurrent one on the same key
// (still being replicated) is answered with API error 10164, not the
// 10071 of a plain stale revision, and runtime.IsKVConflict recognises
// both on every path a function takes: Create, Update, and a raw publish
// with an expected last subject sequence (how the hot cache writes pages
// in bulk). Each round exactly one of the concurrent writers wins.
func TestKVConflictAtThreeReplicas(t *testing.T) {
	c := cluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	kv, err := c.JS().CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "CAS_R3", Replicas: 3, Storage: jetstream.FileStorage})
	if err != nil {
		t.Fatal(err)
	}
	rev, err := kv.Create(ctx, "k", []byte("1"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err = kv.Create(ctx, "k", []byte("2")); !runtime.IsKVConflict(err) {
		t.Errorf("Create of an existing key at R3: %v, not a conflict", err)
	}
	codes := map[jetstream.ErrorCode]int{}
	const rounds, writers = 30, 12
	for round := range rounds {
		var wg sync.WaitGroup
		var mu sync.Mutex
		wins := 0
		var won uint64 // the winner's revision: a Get could be served by a replica that has not seen it yet
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var err error
				var got uint64
				if w%2 == 0 {
					got, err = kv.Update(ctx, "k", []byte(strconv.Itoa(w)), rev)
				} else {
					var ack *jetstream.PubAck
					ack, err = c.JS().PublishMsg(ctx, &nats.Msg{Subject: "$KV.CAS_R3.k", Data: []byte(strconv.Itoa(w)),
						Header: nats.Header{jetstream.ExpectedLastSubjSeqHeader: []string{strconv.FormatUint(rev, 10)}}})
					if err == nil {
						got = ack.Sequence
					}
				}
				mu.Lock()
				defer mu.Unlock()
				if err == nil {
					wins++
					won = got
					return
				}
				if !runtime.IsKVConflict(err) {
					t.Errorf("round %d writer %d: %v, not recognised as a conflict", round, w, err)
				}
				var apiErr *jetstream.APIError
				if errors.As(err, &apiErr) {
					codes[apiErr.ErrorCode]++
				}
			}()
		}
		wg.Wait()
		if wins != 1 {
			t.Fatalf("round %d: %d of %d concurrent compare-and-set writers won, want exactly 1", round, wins, writers)
		}
		rev = won
	}
	t.Logf("conflict codes seen: %v", codes)
	if codes[jetstream.JSErrCodeStreamWrongLastSequenceConstant] == 0 {
		t.Errorf("no conflict answered with 10164 in %d rounds of %d concurrent writers at R3: %v", rounds, writers, codes)
	}
	if runtime.IsKVConflict(errors.New("timeout")) || runtime.IsKVConflict(nil) {
		t.Error("IsKVConflict true for a non-conflict")
	}
}

// TestCASFlowsAtThreeReplicas runs the functions that rely on KV
// compare-and-set with concurrent callers on a 3-node cluster (every
// bucket at 3 replicas): each daily sign-in counts once, the SMS rate limit
// lets exactly one message per phone through, concurrent calls with one
// Idempotency-Key make one order, and page 1 lists exactly the user's
// orders. (On this cluster's embedded store page 1 is read from the store,
// not from ORDERS_HOT; the bucket's compare-and-set codes at 3 replicas are
// TestKVConflictAtThreeReplicas's, and the hot-page writers are tested on a
// network-like store in functions/orders and on Vitess in
// internal/platform.)
func TestCASFlowsAtThreeReplicas(t *testing.T) {
	c := cluster(t)
	e := c.Surge(t, nil, "orders.yaml", "signin.yaml", "sms.yaml")
	for _, b := range []string{"KV_SIGNIN", "KV_SMS_LIMITS", "KV_ORDERS_IDEM", "KV_ORDERS_HOT"} {
		if n := replicasOf(t, c.JS(), b); n != 3 {
			t.Fatalf("%s has %d replicas, want 3", b, n)
		}
	}
	const users, callers = 4, 8
	// concurrently runs callers calls of f per key and collects the answers.
	concurrently := func(keys int, f func(key int) (status int, body string)) [][]string {
		out := make([][]string, keys)
		var mu sync.Mutex
		var wg sync.WaitGroup
		for k := range keys {
			for range callers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					st, b := f(k)
					mu.Lock()
					out[k] = append(out[k], fmt.Sprintf("%d %s", st, b))
					mu.Unlock()
				}()
			}
		}
		wg.Wait()
		return out
	}
	do := func(method, path, body string, headers ...string) (int, string) {
		r, err := e.TryDo(method, path, []byte(body), headers...)
		if err != nil {
			return 0, err.Error()
		}
		return r.Status, string(r.Body)
	}

	t.Run("signin", func(t *testing.T) {
		got := concurrently(users, func(k int) (int, string) {
			return do(http.MethodPost, "/v1/signin", fmt.Sprintf(`{"user_id":%d}`, 700+k))
		})
		for k, answers := range got {
			first := 0
			for _, a := range answers {
				if !strings.HasPrefix(a, "200 ") {
					t.Errorf("user %d: %s", 700+k, a)
				}
				if containsJSON(a, `"first":true`) {
					first++
				}
			}
			if first != 1 {
				t.Errorf("user %d: %d of %d concurrent sign-ins were first, want exactly 1: %v", 700+k, first, callers, answers)
			}
		}
	})

	t.Run("sms limit", func(t *testing.T) {
		got := concurrently(users, func(k int) (int, string) {
			return do(http.MethodPost, "/v1/sms", fmt.Sprintf(`{"phone":"+861380013800%d","template":"verify","params":{"code":"123456"}}`, k))
		})
		for k, answers := range got {
			sent, limited := 0, 0
			for _, a := range answers {
				switch {
				case a[:3] == "202":
					sent++
				case a[:3] == "429":
					limited++
				default:
					t.Errorf("phone %d: %s", k, a)
				}
			}
			if sent != 1 || limited != callers-1 {
				t.Errorf("phone %d: %d sent and %d limited of %d concurrent, want 1 and %d (perWindow 1)", k, sent, limited, callers, callers-1)
			}
		}
	})

	t.Run("idempotency key", func(t *testing.T) {
		got := concurrently(users, func(k int) (int, string) {
			return do(http.MethodPost, "/v1/orders", fmt.Sprintf(orderBody, 800+k), fmt.Sprintf("Idempotency-Key: cluster-key-%d", k))
		})
		for k, answers := range got {
			ids := map[string]bool{}
			for _, a := range answers {
				switch a[:3] {
				case "202":
					ids[orderID([]byte(a[4:]))] = true
				case "409": // still in progress when this call's deadline came: allowed, makes no order
				default:
					t.Errorf("key %d: %s", k, a)
				}
			}
			if len(ids) != 1 {
				t.Errorf("key %d: %d different order ids from %d concurrent calls with one key, want 1: %v", k, len(ids), callers, answers)
			}
		}
		waitConsumed(t, c.JS(), "ORDERS", "order-persist", 30*time.Second)
		for k := range users {
			var page struct {
				Total  int `json:"total"`
				Orders []struct {
					OrderID string `json:"order_id"`
				} `json:"orders"`
			}
			r := e.Do(t, http.MethodGet, fmt.Sprintf("/v1/users/%d/orders?page=1&size=20", 800+k), nil)
			r.JSON(t, &page)
			if len(page.Orders) != 1 {
				t.Errorf("user %d: %d orders stored for one Idempotency-Key, want 1: %s", 800+k, len(page.Orders), r.Body)
			}
		}
	})

	t.Run("hot page", func(t *testing.T) {
		const user, orders = 900, 15
		ids := map[string]bool{}
		var mu sync.Mutex
		var wg sync.WaitGroup
		for range orders {
			wg.Add(1)
			go func() {
				defer wg.Done()
				st, b := do(http.MethodPost, "/v1/orders", fmt.Sprintf(orderBody, user))
				if st != http.StatusAccepted {
					t.Errorf("order: %d %s", st, b)
					return
				}
				mu.Lock()
				ids[orderID([]byte(b))] = true
				mu.Unlock()
			}()
		}
		wg.Wait()
		waitConsumed(t, c.JS(), "ORDERS", "order-persist", 30*time.Second)
		// The page is refreshed from the store after each batch; poll
		// until it settles, then it must list exactly the accepted orders.
		var last string
		deadline := time.Now().Add(10 * time.Second)
		for {
			var page struct {
				Orders []struct {
					OrderID string `json:"order_id"`
				} `json:"orders"`
			}
			r := e.Do(t, http.MethodGet, fmt.Sprintf("/v1/users/%d/orders?page=1&size=20", user), nil)
			r.JSON(t, &page)
			seen := map[string]int{}
			ok := len(page.Orders) == len(ids)
			for _, o := range page.Orders {
				seen[o.OrderID]++
				ok = ok && ids[o.OrderID] && seen[o.OrderID] == 1
			}
			if ok {
				break
			}
			last = string(r.Body)
			if time.Now().After(deadline) {
				t.Fatalf("hot page never listed exactly the %d accepted orders: %s", len(ids), last)
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
}

func containsJSON(s, sub string) bool { return strings.Contains(s, sub) }
