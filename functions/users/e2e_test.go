package users_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/surgefn/surge/functions/users"
	"github.com/surgefn/surge/internal/testenv"
)

type profile struct {
	UserID    int64     `json:"user_id"`
	Name      string    `json:"name"`
	Level     int       `json:"level"`
	Version   int64     `json:"version"`
	UpdatedAt time.Time `json:"updated_at"`
}

func start(t *testing.T, auth bool) *testenv.Env {
	return testenv.StartFunctions(t, auth, "users.yaml")
}

func put(t *testing.T, env *testenv.Env, user int64, body string, headers ...string) *testenv.Response {
	t.Helper()
	return env.Do(t, "PUT", fmt.Sprintf("/v1/users/%d", user), []byte(body), headers...)
}

func TestUserCentreFlow(t *testing.T) {
	env := start(t, false)
	check := func(what string, r *testenv.Response, status int, code string) {
		t.Helper()
		if r.Status != status || r.ErrorCode() != code {
			t.Errorf("%s = %d %s, want %d %q", what, r.Status, r.Body, status, code)
		}
	}
	check("GET before the first PUT", env.Do(t, "GET", "/v1/users/7", nil), 404, "user_not_found")
	check("If-Match before the first PUT", put(t, env, 7, `{"name":"Ann","level":1}`, `If-Match: "1"`), 412, "version_conflict")
	check("If-Match * before the first PUT", put(t, env, 7, `{"name":"Ann","level":1}`, `If-Match: *`), 412, "version_conflict")

	r := put(t, env, 7, `{"name":"Ann","level":1}`)
	var p profile
	r.JSON(t, &p)
	if r.Status != 200 || p.Version != 1 || p.Name != "Ann" || p.Level != 1 || p.UserID != 7 || r.Header.Get("ETag") != `"1"` {
		t.Fatalf("first PUT = %d %s ETag %s", r.Status, r.Body, r.Header.Get("ETag"))
	}
	r = env.Do(t, "GET", "/v1/users/7", nil)
	var got profile
	r.JSON(t, &got)
	if r.Status != 200 || got != p || r.Header.Get("ETag") != `"1"` {
		t.Errorf("GET = %d %s ETag %s, want %+v", r.Status, r.Body, r.Header.Get("ETag"), p)
	}
	check("PUT without If-Match once it exists", put(t, env, 7, `{"name":"Bea","level":2}`), 428, "precondition_required")
	check("PUT with a weak tag", put(t, env, 7, `{"name":"Bea","level":2}`, `If-Match: W/"1"`), 412, "version_conflict")

	r = put(t, env, 7, `{"name":"Bea","level":2}`, `If-Match: "1"`)
	r.JSON(t, &p)
	if r.Status != 200 || p.Version != 2 || p.Name != "Bea" || r.Header.Get("ETag") != `"2"` {
		t.Fatalf("PUT at version 1 = %d %s", r.Status, r.Body)
	}
	check("stale PUT", put(t, env, 7, `{"name":"Cid","level":3}`, `If-Match: "1"`), 412, "version_conflict")
	check("PUT with a list", put(t, env, 7, `{"name":"Cid","level":3}`, `If-Match: "1", "2"`), 200, "")
	check("PUT with *", put(t, env, 7, `{"name":"Dan","level":4}`, `If-Match: *`), 200, "")
	// The write refreshed USERS and this host's L1 (read before, at version 1).
	r = env.Do(t, "GET", "/v1/users/7", nil)
	r.JSON(t, &got)
	if got.Version != 4 || got.Name != "Dan" || r.Header.Get("ETag") != `"4"` {
		t.Errorf("GET after the writes = %s ETag %s, want version 4", r.Body, r.Header.Get("ETag"))
	}

	// Direct NATS, with the user in the body.
	m, err := env.NC.Request("fn.users.get", []byte(`{"user_id":7}`), 2*time.Second)
	if err != nil || !strings.Contains(string(m.Data), `"version":4`) {
		t.Errorf("nats get = %v %s", err, m.Data)
	}
	m, err = env.NC.Request("fn.users.put", []byte(`{"user_id":8,"name":"Eve","level":0}`), 2*time.Second)
	if err != nil || !strings.Contains(string(m.Data), `"version":1`) {
		t.Errorf("nats put = %v %s", err, m.Data)
	}
}

func TestUserCentreBadInput(t *testing.T) {
	env := start(t, false)
	tests := []struct {
		name, method, path, body, header string
		wantField                        string
	}{
		{"user_id zero", "PUT", "/v1/users/0", `{"name":"a","level":1}`, "", "user_id"},
		{"user_id not a number", "GET", "/v1/users/x", "", "", "user_id"},
		{"name missing", "PUT", "/v1/users/1", `{"level":1}`, "", "name"},
		{"name empty", "PUT", "/v1/users/1", `{"name":"","level":1}`, "", "name"},
		{"name blank", "PUT", "/v1/users/1", `{"name":"   ","level":1}`, "", "name"},
		{"name too long", "PUT", "/v1/users/1", `{"name":"` + strings.Repeat("é", 65) + `","level":1}`, "", "name"},
		{"name control character", "PUT", "/v1/users/1", `{"name":"a\nb","level":1}`, "", "name"},
		{"name not a string", "PUT", "/v1/users/1", `{"name":1,"level":1}`, "", "name"},
		{"level missing", "PUT", "/v1/users/1", `{"name":"a"}`, "", "level"},
		{"level negative", "PUT", "/v1/users/1", `{"name":"a","level":-1}`, "", "level"},
		{"level too big", "PUT", "/v1/users/1", `{"name":"a","level":1000001}`, "", "level"},
		{"level fractional", "PUT", "/v1/users/1", `{"name":"a","level":1.5}`, "", "level"},
		{"unknown field", "PUT", "/v1/users/1", `{"name":"a","level":1,"vip":true}`, "", "vip"},
		{"user_id in the body too", "PUT", "/v1/users/1", `{"user_id":1,"name":"a","level":1}`, "", "user_id"},
		{"If-Match malformed", "PUT", "/v1/users/1", `{"name":"a","level":1}`, "If-Match: 3", "If-Match"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h []string
			if tt.header != "" {
				h = append(h, tt.header)
			}
			r := env.Do(t, tt.method, tt.path, []byte(tt.body), h...)
			if r.Status != 400 || r.ErrorCode() != "invalid_request" || !strings.Contains(string(r.Body), `"message":"`+tt.wantField+":") {
				t.Errorf("= %d %s, want 400 naming %s", r.Status, r.Body, tt.wantField)
			}
		})
	}
	// Nothing was written by any of them.
	if r := env.Do(t, "GET", "/v1/users/1", nil); r.Status != 404 {
		t.Errorf("GET after bad PUTs = %d %s", r.Status, r.Body)
	}
}

// TestUserCentreConcurrentWriters: writers holding the same version race;
// exactly one wins, the rest are 412, and the winner's write is what GET
// and the next precondition see.
func TestUserCentreConcurrentWriters(t *testing.T) {
	env := start(t, false)
	if r := put(t, env, 9, `{"name":"seed","level":0}`); r.Status != 200 {
		t.Fatalf("seed = %d %s", r.Status, r.Body)
	}
	const n = 40
	status := make([]int, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			r, err := env.TryDo("PUT", "/v1/users/9", []byte(fmt.Sprintf(`{"name":"w%d","level":%d}`, i, i)), `If-Match: "1"`)
			if err != nil {
				t.Errorf("writer %d: %v", i, err)
				return
			}
			status[i] = r.Status
		})
	}
	close(start)
	wg.Wait()
	winner := -1
	for i, s := range status {
		switch s {
		case 200:
			if winner >= 0 {
				t.Fatalf("writers %d and %d both won", winner, i)
			}
			winner = i
		case 412:
		default:
			t.Errorf("writer %d: status %d", i, s)
		}
	}
	if winner < 0 {
		t.Fatal("no writer won")
	}
	testenv.Eventually(t, 2*time.Second, "GET shows the winner", func() bool {
		var p profile
		env.Do(t, "GET", "/v1/users/9", nil).JSON(t, &p)
		return p.Version == 2 && p.Level == winner
	})
}

func TestUserCentreOtherUserForbidden(t *testing.T) {
	env := start(t, true)
	asA, asB := testenv.UserToken(t, 31), testenv.UserToken(t, 32)
	if r := put(t, env, 31, `{"name":"a","level":1}`, asA); r.Status != 200 {
		t.Fatalf("own PUT = %d %s", r.Status, r.Body)
	}
	if r := put(t, env, 31, `{"name":"b","level":1}`, asB, `If-Match: "1"`); r.Status != 403 || r.ErrorCode() != "forbidden" {
		t.Errorf("PUT of another user = %d %s", r.Status, r.Body)
	}
	if r := env.Do(t, "GET", "/v1/users/31", nil, asB); r.Status != 403 {
		t.Errorf("GET of another user = %d %s", r.Status, r.Body)
	}
	if r := env.Do(t, "GET", "/v1/users/31", nil, asA); r.Status != 200 {
		t.Errorf("own GET = %d %s", r.Status, r.Body)
	}
}
