package vitess

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"vitess.io/vitess/go/vt/proto/vtrpc"
	"vitess.io/vitess/go/vt/vterrors"

	"github.com/surgefn/surge/runtime/store"
)

// table is one table of the keyspace, declared by the file of the domain
// that uses it: its DDL and its primary vindex. manifests/vitess/commerce
// (schema.sql and vschema.json) is generated from these declarations
// (TestSchemaManifests checks it; go test -run TestSchemaManifests -update
// rewrites it).
type table struct {
	name string
	// doc is the comment above the table in schema.sql: why it has its
	// vindex and its keys.
	doc string
	// ddl creates the table: CREATE TABLE IF NOT EXISTS name (...).
	ddl string
	// column is sharded by vindex, a vindex type (hash, xxhash) that the
	// vschema also uses as the vindex's name.
	column, vindex string
}

// schemaDomain is the tables of one domain.
type schemaDomain struct {
	name   string
	tables []table
}

// domains are the keyspace's tables by domain, sorted by domain name; each
// domain's file adds its own with addTables.
var domains []schemaDomain

// addTables declares the tables of a domain.
func addTables(domain string, ts ...table) bool {
	domains = append(domains, schemaDomain{name: domain, tables: ts})
	slices.SortFunc(domains, func(a, b schemaDomain) int { return strings.Compare(a.name, b.name) })
	return true
}

// tables returns every table, domain by domain.
func tables() []table {
	var out []table
	for _, d := range domains {
		out = append(out, d.tables...)
	}
	return out
}

// checkSchema makes sure every table exists and is routed. A keyspace that
// has none of them is not a surge keyspace (or not set up): that is
// ErrSchema, and the operator applies manifests/vitess/commerce. A keyspace
// that has some is a surge keyspace from before a domain was added, and
// Open creates the missing tables itself (see ensureTable), so adding a
// domain needs no manual migration where vtgate allows vschema DDL.
func (s *Store) checkSchema(ctx context.Context) error {
	var missing []table
	all := tables()
	for _, t := range all {
		switch err := s.probe(ctx, t.name); {
		case err == nil:
		case isNoTable(err):
			missing = append(missing, t)
		default:
			return probeError(s.keyspace, t.name, err)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	if len(missing) == len(all) {
		return fmt.Errorf("vitess: keyspace %s has none of the tables %s: %w (apply manifests/vitess/commerce)",
			s.keyspace, tableNames(all), ErrSchema)
	}
	for _, t := range missing {
		if err := s.ensureTable(ctx, t); err != nil {
			return fmt.Errorf("vitess: keyspace %s, table %s: %w (apply manifests/vitess/commerce, or let vtgate allow vschema DDL with --vschema-ddl-authorized-users): %w",
				s.keyspace, t.name, ErrSchema, err)
		}
	}
	return nil
}

// probe asks every shard for the table: a scatter query with LIMIT 1 reads
// at most one row per shard. The name is qualified: vtgate resolves an
// unqualified name in any keyspace that has it, even when the session's
// keyspace does not exist.
func (s *Store) probe(ctx context.Context, name string) error {
	rows, err := s.db.QueryContext(ctx, "SELECT 1 FROM `"+s.keyspace+"`."+name+" LIMIT 1")
	if err != nil {
		return err
	}
	return drain(rows)
}

// ensureTable routes a missing table by its vindex and creates it on every
// shard, then probes it. The vschema goes first: vtgate usually refuses
// vschema DDL, and then nothing has changed. Both steps are safe to race
// with another host opening the store: a vindex another host added first
// is "already defined", and the DDL is IF NOT EXISTS.
func (s *Store) ensureTable(ctx context.Context, t table) error {
	alter := fmt.Sprintf("ALTER VSCHEMA ON `%s`.%s ADD VINDEX %s(%s) USING %s", s.keyspace, t.name, t.vindex, t.column, t.vindex)
	if _, err := s.db.ExecContext(ctx, alter); err != nil && !strings.Contains(err.Error(), "already defined on table") {
		return fmt.Errorf("route: %w", err)
	}
	if _, err := s.db.ExecContext(ctx, t.ddl); err != nil {
		return fmt.Errorf("create: %w", err)
	}
	if err := s.probe(ctx, t.name); err != nil {
		return fmt.Errorf("probe: %w", err)
	}
	return nil
}

// probeError is the error of Open when probing table name of keyspace
// failed other than by the table's absence. A keyspace of several shards
// without a vschema is one vtgate treats as unsharded, and it answers
// "Keyspace 'commerce' does not have exactly one shard": the surge schema
// (its vschema) was not applied. A vtgate or tablet that does not serve
// yet is store.ErrUnavailable, worth waiting for.
func probeError(keyspace, name string, err error) error {
	switch {
	case isNoVSchema(err):
		return fmt.Errorf("vitess: keyspace %s: %w: it has several shards but no vschema routing the surge tables "+
			"(apply manifests/vitess/commerce: vtctldclient ApplySchema --sql-file schema.sql %s, then "+
			"vtctldclient ApplyVSchema --vschema-file vschema.json %s): vtgate said: %w", keyspace, ErrSchema, keyspace, keyspace, err)
	case isUnavailable(err):
		return fmt.Errorf("vitess: keyspace %s, table %s: %w: %w", keyspace, name, store.ErrUnavailable, err)
	}
	return fmt.Errorf("vitess: keyspace %s, table %s: %w", keyspace, name, err)
}

// isNoVSchema reports vtgate's refusal to route a query into a keyspace
// of several shards that has no vschema (vtgate/engine/routing.go). The
// text is matched, not only the code: FAILED_PRECONDITION has other causes.
func isNoVSchema(err error) bool {
	return strings.Contains(err.Error(), "does not have exactly one shard")
}

// isUnavailable reports an error that may go away on its own: no serving
// tablet yet (UNAVAILABLE), a timeout, a vtgate shutting down.
func isUnavailable(err error) bool {
	switch vterrors.Code(err) {
	case vtrpc.Code_UNAVAILABLE, vtrpc.Code_DEADLINE_EXCEEDED, vtrpc.Code_CLUSTER_EVENT:
		return true
	}
	return errors.Is(err, context.DeadlineExceeded)
}

// isNoTable reports that the table does not exist: vtgate's "not in the
// vschema" (NOT_FOUND for an unknown keyspace, a bare "table t not found"
// for a table a sharded keyspace does not route) and MySQL's "no such
// table" (1146).
func isNoTable(err error) bool {
	return vterrors.Code(err) == vtrpc.Code_NOT_FOUND || strings.Contains(err.Error(), "errno 1146") ||
		notFound.MatchString(err.Error())
}

var notFound = regexp.MustCompile(`\btable \S+ not found\b`)

func tableNames(ts []table) string {
	names := make([]string, len(ts))
	for i, t := range ts {
		names[i] = t.name
	}
	return strings.Join(names, ", ")
}

// schemaHeader opens manifests/vitess/commerce/schema.sql.
const schemaHeader = `-- The commerce keyspace: surge's store on Vitess (runtime/store/vitess).
-- Generated from the table declarations in runtime/store/vitess (one file per
-- domain); edit those and run
--   go test ./runtime/store/vitess -run TestSchemaManifests -update
-- Sharded: vschema.json routes each table, and the comment above each table
-- here says why it has that vindex. Apply both files to a keyspace:
--
--   vtctldclient ApplySchema  --sql-file    schema.sql    commerce
--   vtctldclient ApplyVSchema --vschema-file vschema.json commerce
--
-- Every table has a unique key on its natural key, so every insert is an
-- INSERT IGNORE that a redelivered stream message turns into a no-op.
--
-- Every string column is binary (VARBINARY, BLOB): the store keeps strings
-- as bytes, like the buntdb keys and values, and never lets MySQL compare
-- or convert them. A character set would do harm twice. Keys: a case- and
-- pad-insensitive collation (the server default may be utf8mb3_general_ci,
-- as it is on the test cluster) would make "A1" and "a1 " one order while the
-- vindexes hash their bytes to different shards. Values: text is converted
-- through the tablet's connection character set, and the test cluster's
-- tablets talk utf8mb3 to MariaDB, which turns every 4-byte character
-- (emoji, rarer CJK) into '?'. Bytes pass through unchanged. To read a
-- column as text: SELECT CONVERT(items USING utf8mb4) ...
`

// schemaSQL is manifests/vitess/commerce/schema.sql.
func schemaSQL() string {
	var b strings.Builder
	b.WriteString(schemaHeader)
	for _, t := range tables() {
		b.WriteString("\n")
		for line := range strings.SplitSeq(strings.TrimSpace(t.doc), "\n") {
			b.WriteString(strings.TrimRight("-- "+strings.TrimSpace(line), " ") + "\n")
		}
		b.WriteString(strings.TrimSpace(t.ddl) + ";\n")
	}
	return b.String()
}

// vschemaJSON is manifests/vitess/commerce/vschema.json.
func vschemaJSON() string {
	var types []string
	for _, t := range tables() {
		if !slices.Contains(types, t.vindex) {
			types = append(types, t.vindex)
		}
	}
	slices.Sort(types)
	var b strings.Builder
	b.WriteString("{\n  \"sharded\": true,\n  \"vindexes\": {\n")
	for i, v := range types {
		fmt.Fprintf(&b, "    %q: { \"type\": %q }%s\n", v, v, comma(i, len(types)))
	}
	b.WriteString("  },\n  \"tables\": {\n")
	ts := tables()
	for i, t := range ts {
		fmt.Fprintf(&b, "    %q: {\n      \"column_vindexes\": [\n        { \"column\": %q, \"name\": %q }\n      ]\n    }%s\n",
			t.name, t.column, t.vindex, comma(i, len(ts)))
	}
	b.WriteString("  }\n}\n")
	return b.String()
}

func comma(i, n int) string {
	if i < n-1 {
		return ","
	}
	return ""
}
