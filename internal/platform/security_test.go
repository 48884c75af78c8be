package platform_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"

	_ "github.com/surgefn/surge/functions/orders"
	"github.com/surgefn/surge/internal/natsauth"
	"github.com/surgefn/surge/internal/platform"
	"github.com/surgefn/surge/internal/testenv"
	"github.com/surgefn/surge/manifests"
)

// denials collects a connection's permission violations, the server's
// word that it refused a publish or a subscription.
type denials chan error

func (d denials) handler(_ *nats.Conn, _ *nats.Subscription, err error) {
	if errors.Is(err, nats.ErrPermissionViolation) {
		select {
		case d <- err:
		default:
		}
	}
}

// want waits until the server has refused subject (a queue
// subscription's error names the queue too).
func (d denials) want(t *testing.T, what, subject string) {
	t.Helper()
	deadline := time.After(3 * time.Second)
	for {
		select {
		case err := <-d:
			if strings.Contains(err.Error(), `"`+subject+`"`) {
				return
			}
		case <-deadline:
			t.Errorf("%s: the server never refused %q", what, subject)
			return
		}
	}
}

// connectAs connects with a credentials file and collects its denials.
func connectAs(t *testing.T, env *testenv.Env, creds string) (*nats.Conn, denials) {
	t.Helper()
	d := make(denials, 64)
	return env.Connect(t, creds, nats.ErrorHandler(d.handler)), d
}

func TestNATSRefusesAnonymousClients(t *testing.T) {
	env := testenv.Start(t, nil)
	nc, err := nats.Connect(env.P.NATSURL(), nats.MaxReconnects(0))
	if err == nil {
		nc.Close()
		t.Fatal("an anonymous client connected to the embedded server")
	}
	if !errors.Is(err, nats.ErrAuthorization) {
		t.Errorf("anonymous connect: %v, want an authorization violation", err)
	}
	// The keys and credentials are secrets: only the owner reads them.
	dir := env.P.Authority().Dir()
	if dir != filepath.Join(env.Opts.DataDir, "nats") {
		t.Errorf("credentials in %s, want <data>/nats", dir)
	}
	st, err := os.Stat(dir)
	if err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("%s: %v mode %v, want 0700", dir, err, st.Mode().Perm())
	}
	for _, f := range []string{natsauth.OperatorKeyFile, natsauth.SystemKeyFile, natsauth.AccountKeyFile,
		natsauth.ClientAccountKeyFile, natsauth.SurgeCredsFile, natsauth.ClientCredsFile} {
		st, err := os.Stat(filepath.Join(dir, f))
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v, want mode 0600", f, err)
		}
	}
}

// TestLegacyClientCredsRevoked: client.creds of a release before the CLIENT
// account (the same user key, signed in SURGE) no longer connects: such a
// copy could aim a function's answer at any subject.
func TestLegacyClientCredsRevoked(t *testing.T) {
	env := testenv.Start(t, nil)
	dir := env.P.Authority().Dir()
	raw, err := os.ReadFile(filepath.Join(dir, natsauth.ClientCredsFile))
	if err != nil {
		t.Fatal(err)
	}
	user, err := jwt.ParseDecoratedUserNKey(raw)
	if err != nil {
		t.Fatal(err)
	}
	accSeed, err := os.ReadFile(filepath.Join(dir, natsauth.AccountKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	account, err := nkeys.FromSeed(bytes.TrimSpace(accSeed))
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := user.PublicKey()
	uc := jwt.NewUserClaims(pub)
	uc.Permissions = natsauth.ClientPermissions
	uc.IssuedAt = time.Now().Add(-time.Hour).Unix() // issued by the old release
	tok, err := uc.Encode(account)
	if err != nil {
		t.Fatal(err)
	}
	seed, _ := user.Seed()
	legacy, err := jwt.FormatUserConfig(tok, seed)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "legacy.creds")
	if err := os.WriteFile(file, legacy, 0o600); err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(env.P.NATSURL(), nats.UserCredentials(file), nats.MaxReconnects(0))
	if err == nil {
		nc.Close()
		t.Fatal("a client.creds signed in the SURGE account still connects")
	}
	// The current file does.
	env.Connect(t, env.ClientCreds(t)).Close()
}

// TestClientCredsAllowed: with client.creds an application calls a
// function, publishes orders and events with their acks, and discovers
// services.
func TestClientCredsAllowed(t *testing.T) {
	env := testenv.Start(t, nil)
	env.Deploy(t, echoManifest)
	testenv.Streams(t, env.JS, "orders.yaml", "order-accept")
	testenv.Streams(t, env.JS, "events.yaml", "events-aggregate")
	nc, d := connectAs(t, env, env.ClientCreds(t))

	msg, err := nc.Request("fn.echo", []byte(`{"direct":true}`), 2*time.Second)
	if err != nil || string(msg.Data) != `{"direct":true}` {
		t.Fatalf("request fn.echo: %v %v", err, msg)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, p := range []struct{ subject, stream string }{{"orders.submit", "ORDERS"}, {"events.track", "EVENTS"}} {
		ack, err := js.Publish(ctx, p.subject, []byte(`{}`))
		if err != nil || ack.Stream != p.stream {
			t.Errorf("JetStream publish to %s: %v %+v", p.subject, err, ack)
		}
	}
	inbox := nc.NewInbox()
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.PublishRequest("$SRV.PING", inbox, nil); err != nil {
		t.Fatal(err)
	}
	if m, err := sub.NextMsg(2 * time.Second); err != nil || !strings.Contains(string(m.Data), `"name":"echo"`) {
		t.Errorf("$SRV.PING: %v %v", err, m)
	}
	select {
	case err := <-d:
		t.Errorf("an allowed operation was refused: %v", err)
	default:
	}
}

// TestClientCredsForbidden: what an anonymous client could do before, an
// application cannot do with client.creds, and trying changes nothing.
func TestClientCredsForbidden(t *testing.T) {
	env := testenv.Start(t, func(o *platform.Options) {
		o.Manifests = testenv.ManifestsDir(t, func(fn *manifests.Function) { fn.Spec.Replicas = min(fn.Spec.Replicas, 1) }, "orders.yaml")
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	nc, d := connectAs(t, env, env.ClientCreds(t))
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "orders.submit", []byte(`{"user_id":1}`)); err != nil {
		t.Fatal(err)
	}

	t.Run("serve a function subject", func(t *testing.T) {
		var forged atomic.Int64
		sub, err := nc.QueueSubscribe("fn.orders.get", "order-get", func(m *nats.Msg) {
			forged.Add(1)
			_ = m.Respond([]byte(`{"forged":true}`))
		})
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Unsubscribe()
		d.want(t, "queue subscribe fn.orders.get", "fn.orders.get")
		for range 6 {
			r := env.Do(t, "GET", "/v1/orders/x", nil)
			if strings.Contains(string(r.Body), "forged") {
				t.Errorf("GET /v1/orders/x answered by the client: %d %s", r.Status, r.Body)
			}
		}
		if n := forged.Load(); n != 0 {
			t.Errorf("the client's subscription received %d calls", n)
		}
	})

	t.Run("write the function registry", func(t *testing.T) {
		before := registryKeys(t, env)
		evil := `{"apiVersion":"surge/v1","kind":"Function","metadata":{"name":"evil"},"spec":{"handler":"echo","trigger":{"subject":"fn.evil"}}}`
		if _, err := nc.Request("$KV.surge_functions.evil", []byte(evil), 500*time.Millisecond); err == nil {
			t.Error("KV put to surge_functions was answered")
		}
		d.want(t, "KV put", "$KV.surge_functions.evil")
		if _, err := js.KeyValue(shortCtx(t), "surge_functions"); err == nil {
			t.Error("the client opened the surge_functions bucket")
		}
		if after := registryKeys(t, env); strings.Join(after, ",") != strings.Join(before, ",") {
			t.Errorf("registry changed: %v -> %v", before, after)
		}
	})

	t.Run("read a bucket", func(t *testing.T) {
		sub, err := nc.SubscribeSync("$KV.>")
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Unsubscribe()
		d.want(t, "subscribe $KV.>", "$KV.>")
		if _, err := nc.Request("$JS.API.DIRECT.GET.KV_surge_functions", []byte(`{"last_by_subj":"$KV.surge_functions.order-get"}`), 500*time.Millisecond); err == nil {
			t.Error("direct get from KV_surge_functions was answered")
		}
		if m, err := sub.NextMsg(300 * time.Millisecond); err == nil {
			t.Errorf("the client received a bucket update on %s", m.Subject)
		}
	})

	// NATS checks a publish against the subject, never the reply subject:
	// a client in the functions' account could aim a function's answer,
	// published with surge's own unrestricted credentials, at a JetStream
	// API or KV subject. Clients live in an account of their own, so the
	// server rewrites the reply subjects they send.
	t.Run("aim a function's answer with the reply subject", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		st, err := env.JS.Stream(ctx, "ORDERS")
		if err != nil {
			t.Fatal(err)
		}
		before := st.CachedInfo().State.Msgs
		keys := registryKeys(t, env)
		for _, reply := range []string{"$JS.API.STREAM.PURGE.ORDERS", "$JS.API.STREAM.DELETE.ORDERS", "$KV.surge_functions.evil"} {
			if err := nc.PublishRequest("fn.orders.get", reply, []byte(`{"order_id":"x"}`)); err != nil {
				t.Fatal(err)
			}
		}
		// A call answered after them: the function has handled those too
		// (one instance, one queue), then give their answers time to land.
		if _, err := nc.Request("fn.orders.get", []byte(`{"order_id":"x"}`), 2*time.Second); err != nil {
			t.Fatalf("a plain call: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
		info, err := st.Info(ctx)
		if err != nil {
			t.Fatalf("ORDERS after the answers: %v", err)
		}
		if info.State.Msgs != before {
			t.Errorf("ORDERS holds %d messages, had %d: an answer purged it", info.State.Msgs, before)
		}
		if got := registryKeys(t, env); !slices.Equal(got, keys) {
			t.Errorf("registry keys %v, were %v: an answer wrote the registry", got, keys)
		}
	})

	t.Run("purge, delete, list streams, create a consumer", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		for _, subj := range []string{"$JS.API.STREAM.PURGE.ORDERS", "$JS.API.STREAM.DELETE.ORDERS",
			"$JS.API.STREAM.NAMES", "$JS.API.CONSUMER.CREATE.ORDERS.evil"} {
			body := []byte(`{}`)
			if strings.Contains(subj, "CONSUMER") {
				body = []byte(`{"stream_name":"ORDERS","config":{"name":"evil","ack_policy":"explicit"}}`)
			}
			if _, err := nc.Request(subj, body, 500*time.Millisecond); err == nil {
				t.Errorf("%s was answered", subj)
			}
			d.want(t, subj, subj)
		}
		if err := js.DeleteStream(shortCtx(t), "ORDERS"); err == nil {
			t.Error("the client deleted ORDERS")
		}
		st, err := env.JS.Stream(ctx, "ORDERS")
		if err != nil {
			t.Fatalf("ORDERS after the attempts: %v", err)
		}
		info, err := st.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.State.Msgs == 0 {
			t.Errorf("ORDERS was purged: %+v", info.State)
		}
		if _, err := st.Consumer(ctx, "evil"); !errors.Is(err, jetstream.ErrConsumerNotFound) {
			t.Errorf("consumer evil on ORDERS: %v, want not found", err)
		}
	})
}

// shortCtx bounds a call the server is expected to refuse: a refused
// JetStream API request is never answered.
func shortCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	t.Cleanup(cancel)
	return ctx
}

func registryKeys(t *testing.T, env *testenv.Env) []string {
	t.Helper()
	kv, err := env.JS.KeyValue(context.Background(), "surge_functions")
	if err != nil {
		t.Fatal(err)
	}
	keys, err := kv.Keys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

// externalManifest is the external function name on fn.<name>, routed at
// POST /v1/<name>.
func externalManifest(name string) string {
	return fmt.Sprintf("apiVersion: surge/v1\nkind: Function\nmetadata: {name: %[1]s}\n"+
		"spec: {handler: external, trigger: {subject: fn.%[1]s}, http: {method: POST, path: \"/v1/%[1]s\"}}\n", name)
}

// functionCreds asks the admin API for name's credentials and writes them
// to a file.
func functionCreds(t *testing.T, env *testenv.Env, name string, rotate bool) string {
	t.Helper()
	path := "/admin/functions/" + name + "/creds"
	if rotate {
		path += "?rotate=true"
	}
	r := env.Do(t, "POST", path, nil, "Authorization: Bearer "+testenv.Token)
	if r.Status != 200 {
		t.Fatalf("POST %s: %d %s", path, r.Status, r.Body)
	}
	file := filepath.Join(t.TempDir(), name+".creds")
	if err := os.WriteFile(file, r.Body, 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}

func TestFunctionCreds(t *testing.T) {
	env := testenv.Start(t, nil)
	env.Deploy(t, echoManifest)
	env.Deploy(t, externalManifest("hello"))
	env.Deploy(t, externalManifest("other"))

	for _, c := range []struct {
		name, path, token string
		wantStatus        int
		wantCode          string
	}{
		{"no token", "/admin/functions/hello/creds", "", 401, "unauthorized"},
		{"unknown function", "/admin/functions/nope/creds", testenv.Token, 404, "function_not_found"},
		{"built-in function", "/admin/functions/echo/creds", testenv.Token, 400, "not_external"},
		{"bad rotate", "/admin/functions/hello/creds?rotate=maybe", testenv.Token, 400, "invalid_request"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := env.Do(t, "POST", c.path, nil, "Authorization: Bearer "+c.token)
			if r.Status != c.wantStatus || r.ErrorCode() != c.wantCode {
				t.Errorf("%d %s, want %d %s", r.Status, r.Body, c.wantStatus, c.wantCode)
			}
		})
	}

	creds := functionCreds(t, env, "hello", false)
	nc, d := connectAs(t, env, creds)
	var otherCalls atomic.Int64
	for _, s := range []struct{ subject, queue string }{{"fn.other", "other"}, {"fn.hello", "evil"}, {"fn.hello", ""}, {"fn.echo", "echo"}} {
		var err error
		if s.queue == "" {
			_, err = nc.Subscribe(s.subject, func(*nats.Msg) { otherCalls.Add(1) })
		} else {
			_, err = nc.QueueSubscribe(s.subject, s.queue, func(m *nats.Msg) { otherCalls.Add(1); _ = m.Respond([]byte(`{"forged":true}`)) })
		}
		if err != nil {
			t.Fatal(err)
		}
		d.want(t, "subscribe "+s.subject+" "+s.queue, s.subject)
	}
	if _, err := nc.QueueSubscribe("fn.hello", "hello", func(m *nats.Msg) { _ = m.Respond([]byte(`{"hello":"v1"}`)) }); err != nil {
		t.Fatal(err)
	}
	if err := nc.Publish("orders.submit", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	d.want(t, "publish orders.submit", "orders.submit")

	var r *testenv.Response
	testenv.Eventually(t, 3*time.Second, "hello served with its creds", func() bool {
		r = env.Do(t, "POST", "/v1/hello", []byte(`{}`))
		return r.Status == 200
	})
	if string(r.Body) != `{"hello":"v1"}` {
		t.Errorf("hello = %s", r.Body)
	}
	if r := env.Do(t, "POST", "/v1/other", []byte(`{}`)); r.Status != 503 {
		t.Errorf("other = %d %s, want 503: nobody may serve it", r.Status, r.Body)
	}
	for range 4 {
		if r := env.Do(t, "POST", "/v1/echo", []byte(`{"e":1}`)); string(r.Body) != `{"e":1}` {
			t.Errorf("echo = %d %s", r.Status, r.Body)
		}
	}
	if n := otherCalls.Load(); n != 0 {
		t.Errorf("the hello creds received %d calls of other subjects or queues", n)
	}

	// Rotation: the old file's connection is closed and cannot come back.
	closed := make(chan struct{})
	nc.SetClosedHandler(func(*nats.Conn) { close(closed) })
	nc.SetReconnectHandler(func(*nats.Conn) {})
	rotated := functionCreds(t, env, "hello", true)
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		// A revoked connection may be reconnecting: it must not succeed.
		if nc.IsConnected() {
			t.Fatal("the connection with rotated-out creds is still up")
		}
	}
	if old, err := env.TryConnect(natsauth.Client{CredsFile: creds}, nats.MaxReconnects(0)); err == nil {
		old.Close()
		t.Error("rotated-out creds still connect")
	}
	nc2, _ := connectAs(t, env, rotated)
	if _, err := nc2.QueueSubscribe("fn.hello", "hello", func(m *nats.Msg) { _ = m.Respond([]byte(`{"hello":"v2"}`)) }); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 3*time.Second, "hello served with the rotated creds", func() bool {
		r = env.Do(t, "POST", "/v1/hello", []byte(`{}`))
		return string(r.Body) == `{"hello":"v2"}`
	})

	// A restart keeps the keys and the revocation.
	clientCreds := env.ClientCreds(t)
	before, err := os.ReadFile(filepath.Join(env.P.Authority().Dir(), natsauth.AccountKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	env.Stop(t)
	env2 := testenv.StartWith(t, env.Opts)
	after, err := os.ReadFile(filepath.Join(env2.P.Authority().Dir(), natsauth.AccountKeyFile))
	if err != nil || string(after) != string(before) {
		t.Errorf("account key changed on restart (%v)", err)
	}
	if old, err := env2.TryConnect(natsauth.Client{CredsFile: creds}, nats.MaxReconnects(0)); err == nil {
		old.Close()
		t.Error("rotated-out creds connect after a restart")
	}
	env2.Connect(t, rotated)
	env2.Connect(t, clientCreds)
}

// TestLegacyJetStreamDataAdopted: a data directory from before
// authenticated NATS (streams in the anonymous account) keeps its streams
// and buckets.
func TestLegacyJetStreamDataAdopted(t *testing.T) {
	o := testenv.Options(t)
	ns := startLegacyServer(t, filepath.Join(o.DataDir, "jetstream"))
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	js, _ := jetstream.New(nc)
	ctx := context.Background()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "LEGACY", Subjects: []string{"legacy.>"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "legacy.one", []byte("kept")); err != nil {
		t.Fatal(err)
	}
	nc.Close()
	ns.Shutdown()
	ns.WaitForShutdown()

	env := testenv.StartWith(t, o)
	st, err := env.JS.Stream(ctx, "LEGACY")
	if err != nil {
		t.Fatalf("legacy stream after the upgrade: %v", err)
	}
	m, err := st.GetLastMsgForSubject(ctx, "legacy.one")
	if err != nil || string(m.Data) != "kept" {
		t.Errorf("legacy message: %v %v", err, m)
	}
}

// TestNATSAuthFlagErrors: auth flags without an external NATS, and files
// that are missing or not what they should be, fail before anything
// starts, naming the flag.
func TestNATSAuthFlagErrors(t *testing.T) {
	notCreds := filepath.Join(t.TempDir(), "not.creds")
	if err := os.WriteFile(notCreds, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		url  string
		auth natsauth.Client
		want string
	}{
		{"embedded", "", natsauth.Client{CredsFile: notCreds}, "for an external NATS"},
		{"missing creds", "nats://127.0.0.1:1", natsauth.Client{CredsFile: "/nonexistent.creds"}, "--nats-creds /nonexistent.creds: open"},
		{"not creds", "nats://127.0.0.1:1", natsauth.Client{CredsFile: notCreds}, "not a credentials file"},
		{"missing nkey", "nats://127.0.0.1:1", natsauth.Client{NKeyFile: "/nonexistent.nk"}, "--nats-nkey /nonexistent.nk"},
		{"missing ca", "nats://127.0.0.1:1", natsauth.Client{TLSCA: "/nonexistent.pem"}, "--nats-tls-ca /nonexistent.pem"},
		{"cert without key", "nats://127.0.0.1:1", natsauth.Client{TLSCert: notCreds}, "--nats-tls-cert needs --nats-tls-key"},
	} {
		t.Run(c.name, func(t *testing.T) {
			o := testenv.Options(t)
			o.NATSURL, o.NATSAuth = c.url, c.auth
			_, err := platform.Start(context.Background(), o)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("err = %v, want it to contain %q", err, c.want)
			}
		})
	}
}
