package natsauth

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
)

// The files of an Authority, in its directory (<data>/nats). Seeds and
// credentials are secrets: mode 0600, the directory 0700.
const (
	OperatorKeyFile = "operator.nk"
	SystemKeyFile   = "system.nk"
	AccountKeyFile  = "account.nk"
	// ClientAccountKeyFile is the key of the account applications live in.
	ClientAccountKeyFile = "client-account.nk"
	// SurgeCredsFile is the credentials of surge's own processes: every
	// subject of the application account.
	SurgeCredsFile = "surge.creds"
	// ClientCredsFile is the credentials of applications (ClientPermissions).
	ClientCredsFile = "client.creds"
	// issuedFile records the user keys issued to external functions and the
	// revoked ones, so a restart keeps revocations.
	issuedFile = "issued.json"
	// jwtDir is the account resolver's directory: the newest JWT of each
	// account this server knows, its own or one a cluster peer sent.
	jwtDir = "jwt"
)

// RouteUser is the user name cluster routes authenticate with; the
// password is RouteSecret.
const RouteUser = "surge-route"

// revokeAllIssued is a revocation time after any JWT's issue time: a user
// revoked as of it is revoked whenever its JWT was signed. It is a fixed
// time, not the start time, so the account claims a restart signs equal
// the stored ones (and a JWT signed in the same second as a start is not
// let through).
var revokeAllIssued = time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)

// resolverSync is how often the account resolver compares its JWTs with
// the cluster peers' and fetches the newer ones: a node that missed an
// update (down, cut off) catches up within it.
const resolverSync = 10 * time.Second

// claimsUpdateSubject is where the system account announces a new account
// JWT; every server of the cluster with the full resolver stores it.
const claimsUpdateSubject = "$SYS.REQ.CLAIMS.UPDATE"

// Names in the accounts' JWTs.
const (
	// AccountName is the account surge and its functions live in, with
	// JetStream.
	AccountName = "SURGE"
	// ClientAccountName is the account of client.creds. It reaches SURGE
	// only through the service imports of clientServices, so the server
	// rewrites every reply subject a client sends: a client cannot aim a
	// function's answer (sent with surge's own, unrestricted credentials)
	// at $JS.API or $KV subjects by choosing its request's reply subject.
	ClientAccountName = "CLIENT"
)

// clientServices are what SURGE exports to CLIENT: the function subjects,
// the two intake subjects (a JetStream publish there is answered with the
// ack), and $SRV discovery, which many services answer.
var clientServices = []struct {
	subject string
	resp    jwt.ResponseType
}{
	{"fn.>", jwt.ResponseTypeSingleton},
	{"orders.submit", jwt.ResponseTypeSingleton},
	{"events.track", jwt.ResponseTypeSingleton},
	{"$SRV.>", jwt.ResponseTypeStream},
}

// ClientPermissions are those of client.creds: call any function whose
// subject is under fn. (the convention every built-in and the README
// follow; a function on another subject is reachable over HTTP only),
// publish orders and events into their streams, discover services with
// $SRV (nats micro ls/info/stats), and receive answers and JetStream acks
// on _INBOX.>. Nothing else: no subscription a function serves on, no
// $KV and no $JS.API, so no bucket read or write and no stream or consumer
// change. A JetStream publish needs no $JS.API subject: it is a request to
// the stream's subject, answered with the ack (nats pub --jetstream does
// exactly that).
var ClientPermissions = jwt.Permissions{
	Pub: jwt.Permission{Allow: jwt.StringList{"fn.>", "orders.submit", "events.track", "$SRV.>"}},
	Sub: jwt.Permission{Allow: jwt.StringList{"_INBOX.>"}},
}

// Errors of an Authority.
var (
	// ErrNotAttached is returned by a revocation before the server runs.
	ErrNotAttached = errors.New("natsauth: no server attached")
)

// Authority holds the keys of the embedded server's decentralized auth: an
// operator, its system account and the application account surge and its
// clients live in (JetStream enabled). Accounts are resolved by the
// server's full NATS resolver from <dir>/jwt, so a user credential can be
// issued at any time without touching the server, and revoked by pushing
// new account claims: the resolver hands them to every server of a
// cluster (each trusting the same operator: every node's <data>/nats holds
// the same keys).
type Authority struct {
	dir                       string
	operator, system, account nkeys.KeyPair
	clientAccount             nkeys.KeyPair
	// clientUser is client.creds' user key. Releases before the CLIENT
	// account signed it in SURGE; SURGE revokes every JWT of it (see
	// revokeAllIssued), so a copy
	// of such an old file (which could aim answers, see ClientAccountName)
	// stops working.
	clientUser  string
	operatorJWT *jwt.OperatorClaims
	resolver    *server.DirAccResolver
	mu          sync.Mutex
	srv         *server.Server
	issued      issued
	now         func() time.Time
}

// issued is the file issuedFile.
type issued struct {
	// Functions are the user public keys issued per external function
	// that are not revoked.
	Functions map[string][]string `json:"functions"`
	// Revoked maps a user public key to the Unix time of its revocation.
	Revoked map[string]int64 `json:"revoked"`
}

// Open loads the keys under dir, creating the ones missing (at the first
// start), and writes surge.creds and client.creds there. Their user keys
// are kept across restarts; their JWTs are signed again, so a file always
// carries this release's permissions.
func Open(dir string) (*Authority, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("nats auth dir: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, fmt.Errorf("nats auth dir: %w", err)
	}
	a := &Authority{dir: dir, now: time.Now,
		issued: issued{Functions: map[string][]string{}, Revoked: map[string]int64{}}}
	var err error
	if a.resolver, err = server.NewDirAccResolver(filepath.Join(dir, jwtDir), 0, resolverSync, server.NoDelete); err != nil {
		return nil, fmt.Errorf("nats account resolver: %w", err)
	}
	if a.operator, err = loadOrCreateKey(filepath.Join(dir, OperatorKeyFile), nkeys.CreateOperator); err != nil {
		return nil, err
	}
	if a.system, err = loadOrCreateKey(filepath.Join(dir, SystemKeyFile), nkeys.CreateAccount); err != nil {
		return nil, err
	}
	if a.account, err = loadOrCreateKey(filepath.Join(dir, AccountKeyFile), nkeys.CreateAccount); err != nil {
		return nil, err
	}
	if a.clientAccount, err = loadOrCreateKey(filepath.Join(dir, ClientAccountKeyFile), nkeys.CreateAccount); err != nil {
		return nil, err
	}
	if b, err := os.ReadFile(filepath.Join(dir, issuedFile)); err == nil {
		if err := json.Unmarshal(b, &a.issued); err != nil {
			return nil, fmt.Errorf("%s: %w", filepath.Join(dir, issuedFile), err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	if a.issued.Functions == nil {
		a.issued.Functions = map[string][]string{}
	}
	if a.issued.Revoked == nil {
		a.issued.Revoked = map[string]int64{}
	}
	if _, err := a.writeUserCreds(SurgeCredsFile, "surge", a.account, jwt.Permissions{}); err != nil {
		return nil, err
	}
	if a.clientUser, err = a.writeUserCreds(ClientCredsFile, "client", a.clientAccount, ClientPermissions); err != nil {
		return nil, err
	}
	if err := a.mergeStoredRevocations(); err != nil {
		return nil, err
	}
	if err := a.signAccounts(); err != nil {
		return nil, err
	}
	return a, nil
}

// loadOrCreateKey reads the nkey seed at path, or creates one with create
// and writes it there.
func loadOrCreateKey(path string, create func() (nkeys.KeyPair, error)) (nkeys.KeyPair, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		kp, err := nkeys.ParseDecoratedNKey(b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return kp, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	kp, err := create()
	if err != nil {
		return nil, err
	}
	seed, err := kp.Seed()
	if err != nil {
		return nil, err
	}
	if err := writeSecret(path, append(seed, '\n')); err != nil {
		return nil, err
	}
	return kp, nil
}

// writeSecret writes b to path with mode 0600, atomically.
func writeSecret(path string, b []byte) error {
	// A fresh temporary file (mode 0600 from CreateTemp), synced, renamed
	// over path, then the directory synced: a crash leaves the old file or
	// the new one, never an empty one (an empty issued.json would make the
	// obvious recovery, deleting it, bring back revoked credentials).
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}

// signAccounts signs the operator and both account JWTs and stores the
// accounts in the resolver.
func (a *Authority) signAccounts() error {
	opPub, _ := a.operator.PublicKey()
	sysPub, _ := a.system.PublicKey()
	oc := jwt.NewOperatorClaims(opPub)
	oc.Name = "surge"
	oc.SystemAccount = sysPub
	tok, err := oc.Encode(a.operator)
	if err != nil {
		return fmt.Errorf("operator jwt: %w", err)
	}
	if a.operatorJWT, err = jwt.DecodeOperatorClaims(tok); err != nil {
		return fmt.Errorf("operator jwt: %w", err)
	}
	sc := jwt.NewAccountClaims(sysPub)
	sc.Name = "SYS"
	sysJWT, err := sc.Encode(a.operator)
	if err != nil {
		return fmt.Errorf("system account jwt: %w", err)
	}
	if err := a.storeUnlessSame(sysJWT); err != nil {
		return err
	}
	_, accJWT, err := a.accountClaims()
	if err != nil {
		return err
	}
	if err := a.storeUnlessSame(accJWT); err != nil {
		return err
	}
	cc := jwt.NewAccountClaims(a.ClientAccountPublicKey())
	cc.Name = ClientAccountName
	for _, svc := range clientServices {
		cc.Imports.Add(&jwt.Import{Name: svc.subject, Subject: jwt.Subject(svc.subject), Account: a.AccountPublicKey(), Type: jwt.Service})
	}
	clientJWT, err := cc.Encode(a.operator)
	if err != nil {
		return fmt.Errorf("client account jwt: %w", err)
	}
	return a.storeUnlessSame(clientJWT)
}

// storeUnlessSame stores the account JWT tok in the resolver, unless the
// one stored says the same (only its issue time and id differ). In a
// cluster the newest JWT of an account wins on every node: a node that
// restarts must not replace a peer's newer JWT (one with a revocation it
// missed while it was down) with an older view signed anew.
func (a *Authority) storeUnlessSame(tok string) error {
	fresh, err := jwt.DecodeAccountClaims(tok)
	if err != nil {
		return fmt.Errorf("account jwt: %w", err)
	}
	if old, err := a.resolver.LoadAcc(fresh.Subject); err == nil {
		if stored, err := jwt.DecodeAccountClaims(old); err == nil && sameClaims(stored, fresh) {
			return nil
		}
	}
	if err := a.resolver.Store(fresh.Subject, tok); err != nil {
		return fmt.Errorf("store account jwt %s: %w", fresh.Name, err)
	}
	return nil
}

// sameClaims reports whether x and y differ at most in when and as what
// id they were issued.
func sameClaims(x, y *jwt.AccountClaims) bool {
	norm := func(c jwt.AccountClaims) []byte {
		c.IssuedAt, c.ID = 0, ""
		b, _ := json.Marshal(c)
		return b
	}
	return bytes.Equal(norm(*x), norm(*y))
}

// mergeStoredRevocations adds to the revocations those of the application
// account's stored JWT, which may come from a cluster peer (a `surge creds
// --rotate` sent to another node): signed anew without them, they would be
// lifted on every node.
func (a *Authority) mergeStoredRevocations() error {
	old, err := a.resolver.LoadAcc(a.AccountPublicKey())
	if err != nil {
		return nil // none stored yet
	}
	stored, err := jwt.DecodeAccountClaims(old)
	if err != nil {
		return fmt.Errorf("%s: stored account jwt: %w", filepath.Join(a.dir, jwtDir), err)
	}
	for pub, at := range stored.Revocations {
		if pub != a.clientUser && at > a.issued.Revoked[pub] {
			a.issued.Revoked[pub] = at
		}
	}
	return nil
}

// accountClaims are the application account's claims: JetStream without
// limits, and the revocations.
func (a *Authority) accountClaims() (*jwt.AccountClaims, string, error) {
	ac := jwt.NewAccountClaims(a.AccountPublicKey())
	ac.Name = AccountName
	ac.Limits.JetStreamLimits = jwt.JetStreamLimits{MemoryStorage: jwt.NoLimit, DiskStorage: jwt.NoLimit,
		Streams: jwt.NoLimit, Consumer: jwt.NoLimit, MaxAckPending: jwt.NoLimit,
		MemoryMaxStreamBytes: jwt.NoLimit, DiskMaxStreamBytes: jwt.NoLimit}
	for _, svc := range clientServices {
		ac.Exports.Add(&jwt.Export{Name: svc.subject, Subject: jwt.Subject(svc.subject), Type: jwt.Service, ResponseType: svc.resp})
	}
	for pub, at := range a.issued.Revoked {
		ac.RevokeAt(pub, time.Unix(at, 0))
	}
	if a.clientUser != "" {
		ac.RevokeAt(a.clientUser, revokeAllIssued)
	}
	tok, err := ac.Encode(a.operator)
	if err != nil {
		return nil, "", fmt.Errorf("account jwt: %w", err)
	}
	return ac, tok, nil
}

// writeUserCreds (re)writes the credentials file name for a user of the
// account whose key is account, with perms, keeping the user key of an
// existing file.
func (a *Authority) writeUserCreds(name, user string, account nkeys.KeyPair, perms jwt.Permissions) (pub string, err error) {
	path := filepath.Join(a.dir, name)
	var kp nkeys.KeyPair
	if b, err := os.ReadFile(path); err == nil {
		kp, _ = jwt.ParseDecoratedUserNKey(b) // unreadable: a new key
	}
	if kp == nil {
		if kp, err = nkeys.CreateUser(); err != nil {
			return "", err
		}
	}
	creds, err := a.userCreds(kp, user, account, perms, nil)
	if err != nil {
		return "", err
	}
	if pub, err = kp.PublicKey(); err != nil {
		return "", err
	}
	return pub, writeSecret(path, creds)
}

// userCreds is a .creds file for the user kp in the account whose key is
// account.
func (a *Authority) userCreds(kp nkeys.KeyPair, name string, account nkeys.KeyPair, perms jwt.Permissions, resp *jwt.ResponsePermission) ([]byte, error) {
	pub, err := kp.PublicKey()
	if err != nil {
		return nil, err
	}
	uc := jwt.NewUserClaims(pub)
	uc.Name = name
	uc.Permissions = perms
	uc.Resp = resp
	tok, err := uc.Encode(account)
	if err != nil {
		return nil, fmt.Errorf("user jwt %s: %w", name, err)
	}
	seed, err := kp.Seed()
	if err != nil {
		return nil, err
	}
	return jwt.FormatUserConfig(tok, seed)
}

// ConfigureServer makes o trust the operator, resolve accounts with the
// full resolver of <dir>/jwt, and refuse anonymous clients (operator mode
// has no anonymous user). An Authority configures one server.
func (a *Authority) ConfigureServer(o *server.Options) {
	o.TrustedOperators = []*jwt.OperatorClaims{a.operatorJWT}
	o.SystemAccount, _ = a.system.PublicKey()
	o.AccountResolver = a.resolver
}

// RouteSecret is the password cluster routes authenticate with (user
// RouteUser). It is derived from the operator's seed and every account key,
// so only a node holding the same <data>/nats keys knows it: a node with
// other keys, whose accounts the others would not trust, is refused at the
// route instead of joining a cluster it cannot serve.
func (a *Authority) RouteSecret() string {
	seed, _ := a.operator.Seed()
	mac := hmac.New(sha256.New, seed)
	mac.Write([]byte("surge cluster route\n"))
	for _, kp := range []nkeys.KeyPair{a.operator, a.system, a.account, a.clientAccount} {
		pub, _ := kp.PublicKey()
		mac.Write([]byte(pub + "\n"))
	}
	return hex.EncodeToString(mac.Sum(nil))
}

// Attach gives a the running server, which revocations are pushed to.
func (a *Authority) Attach(s *server.Server) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.srv = s
}

// AccountPublicKey is the application account's public key, also the
// name of its directory in the JetStream store.
func (a *Authority) AccountPublicKey() string {
	pub, _ := a.account.PublicKey()
	return pub
}

// ClientAccountPublicKey is the public key of the account of client.creds.
func (a *Authority) ClientAccountPublicKey() string {
	pub, _ := a.clientAccount.PublicKey()
	return pub
}

// Dir is the directory holding the keys and credentials files.
func (a *Authority) Dir() string { return a.dir }

// SurgeCreds is the path of surge's own credentials file.
func (a *Authority) SurgeCreds() string { return filepath.Join(a.dir, SurgeCredsFile) }

// ClientCreds is the path of the applications' credentials file.
func (a *Authority) ClientCreds() string { return filepath.Join(a.dir, ClientCredsFile) }

// FunctionCreds issues a credentials file for the external function name:
// it may subscribe subject in the queue group queue only, and publish
// only the answers to the requests it received (allow_responses, one
// answer each). With rotate, every earlier credential of name is revoked,
// and a connection using one is closed.
func (a *Authority) FunctionCreds(name, subject, queue string, rotate bool) ([]byte, error) {
	kp, err := nkeys.CreateUser()
	if err != nil {
		return nil, err
	}
	pub, _ := kp.PublicKey()
	perms := jwt.Permissions{Sub: jwt.Permission{Allow: jwt.StringList{subject + " " + queue}}}
	creds, err := a.userCreds(kp, "fn:"+name, a.account, perms, &jwt.ResponsePermission{MaxMsgs: 1})
	if err != nil {
		return nil, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if rotate && a.srv == nil {
		return nil, ErrNotAttached
	}
	old := a.issued.Functions[name]
	if rotate {
		// The stored JWT may hold a peer's revocations announced since
		// Open: the JWT signed below must keep them, or, newer, it would
		// lift them on every node.
		if err := a.mergeStoredRevocations(); err != nil {
			return nil, err
		}
		// A revocation is by user key: the new key is not in it, even
		// if its JWT was issued in the same second.
		at := a.now().Unix()
		for _, p := range old {
			a.issued.Revoked[p] = at
		}
		old = nil
	}
	a.issued.Functions[name] = append(old, pub)
	if err := a.saveIssued(); err != nil {
		return nil, err
	}
	if rotate {
		if err := a.pushAccount(); err != nil {
			return nil, err
		}
	}
	return creds, nil
}

func (a *Authority) saveIssued() error {
	for _, keys := range a.issued.Functions {
		sort.Strings(keys)
	}
	b, err := json.MarshalIndent(a.issued, "", "  ")
	if err != nil {
		return err
	}
	return writeSecret(filepath.Join(a.dir, issuedFile), append(b, '\n'))
}

// pushAccount signs the application account again, applies it to the
// running server (revoked users are disconnected and cannot reconnect),
// and announces it to the cluster's other servers, which store and apply
// it the same way. A server that misses the announcement gets the JWT from
// a peer within resolverSync.
func (a *Authority) pushAccount() error {
	ac, tok, err := a.accountClaims()
	if err != nil {
		return err
	}
	if err := a.resolver.Store(ac.Subject, tok); err != nil {
		return err
	}
	acc, err := a.srv.LookupAccount(ac.Subject)
	if err != nil {
		return fmt.Errorf("account %s: %w", ac.Subject, err)
	}
	a.srv.UpdateAccountClaims(acc, ac)
	if err := a.announce(tok); err != nil {
		return fmt.Errorf("revoked on this server, but not announced to the cluster's other servers (they catch up within %s): %w", resolverSync, err)
	}
	return nil
}

// announce publishes the account JWT tok on claimsUpdateSubject as a user
// of the system account, over an in-process connection.
func (a *Authority) announce(tok string) error {
	kp, err := nkeys.CreateUser()
	if err != nil {
		return err
	}
	creds, err := a.userCreds(kp, "surge-sys", a.system, jwt.Permissions{}, nil)
	if err != nil {
		return err
	}
	userJWT, err := jwt.ParseDecoratedJWT(creds)
	if err != nil {
		return err
	}
	seed, _ := kp.Seed()
	nc, err := nats.Connect("", nats.InProcessServer(a.srv), nats.UserJWTAndSeed(userJWT, string(seed)), nats.Name("surge-claims"))
	if err != nil {
		return err
	}
	defer nc.Close()
	if err := nc.Publish(claimsUpdateSubject, []byte(tok)); err != nil {
		return err
	}
	return nc.FlushTimeout(5 * time.Second)
}
