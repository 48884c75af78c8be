// Package natsauth is how surge authenticates on NATS. Client turns the
// --nats-creds, --nats-nkey and --nats-tls-* flags into nats.go options
// for any connection surge makes; Authority is the embedded server's
// decentralized JWT auth (operator, system account, the surge application
// account) and issues the credentials files clients connect with.
package natsauth

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats.go"
)

// InboxPrefix is the prefix of the reply subjects of surge's own
// connections. It is not _INBOX, so an application whose credentials may
// subscribe _INBOX.> (client.creds) never sees the answers the gateway
// or a runtime host receive.
const InboxPrefix = "_SURGE_INBOX"

// Client is how one process authenticates to a NATS server. The zero
// value connects anonymously (or with user:password@ in the URL, which
// nats.go reads itself). Each field names a file, checked by Options.
type Client struct {
	// CredsFile is a .creds file: a user JWT and its nkey seed (--nats-creds).
	CredsFile string
	// NKeyFile holds an nkey user seed (--nats-nkey).
	NKeyFile string
	// TLSCA is a PEM file of the CAs that sign the server's certificate (--nats-tls-ca).
	TLSCA string
	// TLSCert and TLSKey are the client certificate and its key (--nats-tls-cert, --nats-tls-key).
	TLSCert string
	TLSKey  string
}

// Options returns the nats.go options of c. Every file is read here, so a
// missing or unreadable one fails with its flag's name before any
// connection is tried.
func (c Client) Options() ([]nats.Option, error) {
	var opts []nats.Option
	var errs []error
	if c.CredsFile != "" && c.NKeyFile != "" {
		errs = append(errs, errors.New("--nats-creds and --nats-nkey are mutually exclusive"))
	}
	if c.CredsFile != "" {
		if err := checkCreds(c.CredsFile); err != nil {
			errs = append(errs, fmt.Errorf("--nats-creds %s: %w", c.CredsFile, err))
		} else {
			opts = append(opts, nats.UserCredentials(c.CredsFile))
		}
	}
	if c.NKeyFile != "" {
		o, err := nats.NkeyOptionFromSeed(c.NKeyFile)
		if err != nil {
			errs = append(errs, fmt.Errorf("--nats-nkey %s: %w", c.NKeyFile, err))
		} else {
			opts = append(opts, o)
		}
	}
	tc, err := c.tlsConfig()
	if err != nil {
		errs = append(errs, err)
	} else if tc != nil {
		opts = append(opts, nats.Secure(tc))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return opts, nil
}

// checkCreds reads a .creds file and checks it holds a user JWT and seed.
func checkCreds(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if _, err := jwt.ParseDecoratedJWT(b); err != nil {
		return fmt.Errorf("not a credentials file: %w", err)
	}
	if _, err := jwt.ParseDecoratedUserNKey(b); err != nil {
		return fmt.Errorf("not a credentials file: %w", err)
	}
	return nil
}

func (c Client) tlsConfig() (*tls.Config, error) {
	if c.TLSCA == "" && c.TLSCert == "" && c.TLSKey == "" {
		return nil, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	var errs []error
	if c.TLSCA != "" {
		pem, err := os.ReadFile(c.TLSCA)
		if err != nil {
			errs = append(errs, fmt.Errorf("--nats-tls-ca %s: %w", c.TLSCA, err))
		} else {
			tc.RootCAs = x509.NewCertPool()
			if !tc.RootCAs.AppendCertsFromPEM(pem) {
				errs = append(errs, fmt.Errorf("--nats-tls-ca %s: no PEM certificate in it", c.TLSCA))
			}
		}
	}
	switch {
	case c.TLSCert != "" && c.TLSKey != "":
		cert, err := tls.LoadX509KeyPair(c.TLSCert, c.TLSKey)
		if err != nil {
			errs = append(errs, fmt.Errorf("--nats-tls-cert %s / --nats-tls-key %s: %w", c.TLSCert, c.TLSKey, err))
		} else {
			tc.Certificates = []tls.Certificate{cert}
		}
	case c.TLSCert != "":
		errs = append(errs, errors.New("--nats-tls-cert needs --nats-tls-key"))
	case c.TLSKey != "":
		errs = append(errs, errors.New("--nats-tls-key needs --nats-tls-cert"))
	}
	return tc, errors.Join(errs...)
}

// IsZero reports whether c sets nothing.
func (c Client) IsZero() bool { return c == Client{} }

// Redact replaces the password of every user:password@ in a NATS URL list
// with "xxxxx", for logs and messages.
func Redact(urls string) string {
	parts := strings.Split(urls, ",")
	for i, p := range parts {
		u, err := url.Parse(strings.TrimSpace(p))
		if err != nil || u.User == nil {
			continue
		}
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
		}
		parts[i] = u.String()
	}
	return strings.Join(parts, ",")
}

// Connect connects to url (a comma separated list) as c, with opts after
// c's own.
func (c Client) Connect(url string, opts ...nats.Option) (*nats.Conn, error) {
	auth, err := c.Options()
	if err != nil {
		return nil, err
	}
	nc, err := nats.Connect(url, append(auth, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("--nats %s: %w", Redact(url), err)
	}
	return nc, nil
}
