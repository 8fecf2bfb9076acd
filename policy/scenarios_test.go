package policy

import (
	"fmt"
	"testing"

	"github.com/netreconcile/netreconcile/internal/policymodel"
)

// Expected tables below are written by hand from the Kubernetes semantics,
// not produced by this package: rows are sources, columns destinations,
// `.` allowed and `X` denied. The diagonal is always allowed (a pod cannot
// block access to itself).

const allAllowed = `
-   x/a x/b x/c y/a y/b y/c z/a z/b z/c
x/a  .   .   .   .   .   .   .   .   .
x/b  .   .   .   .   .   .   .   .   .
x/c  .   .   .   .   .   .   .   .   .
y/a  .   .   .   .   .   .   .   .   .
y/b  .   .   .   .   .   .   .   .   .
y/c  .   .   .   .   .   .   .   .   .
z/a  .   .   .   .   .   .   .   .   .
z/b  .   .   .   .   .   .   .   .   .
z/c  .   .   .   .   .   .   .   .   .
`

// xIngressDenied: nothing may enter x's pods (except each pod itself).
const xIngressDenied = `
-   x/a x/b x/c y/a y/b y/c z/a z/b z/c
x/a  .   X   X   .   .   .   .   .   .
x/b  X   .   X   .   .   .   .   .   .
x/c  X   X   .   .   .   .   .   .   .
y/a  X   X   X   .   .   .   .   .   .
y/b  X   X   X   .   .   .   .   .   .
y/c  X   X   X   .   .   .   .   .   .
z/a  X   X   X   .   .   .   .   .   .
z/b  X   X   X   .   .   .   .   .   .
z/c  X   X   X   .   .   .   .   .   .
`

// xEgressDenied: x's pods may send nothing (except to themselves).
const xEgressDenied = `
-   x/a x/b x/c y/a y/b y/c z/a z/b z/c
x/a  .   X   X   X   X   X   X   X   X
x/b  X   .   X   X   X   X   X   X   X
x/c  X   X   .   X   X   X   X   X   X
y/a  .   .   .   .   .   .   .   .   .
y/b  .   .   .   .   .   .   .   .   .
y/c  .   .   .   .   .   .   .   .   .
z/a  .   .   .   .   .   .   .   .   .
z/b  .   .   .   .   .   .   .   .   .
z/c  .   .   .   .   .   .   .   .   .
`

// yIngressDenied: nothing may enter y's pods.
const yIngressDenied = `
-   x/a x/b x/c y/a y/b y/c z/a z/b z/c
x/a  .   .   .   X   X   X   .   .   .
x/b  .   .   .   X   X   X   .   .   .
x/c  .   .   .   X   X   X   .   .   .
y/a  .   .   .   .   X   X   .   .   .
y/b  .   .   .   X   .   X   .   .   .
y/c  .   .   .   X   X   .   .   .   .
z/a  .   .   .   X   X   X   .   .   .
z/b  .   .   .   X   X   X   .   .   .
z/c  .   .   .   X   X   X   .   .   .
`

// xFromYZOnly: x's pods accept y and z, not x.
const xFromYZOnly = `
-   x/a x/b x/c y/a y/b y/c z/a z/b z/c
x/a  .   X   X   .   .   .   .   .   .
x/b  X   .   X   .   .   .   .   .   .
x/c  X   X   .   .   .   .   .   .   .
y/a  .   .   .   .   .   .   .   .   .
y/b  .   .   .   .   .   .   .   .   .
y/c  .   .   .   .   .   .   .   .   .
z/a  .   .   .   .   .   .   .   .   .
z/b  .   .   .   .   .   .   .   .   .
z/c  .   .   .   .   .   .   .   .   .
`

// xaFromPodB: x/a accepts the b pods of every namespace.
const xaFromPodB = `
-   x/a x/b x/c y/a y/b y/c z/a z/b z/c
x/a  .   .   .   .   .   .   .   .   .
x/b  .   .   .   .   .   .   .   .   .
x/c  X   .   .   .   .   .   .   .   .
y/a  X   .   .   .   .   .   .   .   .
y/b  .   .   .   .   .   .   .   .   .
y/c  X   .   .   .   .   .   .   .   .
z/a  X   .   .   .   .   .   .   .   .
z/b  .   .   .   .   .   .   .   .   .
z/c  X   .   .   .   .   .   .   .   .
`

// xaFromNode1: x/a accepts the pods on node-1 (10.244.1.0/24): x/a x/c
// y/b z/a z/c.
const xaFromNode1 = `
-   x/a x/b x/c y/a y/b y/c z/a z/b z/c
x/a  .   .   .   .   .   .   .   .   .
x/b  X   .   .   .   .   .   .   .   .
x/c  .   .   .   .   .   .   .   .   .
y/a  X   .   .   .   .   .   .   .   .
y/b  .   .   .   .   .   .   .   .   .
y/c  X   .   .   .   .   .   .   .   .
z/a  .   .   .   .   .   .   .   .   .
z/b  X   .   .   .   .   .   .   .   .
z/c  .   .   .   .   .   .   .   .   .
`

// xaEgressToYBOnly: x/a may send to y/b alone (and itself).
const xaEgressToYBOnly = `
-   x/a x/b x/c y/a y/b y/c z/a z/b z/c
x/a  .   X   X   X   .   X   X   X   X
x/b  .   .   .   .   .   .   .   .   .
x/c  .   .   .   .   .   .   .   .   .
y/a  .   .   .   .   .   .   .   .   .
y/b  .   .   .   .   .   .   .   .   .
y/c  .   .   .   .   .   .   .   .   .
z/a  .   .   .   .   .   .   .   .   .
z/b  .   .   .   .   .   .   .   .   .
z/c  .   .   .   .   .   .   .   .   .
`

// want holds the hand-written table of every check of every scenario of
// policymodel.Scenarios, by scenario name and check (PORT/PROTO).
var want = map[string]map[string]string{
	"default allow: no policies": {
		"80/TCP": allAllowed,
		"81/UDP": allAllowed,
	},
	"deny all ingress in x": {
		"80/TCP": xIngressDenied,
		"81/UDP": xIngressDenied,
	},
	"deny all ingress with policyTypes defaulted": {
		"80/TCP": yIngressDenied,
	},
	"deny all egress in x": {
		"80/TCP": xEgressDenied,
		"80/UDP": xEgressDenied,
	},
	"allow all ingress ({} rule) beside deny all": {
		"80/TCP": allAllowed,
		"81/UDP": allAllowed,
	},
	"allow ingress from namespace y": {
		"80/TCP": `
-   x/a x/b x/c y/a y/b y/c z/a z/b z/c
x/a  .   X   X   .   .   .   .   .   .
x/b  X   .   X   .   .   .   .   .   .
x/c  X   X   .   .   .   .   .   .   .
y/a  .   .   .   .   .   .   .   .   .
y/b  .   .   .   .   .   .   .   .   .
y/c  .   .   .   .   .   .   .   .   .
z/a  X   X   X   .   .   .   .   .   .
z/b  X   X   X   .   .   .   .   .   .
z/c  X   X   X   .   .   .   .   .   .
`,
	},
	"allow ingress from a pod of the same namespace": {
		"80/TCP": `
-   x/a x/b x/c y/a y/b y/c z/a z/b z/c
x/a  .   .   .   .   .   .   .   .   .
x/b  .   .   .   .   .   .   .   .   .
x/c  X   .   .   .   .   .   .   .   .
y/a  X   .   .   .   .   .   .   .   .
y/b  X   .   .   .   .   .   .   .   .
y/c  X   .   .   .   .   .   .   .   .
z/a  X   .   .   .   .   .   .   .   .
z/b  X   .   .   .   .   .   .   .   .
z/c  X   .   .   .   .   .   .   .   .
`,
	},
	"AND: namespaceSelector and podSelector in one peer": {
		"80/TCP": `
-   x/a x/b x/c y/a y/b y/c z/a z/b z/c
x/a  .   .   .   .   .   .   .   .   .
x/b  X   .   .   .   .   .   .   .   .
x/c  X   .   .   .   .   .   .   .   .
y/a  X   .   .   .   .   .   .   .   .
y/b  X   .   .   .   .   .   .   .   .
y/c  .   .   .   .   .   .   .   .   .
z/a  X   .   .   .   .   .   .   .   .
z/b  X   .   .   .   .   .   .   .   .
z/c  X   .   .   .   .   .   .   .   .
`,
	},
	"OR: namespaceSelector and podSelector as two peers": {
		"80/TCP": `
-   x/a x/b x/c y/a y/b y/c z/a z/b z/c
x/a  .   .   .   .   .   .   .   .   .
x/b  X   .   .   .   .   .   .   .   .
x/c  .   .   .   .   .   .   .   .   .
y/a  .   .   .   .   .   .   .   .   .
y/b  .   .   .   .   .   .   .   .   .
y/c  .   .   .   .   .   .   .   .   .
z/a  X   .   .   .   .   .   .   .   .
z/b  X   .   .   .   .   .   .   .   .
z/c  X   .   .   .   .   .   .   .   .
`,
	},
	"namespaceSelector {} with a podSelector: that pod in every namespace": {
		"80/TCP": xaFromPodB,
	},
	"namespaceSelector {} alone on port 80 only": {
		"80/TCP": allAllowed,
		"81/TCP": yIngressDenied,
		"80/UDP": yIngressDenied,
	},
	"matchExpressions In on namespaces": {
		"80/TCP": xFromYZOnly,
	},
	"matchExpressions NotIn on namespaces": {
		"80/TCP": xFromYZOnly,
	},
	"matchExpressions NotIn on pods of the same namespace": {
		"80/TCP": `
-   x/a x/b x/c y/a y/b y/c z/a z/b z/c
x/a  .   X   X   .   .   .   .   .   .
x/b  X   .   X   .   .   .   .   .   .
x/c  .   .   .   .   .   .   .   .   .
y/a  X   X   X   .   .   .   .   .   .
y/b  X   X   X   .   .   .   .   .   .
y/c  X   X   X   .   .   .   .   .   .
z/a  X   X   X   .   .   .   .   .   .
z/b  X   X   X   .   .   .   .   .   .
z/c  X   X   X   .   .   .   .   .   .
`,
	},
	"matchExpressions NotIn on an absent key matches": {
		"80/TCP": xaFromPodB,
	},
	"matchExpressions Exists and In": {
		"80/TCP": `
-   x/a x/b x/c y/a y/b y/c z/a z/b z/c
x/a  .   .   .   .   .   .   .   .   .
x/b  X   .   .   .   .   .   .   .   .
x/c  .   .   .   .   .   .   .   .   .
y/a  X   .   .   .   .   .   .   .   .
y/b  X   .   .   .   .   .   .   .   .
y/c  .   .   .   .   .   .   .   .   .
z/a  X   .   .   .   .   .   .   .   .
z/b  X   .   .   .   .   .   .   .   .
z/c  .   .   .   .   .   .   .   .   .
`,
	},
	"matchExpressions DoesNotExist on a present key selects nobody": {
		"80/TCP": `
-   x/a x/b x/c y/a y/b y/c z/a z/b z/c
x/a  .   .   .   .   .   .   .   .   .
x/b  X   .   .   .   .   .   .   .   .
x/c  X   .   .   .   .   .   .   .   .
y/a  X   .   .   .   .   .   .   .   .
y/b  X   .   .   .   .   .   .   .   .
y/c  X   .   .   .   .   .   .   .   .
z/a  X   .   .   .   .   .   .   .   .
z/b  X   .   .   .   .   .   .   .   .
z/c  X   .   .   .   .   .   .   .   .
`,
	},
	"matchExpressions DoesNotExist on an absent key": {
		"80/TCP": `
-   x/a x/b x/c y/a y/b y/c z/a z/b z/c
x/a  .   .   .   .   .   .   .   .   .
x/b  .   .   .   .   .   .   .   .   .
x/c  .   .   .   .   .   .   .   .   .
y/a  X   .   .   .   .   .   .   .   .
y/b  X   .   .   .   .   .   .   .   .
y/c  X   .   .   .   .   .   .   .   .
z/a  X   .   .   .   .   .   .   .   .
z/b  X   .   .   .   .   .   .   .   .
z/c  X   .   .   .   .   .   .   .   .
`,
	},
	"namespaceSelector on the automatic kubernetes.io/metadata.name label": {
		"80/TCP": `
-   x/a x/b x/c y/a y/b y/c z/a z/b z/c
x/a  .   X   X   .   .   .   .   .   .
x/b  X   .   X   .   .   .   .   .   .
x/c  X   X   .   .   .   .   .   .   .
y/a  X   X   X   .   .   .   .   .   .
y/b  X   X   X   .   .   .   .   .   .
y/c  X   X   X   .   .   .   .   .   .
z/a  .   .   .   .   .   .   .   .   .
z/b  .   .   .   .   .   .   .   .   .
z/c  .   .   .   .   .   .   .   .   .
`,
	},
	"ipBlock matches pod addresses (node-2's pod CIDR)": {
		"80/TCP": `
-   x/a x/b x/c y/a y/b y/c z/a z/b z/c
x/a  .   .   .   .   .   .   .   .   .
x/b  .   .   .   .   .   .   .   .   .
x/c  X   .   .   .   .   .   .   .   .
y/a  .   .   .   .   .   .   .   .   .
y/b  X   .   .   .   .   .   .   .   .
y/c  .   .   .   .   .   .   .   .   .
z/a  X   .   .   .   .   .   .   .   .
z/b  .   .   .   .   .   .   .   .   .
z/c  X   .   .   .   .   .   .   .   .
`,
	},
	"ipBlock with except": {
		"80/TCP": xaFromNode1,
	},
	"ipBlock with a /32 except, on egress": {
		"80/TCP": `
-   x/a x/b x/c y/a y/b y/c z/a z/b z/c
x/a  .   X   .   X   X   X   .   X   .
x/b  .   .   .   .   .   .   .   .   .
x/c  .   .   .   .   .   .   .   .   .
y/a  .   .   .   .   .   .   .   .   .
y/b  .   .   .   .   .   .   .   .   .
y/c  .   .   .   .   .   .   .   .   .
z/a  .   .   .   .   .   .   .   .   .
z/b  .   .   .   .   .   .   .   .   .
z/c  .   .   .   .   .   .   .   .   .
`,
	},
	"ipBlock 0.0.0.0/0 admits every pod": {
		"80/TCP": allAllowed,
	},
	"port 80/TCP only": {
		"80/TCP": allAllowed,
		"81/TCP": xIngressDenied,
		"80/UDP": xIngressDenied,
	},
	"port range with endPort": {
		"80/TCP": allAllowed,
		"81/TCP": xIngressDenied,
	},
	"port range starting at the port": {
		"80/TCP": xIngressDenied,
		"81/TCP": allAllowed,
	},
	"named port": {
		"81/TCP": allAllowed,
		"80/TCP": xIngressDenied,
		"81/UDP": xIngressDenied,
	},
	"named UDP port": {
		"80/UDP": allAllowed,
		"80/TCP": xIngressDenied,
		"81/UDP": xIngressDenied,
	},
	"named port that no pod declares matches nothing": {
		"80/TCP": xIngressDenied,
		"81/TCP": xIngressDenied,
	},
	"named port resolves against the destination on ingress": {
		"80/TCP": `
-   x/a x/b x/c y/a y/b y/c z/a z/b z/c
x/a  .   .   .   .   X   .   .   .   .
x/b  .   .   .   .   X   .   .   .   .
x/c  .   .   .   .   X   .   .   .   .
y/a  .   .   .   .   X   .   .   .   .
y/b  .   .   .   .   .   .   .   .   .
y/c  .   .   .   .   X   .   .   .   .
z/a  .   .   .   .   X   .   .   .   .
z/b  .   .   .   .   X   .   .   .   .
z/c  .   .   .   .   X   .   .   .   .
`,
		"81/TCP": `
-   x/a x/b x/c y/a y/b y/c z/a z/b z/c
x/a  .   .   .   X   .   X   .   .   .
x/b  .   .   .   X   .   X   .   .   .
x/c  .   .   .   X   .   X   .   .   .
y/a  .   .   .   .   .   X   .   .   .
y/b  .   .   .   X   .   X   .   .   .
y/c  .   .   .   X   .   .   .   .   .
z/a  .   .   .   X   .   X   .   .   .
z/b  .   .   .   X   .   X   .   .   .
z/c  .   .   .   X   .   X   .   .   .
`,
	},
	"named port resolves against the destination on egress": {
		"80/TCP": `
-   x/a x/b x/c y/a y/b y/c z/a z/b z/c
x/a  .   .   .   .   X   .   .   .   .
x/b  .   .   .   .   .   .   .   .   .
x/c  .   .   .   .   .   .   .   .   .
y/a  .   .   .   .   .   .   .   .   .
y/b  .   .   .   .   .   .   .   .   .
y/c  .   .   .   .   .   .   .   .   .
z/a  .   .   .   .   .   .   .   .   .
z/b  .   .   .   .   .   .   .   .   .
z/c  .   .   .   .   .   .   .   .   .
`,
		"81/TCP": xaEgressToYBOnly,
	},
	"UDP-only rule (protocol without port)": {
		"80/UDP": allAllowed,
		"81/UDP": allAllowed,
		"80/TCP": xIngressDenied,
	},
	"several ports in one rule": {
		"80/UDP": allAllowed,
		"81/TCP": allAllowed,
		"80/TCP": xIngressDenied,
		"81/UDP": xIngressDenied,
	},
	"two policies combine (union) over different pods": {
		"80/TCP": `
-   x/a x/b x/c y/a y/b y/c z/a z/b z/c
x/a  .   X   .   .   .   .   .   .   .
x/b  X   .   .   .   .   .   .   .   .
x/c  X   X   .   .   .   .   .   .   .
y/a  .   X   .   .   .   .   .   .   .
y/b  .   X   .   .   .   .   .   .   .
y/c  .   X   .   .   .   .   .   .   .
z/a  X   .   .   .   .   .   .   .   .
z/b  X   .   .   .   .   .   .   .   .
z/c  X   .   .   .   .   .   .   .   .
`,
	},
	"two policies on one pod: union of peers and ports": {
		"80/TCP": `
-   x/a x/b x/c y/a y/b y/c z/a z/b z/c
x/a  .   .   .   .   .   .   .   .   .
x/b  X   .   .   .   .   .   .   .   .
x/c  X   .   .   .   .   .   .   .   .
y/a  .   .   .   .   .   .   .   .   .
y/b  .   .   .   .   .   .   .   .   .
y/c  .   .   .   .   .   .   .   .   .
z/a  X   .   .   .   .   .   .   .   .
z/b  X   .   .   .   .   .   .   .   .
z/c  X   .   .   .   .   .   .   .   .
`,
		"81/TCP": `
-   x/a x/b x/c y/a y/b y/c z/a z/b z/c
x/a  .   .   .   .   .   .   .   .   .
x/b  X   .   .   .   .   .   .   .   .
x/c  X   .   .   .   .   .   .   .   .
y/a  X   .   .   .   .   .   .   .   .
y/b  X   .   .   .   .   .   .   .   .
y/c  X   .   .   .   .   .   .   .   .
z/a  .   .   .   .   .   .   .   .   .
z/b  .   .   .   .   .   .   .   .   .
z/c  .   .   .   .   .   .   .   .   .
`,
	},
	"a policy in another namespace has no effect": {
		"80/TCP": `
-   x/a x/b x/c y/a y/b y/c z/a z/b z/c
x/a  .   .   .   X   .   .   .   .   .
x/b  .   .   .   X   .   .   .   .   .
x/c  .   .   .   X   .   .   .   .   .
y/a  .   .   .   .   .   .   .   .   .
y/b  .   .   .   X   .   .   .   .   .
y/c  .   .   .   X   .   .   .   .   .
z/a  .   .   .   X   .   .   .   .   .
z/b  .   .   .   X   .   .   .   .   .
z/c  .   .   .   X   .   .   .   .   .
`,
	},
	"a podSelector that matches nothing has no effect": {
		"80/TCP": allAllowed,
	},
	"egress allowed only to one pod": {
		"80/TCP": xaEgressToYBOnly,
	},
	"egress and ingress are both required": {
		"80/TCP": `
-   x/a x/b x/c y/a y/b y/c z/a z/b z/c
x/a  .   X   X   .   X   .   X   X   X
x/b  .   .   .   .   X   .   .   .   .
x/c  .   .   .   .   X   .   .   .   .
y/a  .   .   .   .   X   .   .   .   .
y/b  .   .   .   .   .   .   .   .   .
y/c  .   .   .   .   X   .   .   .   .
z/a  .   .   .   .   .   .   .   .   .
z/b  .   .   .   .   .   .   .   .   .
z/c  .   .   .   .   .   .   .   .   .
`,
	},
	"policyTypes [Egress] ignores the policy's ingress rules": {
		"80/TCP": allAllowed,
	},
	"policyTypes defaulted from egress rules isolates both ways": {
		"80/TCP": `
-   x/a x/b x/c y/a y/b y/c z/a z/b z/c
x/a  .   X   X   .   .   .   X   X   X
x/b  X   .   .   .   .   .   .   .   .
x/c  X   .   .   .   .   .   .   .   .
y/a  X   .   .   .   .   .   .   .   .
y/b  X   .   .   .   .   .   .   .   .
y/c  X   .   .   .   .   .   .   .   .
z/a  X   .   .   .   .   .   .   .   .
z/b  X   .   .   .   .   .   .   .   .
z/c  X   .   .   .   .   .   .   .   .
`,
	},
	"one policy with ingress and egress rules": {
		"80/TCP": `
-   x/a x/b x/c y/a y/b y/c z/a z/b z/c
x/a  .   .   X   X   X   X   X   X   X
x/b  .   .   .   .   .   .   .   .   .
x/c  X   .   .   .   .   .   .   .   .
y/a  X   .   .   .   .   .   .   .   .
y/b  X   .   .   .   .   .   .   .   .
y/c  X   .   .   .   .   .   .   .   .
z/a  X   .   .   .   .   .   .   .   .
z/b  X   .   .   .   .   .   .   .   .
z/c  X   .   .   .   .   .   .   .   .
`,
	},
	"deny all egress but UDP 80 (a DNS-style exception)": {
		"80/UDP": allAllowed,
		"80/TCP": xEgressDenied,
		"81/UDP": xEgressDenied,
	},
	"egress to a namespace meets ingress on a port": {
		"80/TCP": `
-   x/a x/b x/c y/a y/b y/c z/a z/b z/c
x/a  .   X   X   .   .   .   X   X   X
x/b  X   .   X   .   .   .   X   X   X
x/c  X   X   .   .   .   .   X   X   X
y/a  .   .   .   .   .   .   .   .   .
y/b  .   .   .   .   .   .   .   .   .
y/c  .   .   .   .   .   .   .   .   .
z/a  .   .   .   .   .   .   .   .   .
z/b  .   .   .   .   .   .   .   .   .
z/c  .   .   .   .   .   .   .   .   .
`,
		"81/TCP": `
-   x/a x/b x/c y/a y/b y/c z/a z/b z/c
x/a  .   X   X   X   X   X   X   X   X
x/b  X   .   X   X   X   X   X   X   X
x/c  X   X   .   X   X   X   X   X   X
y/a  .   .   .   .   X   X   .   .   .
y/b  .   .   .   X   .   X   .   .   .
y/c  .   .   .   X   X   .   .   .   .
z/a  .   .   .   X   X   X   .   .   .
z/b  .   .   .   X   X   X   .   .   .
z/c  .   .   .   X   X   X   .   .   .
`,
	},
}

// TestScenarios checks the evaluator against the hand-written tables on
// the scenario corpus the compiler's and the end-to-end tests share.
func TestScenarios(t *testing.T) {
	if len(policymodel.Scenarios) < 25 {
		t.Fatalf("only %d scenarios; the issue asks for at least 25", len(policymodel.Scenarios))
	}
	for _, sc := range policymodel.Scenarios {
		t.Run(sc.Name, func(t *testing.T) {
			tables := want[sc.Name]
			if len(tables) != len(sc.Checks) {
				t.Fatalf("%d hand-written tables for %d checks", len(tables), len(sc.Checks))
			}
			r := loadModel(t, sc.Policies, sc.WebPort)
			for _, c := range sc.Checks {
				table, ok := tables[fmt.Sprintf("%d/%s", c.Port, c.Proto)]
				if !ok {
					t.Fatalf("no hand-written table for %d/%s", c.Port, c.Proto)
				}
				got := Matrix(r, stdPods, c.Port, c.Proto)
				diff, diffs, err := FormatDiff(stdPods, grid(t, table), got)
				if err != nil {
					t.Fatal(err)
				}
				if len(diffs) > 0 {
					t.Errorf("%d/%s: evaluator (observed) vs hand-written table (expected):\n%s", c.Port, c.Proto, diff)
				}
			}
		})
	}
	// A table whose scenario left the corpus is an assertion lost.
	names := map[string]bool{}
	for _, sc := range policymodel.Scenarios {
		names[sc.Name] = true
	}
	for name := range want {
		if !names[name] {
			t.Errorf("hand-written tables for %q, which is not in policymodel.Scenarios", name)
		}
	}
}
