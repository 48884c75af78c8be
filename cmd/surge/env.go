package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// envName is the environment variable for a flag: SURGE_ and the flag name
// upper-cased with dashes as underscores.
func envName(flag string) string {
	return "SURGE_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// noEnvAnnotation marks a flag that no environment variable sets: a value
// of one call (the body of `surge call`), not a setting.
const noEnvAnnotation = "surge_no_env"

// noEnv marks the flag name of fs as one applyEnv leaves alone.
func noEnv(fs *pflag.FlagSet, name string) {
	if err := fs.SetAnnotation(name, noEnvAnnotation, []string{"true"}); err != nil {
		panic(err) // a flag that does not exist: a programming error
	}
}

func readsEnv(f *pflag.Flag) bool { return f.Annotations[noEnvAnnotation] == nil }

// applyEnv sets every flag not given on the command line from env (a list
// of KEY=VALUE, as os.Environ returns), so tests can pass a fake environment.
func applyEnv(fs *pflag.FlagSet, env []string) error {
	vals := make(map[string]string, len(env))
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, "SURGE_") {
			vals[k] = v
		}
	}
	var err error
	fs.VisitAll(func(f *pflag.Flag) {
		if err != nil || f.Changed || !readsEnv(f) {
			return
		}
		if v, ok := vals[envName(f.Name)]; ok {
			if serr := fs.Set(f.Name, v); serr != nil {
				err = fmt.Errorf("%s=%q: %w", envName(f.Name), v, serr)
			}
		}
	})
	return err
}

// withEnv makes cmd read its flags from env before it runs, and documents
// the variables in its help.
func withEnv(cmd *cobra.Command, env []string) *cobra.Command {
	cmd.PreRunE = func(c *cobra.Command, _ []string) error { return applyEnv(c.Flags(), env) }
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if readsEnv(f) {
			f.Usage += " [" + envName(f.Name) + "]"
		}
	})
	return cmd
}
