package natsauth

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
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

// TestReopenKeepsPeerRevocation: a node whose resolver holds a peer's
// account JWT with a revocation (a `surge creds --rotate` made through
// the peer) keeps that JWT when it restarts, instead of signing its own
// view without the revocation, which would lift it on every node.
func TestReopenKeepsPeerRevocation(t *testing.T) {
	peerDir := filepath.Join(t.TempDir(), "nats")
	peer, err := Open(peerDir)
	if err != nil {
		t.Fatal(err)
	}
	startAttached(t, peer)
	first, err := peer.FunctionCreds("f", "fn.f", "f", false)
	if err != nil {
		t.Fatal(err)
	}
	revoked, err := jwt.ParseDecoratedUserNKey(first)
	if err != nil {
		t.Fatal(err)
	}
	revokedPub, _ := revoked.PublicKey()
	if _, err := peer.FunctionCreds("f", "fn.f", "f", true); err != nil {
		t.Fatal(err)
	}
	peerJWT, err := peer.resolver.LoadAcc(peer.AccountPublicKey())
	if err != nil {
		t.Fatal(err)
	}

	// This node: the same keys, its resolver got the peer's JWT, but its
	// issued.json never heard of the function.
	dir := filepath.Join(t.TempDir(), "nats")
	if err := os.CopyFS(dir, os.DirFS(peerDir)); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, issuedFile)); err != nil {
		t.Fatal(err)
	}
	// A JWT's id hashes its claims, issue time (in seconds) included: in
	// the same second a new signature would be the same JWT.
	time.Sleep(1100 * time.Millisecond)
	a, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	stored, err := a.resolver.LoadAcc(a.AccountPublicKey())
	if err != nil {
		t.Fatal(err)
	}
	if stored != peerJWT {
		t.Error("the restart replaced the peer's account JWT")
	}
	_, tok, err := a.accountClaims()
	if err != nil {
		t.Fatal(err)
	}
	ac, err := jwt.DecodeAccountClaims(tok)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := ac.Revocations[revokedPub]; !ok {
		t.Error("the next account JWT this node signs lifts the peer's revocation")
	}
}

// startAttached runs a server configured and attached by a.
func startAttached(t *testing.T, a *Authority) {
	t.Helper()
	o := &server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true}
	a.ConfigureServer(o)
	ns, err := server.NewServer(o)
	if err != nil {
		t.Fatal(err)
	}
	ns.Start()
	t.Cleanup(ns.Shutdown)
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("server not ready")
	}
	a.Attach(ns)
}

// TestRotateKeepsPeerRevocation: a node that got a peer's account JWT (a
// revocation announced while it ran) and then rotates a function of its
// own signs a JWT that still holds the peer's revocation; without the
// merge, the newer JWT would lift it on every node.
func TestRotateKeepsPeerRevocation(t *testing.T) {
	peerDir := filepath.Join(t.TempDir(), "nats")
	peer, err := Open(peerDir)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "nats")
	if err := os.CopyFS(dir, os.DirFS(peerDir)); err != nil {
		t.Fatal(err)
	}
	a, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	startAttached(t, peer)
	startAttached(t, a)

	first, err := peer.FunctionCreds("f", "fn.f", "f", false)
	if err != nil {
		t.Fatal(err)
	}
	kp, err := jwt.ParseDecoratedUserNKey(first)
	if err != nil {
		t.Fatal(err)
	}
	revokedPub, _ := kp.PublicKey()
	// The resolver keeps the newer of two JWTs, by issue time in seconds.
	time.Sleep(1100 * time.Millisecond)
	if _, err := peer.FunctionCreds("f", "fn.f", "f", true); err != nil {
		t.Fatal(err)
	}
	// What the announcement does on a's server: its resolver stores the
	// peer's JWT.
	peerJWT, err := peer.resolver.LoadAcc(peer.AccountPublicKey())
	if err != nil {
		t.Fatal(err)
	}
	if err := a.resolver.Store(a.AccountPublicKey(), peerJWT); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond) // a later issue time, as a later rotation has
	if _, err := a.FunctionCreds("g", "fn.g", "g", false); err != nil {
		t.Fatal(err)
	}
	if _, err := a.FunctionCreds("g", "fn.g", "g", true); err != nil {
		t.Fatal(err)
	}
	stored, err := a.resolver.LoadAcc(a.AccountPublicKey())
	if err != nil {
		t.Fatal(err)
	}
	ac, err := jwt.DecodeAccountClaims(stored)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := ac.Revocations[revokedPub]; !ok {
		t.Error("rotating g on this node lifted the peer's revocation of f's old key")
	}
}
