package platform

import (
	"strings"
	"testing"
)

func TestTrustedProxiesFlag(t *testing.T) {
	for _, tt := range []struct{ name, flag, want string }{
		{name: "none"},
		{name: "cidrs and an address", flag: "10.0.0.0/8, 192.168.1.7,fd00::/8"},
		{name: "not an address", flag: "10.0.0.0/8,proxy.example", want: `--trusted-proxies: "proxy.example": not an IP address or CIDR`},
		{name: "bad prefix", flag: "10.0.0.0/33", want: "--trusted-proxies: "},
	} {
		t.Run(tt.name, func(t *testing.T) { checkValidate(t, Options{TrustedProxies: tt.flag}, tt.want) })
	}
}

// checkValidate fails t unless o.validate() passes (want "") or fails with
// an error containing want.
func checkValidate(t *testing.T, o Options, want string) {
	t.Helper()
	err := o.validate()
	if want == "" {
		if err != nil {
			t.Fatalf("validate() = %v", err)
		}
		return
	}
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("validate() = %v, want an error containing %q", err, want)
	}
}
