package policymodel

// Scenarios are the standard model's policy scenarios: the one corpus of
// package policy's tests (which check policy.Matrix against a hand-written
// table per scenario and check, by Name), of the compiler's tests and of
// the end-to-end tests (which take policy.Matrix as the expectation).
var Scenarios = []Scenario{
	{
		Name:   "default allow: no policies",
		Checks: []Check{{80, "TCP"}, {81, "UDP"}},
	},
	{
		Name: "deny all ingress in x",
		Policies: `
  - name: deny-all
    namespace: x
    spec: {podSelector: {}, policyTypes: [Ingress], ingress: []}
`,
		Checks: []Check{{80, "TCP"}, {81, "UDP"}},
	},
	{
		Name: "deny all ingress with policyTypes defaulted",
		Policies: `
  - name: deny-all
    namespace: y
    spec: {podSelector: {}}
`,
		Checks: []Check{{80, "TCP"}},
	},
	{
		Name: "deny all egress in x",
		Policies: `
  - name: deny-all-egress
    namespace: x
    spec: {podSelector: {}, policyTypes: [Egress]}
`,
		Checks: []Check{{80, "TCP"}, {80, "UDP"}},
	},
	{
		Name: "allow all ingress ({} rule) beside deny all",
		Policies: `
  - name: deny-all
    namespace: x
    spec: {podSelector: {}, policyTypes: [Ingress]}
  - name: allow-all
    namespace: x
    spec: {podSelector: {}, ingress: [{}]}
`,
		Checks: []Check{{80, "TCP"}, {81, "UDP"}},
	},
	{
		Name: "allow ingress from namespace y",
		Policies: `
  - name: from-y
    namespace: x
    spec:
      podSelector: {}
      ingress: [{from: [{namespaceSelector: {matchLabels: {ns: y}}}]}]
`,
		Checks: []Check{{80, "TCP"}},
	},
	{
		Name: "allow ingress from a pod of the same namespace",
		Policies: `
  - name: a-from-b
    namespace: x
    spec:
      podSelector: {matchLabels: {pod: a}}
      ingress: [{from: [{podSelector: {matchLabels: {pod: b}}}]}]
`,
		Checks: []Check{{80, "TCP"}},
	},
	{
		Name: "AND: namespaceSelector and podSelector in one peer",
		Policies: `
  - name: a-from-y-c
    namespace: x
    spec:
      podSelector: {matchLabels: {pod: a}}
      ingress: [{from: [{namespaceSelector: {matchLabels: {ns: y}}, podSelector: {matchLabels: {pod: c}}}]}]
`,
		Checks: []Check{{80, "TCP"}},
	},
	{
		Name: "OR: namespaceSelector and podSelector as two peers",
		Policies: `
  - name: a-from-y-or-c
    namespace: x
    spec:
      podSelector: {matchLabels: {pod: a}}
      ingress: [{from: [{namespaceSelector: {matchLabels: {ns: y}}}, {podSelector: {matchLabels: {pod: c}}}]}]
`,
		Checks: []Check{{80, "TCP"}},
	},
	{
		Name: "namespaceSelector {} with a podSelector: that pod in every namespace",
		Policies: `
  - name: a-from-any-b
    namespace: x
    spec:
      podSelector: {matchLabels: {pod: a}}
      ingress: [{from: [{namespaceSelector: {}, podSelector: {matchLabels: {pod: b}}}]}]
`,
		Checks: []Check{{80, "TCP"}},
	},
	{
		Name: "namespaceSelector {} alone on port 80 only",
		Policies: `
  - name: from-anywhere-80
    namespace: y
    spec:
      podSelector: {}
      ingress: [{from: [{namespaceSelector: {}}], ports: [{port: 80}]}]
`,
		Checks: []Check{{80, "TCP"}, {81, "TCP"}, {80, "UDP"}},
	},
	{
		Name: "matchExpressions In on namespaces",
		Policies: `
  - name: from-y-z
    namespace: x
    spec:
      podSelector: {}
      ingress: [{from: [{namespaceSelector: {matchExpressions: [{key: ns, operator: In, values: [y, z]}]}}]}]
`,
		Checks: []Check{{80, "TCP"}},
	},
	{
		Name: "matchExpressions NotIn on namespaces",
		Policies: `
  - name: not-from-x
    namespace: x
    spec:
      podSelector: {}
      ingress: [{from: [{namespaceSelector: {matchExpressions: [{key: ns, operator: NotIn, values: [x]}]}}]}]
`,
		Checks: []Check{{80, "TCP"}},
	},
	{
		Name: "matchExpressions NotIn on pods of the same namespace",
		Policies: `
  - name: not-from-a-b
    namespace: x
    spec:
      podSelector: {}
      ingress: [{from: [{podSelector: {matchExpressions: [{key: pod, operator: NotIn, values: [a, b]}]}}]}]
`,
		Checks: []Check{{80, "TCP"}},
	},
	{
		// Namespaces carry no pod label, so NotIn holds for all of them.
		Name: "matchExpressions NotIn on an absent key matches",
		Policies: `
  - name: absent-key
    namespace: x
    spec:
      podSelector: {matchLabels: {pod: a}}
      ingress:
        - from:
            - namespaceSelector: {matchExpressions: [{key: pod, operator: NotIn, values: [a]}]}
              podSelector: {matchLabels: {pod: b}}
`,
		Checks: []Check{{80, "TCP"}},
	},
	{
		Name: "matchExpressions Exists and In",
		Policies: `
  - name: from-any-c
    namespace: x
    spec:
      podSelector: {matchLabels: {pod: a}}
      ingress:
        - from:
            - namespaceSelector: {matchExpressions: [{key: ns, operator: Exists}]}
              podSelector: {matchExpressions: [{key: pod, operator: In, values: [c]}]}
`,
		Checks: []Check{{80, "TCP"}},
	},
	{
		// Every pod has a pod label: the peer selects nobody.
		Name: "matchExpressions DoesNotExist on a present key selects nobody",
		Policies: `
  - name: from-unlabelled
    namespace: x
    spec:
      podSelector: {matchLabels: {pod: a}}
      ingress: [{from: [{podSelector: {matchExpressions: [{key: pod, operator: DoesNotExist}]}}]}]
`,
		Checks: []Check{{80, "TCP"}},
	},
	{
		// No pod has a team label: every pod of x matches.
		Name: "matchExpressions DoesNotExist on an absent key",
		Policies: `
  - name: from-teamless
    namespace: x
    spec:
      podSelector: {matchLabels: {pod: a}}
      ingress: [{from: [{podSelector: {matchExpressions: [{key: team, operator: DoesNotExist}]}}]}]
`,
		Checks: []Check{{80, "TCP"}},
	},
	{
		Name: "namespaceSelector on the automatic kubernetes.io/metadata.name label",
		Policies: `
  - name: from-z
    namespace: x
    spec:
      podSelector: {}
      ingress: [{from: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: z}}}]}]
`,
		Checks: []Check{{80, "TCP"}},
	},
	{
		Name: "ipBlock matches pod addresses (node-2's pod CIDR)",
		Policies: `
  - name: from-node-2
    namespace: x
    spec:
      podSelector: {matchLabels: {pod: a}}
      ingress: [{from: [{ipBlock: {cidr: 10.244.2.0/24}}]}]
`,
		Checks: []Check{{80, "TCP"}},
	},
	{
		Name: "ipBlock with except",
		Policies: `
  - name: cluster-but-node-2
    namespace: x
    spec:
      podSelector: {matchLabels: {pod: a}}
      ingress: [{from: [{ipBlock: {cidr: 10.244.0.0/16, except: [10.244.2.0/24]}}]}]
`,
		Checks: []Check{{80, "TCP"}},
	},
	{
		Name: "ipBlock with a /32 except, on egress",
		Policies: `
  - name: to-node-1-but-y-b
    namespace: x
    spec:
      podSelector: {matchLabels: {pod: a}}
      policyTypes: [Egress]
      egress: [{to: [{ipBlock: {cidr: 10.244.1.0/24, except: [10.244.1.22/32]}}]}]
`,
		Checks: []Check{{80, "TCP"}},
	},
	{
		Name: "ipBlock 0.0.0.0/0 admits every pod",
		Policies: `
  - name: from-everywhere
    namespace: x
    spec:
      podSelector: {}
      ingress: [{from: [{ipBlock: {cidr: 0.0.0.0/0}}]}]
`,
		Checks: []Check{{80, "TCP"}},
	},
	{
		Name: "port 80/TCP only",
		Policies: `
  - name: only-80
    namespace: x
    spec:
      podSelector: {}
      ingress: [{ports: [{port: 80, protocol: TCP}]}]
`,
		Checks: []Check{{80, "TCP"}, {81, "TCP"}, {80, "UDP"}},
	},
	{
		Name: "port range with endPort",
		Policies: `
  - name: range-79-80
    namespace: x
    spec:
      podSelector: {}
      ingress: [{ports: [{port: 79, endPort: 80}]}]
`,
		Checks: []Check{{80, "TCP"}, {81, "TCP"}},
	},
	{
		Name: "port range starting at the port",
		Policies: `
  - name: range-81-90
    namespace: x
    spec:
      podSelector: {}
      ingress: [{ports: [{port: 81, endPort: 90}]}]
`,
		Checks: []Check{{80, "TCP"}, {81, "TCP"}},
	},
	{
		Name: "named port",
		Policies: `
  - name: named-81
    namespace: x
    spec:
      podSelector: {}
      ingress: [{ports: [{port: serve-81-tcp}]}]
`,
		Checks: []Check{{81, "TCP"}, {80, "TCP"}, {81, "UDP"}},
	},
	{
		Name: "named UDP port",
		Policies: `
  - name: named-80-udp
    namespace: x
    spec:
      podSelector: {}
      ingress: [{ports: [{port: serve-80-udp, protocol: UDP}]}]
`,
		Checks: []Check{{80, "UDP"}, {80, "TCP"}, {81, "UDP"}},
	},
	{
		Name: "named port that no pod declares matches nothing",
		Policies: `
  - name: named-missing
    namespace: x
    spec:
      podSelector: {}
      ingress: [{ports: [{port: serve-99-tcp}]}]
`,
		Checks: []Check{{80, "TCP"}, {81, "TCP"}},
	},
	{
		// y/b calls 81 "web"; every other pod calls 80 "web".
		Name:    "named port resolves against the destination on ingress",
		WebPort: map[string]int{"y/b": 81},
		Policies: `
  - name: web-only
    namespace: y
    spec:
      podSelector: {}
      ingress: [{ports: [{port: web}]}]
`,
		Checks: []Check{{80, "TCP"}, {81, "TCP"}},
	},
	{
		// On egress the name is looked up in the peer, not in x/a.
		Name:    "named port resolves against the destination on egress",
		WebPort: map[string]int{"y/b": 81},
		Policies: `
  - name: web-out
    namespace: x
    spec:
      podSelector: {matchLabels: {pod: a}}
      policyTypes: [Egress]
      egress: [{ports: [{port: web}]}]
`,
		Checks: []Check{{80, "TCP"}, {81, "TCP"}},
	},
	{
		Name: "UDP-only rule (protocol without port)",
		Policies: `
  - name: udp-only
    namespace: x
    spec:
      podSelector: {}
      ingress: [{ports: [{protocol: UDP}]}]
`,
		Checks: []Check{{80, "UDP"}, {81, "UDP"}, {80, "TCP"}},
	},
	{
		Name: "several ports in one rule",
		Policies: `
  - name: mixed-ports
    namespace: x
    spec:
      podSelector: {}
      ingress: [{ports: [{port: 80, protocol: UDP}, {port: 81}]}]
`,
		Checks: []Check{{80, "UDP"}, {81, "TCP"}, {80, "TCP"}, {81, "UDP"}},
	},
	{
		Name: "two policies combine (union) over different pods",
		Policies: `
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
		Checks: []Check{{80, "TCP"}},
	},
	{
		Name: "two policies on one pod: union of peers and ports",
		Policies: `
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
		Checks: []Check{{80, "TCP"}, {81, "TCP"}},
	},
	{
		// The policy selects pod=a in y only; x/a and z/a carry the same
		// label but live elsewhere.
		Name: "a policy in another namespace has no effect",
		Policies: `
  - name: deny-a
    namespace: y
    spec: {podSelector: {matchLabels: {pod: a}}, policyTypes: [Ingress]}
`,
		Checks: []Check{{80, "TCP"}},
	},
	{
		Name: "a podSelector that matches nothing has no effect",
		Policies: `
  - name: nobody
    namespace: x
    spec: {podSelector: {matchLabels: {pod: nobody}}, policyTypes: [Ingress, Egress]}
`,
		Checks: []Check{{80, "TCP"}},
	},
	{
		Name: "egress allowed only to one pod",
		Policies: `
  - name: a-to-y-b
    namespace: x
    spec:
      podSelector: {matchLabels: {pod: a}}
      policyTypes: [Egress]
      egress: [{to: [{namespaceSelector: {matchLabels: {ns: y}}, podSelector: {matchLabels: {pod: b}}}]}]
`,
		Checks: []Check{{80, "TCP"}},
	},
	{
		// x/a may only send to y; y/b only accepts z: x/a -> y/b needs
		// both and fails on y/b's side.
		Name: "egress and ingress are both required",
		Policies: `
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
		Checks: []Check{{80, "TCP"}},
	},
	{
		Name: "policyTypes [Egress] ignores the policy's ingress rules",
		Policies: `
  - name: egress-only
    namespace: x
    spec:
      podSelector: {}
      policyTypes: [Egress]
      ingress: [{from: [{podSelector: {matchLabels: {pod: nobody}}}]}]
      egress: [{}]
`,
		Checks: []Check{{80, "TCP"}},
	},
	{
		// Without policyTypes, egress rules make the policy Ingress and
		// Egress; it has no ingress rule, so x/a accepts nothing.
		Name: "policyTypes defaulted from egress rules isolates both ways",
		Policies: `
  - name: a-to-y
    namespace: x
    spec:
      podSelector: {matchLabels: {pod: a}}
      egress: [{to: [{namespaceSelector: {matchLabels: {ns: y}}}]}]
`,
		Checks: []Check{{80, "TCP"}},
	},
	{
		Name: "one policy with ingress and egress rules",
		Policies: `
  - name: a-with-b
    namespace: x
    spec:
      podSelector: {matchLabels: {pod: a}}
      policyTypes: [Ingress, Egress]
      ingress: [{from: [{podSelector: {matchLabels: {pod: b}}}]}]
      egress: [{to: [{podSelector: {matchLabels: {pod: b}}}]}]
`,
		Checks: []Check{{80, "TCP"}},
	},
	{
		Name: "deny all egress but UDP 80 (a DNS-style exception)",
		Policies: `
  - name: udp-80-out
    namespace: x
    spec:
      podSelector: {}
      policyTypes: [Egress]
      egress: [{ports: [{port: 80, protocol: UDP}]}]
`,
		Checks: []Check{{80, "UDP"}, {80, "TCP"}, {81, "UDP"}},
	},
	{
		// Egress of x and ingress of y both restricted: x reaches y only
		// where both allow, on 80 only.
		Name: "egress to a namespace meets ingress on a port",
		Policies: `
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
		Checks: []Check{{80, "TCP"}, {81, "TCP"}},
	},
}
