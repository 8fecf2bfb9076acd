package spec

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// posOf returns where substr first appears on the given 1-based line.
func posOf(t *testing.T, doc string, line int, substr string) Pos {
	t.Helper()
	lines := strings.Split(doc, "\n")
	i := strings.Index(lines[line-1], substr)
	if i < 0 {
		t.Fatalf("line %d %q has no %q", line, lines[line-1], substr)
	}
	return Pos{Line: line, Column: i + 1}
}

// parseErrors parses doc and returns its *Errors, failing if there is none.
func parseErrors(t *testing.T, doc string) *Errors {
	t.Helper()
	_, _, err := Parse("t.yaml", []byte(doc))
	var errs *Errors
	if !errors.As(err, &errs) {
		t.Fatalf("want *Errors, got %T: %v", err, err)
	}
	return errs
}

const positionsDoc = `apiVersion: netreconcile/v1
kind: Topology
cluster:
  podCIDR: 10.244.0.0/16
nodes:
  - name: a
    address: 172.31.1.2/24
    podCIDR: 10.244.1.0/24
services:
  - name: web
    clusterIP: 10.96.0.1
    ports:
      - {port: 80, targetPort: http}
policies:
  - name: p
    spec:
      ingress:
        - from:
            - podSelector: {matchLabels: {app: web}}
            - ipBlock: {cidr: 10.0.0.0/8}
`

func TestParsePositions(t *testing.T) {
	top, pos, err := Parse("t.yaml", []byte(positionsDoc))
	if err != nil {
		t.Fatal(err)
	}
	if pos.File != "t.yaml" {
		t.Errorf("File = %q", pos.File)
	}
	d := positionsDoc
	for path, want := range map[string]Pos{
		"":                                {1, 1},
		"cluster.podCIDR":                 posOf(t, d, 4, "10.244"),
		"nodes[0]":                        posOf(t, d, 6, "name"),
		"nodes[0].name":                   {6, 11},
		"services[0].ports[0].targetPort": posOf(t, d, 13, "http"),
		"policies[0].spec.ingress[0].from[0].podSelector.matchLabels[app]": posOf(t, d, 19, "app"),
		"policies[0].spec.ingress[0].from[1].ipBlock.cidr":                 posOf(t, d, 20, "10.0.0.0/8"),
	} {
		if got := pos.Lookup(path); got != want {
			t.Errorf("Lookup(%q) = %v, want %v", path, got, want)
		}
		if !pos.Has(path) {
			t.Errorf("Has(%q) = false", path)
		}
	}
	// Absent fields fall back to the enclosing mapping.
	if got, want := pos.Lookup("nodes[0].uplink"), pos.Lookup("nodes[0]"); got != want || pos.Has("nodes[0].uplink") {
		t.Errorf("Lookup(nodes[0].uplink) = %v, want %v (enclosing mapping)", got, want)
	}
	if got := pos.Lookup("pods[3].ip"); got != (Pos{1, 1}) {
		t.Errorf("Lookup of a path outside the file = %v, want the document 1:1", got)
	}
	var nilPos *Positions
	if nilPos.Lookup("x") != (Pos{}) || nilPos.Has("x") {
		t.Error("nil Positions must know nothing")
	}
	tp := top.Services[0].Ports[0].TargetPort
	if !tp.IsString || tp.StrVal != "http" {
		t.Errorf("targetPort = %+v", tp)
	}
}

func TestParseGoodFile(t *testing.T) {
	top, _, err := parseFile("testdata/good/design.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if top.APIVersion != APIVersion || top.Kind != Kind || top.Cluster.Routing.VXLAN.Port != 4789 {
		t.Errorf("header or cluster wrong: %+v", top)
	}
	if got := top.Services[0].Ports[0].TargetPort; got != FromInt(8080) {
		t.Errorf("targetPort = %+v, want 8080", got)
	}
	peer := top.Policies[0].Spec.Ingress[0].From[0]
	if peer.NamespaceSelector == nil || peer.NamespaceSelector.MatchLabels["ns"] != "y" || peer.PodSelector != nil {
		t.Errorf("peer = %+v", peer)
	}
	if p := top.Policies[0].Spec.Ingress[0].Ports[0].Port; p == nil || *p != FromInt(80) {
		t.Errorf("policy port = %v", p)
	}
}

func TestUnknownFields(t *testing.T) {
	errs := parseErrors(t, "apiVersion: netreconcile/v1\nKind: Topology\ncluster: {podCidr: x, nodes: []}\n")
	want := []string{
		`t.yaml:2:1: Kind: unknown field "Kind"; did you mean "kind"?`,
		`t.yaml:3:11: cluster.podCidr: unknown field "podCidr"; did you mean "podCIDR"?`,
		`t.yaml:3:23: cluster.nodes: unknown field "nodes"; did you mean "mode"?`,
	}
	if got := errs.Error(); got != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", got, strings.Join(want, "\n"))
	}
}

func TestDuplicateKeys(t *testing.T) {
	errs := parseErrors(t, "kind: Topology\nkind: Topology\npods:\n  - {name: a, labels: {x: '1', x: '2'}}\n")
	if len(errs.List) != 2 {
		t.Fatalf("want 2 errors, got %v", errs)
	}
	if e := errs.List[0]; e.Path != "kind" || e.Line != 2 || !strings.Contains(e.Msg, `duplicate key "kind" (first at line 1)`) {
		t.Errorf("first error = %v", e)
	}
	if e := errs.List[1]; e.Path != "pods[0].labels[x]" || !strings.Contains(e.Msg, "duplicate key") {
		t.Errorf("second error = %v", e)
	}
}

func TestTypeMismatch(t *testing.T) {
	for doc, want := range map[string]string{
		"cluster: []":                          "1:10: cluster: expected a mapping, got a sequence",
		"nodes: {name: a}":                     "1:8: nodes: expected a sequence, got a mapping",
		"cluster: {mtu: 1.5}":                  "1:16: cluster.mtu: expected an integer, got number 1.5",
		"cluster: {mtu: 99999999999999999999}": "1:16: cluster.mtu: expected an integer, got number 99999999999999999999",
		"kind: 7":                              `1:7: kind: expected a string, got integer 7 (quote it: "7")`,
		"kind: !custom Topology":               "1:7: kind: expected a string, got a value tagged !custom",
		"kind:":                                "1:6: kind: expected a string, got null",
		"services: [{ports: [{targetPort: true}]}]": "1:34: services[0].ports[0].targetPort: expected a port number or name, got boolean true",
		"pods: [{labels: {a: {b: c}}}]":             "1:21: pods[0].labels[a]: expected a string, got a mapping",
		"pods: [{labels: {[x]: c}}]":                "1:18: pods[0].labels: expected a field name, got a sequence as a key",
	} {
		errs := parseErrors(t, doc+"\n")
		if len(errs.List) != 1 || !strings.HasPrefix(errs.Error(), "t.yaml:"+want) {
			t.Errorf("%s:\n got %v\nwant t.yaml:%s", doc, errs, want)
		}
	}
	// An explicit !!str tag makes a number a string, as in YAML.
	top, _, err := Parse("t.yaml", []byte("kind: !!str 7\n"))
	if err != nil || top.Kind != "7" {
		t.Errorf("!!str 7: %v, %q", err, top.Kind)
	}
}

func TestPartialTopologyOnFieldErrors(t *testing.T) {
	top, pos, err := Parse("t.yaml", []byte("kind: Topology\nbogus: 1\n"))
	if err == nil || top == nil || pos == nil {
		t.Fatalf("want a partial topology with errors, got %v, %v, %v", top, pos, err)
	}
	if top.Kind != Kind {
		t.Errorf("kind = %q", top.Kind)
	}
	if !errors.Is(err, ErrInvalid) {
		t.Errorf("field errors must match ErrInvalid: %v", err)
	}
}

func TestAliasesAndMergeKeys(t *testing.T) {
	r, err := LoadBytes("t.yaml", mustRead(t, "testdata/good/multinode.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	byKey := map[string]ResolvedPod{}
	for _, p := range r.Pods {
		byKey[p.Key] = p
	}
	web2 := byKey["frontend/web-2"]
	if web2.Node != "node-b" || web2.Mode != ModeMacvlan || web2.Labels["app"] != "web" || len(web2.Ports) != 2 {
		t.Errorf("merge key: web-2 = %+v", web2)
	}
	web3 := byKey["frontend/web-3"]
	if web3.Labels["version"] != "1.0" || web3.Ports[0].Name != "http" {
		t.Errorf("alias: web-3 = %+v", web3)
	}
	// Aliased values point errors at the alias, where the user wrote them.
	errs := parseErrors(t, "kind: &k [a]\napiVersion: *k\n")
	if e := errs.List[len(errs.List)-1]; e.Path != "apiVersion" || e.Line != 2 {
		t.Errorf("alias error at %v", e)
	}
}

func TestAliasCycle(t *testing.T) {
	errs := parseErrors(t, "pods:\n  - &p\n    name: a\n    <<: *p\n")
	if len(errs.List) != 1 || !strings.Contains(errs.List[0].Msg, "refers to a node that contains it") {
		t.Errorf("got %v", errs)
	}
}

// measure runs fn and returns how long it took and how much it allocated.
func measure(fn func()) (time.Duration, uint64) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	start := time.Now()
	fn()
	elapsed := time.Since(start)
	runtime.ReadMemStats(&after)
	return elapsed, after.TotalAlloc - before.TotalAlloc
}

func TestBillionLaughs(t *testing.T) {
	// The classic document, placed where the types accept nested lists of
	// strings as deep as they go.
	classic := `apiVersion: netreconcile/v1
kind: Topology
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
policies: [{name: p, spec: {podSelector: {matchExpressions: [{key: k, operator: In, values: *i}]}}}]
`
	// A document whose aliases fan out through types that do match, so
	// that only the expansion cap stops it.
	fanout := string(mustRead(t, "testdata/bad/alias-bomb.yaml"))
	// The classic again, through a merge key.
	merged := strings.Replace(classic, "policies: [{name: p, spec: {podSelector: {matchExpressions: [{key: k, operator: In, values: *i}]}}}]",
		"cluster: {<<: *i}", 1)
	for name, doc := range map[string]string{"classic": classic, "fanout": fanout, "merge": merged} {
		t.Run(name, func(t *testing.T) {
			var err error
			elapsed, alloc := measure(func() { _, _, err = Parse("bomb.yaml", []byte(doc)) })
			if err == nil {
				t.Fatal("a billion laughs document was accepted")
			}
			if elapsed > time.Second {
				t.Errorf("took %v, want well under a second", elapsed)
			}
			if alloc > 256<<20 {
				t.Errorf("allocated %d MiB, want a bounded amount", alloc>>20)
			}
			if name == "fanout" && !errors.Is(err, ErrTooManyAliases) {
				t.Errorf("want ErrTooManyAliases, got %v", err)
			}
			t.Logf("%v, %d KiB: %v", elapsed, alloc>>10, strings.SplitN(err.Error(), "\n", 2)[0])
		})
	}
}

func TestAliasesWithinBudget(t *testing.T) {
	// Sharing a label set between many pods is what aliases are for and
	// must stay well within the cap.
	var b strings.Builder
	b.WriteString("apiVersion: netreconcile/v1\nkind: Topology\ncluster: {podCIDR: 10.244.0.0/16}\n")
	b.WriteString("nodes: [{name: n, address: 172.31.1.2/24, podCIDR: 10.244.0.0/20}]\npods:\n")
	b.WriteString("  - {name: p0, node: n, labels: &l {app: web, tier: front, team: a}, ports: &ports [{name: http, port: 80}]}\n")
	for i := 1; i < 2000; i++ {
		b.WriteString("  - {name: p" + strconv.Itoa(i) + ", node: n, labels: *l, ports: *ports}\n")
	}
	r, err := LoadBytes("t.yaml", []byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Pods) != 2000 || r.Pods[1999].Labels["team"] != "a" {
		t.Errorf("pods not decoded through aliases")
	}
}

func TestNotYAML(t *testing.T) {
	for name, tc := range map[string]struct {
		doc  string
		line int
		msg  string
	}{
		"bad indentation": {"a: 1\n  b: 2\nc: 3\n", 2, "not valid YAML: mapping values are not allowed"},
		"tab":             {"a:\n\t- b\n", 2, "not valid YAML: found character that cannot start any token"},
		"binary":          {"kind: Topology\n\x7fELF\x02\x01", 2, "not valid YAML: control character U+007F"},
		"latin-1":         {"kind: caf\xe9\n", 1, "not valid YAML: invalid UTF-8 byte 0xe9"},
		"unknown anchor":  {"kind: x\napiVersion: *v\n", 2, "not valid YAML: unknown anchor 'v' referenced"},
		"two documents":   {"kind: a\n---\nkind: b\n", 2, "more than one YAML document"},
		"empty":           {"", 0, "file holds no YAML document"},
		"only comments":   {"# nothing\n", 0, "file holds no YAML document"},
		"empty document":  {"---\n", 2, "the YAML document is empty"},
		"unclosed quote":  {"kind: \"Topology\n", 2, "not valid YAML"},
		// parser errors: the line where the unfinished collection starts
		"unclosed flow mapping":  {"kind: x\ncluster: {podCIDR: a\n", 2, "not valid YAML: did not find expected ',' or '}'"},
		"unclosed flow sequence": {"kind: x\nnodes: [a, b\n", 2, "not valid YAML: did not find expected ',' or ']'"},
		"sequence in a mapping":  {"kind: x\ncluster:\n  podCIDR: a\n  - b\n", 3, "not valid YAML: did not find expected key"},
		"misindented entry":      {"kind: x\nnodes:\n  - name: a\n   address: b\n", 3, "not valid YAML: did not find expected '-' indicator"},
	} {
		t.Run(name, func(t *testing.T) {
			top, _, err := Parse("t.yaml", []byte(tc.doc))
			if top != nil {
				t.Error("a topology came back from an unusable file")
			}
			if !errors.Is(err, ErrNotYAML) {
				t.Fatalf("want ErrNotYAML, got %v", err)
			}
			var errs *Errors
			errors.As(err, &errs)
			if e := errs.List[0]; e.Line != tc.line || !strings.Contains(e.Msg, tc.msg) {
				t.Errorf("got %v, want line %d and %q", e, tc.line, tc.msg)
			}
		})
	}
}

func TestRootMustBeMapping(t *testing.T) {
	_, err := LoadBytes("t.yaml", []byte("- a\n- b\n"))
	if err == nil || err.Error() != "t.yaml:1:1: expected a mapping, got a sequence" {
		t.Errorf("got %v", err)
	}
}

func TestLoadFileStdin(t *testing.T) {
	f, err := os.Open("testdata/good/minimal.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	saved := os.Stdin
	os.Stdin = f
	defer func() { os.Stdin = saved }()
	top, pos, err := parseFile("-")
	if err != nil {
		t.Fatal(err)
	}
	if pos.File != "<stdin>" || len(top.Pods) != 2 {
		t.Errorf("stdin: file %q, %d pods", pos.File, len(top.Pods))
	}
}

func TestLoadFileMissing(t *testing.T) {
	_, _, err := parseFile("testdata/does-not-exist.yaml")
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("want fs.ErrNotExist, got %v", err)
	}
	var errs *Errors
	if errors.As(err, &errs) {
		t.Error("an I/O error is not a file content error")
	}
	if _, err := LoadFiles("testdata/does-not-exist.yaml"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load: want fs.ErrNotExist, got %v", err)
	}
}

func TestIntOrString(t *testing.T) {
	type holder struct {
		P IntOrString  `yaml:"p" json:"p"`
		Q *IntOrString `yaml:"q,omitempty" json:"q,omitempty"`
	}
	for _, tc := range []struct {
		yaml, json string
		want       IntOrString
	}{
		{"p: 80\n", `{"p":80}`, FromInt(80)},
		{"p: http\n", `{"p":"http"}`, FromString("http")},
		{"p: \"8080\"\n", `{"p":"8080"}`, FromString("8080")},
	} {
		var h holder
		if err := yaml.Unmarshal([]byte(tc.yaml), &h); err != nil || h.P != tc.want {
			t.Errorf("yaml %q: %+v, %v", tc.yaml, h.P, err)
		}
		out, err := yaml.Marshal(h)
		if err != nil || string(out) != tc.yaml {
			t.Errorf("yaml marshal: %q, %v; want %q", out, err, tc.yaml)
		}
		var j holder
		if err := json.Unmarshal([]byte(tc.json), &j); err != nil || j.P != tc.want {
			t.Errorf("json %s: %+v, %v", tc.json, j.P, err)
		}
		jout, err := json.Marshal(h)
		if err != nil || string(jout) != tc.json {
			t.Errorf("json marshal: %s, %v; want %s", jout, err, tc.json)
		}
	}
	var h holder
	if err := yaml.Unmarshal([]byte("p: [1]\n"), &h); err == nil {
		t.Error("a sequence is not a port")
	}
	if err := json.Unmarshal([]byte(`{"p":1.5}`), &h); err == nil {
		t.Error("1.5 is not a port")
	}
	if FromInt(80).String() != "80" || FromString("http").String() != "http" {
		t.Error("String")
	}
	if !(IntOrString{}).IsZero() || FromInt(0).IsZero() != true || FromString("").IsZero() {
		t.Error("IsZero")
	}
}

func TestErrorFormat(t *testing.T) {
	for _, tc := range []struct {
		e    Error
		want string
	}{
		{Error{File: "f.yaml", Line: 3, Column: 5, Path: "pods[0].ip", Msg: "bad"}, "f.yaml:3:5: pods[0].ip: bad"},
		{Error{File: "f.yaml", Line: 3, Msg: "not valid YAML: x"}, "f.yaml:3: not valid YAML: x"},
		{Error{File: "f.yaml", Msg: "too large"}, "f.yaml: too large"},
		{Error{Path: "nodes", Msg: "required"}, "nodes: required"},
	} {
		if got := tc.e.Error(); got != tc.want {
			t.Errorf("got %q, want %q", got, tc.want)
		}
	}
	errs := &Errors{List: []*Error{
		{File: "f", Line: 9, Column: 1, Path: "b", Msg: "second", Err: ErrInvalid},
		{File: "f", Line: 2, Column: 7, Path: "a", Msg: "first", Err: ErrInvalid},
	}}
	err := errs.orNil()
	if got := err.Error(); got != "f:2:7: a: first\nf:9:1: b: second" {
		t.Errorf("Errors.Error() = %q", got)
	}
	if !errors.Is(err, ErrInvalid) || errors.Is(err, ErrNotYAML) {
		t.Error("errors.Is through *Errors")
	}
	var one *Error
	if !errors.As(err, &one) || one.Msg != "first" {
		t.Error("errors.As to *Error")
	}
	if (&Errors{}).orNil() != nil {
		t.Error("empty Errors must be a nil error")
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}
