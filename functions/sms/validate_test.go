package sms

import (
	"strings"
	"testing"

	"github.com/surgefn/surge/runtime"
)

func TestSendRequestValidation(t *testing.T) {
	tests := []struct {
		name      string
		body      string
		wantErr   bool
		wantField string // the message starts with "<field>: "
	}{
		{"valid verify", `{"phone":"+8613800138000","template":"verify","params":{"code":"123456"}}`, false, ""},
		{"valid shortest phone", `{"phone":"+1234567","template":"verify","params":{"code":"1234"}}`, false, ""},
		{"valid longest phone", `{"phone":"+123456789012345","template":"verify","params":{"code":"12345678"}}`, false, ""},
		{"valid order_shipped", `{"phone":"+14155550100","template":"order_shipped","params":{"order_id":"01HX","carrier":"SF Express","tracking":"SF1234"}}`, false, ""},
		{"valid payment", `{"phone":"+14155550100","template":"payment_received","params":{"amount":"19.99","currency":"CNY","order_id":"o-1"}}`, false, ""},

		{"missing phone", `{"template":"verify","params":{"code":"123456"}}`, true, "phone"},
		{"phone without plus", `{"phone":"8613800138000","template":"verify","params":{"code":"123456"}}`, true, "phone"},
		{"phone leading zero", `{"phone":"+0613800138000","template":"verify","params":{"code":"123456"}}`, true, "phone"},
		{"phone too short", `{"phone":"+123456","template":"verify","params":{"code":"123456"}}`, true, "phone"},
		{"phone too long", `{"phone":"+1234567890123456","template":"verify","params":{"code":"123456"}}`, true, "phone"},
		{"phone with spaces", `{"phone":"+86 138 0013 8000","template":"verify","params":{"code":"123456"}}`, true, "phone"},
		{"phone with trailing newline", `{"phone":"+8613800138000\n","template":"verify","params":{"code":"123456"}}`, true, "phone"},
		{"phone not a string", `{"phone":8613800138000,"template":"verify","params":{"code":"123456"}}`, true, "phone"},

		{"missing template", `{"phone":"+8613800138000","params":{"code":"123456"}}`, true, "template"},
		{"unknown template", `{"phone":"+8613800138000","template":"promo","params":{"code":"123456"}}`, true, "template"},
		{"missing params", `{"phone":"+8613800138000","template":"verify"}`, true, "params.code"},
		{"missing one param", `{"phone":"+14155550100","template":"payment_received","params":{"amount":"1","order_id":"o-1"}}`, true, "params.currency"},
		{"empty param", `{"phone":"+8613800138000","template":"verify","params":{"code":""}}`, true, "params.code"},
		{"unknown param", `{"phone":"+8613800138000","template":"verify","params":{"code":"123456","name":"x"}}`, true, "params.name"},
		{"bad code", `{"phone":"+8613800138000","template":"verify","params":{"code":"12ab"}}`, true, "params.code"},
		{"code too long", `{"phone":"+8613800138000","template":"verify","params":{"code":"123456789"}}`, true, "params.code"},
		{"param not a string", `{"phone":"+8613800138000","template":"verify","params":{"code":123456}}`, true, "params.code"},
		{"param control char", `{"phone":"+14155550100","template":"order_shipped","params":{"order_id":"o","carrier":"a\u0007b","tracking":"t"}}`, true, "params.carrier"},
		{"param too long", `{"phone":"+14155550100","template":"order_shipped","params":{"order_id":"o","carrier":"` + strings.Repeat("x", 65) + `","tracking":"t"}}`, true, "params.carrier"},

		{"unknown field", `{"phone":"+8613800138000","template":"verify","params":{"code":"123456"},"sender":"x"}`, true, "sender"},
		{"malformed JSON", `{"phone":`, true, ""},
		{"trailing data", `{"phone":"+8613800138000","template":"verify","params":{"code":"123456"}} {}`, true, ""},
		{"array body", `[]`, true, ""},
		{"empty body", ``, true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var in sendRequest
			err := runtime.DecodeJSON([]byte(tt.body), &in, "")
			if err == nil {
				err = in.validate()
			}
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if err == nil {
				return
			}
			e := runtime.AsError(err)
			if e.Status != 400 || e.Code != "invalid_request" {
				t.Errorf("error = %d %s, want 400 invalid_request", e.Status, e.Code)
			}
			if tt.wantField != "" && !strings.HasPrefix(e.Msg, tt.wantField+": ") {
				t.Errorf("message %q does not name field %q", e.Msg, tt.wantField)
			}
		})
	}
}

func TestTemplatesAreConsistent(t *testing.T) {
	for name, tpl := range Templates {
		found := map[string]bool{}
		for _, m := range placeRE.FindAllStringSubmatch(tpl.Text, -1) {
			found[m[1]] = true
			if _, ok := tpl.Params[m[1]]; !ok {
				t.Errorf("template %s: placeholder {%s} has no parameter rule", name, m[1])
			}
		}
		for p := range tpl.Params {
			if !found[p] {
				t.Errorf("template %s: parameter %s is not in the text", name, p)
			}
		}
	}
}

func TestRender(t *testing.T) {
	tests := []struct {
		name     string
		template string
		params   map[string]string
		want     string
		wantErr  bool
	}{
		{"verify", "verify", map[string]string{"code": "123456"}, "Your verification code is 123456. It expires in 5 minutes.", false},
		{"braces in value are not expanded", "order_shipped", map[string]string{"order_id": "o1", "carrier": "{tracking}", "tracking": "T9"},
			"Your order o1 has shipped with {tracking}, tracking number T9.", false},
		{"unknown template", "nope", nil, "", true},
		{"missing param", "verify", nil, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Render(tt.template, tt.params)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("Render = %q, %v; want %q (err %v)", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestConfigValidation(t *testing.T) {
	tests := []struct {
		name    string
		send    Send
		sender  *Sender
		wantErr string
	}{
		{name: "send defaults", send: Send{}},
		{name: "send bad window", send: Send{Window: 1}, wantErr: "window"},
		{name: "send negative per day", send: Send{PerDay: -1}, wantErr: "perDay"},
		{name: "send bad zone", send: Send{TimeZone: "Mars/Olympus"}, wantErr: "timeZone"},
		{name: "sender default log", sender: &Sender{}},
		{name: "sender webhook", sender: &Sender{Provider: "webhook", URL: "https://sms.example.com/send"}},
		{name: "sender webhook without url", sender: &Sender{Provider: "webhook"}, wantErr: "url"},
		{name: "sender webhook relative url", sender: &Sender{Provider: "webhook", URL: "/send"}, wantErr: "url"},
		{name: "sender log with url", sender: &Sender{URL: "http://x"}, wantErr: "url"},
		{name: "sender unknown provider", sender: &Sender{Provider: "carrier-pigeon"}, wantErr: "provider"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			if tt.sender != nil {
				err = tt.sender.Validate()
			} else {
				err = tt.send.Validate()
			}
			if tt.wantErr == "" && err != nil {
				t.Fatalf("err = %v", err)
			}
			if tt.wantErr != "" && (err == nil || !strings.HasPrefix(err.Error(), tt.wantErr)) {
				t.Fatalf("err = %v, want one about %s", err, tt.wantErr)
			}
		})
	}
	// Through the module registry, as a deploy does: strict decoding.
	if _, err := runtime.NewFunction("sms.send", []byte(`{"perMinute":1}`)); err == nil {
		t.Error("unknown config field accepted")
	}
	if _, err := runtime.NewFunction("sms.sender", []byte(`{"provider":"webhook","url":"http://127.0.0.1:1/x","timeout":"250ms"}`)); err != nil {
		t.Errorf("webhook config refused: %v", err)
	}
}
