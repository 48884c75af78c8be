package sms

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/surgefn/surge/runtime"
)

// Template is one built-in message text. Each {name} in Text is a
// parameter; Params says which values each one accepts.
type Template struct {
	Text   string
	Params map[string]*regexp.Regexp
}

// maxParamLen bounds a free-text parameter value (in characters), so a
// caller cannot turn a notification into an arbitrary long message.
const maxParamLen = 64

var (
	codeRE = regexp.MustCompile(`^[0-9]{4,8}$`)
	// textRE accepts any value; free-text values are checked by checkText.
	textRE = regexp.MustCompile(`^`)
	// refRE is an order, tracking or similar reference.
	refRE    = regexp.MustCompile(`^[A-Za-z0-9_-]{1,40}$`)
	amountRE = regexp.MustCompile(`^[0-9]{1,12}(\.[0-9]{1,2})?$`)
	curRE    = regexp.MustCompile(`^[A-Z]{3}$`)
	placeRE  = regexp.MustCompile(`\{([a-z_]+)\}`)
)

// Templates is the built-in template set, by name. Every parameter a
// template's text names is required, and no other is accepted.
var Templates = map[string]Template{
	"verify": {
		Text:   "Your verification code is {code}. It expires in 5 minutes.",
		Params: map[string]*regexp.Regexp{"code": codeRE},
	},
	"login": {
		Text:   "Your login code is {code}. Never share it with anyone.",
		Params: map[string]*regexp.Regexp{"code": codeRE},
	},
	"order_shipped": {
		Text:   "Your order {order_id} has shipped with {carrier}, tracking number {tracking}.",
		Params: map[string]*regexp.Regexp{"order_id": refRE, "carrier": textRE, "tracking": refRE},
	},
	"payment_received": {
		Text:   "We received your payment of {amount} {currency} for order {order_id}.",
		Params: map[string]*regexp.Regexp{"amount": amountRE, "currency": curRE, "order_id": refRE},
	},
}

// templateNames lists the template names, sorted, for error messages.
func templateNames() []string {
	names := make([]string, 0, len(Templates))
	for n := range Templates {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// checkTemplate validates a template name and its parameters and returns
// a 400 naming the field at fault.
func checkTemplate(name string, params map[string]string) error {
	if name == "" {
		return runtime.BadRequest("template", "required")
	}
	tpl, ok := Templates[name]
	if !ok {
		return runtime.BadRequest("template", "unknown template %q (known: %s)", name, strings.Join(templateNames(), ", "))
	}
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if _, ok := tpl.Params[k]; !ok {
			return runtime.BadRequest("params."+k, "unknown parameter for template %q", name)
		}
	}
	want := make([]string, 0, len(tpl.Params))
	for k := range tpl.Params {
		want = append(want, k)
	}
	sort.Strings(want)
	for _, k := range want {
		v, ok := params[k]
		if !ok || v == "" {
			return runtime.BadRequest("params."+k, "required by template %q", name)
		}
		if err := checkText(v); err != nil {
			return runtime.BadRequest("params."+k, "%s", err.Error())
		}
		if !tpl.Params[k].MatchString(v) {
			return runtime.BadRequest("params."+k, "invalid value %q", v)
		}
	}
	return nil
}

// checkText refuses values that would make the message unreadable or
// misleading: invalid UTF-8, control characters, over maxParamLen.
func checkText(v string) error {
	if !utf8.ValidString(v) {
		return fmt.Errorf("not valid UTF-8")
	}
	if utf8.RuneCountInString(v) > maxParamLen {
		return fmt.Errorf("longer than %d characters", maxParamLen)
	}
	if strings.ContainsFunc(v, unicode.IsControl) {
		return fmt.Errorf("contains control characters")
	}
	return nil
}

// Render returns the text of template name with params substituted. The
// template and params must have been validated.
func Render(name string, params map[string]string) (string, error) {
	tpl, ok := Templates[name]
	if !ok {
		return "", fmt.Errorf("%w: %q", ErrUnknownTemplate, name)
	}
	var missing string
	text := placeRE.ReplaceAllStringFunc(tpl.Text, func(p string) string {
		k := p[1 : len(p)-1]
		v, ok := params[k]
		if !ok {
			missing = k
		}
		return v
	})
	if missing != "" {
		return "", fmt.Errorf("%w: template %q needs %q", ErrMissingParam, name, missing)
	}
	return text, nil
}
