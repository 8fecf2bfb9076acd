package schema

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
	"gopkg.in/yaml.v3"
)

// URL is the schema's $id, the name editors and yaml-language-server
// associations refer to.
const URL = "https://github.com/netreconcile/netreconcile/schema/topology.schema.json"

//go:embed topology.schema.json
var schemaJSON []byte

// ErrInvalid marks a document that does not match the schema.
var ErrInvalid = errors.New("topology does not match the schema")

// JSON returns the schema document, to write it out for editors.
func JSON() []byte { return bytes.Clone(schemaJSON) }

// compiled compiles the embedded schema once; a failure is a bug in the
// schema file, which the tests catch.
var compiled = sync.OnceValues(func() (*jsonschema.Schema, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(schemaJSON))
	if err != nil {
		return nil, fmt.Errorf("decode topology schema: %w", err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource(URL, doc); err != nil {
		return nil, fmt.Errorf("load topology schema: %w", err)
	}
	s, err := c.Compile(URL)
	if err != nil {
		return nil, fmt.Errorf("compile topology schema: %w", err)
	}
	return s, nil
})

// Validate checks a document against the schema. doc is a decoded JSON or
// YAML value (map[string]any and friends) or anything encoding/json can
// marshal; it is normalised through JSON first, so that YAML's integer and
// map types validate the same as JSON's. The error wraps ErrInvalid and
// lists every mismatch with its JSON pointer.
func Validate(doc any) error {
	s, err := compiled()
	if err != nil {
		return err
	}
	inst, err := normalize(doc)
	if err != nil {
		return err
	}
	err = s.Validate(inst)
	if err == nil {
		return nil
	}
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return fmt.Errorf("validate topology against schema: %w", err)
	}
	return fmt.Errorf("%w:\n%s", ErrInvalid, strings.Join(leaves(ve), "\n"))
}

// ValidateYAML decodes a YAML (or JSON) document and validates it.
func ValidateYAML(data []byte) error {
	var doc any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return fmt.Errorf("decode topology YAML: %w", err)
	}
	return Validate(doc)
}

// normalize turns doc into the value jsonschema expects: the output of a
// JSON decoder. YAML decodes mappings with non-string keys into
// map[any]any, which encoding/json refuses, so keys are stringified first.
func normalize(doc any) (any, error) {
	data, err := json.Marshal(stringKeys(doc))
	if err != nil {
		return nil, fmt.Errorf("convert topology to JSON: %w", err)
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("convert topology to JSON: %w", err)
	}
	return v, nil
}

func stringKeys(v any) any {
	switch v := v.(type) {
	case map[any]any:
		m := make(map[string]any, len(v))
		for k, e := range v {
			m[fmt.Sprint(k)] = stringKeys(e)
		}
		return m
	case map[string]any:
		m := make(map[string]any, len(v))
		for k, e := range v {
			m[k] = stringKeys(e)
		}
		return m
	case []any:
		s := make([]any, len(v))
		for i, e := range v {
			s[i] = stringKeys(e)
		}
		return s
	}
	return v
}

var printer = message.NewPrinter(language.English)

// leaves flattens a validation error tree into one line per root cause:
// the intermediate nodes ("$ref", "allOf failed") say nothing a user can
// act on.
func leaves(ve *jsonschema.ValidationError) []string {
	var out []string
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) == 0 {
			loc := "/" + strings.Join(e.InstanceLocation, "/")
			out = append(out, fmt.Sprintf("at %s: %s", loc, e.ErrorKind.LocalizedString(printer)))
			return
		}
		for _, c := range e.Causes {
			walk(c)
		}
	}
	walk(ve)
	slices.Sort(out)
	return slices.Compact(out)
}
