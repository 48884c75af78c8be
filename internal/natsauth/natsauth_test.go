package natsauth

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/nats-io/jwt/v2"
)

func TestRedact(t *testing.T) {
	for _, c := range []struct{ name, in, want string }{
		{"no user", "nats://127.0.0.1:4222", "nats://127.0.0.1:4222"},
		{"user only", "nats://alice@127.0.0.1:4222", "nats://alice@127.0.0.1:4222"},
		{"password", "nats://alice:s3cret@127.0.0.1:4222", "nats://alice:xxxxx@127.0.0.1:4222"},
		{"list", "nats://a:p1@h1:4222,nats://b:p2@h2:4222", "nats://a:xxxxx@h1:4222,nats://b:xxxxx@h2:4222"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := Redact(c.in); got != c.want {
				t.Errorf("Redact(%q) = %q, want %q", c.in, got, c.want)
			}
		})
	}
}

// TestOpenKeepsKeys: a second Open of the same directory (a restart) uses
// the same account and the same user keys, and the credentials files carry
// the permissions of this release.
func TestOpenKeepsKeys(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nats")
	a, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if a.AccountPublicKey() != b.AccountPublicKey() {
		t.Error("the account key changed on the second Open")
	}
	for _, f := range []string{SurgeCredsFile, ClientCredsFile} {
		raw, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		tok, err := jwt.ParseDecoratedJWT(raw)
		if err != nil {
			t.Fatal(err)
		}
		uc, err := jwt.DecodeUserClaims(tok)
		if err != nil {
			t.Fatal(err)
		}
		want, issuer := jwt.Permissions{}, a.AccountPublicKey()
		if f == ClientCredsFile {
			want, issuer = ClientPermissions, a.ClientAccountPublicKey()
		}
		if uc.Issuer != issuer {
			t.Errorf("%s issued by %s, want %s", f, uc.Issuer, issuer)
		}
		if fmt.Sprint(uc.Pub.Allow, uc.Sub.Allow) != fmt.Sprint(want.Pub.Allow, want.Sub.Allow) {
			t.Errorf("%s: permissions %+v, want %+v", f, uc.Permissions, want)
		}
	}
}
