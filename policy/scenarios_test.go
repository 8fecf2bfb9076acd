package policy

import (
	"testing"
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

type check struct {
	port  int
	proto string
	want  string
}

type scenario struct {
	name     string
	policies string
	webPort  map[string]int // nil: the standard model's ports only
	checks   []check
}

var scenarios = []scenario{
	{
		name:   "default allow: no policies",
		checks: []check{{80, "TCP", allAllowed}, {81, "UDP", allAllowed}},
	},
	{
		name: "deny all ingress in x",
		policies: `
  - name: deny-all
    namespace: x
    spec: {podSelector: {}, policyTypes: [Ingress], ingress: []}
`,
		checks: []check{{80, "TCP", xIngressDenied}, {81, "UDP", xIngressDenied}},
	},
	{
		name: "deny all ingress with policyTypes defaulted",
		policies: `
  - name: deny-all
    namespace: y
    spec: {podSelector: {}}
`,
		checks: []check{{80, "TCP", yIngressDenied}},
	},
	{
		name: "deny all egress in x",
		policies: `
  - name: deny-all-egress
    namespace: x
    spec: {podSelector: {}, policyTypes: [Egress]}
`,
		checks: []check{{80, "TCP", xEgressDenied}, {80, "UDP", xEgressDenied}},
	},
	{
		name: "allow all ingress ({} rule) beside deny all",
		policies: `
  - name: deny-all
    namespace: x
    spec: {podSelector: {}, policyTypes: [Ingress]}
  - name: allow-all
    namespace: x
    spec: {podSelector: {}, ingress: [{}]}
`,
		checks: []check{{80, "TCP", allAllowed}, {81, "UDP", allAllowed}},
	},
	{
		name: "allow ingress from namespace y",
		policies: `
  - name: from-y
    namespace: x
    spec:
      podSelector: {}
      ingress: [{from: [{namespaceSelector: {matchLabels: {ns: y}}}]}]
`,
		checks: []check{{80, "TCP", `
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
`}},
	},
	{
		name: "allow ingress from a pod of the same namespace",
		policies: `
  - name: a-from-b
    namespace: x
    spec:
      podSelector: {matchLabels: {pod: a}}
      ingress: [{from: [{podSelector: {matchLabels: {pod: b}}}]}]
`,
		checks: []check{{80, "TCP", `
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
`}},
	},
	{
		name: "AND: namespaceSelector and podSelector in one peer",
		policies: `
  - name: a-from-y-c
    namespace: x
    spec:
      podSelector: {matchLabels: {pod: a}}
      ingress: [{from: [{namespaceSelector: {matchLabels: {ns: y}}, podSelector: {matchLabels: {pod: c}}}]}]
`,
		checks: []check{{80, "TCP", `
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
`}},
	},
	{
		name: "OR: namespaceSelector and podSelector as two peers",
		policies: `
  - name: a-from-y-or-c
    namespace: x
    spec:
      podSelector: {matchLabels: {pod: a}}
      ingress: [{from: [{namespaceSelector: {matchLabels: {ns: y}}}, {podSelector: {matchLabels: {pod: c}}}]}]
`,
		checks: []check{{80, "TCP", `
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
`}},
	},
	{
		name: "namespaceSelector {} with a podSelector: that pod in every namespace",
		policies: `
  - name: a-from-any-b
    namespace: x
    spec:
      podSelector: {matchLabels: {pod: a}}
      ingress: [{from: [{namespaceSelector: {}, podSelector: {matchLabels: {pod: b}}}]}]
`,
		checks: []check{{80, "TCP", xaFromPodB}},
	},
	{
		name: "namespaceSelector {} alone on port 80 only",
		policies: `
  - name: from-anywhere-80
    namespace: y
    spec:
      podSelector: {}
      ingress: [{from: [{namespaceSelector: {}}], ports: [{port: 80}]}]
`,
		checks: []check{{80, "TCP", allAllowed}, {81, "TCP", yIngressDenied}, {80, "UDP", yIngressDenied}},
	},
	{
		name: "matchExpressions In on namespaces",
		policies: `
  - name: from-y-z
    namespace: x
    spec:
      podSelector: {}
      ingress: [{from: [{namespaceSelector: {matchExpressions: [{key: ns, operator: In, values: [y, z]}]}}]}]
`,
		checks: []check{{80, "TCP", xFromYZOnly}},
	},
	{
		name: "matchExpressions NotIn on namespaces",
		policies: `
  - name: not-from-x
    namespace: x
    spec:
      podSelector: {}
      ingress: [{from: [{namespaceSelector: {matchExpressions: [{key: ns, operator: NotIn, values: [x]}]}}]}]
`,
		checks: []check{{80, "TCP", xFromYZOnly}},
	},
	{
		name: "matchExpressions NotIn on pods of the same namespace",
		policies: `
  - name: not-from-a-b
    namespace: x
    spec:
      podSelector: {}
      ingress: [{from: [{podSelector: {matchExpressions: [{key: pod, operator: NotIn, values: [a, b]}]}}]}]
`,
		checks: []check{{80, "TCP", `
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
`}},
	},
	{
		// Namespaces carry no pod label, so NotIn holds for all of them.
		name: "matchExpressions NotIn on an absent key matches",
		policies: `
  - name: absent-key
    namespace: x
    spec:
      podSelector: {matchLabels: {pod: a}}
      ingress:
        - from:
            - namespaceSelector: {matchExpressions: [{key: pod, operator: NotIn, values: [a]}]}
              podSelector: {matchLabels: {pod: b}}
`,
		checks: []check{{80, "TCP", xaFromPodB}},
	},
	{
		name: "matchExpressions Exists and In",
		policies: `
  - name: from-any-c
    namespace: x
    spec:
      podSelector: {matchLabels: {pod: a}}
      ingress:
        - from:
            - namespaceSelector: {matchExpressions: [{key: ns, operator: Exists}]}
              podSelector: {matchExpressions: [{key: pod, operator: In, values: [c]}]}
`,
		checks: []check{{80, "TCP", `
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
`}},
	},
	{
		// Every pod has a pod label: the peer selects nobody.
		name: "matchExpressions DoesNotExist on a present key selects nobody",
		policies: `
  - name: from-unlabelled
    namespace: x
    spec:
      podSelector: {matchLabels: {pod: a}}
      ingress: [{from: [{podSelector: {matchExpressions: [{key: pod, operator: DoesNotExist}]}}]}]
`,
		checks: []check{{80, "TCP", `
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
`}},
	},
	{
		// No pod has a team label: every pod of x matches.
		name: "matchExpressions DoesNotExist on an absent key",
		policies: `
  - name: from-teamless
    namespace: x
    spec:
      podSelector: {matchLabels: {pod: a}}
      ingress: [{from: [{podSelector: {matchExpressions: [{key: team, operator: DoesNotExist}]}}]}]
`,
		checks: []check{{80, "TCP", `
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
`}},
	},
	{
		name: "namespaceSelector on the automatic kubernetes.io/metadata.name label",
		policies: `
  - name: from-z
    namespace: x
    spec:
      podSelector: {}
      ingress: [{from: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: z}}}]}]
`,
		checks: []check{{80, "TCP", `
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
`}},
	},
	{
		name: "ipBlock matches pod addresses (node-2's pod CIDR)",
		policies: `
  - name: from-node-2
    namespace: x
    spec:
      podSelector: {matchLabels: {pod: a}}
      ingress: [{from: [{ipBlock: {cidr: 10.244.2.0/24}}]}]
`,
		checks: []check{{80, "TCP", `
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
`}},
	},
	{
		name: "ipBlock with except",
		policies: `
  - name: cluster-but-node-2
    namespace: x
    spec:
      podSelector: {matchLabels: {pod: a}}
      ingress: [{from: [{ipBlock: {cidr: 10.244.0.0/16, except: [10.244.2.0/24]}}]}]
`,
		checks: []check{{80, "TCP", xaFromNode1}},
	},
	{
		name: "ipBlock with a /32 except, on egress",
		policies: `
  - name: to-node-1-but-y-b
    namespace: x
    spec:
      podSelector: {matchLabels: {pod: a}}
      policyTypes: [Egress]
      egress: [{to: [{ipBlock: {cidr: 10.244.1.0/24, except: [10.244.1.22/32]}}]}]
`,
		checks: []check{{80, "TCP", `
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
`}},
	},
	{
		name: "ipBlock 0.0.0.0/0 admits every pod",
		policies: `
  - name: from-everywhere
    namespace: x
    spec:
      podSelector: {}
      ingress: [{from: [{ipBlock: {cidr: 0.0.0.0/0}}]}]
`,
		checks: []check{{80, "TCP", allAllowed}},
	},
	{
		name: "port 80/TCP only",
		policies: `
  - name: only-80
    namespace: x
    spec:
      podSelector: {}
      ingress: [{ports: [{port: 80, protocol: TCP}]}]
`,
		checks: []check{{80, "TCP", allAllowed}, {81, "TCP", xIngressDenied}, {80, "UDP", xIngressDenied}},
	},
	{
		name: "port range with endPort",
		policies: `
  - name: range-79-80
    namespace: x
    spec:
      podSelector: {}
      ingress: [{ports: [{port: 79, endPort: 80}]}]
`,
		checks: []check{{80, "TCP", allAllowed}, {81, "TCP", xIngressDenied}},
	},
	{
		name: "port range starting at the port",
		policies: `
  - name: range-81-90
    namespace: x
    spec:
      podSelector: {}
      ingress: [{ports: [{port: 81, endPort: 90}]}]
`,
		checks: []check{{80, "TCP", xIngressDenied}, {81, "TCP", allAllowed}},
	},
	{
		name: "named port",
		policies: `
  - name: named-81
    namespace: x
    spec:
      podSelector: {}
      ingress: [{ports: [{port: serve-81-tcp}]}]
`,
		checks: []check{{81, "TCP", allAllowed}, {80, "TCP", xIngressDenied}, {81, "UDP", xIngressDenied}},
	},
	{
		name: "named UDP port",
		policies: `
  - name: named-80-udp
    namespace: x
    spec:
      podSelector: {}
      ingress: [{ports: [{port: serve-80-udp, protocol: UDP}]}]
`,
		checks: []check{{80, "UDP", allAllowed}, {80, "TCP", xIngressDenied}, {81, "UDP", xIngressDenied}},
	},
	{
		name: "named port that no pod declares matches nothing",
		policies: `
  - name: named-missing
    namespace: x
    spec:
      podSelector: {}
      ingress: [{ports: [{port: serve-99-tcp}]}]
`,
		checks: []check{{80, "TCP", xIngressDenied}, {81, "TCP", xIngressDenied}},
	},
	{
		// y/b calls 81 "web"; every other pod calls 80 "web".
		name:    "named port resolves against the destination on ingress",
		webPort: map[string]int{"y/b": 81},
		policies: `
  - name: web-only
    namespace: y
    spec:
      podSelector: {}
      ingress: [{ports: [{port: web}]}]
`,
		checks: []check{{80, "TCP", `
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
`}, {81, "TCP", `
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
`}},
	},
	{
		// On egress the name is looked up in the peer, not in x/a.
		name:    "named port resolves against the destination on egress",
		webPort: map[string]int{"y/b": 81},
		policies: `
  - name: web-out
    namespace: x
    spec:
      podSelector: {matchLabels: {pod: a}}
      policyTypes: [Egress]
      egress: [{ports: [{port: web}]}]
`,
		checks: []check{{80, "TCP", `
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
`}, {81, "TCP", `
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
`}},
	},
	{
		name: "UDP-only rule (protocol without port)",
		policies: `
  - name: udp-only
    namespace: x
    spec:
      podSelector: {}
      ingress: [{ports: [{protocol: UDP}]}]
`,
		checks: []check{{80, "UDP", allAllowed}, {81, "UDP", allAllowed}, {80, "TCP", xIngressDenied}},
	},
	{
		name: "several ports in one rule",
		policies: `
  - name: mixed-ports
    namespace: x
    spec:
      podSelector: {}
      ingress: [{ports: [{port: 80, protocol: UDP}, {port: 81}]}]
`,
		checks: []check{{80, "UDP", allAllowed}, {81, "TCP", allAllowed}, {80, "TCP", xIngressDenied}, {81, "UDP", xIngressDenied}},
	},
	{
		name: "two policies combine (union) over different pods",
		policies: `
  - name: a-from-y
    namespace: x
    spec:
      podSelector: {matchLabels: {pod: a}}
      ingress: [{from: [{namespaceSelector: {matchLabels: {ns: y}}}]}]
  - name: b-from-z
    namespace: x
    spec:
      podSelector: {matchLabels: {pod: b}}
      ingress: [{from: [{namespaceSelector: {matchLabels: {ns: z}}}]}]
`,
		checks: []check{{80, "TCP", `
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
`}},
	},
	{
		name: "two policies on one pod: union of peers and ports",
		policies: `
  - name: a-from-y-80
    namespace: x
    spec:
      podSelector: {matchLabels: {pod: a}}
      ingress: [{from: [{namespaceSelector: {matchLabels: {ns: y}}}], ports: [{port: 80}]}]
  - name: a-from-z-81
    namespace: x
    spec:
      podSelector: {matchLabels: {pod: a}}
      ingress: [{from: [{namespaceSelector: {matchLabels: {ns: z}}}], ports: [{port: 81}]}]
`,
		checks: []check{{80, "TCP", `
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
`}, {81, "TCP", `
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
`}},
	},
	{
		// The policy selects pod=a in y only; x/a and z/a carry the same
		// label but live elsewhere.
		name: "a policy in another namespace has no effect",
		policies: `
  - name: deny-a
    namespace: y
    spec: {podSelector: {matchLabels: {pod: a}}, policyTypes: [Ingress]}
`,
		checks: []check{{80, "TCP", `
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
`}},
	},
	{
		name: "a podSelector that matches nothing has no effect",
		policies: `
  - name: nobody
    namespace: x
    spec: {podSelector: {matchLabels: {pod: nobody}}, policyTypes: [Ingress, Egress]}
`,
		checks: []check{{80, "TCP", allAllowed}},
	},
	{
		name: "egress allowed only to one pod",
		policies: `
  - name: a-to-y-b
    namespace: x
    spec:
      podSelector: {matchLabels: {pod: a}}
      policyTypes: [Egress]
      egress: [{to: [{namespaceSelector: {matchLabels: {ns: y}}, podSelector: {matchLabels: {pod: b}}}]}]
`,
		checks: []check{{80, "TCP", `
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
`}},
	},
	{
		// x/a may only send to y; y/b only accepts z: x/a -> y/b needs
		// both and fails on y/b's side.
		name: "egress and ingress are both required",
		policies: `
  - name: a-to-y
    namespace: x
    spec:
      podSelector: {matchLabels: {pod: a}}
      policyTypes: [Egress]
      egress: [{to: [{namespaceSelector: {matchLabels: {ns: y}}}]}]
  - name: b-from-z
    namespace: y
    spec:
      podSelector: {matchLabels: {pod: b}}
      policyTypes: [Ingress]
      ingress: [{from: [{namespaceSelector: {matchLabels: {ns: z}}}]}]
`,
		checks: []check{{80, "TCP", `
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
`}},
	},
	{
		name: "policyTypes [Egress] ignores the policy's ingress rules",
		policies: `
  - name: egress-only
    namespace: x
    spec:
      podSelector: {}
      policyTypes: [Egress]
      ingress: [{from: [{podSelector: {matchLabels: {pod: nobody}}}]}]
      egress: [{}]
`,
		checks: []check{{80, "TCP", allAllowed}},
	},
	{
		// Without policyTypes, egress rules make the policy Ingress and
		// Egress; it has no ingress rule, so x/a accepts nothing.
		name: "policyTypes defaulted from egress rules isolates both ways",
		policies: `
  - name: a-to-y
    namespace: x
    spec:
      podSelector: {matchLabels: {pod: a}}
      egress: [{to: [{namespaceSelector: {matchLabels: {ns: y}}}]}]
`,
		checks: []check{{80, "TCP", `
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
`}},
	},
	{
		name: "one policy with ingress and egress rules",
		policies: `
  - name: a-with-b
    namespace: x
    spec:
      podSelector: {matchLabels: {pod: a}}
      policyTypes: [Ingress, Egress]
      ingress: [{from: [{podSelector: {matchLabels: {pod: b}}}]}]
      egress: [{to: [{podSelector: {matchLabels: {pod: b}}}]}]
`,
		checks: []check{{80, "TCP", `
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
`}},
	},
	{
		name: "deny all egress but UDP 80 (a DNS-style exception)",
		policies: `
  - name: udp-80-out
    namespace: x
    spec:
      podSelector: {}
      policyTypes: [Egress]
      egress: [{ports: [{port: 80, protocol: UDP}]}]
`,
		checks: []check{{80, "UDP", allAllowed}, {80, "TCP", xEgressDenied}, {81, "UDP", xEgressDenied}},
	},
	{
		// Egress of x and ingress of y both restricted: x reaches y only
		// where both allow, on 80 only.
		name: "egress to a namespace meets ingress on a port",
		policies: `
  - name: to-y
    namespace: x
    spec:
      podSelector: {}
      policyTypes: [Egress]
      egress: [{to: [{namespaceSelector: {matchLabels: {ns: y}}}]}]
  - name: web-80
    namespace: y
    spec:
      podSelector: {}
      ingress: [{ports: [{port: 80}]}]
`,
		checks: []check{{80, "TCP", `
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
`}, {81, "TCP", `
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
`}},
	},
}

func TestScenarios(t *testing.T) {
	if len(scenarios) < 25 {
		t.Fatalf("only %d scenarios; the issue asks for at least 25", len(scenarios))
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			r := loadModel(t, sc.policies, sc.webPort)
			for _, c := range sc.checks {
				want := grid(t, c.want)
				got := Matrix(r, stdPods, c.port, c.proto)
				diff, diffs, err := FormatDiff(stdPods, want, got)
				if err != nil {
					t.Fatal(err)
				}
				if len(diffs) > 0 {
					t.Errorf("%d/%s: evaluator (observed) vs hand-written table (expected):\n%s", c.port, c.proto, diff)
				}
			}
		})
	}
}
