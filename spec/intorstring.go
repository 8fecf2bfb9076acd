package spec

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"

	"gopkg.in/yaml.v3"
)

// FromInt returns an IntOrString holding the number i.
func FromInt(i int) IntOrString { return IntOrString{IntVal: i} }

// FromString returns an IntOrString holding the name s.
func FromString(s string) IntOrString { return IntOrString{IsString: true, StrVal: s} }

// String returns the number or the name as written.
func (v IntOrString) String() string {
	if v.IsString {
		return v.StrVal
	}
	return strconv.Itoa(v.IntVal)
}

// IsZero reports whether v was never set. yaml.v3 uses it for omitempty.
func (v IntOrString) IsZero() bool {
	return v == IntOrString{}
}

// UnmarshalYAML accepts an integer or a string scalar, the way Kubernetes
// reads a port: 8080 is a number, "8080" and http are names.
func (v *IntOrString) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if n.Kind == yaml.ScalarNode {
		switch n.ShortTag() {
		case "!!int":
			var i int64
			if err := n.Decode(&i); err != nil || int64(int(i)) != i {
				return fmt.Errorf("integer %s is out of range", n.Value)
			}
			*v = FromInt(int(i))
			return nil
		case "!!str":
			*v = FromString(n.Value)
			return nil
		}
	}
	return fmt.Errorf("expected a port number or name, got %s", describe(n))
}

// MarshalYAML writes a number or a string.
func (v IntOrString) MarshalYAML() (any, error) {
	if v.IsString {
		return v.StrVal, nil
	}
	return v.IntVal, nil
}

// MarshalJSON writes a number or a string, as the JSON Schema expects.
func (v IntOrString) MarshalJSON() ([]byte, error) {
	if v.IsString {
		return json.Marshal(v.StrVal)
	}
	return json.Marshal(v.IntVal)
}

// UnmarshalJSON accepts a JSON number (an integer) or string.
func (v *IntOrString) UnmarshalJSON(data []byte) error {
	data = bytes.TrimSpace(data)
	if len(data) > 0 && data[0] == '"' {
		var s string
		if err := json.Unmarshal(data, &s); err != nil {
			return fmt.Errorf("decode port name: %w", err)
		}
		*v = FromString(s)
		return nil
	}
	var i int
	if err := json.Unmarshal(data, &i); err != nil {
		return fmt.Errorf("decode port: expected an integer or a string: %w", err)
	}
	*v = FromInt(i)
	return nil
}
