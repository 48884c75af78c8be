package platform

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestJWTFlags(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good", strings.Repeat("s", 32)+"\n")
	short := write("short", strings.Repeat("s", 31)+"\n")
	tests := []struct {
		name       string
		jwt        JWTOptions
		want       string // "" for valid
		wantSecret int    // bytes read
	}{
		{name: "none"},
		{name: "secret file", jwt: JWTOptions{SecretFile: good, Issuer: "i", Audience: "a"}, wantSecret: 32},
		{name: "jwks url", jwt: JWTOptions{JWKSURL: "https://id.example/jwks.json"}},
		{name: "missing secret file", jwt: JWTOptions{SecretFile: filepath.Join(dir, "nope")}, want: "--jwt-secret-file: open "},
		{name: "secret file is a directory", jwt: JWTOptions{SecretFile: dir}, want: "--jwt-secret-file: read "},
		{name: "short secret", jwt: JWTOptions{SecretFile: short}, want: "the secret is 31 bytes, HS256 needs at least 32"},
		{name: "bad url", jwt: JWTOptions{JWKSURL: "id.example/jwks"}, want: "--jwks-url: "},
		{name: "both", jwt: JWTOptions{SecretFile: good, JWKSURL: "https://id.example/jwks"}, want: "mutually exclusive"},
		{name: "issuer alone", jwt: JWTOptions{Issuer: "i"}, want: "--jwt-issuer and --jwt-audience need"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := Options{JWT: tt.jwt}
			err := o.validate()
			if tt.want == "" {
				if err != nil || len(o.jwtSecret) != tt.wantSecret {
					t.Fatalf("validate() = %v, secret %d bytes, want nil and %d", err, len(o.jwtSecret), tt.wantSecret)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("validate() = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestStartRefusesABadJWTFlagAtOnce(t *testing.T) {
	dir := t.TempDir()
	_, err := Start(context.Background(), Options{DataDir: filepath.Join(dir, "data"), HTTPAddr: "127.0.0.1:0",
		JWT: JWTOptions{SecretFile: filepath.Join(dir, "missing")}})
	if err == nil || !strings.Contains(err.Error(), "--jwt-secret-file") {
		t.Fatalf("Start() = %v, want the --jwt-secret-file error", err)
	}
	if _, serr := os.Stat(filepath.Join(dir, "data")); !os.IsNotExist(serr) {
		t.Error("Start touched the data directory before reporting the flag")
	}
}
