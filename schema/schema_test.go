package schema

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/netreconcile/netreconcile/spec"
)

// optionalWithoutOmitempty lists fields whose yaml/json tag has no
// omitempty but which are optional in the file, following Kubernetes (a
// policy without spec, or without podSelector, applies to every pod of its
// namespace). Every other field without omitempty is required.
var optionalWithoutOmitempty = map[string]bool{
	"Policy.spec":            true,
	"PolicySpec.podSelector": true,
}

func loadSchema(t *testing.T) map[string]any {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal(schemaJSON, &doc); err != nil {
		t.Fatalf("decode schema: %v", err)
	}
	return doc
}

// deref follows $ref to a node of $defs.
func deref(t *testing.T, root, node map[string]any) map[string]any {
	t.Helper()
	for {
		ref, ok := node["$ref"].(string)
		if !ok {
			return node
		}
		name, ok := strings.CutPrefix(ref, "#/$defs/")
		if !ok {
			t.Fatalf("unsupported $ref %q", ref)
		}
		def, ok := root["$defs"].(map[string]any)[name].(map[string]any)
		if !ok {
			t.Fatalf("$ref %q points nowhere", ref)
		}
		node = def
	}
}

// TestSchemaMatchesTypes walks spec.Topology and the schema side by side:
// every Go field (by json tag) must be a property at the same place, with
// a matching type, every property must be a Go field, every object must
// forbid additional properties, and required lists must match the tags. A
// field added to the types without the schema, or the other way round,
// fails here.
func TestSchemaMatchesTypes(t *testing.T) {
	root := loadSchema(t)
	if _, err := compiled(); err != nil {
		t.Fatal(err)
	}
	ios := reflect.TypeFor[spec.IntOrString]()
	var walk func(path string, typ reflect.Type, node map[string]any)
	walk = func(path string, typ reflect.Type, node map[string]any) {
		node = deref(t, root, node)
		if typ.Kind() == reflect.Pointer {
			typ = typ.Elem()
		}
		switch {
		case typ == ios:
			if _, ok := node["anyOf"]; !ok {
				t.Errorf("%s: IntOrString must be an anyOf of a number and a name", path)
			}
		case typ.Kind() == reflect.Struct:
			if node["type"] != "object" || node["additionalProperties"] != false {
				t.Errorf("%s: want an object with additionalProperties: false", path)
			}
			props, _ := node["properties"].(map[string]any)
			var goFields, wantRequired []string
			for i := range typ.NumField() {
				f := typ.Field(i)
				tag := f.Tag.Get("json")
				name, opts, _ := strings.Cut(tag, ",")
				if name == "" || name == "-" {
					t.Errorf("%s.%s: field without json tag", path, f.Name)
					continue
				}
				if y, _, _ := strings.Cut(f.Tag.Get("yaml"), ","); y != name {
					t.Errorf("%s.%s: yaml name %q differs from json name %q", path, f.Name, y, name)
				}
				goFields = append(goFields, name)
				if !strings.Contains(opts, "omitempty") && !strings.Contains(opts, "omitzero") && !optionalWithoutOmitempty[typ.Name()+"."+name] {
					wantRequired = append(wantRequired, name)
				}
				sub, ok := props[name].(map[string]any)
				if !ok {
					t.Errorf("%s.%s: Go field (%s.%s) missing from the schema", path, name, typ.Name(), f.Name)
					continue
				}
				walk(path+"."+name, f.Type, sub)
			}
			for name := range props {
				if !slices.Contains(goFields, name) {
					t.Errorf("%s.%s: schema property has no Go field in %s", path, name, typ.Name())
				}
			}
			var gotRequired []string
			for _, r := range asSlice(node["required"]) {
				gotRequired = append(gotRequired, r.(string))
			}
			slices.Sort(gotRequired)
			slices.Sort(wantRequired)
			if !slices.Equal(gotRequired, wantRequired) {
				t.Errorf("%s: schema requires %v, Go tags say %v", path, gotRequired, wantRequired)
			}
		case typ.Kind() == reflect.Slice:
			if node["type"] != "array" {
				t.Errorf("%s: want type array, got %v", path, node["type"])
			}
			items, ok := node["items"].(map[string]any)
			if !ok {
				t.Errorf("%s: array without items", path)
				return
			}
			walk(path+"[]", typ.Elem(), items)
		case typ.Kind() == reflect.Map:
			if node["type"] != "object" {
				t.Errorf("%s: want type object for a map, got %v", path, node["type"])
			}
			vals, ok := node["additionalProperties"].(map[string]any)
			if !ok {
				t.Errorf("%s: map without an additionalProperties schema", path)
				return
			}
			walk(path+"{}", typ.Elem(), vals)
		case typ.Kind() == reflect.String:
			if !isStringSchema(node) {
				t.Errorf("%s: Go string but schema is %v", path, node)
			}
		case typ.Kind() == reflect.Int:
			if node["type"] != "integer" {
				t.Errorf("%s: Go int but schema type is %v", path, node["type"])
			}
		case typ.Kind() == reflect.Bool:
			if node["type"] != "boolean" {
				t.Errorf("%s: Go bool but schema type is %v", path, node["type"])
			}
		default:
			t.Errorf("%s: Go type %s not handled by this test", path, typ)
		}
	}
	walk("", reflect.TypeFor[spec.Topology](), root)
}

func asSlice(v any) []any {
	s, _ := v.([]any)
	return s
}

func isStringSchema(node map[string]any) bool {
	if node["type"] == "string" {
		return true
	}
	if c, ok := node["const"].(string); ok && c != "" {
		return true
	}
	enum := asSlice(node["enum"])
	for _, e := range enum {
		if _, ok := e.(string); !ok {
			return false
		}
	}
	return len(enum) > 0
}

// TestGoodFilesValidate checks that every example and every valid test
// topology matches the schema. Examples are added by other work; none is
// not a failure.
func TestGoodFilesValidate(t *testing.T) {
	var files []string
	for _, pattern := range []string{"../examples/*.yaml", "../spec/testdata/good/*.yaml"} {
		m, err := filepath.Glob(pattern)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	if len(files) == 0 {
		t.Fatal("no topology files found")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if err := ValidateYAML(data); err != nil {
				t.Errorf("%s: %v", f, err)
			}
			// The same files are valid for spec too; the two must agree.
			if _, err := spec.LoadBytes(f, data); err != nil {
				t.Errorf("%s: schema accepts what spec rejects: %v", f, err)
			}
		})
	}
}

// TestDecodedTopologyValidates checks that a Topology decoded by spec and
// marshalled back to JSON still matches: the Go types and the schema agree
// on shapes, including IntOrString.
func TestDecodedTopologyValidates(t *testing.T) {
	data, err := os.ReadFile("../spec/testdata/good/multinode.yaml")
	if err != nil {
		t.Fatal(err)
	}
	top, _, err := spec.Parse("multinode.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	if err := Validate(top); err != nil {
		t.Fatal(err)
	}
}

const base = `apiVersion: netreconcile/v1
kind: Topology
cluster: {podCIDR: 10.244.0.0/16, serviceCIDR: 10.96.0.0/16}
nodes: [{name: node-a, address: 172.31.1.2/24, podCIDR: 10.244.1.0/24}]
`

func TestBadDocuments(t *testing.T) {
	tests := []struct {
		name, doc, want string
	}{
		{"unknown root field", base + "extra: 1\n", "at /: additional properties 'extra' not allowed"},
		{"unknown nested field", base + "pods: [{name: a, node: node-a, image: x}]\n", "at /pods/0: additional properties 'image' not allowed"},
		{"wrong apiVersion", strings.Replace(base, "netreconcile/v1", "v2", 1), "at /apiVersion"},
		{"missing nodes", strings.Split(base, "nodes:")[0], "missing property 'nodes'"},
		{"unknown mode", base + "pods: [{name: a, node: node-a, mode: vlan}]\n", "at /pods/0/mode"},
		{"bad protocol", base + "pods: [{name: a, node: node-a, ports: [{port: 80, protocol: tcp}]}]\n", "at /pods/0/ports/0/protocol"},
		{"port range", base + "pods: [{name: a, node: node-a, ports: [{port: 70000}]}]\n", "at /pods/0/ports/0/port"},
		{"bad operator", base + "policies: [{name: p, spec: {podSelector: {matchExpressions: [{key: a, operator: Equals}]}}}]\n",
			"at /policies/0/spec/podSelector/matchExpressions/0/operator"},
		{"In without values", base + "policies: [{name: p, spec: {podSelector: {matchExpressions: [{key: a, operator: In}]}}}]\n",
			"missing property 'values'"},
		{"Exists with values", base + "policies: [{name: p, spec: {podSelector: {matchExpressions: [{key: a, operator: Exists, values: [x]}]}}}]\n",
			"at /policies/0/spec/podSelector/matchExpressions/0/values"},
		{"string for number", strings.Replace(base, "serviceCIDR: 10.96.0.0/16", "mtu: \"1500\"", 1), "at /cluster/mtu"},
		{"bad targetPort name", base + "services: [{name: s, clusterIP: 10.96.0.1, ports: [{port: 80, targetPort: HTTP}]}]\n",
			"at /services/0/ports/0/targetPort"},
		{"ipBlock with selector", base + "policies: [{name: p, spec: {ingress: [{from: [{ipBlock: {cidr: 10.0.0.0/8}, podSelector: {}}]}]}}]\n",
			"at /policies/0/spec/ingress/0/from/0"},
		{"netns under /proc", base + "pods: [{name: a, node: node-a, netns: /proc/1/ns/net}]\n", "at /pods/0/netns"},
		{"netns under /dev", base + "pods: [{name: a, node: node-a, netns: //dev/x}]\n", "at /pods/0/netns"},
		{"netns bidi", base + "pods: [{name: a, node: node-a, netns: \"a\\u202eb\"}]\n", "at /pods/0/netns"},
		{"netns control", base + "pods: [{name: a, node: node-a, netns: \"a\\x01b\"}]\n", "at /pods/0/netns"},
		{"uplink is our bridge", strings.Replace(base, "podCIDR: 10.244.1.0/24}", "podCIDR: 10.244.1.0/24, uplink: nrbr0}", 1), "at /nodes/0/uplink"},
		{"uplink is a host veth", strings.Replace(base, "podCIDR: 10.244.1.0/24}", "podCIDR: 10.244.1.0/24, uplink: nr00ff00ff}", 1), "at /nodes/0/uplink"},
		{"uplink zero width", strings.Replace(base, "podCIDR: 10.244.1.0/24}", "podCIDR: 10.244.1.0/24, uplink: \"eth\\u200b0\"}", 1), "at /nodes/0/uplink"},
		{"adoptNetns not a boolean", base + "pods: [{name: a, node: node-a, adoptNetns: yes}]\n", "at /pods/0/adoptNetns"},
		{"map size zero", strings.Replace(base, "serviceCIDR: 10.96.0.0/16}", "serviceCIDR: 10.96.0.0/16, datapath: {maps: {policyRules: 0}}}", 1),
			"at /cluster/datapath/maps/policyRules"},
		{"unknown map", strings.Replace(base, "serviceCIDR: 10.96.0.0/16}", "serviceCIDR: 10.96.0.0/16, datapath: {maps: {ct: 5}}}", 1),
			"at /cluster/datapath/maps"},
		{"node address without prefix", strings.Replace(base, "172.31.1.2/24", "172.31.1.2", 1), "at /nodes/0/address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateYAML([]byte(tt.doc))
			if err == nil {
				t.Fatal("want an error")
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error does not wrap ErrInvalid: %v", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not mention %q", err, tt.want)
			}
		})
	}
}

func TestValidateAcceptsJSON(t *testing.T) {
	var doc any
	if err := json.Unmarshal([]byte(`{"apiVersion":"netreconcile/v1","kind":"Topology",
		"cluster":{"podCIDR":"10.244.0.0/16"},
		"nodes":[{"name":"a","address":"172.31.1.2/24","podCIDR":"10.244.1.0/24"}]}`), &doc); err != nil {
		t.Fatal(err)
	}
	if err := Validate(doc); err != nil {
		t.Fatal(err)
	}
}
