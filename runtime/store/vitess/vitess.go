package vitess

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"vitess.io/vitess/go/vt/vitessdriver"

	"github.com/surgefn/surge/runtime/store"
)

// Defaults of the Config fields left zero.
const (
	// DefaultKeyspace is the keyspace of manifests/vitess/commerce.
	DefaultKeyspace = "commerce"
	// DefaultMaxOpenConns bounds the connections to vtgate. Each is a gRPC
	// session, and a call holds one for one statement, so this is the
	// number of statements in flight.
	DefaultMaxOpenConns = 64
	// DefaultConnMaxLifetime recycles connections so that a pool behind a
	// load balancer spreads over vtgates added later.
	DefaultConnMaxLifetime = 30 * time.Minute
)

// maxRows bounds the rows of one multi-row statement, and so its size: a
// bigger batch is written in several statements.
const maxRows = 500

// Errors of this backend besides those of package store.
var (
	// ErrSchema means the keyspace lacks a table of the schema and Open
	// could not create it: apply manifests/vitess/commerce (schema.sql and
	// vschema.json) to it.
	ErrSchema = errors.New("keyspace lacks the surge schema")
)

// Config says where the keyspace is and how many connections to keep.
// Address is required; a zero field means its default.
type Config struct {
	// Address is vtgate's gRPC address, host:port.
	Address string
	// Keyspace holds the tables of manifests/vitess/commerce; default
	// DefaultKeyspace.
	Keyspace string
	// MaxOpenConns bounds the open connections; default
	// DefaultMaxOpenConns.
	MaxOpenConns int
	// MaxIdleConns is how many connections stay open when idle; default
	// MaxOpenConns, so a burst after a lull dials nothing.
	MaxIdleConns int
	// ConnMaxLifetime closes a connection that old after its current use;
	// default DefaultConnMaxLifetime.
	ConnMaxLifetime time.Duration
}

// Validate reports a missing address or a negative pool setting.
func (c Config) Validate() error {
	var errs []error
	if c.Address == "" {
		errs = append(errs, errors.New("address: required (--vtgate: vtgate's gRPC host:port)"))
	} else if err := checkAddress(c.Address); err != nil {
		// A malformed address can never answer: refused at once, where
		// a well-formed one that does not answer yet is waited for.
		errs = append(errs, fmt.Errorf("address: %q is not vtgate's gRPC host:port: %w", c.Address, err))
	}
	if strings.ContainsAny(c.Keyspace, ":@/` ") {
		errs = append(errs, fmt.Errorf("keyspace: %q is not a keyspace name", c.Keyspace))
	}
	if c.MaxOpenConns < 0 {
		errs = append(errs, fmt.Errorf("max open conns: must be >= 0 (0 = %d), got %d", DefaultMaxOpenConns, c.MaxOpenConns))
	}
	if c.MaxIdleConns < 0 {
		errs = append(errs, fmt.Errorf("max idle conns: must be >= 0 (0 = max open), got %d", c.MaxIdleConns))
	}
	if c.ConnMaxLifetime < 0 {
		errs = append(errs, fmt.Errorf("conn max lifetime: must be >= 0 (0 = %v), got %v", DefaultConnMaxLifetime, c.ConnMaxLifetime))
	}
	return errors.Join(errs...)
}

func (c Config) withDefaults() Config {
	if c.Keyspace == "" {
		c.Keyspace = DefaultKeyspace
	}
	if c.MaxOpenConns == 0 {
		c.MaxOpenConns = DefaultMaxOpenConns
	}
	if c.MaxIdleConns == 0 {
		c.MaxIdleConns = c.MaxOpenConns
	}
	if c.ConnMaxLifetime == 0 {
		c.ConnMaxLifetime = DefaultConnMaxLifetime
	}
	return c
}

// Store is a Vitess keyspace behind a database/sql pool. It is safe for
// concurrent use.
type Store struct {
	db       *sql.DB
	keyspace string
	closed   atomic.Bool
}

// Each domain's file checks that Store implements that domain.
var (
	_ store.Store      = (*Store)(nil)
	_ store.Identifier = (*Store)(nil)
)

// StoreID names the data: the keyspace. Hosts reaching it through
// different vtgates of one Vitess share it; a host on another keyspace is
// on other data (the store-split check refuses it). Two Vitess clusters
// with keyspaces of the same name are not told apart.
func (s *Store) StoreID() string { return "vitess keyspace " + s.keyspace }

// Open connects to the keyspace through vtgate and checks that its tables
// exist, creating those a surge keyspace lacks (see checkSchema; ErrSchema
// if it cannot); ctx bounds the check. A vtgate that does not answer yet,
// or whose tablets do not serve yet, is store.ErrUnavailable: the caller
// may try again.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("vitess: config: %w", err)
	}
	cfg = cfg.withDefaults()
	if err := checkReachable(ctx, cfg.Address); err != nil {
		return nil, fmt.Errorf("vitess: %w: %w", store.ErrUnavailable, err)
	}
	db, err := openDB(cfg)
	if err != nil {
		return nil, fmt.Errorf("vitess: open %s: %w", cfg.Address, err)
	}
	db.SetMaxOpenConns(cfg.MaxOpenConns)
	db.SetMaxIdleConns(cfg.MaxIdleConns)
	db.SetConnMaxLifetime(cfg.ConnMaxLifetime)
	s := &Store{db: db, keyspace: cfg.Keyspace}
	if err := s.checkSchema(ctx); err != nil {
		_ = db.Close()
		return nil, err
	}
	return s, nil
}

// openDB opens the pool through the driver's documented JSON name, with a
// connector that pins every connection's transaction mode (see the
// package comment): database/sql has no other hook that runs once per
// connection.
func openDB(cfg Config) (*sql.DB, error) {
	registerDialer()
	name, err := json.Marshal(vitessdriver.Configuration{Protocol: dialProtocol, Address: cfg.Address, Target: cfg.Keyspace})
	if err != nil {
		return nil, err
	}
	probe, err := sql.Open("vitess", string(name)) // registered by vitessdriver's init
	if err != nil {
		return nil, err
	}
	d, ok := probe.Driver().(driver.DriverContext)
	_ = probe.Close()
	if !ok {
		return nil, errors.New("the vitess driver has no connector")
	}
	c, err := d.OpenConnector(string(name))
	if err != nil {
		return nil, err
	}
	return sql.OpenDB(sessionConnector{c}), nil
}

// sessionConnector sets up each new vtgate session.
type sessionConnector struct{ driver.Connector }

// Connect opens a session and sets its transaction mode to MULTI.
func (c sessionConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	ex, ok := conn.(driver.ExecerContext)
	if !ok {
		_ = conn.Close()
		return nil, errors.New("vitess driver connection cannot execute statements")
	}
	if _, err := ex.ExecContext(ctx, "SET transaction_mode = 'multi'", nil); err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("set transaction_mode: %w", err)
	}
	return conn, nil
}

func drain(rows *sql.Rows) error {
	for rows.Next() {
	}
	if err := rows.Err(); err != nil {
		_ = rows.Close()
		return err
	}
	return rows.Close()
}

// Ping reports whether vtgate and every shard answer: it is a scatter
// query, so a shard without a serving primary fails it.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	if err := s.probe(ctx, tables()[0].name); err != nil {
		return s.fail("ping", err)
	}
	return nil
}

// Close closes the pool. Calls after Close return store.ErrClosed; a second
// Close returns nil.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("vitess: close: %w", err)
	}
	return nil
}

// check is the entry test of every call.
func (s *Store) check(ctx context.Context) error {
	if s.closed.Load() {
		return fmt.Errorf("vitess: %w", store.ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("vitess: %w", err)
	}
	return nil
}

// fail wraps err for op; an error caused by a concurrent Close becomes
// store.ErrClosed and an empty result store.ErrNotFound.
func (s *Store) fail(op string, err error) error {
	switch {
	case errors.Is(err, sql.ErrNoRows):
		err = store.ErrNotFound
	case s.closed.Load():
		err = fmt.Errorf("%w (%w)", store.ErrClosed, err)
	}
	return fmt.Errorf("vitess: %s: %w", op, err)
}

// exec runs one statement and returns its affected rows.
func (s *Store) exec(ctx context.Context, query string, args ...any) (int64, error) {
	res, err := s.db.ExecContext(ctx, query, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// insertIgnore is the head of a multi-row INSERT IGNORE into table's cols
// whose rows may be on several shards. The directive has vtgate commit
// the statement's part on each shard by itself, as it would a statement
// on one shard, instead of one transaction per shard that all commit at
// the end (see "Writes and transactions" in the package comment).
func insertIgnore(table, cols string) string {
	return "INSERT /*vt+ MULTI_SHARD_AUTOCOMMIT=1 */ IGNORE INTO " + table + " (" + cols + ")"
}

// valuesSQL returns head followed by " VALUES (?,...),(?,...)" for n rows
// of cols placeholders each.
func valuesSQL(head string, cols, n int) string {
	row := "(" + strings.Repeat("?,", cols-1) + "?)"
	var b strings.Builder
	b.Grow(len(head) + 8 + n*(len(row)+1))
	b.WriteString(head)
	b.WriteString(" VALUES ")
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(row)
	}
	return b.String()
}

// inSQL returns head followed by " IN (?,...)" with n placeholders.
func inSQL(head string, n int) string {
	return head + " IN (" + strings.Repeat("?,", n-1) + "?)"
}

// chunks calls fn with the bounds of each run of at most maxRows of n
// items, stopping at the first error.
func chunks(n int, fn func(lo, hi int) error) error {
	for lo := 0; lo < n; lo += maxRows {
		if err := fn(lo, min(lo+maxRows, n)); err != nil {
			return err
		}
	}
	return nil
}
