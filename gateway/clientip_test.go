package gateway

import (
	"net/http"
	"testing"
)

func TestClientIP(t *testing.T) {
	tp, err := ParseTrustedProxies("10.0.0.0/8,192.168.1.7")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name    string
		proxies TrustedProxies
		remote  string
		xff     []string
		want    string
	}{
		{name: "no proxies: the peer", remote: "203.0.113.5:4711", xff: []string{"1.2.3.4"}, want: "203.0.113.5"},
		{name: "untrusted peer: its X-Forwarded-For ignored", proxies: tp, remote: "203.0.113.5:4711", xff: []string{"1.2.3.4"}, want: "203.0.113.5"},
		{name: "trusted peer: the last hop", proxies: tp, remote: "10.1.2.3:80", xff: []string{"198.51.100.9"}, want: "198.51.100.9"},
		{name: "a forged hop left of the real one", proxies: tp, remote: "10.1.2.3:80", xff: []string{"6.6.6.6, 198.51.100.9"}, want: "198.51.100.9"},
		{name: "two trusted proxies", proxies: tp, remote: "10.1.2.3:80", xff: []string{"198.51.100.9, 192.168.1.7"}, want: "198.51.100.9"},
		{name: "several headers", proxies: tp, remote: "10.1.2.3:80", xff: []string{"6.6.6.6", "198.51.100.9"}, want: "198.51.100.9"},
		{name: "garbled hop: the last good one", proxies: tp, remote: "10.1.2.3:80", xff: []string{"198.51.100.9, junk"}, want: "10.1.2.3"},
		{name: "trusted peer, no header", proxies: tp, remote: "10.1.2.3:80", want: "10.1.2.3"},
		{name: "ipv6 peer", remote: "[2001:db8::1]:80", want: "2001:db8::1"},
		{name: "ipv4-mapped peer", proxies: tp, remote: "[::ffff:10.0.0.1]:80", xff: []string{"198.51.100.9"}, want: "198.51.100.9"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := &http.Request{RemoteAddr: tt.remote, Header: http.Header{}}
			for _, v := range tt.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := tt.proxies.ClientIP(r); got != tt.want {
				t.Errorf("ClientIP = %q, want %q", got, tt.want)
			}
		})
	}
}
