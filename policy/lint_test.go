package policy

import (
	"strings"
	"testing"

	"github.com/netreconcile/netreconcile/spec"
)

const lintFile = `apiVersion: netreconcile/v1
kind: Topology
cluster: {podCIDR: 10.244.0.0/16, serviceCIDR: 10.96.0.0/16}
namespaces: [{name: x, labels: {team: a}}]
nodes: [{name: n1, address: 172.31.1.2/24, podCIDR: 10.244.1.0/24}]
pods:
  - {name: web, namespace: x, node: n1, labels: {app: web}}
services:
  - {name: good, namespace: x, clusterIP: 10.96.0.10, selector: {app: web}, ports: [{port: 80}]}
  - {name: typo, namespace: x, clusterIP: 10.96.0.11, selector: {app: wbe}, ports: [{port: 80}]}
policies:
  - name: fine
    namespace: x
    spec:
      podSelector: {matchLabels: {app: web}}
      ingress:
        - from:
            - namespaceSelector: {matchLabels: {team: a}}
            - namespaceSelector: {matchLabels: {team: b}}
            - podSelector: {matchLabels: {app: db}}
  - name: nobody
    namespace: x
    spec:
      podSelector: {matchLabels: {app: api}}
`

func TestLint(t *testing.T) {
	r, err := spec.LoadBytes("lint.yaml", []byte(lintFile))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, w := range Lint(r) {
		got = append(got, w.String())
	}
	want := []string{
		"service x/typo selector: app=wbe matches no pod in namespace x: the service has no backends and refuses every connection",
		"policy x/fine ingress[0].from[1].namespaceSelector: matches no namespace of the file (namespaces: and those pods, services and policies use): this peer allows nobody",
		"policy x/fine ingress[0].from[2].podSelector: matches no pod in namespace x: this peer allows nobody",
		"policy x/nobody podSelector: selects no pod in namespace x: the policy changes nothing",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
