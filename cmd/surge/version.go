package main

import (
	"fmt"
	"io"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// version and commit name the source this binary was built from. `make
// build` sets them with -ldflags "-X main.version=... -X main.commit=...";
// a plain `go build` leaves "dev" and takes the commit from the build's VCS
// stamp when it has one (GOFLAGS=-buildvcs=false removes it).
var (
	version = "dev"
	commit  = ""
)

// versionDeps are the modules whose versions `surge version` reports: the
// ones that decide the wire protocol and the HTTP behaviour users see.
var versionDeps = []struct{ name, path string }{
	{"nats-server", "github.com/nats-io/nats-server/v2"},
	{"nats.go", "github.com/nats-io/nats.go"},
	{"echo", "github.com/labstack/echo/v4"},
}

// buildVersion describes the binary from its build information: the
// version, the commit (with "-dirty" when the tree had local changes) and
// the versions of versionDeps.
func buildVersion(bi *debug.BuildInfo, ok bool) string {
	rev, dirty := commit, false
	deps := map[string]string{}
	goVersion := "unknown"
	if ok {
		goVersion = bi.GoVersion
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				if rev == "" {
					rev = s.Value
				}
			case "vcs.modified":
				dirty = commit == "" && s.Value == "true"
			}
		}
		for _, d := range bi.Deps {
			if d.Replace != nil {
				d = d.Replace
			}
			deps[d.Path] = d.Version
		}
	}
	if rev == "" {
		rev = "unknown"
	}
	if dirty {
		rev += "-dirty"
	}
	s := fmt.Sprintf("surge %s\ncommit %s\ngo %s\n", version, rev, goVersion)
	for _, d := range versionDeps {
		v := deps[d.path]
		if v == "" {
			v = "unknown"
		}
		s += fmt.Sprintf("%s %s\n", d.name, v)
	}
	return s
}

// versionText is what `surge version` and `surge --version` print.
func versionText() string {
	bi, ok := debug.ReadBuildInfo()
	return buildVersion(bi, ok)
}

func printVersion(w io.Writer) error {
	_, err := io.WriteString(w, versionText())
	return err
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version, the commit and the versions of nats-server, nats.go and Echo",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return printVersion(cmd.OutOrStdout()) },
	}
}
