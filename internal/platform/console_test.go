package platform_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/surgefn/surge/gateway"
	"github.com/surgefn/surge/internal/platform"
	"github.com/surgefn/surge/internal/testenv"
	"github.com/surgefn/surge/runtime/wire"
)

// chromiumPath is the browser the console tests drive: $SURGE_CHROMIUM,
// else Debian's /usr/bin/chromium. It is required: without it the test
// fails, unless SURGE_SKIP_BROWSER=1 says to skip on purpose.
func chromiumPath(t *testing.T) string {
	t.Helper()
	p := os.Getenv("SURGE_CHROMIUM")
	if p == "" {
		p = "/usr/bin/chromium"
	}
	if _, err := exec.LookPath(p); err != nil {
		if os.Getenv("SURGE_SKIP_BROWSER") == "1" {
			t.Skipf("no browser at %s and SURGE_SKIP_BROWSER=1: console browser test skipped", p)
		}
		t.Fatalf("the console test needs a headless chromium at %s (install Debian's chromium package, or set SURGE_CHROMIUM; SURGE_SKIP_BROWSER=1 skips it): %v", p, err)
	}
	return p
}

// browser starts a headless chromium for the test, with a window of
// width x height, stopped when the test ends; every action on the context
// it returns is bounded by within, the browser's whole life. When the test
// ends, a script error in the page or a refusal by its
// Content-Security-Policy fails it.
func browser(t *testing.T, width, height int, within time.Duration) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.NoSandbox, // the tests may run as root
		chromedp.WindowSize(width, height),
		chromedp.Flag("disable-gpu", true),
	)
	life, cancelLife := context.WithTimeout(context.Background(), within)
	alloc, cancelAlloc := chromedp.NewExecAllocator(life, opts...)
	ctx, cancelCtx := chromedp.NewContext(alloc)
	t.Cleanup(func() { cancelCtx(); cancelAlloc(); cancelLife() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	var mu sync.Mutex
	var bad []string
	messages := chromedp.Console(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.IsException() || m.Source == "security" || strings.Contains(m.Text, "Content Security Policy") {
				mu.Lock()
				bad = append(bad, m.String())
				mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() {
		cancelCtx()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, m := range bad {
			t.Errorf("browser console: %s", m)
		}
	})
	return ctx
}

// run runs browser steps, failing the test with what it was doing.
func run(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("browser: %s: %v", what, err)
	}
}

// clickNow clicks the first element sel matches, looked up and clicked in
// one step inside the page: chromedp.Click resolves the node first, and
// the console's periodic refresh can replace it before the click lands
// ("Could not find node with given id").
func clickNow(t *testing.T, ctx context.Context, sel string) {
	t.Helper()
	run(t, ctx, "wait for "+sel, chromedp.WaitVisible(chromedp.CSS(sel)))
	js := fmt.Sprintf(`(() => { const e = document.querySelector(%q); if (!e) return false; e.click(); return true })()`, sel)
	ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](js))
	if err != nil || !ok {
		t.Fatalf("browser: click %s: %v (found: %v)", sel, err, ok)
	}
}

// text is the text of the first element sel matches.
func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		t.Fatalf("browser: text of %s: %v", sel, err)
	}
	return s
}

// signIn opens the console and signs in with token.
func signIn(t *testing.T, ctx context.Context, url, token string) {
	t.Helper()
	run(t, ctx, "sign in",
		chromedp.Navigate(url+"/console"),
		chromedp.WaitVisible(chromedp.CSS("#token")),
		chromedp.Clear(chromedp.CSS("#token")),
		chromedp.SendKeys(chromedp.CSS("#token"), token),
		chromedp.Click(chromedp.CSS("#signin-submit")),
	)
}

// TestConsoleInBrowser drives the console in a real headless chromium: a
// wrong token is refused on the form, the admin token signs in (and never
// shows in the URL), the built-in functions are listed, and a dead letter
// appears and is replayed from its button: its DLQ entry is gone and the
// call ran again and succeeded.
func TestConsoleInBrowser(t *testing.T) {
	ctx := browser(t, 1280, 900, 45*time.Second)
	env := testenv.Start(t, func(o *platform.Options) { o.Manifests = testenv.ManifestsDir(t, nil, "orders.yaml") })
	env.Deploy(t, strings.Replace(failManifest, "path: /v1/fail}", "path: /v1/fail, async: true}\n  retry: {maxDeliver: 1}", 1))

	// The page, its CSP, and no inline script for the CSP to allow.
	if r := env.Do(t, "GET", "/console", nil); r.Status != 200 || !strings.Contains(r.Header.Get("Content-Security-Policy"), "default-src 'self'") ||
		!strings.Contains(string(r.Body), `name="viewport"`) || strings.Contains(string(r.Body), "<script>") {
		t.Fatalf("GET /console = %d, CSP %q, body %s", r.Status, r.Header.Get("Content-Security-Policy"), r.Body)
	}
	if r := env.Do(t, "GET", "/console/console.js", nil); r.Status != 200 || r.Header.Get("Content-Type") != "text/javascript; charset=utf-8" {
		t.Errorf("GET /console/console.js = %d %s", r.Status, r.Header.Get("Content-Type"))
	}
	if r := env.Do(t, "GET", "/console/../gateway.go", nil); r.Status != 404 {
		t.Errorf("GET /console/../gateway.go = %d, want 404", r.Status)
	}

	signIn(t, ctx, env.URL, "not-the-admin-token-at-all")
	run(t, ctx, "wrong token refused", chromedp.WaitVisible(chromedp.CSS("#signin-error")))
	if got := text(t, ctx, "#signin-error"); !strings.Contains(got, "refused") {
		t.Errorf("sign-in error = %q", got)
	}
	if shown, _ := chromedp.Run(ctx, chromedp.Evaluate[bool](`!document.getElementById("dashboard").hidden`)); shown {
		t.Error("dashboard shown after a wrong token")
	}

	signIn(t, ctx, env.URL, testenv.Token)
	run(t, ctx, "built-in functions listed", chromedp.WaitVisible(chromedp.CSS(`#functions tr[data-function="order-accept"]`)))
	fns := text(t, ctx, "#functions")
	for _, name := range []string{"order-accept", "order-persist", "order-get", "order-list", "failer"} {
		if !strings.Contains(fns, name) {
			t.Errorf("functions table lacks %s: %q", name, fns)
		}
	}
	run(t, ctx, "consumers and hosts listed",
		chromedp.WaitVisible(chromedp.CSS(`#consumers tr[data-consumer="ORDERS/order-persist"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#hosts tr[data-host]`)),
		chromedp.WaitVisible(chromedp.CSS(`#history tbody tr`)),
	)
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	if loc != env.URL+"/console" || strings.Contains(loc, testenv.Token) {
		t.Errorf("page URL after sign-in = %q, want %s/console without the token", loc, env.URL)
	}

	// Two dead letters: async calls that fail their one delivery.
	ids := make([]string, 2)
	for i := range ids {
		r := env.Do(t, "POST", "/v1/fail?status=500", fmt.Appendf(nil, `{"console":"dead letter %d"}`, i))
		if r.Status != 202 {
			t.Fatalf("async call = %d %s", r.Status, r.Body)
		}
		ids[i] = r.Header.Get("X-Call-Id")
	}
	status := func(id string) string {
		var st wire.CallStatus
		env.Do(t, "GET", "/calls/"+id, nil).JSON(t, &st)
		return st.Status
	}
	testenv.Eventually(t, 10*time.Second, "calls dead", func() bool {
		return status(ids[0]) == wire.CallDead && status(ids[1]) == wire.CallDead
	})
	p := listDLQ(t, env, "function=failer")
	if p.Total != 2 || p.DeadLetters[0].Headers.Get(wire.HeaderCallID) != ids[0] {
		t.Fatalf("dead letters = %+v", p)
	}
	cards := make([]string, 2)
	for i, d := range p.DeadLetters {
		cards[i] = fmt.Sprintf(`.dead-letter[data-seq="%d"]`, d.Seq)
		run(t, ctx, "dead letter shown", chromedp.WaitVisible(chromedp.CSS(cards[i])))
		got := text(t, ctx, cards[i])
		for _, want := range []string{fmt.Sprintf(`{"console":"dead letter %d"}`, i), "failed on purpose", "1 attempt", "calls.failer"} {
			if !strings.Contains(got, want) {
				t.Errorf("dead letter card lacks %q: %q", want, got)
			}
		}
	}

	// Replay the first: its entry goes, the call runs again and succeeds.
	clickNow(t, ctx, cards[0]+" button.replay")
	run(t, ctx, "replay", chromedp.WaitNotPresent(chromedp.CSS(cards[0])))
	testenv.Eventually(t, 10*time.Second, "replayed call succeeded", func() bool { return status(ids[0]) == wire.CallSucceeded })
	// Discard the second (the page asks first; the test says yes).
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.confirm = () => true, true`)); err != nil {
		t.Fatal(err)
	}
	clickNow(t, ctx, cards[1]+" button.discard")
	run(t, ctx, "discard", chromedp.WaitNotPresent(chromedp.CSS(cards[1])))
	if p := listDLQ(t, env, "function=failer"); p.Total != 0 {
		t.Errorf("dead letters after replay and discard = %+v", p)
	}
	if s := status(ids[1]); s != wire.CallDead {
		t.Errorf("discarded call = %s, want still dead", s)
	}
	// Three runs, two failed: counted where the instance ran them, not
	// again by the loop that forwards async calls.
	var f gateway.FunctionFigures
	testenv.Eventually(t, 6*time.Second, "the failer's three calls in a heartbeat", func() bool {
		f, _ = functionFigures(overview(t, env), "failer")
		return f.Calls >= 3
	})
	if f.Calls != 3 || f.Errors != 2 {
		t.Errorf("failer figures = %+v, want 3 calls and 2 errors", f)
	}
	// The page keeps it gone once the overview no longer lists it.
	run(t, ctx, "no dead letters", chromedp.WaitVisible(chromedp.CSS("#dead-letters-none")))
	if s, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`location.href + document.cookie + JSON.stringify(localStorage)`)); strings.Contains(s, testenv.Token) {
		t.Error("the token is in the URL, a cookie or localStorage")
	}
}

// overview reads GET /admin/overview.
func overview(t *testing.T, env *testenv.Env) gateway.Overview {
	t.Helper()
	r := env.Do(t, "GET", "/admin/overview", nil, adminAuth)
	if r.Status != 200 {
		t.Fatalf("GET /admin/overview = %d %s", r.Status, r.Body)
	}
	var ov gateway.Overview
	r.JSON(t, &ov)
	return ov
}

func functionFigures(ov gateway.Overview, name string) (gateway.FunctionFigures, bool) {
	for _, f := range ov.Functions {
		if f.Name == name {
			return f, true
		}
	}
	return gateway.FunctionFigures{}, false
}

// TestOverviewFigures: under steady calls the overview reports a calls/s
// near the rate sent, errors/s of the failing ones, a p99 that covers the
// handler's sleep, the host's memory and goroutines, and both deploys of
// a redeployed function, newest first; without a token it is a 401.
func TestOverviewFigures(t *testing.T) {
	env := testenv.Start(t, nil)
	env.Deploy(t, sleepManifest("v1", "2s"))
	env.Deploy(t, sleepManifest("v2", "2s"))
	env.Deploy(t, failManifest)
	if r := env.Do(t, "GET", "/admin/overview", nil); r.Status != 401 {
		t.Fatalf("overview without a token = %d", r.Status)
	}

	// About 50 calls/s of each for a few heartbeats: sleepy sleeps 20ms.
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var sent atomic.Int64
	for _, path := range []string{"/v1/sleep?ms=20", "/v1/fail?status=500"} {
		wg.Go(func() {
			tick := time.NewTicker(20 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				method := "GET"
				if strings.HasPrefix(path, "/v1/fail") {
					method = "POST"
				}
				if _, err := env.TryDo(method, path, []byte(`{}`)); err == nil {
					sent.Add(1)
				}
			}
		})
	}
	defer func() { cancel(); wg.Wait() }()

	var sleepy, failer gateway.FunctionFigures
	var ov gateway.Overview
	testenv.Eventually(t, 15*time.Second, "rates of both functions", func() bool {
		ov = overview(t, env)
		sleepy, _ = functionFigures(ov, "sleepy")
		failer, _ = functionFigures(ov, "failer")
		return sleepy.CallsPerSec > 20 && failer.ErrorsPerSec > 20 && sleepy.P99Ms > 0
	})
	t.Logf("sleepy %+v\nfailer %+v\nhosts %+v", sleepy, failer, ov.Hosts)
	if sleepy.CallsPerSec > 60 || sleepy.ErrorsPerSec != 0 || sleepy.Calls == 0 {
		t.Errorf("sleepy = %+v, want about 50 calls/s and no errors", sleepy)
	}
	if failer.CallsPerSec > 60 || failer.Errors == 0 || failer.Errors > failer.Calls {
		t.Errorf("failer = %+v, want about 50 errors/s out of as many calls", failer)
	}
	if sleepy.P99Ms < 20 || sleepy.P99Ms > 1000 {
		t.Errorf("sleepy p99 = %vms, want at least its 20ms sleep", sleepy.P99Ms)
	}
	if sleepy.Instances != 1 || sleepy.Hosts != 1 || sleepy.Route != "GET /v1/sleep" || sleepy.Trigger != "fn.sleepy" {
		t.Errorf("sleepy = %+v", sleepy)
	}
	if len(ov.Hosts) != 1 || ov.Hosts[0].MemoryBytes < 1<<20 || ov.Hosts[0].Goroutines < 10 || ov.Hosts[0].HeartbeatAge > 5 {
		t.Errorf("hosts = %+v", ov.Hosts)
	}
	var revs []gateway.DeployRevision
	for _, r := range ov.History {
		if r.Function == "sleepy" {
			revs = append(revs, r)
		}
	}
	if len(revs) != 2 || revs[0].Revision != sleepy.Revision || revs[1].Revision == sleepy.Revision || revs[0].Seq <= revs[1].Seq {
		t.Errorf("sleepy history = %+v, want v2 (%s) then v1", revs, sleepy.Revision)
	}
	var calls bool
	for _, c := range ov.Consumers {
		calls = calls || (c.Stream == wire.StreamCalls && c.Durable == "call-sleepy")
	}
	if !calls || len(ov.Problems) > 0 {
		t.Errorf("consumers = %+v, problems = %v", ov.Consumers, ov.Problems)
	}
}

// TestConsoleScreenshot writes the README's screenshots of the console
// under order load: SURGE_CONSOLE_SCREENSHOT=docs/console.png go test
// -run TestConsoleScreenshot ./internal/platform (a phone-width one goes
// next to it, console-phone.png). Without the variable it is skipped.
func TestConsoleScreenshot(t *testing.T) {
	out := os.Getenv("SURGE_CONSOLE_SCREENSHOT")
	if out == "" {
		t.Skip("set SURGE_CONSOLE_SCREENSHOT=path.png to write the console's screenshots")
	}
	if !filepath.IsAbs(out) {
		// go test runs in the package directory; the path is the caller's,
		// from the repository root.
		out = filepath.Join("..", "..", out)
	}
	ctx := browser(t, 1280, 900, 90*time.Second)
	env := testenv.Start(t, func(o *platform.Options) { o.Manifests = testenv.ManifestsDir(t, nil, "orders.yaml") })
	env.Deploy(t, failManifest) // then made async: two entries in the deploy history
	env.Deploy(t, strings.Replace(failManifest, "path: /v1/fail}", "path: /v1/fail, async: true}\n  retry: {maxDeliver: 1}", 1))
	for i := range 3 {
		env.Do(t, "POST", "/v1/fail?status=500", fmt.Appendf(nil, `{"order":"late-%d","reason":"payment provider down"}`, i))
	}

	lctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Go(func() {
			for i := 0; lctx.Err() == nil; i++ {
				body := fmt.Appendf(nil, `{"user_id":%d,"items":[{"sku":"A1","qty":1,"price_cents":100}],"currency":"CNY"}`, 1+(w*7919+i)%500)
				_, _ = env.TryDo("POST", "/v1/orders", body)
				if i%10 == 0 {
					_, _ = env.TryDo("GET", fmt.Sprintf("/v1/users/%d/orders", 1+i%500), nil)
				}
			}
		})
	}
	defer func() { stop(); wg.Wait() }()

	signIn(t, ctx, env.URL, testenv.Token)
	run(t, ctx, "dashboard under load",
		chromedp.WaitVisible(chromedp.CSS(`#functions tr[data-function="order-accept"]`)),
		chromedp.WaitVisible(chromedp.CSS(`.dead-letter`)),
	)
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](
		`[...document.querySelectorAll('#functions tr[data-function="order-accept"] td.calls')].some(td => parseFloat(td.textContent.replace(/,/g, "")) > 10)`,
		chromedp.WithPollingTimeout(30*time.Second))); err != nil {
		t.Fatalf("order-accept never showed calls/s: %v", err)
	}
	time.Sleep(3 * time.Second) // a few more heartbeats, so every rate is steady
	shot := func(path string, capture chromedp.Action[[]byte]) {
		png, err := chromedp.Run(ctx, capture)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s (%d KiB)", path, len(png)>>10)
	}
	shot(out, chromedp.FullScreenshot(100))
	// A phone's first screen: the page is long there, the top says enough.
	run(t, ctx, "phone width", chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile))
	time.Sleep(2 * time.Second)
	shot(strings.TrimSuffix(out, ".png")+"-phone.png", chromedp.CaptureScreenshot())
}
