package vitess

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/surgefn/surge/internal/vttest"
	"github.com/surgefn/surge/runtime/store"
	"github.com/surgefn/surge/runtime/store/storetest"
)

// vtgate returns the test cluster's vtgate gRPC address, skipping the test
// when there is none.
func vtgate(t testing.TB) string {
	t.Helper()
	return vttest.VTGate(t)
}

func openT(t testing.TB) *Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := Open(ctx, Config{Address: vtgate(t)})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	vtgate(t)
	storetest.Run(t, func(t *testing.T) store.Store { return openT(t) })
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr string // substring; "" for valid
	}{
		{"address only", Config{Address: "127.0.0.1:15991"}, ""},
		{"everything", Config{Address: "vtgate:15991", Keyspace: "shop", MaxOpenConns: 8, MaxIdleConns: 2, ConnMaxLifetime: time.Minute}, ""},
		{"no address", Config{}, "address: required"},
		{"target instead of keyspace", Config{Address: "a:1", Keyspace: "commerce:-80"}, "not a keyspace name"},
		{"quote in keyspace", Config{Address: "a:1", Keyspace: "a`b"}, "not a keyspace name"},
		{"negative max open", Config{Address: "a:1", MaxOpenConns: -1}, "max open conns"},
		{"negative max idle", Config{Address: "a:1", MaxIdleConns: -1}, "max idle conns"},
		{"negative lifetime", Config{Address: "a:1", ConnMaxLifetime: -time.Second}, "conn max lifetime"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("Validate() = %v, want nil", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("Validate() = %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestOpenUnknownKeyspace(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := Open(ctx, Config{Address: vtgate(t), Keyspace: "nosuchkeyspace"})
	if err == nil {
		_ = s.Close()
		t.Fatal("Open of an unknown keyspace succeeded")
	}
	if !errors.Is(err, ErrSchema) {
		t.Errorf("Open of an unknown keyspace: %v, want ErrSchema", err)
	}
	t.Logf("Open of an unknown keyspace: %v", err)
}

// TestFourByteText stores 4-byte UTF-8 in every kind of string column. The
// test cluster's tablets talk utf8mb3 to MariaDB, which would turn these
// characters into '?' in a text column; the schema's columns are binary.
func TestFourByteText(t *testing.T) {
	s := openT(t)
	ctx := context.Background()
	tag := strconv.FormatInt(time.Now().UnixNano(), 36)
	const text = "茶叶🍵-𠀋"
	o := store.Order{OrderID: "o-" + tag + text, UserID: time.Now().UnixNano()>>8 + 1, Currency: "🍵",
		Items: []store.Item{{SKU: text, Qty: 1, PriceCents: 5}}, Status: "已支付" + text, CreatedAt: time.Now().UTC().Truncate(time.Microsecond)}
	if n, err := s.PutOrders(ctx, []store.Order{o}); err != nil || n != 1 {
		t.Fatalf("PutOrders = %d, %v", n, err)
	}
	if got, err := s.GetOrder(ctx, o.OrderID); err != nil || got.Items[0].SKU != text || got.Status != o.Status || got.Currency != o.Currency {
		t.Errorf("GetOrder = %+v, %v; want %+v", got, err, o)
	}
	m := store.SMS{MessageID: "m-" + tag, Phone: "+8613800138000", Template: "t" + text, Params: map[string]string{"k": text},
		Status: "queued", CreatedAt: o.CreatedAt, UpdatedAt: o.CreatedAt}
	if _, err := s.PutSMS(ctx, m); err != nil {
		t.Fatal(err)
	}
	m.Text, m.LastError = "code "+text, "failed: "+text
	if err := s.UpdateSMS(ctx, m); err != nil {
		t.Fatal(err)
	}
	if got, err := s.GetSMS(ctx, m.MessageID); err != nil || got.Template != m.Template || got.Params["k"] != text ||
		got.Text != m.Text || got.LastError != m.LastError {
		t.Errorf("GetSMS = %+v, %v; want %+v", got, err, m)
	}
	item := "item-" + tag + text
	if _, err := s.ApplyEvents(ctx, []store.EventBatch{{Seq: uint64(time.Now().UnixNano()), Items: map[string]store.Counts{item: {View: 2}}}}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.ItemStats(ctx, item); err != nil || got.View != 2 {
		t.Errorf("ItemStats = %+v, %v; want 2 views", got, err)
	}
}

// TestUpdateSMSKeepsUpdatedAt: an update without updated_at keeps the
// stored one; one with it sets it. An unchanged update is not "not found".
func TestUpdateSMSKeepsUpdatedAt(t *testing.T) {
	s := openT(t)
	ctx := context.Background()
	at := time.Date(2025, 6, 18, 20, 0, 0, 123000, time.UTC)
	m := store.SMS{MessageID: "m-upd-" + strconv.FormatInt(time.Now().UnixNano(), 36), Phone: "+8613800138000",
		Template: "verify", Status: "queued", CreatedAt: at, UpdatedAt: at}
	if _, err := s.PutSMS(ctx, m); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name        string
		updatedAt   time.Time
		wantUpdated time.Time
	}{
		{"without updated_at", time.Time{}, at},
		{"same values again", time.Time{}, at},
		{"with updated_at", at.Add(time.Minute), at.Add(time.Minute)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			upd := m
			upd.Status, upd.Attempts, upd.UpdatedAt = "sent", 1, tt.updatedAt
			if err := s.UpdateSMS(ctx, upd); err != nil {
				t.Fatalf("UpdateSMS: %v", err)
			}
			got, err := s.GetSMS(ctx, m.MessageID)
			if err != nil || got.Status != "sent" || !got.UpdatedAt.Equal(tt.wantUpdated) {
				t.Errorf("GetSMS = status %q updated_at %v, %v; want sent, %v", got.Status, got.UpdatedAt, err, tt.wantUpdated)
			}
		})
	}
}
