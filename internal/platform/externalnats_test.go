package platform_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"

	"github.com/surgefn/surge/internal/natsauth"
	"github.com/surgefn/surge/internal/platform"
	"github.com/surgefn/surge/internal/testenv"
)

// externalServer runs a nats-server with JetStream on a random loopback
// port, configured by mutate, shut down with the test.
func externalServer(t *testing.T, mutate func(*server.Options)) *server.Server {
	t.Helper()
	o := &server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true}
	if mutate != nil {
		mutate(o)
	}
	ns, err := server.NewServer(o)
	if err != nil {
		t.Fatal(err)
	}
	ns.Start()
	t.Cleanup(ns.Shutdown)
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	return ns
}

// startLegacyServer is the embedded server as it was before it required
// credentials: anonymous clients, JetStream under storeDir.
func startLegacyServer(t *testing.T, storeDir string) *server.Server {
	t.Helper()
	return externalServer(t, func(o *server.Options) { o.StoreDir = storeDir })
}

// TestExternalNATSAuth runs the platform against an external nats-server
// that requires each way of authenticating surge offers: it serves with
// the right credentials, and does not start without them.
func TestExternalNATSAuth(t *testing.T) {
	dir := t.TempDir()
	// Operator mode, as the embedded server runs, but owned by the test.
	authority, err := natsauth.Open(filepath.Join(dir, "operator"))
	if err != nil {
		t.Fatal(err)
	}
	// An nkey user.
	user, _ := nkeys.CreateUser()
	userPub, _ := user.PublicKey()
	seed, _ := user.Seed()
	nkeyFile := filepath.Join(dir, "user.nk")
	if err := os.WriteFile(nkeyFile, seed, 0o600); err != nil {
		t.Fatal(err)
	}
	pki := newTestPKI(t, dir)

	for _, c := range []struct {
		name     string
		server   func(*server.Options)
		url      func(ns *server.Server) string
		auth     natsauth.Client
		badURL   func(ns *server.Server) string // nil: the URL of url
		badAuth  natsauth.Client
		wantLeak string // must not appear in the failure's message
	}{
		{
			name:    "operator JWT and creds",
			server:  authority.ConfigureServer,
			auth:    natsauth.Client{CredsFile: authority.SurgeCreds()},
			badAuth: natsauth.Client{},
		},
		{
			name:    "nkey user",
			server:  func(o *server.Options) { o.Nkeys = []*server.NkeyUser{{Nkey: userPub}} },
			auth:    natsauth.Client{NKeyFile: nkeyFile},
			badAuth: natsauth.Client{CredsFile: authority.ClientCreds()},
		},
		{
			name:   "user and password in the URL",
			server: func(o *server.Options) { o.Users = []*server.User{{Username: "surge", Password: "s3cret"}} },
			url: func(ns *server.Server) string {
				return strings.Replace(ns.ClientURL(), "nats://", "nats://surge:s3cret@", 1)
			},
			badURL: func(ns *server.Server) string {
				return strings.Replace(ns.ClientURL(), "nats://", "nats://surge:hunter2-wrong@", 1)
			},
			wantLeak: "hunter2-wrong",
		},
		{
			name:    "TLS with a client certificate",
			server:  func(o *server.Options) { o.TLSConfig, o.TLS, o.TLSVerify = pki.serverTLS, true, true },
			url:     func(ns *server.Server) string { return "tls://" + ns.Addr().String() },
			auth:    natsauth.Client{TLSCA: pki.ca, TLSCert: pki.cert, TLSKey: pki.key},
			badAuth: natsauth.Client{TLSCA: pki.ca}, // no client certificate
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			ns := externalServer(t, c.server)
			u := ns.ClientURL()
			if c.url != nil {
				u = c.url(ns)
			}
			env := testenv.Start(t, func(o *platform.Options) { o.NATSURL, o.NATSAuth, o.NATSListen = u, c.auth, "" })
			if env.P.NATSServer() != nil || env.P.Authority() != nil {
				t.Fatal("an embedded server started despite --nats")
			}
			env.Deploy(t, echoManifest)
			if r := env.Do(t, "POST", "/v1/echo", []byte(`{"ext":1}`)); string(r.Body) != `{"ext":1}` {
				t.Errorf("echo = %d %s", r.Status, r.Body)
			}

			bad := u
			if c.badURL != nil {
				bad = c.badURL(ns)
			}
			o := testenv.Options(t)
			o.NATSURL, o.NATSAuth, o.NATSListen = bad, c.badAuth, ""
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			began := time.Now()
			p, err := platform.Start(ctx, o)
			if err == nil {
				_ = p.Stop(ctx)
				t.Fatal("started without valid credentials")
			}
			// Refused credentials are not waited for as a NATS that is
			// not up yet would be.
			if took := time.Since(began); took > 10*time.Second || errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("refused after %s with %v; want at once", took, err)
			}
			if c.wantLeak != "" && strings.Contains(err.Error(), c.wantLeak) {
				t.Errorf("the error shows the password: %v", err)
			}
		})
	}
}

// TestScaleOutOnEmbeddedNATS: surge gateway/runtime processes join the
// embedded server of a surge up with its surge.creds, and cannot without.
// Both hosts are on a shared store (two embedded ones would be refused).
func TestScaleOutOnEmbeddedNATS(t *testing.T) {
	a := testenv.Start(t, sharedStore)
	second := func(o *platform.Options) {
		o.NATSURL, o.NATSAuth, o.NATSListen, o.HTTPAddr = a.P.NATSURL(), a.P.NATSAuth(), "", ""
		sharedStore(o)
	}
	testenv.Start(t, second)
	a.Deploy(t, echoManifest)
	var list struct {
		Functions []struct {
			Instances int `json:"instances_ready"`
		} `json:"functions"`
	}
	testenv.Eventually(t, 5*time.Second, "echo on both hosts", func() bool {
		a.Do(t, "GET", "/admin/functions", nil, "Authorization: Bearer "+testenv.Token).JSON(t, &list)
		return len(list.Functions) == 1 && list.Functions[0].Instances == 2
	})
	o := testenv.Options(t)
	second(&o)
	o.NATSAuth = natsauth.Client{}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if p, err := platform.Start(ctx, o); err == nil {
		_ = p.Stop(ctx)
		t.Error("a runtime host started on the embedded server without credentials")
	}
}

// testPKI is a CA, a server certificate for 127.0.0.1 and a client
// certificate, as PEM files.
type testPKI struct {
	ca, cert, key string
	// nodeCert and nodeKey are a cluster node's: for server and client
	// auth on 127.0.0.1 (a route is dialled by either side).
	nodeCert, nodeKey string
	serverTLS         *tls.Config
}

func newTestPKI(t *testing.T, dir string) testPKI {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "surge test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	issue := func(serial int64, cn string, usage []x509.ExtKeyUsage, ips ...net.IP) tls.Certificate {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: usage, IPAddresses: ips}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: k}
	}
	srv := issue(2, "127.0.0.1", []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, net.ParseIP("127.0.0.1"))
	cli := issue(3, "surge", []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth})
	node := issue(4, "127.0.0.1", []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}, net.ParseIP("127.0.0.1"))
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	p := testPKI{ca: filepath.Join(dir, "ca.pem"), cert: filepath.Join(dir, "client.pem"), key: filepath.Join(dir, "client-key.pem"),
		nodeCert: filepath.Join(dir, "node.pem"), nodeKey: filepath.Join(dir, "node-key.pem"),
		serverTLS: &tls.Config{Certificates: []tls.Certificate{srv}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12}}
	keyDER, err := x509.MarshalPKCS8PrivateKey(cli.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	nodeKeyDER, err := x509.MarshalPKCS8PrivateKey(node.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	for path, block := range map[string]*pem.Block{
		p.ca:       {Type: "CERTIFICATE", Bytes: caDER},
		p.cert:     {Type: "CERTIFICATE", Bytes: cli.Certificate[0]},
		p.key:      {Type: "PRIVATE KEY", Bytes: keyDER},
		p.nodeCert: {Type: "CERTIFICATE", Bytes: node.Certificate[0]},
		p.nodeKey:  {Type: "PRIVATE KEY", Bytes: nodeKeyDER},
	} {
		if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return p
}
