package reach_test

import (
	"bytes"
	"strings"
	"testing"
)

// TestServiceFrontends: issue 17's service and cluster fields show as
// object changes, and a changed port lists its nodePort and external IPs
// beside its backends.
func TestServiceFrontends(t *testing.T) {
	base := baseFile(basePolicies)
	newText := strings.Replace(base, "{name: web, namespace: x, clusterIP: 10.96.0.10, selector: {pod: a},",
		"{name: web, namespace: x, clusterIP: 10.96.0.10, selector: {pod: b}, type: NodePort, externalIPs: [198.51.100.20], externalTrafficPolicy: Local,", 1)
	newText = strings.Replace(newText, "ports: [{port: 8080, targetPort: serve-80-tcp}]", "ports: [{port: 8080, targetPort: serve-80-tcp, nodePort: 30080}]", 1)
	newText = strings.Replace(newText, "serviceCIDR: 10.96.0.0/16", "serviceCIDR: 10.96.0.0/16\n  egress: {masquerade: false}", 1)
	if newText == base || !strings.Contains(newText, "nodePort: 30080") || !strings.Contains(newText, "masquerade: false") {
		t.Fatalf("the edit did not apply:\n%s", newText)
	}
	d := mustCompute(t, load(t, "old.yaml", base), load(t, "new.yaml", newText))
	var b bytes.Buffer
	if err := d.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"~ cluster cluster: masquerade",
		"~ service x/web: selector, ports, type, externalIPs, externalTrafficPolicy",
		"service x/web 8080/TCP (also nodePort 30080, 198.51.100.20:8080): +x/b:80 -x/a:80",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("diff lacks %q:\n%s", want, b.String())
		}
	}
	var j bytes.Buffer
	if err := d.WriteJSON(&j); err != nil {
		t.Fatal(err)
	}
	if compact := strings.Join(strings.Fields(j.String()), ""); !strings.Contains(compact, `"frontends":["nodePort30080","198.51.100.20:8080"]`) {
		t.Errorf("JSON lacks the frontends:\n%s", j.String())
	}
}
