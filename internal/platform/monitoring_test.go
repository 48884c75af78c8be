package platform_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/surgefn/surge/internal/platform"
	"github.com/surgefn/surge/internal/testenv"
)

// The monitoring tests run Debian's prometheus and promtool. Missing, they
// fail, unless SURGE_SKIP_PROMETHEUS=1 says to skip them.
func promBinary(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv("SURGE_SKIP_PROMETHEUS") == "1" {
		t.Skipf("%s not installed and SURGE_SKIP_PROMETHEUS=1", name)
	}
	t.Fatalf("%s not found on PATH (%v): install it (Debian: apt-get install prometheus), "+
		"or set SURGE_SKIP_PROMETHEUS=1 to skip the monitoring tests", name, err)
	return ""
}

// deployDir is the repository's deploy/ folder.
func deployDir(t *testing.T) string {
	t.Helper()
	d, err := filepath.Abs(filepath.Join("..", "..", "deploy"))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// withMemoryLimit sets a Go memory limit for the test (far above what it
// uses), so surge_memory_limit_bytes is exported.
func withMemoryLimit(t *testing.T) int64 {
	const limit = 64 << 30
	prev := debug.SetMemoryLimit(limit)
	t.Cleanup(func() { debug.SetMemoryLimit(prev) })
	return limit
}

// deployMonitored deploys echo (request trigger) and doomed (a stream
// function that dead-letters every message on its first failure).
func deployMonitored(t *testing.T, env *testenv.Env) {
	t.Helper()
	env.Deploy(t, echoManifest)
	env.Deploy(t, streamManifest("doomed", `{fail: true}`, 1, "50ms"))
	testenv.Eventually(t, 2*time.Second, "stream TEST_DOOMED exists", func() bool {
		_, err := env.JS.Stream(context.Background(), "TEST_DOOMED")
		return err == nil
	})
}

// trafficAndDeadLetter sends a few echo calls and one doomed message, and
// waits until the message is in the DLQ.
func trafficAndDeadLetter(t *testing.T, env *testenv.Env) {
	t.Helper()
	for i := range 20 {
		if r := env.Do(t, "POST", "/v1/echo", fmt.Appendf(nil, `{"n":%d}`, i)); r.Status != 200 {
			t.Fatalf("POST /v1/echo = %d %s", r.Status, r.Body)
		}
	}
	if _, err := env.JS.Publish(context.Background(), "test.doomed", []byte("doomed")); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 5*time.Second, "the doomed message dead-lettered", func() bool {
		return listDLQ(t, env, "function=doomed").Total == 1
	})
}

func scrape(t *testing.T, env *testenv.Env) []byte {
	t.Helper()
	r := env.Do(t, "GET", "/metrics", nil)
	if r.Status != 200 {
		t.Fatalf("GET /metrics = %d %s", r.Status, r.Body)
	}
	return r.Body
}

// sampleValue finds the sample of name whose labels include every
// k="v" of labels, in the text exposition format.
func sampleValue(body []byte, name string, labels ...string) (float64, bool) {
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, name)
		if !ok || (rest[0] != '{' && rest[0] != ' ') {
			continue
		}
		var ls string
		if rest[0] == '{' {
			end := strings.LastIndex(rest, "}")
			ls, rest = rest[1:end], rest[end+1:]
		}
		all := true
		for i := 0; i+1 < len(labels); i += 2 {
			all = all && strings.Contains(","+ls+",", fmt.Sprintf(",%s=%q,", labels[i], labels[i+1]))
		}
		if !all {
			continue
		}
		v, err := strconv.ParseFloat(strings.Fields(rest)[0], 64)
		return v, err == nil
	}
	return 0, false
}

// TestMetricsMustWatchAndLint scrapes a platform that served calls and
// dead-lettered a message: the must-watch figures are there with the right
// values, and promtool check metrics finds nothing to lint.
func TestMetricsMustWatchAndLint(t *testing.T) {
	promtool := promBinary(t, "promtool")
	limit := withMemoryLimit(t)
	env := testenv.Start(t, nil)
	deployMonitored(t, env)
	trafficAndDeadLetter(t, env)

	host := env.P.Host().Status().Host
	var body []byte
	testenv.Eventually(t, 5*time.Second, "the cluster figures in /metrics", func() bool {
		body = scrape(t, env)
		_, beat := sampleValue(body, "surge_host_heartbeat_age_seconds", "host", host)
		dlq, _ := sampleValue(body, "surge_dlq_messages", "function", "doomed")
		return beat && dlq == 1
	})
	for _, c := range []struct {
		name   string
		labels []string
		ok     func(float64) bool
	}{
		{"surge_host_heartbeat_age_seconds", []string{"host", host}, func(v float64) bool { return v >= 0 && v < 10 }},
		{"surge_hosts", nil, func(v float64) bool { return v == 1 }},
		{"surge_dlq_messages", []string{"function", "doomed"}, func(v float64) bool { return v == 1 }},
		{"surge_dlq_messages", []string{"function", "echo"}, func(v float64) bool { return v == 0 }},
		{"surge_consumer_backlog_messages", []string{"function", "doomed", "stream", "TEST_DOOMED"}, func(v float64) bool { return v == 0 }},
		{"surge_consumer_ack_pending_messages", []string{"function", "doomed", "stream", "TEST_DOOMED"}, func(v float64) bool { return v == 0 }},
		{"surge_consumer_backlog_messages", []string{"function", "echo", "stream", "CALLS"}, func(v float64) bool { return v == 0 }},
		{"surge_consumer_pending", []string{"function", "doomed"}, func(v float64) bool { return v == 0 }},
		{"surge_dead_letters_total", []string{"function", "doomed"}, func(v float64) bool { return v == 1 }},
		{"surge_function_invocations_total", []string{"function", "echo"}, func(v float64) bool { return v == 20 }},
		{"surge_memory_limit_bytes", nil, func(v float64) bool { return v == float64(limit) }},
		{"go_memstats_sys_bytes", nil, func(v float64) bool { return v > 0 }},
		{"go_memstats_heap_released_bytes", nil, func(v float64) bool { return v >= 0 }},
		{"process_resident_memory_bytes", nil, func(v float64) bool { return v > 0 }},
		{"go_goroutines", nil, func(v float64) bool { return v > 10 }},
		{"surge_function_in_flight", []string{"function", "echo"}, func(v float64) bool { return v == 0 }},
	} {
		v, ok := sampleValue(body, c.name, c.labels...)
		if !ok || !c.ok(v) {
			t.Errorf("%s%v = %v (found %t)", c.name, c.labels, v, ok)
		}
	}

	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = bytes.NewReader(body)
	out, err := cmd.CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}

// TestPrometheusRuleFiles checks deploy/prometheus with promtool: the alert
// rules load, their unit tests pass, and the example configuration is valid.
func TestPrometheusRuleFiles(t *testing.T) {
	promtool := promBinary(t, "promtool")
	dir := filepath.Join(deployDir(t), "prometheus")
	for _, args := range [][]string{
		{"check", "rules", "alerts.yml"},
		{"test", "rules", "alerts_test.yml"},
		{"check", "config", "prometheus.yml"},
	} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	for _, want := range []string{"SurgeBacklogGrowing", "SurgeDLQGrowing", "SurgeHostHeartbeatStale", "SurgeMemoryNearLimit"} {
		if _, ok := alertExprs(t)[want]; !ok {
			t.Errorf("alerts.yml has no alert %s", want)
		}
	}
}

var alertRule = regexp.MustCompile(`(?m)^\s+- alert: (\S+)\n(?:\s+#.*\n)*\s+expr: (?:\|\n((?:\s{10}.*\n)+)|(.*)\n)`)

// alertExprs reads the alert rules' expressions from alerts.yml.
func alertExprs(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(deployDir(t), "prometheus", "alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, m := range alertRule.FindAllStringSubmatch(string(b), -1) {
		out[m[1]] = strings.TrimSpace(m[2] + m[3])
	}
	if len(out) == 0 || len(out) != strings.Count(string(b), "- alert: ") {
		t.Fatalf("read %d alert expressions from alerts.yml, it has %d alerts", len(out), strings.Count(string(b), "- alert: "))
	}
	return out
}

// dashboard is what the tests read of deploy/grafana/surge.json.
type dashboard struct {
	UID        string `json:"uid"`
	Title      string `json:"title"`
	Templating struct {
		List []struct {
			Name  string `json:"name"`
			Type  string `json:"type"`
			Query any    `json:"query"`
		} `json:"list"`
	} `json:"templating"`
	Panels []struct {
		ID         int    `json:"id"`
		Type       string `json:"type"`
		Title      string `json:"title"`
		Datasource *struct {
			Type string `json:"type"`
			UID  string `json:"uid"`
		} `json:"datasource"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
	} `json:"panels"`
}

var labelValues = regexp.MustCompile(`^label_values\((.+), (\w+)\)$`)

// dashboardQueries returns the dashboard's PromQL by where it is, with
// the template variables filled in as Grafana would for "All"; it fails
// the test on a dashboard Grafana would not load as meant.
func dashboardQueries(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(deployDir(t), "grafana", "surge.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("surge.json: %v", err)
	}
	if d.UID == "" || d.Title == "" {
		t.Errorf("surge.json: uid %q, title %q", d.UID, d.Title)
	}
	queries := map[string]string{}
	vars := map[string]string{"__rate_interval": "5s"}
	for _, v := range d.Templating.List {
		switch v.Type {
		case "datasource":
			if v.Query != "prometheus" {
				t.Errorf("datasource variable %s is for %v, want prometheus", v.Name, v.Query)
			}
			vars[v.Name] = ""
		case "query":
			q, _ := v.Query.(map[string]any)["query"].(string)
			m := labelValues.FindStringSubmatch(q)
			if m == nil {
				t.Errorf("variable %s: query %q is not label_values(selector, label)", v.Name, q)
				continue
			}
			queries["variable "+v.Name] = fmt.Sprintf("group by (%s) (%s)", m[2], m[1])
			vars[v.Name] = ".*"
		}
	}
	if _, ok := vars["datasource"]; !ok {
		t.Errorf("surge.json has no datasource variable")
	}
	ids := map[int]bool{}
	for _, p := range d.Panels {
		if ids[p.ID] {
			t.Errorf("panel id %d twice", p.ID)
		}
		ids[p.ID] = true
		if p.Type == "row" {
			continue
		}
		if p.Datasource == nil || p.Datasource.Type != "prometheus" || p.Datasource.UID != "${datasource}" {
			t.Errorf("panel %q: datasource %+v, want prometheus ${datasource}", p.Title, p.Datasource)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no queries", p.Title)
		}
		for i, tg := range p.Targets {
			q := regexp.MustCompile(`\$(\w+)`).ReplaceAllStringFunc(tg.Expr, func(s string) string {
				v, ok := vars[s[1:]]
				if !ok {
					t.Errorf("panel %q: %s is no variable of the dashboard", p.Title, s)
				}
				return v
			})
			queries[fmt.Sprintf("panel %q query %d", p.Title, i)] = q
		}
	}
	return queries
}

// prometheusServer is a prometheus child process on a loopback port.
type prometheusServer struct {
	url  string
	http *http.Client
}

// startPrometheus runs prometheus scraping the targets every second as
// job surge, with the rule file loaded, killed when the test ends.
func startPrometheus(t *testing.T, ruleFile string, targets ...string) *prometheusServer {
	t.Helper()
	bin := promBinary(t, "prometheus")
	dir := t.TempDir()
	rules, _ := json.Marshal([]string{ruleFile})
	tgs, _ := json.Marshal(targets)
	cfg := fmt.Sprintf(`global: {scrape_interval: 1s, scrape_timeout: 1s, evaluation_interval: 1s}
rule_files: %s
scrape_configs:
  - job_name: surge
    static_configs: [{targets: %s}]
`, rules, tgs)
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := testenv.FreeAddr(t)
	logf, err := os.Create(filepath.Join(dir, "prometheus.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+addr)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("start prometheus: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		_ = logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("prometheus log:\n%s", b)
		}
	})
	ps := &prometheusServer{url: "http://" + addr, http: &http.Client{Timeout: 5 * time.Second}}
	testenv.Eventually(t, 15*time.Second, "prometheus ready on "+addr, func() bool {
		resp, err := ps.http.Get(ps.url + "/-/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	return ps
}

// promSample is one series of an instant query's answer.
type promSample struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"`
}

func (s promSample) value() float64 {
	str, _ := s.Value[1].(string)
	v, _ := strconv.ParseFloat(str, 64)
	return v
}

// get fetches path from the HTTP API and decodes its data, failing on an
// error answer.
func (ps *prometheusServer) get(path string, data any) error {
	resp, err := ps.http.Get(ps.url + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var env struct {
		Status string          `json:"status"`
		Error  string          `json:"error"`
		Data   json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(b, &env); err != nil {
		return fmt.Errorf("%s: %d %s", path, resp.StatusCode, b)
	}
	if env.Status != "success" {
		return fmt.Errorf("%s: %s: %s", path, env.Status, env.Error)
	}
	return json.Unmarshal(env.Data, data)
}

// query runs an instant query.
func (ps *prometheusServer) query(q string) ([]promSample, error) {
	var data struct {
		ResultType string       `json:"resultType"`
		Result     []promSample `json:"result"`
	}
	if err := ps.get("/api/v1/query?query="+url.QueryEscape(q), &data); err != nil {
		return nil, err
	}
	if data.ResultType != "vector" {
		return nil, fmt.Errorf("%s: result type %s", q, data.ResultType)
	}
	return data.Result, nil
}

// waitQuery polls q until ok accepts its answer; a query error fails at once.
func (ps *prometheusServer) waitQuery(t *testing.T, within time.Duration, q string, ok func([]promSample) bool) {
	t.Helper()
	var last []promSample
	deadline := time.Now().Add(within)
	for {
		res, err := ps.query(q)
		if err != nil {
			t.Fatal(err)
		}
		if ok(res) {
			return
		}
		last = res
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s answered %+v", within, q, last)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func oneValue(want func(float64) bool) func([]promSample) bool {
	return func(r []promSample) bool { return len(r) == 1 && want(r[0].value()) }
}

// TestPrometheusHelperRuntime is not a test: it is the runtime host that
// TestPrometheusScrapesSurge starts in a child process and kills.
func TestPrometheusHelperRuntime(t *testing.T) { testenv.ServeChildRuntime(t) }

// TestPrometheusScrapesSurge runs a real Prometheus, with
// deploy/prometheus/alerts.yml loaded, against a platform's gateway and a
// runtime host in a child process (--metrics): it scrapes both, the
// must-watch figures are there, a dead letter sets SurgeDLQGrowing off,
// every rule evaluates healthy, every query of the Grafana dashboard
// answers series, and killing the child host (SIGKILL: its heartbeat is not
// deleted) sets SurgeHostHeartbeatStale and SurgeProcessDown off.
func TestPrometheusScrapesSurge(t *testing.T) {
	withMemoryLimit(t)
	env := testenv.Start(t, sharedStore)
	childMetrics := testenv.FreeAddr(t)
	child, _ := testenv.Child(t, "TestPrometheusHelperRuntime", testenv.ChildSpec{NATSURL: env.P.NATSURL(),
		Creds: env.P.NATSAuth().CredsFile, DataDir: t.TempDir(), Runtime: true, Store: sharedBackend, MetricsAddr: childMetrics})
	deployMonitored(t, env)
	u, err := url.Parse(env.URL)
	if err != nil {
		t.Fatal(err)
	}
	ps := startPrometheus(t, filepath.Join(deployDir(t), "prometheus", "alerts.yml"), u.Host, childMetrics)

	ps.waitQuery(t, 10*time.Second, `count(up{job="surge"} == 1)`, oneValue(func(v float64) bool { return v == 2 }))
	ps.waitQuery(t, 5*time.Second, `max(surge_hosts)`, oneValue(func(v float64) bool { return v == 2 }))
	ps.waitQuery(t, 5*time.Second, `sum(surge_function_instances{function="doomed"})`, oneValue(func(v float64) bool { return v == 2 }))
	// No dead letter yet: the count is there, at 0, before the first.
	ps.waitQuery(t, 5*time.Second, `surge_dlq_messages{function="doomed"}`, oneValue(func(v float64) bool { return v == 0 }))
	trafficAndDeadLetter(t, env)
	ps.waitQuery(t, 5*time.Second, `surge_dlq_messages{function="doomed"}`, oneValue(func(v float64) bool { return v >= 1 }))
	ps.waitQuery(t, 5*time.Second, `surge_consumer_pending{function="doomed"}`, func(r []promSample) bool { return len(r) >= 1 })
	ps.waitQuery(t, 5*time.Second, `surge_consumer_backlog_messages{function="doomed",stream="TEST_DOOMED"}`,
		oneValue(func(v float64) bool { return v == 0 }))
	ps.waitQuery(t, 5*time.Second, `count(surge_host_heartbeat_age_seconds < 10)`, oneValue(func(v float64) bool { return v == 2 }))

	// The alert rules: loaded, evaluated without error, and the dead letter
	// made SurgeDLQGrowing pending (it fires after its for: 1m).
	alerts := alertExprs(t)
	testenv.Eventually(t, 10*time.Second, "every alert rule evaluated healthy", func() bool {
		var data struct {
			Groups []struct {
				Rules []struct {
					Name      string `json:"name"`
					Type      string `json:"type"`
					Health    string `json:"health"`
					LastError string `json:"lastError"`
				} `json:"rules"`
			} `json:"groups"`
		}
		if err := ps.get("/api/v1/rules", &data); err != nil {
			t.Fatal(err)
		}
		healthy := 0
		for _, g := range data.Groups {
			for _, r := range g.Rules {
				if r.LastError != "" {
					t.Fatalf("rule %s: %s", r.Name, r.LastError)
				}
				if _, ok := alerts[r.Name]; ok && r.Type == "alerting" && r.Health == "ok" {
					healthy++
				}
			}
		}
		return healthy == len(alerts)
	})
	for name, expr := range alerts {
		if _, err := ps.query(expr); err != nil {
			t.Errorf("alert %s: %v", name, err)
		}
	}
	ps.waitQuery(t, 5*time.Second, `ALERTS{alertname="SurgeDLQGrowing",function="doomed"}`, func(r []promSample) bool {
		return len(r) == 1 && (r[0].Metric["alertstate"] == "pending" || r[0].Metric["alertstate"] == "firing")
	})
	if r, err := ps.query(`ALERTS{alertname!="SurgeDLQGrowing"}`); err != nil || len(r) > 0 {
		t.Errorf("other alerts on a healthy platform: %+v %v", r, err)
	}

	// Every query of the dashboard answers at least one series (a typo in
	// a metric name answers none).
	for where, q := range dashboardQueries(t) {
		t.Run(where, func(t *testing.T) {
			ps.waitQuery(t, 10*time.Second, q, func(r []promSample) bool { return len(r) > 0 })
		})
	}

	// A host that crashed: its heartbeat stays until the bucket's TTL and
	// its age grows past the alert's 10s, and its scrape fails.
	r, err := ps.query(`surge_host_heartbeat_age_seconds{host!="` + env.P.Host().Status().Host + `"}`)
	if err != nil || len(r) != 1 {
		t.Fatalf("the child host's heartbeat: %+v %v", r, err)
	}
	childHost := r[0].Metric["host"]
	if err := child.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	ps.waitQuery(t, 20*time.Second, `ALERTS{alertname="SurgeHostHeartbeatStale",host="`+childHost+`"}`,
		func(r []promSample) bool { return len(r) == 1 })
	ps.waitQuery(t, 5*time.Second, `ALERTS{alertname="SurgeProcessDown",instance="`+childMetrics+`"}`,
		func(r []promSample) bool { return len(r) == 1 })
	// Past the bucket's TTL (15s) the heartbeat is gone: one host left.
	ps.waitQuery(t, 10*time.Second, `max(surge_hosts)`, oneValue(func(v float64) bool { return v == 1 }))
}

// TestMetricsAcrossHosts runs a gateway+runtime process and a runtime-only
// one (--metrics) on one NATS: the gateway reports both hosts' heartbeats,
// and the runtime-only host serves its own figures on its metrics address.
func TestMetricsAcrossHosts(t *testing.T) {
	ns := externalServer(t, nil)
	a := testenv.Start(t, func(o *platform.Options) { o.NATSURL = ns.ClientURL(); o.NATSListen = ""; sharedStore(o) })
	b := testenv.Start(t, func(o *platform.Options) {
		o.NATSURL, o.HTTPAddr, o.MetricsAddr = ns.ClientURL(), "", "127.0.0.1:0"
		sharedStore(o)
	})
	if b.P.MetricsURL() == "" || a.P.MetricsURL() != "" {
		t.Fatalf("metrics addresses: %q and %q", a.P.MetricsURL(), b.P.MetricsURL())
	}
	a.Deploy(t, echoManifest)
	hostA, hostB := a.P.Host().Status().Host, b.P.Host().Status().Host
	testenv.Eventually(t, 5*time.Second, "both hosts in the gateway's /metrics", func() bool {
		body := scrape(t, a)
		_, okA := sampleValue(body, "surge_host_heartbeat_age_seconds", "host", hostA)
		_, okB := sampleValue(body, "surge_host_heartbeat_age_seconds", "host", hostB)
		n, _ := sampleValue(body, "surge_hosts")
		return okA && okB && n == 2
	})
	testenv.Eventually(t, 5*time.Second, "echo running on the runtime-only host", func() bool {
		return b.P.Host().Status().Functions["echo"].Instances > 0
	})
	resp, err := b.HTTP.Get(b.P.MetricsURL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if v, ok := sampleValue(body, "surge_function_instances", "function", "echo"); !ok || v != 1 {
		t.Errorf("runtime-only host: surge_function_instances{function=echo} = %v (found %t)", v, ok)
	}
	if _, ok := sampleValue(body, "go_goroutines"); !ok {
		t.Error("runtime-only host: no go_goroutines")
	}
	if _, ok := sampleValue(body, "surge_gateway_in_flight"); ok {
		t.Error("runtime-only host reports gateway figures")
	}
}
