package main

import (
	"bytes"
	"fmt"
	"regexp"
)

// The files are scaletopo.Nodes': flow style, one item a line, so edits
// are made on the text, as a person would make them.

// node is the node every row plans and the live daemon runs.
const node = "n0"

// nodeAddr is n0's address in scaletopo.Nodes' files, which the live
// node namespace's uplink carries.
const nodeAddr = "192.168.0.1/16"

// withPod returns data with pod "added" on n0 at the end of the pods
// list: in ns0, labelled with ns0's app a0, so that service s0 (ns0, a0)
// gains it as a backend. netns, when set, names its namespace.
func withPod(data []byte, netns string) []byte {
	if netns != "" {
		netns = " netns: " + netns + ","
	}
	pod := fmt.Sprintf("  - {name: added, namespace: ns0, node: %s, ip: 10.1.0.100, mode: veth,%s labels: {app: a0, instance: added}, "+
		"ports: [{name: web, port: 8080}, {name: metrics, port: 9090}]}\n", node, netns)
	i := bytes.Index(data, []byte("\nservices:\n"))
	if i < 0 {
		panic("scaletopo file without a services list")
	}
	return bytes.Join([][]byte{data[:i+1], []byte(pod), data[i+1:]}, nil)
}

// relabelRE is the app label of pod p50, the first of n1.
var relabelRE = regexp.MustCompile(`(?m)^(  - \{name: p50, [^\n]*node: n1, [^\n]*labels: \{app: )a\d+,`)

// relabelled returns data with pod p50 of n1 moved to app "moved": it
// leaves the services that selected it, so every node's service
// backends change (n0's datapath among them).
func relabelled(data []byte) []byte {
	out := relabelRE.ReplaceAll(data, []byte("${1}moved,"))
	if bytes.Equal(out, data) {
		panic("scaletopo file without pod p50 on n1")
	}
	return out
}

// nodeRE finds the pods of n0 (the comma after the name: not n01).
var nodeRE = regexp.MustCompile(`(?m)^(  - \{name: (p\d+), [^\n]*node: ` + node + `, [^\n]*mode: veth,)`)

// withNetns returns data with every pod of n0 given the namespace
// <prefix>-<pod>: names of this run only, on a machine others share.
func withNetns(data []byte, prefix string) []byte {
	return nodeRE.ReplaceAll(data, []byte("${1} netns: "+prefix+"-${2},"))
}
